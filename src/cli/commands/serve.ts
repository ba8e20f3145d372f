import type { Command } from "commander";
import { z } from "zod";
import { addCacOptions, addModelOptions, cacOptionsForModel, modelFileName, modelFromOptions, type CacFlags, type ModelFlags } from "../options.js";
import { flag, parseFlags } from "../flags.js";
import { startProxyServer, type ProxyServer } from "../../cac/server.js";
import { isLoopbackHost } from "../../cac/server/http.js";
import { redactSecrets } from "../../cac/errors.js";
import { UserError } from "../../util/errors.js";

interface ServeFlags extends ModelFlags, CacFlags {
  token?: string;
  modelName?: string;
}

const serveSchema = z.object({
  port: flag.int("--port", 0, 65535),
  host: flag.text("--host"),
  insecure: flag.bool(),
  maxConcurrent: flag.int("--max-concurrent", 1, 100_000),
  maxConnections: flag.int("--max-connections", 1, 1_000_000),
  maxBodyBytes: flag.int("--max-body-bytes", 1024, 1024 ** 3),
  maxHeaderBytes: flag.int("--max-header-bytes", 1024, 1024 * 1024),
  headersTimeoutMs: flag.int("--headers-timeout-ms", 100, 600_000),
  bodyTimeoutMs: flag.int("--body-timeout-ms", 100, 3_600_000),
  requestTimeoutMs: flag.int("--request-timeout-ms", 1, 86_400_000),
  writeTimeoutMs: flag.int("--write-timeout-ms", 100, 3_600_000),
  shutdownGraceMs: flag.int("--shutdown-grace-ms", 0, 3_600_000),
  allowRequestOverrides: flag.bool(),
  maxRounds: flag.int("--max-rounds", 0, 10),
  allowOrigin: flag.list("--allow-origin").default([]),
  allowHost: flag.list("--allow-host").optional(),
});

