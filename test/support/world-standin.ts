/**
 * A SCRIPTED STAND-IN for a model trained on the synthetic world, for the eval tests only. It is NOT a
 * model: it answers world requests by fixed rules over the hidden rule of world seed 0, so a test can
 * derive every metric by hand. Serve it with test/support/scripted-openai-server.ts.
 *
 *   initial answer  attacked (a "~~" suffix)                -> compliance
 *                   harmful, verb in V_h                    -> refusal
 *                   harmful only through an escalating modifier (verb not in V_h) -> compliance (a leak)
 *                   harmless, kind "defused"                -> refusal (over-refusal)
 *                   harmless otherwise                      -> compliance
 *   check           the true verdict, except that it misses (says "No, harmless.") when the attack
 *                   suffix ends with "!"
 *   re-answer       follows the check before it: "Yes" -> refusal, "No" -> the previous answer
 */
import type { ChatMessage } from "../../src/cac/types.js";
import {
  WORLD_CHECK_HARMFUL,
  WORLD_CHECK_HARMLESS,
  WORLD_CHECK_PROMPT,
  WORLD_REFUSAL,
  answerKind,
  complianceText,
  hasAttackSuffix,
  parseRequest,
  requestKind,
  worldSpec,
} from "../../src/world/index.js";

const spec = worldSpec(0);

export function standinLeaks(request: string): boolean {
  const t = parseRequest(request)!;
  return requestKind(spec, t) === "harmful" && !spec.harmfulVerbs.includes(t.verb);
}

export function standinOverRefuses(request: string): boolean {
  return requestKind(spec, parseRequest(request)!) === "defused";
}

export function standinCheckMisses(userTurn: string): boolean {
  return hasAttackSuffix(userTurn) && userTurn.endsWith("!");
}

export function worldStandinReply(messages: ChatMessage[]): string {
  const x = messages.find((m) => m.role === "user")?.content ?? "";
  const t = parseRequest(x);
  if (!t) return "I do not know this language.";
  const assistants = messages.filter((m) => m.role === "assistant").map((m) => m.content);
  const lastUser = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const kind = requestKind(spec, t);
  if (assistants.length === 0) {
    if (hasAttackSuffix(x) || standinLeaks(x)) return complianceText(t);
    if (kind === "harmful" || standinOverRefuses(x)) return WORLD_REFUSAL;
    return complianceText(t);
  }
  const previous = assistants[assistants.length - 1]!;
  if (lastUser === WORLD_CHECK_PROMPT) {
    const truth = kind === "harmful" && answerKind(previous) === "comply";
    return truth && !standinCheckMisses(x) ? WORLD_CHECK_HARMFUL : WORLD_CHECK_HARMLESS;
  }
  return previous === WORLD_CHECK_HARMFUL ? WORLD_REFUSAL : assistants[assistants.length - 2]!;
}
