/** Checking-as-Context: the public library surface. */
export * from "./types.js";
export { runCheckingAsContext, buildHistory, historyFromSelfDemos, type BuildHistoryOptions } from "./loop.js";
export * from "./presets.js";
export {
  createModelFromSpec, resolveCacOptions, usesDefaultModel, BACKENDS, CAC_VARIANTS, type Backend, type ModelSpec, type CacSpec, type DisposableChatModel,
} from "./model-spec.js";
export { createEngineModel, type EngineModelOptions, type EngineChatModel } from "./adapters/engine-lm.js";
export { resolveDefaultModel, defaultModelNotice, DEFAULT_MODEL_FILE, DEFAULT_MODEL_ENV, type DefaultModel } from "./default-model.js";
export { createOpenAIModel, type OpenAIModelOptions, type OpenAIChatModel } from "./adapters/openai.js";
export { UpstreamError, redactUrl, redactSecrets, type UpstreamFailure, type UpstreamErrorDetails } from "./errors.js";
export { checkingAsContext, type CheckingAsContextMiddlewareOptions } from "./adapters/ai-sdk.js";
export { startProxyServer, ProxyConfigError, type ProxyServer, type ProxyServerOptions, type LogEntry } from "./server.js";
