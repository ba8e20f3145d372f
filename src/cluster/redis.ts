/**
 * A small Redis client (RESP2 over one TCP socket) shaped as BullMQ's IRedisClient.
 *
 * Why our own: BullMQ 6 no longer bundles a Redis driver (ioredis and node-redis are optional peers),
 * and this project installs neither. BullMQ accepts any object with the IRedisClient methods, so this
 * file implements the commands BullMQ uses plus the few the cluster needs (binary GET/SET for
 * checkpoints). What matters for the cluster's guarantees:
 * - bounded connects (connectTimeoutMs) and a fail-fast mode (reconnect: false) for the first probe, so a
 *   wrong URL or password is an error within seconds, never a hang;
 * - automatic reconnects with capped backoff after a dropped connection (a restarted redis-server):
 *   commands issued meanwhile wait in an offline queue, commands in flight fail with BullMQ's
 *   ConnectionClosedError (BullMQ retries those), and Lua scripts are loaded again on every connect
 *   because a restarted server has lost its script cache;
 * - large bulk replies are assembled once (a 30 MB checkpoint arrives in many chunks).
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { ConnectionClosedError } from "bullmq";

export type RedisArg = string | number | Buffer;
export type RedisReply = string | number | Buffer | null | Error | RedisReply[];

export interface RedisOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  /** Limit of one TCP connect plus the handshake (AUTH, SELECT). */
  connectTimeoutMs?: number;
  /** Reconnect after a lost connection (default true); false fails the first connect fast instead. */
  reconnect?: boolean;
  /** Upper bound of the wait between reconnect attempts. */
  maxReconnectDelayMs?: number;
  connectionName?: string;
}

/** redis://[user[:password]@]host[:port][/db]; errors name the flag. */
export function parseRedisUrl(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis ${url}: not a URL; expected redis://[:password@]host:port[/db]`);
  }
  if (u.protocol !== "redis:") throw new Error(`--redis ${url}: only redis:// URLs are supported (got ${u.protocol})`);
  const db = u.pathname && u.pathname !== "/" ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw new Error(`--redis ${url}: the database after the / must be a whole number`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
  };
}

interface Pending {
  resolve: (v: RedisReply) => void;
  reject: (e: Error) => void;
  buffers: boolean;
}

interface Script {
  sha: string;
  lua: string;
  numberOfKeys: number;
}

/** Thrown by the parser when the buffer ends inside a reply; `need` is the byte count it must reach. */
class Incomplete {
  constructor(readonly need: number) {}
}

function encode(args: RedisArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

function parseReply(buf: Buffer, at: number, buffers: boolean): [RedisReply, number] {
  if (at >= buf.length) throw new Incomplete(at + 1);
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) throw new Incomplete(buf.length + 1);
  const type = buf[at];
  const line = buf.toString("utf8", at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case 0x2b: // +
      return [line, next];
    case 0x2d: // -
      return [new Error(line), next];
    case 0x3a: // :
      return [Number(line), next];
    case 0x24: {
      // $
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) throw new Incomplete(next + n + 2);
      const body = buf.subarray(next, next + n);
      return [buffers ? Buffer.from(body) : body.toString("utf8"), next + n + 2];
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return [null, next];
      const out: RedisReply[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const [v, q] = parseReply(buf, p, buffers);
        out.push(v);
        p = q;
      }
      return [out, p];
    }
    default:
      throw new Error(`redis: unexpected reply type byte ${type}`);
  }
}

function flatToObject(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const a = (reply as string[] | null) ?? [];
  for (let i = 0; i + 1 < a.length; i += 2) out[a[i]!] = a[i + 1]!;
  return out;
}

function hashFields(data: Record<string, string | number>): RedisArg[] {
  return Object.entries(data).flat();
}

function scriptArgs(script: Script, args: unknown[]): RedisArg[] {
  const list = args.length === 1 && Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
  const norm = list.map((a) => (Buffer.isBuffer(a) ? a : a === undefined || a === null ? "" : String(a)));
  return [script.numberOfKeys, ...norm];
}

const isNoScript = (e: unknown) => e instanceof Error && e.message.startsWith("NOSCRIPT");

