/**
 * HTTP plumbing of the proxy: bearer auth, the browser guards (Host, Origin, Content-Type), reading a
 * body under a size and time limit, and writing a response at the pace the client reads it.
 */
import type http from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError, invalidRequest } from "./wire.js";

export function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/**
 * True when `header` is `Bearer <token>` for the token whose hash is given (the scheme is
 * case-insensitive, as RFC 9110 says; the compare is over fixed-size hashes, so its time does not
 * depend on how much of the token matched).
 */
export function bearerMatches(header: string | undefined, tokenHash: Buffer): boolean {
  if (typeof header !== "string") return false;
  const m = /^\s*bearer[ \t]+(\S+)\s*$/i.exec(header);
  if (!m?.[1]) return false;
  return timingSafeEqual(sha256(m[1]), tokenHash);
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return LOOPBACK_NAMES.includes(h) || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

/** The host name of a Host header, without the port and brackets, lower-cased. */
export function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined);
  const colon = h.lastIndexOf(":");
  return colon >= 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

export interface BrowserGuards {
  /** Host names (no port) a request may name in its Host header; undefined: any. */
  allowedHosts: Set<string> | undefined;
  /** Origins ("https://app.example") whose browser requests are served; all others get 403. */
  allowedOrigins: Set<string>;
}

/**
 * Refuses what a web page could send: a foreign Host (DNS rebinding points a hostile name at
 * 127.0.0.1, and the browser then sends that name) and any Origin not on the list (browsers add
 * Origin to cross-site and to all POST requests; API clients send none). Returns the allowed origin,
 * if the request had one, for the CORS headers.
 */
export function checkBrowserGuards(req: http.IncomingMessage, g: BrowserGuards): string | undefined {
  if (g.allowedHosts) {
    const host = req.headers.host;
    if (typeof host !== "string" || !g.allowedHosts.has(hostnameOf(host))) {
      throw new HttpError(403, "the Host header names a host this server does not answer for", "invalid_request_error", "host_not_allowed");
    }
  }
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  if (!g.allowedOrigins.has(origin.toLowerCase())) {
    throw new HttpError(403, "requests from web pages are not accepted from this origin", "invalid_request_error", "origin_not_allowed");
  }
  return origin;
}

/** A body a browser can send without a preflight (text/plain, forms) is not JSON to us: 415. */
export function requireJsonBody(req: http.IncomingMessage): void {
  const ct = req.headers["content-type"];
  const media = typeof ct === "string" ? ct.split(";")[0]?.trim().toLowerCase() : undefined;
  if (media !== "application/json") {
    throw invalidRequest(415, "send the body as Content-Type: application/json", "unsupported_media_type", null, { accept: "application/json" });
  }
}

export interface ReadBodyLimits {
  maxBytes: number;
  /** The whole body must arrive within this time. */
  timeoutMs: number;
  /** Aborts the read (shutdown). */
  signal: AbortSignal;
}

/** Reads the body as UTF-8; 413 past maxBytes, 408 past timeoutMs, 499 when the client leaves, 503 on abort. */
export function readBody(req: http.IncomingMessage, limits: ReadBodyLimits): Promise<string> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => invalidRequest(413, `request body over the limit of ${limits.maxBytes} bytes`, "request_too_large", null, { connection: "close" });
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (e: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.signal.removeEventListener("abort", onAbort);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      if (e) {
        // Nothing more of this body is wanted; discard the rest instead of buffering it.
        req.resume();
        reject(e);
      } else resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limits.maxBytes) settle(tooLarge());
      else chunks.push(c);
    };
    const onEnd = () => settle(undefined);
    const onClose = () => settle(new HttpError(499, "client closed the request", "invalid_request_error", "client_closed_request"));
    const onAbort = () => settle(new HttpError(503, "the server is shutting down", "server_error", "server_shutting_down", null, { connection: "close" }));
    const timer = setTimeout(
      () => settle(invalidRequest(408, `the request body did not arrive within ${limits.timeoutMs} ms`, "body_timeout", null, { connection: "close" })),
      limits.timeoutMs,
    );
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    req.on("error", () => {});
    if (limits.signal.aborted) onAbort();
    else limits.signal.addEventListener("abort", onAbort, { once: true });
  });
}

const SLICE_BYTES = 64 * 1024;

/**
 * Writes a response no faster than the client reads it. Each write either fits the socket's buffer
 * or gives a promise that settles once it drained; a client that reads nothing for `timeoutMs`, or
 * lets more than `maxBufferedBytes` pile up, is disconnected through `onStall`. Memory per connection
 * therefore stays near one slice plus the socket's buffer, whatever the size of the answer.
 */
export class PacedWriter {
  #stalled = false;
  constructor(
    private readonly res: http.ServerResponse,
    private readonly timeoutMs: number,
    private readonly maxBufferedBytes: number,
    private readonly onStall: (why: string) => void,
  ) {}

  get stalled(): boolean {
    return this.#stalled;
  }

  /** Writes now, without waiting; the caller paces itself through drained(). */
  push(chunk: string | Buffer): void {
    const res = this.res;
    if (res.destroyed || this.#stalled) return;
    res.write(chunk);
    if (res.writableLength > this.maxBufferedBytes) this.#stall(`the client let over ${this.maxBufferedBytes} bytes pile up unread`);
  }

  /** Writes now; the returned promise (if any) says when to write more. */
  write(chunk: string | Buffer): Promise<void> | undefined {
    this.push(chunk);
    return this.drained();
  }

  /** Resolves when the socket has room again (at once if it has), when it closed, or on the stall timeout. */
  drained(): Promise<void> | undefined {
    if (this.res.destroyed || this.#stalled || !this.res.writableNeedDrain) return undefined;
    return this.#settles("drain", `the client read nothing for ${this.timeoutMs} ms`);
  }

  /** Writes a large payload in slices, each after the previous one drained. */
  async writeAll(data: string | Buffer): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    for (let at = 0; at < bytes.length && !this.res.destroyed && !this.#stalled; at += SLICE_BYTES) {
      const wait = this.write(bytes.subarray(at, at + SLICE_BYTES));
      if (wait) await wait;
    }
  }

  /** Ends the response and waits until it was flushed or the connection closed (or the stall timeout). */
  async end(data?: string | Buffer): Promise<void> {
    if (data !== undefined) await this.writeAll(data);
    if (this.res.destroyed || this.#stalled) return;
    const flushed = this.#settles("finish", `the client did not take the end of the response within ${this.timeoutMs} ms`);
    this.res.end();
    await flushed;
  }

  /** Settles on `event`, on close, or after timeoutMs, when the client is disconnected as stalled. */
  #settles(event: "drain" | "finish", stallWhy: string): Promise<void> {
    const res = this.res;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        res.off(event, done);
        res.off("close", done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#stall(stallWhy);
        done();
      }, this.timeoutMs);
      res.on(event, done);
      res.on("close", done);
    });
  }

  #stall(why: string): void {
    if (this.#stalled) return;
    this.#stalled = true;
    this.onStall(why);
    this.res.destroy();
  }
}
