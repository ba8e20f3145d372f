/**
 * An OpenAI-compatible HTTP proxy that applies Checking-as-Context in front of any upstream ChatModel.
 *
 *   POST /v1/chat/completions  standard request; the response is the standard chat.completion whose
 *                              message is the FINAL (self-corrected) answer, plus the full trace under
 *                              the extension field `selfcorrect: { trace }`.
 *                              Headers: x-request-id, x-selfcorrect-upstream-ms (time spent in upstream
 *                              calls, as the adapter measured it), x-selfcorrect-proxy-ms (time from
 *                              request arrival to response, upstream included).
 *                              With `stream: true` the earlier calls (initial answer, checks) run first and
 *                              the FINAL answer is streamed live as SSE chunks from the upstream, no faster
 *                              than the client reads them; the last chunk carries `selfcorrect: { trace }`,
 *                              then `data: [DONE]`. The response headers are sent only when the final
 *                              answer starts, so a failure in the earlier calls still gets a proper status.
 *                              Optional body field `selfcorrect: { variant, rounds, check_prompt }`
 *                              overrides the server's CaC settings for one request, when the operator
 *                              allows it (allowRequestOverrides) and within maxRounds.
 *   GET  /v1/models            the one model this proxy serves.
 *   GET  /healthz              liveness: the process answers (no auth).
 *   GET  /readyz               readiness: the upstream answers too (no auth; cached for a moment).
 *
 * The layers: ./server/wire.ts (schemas, error bodies, completion objects), ./server/http.ts (auth,
 * browser guards, body reading, paced writing), ./server/lifecycle.ts (limits on connections and
 * headers, listen, shutdown), ./server/chat.ts (a request through the CaC loop). docs/security.md has
 * the threat model and every limit.
 */
import type http from "node:http";
import { randomBytes } from "node:crypto";
import { redactSecrets, UpstreamError } from "./errors.js";
import { DEFAULT_TURN_MAX_TOKENS } from "./presets.js";
import type { CaCOptions, ChatModel } from "./types.js";
import { HttpError, errorBody, invalidRequest } from "./server/wire.js";
import { bearerMatches, checkBrowserGuards, isLoopbackHost, sha256 } from "./server/http.js";
import { createLimitedServer, listen, shutdown } from "./server/lifecycle.js";
import { handleChat, type ChatSettings, type ChatState, type Inflight } from "./server/chat.js";

export type LogEntry = Record<string, unknown>;

export interface ProxyServerOptions {
  /** The upstream the CaC loop drives. */
  model: ChatModel;
  /** CaC settings for every request (signal, onCall and onFinalDelta are set per request). */
  cac?: Omit<CaCOptions, "signal" | "onCall" | "onFinalDelta">;
  /** Default 127.0.0.1. Another interface needs a token, or `insecure`. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** When set, every /v1 request needs `Authorization: Bearer <token>` (surrounding spaces are trimmed). */
  token?: string;
  /** Listen on a non-loopback interface without a token. Default false. */
  insecure?: boolean;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** The whole request body must arrive within this time after the headers (408). Default 10 000 ms. */
  bodyTimeoutMs?: number;
  /** The request headers must arrive within this time (408). Default 10 000 ms. */
  headersTimeoutMs?: number;
  /** Larger request headers get 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Open connections at once; more are closed on arrival. Default 256. */
  maxConnections?: number;
  /** Chat completions served at once; more get 429. Default 64. */
  maxConcurrent?: number;
  /** Retry-After seconds sent with that 429. Default 1. */
  retryAfterSeconds?: number;
  /** Deadline for one whole CaC request, from its arrival (all its upstream calls). Default 300 000 ms. */
  requestTimeoutMs?: number;
  /** A client that reads none of its response for this long is disconnected. Default 30 000 ms. */
  writeTimeoutMs?: number;
  /** How long close() waits for in-flight requests before aborting them. Default 30 000 ms. */
  shutdownGraceMs?: number;
  /** The model id advertised by /v1/models and reported in responses; requests naming another get 404. Default: the upstream's id. */
  modelName?: string;
  /** Accept the per-request `selfcorrect` body field. Default false. */
  allowRequestOverrides?: boolean;
  /** With overrides allowed: the most rounds a request may ask for. Default 3. */
  maxRounds?: number;
  /** Ceiling of a request's max_tokens per call. Default: cac.generation.maxTokens, else 64. */
  maxTokens?: number;
  /** Origins whose browser requests are served (with CORS headers). Default none: any Origin gets 403. */
  allowedOrigins?: string[];
  /** Host names the Host header may carry. Default: the loopback names when bound to loopback, else any. */
  allowedHosts?: string[];
  /** /readyz's check of the upstream. Default: the model's own `ready()` when it has one. */
  readinessCheck?: (signal: AbortSignal) => Promise<void>;
  /** Structured log sink; default: one JSON line per entry on stderr. */
  log?: (entry: LogEntry) => void;
}

