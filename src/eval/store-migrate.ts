/**
 * Upgrades of stored records from older schema versions of the results store (see store.ts).
 *
 * Version 1 (stores written before the schema had a version, `PRAGMA user_version` 0) kept the raw
 * texts only, plus the LLM judges' replies under `llm` / `llmRefusal`; every other verdict was
 * re-derived whenever results were computed. Version 2 stores every verdict with the item. The
 * upgrade derives them once, with the rules version 1 applied at report time, so a resumed old run
 * reports exactly what it reported before.
 */
import { parseBbqAnswer } from "./bbq-eval.js";
import { parseCheckVerdict } from "./check-verdict.js";
import { gcgListVerdict, refusalVerdict, substringVerdict, type Verdict } from "./judges/index.js";

type V1Record = Record<string, unknown> & {
  kind?: string;
  answers?: string[];
  checks?: string[];
  options?: [string, string, string];
  llm?: { reply: string; verdict: string }[];
  llmRefusal?: { reply: string; verdict: string }[];
};

/** The version-1 judges that were re-derived from the stored answer at report time, by name. */
const V1_STRING_JUDGES: Record<string, (answer: string) => Verdict> = {
  substring: substringVerdict,
  "gcg-list": gcgListVerdict,
  refusal: refusalVerdict,
};

/** A version-1 record as version 2; `judges` are the judges of its run (from the runs table). */
export function upgradeV1Record(raw: V1Record, judges: readonly string[]): Record<string, unknown> {
  const { llm, llmRefusal, ...rest } = raw;
  const answers = Array.isArray(raw.answers) ? raw.answers : [];
  const out: Record<string, unknown> = { ...rest, checkVerdicts: (Array.isArray(raw.checks) ? raw.checks : []).map(parseCheckVerdict) };
  if (raw.kind === "bbq") {
    out.picks = raw.options ? answers.map((a) => parseBbqAnswer(a, raw.options!)) : [];
    return out;
  }
  const verdicts: Record<string, Verdict[]> = {};
  for (const j of judges) {
    const stringJudge = V1_STRING_JUDGES[j];
    if (stringJudge) verdicts[j] = answers.map(stringJudge);
    else if (j === "llm" && llm) verdicts[j] = llm.map((v) => ({ flagged: v.verdict === "unsafe", label: v.verdict, reply: v.reply }));
    else if (j === "llm-refusal" && llmRefusal) verdicts[j] = llmRefusal.map((v) => ({ flagged: v.verdict === "refusal", label: v.verdict, reply: v.reply }));
  }
  out.verdicts = verdicts;
  return out;
}
