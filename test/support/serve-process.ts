/**
 * `selfcorrect serve` as a real child process, for the tests that need a process of its own: memory
 * (RSS), signals, file-descriptor limits. SELFCORRECT_SERVE_CLI may point at another build's
 * dist/src/cli/main.js to measure that build with the same probes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = process.env.SELFCORRECT_SERVE_CLI ?? path.resolve(here, "../../src/cli/main.js");

export interface ServeProcess {
  child: ChildProcess;
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Everything the process wrote to stderr so far (logs, the startup line). */
  stderr(): string;
  /** Resident set size in MB (Linux /proc), or NaN once the process is gone. */
  rssMb(): number;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** SIGKILL if still running, and wait for the exit. */
  kill(): Promise<void>;
}

export interface ServeOptions {
  env?: Record<string, string>;
  /** Run under `ulimit -n <n>` (through bash). */
  ulimitFiles?: number;
  /** How long to wait for the listening line. Default 15 s. */
  startTimeoutMs?: number;
}

export async function startServe(args: string[], o: ServeOptions = {}): Promise<ServeProcess> {
  const node = [process.execPath, CLI, "serve", "--port", "0", ...args];
  const [cmd, argv] = o.ulimitFiles
    ? ["bash", ["-c", `ulimit -n ${o.ulimitFiles} && exec "$@"`, "serve", ...node]]
    : [node[0]!, node.slice(1)];
  const child = spawn(cmd as string, argv as string[], { env: { ...process.env, ...o.env }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (err += d));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("close", (code, signal) => r({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), o.startTimeoutMs ?? 15_000);
    const onData = () => {
      const m = /"event":"listening","url":"([^"]+)"/.exec(err);
      if (m?.[1]) {
        clearTimeout(timer);
        child.stderr!.off("data", onData);
        resolve(m[1]);
      }
    };
    child.stderr!.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`serve exited before listening: ${err}`));
    });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    url,
    port: Number(new URL(url).port),
    stderr: () => err,
    rssMb: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        return m?.[1] ? Number(m[1]) / 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    exited,
    alive,
    async kill() {
      if (alive()) child.kill("SIGKILL");
      await exited;
    },
  };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on its own connection, with exactly the headers given (plus Host unless given). */
export function request(
  url: string,
  o: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      { host: u.hostname, port: u.port, method: o.method ?? "GET", path: o.path ?? "/", headers: o.headers ?? {}, agent: false, setHost: !o.headers?.host },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.setTimeout(o.timeoutMs ?? 30_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(o.body);
  });
}

/** A JSON POST to /v1/chat/completions. */
export function postChat(url: string, body: unknown, headers: Record<string, string> = {}, timeoutMs?: number): Promise<RawResponse> {
  return request(url, {
    method: "POST",
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}
