#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ExitCode, UserError } from "../util/errors.js";
import { registerLabCommands } from "./commands/lab.js";
import { registerChatCommand } from "./commands/chat.js";
import { registerServeCommand } from "./commands/serve.js";
import { registerEvalCommands } from "./commands/eval.js";
import { registerDataCommands } from "./commands/data.js";
import { registerLmCommands } from "./commands/lm.js";
import { registerViewCommand } from "./commands/view.js";
import { registerWorkerCommand } from "./commands/worker.js";
import { registerQueueCommands } from "./commands/queue.js";

/** Builds the `selfcorrect` command tree. */
function buildProgram(): Command {
  const program = new Command();
  program
    .name("selfcorrect")
    .description(
      "Self-correction through in-context alignment (Wang et al., NeurIPS 2024).",
    )
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerLabCommands(program);
  registerChatCommand(program);
  registerServeCommand(program);
  registerEvalCommands(program);
  registerDataCommands(program);
  registerLmCommands(program);
  registerViewCommand(program);
  registerWorkerCommand(program);
  registerQueueCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code. */
async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0; parse errors with 1 (mapped to usage).
      return e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (e instanceof UserError) {
      process.stderr.write(`error: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`error: ${err?.stack ?? String(e)}\n`);
    return ExitCode.failure;
  }
}

// This module is only ever the entry point (tests run the CLI as a child process), so it runs at once.
// `selfcorrect ... | head` closes stdout early: that is a normal end, not a crash.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(ExitCode.ok);
  throw e;
});
runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
