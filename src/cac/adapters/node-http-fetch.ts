/**
 * A small fetch() for the `openai` SDK over node:http / node:https with keep-alive agents.
 *
 * Why: under load the proxy spends most of its CPU in the global fetch (undici + web streams); on
 * Node 20 a request through it costs several times what the same request costs through node:http.
 * The SDK only needs a small part of the Response API (status, ok, headers.get, text, json and a body
 * it can iterate), so this returns exactly that. Bodies must be strings or bytes (the SDK sends JSON).
 */
import http from "node:http";
import https from "node:https";
import { abortError } from "../../util/sleep.js";

export interface NodeHttpFetchOptions {
  /** Sockets per upstream host. Default 512. */
  maxSockets?: number;
  /** Idle keep-alive sockets kept per host. Default 256. */
  maxFreeSockets?: number;
  /** Largest response body read; beyond it the body fails with ResponseTooLargeError. Default: no limit. */
  maxResponseBytes?: number;
}

/** A response body went over the byte limit; the connection was dropped there. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the response body is over the limit of ${limit} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/** Yields the body's chunks, failing as soon as their total passes `limit` (or the declared length does). */
async function* limitedBody(res: http.IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  const declared = Number(res.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw new ResponseTooLargeError(limit);
  }
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw new ResponseTooLargeError(limit);
    }
    yield c as Buffer;
  }
}

/** The subset of Headers the SDK and the adapter use, over node's header object. */
class ResponseHeaders {
  readonly #h: http.IncomingHttpHeaders;
  constructor(h: http.IncomingHttpHeaders) {
    this.#h = h;
  }
  get(name: string): string | null {
    const v = this.#h[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(", ") : String(v);
  }
  has(name: string): boolean {
    return this.#h[name.toLowerCase()] !== undefined;
  }
  forEach(cb: (value: string, name: string) => void): void {
    for (const [k, v] of this.entries()) cb(v, k);
  }
  *entries(): IterableIterator<[string, string]> {
    for (const k of Object.keys(this.#h)) yield [k, this.get(k)!];
  }
  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): IterableIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

class NodeResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly url: string;
  readonly redirected = false;
  readonly type = "basic";
  readonly headers: ResponseHeaders;
  /** Async-iterable of Uint8Array chunks (node Buffers), cut off at the byte limit. */
  readonly body: AsyncIterable<Buffer>;
  #used = false;
  constructor(res: http.IncomingMessage, url: string, maxBytes: number) {
    this.status = res.statusCode ?? 0;
    this.statusText = res.statusMessage ?? "";
    this.ok = this.status >= 200 && this.status < 300;
    this.url = url;
    this.headers = new ResponseHeaders(res.headers);
    this.body = Number.isFinite(maxBytes) ? limitedBody(res, maxBytes) : (res as AsyncIterable<Buffer>);
  }
  get bodyUsed(): boolean {
    return this.#used;
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.#bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  async text(): Promise<string> {
    return (await this.#bytes()).toString("utf8");
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async #bytes(): Promise<Buffer> {
    if (this.#used) throw new TypeError("body already used");
    this.#used = true;
    const chunks: Buffer[] = [];
    for await (const c of this.body) chunks.push(c);
    return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
  }
}

/**
 * Wraps any fetch so that response bodies fail with ResponseTooLargeError past `limit` bytes (for the
 * global fetch transport and custom fetches; the node:http transport counts on its own).
 */
export function limitResponseBytes(f: typeof fetch, limit: number): typeof fetch {
  if (!Number.isFinite(limit)) return f;
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await f(input, init);
    const declared = Number(res.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > limit) {
      await res.body?.cancel().catch(() => {});
      throw new ResponseTooLargeError(limit);
    }
    if (!res.body) return res;
    let size = 0;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength;
          if (size > limit) controller.error(new ResponseTooLargeError(limit));
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as typeof fetch;
}

function headerRecord(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  if (typeof (h as { forEach?: unknown }).forEach === "function" && !Array.isArray(h)) {
    (h as { forEach(cb: (v: string, k: string) => void): void }).forEach((v, k) => {
      out[k] = v;
    });
  } else if (Array.isArray(h)) {
    for (const [k, v] of h as [string, string][]) out[k.toLowerCase()] = v;
  } else {
    for (const [k, v] of Object.entries(h as Record<string, string>)) if (v !== undefined) out[k.toLowerCase()] = String(v);
  }
  return out;
}

export function createNodeHttpFetch(options: NodeHttpFetchOptions = {}): typeof fetch {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 512, maxFreeSockets: options.maxFreeSockets ?? 256 };
  const maxBytes = options.maxResponseBytes ?? Infinity;
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  const nodeFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<NodeResponse> =>
    new Promise((resolve, reject) => {
      const url = typeof input === "string" ? new URL(input) : input instanceof URL ? input : new URL(input.url);
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(abortError(signal));
      const body = init.body;
      if (body != null && typeof body !== "string" && !(body instanceof Uint8Array)) {
        return reject(new TypeError("node-http-fetch: only string or byte bodies are supported"));
      }
      const headers = headerRecord(init.headers);
      if (body != null) headers["content-length"] = String(Buffer.byteLength(body));
      const isHttps = url.protocol === "https:";
      const req = (isHttps ? https : http).request(
        url,
        { method: init.method ?? "GET", headers, agent: isHttps ? httpsAgent : httpAgent },
        (res) => {
          res.once("close", cleanup);
          // A reset while nobody reads the body must not become an uncaught 'error' event;
          // readers (text(), for await) still see the error.
          res.on("error", () => {});
          resolve(new NodeResponse(res, url.href, maxBytes));
        },
      );
      const onAbort = () => req.destroy(abortError(signal!));
      function cleanup() {
        signal?.removeEventListener("abort", onAbort);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e) => {
        cleanup();
        reject(e);
      });
      req.end(body ?? undefined);
    });
  return nodeFetch as unknown as typeof fetch;
}
