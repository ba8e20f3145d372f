/**
 * A model and CaC settings from plain data: what `selfcorrect chat`, `serve` and `eval` build from their
 * flags, and what a caller or a config file can give directly.
 *
 *   const model = await createModelFromSpec({ baseUrl: "http://127.0.0.1:8080/v1", model: "llama-3-8b" });
 *   const trace = await runCheckingAsContext(model, messages, resolveCacOptions({ variant: "self", rounds: 2 }));
 *
 * Every field is named after its CLI flag (baseUrl is --base-url), and every error is a UserError whose
 * message names that flag and the fix, so the CLI can print it as it is.
 *
 * With neither an endpoint nor a GGUF file, the built-in model (default-model.ts) is used when it is
 * installed. A GGUF file runs on the engine or on node-llama-cpp (`backend`); see resolveBackend.
 */
import { z } from "zod";
import { UserError } from "../util/errors.js";
import { createOpenAIModel } from "./adapters/openai.js";
import { engineGgufProblem } from "../engine/gguf/gpt2.js";
import { missingDefaultModel, resolveDefaultModel } from "./default-model.js";
import { DEFAULT_CHECK_PROMPT_KEY, DEFAULT_TURN_MAX_TOKENS, resolveCheckPrompt } from "./presets.js";
import type { CaCOptions, CaCVariant, ChatModel, TurnOptions } from "./types.js";

/** The CaC variants, in the order help texts list them. */
export const CAC_VARIANTS = ["self", "self-instruct", "diverse"] as const satisfies readonly CaCVariant[];

/** The inference paths for a GGUF file: the engine's own LM, or llama.cpp through node-llama-cpp. */
export const BACKENDS = ["engine", "llama-cpp"] as const;
export type Backend = (typeof BACKENDS)[number];

/** Defaults of the model and CaC specs (the CLI shows them in its help). */
export const SPEC_DEFAULTS = {
  timeoutMs: 60_000,
  retries: 2,
  variant: "self-instruct",
  rounds: 1,
  checkPrompt: DEFAULT_CHECK_PROMPT_KEY,
} as const;

/** A whole number in [min, max]; the messages name the flag. */
function wholeNumber(flag: string, min: number, max: number) {
  return z
    .number({ message: `${flag} must be a number` })
    .int({ message: `${flag} must be a whole number` })
    .min(min, { message: `${flag} must be at least ${min}` })
    .max(max, { message: `${flag} must be at most ${max}` });
}

const temperature = z
  .number({ message: "--temperature must be a number" })
  .min(0, { message: "--temperature must be at least 0" })
  .max(2, { message: "--temperature must be at most 2" });
const maxTokens = wholeNumber("--max-tokens", 1, 1_000_000);

const modelSpecSchema = z.strictObject({
  /** An OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1; needs `model`. */
  baseUrl: z
    .string({ message: "--base-url must be a URL" })
    .refine((u) => /^https?:\/\/[^/]+/.test(u), { message: "--base-url must be an http(s) URL such as http://127.0.0.1:8080/v1" })
    .optional(),
  /** The model id at that endpoint. */
  model: z.string({ message: "--model must be a string" }).min(1, { message: "--model must not be empty" }).optional(),
  /** Default: $SELFCORRECT_API_KEY, then $OPENAI_API_KEY (none is fine for local servers). */
  apiKey: z.string({ message: "--api-key must be a string" }).optional(),
  /** A local GGUF file, run with node-llama-cpp; instead of baseUrl + model. */
  gguf: z.string({ message: "--gguf needs a file path" }).min(1, { message: "--gguf needs a file path" }).optional(),
  /**
   * Which runs a GGUF file (--gguf or the built-in model). Default: the engine for the built-in model and
   * for files the engine can run (byte-level gpt2 written by `selfcorrect lm export`), else llama-cpp.
   */
  backend: z.enum(BACKENDS, { message: "--backend must be engine or llama-cpp" }).optional(),
  /** Max new tokens per call (the CaC loop's own turn budget wins over it). */
  maxTokens: maxTokens.optional(),
  /** Default: the endpoint's; greedy (0) for gguf. */
  temperature: temperature.optional(),
  /** One upstream attempt. */
  timeoutMs: wholeNumber("--timeout-ms", 1, 3_600_000).default(SPEC_DEFAULTS.timeoutMs),
  /** Retries after a failed upstream call. */
  retries: wholeNumber("--retries", 0, 20).default(SPEC_DEFAULTS.retries),
  /** gguf only: the KV-cache size in tokens. */
  contextSize: wholeNumber("--context-size", 16, 1_048_576).optional(),
  /** Endpoint only: the largest upstream response read, in bytes; a larger one fails as upstream_too_large. */
  maxUpstreamBytes: wholeNumber("--max-upstream-bytes", 1024, 2 ** 31 - 1).optional(),
});

