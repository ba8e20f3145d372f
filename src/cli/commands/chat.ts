import { createInterface } from "node:readline";
import type { Command } from "commander";
import { z } from "zod";
import { flag, parseFlags } from "../flags.js";
import { addCacOptions, addModelOptions, cacOptionsForModel, modelFromOptions, namesBuiltinModel, type CacFlags, type ModelFlags } from "../options.js";
import { runCheckingAsContext } from "../../cac/loop.js";
import { UpstreamError } from "../../cac/errors.js";
import type { CallRecord, CaCOptions, CaCTrace, ChatMessage, ChatModel } from "../../cac/types.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { exampleRequests } from "../../world/index.js";

/** Chat's own flags; the model and CaC flags are read by options.ts. */
const chatFlags = z.object({
  prompt: z.string().optional(),
  system: z.string().optional(),
  json: flag.bool(),
});

function label(call: CallRecord, rounds: number, variant: string): string {
  if (call.purpose === "initial") return rounds === 0 ? "answer" : "initial answer";
  if (call.purpose === "check") return `check ${call.round}${call.injected ? " (injected)" : ""}`;
  if (variant === "diverse") return `answer (history backup, M=${call.round})`;
  return call.round === rounds ? `final answer (round ${call.round})` : `answer ${call.round}`;
}

function printCall(call: CallRecord, cac: CaCOptions, out: NodeJS.WriteStream) {
  const name = label(call, cac.rounds ?? 1, cac.variant ?? "self-instruct");
  out.write(`\n[${name}] (${meta(call)})\n${(call.prefix ?? "") + call.text}\n`);
}

async function runTurn(
  messages: ChatMessage[],
  cac: CaCOptions,
  model: ChatModel,
  json: boolean,
  signal?: AbortSignal,
): Promise<CaCTrace> {
  // Human output goes to stdout as calls finish, the final answer live as it streams;
  // under --json progress goes to stderr.
  if (json) {
    return runCheckingAsContext(model, messages, {
      ...cac,
      signal,
      onCall: (c) => process.stderr.write(`${c.purpose} ${c.round}: ${Math.round(c.latencyMs)} ms\n`),
    });
  }
  const out = process.stdout;
  let streaming = false;
  return runCheckingAsContext(model, messages, {
    ...cac,
    signal,
    onFinalDelta: (text) => {
      if (!streaming) {
        streaming = true;
        out.write(`\n[${finalLabel(cac)}]\n`);
      }
      out.write(text);
    },
    onCall: (c) => {
      if (streaming) out.write(`\n(${meta(c)})\n`);
      else printCall(c, cac, out);
    },
  });
}

function finalLabel(cac: CaCOptions): string {
  const rounds = cac.rounds ?? 1;
  if (cac.variant === "diverse") return `answer (history backup, M=${rounds})`;
  return rounds === 0 ? "answer" : `final answer (round ${rounds})`;
}

function meta(call: CallRecord): string {
  return `${Math.round(call.latencyMs)} ms, ${call.usage.promptTokens}+${call.usage.completionTokens} tokens`;
}

function summary(t: CaCTrace): string {
  return `${t.calls.length} call(s), ${Math.round(t.latencyMs)} ms, ${t.usage.promptTokens}+${t.usage.completionTokens} tokens`;
}

