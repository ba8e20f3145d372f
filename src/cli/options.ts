/**
 * One way to name a model and the CaC settings everywhere (`chat`, `serve`, `eval`):
 *   --base-url URL --model NAME [--api-key KEY]   an OpenAI-compatible endpoint
 *   --gguf PATH [--backend engine|llama-cpp]      a local GGUF file
 *   (none of these)                               the built-in model, models/selfcorrect-world.gguf
 *   --variant self|self-instruct|diverse --rounds R [--check-prompt TEXT|KEY]
 * The key may also come from SELFCORRECT_API_KEY or OPENAI_API_KEY.
 *
 * Here the flags are only defined and turned from text into values; the rules (ranges, which flags go
 * together, defaults) and building the model are the library's (src/cac/model-spec.ts).
 */
import { Option, type Command } from "commander";
import { z } from "zod";
import { flag, parseFlags } from "./flags.js";
import {
  BACKENDS, CAC_VARIANTS, SPEC_DEFAULTS, createModelFromSpec, resolveCacOptions, usesDefaultModel, type DisposableChatModel, type EndpointTransport,
} from "../cac/model-spec.js";
import { worldCacOptions } from "../eval/world-eval.js";
import { DEFAULT_MODEL_ENV, DEFAULT_MODEL_FILE, defaultModelNotice, resolveDefaultModel } from "../cac/default-model.js";
import { CHECK_PROMPTS, DEFAULT_TURN_MAX_TOKENS } from "../cac/presets.js";
import { DEFAULT_MAX_RESPONSE_BYTES } from "../cac/adapters/openai.js";
import type { CaCOptions } from "../cac/types.js";

/** The model flags as commander hands them over. */
export interface ModelFlags {
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  gguf?: string;
  backend?: string;
  maxTokens?: string | number;
  temperature?: string | number;
  timeoutMs?: string | number;
  retries?: string | number;
  contextSize?: string | number;
  maxUpstreamBytes?: string | number;
}

/** The CaC flags as commander hands them over. */
export interface CacFlags {
  variant?: string;
  rounds?: string | number;
  checkPrompt?: string;
  maxTokens?: string | number;
  temperature?: string | number;
}

/** Adds the model flags to a command. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option("--base-url <url>", "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (with --model)")
    .option("--model <name>", "model name at that endpoint")
    .option("--api-key <key>", "API key (default: $SELFCORRECT_API_KEY or $OPENAI_API_KEY)")
    .option("--gguf <path>", `a local GGUF model file (instead of --base-url); with neither, the built-in ${DEFAULT_MODEL_FILE} (or $${DEFAULT_MODEL_ENV})`)
    .addOption(
      new Option(
        "--backend <backend>",
        "what runs a GGUF file: engine (this package's own LM; the default for the built-in model and for files `lm export` wrote) or llama-cpp (node-llama-cpp; the default for any other GGUF)",
      ).choices(BACKENDS),
    )
    .option("--max-tokens <n>", `max new tokens per model call (default ${DEFAULT_TURN_MAX_TOKENS}, as in the paper's code)`)
    .option("--temperature <t>", "sampling temperature (default: the endpoint's / greedy for --gguf and the built-in model)")
    .option("--timeout-ms <ms>", "timeout of one upstream call attempt", String(SPEC_DEFAULTS.timeoutMs))
    .option("--retries <n>", "retries after a failed upstream call (429, 5xx, timeouts, resets, malformed JSON)", String(SPEC_DEFAULTS.retries))
    .option("--context-size <n>", "GGUF on llama-cpp only: KV-cache size in tokens (the engine's context is the model's own)")
    .option("--max-upstream-bytes <n>", `largest upstream response read, in bytes (default ${DEFAULT_MAX_RESPONSE_BYTES}); a larger one fails instead of filling memory`);
}

/** Adds the CaC flags to a command. */
export function addCacOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--variant <variant>", "CaC variant: self (re-ask the query), self-instruct (the paper's Table 1), diverse (cached history backup)")
        .choices(CAC_VARIANTS)
        .default(SPEC_DEFAULTS.variant),
    )
    .option("--rounds <r>", "check/re-answer rounds (0 = no CaC); for diverse the history rounds M (1-3)", String(SPEC_DEFAULTS.rounds))
    .option(
      "--check-prompt <text>",
      `the check prompt, or a preset key (${Object.keys(CHECK_PROMPTS).join(", ")})`,
      SPEC_DEFAULTS.checkPrompt,
    );
}

// Numbers are only read here; their ranges are checked by the library, whose messages name the flag too.
const modelFlags = z.object({
  baseUrl: flag.text("--base-url").optional(),
  model: flag.text("--model").optional(),
  apiKey: z.string().optional(),
  gguf: flag.text("--gguf").optional(),
  backend: flag.choice("--backend", BACKENDS).optional(),
  maxTokens: flag.number("--max-tokens").optional(),
  temperature: flag.number("--temperature").optional(),
  timeoutMs: flag.number("--timeout-ms").optional(),
  retries: flag.number("--retries").optional(),
  contextSize: flag.number("--context-size").optional(),
  maxUpstreamBytes: flag.number("--max-upstream-bytes").optional(),
});

const cacFlags = z.object({
  variant: flag.choice("--variant", CAC_VARIANTS).optional(),
  rounds: flag.number("--rounds").optional(),
  checkPrompt: flag.text("--check-prompt").optional(),
  maxTokens: flag.number("--max-tokens").optional(),
  temperature: flag.number("--temperature").optional(),
});

/**
 * Builds the model the flags name; GGUF backends load lazily. Falling back to the built-in model is
 * said on stderr, so that nobody mistakes its answers for those of a model they meant to name.
 */
export async function modelFromOptions(opts: ModelFlags, transport?: EndpointTransport): Promise<DisposableChatModel> {
  const spec = parseFlags(modelFlags, opts);
  const builtin = usesDefaultModel(spec) ? resolveDefaultModel() : null;
  if (builtin?.present) process.stderr.write(`${defaultModelNotice(builtin)}\n`);
  return createModelFromSpec(spec, transport);
}

/** The model name to advertise (serve's /v1/models): --model, else the GGUF file's name, else undefined. */
export function modelFileName(opts: ModelFlags): string | undefined {
  if (opts.model !== undefined) return opts.model;
  const path = opts.gguf ?? (opts.baseUrl === undefined ? resolveDefaultModel()?.path : undefined);
  return path?.split(/[\\/]/).pop();
}

/** The CaC settings the flags name. --check-prompt takes a preset key or the prompt text itself. */
export function cacOptionsFromOptions(opts: CacFlags): CaCOptions {
  return resolveCacOptions(parseFlags(cacFlags, opts));
}

/** True when the flags name no model, so the built-in one runs. */
export function namesBuiltinModel(opts: ModelFlags): boolean {
  return usesDefaultModel(parseFlags(modelFlags, opts));
}

/**
 * The CaC settings of a command that talks to one model (chat, serve). The built-in model was trained on
 * the world's own check and re-answer turns (docs/world.md), so on it those are the defaults unless
 * --check-prompt is given; the paper's long prompts would be text it has never seen.
 */
export function cacOptionsForModel(opts: CacFlags & ModelFlags, cmd: Command): CaCOptions {
  const cac = cacOptionsFromOptions(opts);
  if (!namesBuiltinModel(opts)) return cac;
  return worldCacOptions(cac, cmd.getOptionValueSource("checkPrompt") === "cli");
}