export class RedisClient extends EventEmitter {
  /** 'wait' | 'connecting' | 'ready' | 'reconnecting' | 'end', the vocabulary BullMQ's RedisConnection reads. */
  status = "wait";
  readonly isCluster = false;
  options: Record<string, unknown>;
  private socket: Socket | null = null;
  private inflight: Pending[] = [];
  private offline: { args: RedisArg[]; p: Pending }[] = [];
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0;
  private manualClose = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly scripts = new Map<string, Script>();

  constructor(readonly opts: RedisOptions) {
    super();
    this.options = { host: opts.host, port: opts.port, db: opts.db ?? 0, connectionName: opts.connectionName };
    // Like ioredis: connect at once, so commands can be issued right away (they wait offline).
    this.startConnect();
  }

  // ---- connection lifecycle ----

  private startConnect(): void {
    this.status = this.attempts > 0 ? "reconnecting" : "connecting";
    const sock = netConnect({ host: this.opts.host, port: this.opts.port });
    this.socket = sock;
    sock.setNoDelay(true);
    const timer = setTimeout(() => sock.destroy(Object.assign(new Error(`connect to ${this.opts.host}:${this.opts.port} timed out`), { code: "ETIMEDOUT" })), this.opts.connectTimeoutMs ?? 5000);
    sock.on("data", (d) => this.onData(d));
    sock.on("error", (e) => {
      clearTimeout(timer);
      this.lastError = e;
      if (!this.manualClose && this.listenerCount("error") > 0) this.emit("error", e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      this.onClose(sock);
    });
    sock.on("connect", () => {
      sock.setKeepAlive(true, 10_000);
      this.handshake(sock).then(
        () => {
          clearTimeout(timer);
          if (this.socket !== sock) return;
          this.attempts = 0;
          this.status = "ready";
          for (const { args, p } of this.offline.splice(0)) this.write(args, p);
          for (const w of this.readyWaiters.splice(0)) w.resolve();
          this.emit("connect");
          this.emit("ready");
        },
        (e: Error) => {
          clearTimeout(timer);
          this.lastError = e;
          if (this.listenerCount("error") > 0) this.emit("error", e);
          sock.destroy();
        },
      );
    });
  }

  /** The last connection error, for a clear message when the first connect fails. */
  lastError: Error | null = null;

  private async handshake(sock: Socket): Promise<void> {
    const send = (args: RedisArg[]) =>
      new Promise<RedisReply>((resolve, reject) => {
        this.inflight.push({ resolve, reject, buffers: false });
        sock.write(encode(args));
      });
    const check = async (args: RedisArg[]) => {
      const r = await send(args);
      if (r instanceof Error) throw r;
    };
    if (this.opts.password !== undefined) {
      await check(this.opts.username ? ["AUTH", this.opts.username, this.opts.password] : ["AUTH", this.opts.password]);
    }
    if (this.opts.db) await check(["SELECT", this.opts.db]);
    if (this.opts.connectionName) await check(["CLIENT", "SETNAME", this.opts.connectionName]);
    // A restarted server has lost its script cache; load ours before anything runs EVALSHA in a MULTI.
    for (const s of this.scripts.values()) await check(["SCRIPT", "LOAD", s.lua]);
  }

  private onClose(sock: Socket): void {
    if (this.socket !== sock) return;
    this.socket = null;
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    const err = new ConnectionClosedError();
    for (const p of this.inflight.splice(0)) p.reject(err);
    if (this.manualClose || this.opts.reconnect === false) {
      this.end(this.lastError ?? err);
      return;
    }
    this.status = "reconnecting";
    this.emit("close");
    this.emit("reconnecting");
    const delay = Math.min(this.opts.maxReconnectDelayMs ?? 1000, 50 * 2 ** this.attempts++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.manualClose) this.startConnect();
    }, delay);
  }

  private end(reason: Error): void {
    this.status = "end";
    const err = new ConnectionClosedError();
    for (const { p } of this.offline.splice(0)) p.reject(err);
    for (const w of this.readyWaiters.splice(0)) w.reject(reason);
    this.emit("close");
    this.emit("end");
  }

  async connect(): Promise<void> {
    if (this.status === "ready") return;
    if (this.status === "end" || this.status === "wait") {
      this.manualClose = false;
      this.attempts = 0;
      this.startConnect();
    }
    await new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  disconnect(reconnect = false): void {
    if (reconnect) {
      this.socket?.destroy();
      return;
    }
    this.manualClose = true;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    if (this.socket) this.socket.destroy();
    else if (this.status !== "end") this.end(new ConnectionClosedError());
  }

  async quit(): Promise<string> {
    if (this.status === "ready" && this.socket) {
      const sock = this.socket;
      this.manualClose = true;
      const closed = new Promise<void>((r) => sock.once("close", () => r()));
      await this.call("QUIT").catch(() => {});
      sock.end();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      sock.destroy();
    } else this.disconnect();
    return "OK";
  }

  duplicate(over?: { connectionName?: string }): RedisClient {
    const dup = new RedisClient({ ...this.opts, connectionName: over?.connectionName ?? this.opts.connectionName });
    for (const [name, s] of this.scripts) dup.defineCommand(name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    return dup;
  }

  // ---- the wire ----

  private write(args: RedisArg[], p: Pending): void {
    if (!this.socket || this.status !== "ready") {
      this.offline.push({ args, p });
      return;
    }
    this.inflight.push(p);
    this.socket.write(encode(args));
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    if (this.buffered < this.need) return;
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let at = 0;
    while (at < buf.length && this.inflight.length) {
      let reply: RedisReply;
      let next: number;
      try {
        [reply, next] = parseReply(buf, at, this.inflight[0]!.buffers);
      } catch (e) {
        if (e instanceof Incomplete) {
          this.need = e.need - at;
          break;
        }
        this.socket?.destroy(e as Error);
        return;
      }
      at = next;
      this.need = 0;
      const p = this.inflight.shift()!;
      if (reply instanceof Error) p.reject(reply);
      else p.resolve(reply);
    }
    buf = buf.subarray(at);
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
  }

  /** Sends one command; replies with bulk strings as text (or as Buffers with `buffers`). */
  call(...args: RedisArg[]): Promise<RedisReply> {
    return this.send(args, false);
  }

  send(args: RedisArg[], buffers: boolean): Promise<RedisReply> {
    if (this.status === "end") return Promise.reject(new ConnectionClosedError());
    return new Promise((resolve, reject) => this.write(args, { resolve, reject, buffers }));
  }

  async getBuffer(key: string): Promise<Buffer | null> {
    return (await this.send(["GET", key], true)) as Buffer | null;
  }

  // ---- scripts ----

  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void {
    const sha = createHash("sha1").update(def.lua).digest("hex");
    this.scripts.set(name, { sha, lua: def.lua, numberOfKeys: def.numberOfKeys });
    // BullMQ checks for a property of this name to know the script is defined.
    (this as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => this.runCommand(name, args);
    if (this.status === "ready") this.call("SCRIPT", "LOAD", def.lua).catch(() => {});
  }

  private script(name: string): Script {
    const s = this.scripts.get(name);
    if (!s) throw new Error(`redis: unknown script command "${name}"`);
    return s;
  }

  async runCommand(name: string, args: unknown[]): Promise<unknown> {
    const s = this.script(name);
    const rest = scriptArgs(s, args);
    try {
      return await this.call("EVALSHA", s.sha, ...rest);
    } catch (e) {
      if (isNoScript(e)) return this.call("EVAL", s.lua, ...rest);
      throw e;
    }
  }

  multi(): RedisBatch {
    return new RedisBatch(this, true);
  }

  pipeline(): RedisBatch {
    return new RedisBatch(this, false);
  }

  /** For RedisBatch: the EVALSHA arguments of a script command, and its EVAL fallback. */
  scriptCall(name: string, args: unknown[]): { sha: RedisArg[]; eval: RedisArg[] } {
    const s = this.script(name);
    const rest = scriptArgs(s, args);
    return { sha: ["EVALSHA", s.sha, ...rest], eval: ["EVAL", s.lua, ...rest] };
  }

  // ---- the commands BullMQ uses ----

  async hgetall(key: string): Promise<Record<string, string>> {
    return flatToObject(await this.call("HGETALL", key));
  }
  async hget(key: string, field: string): Promise<string | null> {
    return (await this.call("HGET", key, field)) as string | null;
  }
  async hmget(key: string, ...fields: string[]): Promise<(string | null)[]> {
    return (await this.call("HMGET", key, ...fields)) as (string | null)[];
  }
  async hset(key: string, data: Record<string, string | number> | string, ...rest: (string | number)[]): Promise<number> {
    const fields = typeof data === "object" ? hashFields(data) : [data, ...rest];
    return (await this.call("HSET", key, ...fields)) as number;
  }
  async hdel(key: string, ...fields: string[]): Promise<number> {
    return (await this.call("HDEL", key, ...fields)) as number;
  }
  async hexists(key: string, field: string): Promise<number> {
    return (await this.call("HEXISTS", key, field)) as number;
  }
  async get(key: string): Promise<string | null> {
    return (await this.call("GET", key)) as string | null;
  }
  async set(key: string, value: string | number | Buffer, options?: { PX?: number; EX?: number }): Promise<string | null> {
    const extra: RedisArg[] = options?.PX != null ? ["PX", options.PX] : options?.EX != null ? ["EX", options.EX] : [];
    return (await this.call("SET", key, value, ...extra)) as string | null;
  }
  async del(...keys: string[]): Promise<number> {
    return keys.length ? ((await this.call("DEL", ...keys)) as number) : 0;
  }
  async zrange(key: string, start: number, end: number, options?: { WITHSCORES?: boolean }): Promise<string[]> {
    return (await this.call("ZRANGE", key, start, end, ...(options?.WITHSCORES ? ["WITHSCORES"] : []))) as string[];
  }
  async zrevrange(key: string, start: number, end: number, options?: { WITHSCORES?: boolean }): Promise<string[]> {
    return (await this.call("ZREVRANGE", key, start, end, ...(options?.WITHSCORES ? ["WITHSCORES"] : []))) as string[];
  }
  async zcard(key: string): Promise<number> {
    return (await this.call("ZCARD", key)) as number;
  }
  async zscore(key: string, member: string): Promise<string | null> {
    return (await this.call("ZSCORE", key, member)) as string | null;
  }
  async lrange(key: string, start: number, end: number): Promise<string[]> {
    return (await this.call("LRANGE", key, start, end)) as string[];
  }
  async llen(key: string): Promise<number> {
    return (await this.call("LLEN", key)) as number;
  }
  async ltrim(key: string, start: number, end: number): Promise<string> {
    return (await this.call("LTRIM", key, start, end)) as string;
  }
  async lpos(key: string, value: string): Promise<number | null> {
    return (await this.call("LPOS", key, value)) as number | null;
  }
  async smembers(key: string): Promise<string[]> {
    return (await this.call("SMEMBERS", key)) as string[];
  }
  async xadd(key: string, id: string, fields: Record<string, string | number>, options?: { MAXLEN?: number; approximate?: boolean }): Promise<string> {
    const trim: RedisArg[] = options?.MAXLEN != null ? ["MAXLEN", ...(options.approximate === false ? [] : ["~"]), options.MAXLEN] : [];
    return (await this.call("XADD", key, ...trim, id, ...hashFields(fields))) as string;
  }
  async xread(streams: { key: string; id: string }[], options?: { BLOCK?: number; COUNT?: number }): Promise<unknown> {
    const opts: RedisArg[] = [];
    if (options?.COUNT != null) opts.push("COUNT", options.COUNT);
    if (options?.BLOCK != null) opts.push("BLOCK", options.BLOCK);
    return this.call("XREAD", ...opts, "STREAMS", ...streams.map((s) => s.key), ...streams.map((s) => s.id));
  }
  async xtrim(key: string, strategy: "MAXLEN", threshold: number, options?: { approximate?: boolean }): Promise<number> {
    return (await this.call("XTRIM", key, strategy, ...(options?.approximate === false ? [] : ["~"]), threshold)) as number;
  }
  async bzpopmin(key: string, timeout: number): Promise<[string, string, string] | null> {
    return (await this.call("BZPOPMIN", key, timeout)) as [string, string, string] | null;
  }
  async info(): Promise<string> {
    return (await this.call("INFO")) as string;
  }
  async clientSetName(name: string): Promise<unknown> {
    return this.call("CLIENT", "SETNAME", name);
  }
  async clientList(): Promise<string> {
    return (await this.call("CLIENT", "LIST")) as string;
  }
  async clientInfo(): Promise<string> {
    return (await this.call("CLIENT", "INFO")) as string;
  }
  async scan(cursor: string | number, options: { MATCH?: string; COUNT?: number }): Promise<[string, string[]]> {
    const opts: RedisArg[] = [];
    if (options.MATCH) opts.push("MATCH", options.MATCH);
    if (options.COUNT) opts.push("COUNT", options.COUNT);
    return (await this.call("SCAN", cursor, ...opts)) as [string, string[]];
  }
  scanStream(options: { match: string; count?: number }): Readable {
    const client = this;
    let cursor = "0";
    let started = false;
    return new Readable({
      objectMode: true,
      read() {
        if (started && cursor === "0") return;
        started = true;
        client.scan(cursor, { MATCH: options.match, COUNT: options.count }).then(
          ([next, keys]) => {
            cursor = next;
            this.push(keys);
            if (cursor === "0") this.push(null);
          },
          (e: Error) => this.destroy(e),
        );
      },
    });
  }
}

/** MULTI/EXEC (multi) or plain pipelining (pipeline), with ioredis's [error, value] result pairs. */
export class RedisBatch {
  private readonly cmds: { args: RedisArg[]; fallback?: RedisArg[]; map?: (v: unknown) => unknown }[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly transaction: boolean,
  ) {}

  private add(args: RedisArg[], map?: (v: unknown) => unknown, fallback?: RedisArg[]): this {
    this.cmds.push({ args, map, fallback });
    return this;
  }
  hgetall(key: string): this {
    return this.add(["HGETALL", key], flatToObject);
  }
  hset(key: string, data: Record<string, string | number>): this {
    return this.add(["HSET", key, ...hashFields(data)]);
  }
  hscan(key: string, cursor: string | number, options?: { COUNT?: number }): this {
    return this.add(["HSCAN", key, cursor, ...(options?.COUNT != null ? ["COUNT", options.COUNT] : [])]);
  }
  smembers(key: string): this {
    return this.add(["SMEMBERS", key]);
  }
  sscan(key: string, cursor: string | number, options?: { COUNT?: number }): this {
    return this.add(["SSCAN", key, cursor, ...(options?.COUNT != null ? ["COUNT", options.COUNT] : [])]);
  }
  zrange(key: string, start: number, end: number): this {
    return this.add(["ZRANGE", key, start, end]);
  }
  lrange(key: string, start: number, end: number): this {
    return this.add(["LRANGE", key, start, end]);
  }
  llen(key: string): this {
    return this.add(["LLEN", key]);
  }
  del(...keys: string[]): this {
    return keys.length ? this.add(["DEL", ...keys]) : this;
  }
  runCommand(name: string, args: unknown[]): this {
    const c = this.client.scriptCall(name, args);
    return this.add(c.sha, undefined, c.eval);
  }

  async exec(): Promise<[Error | null, unknown][] | null> {
    if (!this.transaction) {
      const settled = await Promise.allSettled(this.cmds.map((c) => this.client.call(...c.args)));
      return Promise.all(
        settled.map(async (s, i): Promise<[Error | null, unknown]> => {
          const c = this.cmds[i]!;
          if (s.status === "fulfilled") return [null, c.map ? c.map(s.value) : s.value];
          if (c.fallback && isNoScript(s.reason)) {
            try {
              return [null, await this.client.call(...c.fallback)];
            } catch (e) {
              return [e as Error, null];
            }
          }
          return [s.reason as Error, null];
        }),
      );
    }
    const queued = [this.client.call("MULTI"), ...this.cmds.map((c) => this.client.call(...c.args))];
    const exec = this.client.call("EXEC");
    // Queuing errors surface again as EXECABORT from EXEC; the per-command promises only need handling.
    await Promise.allSettled(queued);
    const results = (await exec) as RedisReply[] | null;
    if (results === null) return null;
    return results.map((r, i) => (r instanceof Error ? [r, null] : [null, this.cmds[i]!.map ? this.cmds[i]!.map!(r) : r]));
  }
}
