/**
 * Opening the cluster's Redis with ioredis: a fail-fast probe first (one bounded connect, no retries, no
 * offline queue) so that an unreachable host or a wrong password is a clear error within seconds, then the
 * long-lived client BullMQ needs, which reconnects by itself (a restarted redis-server) and lets commands
 * wait for the reconnect instead of failing them (maxRetriesPerRequest: null).
 */
import type { Queue } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import { UserError } from "../util/errors.js";
import { DirArtifacts, RedisArtifacts, type ArtifactStore } from "./artifacts.js";
import { openQueue } from "./queue.js";

/** Bound of the first connect plus handshake. */
export const CONNECT_TIMEOUT_MS = 5000;

type Target = Pick<RedisOptions, "host" | "port" | "username" | "password" | "db">;

/**
 * redis://[user[:password]@]host[:port][/db] as ioredis options. ioredis parses URLs too, but silently
 * takes any scheme; this names the flag and the expected form instead.
 */
export function parseRedisUrl(url: string): Target & { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--redis ${url}: not a URL; expected redis://[:password@]host:port[/db]`);
  }
  if (u.protocol !== "redis:") throw new UserError(`--redis ${url}: only redis:// URLs are supported (got ${u.protocol})`);
  const db = u.pathname && u.pathname !== "/" ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw new UserError(`--redis ${url}: the database after the / must be a whole number`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
  };
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(redis:\/\/[^:@/]*:)[^@]*@/, "$1***@");
}

function describeFailure(url: string, where: string, e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  const msg = e.message;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
    return `Redis at ${where} refused the password (${msg}); give the right one in the URL: redis://:PASSWORD@${where}`;
  }
  if (/NOAUTH/i.test(msg)) return `Redis at ${where} needs a password (${msg}); give it in the URL: redis://:PASSWORD@${where}`;
  if (code === "ECONNREFUSED") return `cannot reach Redis at ${where}: connection refused; is redis-server running there? (--redis ${redactUrl(url)})`;
  if (code === "ETIMEDOUT") return `cannot reach Redis at ${where}: no answer within ${CONNECT_TIMEOUT_MS} ms (--redis ${redactUrl(url)})`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot reach Redis at ${where}: unknown host (--redis ${redactUrl(url)})`;
  return `cannot use Redis at ${where}: ${msg}`;
}

/**
 * A client that connects once, within `timeoutMs`, and never retries or queues: a failure is an error at
 * once. ioredis rejects a failed connect with a bare "Connection is closed."; the reason (ECONNREFUSED,
 * WRONGPASS, NOAUTH) comes as an "error" event first, so that is what this throws. ioredis's
 * connectTimeout ends at the TCP connect: a peer that accepts and never answers (a wrong port, a proxy)
 * would hang in the handshake, hence the deadline over the whole connect.
 */
export async function connectOnce(target: Target, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Redis> {
  const client = new Redis({
    ...target,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
  });
  let reason: Error | undefined;
  client.on("error", (e: Error) => {
    reason ??= e;
  });
  const deadline = setTimeout(() => {
    reason ??= Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" });
    client.disconnect();
  }, timeoutMs);
  try {
    await client.connect();
    return client;
  } catch (e) {
    client.disconnect();
    throw reason ?? e;
  } finally {
    clearTimeout(deadline);
  }
}

/** Connects to `url` or throws a UserError that says what is wrong, within about CONNECT_TIMEOUT_MS. */
export async function openRedis(url: string): Promise<Redis> {
  const target = parseRedisUrl(url);
  try {
    const probe = await connectOnce(target);
    await probe.ping().finally(() => probe.disconnect());
  } catch (e) {
    throw new UserError(describeFailure(url, `${target.host}:${target.port}`, e as Error));
  }
  const client = new Redis({
    ...target,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // BullMQ requires it: a command issued while Redis restarts waits for the reconnect instead of failing.
    maxRetriesPerRequest: null,
    // Capped at a second so that work resumes about a second after a restarted Redis is back.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
  });
  // Errors of a dropped connection are handled by reconnecting; without a listener ioredis prints each one.
  client.on("error", () => {});
  return client;
}

export interface Cluster {
  client: Redis;
  queue: Queue;
  artifacts: ArtifactStore;
  close: () => Promise<void>;
}

/** The Redis connection, the queue and the artifact store (`artifactsDir`, else Redis itself). */
export async function openCluster(url: string, artifactsDir?: string): Promise<Cluster> {
  const client = await openRedis(url);
  const queue = openQueue(client);
  const artifacts = artifactsDir ? new DirArtifacts(artifactsDir) : new RedisArtifacts(client);
  return {
    client,
    queue,
    artifacts,
    close: async () => {
      await queue.close().catch(() => {});
      await client.quit().catch(() => client.disconnect());
    },
  };
}
