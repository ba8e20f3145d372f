/**
 * `selfcorrect lab verify-reference`: the engine against a PyTorch reference fixture. A thin layer:
 * the check lives in src/lab/reference.ts.
 */
import type { Command } from "commander";
import { z } from "zod";
import { ExitCode } from "../../util/errors.js";
import { flag, parseFlags } from "../flags.js";
import { TOLERANCES, loadFixture, verifyReference, withinTolerance } from "../../lab/reference.js";

const verifyFlags = z.object({
  fixture: flag.text("--fixture"),
  threads: flag.int("--threads", 1).optional(),
  kernels: flag.choice("--kernels", ["wasm", "reference"]).default("wasm"),
  json: flag.bool(),
});

export function registerVerifyReference(lab: Command): void {
  lab
    .command("verify-reference")
    .description(
      "check the engine against a PyTorch reference fixture (forward, Plackett-Luce loss, every gradient) in float32; exit 1 if out of tolerance",
    )
    .requiredOption("--fixture <file>", "fixture JSON written by make_fixture.py (e.g. test/engine-fixtures/ica_gpt_tiny.json)")
    .option("--threads <n>", "worker threads (default 1; the fixture's batch is split across them)")
    .option("--kernels <kind>", "kernel implementation: wasm, or reference (plain JS, slow)", "wasm")
    .option("--json", "print one JSON object")
    .action(async (raw: object) => {
      const flags = parseFlags(verifyFlags, raw);
      const fixture = loadFixture(flags.fixture);
      const r = await verifyReference(fixture, { threads: flags.threads, kernels: flags.kernels });
      const ok = withinTolerance(r);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...r, ok, tolerances: TOLERANCES }) + "\n");
      } else {
        process.stdout.write(
          [
            `fixture ${flags.fixture}: ${r.params} parameters, ${r.threads} thread(s), ${r.kernels} kernels`,
            `loss ${r.loss} (reference ${r.loss_ref}): relative error ${r.loss_rel_err.toExponential(2)} (tolerance ${TOLERANCES.loss_rel_err})`,
            `predictions: max abs error ${r.pred_max_abs_err.toExponential(2)}`,
            `gradients: max relative error ${r.grad_max_rel_err.toExponential(2)} at ${r.grad_worst_param} (tolerance ${TOLERANCES.grad_max_rel_err})`,
            ok ? "OK" : "FAILED: outside tolerance",
          ].join("\n") + "\n",
        );
      }
      if (!ok) process.exitCode = ExitCode.failure;
    });
}
