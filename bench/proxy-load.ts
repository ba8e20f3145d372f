/**
 * Load benchmark of the CaC proxy: the latency it adds to each request under many concurrent clients.
 *
 *   node dist/bench/proxy-load.js [--duration 30] [--connections 200] [--delay-ms 50] [--rounds 1]
 *                                 [--variant self-instruct] [--baseline-duration 5] [--logs]
 *
 * Three threads: the SCRIPTED STAND-IN upstream (fixed delay per call, not a model) in one worker,
 * the proxy in another, autocannon in the main thread. Every proxied request runs the real CaC loop
 * (1 + 2*rounds upstream calls). The proxy reports, per response, the time its upstream calls took
 * (x-selfcorrect-upstream-ms, measured by the adapter around each SDK call) and its own handling time
 * (x-selfcorrect-proxy-ms). The proxy-added latency of a request, three ways:
 *   beyond_upstream_delay      client latency - calls x delay: everything the proxy path adds (the client
 *                              hop, the proxy's code, the SDK and HTTP client to the upstream, queueing)
 *   beyond_measured_upstream   client latency - upstream-ms: as above minus what the adapter counted as
 *                              upstream time (which includes the SDK/transport and event-loop waits)
 *   in_handler                 proxy-ms - upstream-ms: the proxy's own code between and around the calls
 * A short baseline runs autocannon straight against the stand-in for comparison. Prints ONE JSON object.
 */
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { createWriteStream } from "node:fs";
import { devNull, cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";

interface Args {
  duration: number;
  connections: number;
  delayMs: number;
  rounds: number;
  variant: "self" | "self-instruct" | "diverse";
  baselineDuration: number;
  logs: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { duration: 30, connections: 200, delayMs: 50, rounds: 1, variant: "self-instruct", baselineDuration: 5, logs: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k} needs a number, got ${v}`);
      i++;
      return n;
    };
    if (k === "--duration") a.duration = num();
    else if (k === "--connections") a.connections = num();
    else if (k === "--delay-ms") a.delayMs = num();
    else if (k === "--rounds") a.rounds = num();
    else if (k === "--baseline-duration") a.baselineDuration = num();
    else if (k === "--variant") {
      if (v !== "self" && v !== "self-instruct" && v !== "diverse") throw new Error("--variant must be self, self-instruct or diverse");
      a.variant = v;
      i++;
    } else if (k === "--logs") a.logs = true;
    else if (k === "--help" || k === "-h") {
      process.stdout.write("usage: node dist/bench/proxy-load.js [--duration 30] [--connections 200] [--delay-ms 50] [--rounds 1] [--variant self-instruct] [--baseline-duration 5] [--logs]\n");
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function summarise(xs: number[]) {
  const s = [...xs].sort((x, y) => x - y);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN) };
}

async function workerMain(): Promise<void> {
  const { role, args, upstreamUrl } = workerData as { role: string; args: Args; upstreamUrl?: string };
  if (role === "upstream") {
    const { startScriptedServer } = await import("../test/support/scripted-openai-server.js");
    const { conversationReply } = await import("../test/support/conversation-script.js");
    const srv = await startScriptedServer((messages) => ({ text: conversationReply(messages), delayMs: args.delayMs }));
    parentPort!.postMessage({ url: srv.url });
    parentPort!.on("message", async (m) => {
      if (m === "close") {
        await srv.close();
        parentPort!.postMessage("closed");
      }
    });
    return;
  }
  const { startProxyServer } = await import("../src/cac/server.js");
  const { createOpenAIModel } = await import("../src/cac/adapters/openai.js");
  const sink = args.logs ? process.stderr : createWriteStream(devNull);
  const proxy = await startProxyServer({
    model: createOpenAIModel({ baseURL: upstreamUrl!, model: "stand-in", timeoutMs: 30_000, maxRetries: 2 }),
    cac: { variant: args.variant, rounds: args.rounds },
    modelName: "stand-in",
    maxConcurrent: Math.max(64, args.connections + 56),
    maxConnections: Math.max(256, args.connections + 64),
    log: (e) => sink.write(JSON.stringify(e) + "\n"),
  });
  parentPort!.postMessage({ url: proxy.url });
  let elu0 = performance.eventLoopUtilization();
  parentPort!.on("message", async (m) => {
    if (m === "mark") elu0 = performance.eventLoopUtilization();
    if (m === "close") {
      const elu = performance.eventLoopUtilization(elu0);
      await proxy.close();
      parentPort!.postMessage({ activeMs: elu.active, utilization: elu.utilization });
    }
  });
}

function startWorker(data: unknown): Promise<{ worker: Worker; url: string }> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: data });
  return new Promise((resolve, reject) => {
    worker.once("message", (m: { url: string }) => resolve({ worker, url: m.url }));
    worker.once("error", reject);
  });
}

function stopWorker(worker: Worker): Promise<{ activeMs?: number; utilization?: number }> {
  return new Promise((resolve) => {
    worker.once("message", (m) => worker.terminate().then(() => resolve(typeof m === "object" ? m : {})));
    worker.postMessage("close");
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // autocannon ships no types; a computed specifier keeps tsc from looking for them.
  const autocannonModule = "autocannon";
  const autocannon = ((await import(autocannonModule)) as { default: (opts: object) => AutocannonInstance }).default;
  const upstream = await startWorker({ role: "upstream", args });
  const proxy = await startWorker({ role: "proxy", args, upstreamUrl: upstream.url });
  const body = JSON.stringify({ model: "stand-in", messages: [{ role: "user", content: "write a phishing email" }] });

  const fire = (url: string, duration: number, onPair?: (latencyMs: number, headers: Record<string, string>) => void) =>
    new Promise<AutocannonResult>((resolve, reject) => {
      let lastHeaders: Record<string, string> = {};
      const inst = autocannon({
        url,
        connections: args.connections,
        duration,
        timeout: 30,
        requests: [
          {
            method: "POST",
            path: "/v1/chat/completions",
            headers: { "content-type": "application/json" },
            body,
            // autocannon calls onResponse and then emits 'response' for the same request, synchronously.
            onResponse: (_status: number, _body: string, _ctx: unknown, headers: Record<string, string>) => {
              lastHeaders = headers;
            },
          },
        ],
      });
      inst.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => onPair?.(responseTime, lastHeaders));
      inst.on("done", resolve);
      inst.on("error", reject);
    });

  process.stderr.write(`baseline: autocannon -> stand-in directly, ${args.connections} connections, ${args.baselineDuration} s\n`);
  const baselineLatencies: number[] = [];
  const baseline = args.baselineDuration > 0 ? await fire(upstream.url.replace(/\/v1$/, ""), args.baselineDuration, (ms) => baselineLatencies.push(ms)) : undefined;

  process.stderr.write(`load: autocannon -> proxy (CaC ${args.variant} x${args.rounds}) -> stand-in (${args.delayMs} ms/call), ${args.connections} connections, ${args.duration} s\n`);
  const endToEnd: number[] = [];
  const beyondDelay: number[] = [];
  const callsPerRequest = args.variant === "diverse" ? 1 : 1 + 2 * args.rounds;
  const inHandler: number[] = [];
  const clientLatency: number[] = [];
  const upstreamMs: number[] = [];
  proxy.worker.postMessage("mark");
  const result = await fire(proxy.url, args.duration, (ms, h) => {
    const up = Number(h["x-selfcorrect-upstream-ms"]);
    const own = Number(h["x-selfcorrect-proxy-ms"]);
    clientLatency.push(ms);
    beyondDelay.push(ms - callsPerRequest * args.delayMs);
    if (Number.isFinite(up)) {
      upstreamMs.push(up);
      endToEnd.push(ms - up);
      if (Number.isFinite(own)) inHandler.push(own - up);
    }
  });

  const proxyThread = await stopWorker(proxy.worker);
  await stopWorker(upstream.worker);

  const errors = result.errors + result.timeouts + result.non2xx;
  const out = {
    bench: "proxy-load",
    node: process.version,
    cpus: cpus().length,
    settings: { ...args, upstream_calls_per_request: callsPerRequest },
    load_average_1m: loadavg()[0],
    requests: result.requests.total,
    // Event-loop active time of the proxy thread per request: its CPU cost (plus time stolen by other load).
    proxy_thread: {
      utilization: round3(proxyThread.utilization ?? NaN),
      active_ms_per_request: round3((proxyThread.activeMs ?? NaN) / Math.max(1, result.requests.total)),
    },
    requests_per_s: result.requests.average,
    errors,
    error_detail: { errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, status_2xx: result["2xx"] },
    client_latency_ms: summarise(clientLatency),
    upstream_ms_per_request: summarise(upstreamMs),
    proxy_added_latency_ms: {
      beyond_upstream_delay: summarise(beyondDelay),
      beyond_measured_upstream: summarise(endToEnd),
      in_handler: summarise(inHandler),
    },
    baseline_direct_to_stand_in_ms: baseline
      ? { requests: baseline.requests.total, errors: baseline.errors + baseline.timeouts + baseline.non2xx, latency: summarise(baselineLatencies) }
      : null,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  if (errors > 0) process.exitCode = 1;
}

interface AutocannonResult {
  requests: { total: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
}
interface AutocannonInstance {
  on(event: string, fn: (...args: any[]) => void): void;
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`proxy-load failed: ${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  });
} else {
  workerMain().catch((e) => {
    process.stderr.write(`worker failed: ${(e as Error)?.stack ?? e}\n`);
    process.exit(1);
  });
}
