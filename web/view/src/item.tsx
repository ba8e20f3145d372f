import type { Outcome, RunSummary } from "./api";
import { ms, roundLabel } from "./format";
import { useApi } from "./hooks";
import { href } from "./router";

interface Turn {
  role: string;
  content: string;
  kind: string;
  round: number;
}
interface Call {
  purpose: string;
  round: number;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  injected?: boolean;
  sentTurns: number | null;
  prefix?: string;
}
interface Verdict {
  flagged: boolean;
  label: string;
  reply?: string;
}
interface ItemDetail {
  run: RunSummary;
  index: number | null;
  record?: {
    id: string;
    kind: string;
    answers: string[];
    checks: string[];
    checkVerdicts: string[];
    verdicts?: Record<string, Verdict[]>;
    picks?: number[];
    label?: number | string;
    options?: string[];
    wallMs: number;
  };
  error?: { id: string; error: string; attempts: number };
  outcome?: Outcome;
  trace?: { turns: Turn[]; calls: Call[]; source: "stored" | "rebuilt"; exact: boolean; note?: string };
}

const KIND_TITLE: Record<string, string> = {
  system: "system prompt",
  demo: "demonstration",
  query: "query",
  initial: "initial answer",
  "check-prompt": "check prompt",
  check: "check",
  "reanswer-prompt": "re-answer prompt",
  answer: "answer",
};

function turnTitle(t: Turn, rounds: number): string {
  if (t.kind === "answer" && t.round === rounds) return `final answer (round ${t.round})`;
  if (t.kind === "check" || t.kind === "check-prompt" || t.kind === "reanswer-prompt" || t.kind === "answer") return `${KIND_TITLE[t.kind]} (round ${t.round})`;
  return KIND_TITLE[t.kind] ?? t.kind;
}

export function ItemPage(props: { id: string; item: string }) {
  const { data, error } = useApi<ItemDetail>(`/api/runs/${encodeURIComponent(props.id)}/items/${encodeURIComponent(props.item)}`);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const back = <a href={href.run(props.id)}>← {data.run.label}</a>;
  if (!data.record || !data.trace) {
    return (
      <section>
        <p>{back}</p>
        <h1>{props.item}</h1>
        <p class="error">
          Failed after {data.error?.attempts} attempt(s): {data.error?.error}
        </p>
      </section>
    );
  }
  const rec = data.record;
  const rounds = rec.answers.length - 1;
  const tr = data.trace;
  return (
    <section>
      <p>{back}</p>
      <h1>
        Item {data.index}: <code>{rec.id}</code>
      </h1>
      {data.outcome ? (
        <p>
          {data.outcome.judge ? `${data.outcome.judge} judge: ` : ""}
          <span class={data.outcome.flaggedInitial ? "bad" : "ok"}>{data.outcome.initial}</span>
          {rounds > 0 ? (
            <>
              {" "}
              → <span class={data.outcome.flaggedFinal ? "bad" : "ok"}>{data.outcome.final}</span>
            </>
          ) : null}{" "}
          · {ms(rec.wallMs)} wall
        </p>
      ) : null}
      {tr.note ? <p class="hint">{tr.note}</p> : null}
      <h2>Conversation</h2>
      <div class="conversation">
        {tr.turns.map((t, i) => (
          <div key={i} class={`turn ${t.role} ${t.kind}`} data-kind={t.kind} data-round={t.round}>
            <div class="who">
              {turnTitle(t, rounds)}
              {t.kind === "check" ? <span class="muted"> · verdict: {rec.checkVerdicts[t.round - 1] ?? "unclear"}</span> : null}
            </div>
            <pre class="text">{t.content}</pre>
          </div>
        ))}
      </div>
      {rec.verdicts && Object.keys(rec.verdicts).length ? (
        <>
          <h2>Judge verdicts</h2>
          <table class="metric verdicts">
            <thead>
              <tr>
                <th>judge</th>
                {rec.answers.map((_, i) => (
                  <th key={i}>{roundLabel(i, rounds)}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {Object.entries(rec.verdicts).map(([j, vs]) => (
                <tr key={j}>
                  <td>{j}</td>
                  {vs.map((v, i) => (
                    <td key={i} class={v.flagged ? "bad" : "ok"} title={v.reply ?? ""}>
                      {v.label}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {rec.picks ? (
        <p>
          Picks per round: {rec.picks.map((p) => (p < 0 ? "undetermined" : `(${"abc"[p]}) ${rec.options?.[p] ?? ""}`)).join(" → ")}; correct ({"abc"[Number(rec.label)]})
        </p>
      ) : null}
      <h2>Calls</h2>
      <table class="metric calls">
        <thead>
          <tr>
            <th>call</th>
            <th>round</th>
            <th>prompt tokens</th>
            <th>completion tokens</th>
            <th>latency</th>
            <th>messages sent</th>
          </tr>
        </thead>
        <tbody>
          {tr.calls.map((c, i) => (
            <tr key={i}>
              <td>
                {c.purpose}
                {c.injected ? " (injected critic)" : ""}
              </td>
              <td class="num">{c.round}</td>
              <td class="num">{c.promptTokens}</td>
              <td class="num">{c.completionTokens}</td>
              <td class="num">{ms(c.latencyMs)}</td>
              <td>
                {c.sentTurns === null ? (
                  <span class="muted">judge prompt (the judge's template)</span>
                ) : (
                  <details>
                    <summary>{c.sentTurns + (c.prefix ? 1 : 0)} messages</summary>
                    <pre class="messages">
                      {JSON.stringify(
                        [...tr.turns.slice(0, c.sentTurns).map((t) => ({ role: t.role, content: t.content })), ...(c.prefix ? [{ role: "assistant", content: c.prefix }] : [])],
                        null,
                        2,
                      )}
                    </pre>
                  </details>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tr.source === "stored" ? (
        <p class="hint">Messages as the run sent them (stored with the record).</p>
      ) : tr.exact ? (
        <p class="hint">Messages rebuilt from the stored texts and the run's config the way the CaC loop sends them (a record written before conversations were stored).</p>
      ) : null}
    </section>
  );
}
