/**
 * `selfcorrect view`: serves the web app over eval output and lab run directories. Flags only; the
 * server is src/view/server.ts.
 */
import { spawn } from "node:child_process";
import type { Command } from "commander";
import { z } from "zod";
import { startViewServer } from "../../view/server.js";
import { flag, parseFlags } from "../flags.js";

const viewFlags = z.object({
  port: flag.int("--port", 0, 65535).default(8790),
  host: flag.text("--host").default("127.0.0.1"),
  token: flag.text("--token").optional(),
  open: flag.bool(),
  json: flag.bool(),
});

/** The desktop's URL opener; a failure to open is not an error of the server. */
function openInBrowser(url: string): void {
  const cmd = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(cmd, [url], { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`selfcorrect view: could not start ${cmd}; open ${url} yourself\n`));
  child.unref();
}

export function registerViewCommand(parent: Command): void {
  parent
    .command("view")
    .description("serve a local web app over eval runs and lab runs: metrics with intervals, items, CaC traces, side-by-side runs, live progress, lab charts")
    .argument("[dirs...]", "eval output directories, lab run directories, or folders holding them (default: found under the working directory)")
    .option("--port <n>", "port to listen on (0 = any free port)", "8790")
    .option("--host <h>", "interface to bind; other than loopback needs --token", "127.0.0.1")
    .option("--token <t>", "require this token on every page and API call (default: $SELFCORRECT_VIEW_TOKEN)")
    .option("--open", "open the app in the default browser")
    .option("--json", "print one JSON line {url, port, dirs} on stdout once listening")
    .addHelpText(
      "after",
      `
Examples:
  selfcorrect view                               (every eval/lab directory under .)
  selfcorrect view runs/eval-cac runs/lab/quick --port 8790
  SELFCORRECT_VIEW_TOKEN=long-secret selfcorrect view --host 0.0.0.0

The JSON API (GET /api/runs, /api/runs/<id>/items, /api/compare, /api/lab, ...) is described in docs/view.md.`,
    )
    .action(async (dirs: string[], raw: Record<string, unknown>) => {
      const f = parseFlags(viewFlags, { ...raw, token: raw.token ?? (process.env.SELFCORRECT_VIEW_TOKEN || undefined) });
      const server = await startViewServer({ dirs, host: f.host, port: f.port, ...(f.token ? { token: f.token } : {}) });
      const evalDirs = server.dirs.filter((d) => d.eval).length;
      const labDirs = server.dirs.filter((d) => d.lab).length;
      process.stderr.write(`selfcorrect view: ${server.url} (${evalDirs} eval and ${labDirs} lab director${labDirs === 1 ? "y" : "ies"}${f.token ? "; token required" : ""})\n`);
      if (server.dirs.length === 0) process.stderr.write("selfcorrect view: no eval or lab directories found; give them as arguments\n");
      if (f.json) process.stdout.write(JSON.stringify({ url: server.url, port: server.port, dirs: server.dirs.map((d) => d.path) }) + "\n");
      if (f.open) openInBrowser(f.token ? `${server.url}?token=${encodeURIComponent(f.token)}` : server.url);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
          server.close().finally(resolve);
        };
        process.on("SIGTERM", stop);
        process.on("SIGINT", stop);
      });
    });
}