const cacSpecSchema = z.strictObject({
  variant: z.enum(CAC_VARIANTS, { message: "--variant must be self, self-instruct or diverse" }).default(SPEC_DEFAULTS.variant),
  /** Check/re-answer rounds (0 = the plain answer); for diverse the history rounds M, 1 to 3. */
  rounds: wholeNumber("--rounds", 0, 10).default(SPEC_DEFAULTS.rounds),
  /** A preset key of CHECK_PROMPTS (presets.ts) or the prompt text itself. */
  checkPrompt: z
    .string({ message: "--check-prompt must be a preset key or the prompt text" })
    .min(1, { message: "--check-prompt must not be empty" })
    .default(SPEC_DEFAULTS.checkPrompt),
  /** Max new tokens per turn; default the paper's 64. */
  maxTokens: maxTokens.optional(),
  temperature: temperature.optional(),
});

/** Which model to run: baseUrl + model (an OpenAI-compatible endpoint) or gguf (a local file). */
export type ModelSpec = z.input<typeof modelSpecSchema>;
/** The CaC settings the CLI exposes; resolveCacOptions turns them into CaCOptions. */
export type CacSpec = z.input<typeof cacSpecSchema>;
/** A model that may hold resources (a loaded GGUF file): call dispose() when done. */
export type DisposableChatModel = ChatModel & { dispose?(): Promise<void> };

function parseSpec<S extends z.ZodObject>(schema: S, spec: unknown, what: string): z.output<S> {
  const r = schema.safeParse(spec);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return `unknown ${what} field ${issue.keys.join(", ")}; the fields are ${Object.keys(schema.shape).join(", ")}`;
    }
    return issue.message.startsWith("--") ? issue.message : `${what}: ${issue.message}`;
  });
  throw new UserError(lines.join("\n"));
}

/**
 * How an endpoint model reaches the network, for callers that must see every HTTP exchange (the eval
 * harness's rate limiter watches for 429s). Not part of the spec: it is code, not configuration.
 */
export interface EndpointTransport {
  /** Custom fetch for the endpoint's calls. Ignored for a gguf spec. */
  fetch?: typeof fetch;
  /** First retry backoff in ms (doubles each retry). Default: the adapter's. */
  retryBaseMs?: number;
}

type ParsedModelSpec = z.output<typeof modelSpecSchema>;

/** True when the spec names no model, so the built-in one is meant. */
export function usesDefaultModel(spec: ModelSpec): boolean {
  return spec.gguf === undefined && spec.baseUrl === undefined && spec.model === undefined;
}

/**
 * The backend for a GGUF file. An explicit choice wins (and the engine refuses a file it cannot run,
 * saying why); otherwise the engine when the file is its own layout, so that any other GGUF (a llama,
 * a BPE vocabulary) keeps running on llama.cpp as before.
 */
function resolveBackend(path: string, s: ParsedModelSpec, builtin: boolean): Backend {
  if (s.backend !== undefined) return s.backend;
  if (builtin) return "engine";
  return engineGgufProblem(path) === null ? "engine" : "llama-cpp";
}