export interface ProxyServer {
  /** Root URL, e.g. "http://127.0.0.1:8787" (/healthz lives here). */
  url: string;
  /** url + "/v1": what an OpenAI client takes as baseURL. */
  baseURL: string;
  port: number;
  /** In-flight chat completions. */
  inflight(): number;
  /** Stops accepting, lets in-flight requests finish (up to shutdownGraceMs), then closes. Idempotent. */
  close(): Promise<void>;
}

/** startProxyServer refused its options (e.g. a public interface without a token). */
export class ProxyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProxyConfigError";
  }
}

/** Bytes a response may have queued for a client that does not read, before it is cut off. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** A /readyz answer is reused this long, so the endpoint cannot be used to flood the upstream. */
const READY_CACHE_MS = 2000;
const READY_TIMEOUT_MS = 5000;

let requestCounter = 0;
const requestIdPrefix = randomBytes(4).toString("hex");

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const host = options.host ?? "127.0.0.1";
  const token = options.token?.trim();
  if (options.token !== undefined && !token) throw new ProxyConfigError("the token is empty");
  if (!token && !options.insecure && !isLoopbackHost(host)) {
    throw new ProxyConfigError(`refusing to listen on ${host} without a token: anyone who can reach it could use the upstream; set a token (or insecure: true)`);
  }
  const tokenHash = token ? sha256(token) : undefined;
  const cac = options.cac ?? {};
  const settings: ChatSettings = {
    model: options.model,
    cac,
    modelName: options.modelName ?? options.model.id,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    bodyTimeoutMs: options.bodyTimeoutMs ?? 10_000,
    maxConcurrent: options.maxConcurrent ?? 64,
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    requestTimeoutMs: options.requestTimeoutMs ?? 300_000,
    writeTimeoutMs: options.writeTimeoutMs ?? 30_000,
    maxBufferedBytes: MAX_BUFFERED_BYTES,
    allowOverrides: options.allowRequestOverrides ?? false,
    maxRounds: options.maxRounds ?? 3,
    maxTokens: options.maxTokens ?? cac.generation?.maxTokens ?? DEFAULT_TURN_MAX_TOKENS,
  };
  const shutdownGraceMs = options.shutdownGraceMs ?? 30_000;
  const guards = {
    allowedOrigins: new Set((options.allowedOrigins ?? []).map((o) => o.trim().toLowerCase().replace(/\/$/, ""))),
    allowedHosts: options.allowedHosts
      ? new Set(options.allowedHosts.map((h) => h.trim().toLowerCase()))
      : isLoopbackHost(host)
        ? new Set(["localhost", "127.0.0.1", "::1", host.replace(/^\[|\]$/g, "").toLowerCase()])
        : undefined,
  };
  const readinessCheck =
    options.readinessCheck ??
    (typeof (options.model as { ready?: unknown }).ready === "function"
      ? (signal: AbortSignal) => (options.model as unknown as { ready(s: AbortSignal): Promise<void> }).ready(signal)
      : undefined);

  const sink =
    options.log ??
    ((entry: LogEntry) => {
      process.stderr.write(JSON.stringify(entry) + "\n");
    });
  const log = (entry: LogEntry) => {
    // Error texts can carry credentials from URLs or upstream messages; scrub before they are kept.
    for (const k of ["error", "stack"]) if (typeof entry[k] === "string") entry[k] = redactSecrets(entry[k] as string);
    try {
      sink({ ts: new Date().toISOString(), ...entry });
    } catch {
      // A broken log sink must not take requests down.
    }
  };

  const inflight = new Set<Inflight>();
  let closing = false;
  const state: ChatState = { inflight, reading: new Set(), closing: () => closing };

  function sendJson(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
    if (res.headersSent || res.destroyed) return;
    const h: Record<string, string> = { "content-type": "application/json", ...headers };
    if (closing) h.connection = "close";
    res.writeHead(status, h);
    res.end(body);
  }

  let ready: { at: number; result: Promise<string | undefined> } | undefined;
  /** undefined when ready, else a short reason code. */
  function checkReady(): Promise<string | undefined> {
    if (!readinessCheck) return Promise.resolve(undefined);
    if (ready && performance.now() - ready.at < READY_CACHE_MS) return ready.result;
    const result = readinessCheck(AbortSignal.timeout(READY_TIMEOUT_MS)).then(
      () => undefined,
      (e: unknown) => (e instanceof UpstreamError ? e.code : "upstream_unavailable"),
    );
    ready = { at: performance.now(), result };
    return result;
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse) {
    const t0 = performance.now();
    const id = `${requestIdPrefix}-${(++requestCounter).toString(36)}`;
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const logEntry: LogEntry = { level: "info", event: "request", id, method: req.method, path, remote: req.socket.remoteAddress };
    const extraHeaders: Record<string, string> = {};
    try {
      const origin = checkBrowserGuards(req, guards);
      if (origin) Object.assign(extraHeaders, { "access-control-allow-origin": origin, vary: "Origin" });
      if (path === "/healthz" || path === "/readyz") {
        if (req.method !== "GET") throw invalidRequest(405, "use GET", "method_not_allowed");
        let status = closing ? 503 : 200;
        let body: Record<string, unknown>;
        if (path === "/healthz") body = { status: closing ? "shutting_down" : "ok", inflight: inflight.size, model: settings.modelName };
        else {
          const reason = closing ? "server_shutting_down" : await checkReady();
          if (reason) status = 503;
          body = reason ? { status: "unready", reason } : { status: "ready", upstream: readinessCheck ? "ok" : "unchecked" };
        }
        sendJson(res, status, JSON.stringify(body), extraHeaders);
        logEntry.status = status;
        return;
      }
      if (path !== "/v1/models" && path !== "/v1/chat/completions") {
        throw invalidRequest(404, `no route ${String(req.method).slice(0, 16)} ${path.slice(0, 200)}`, "not_found");
      }
      if (req.method === "OPTIONS" && origin) {
        // A CORS preflight from an allowed origin.
        res.writeHead(204, {
          ...extraHeaders,
          "access-control-allow-methods": "GET, POST",
          "access-control-allow-headers": "authorization, content-type",
          "access-control-max-age": "600",
        });
        res.end();
        logEntry.status = 204;
        return;
      }
      if (tokenHash && !bearerMatches(req.headers.authorization, tokenHash)) {
        throw invalidRequest(401, "missing or wrong bearer token (send Authorization: Bearer <token>)", "invalid_api_key", null, { "www-authenticate": "Bearer" });
      }
      if (closing) throw new HttpError(503, "the server is shutting down", "server_error", "server_shutting_down", null, { "retry-after": "1" });
      if (path === "/v1/models") {
        if (req.method !== "GET") throw invalidRequest(405, "use GET", "method_not_allowed");
        sendJson(res, 200, JSON.stringify({ object: "list", data: [{ id: settings.modelName, object: "model", created: 0, owned_by: "selfcorrect" }] }), extraHeaders);
        logEntry.status = 200;
        return;
      }
      if (req.method !== "POST") throw invalidRequest(405, "use POST", "method_not_allowed");
      await handleChat(settings, state, req, res, id, t0, logEntry);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, "internal error", "server_error", "internal_error");
      if (!(e instanceof HttpError)) logEntry.stack = (e as Error)?.stack ?? String(e);
      logEntry.status = err.status;
      logEntry.error_type = err.type;
      logEntry.error = err.message;
      if (err.status >= 500) logEntry.level = "error";
      else if (err.status !== 499) logEntry.level = "warn";
      // A refused request whose body was never read: do not spend time draining it for a keep-alive.
      const bodyPending = !req.complete && (Number(req.headers["content-length"]) > 0 || req.headers["transfer-encoding"] !== undefined);
      if (bodyPending && !res.headersSent) {
        extraHeaders.connection = "close";
        res.once("finish", () => req.destroy());
      }
      // 499: the client is gone; nothing to send.
      if (err.status !== 499) sendJson(res, err.status, errorBody(err), { "x-request-id": id, ...extraHeaders, ...err.headers });
    } finally {
      logEntry.ms = Math.round((performance.now() - t0) * 100) / 100;
      log(logEntry);
    }
  }

  const server = createLimitedServer(
    (req, res) => {
      route(req, res).catch((e) => {
        // route() handles its own errors; this is the last line of defence against an unhandled rejection.
        log({ level: "error", event: "unhandled", error: String((e as Error)?.stack ?? e) });
        if (!res.headersSent) sendJson(res, 500, errorBody(new HttpError(500, "internal error", "server_error", "internal_error")));
        else res.destroy();
      });
    },
    {
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      bodyTimeoutMs: settings.bodyTimeoutMs,
      maxHeaderBytes: options.maxHeaderBytes ?? 16 * 1024,
      maxConnections: options.maxConnections ?? 256,
      keepAliveTimeoutMs: 5000,
    },
    log,
  );

  const address = await listen(server, options.port ?? 0, host, log);
  const hostForUrl = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}`;
  log({
    level: "info",
    event: "listening",
    url,
    model: settings.modelName,
    auth: Boolean(tokenHash),
    max_concurrent: settings.maxConcurrent,
    max_connections: server.maxConnections,
    request_overrides: settings.allowOverrides,
  });

  let closePromise: Promise<void> | undefined;
  function close(): Promise<void> {
    if (closePromise) return closePromise;
    closing = true;
    closePromise = (async () => {
      log({ level: "info", event: "shutdown", inflight: inflight.size });
      await shutdown(server, {
        graceMs: shutdownGraceMs,
        inflight: () => [...inflight].map((i) => i.done),
        abortInflight: () => {
          for (const i of inflight) i.abort("shutdown");
        },
        abortReading: () => {
          for (const r of state.reading) r.abort();
        },
      });
      log({ level: "info", event: "closed" });
    })();
    return closePromise;
  }

  return { url, baseURL: `${url}/v1`, port: address.port, inflight: () => inflight.size, close };
}