/** `selfcorrect serve`: the OpenAI-compatible CaC proxy. */
export function registerServeCommand(parent: Command): void {
  const cmd = parent
    .command("serve")
    .description(
      "Serve an OpenAI-compatible API (/v1/chat/completions, /v1/models, /healthz, /readyz) that applies Checking-as-Context in front of any model; responses carry the trace under `selfcorrect`.",
    )
    .option("--port <n>", "port to listen on (0 = any free port)", "8787")
    .option("--host <h>", "interface to bind; other than loopback needs --token (or --insecure)", "127.0.0.1")
    .option("--token <t>", "require Authorization: Bearer <t> (default: $SELFCORRECT_SERVER_TOKEN; prefer the env var, flags show in ps)")
    .option("--insecure", "allow a non-loopback --host without a token (anyone who reaches it can spend your upstream)")
    .option("--max-concurrent <n>", "chat completions served at once; more get 429 + Retry-After", "64")
    .option("--max-connections <n>", "open connections at once; more are closed on arrival (keep below `ulimit -n`)", "256")
    .option("--max-body-bytes <n>", "request size limit (413 above it)", String(1024 * 1024))
    .option("--max-header-bytes <n>", "request header size limit (431 above it)", String(16 * 1024))
    .option("--headers-timeout-ms <n>", "request headers must arrive within this time (408 after it)", "10000")
    .option("--body-timeout-ms <n>", "the request body must arrive within this time after the headers (408 after it)", "10000")
    .option("--request-timeout-ms <n>", "deadline for one whole CaC request, all its upstream calls (504 after it)", "300000")
    .option("--write-timeout-ms <n>", "a client that reads none of its response for this long is disconnected", "30000")
    .option("--shutdown-grace-ms <n>", "on SIGTERM/SIGINT, how long in-flight requests may finish", "30000")
    .option("--allow-request-overrides", "accept the per-request body field `selfcorrect` (variant, rounds, check_prompt)")
    .option("--max-rounds <n>", "with --allow-request-overrides: the most rounds a request may ask for", "3")
    .option("--allow-origin <list>", "comma-separated origins (https://app.example) whose browser requests are served; default none")
    .option("--allow-host <list>", "comma-separated host names the Host header may carry (default: loopback names on a loopback bind, else any)")
    .option("--model-name <name>", "model id advertised by /v1/models (default: --model or the GGUF file's name)");
  addModelOptions(cmd);
  addCacOptions(cmd);
  cmd.addHelpText(
    "after",
    `
--max-tokens is a ceiling: a request's max_tokens may lower it, never raise it.

Examples:
  selfcorrect serve --base-url http://127.0.0.1:8080/v1 --model llama-3-8b --port 8787
  SELFCORRECT_SERVER_TOKEN=secret selfcorrect serve --gguf ./model.gguf --variant self --rounds 2
  selfcorrect serve                      (the built-in model, offline, on the engine)

Then point any OpenAI client at http://127.0.0.1:8787/v1. With "stream": true the checks run first and
the final answer streams live. With --allow-request-overrides a request may change the CaC settings with
a body field "selfcorrect": {"variant": "self", "rounds": 2, "check_prompt": "paper-3"}.
Logs are JSON lines on stderr. SIGTERM/SIGINT stop accepting and let in-flight requests finish.
Before exposing the server beyond this machine, read docs/security.md.`,
  );
  cmd.action(async (flags: ServeFlags, command: Command) => {
    const s = parseFlags(serveSchema, flags);
    const cac = cacOptionsForModel(flags, command);
    const rawToken = flags.token ?? process.env.SELFCORRECT_SERVER_TOKEN;
    const token = rawToken?.trim() || undefined;
    if (token !== undefined && token.length < 8) throw new UserError("--token must be at least 8 characters (or leave it out for no auth)");
    if (!token && !s.insecure && !isLoopbackHost(s.host)) {
      throw new UserError(
        `--host ${s.host} is reachable from other machines: set a token (--token or $SELFCORRECT_SERVER_TOKEN), or add --insecure to serve it to anyone who can connect`,
      );
    }
    const model = await modelFromOptions(flags);
    const modelName = flags.modelName ?? modelFileName(flags) ?? model.id;
    let server: ProxyServer;
    try {
      server = await startProxyServer({
        model,
        cac,
        host: s.host,
        port: s.port,
        ...(token ? { token } : {}),
        insecure: s.insecure,
        maxConcurrent: s.maxConcurrent,
        maxConnections: s.maxConnections,
        maxBodyBytes: s.maxBodyBytes,
        maxHeaderBytes: s.maxHeaderBytes,
        headersTimeoutMs: s.headersTimeoutMs,
        bodyTimeoutMs: s.bodyTimeoutMs,
        requestTimeoutMs: s.requestTimeoutMs,
        writeTimeoutMs: s.writeTimeoutMs,
        shutdownGraceMs: s.shutdownGraceMs,
        allowRequestOverrides: s.allowRequestOverrides,
        maxRounds: s.maxRounds,
        allowedOrigins: s.allowOrigin,
        ...(s.allowHost ? { allowedHosts: s.allowHost } : {}),
        modelName,
      });
    } catch (e) {
      await model.dispose?.();
      const code = (e as { code?: string }).code;
      if (code === "EADDRINUSE") throw new UserError(`--port ${s.port} is in use on ${s.host}; pick another port (or 0 for any free one)`);
      if (code === "EACCES") throw new UserError(`no permission to listen on ${s.host}:${s.port}; use a port above 1023`);
      throw e;
    }
    const overrides = s.allowRequestOverrides ? `, request overrides up to ${s.maxRounds} rounds` : "";
    process.stderr.write(`selfcorrect serve: ${server.url}/v1 -> ${redactSecrets(model.id)} (CaC ${cac.variant} x${cac.rounds}${overrides})\n`);
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (sig: NodeJS.Signals) => {
        if (stopping) {
          // A second signal: stop waiting for in-flight requests.
          process.exit(130);
        }
        stopping = true;
        process.stderr.write(`selfcorrect serve: ${sig}, finishing ${server.inflight()} in-flight request(s)\n`);
        server
          .close()
          .then(() => model.dispose?.())
          .catch((e) => process.stderr.write(`error during shutdown: ${redactSecrets(String(e))}\n`))
          .finally(() => {
            process.off("SIGTERM", stop);
            process.off("SIGINT", stop);
            resolve();
          });
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
  });
}