async function createGgufModel(path: string, s: ParsedModelSpec, builtin: boolean): Promise<DisposableChatModel> {
  const backend = resolveBackend(path, s, builtin);
  if (backend === "llama-cpp") {
    const { createLlamaCppModel } = await import("./adapters/llama-cpp.js");
    return createLlamaCppModel({
      modelPath: path,
      contextSize: s.contextSize,
      maxTokens: s.maxTokens,
      ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    });
  }
  if (s.contextSize !== undefined) {
    throw new UserError("--context-size is for --backend llama-cpp; the engine's context is the model's own length (gpt2.context_length)");
  }
  const { createEngineModel } = await import("./adapters/engine-lm.js");
  return createEngineModel({
    gguf: path,
    ...(s.maxTokens !== undefined ? { maxTokens: s.maxTokens } : {}),
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
  });
}

/**
 * Builds the model a spec names. GGUF backends load lazily, only when used; with no model named, the
 * built-in model runs, or the error says how to name one and why there is no built-in one.
 */
export async function createModelFromSpec(spec: ModelSpec, transport: EndpointTransport = {}): Promise<DisposableChatModel> {
  const s = parseSpec(modelSpecSchema, spec, "model spec");
  if (s.gguf !== undefined) {
    if (s.baseUrl !== undefined || s.model !== undefined) {
      throw new UserError("give either --gguf PATH (a local file) or --base-url URL --model NAME (an endpoint), not both");
    }
    return createGgufModel(s.gguf, s, false);
  }
  if (s.baseUrl === undefined && s.model === undefined) {
    const builtin = resolveDefaultModel();
    if (builtin?.present) return createGgufModel(builtin.path, s, true);
    throw new UserError(
      `no model given, and ${missingDefaultModel(builtin)}: add --base-url URL --model NAME for an OpenAI-compatible endpoint (e.g. --base-url http://127.0.0.1:8080/v1 --model llama-3-8b), or --gguf PATH for a local GGUF file`,
    );
  }
  if (s.backend !== undefined) throw new UserError("--backend picks how a GGUF file runs; an endpoint (--base-url) has no backend to pick");
  if (s.baseUrl === undefined) throw new UserError("--model needs --base-url URL (the OpenAI-compatible endpoint, e.g. https://api.openai.com/v1)");
  if (s.model === undefined) throw new UserError("--base-url needs --model NAME (the model id at that endpoint; GET <base-url>/models lists them)");
  const defaults: TurnOptions = {};
  if (s.maxTokens !== undefined) defaults.maxTokens = s.maxTokens;
  if (s.temperature !== undefined) defaults.temperature = s.temperature;
  return createOpenAIModel({
    baseURL: s.baseUrl.replace(/\/+$/, ""),
    model: s.model,
    apiKey: s.apiKey ?? process.env.SELFCORRECT_API_KEY ?? process.env.OPENAI_API_KEY,
    timeoutMs: s.timeoutMs,
    maxRetries: s.retries,
    defaults,
    ...(s.maxUpstreamBytes !== undefined ? { maxResponseBytes: s.maxUpstreamBytes } : {}),
    ...(transport.fetch ? { fetch: transport.fetch } : {}),
    ...(transport.retryBaseMs !== undefined ? { retryBaseMs: transport.retryBaseMs } : {}),
  });
}

/** The CaCOptions a spec names; checkPrompt may be a preset key or the prompt text itself. */
export function resolveCacOptions(spec: CacSpec = {}): CaCOptions {
  const s = parseSpec(cacSpecSchema, spec, "CaC spec");
  if (s.variant === "diverse" && (s.rounds < 1 || s.rounds > 3)) {
    throw new UserError(`--rounds for --variant diverse is the number of history rounds M from the paper's demos: 1 to 3 (got ${s.rounds})`);
  }
  const generation: TurnOptions = { maxTokens: s.maxTokens ?? DEFAULT_TURN_MAX_TOKENS };
  if (s.temperature !== undefined) generation.temperature = s.temperature;
  return { variant: s.variant, rounds: s.rounds, checkPrompt: resolveCheckPrompt(s.checkPrompt), generation };
}
