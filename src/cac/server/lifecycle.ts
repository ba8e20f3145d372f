/**
 * The proxy's server lifecycle: an http.Server with limits on connections, header size and header
 * time; listening; and a graceful shutdown that cannot be held open by a client.
 */
import { sleep } from "../../util/sleep.js";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type Log = (entry: Record<string, unknown>) => void;

export interface ServerLimits {
  /** All headers of a request must arrive within this time (408 after it; idle new connections too). */
  headersTimeoutMs: number;
  /** The body must arrive within this time after the headers. */
  bodyTimeoutMs: number;
  /** Larger request headers get 431. */
  maxHeaderBytes: number;
  /** Open connections at once; the ones above it are closed as they arrive. */
  maxConnections: number;
  /** How long an idle keep-alive connection is kept. */
  keepAliveTimeoutMs: number;
}

/** Status lines for the errors Node's parser reports before a request exists. */
function clientErrorStatus(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return "431 Request Header Fields Too Large";
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return "408 Request Timeout";
    default:
      return "400 Bad Request";
  }
}

export function createLimitedServer(handler: http.RequestListener, limits: ServerLimits, log: Log): http.Server {
  const server = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      // Node's own backstop for header + body; our body timer answers first with a JSON 408.
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs + 1000,
      // Node checks the two timeouts above on this period (30 s by default, which let a half-sent
      // request live 30 s past its deadline).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(`HTTP/1.1 ${clientErrorStatus(err)}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
  // Connections refused at maxConnections: summarised, at most one log line a second.
  let dropped = 0;
  server.on("drop", () => {
    if (dropped++ > 0) return;
    setTimeout(() => {
      log({ level: "warn", event: "connections_dropped", count: dropped, max_connections: limits.maxConnections });
      dropped = 0;
    }, 1000).unref();
  });
  return server;
}

/** Listens; afterwards server errors (EMFILE on accept, ...) are logged, never thrown into the process. */
export async function listen(server: http.Server, port: number, host: string, log: Log): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e: NodeJS.ErrnoException) => log({ level: "error", event: "server_error", code: e.code ?? null, error: e.message }));
  return server.address() as AddressInfo;
}

export interface ShutdownPlan {
  graceMs: number;
  /** Promises of the work in flight (chat completions being answered). */
  inflight(): Promise<void>[];
  /** Aborts all work in flight; called when the grace period is over. */
  abortInflight(): void;
  /** Aborts requests that are still sending their body: they were not accepted for work yet. */
  abortReading(): void;
}

/**
 * Stops accepting, lets the work in flight finish for up to graceMs, then aborts it and closes every
 * connection, so that a stalled client (a body that never ends, a socket that never reads) cannot hold
 * the process open beyond graceMs plus a moment.
 */
export async function shutdown(server: http.Server, plan: ShutdownPlan): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  plan.abortReading();
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), plan.graceMs)));
  const outcome = await Promise.race([Promise.all(plan.inflight()).then(() => "done" as const), graceOver]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    plan.abortInflight();
    // Aborted work ends promptly; a response stuck behind an unread socket is cut below.
    await Promise.race([Promise.all(plan.inflight()), sleep(500)]);
  }
  server.closeIdleConnections();
  // What is still open is a connection with no work behind it (a half-sent request, an unread
  // response): end it.
  const cut = setTimeout(() => server.closeAllConnections(), 100);
  await closed;
  clearTimeout(cut);
}