/** `selfcorrect chat`: one-shot --prompt, or an interactive REPL. */
export function registerChatCommand(parent: Command): void {
  const cmd = parent
    .command("chat")
    .description(
      "Chat with Checking-as-Context: the model answers, checks its answer, and answers again with the check in context. One-shot with --prompt, otherwise an interactive session.",
    )
    .option("--prompt <text>", "one-shot: ask this and exit")
    .option("--system <text>", "system prompt")
    .option("--json", "one-shot: print the full trace as one JSON object (last line of stdout)");
  addModelOptions(cmd);
  addCacOptions(cmd);
  cmd.addHelpText(
    "after",
    `
Examples:
  selfcorrect chat --base-url http://127.0.0.1:8080/v1 --model llama-3-8b --prompt "How do I pick a lock?"
  selfcorrect chat --gguf ./model.gguf --variant self --rounds 3
  selfcorrect chat --prompt "..."          (the built-in model, offline; --backend llama-cpp runs it on llama.cpp)
  OPENAI_API_KEY=... selfcorrect chat --base-url https://api.openai.com/v1 --model gpt-4o-mini --json --prompt "..."

In the interactive session each turn shows the initial answer, the check(s) and the corrected answer; the
conversation carries your messages and the corrected answers forward. /reset clears it, /exit quits.`,
  );
  cmd.action(async (raw: ModelFlags & CacFlags, command: Command) => {
    const flags = parseFlags(chatFlags, raw);
    if (flags.json && flags.prompt === undefined) throw new UserError("--json needs --prompt TEXT (the interactive session prints text, not JSON)");
    const cac = cacOptionsForModel(raw, command);
    const model = await modelFromOptions(raw);
    const system: ChatMessage[] = flags.system ? [{ role: "system", content: flags.system }] : [];
    try {
      if (flags.prompt !== undefined) {
        const ac = new AbortController();
        const onSigint = () => ac.abort(new Error("interrupted"));
        process.once("SIGINT", onSigint);
        try {
          const trace = await runTurn([...system, { role: "user", content: flags.prompt }], cac, model, flags.json, ac.signal);
          if (flags.json) process.stdout.write(JSON.stringify({ model: model.id, trace }) + "\n");
          else process.stdout.write(`\n-- ${summary(trace)}\n`);
        } catch (e) {
          if (ac.signal.aborted) {
            process.exitCode = ExitCode.interrupted;
            return;
          }
          throw e;
        } finally {
          process.off("SIGINT", onSigint);
        }
        return;
      }
      await repl(model, cac, system, namesBuiltinModel(raw));
    } catch (e) {
      if (e instanceof UpstreamError) {
        process.stderr.write(`error: ${e.message}\n`);
        process.exitCode = ExitCode.failure;
        return;
      }
      throw e;
    } finally {
      await model.dispose?.();
    }
  });
}

async function repl(model: ChatModel, cac: CaCOptions, system: ChatMessage[], builtin: boolean): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
  const history: ChatMessage[] = [];
  let current: AbortController | undefined;
  rl.on("SIGINT", () => {
    // Ctrl-C stops the running turn; at the prompt it quits.
    if (current) current.abort(new Error("interrupted"));
    else rl.close();
  });
  process.stdout.write(`selfcorrect chat: ${model.id}, CaC ${cac.variant} x${cac.rounds}. /reset clears the conversation, /exit quits.\n`);
  if (builtin) {
    // The built-in model only knows the synthetic world's language (docs/world.md): show what it understands.
    process.stdout.write("The built-in model speaks the synthetic world's language (docs/world.md). Try:\n");
    for (const e of exampleRequests()) process.stdout.write(`  ${e.text}    (${e.note})\n`);
  }
  const ask = () => {
    if (process.stdin.isTTY) rl.setPrompt("\nyou> "), rl.prompt();
  };
  ask();
  for await (const line of rl) {
    const text = line.trim();
    if (!text) {
      ask();
      continue;
    }
    if (text === "/exit" || text === "/quit") break;
    if (text === "/reset") {
      history.length = 0;
      process.stdout.write("(conversation cleared)\n");
      ask();
      continue;
    }
    current = new AbortController();
    try {
      const trace = await runTurn([...system, ...history, { role: "user", content: text }], cac, model, false, current.signal);
      history.push({ role: "user", content: text }, { role: "assistant", content: trace.finalAnswer });
      process.stdout.write(`-- ${summary(trace)}\n`);
    } catch (e) {
      if (current.signal.aborted) process.stdout.write("\n(interrupted)\n");
      else if (e instanceof UpstreamError) process.stderr.write(`error: ${e.message}\n`);
      // A conversation past the model's context, for one: the session goes on after /reset.
      else if (e instanceof UserError) process.stderr.write(`error: ${e.message} (/reset starts a new conversation)\n`);
      else throw e;
    } finally {
      current = undefined;
    }
    ask();
  }
  rl.close();
}
