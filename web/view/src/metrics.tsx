/** The run's metrics as the eval computed them (results.json / buildResults): tables with 95% intervals. */
import type { Value } from "./api";
import { fmtValue, rateOf, roundLabel } from "./format";

type PerRound = Record<string, { perRound: Value[]; unclear?: number }>;
interface BbqScores {
  n: number;
  accuracy: number | null;
  accuracyAmbig: number | null;
  accuracyDisambig: number | null;
  biasAmbig: number | null;
  biasDisambig: number | null;
  undetermined: number;
}
export interface RunResults {
  task: string;
  notes: string[];
  errors: { id: string; error: string; attempts: number }[];
  jailbreak?: { asr: PerRound; selfCheck: { accuracy: Value } | null };
  benign?: { safe: PerRound; unsafe: PerRound; nSafe: number; nUnsafe: number; checkFalseAlarm: Value };
  bbq?: { rounds: number; overall: BbqScores[]; byCategory: Record<string, BbqScores[]>; selfCheckAccuracy: Value; flippedShare: number | null };
  cost: { calls: number; tokens: number; wallMsPerItem: number | null; perRound: { round: number | "judge"; calls: number; tokens: number; latencyMsPerItem: number | null }[] };
}

/** A rate as a bar with its interval drawn as a whisker. */
function Bar(props: { v: Value }) {
  const r = rateOf(props.v);
  if (r === null) return null;
  const p = typeof props.v === "object" && props.v ? props.v : null;
  return (
    <span class="bar" aria-hidden="true">
      <span class="fill" style={{ width: `${r * 100}%` }} />
      {p && p.low !== null && p.high !== null ? <span class="whisker" style={{ left: `${p.low * 100}%`, width: `${(p.high - p.low) * 100}%` }} /> : null}
    </span>
  );
}

function PerRoundTable(props: { caption: string; rows: [string, PerRound][] }) {
  const R = Math.max(0, ...props.rows.flatMap(([, s]) => Object.values(s).map((a) => a.perRound.length - 1)));
  return (
    <table class="metric">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th>judge</th>
          {Array.from({ length: R + 1 }, (_, i) => (
            <th key={i}>{roundLabel(i, R)}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.flatMap(([suffix, stats]) =>
          Object.entries(stats).map(([j, a]) => (
            <tr key={j + suffix}>
              <td>
                {j}
                {suffix}
                {a.unclear ? <span class="muted"> ({a.unclear} unclear)</span> : null}
              </td>
              {a.perRound.map((p, i) => (
                <td key={i} class="num">
                  {fmtValue(p)}
                  <Bar v={p} />
                </td>
              ))}
            </tr>
          )),
        )}
      </tbody>
    </table>
  );
}

const BBQ_COLS: [keyof BbqScores, string][] = [
  ["n", "n"],
  ["accuracy", "accuracy"],
  ["accuracyAmbig", "acc. ambig"],
  ["accuracyDisambig", "acc. disambig"],
  ["biasAmbig", "bias ambig"],
  ["biasDisambig", "bias disambig"],
  ["undetermined", "undetermined"],
];

function BbqTable(props: { caption: string; rows: [string, BbqScores][] }) {
  return (
    <table class="metric">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th />
          {BBQ_COLS.map(([, t]) => (
            <th key={t}>{t}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map(([name, s]) => (
          <tr key={name}>
            <td>{name}</td>
            {BBQ_COLS.map(([k]) => (
              <td key={k} class="num">
                {k === "n" || k === "undetermined" ? s[k] : fmtValue(s[k])}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Metrics(props: { r: RunResults }) {
  const r = props.r;
  return (
    <div class="metrics">
      {r.jailbreak ? <PerRoundTable caption="Attack success rate per judge and round (Wilson 95% interval, k/n)" rows={[["", r.jailbreak.asr]]} /> : null}
      {r.jailbreak?.selfCheck ? <p>Self-check accuracy (round-1 check calls a harmful initial answer harmful): {fmtValue(r.jailbreak.selfCheck.accuracy)}</p> : null}
      {r.benign ? (
        <PerRoundTable
          caption={`Refusal rate per judge and round: over-refusal on ${r.benign.nSafe} safe prompts; ${r.benign.nUnsafe} unsafe prompts should be refused`}
          rows={[
            [" (safe)", r.benign.safe],
            [" (unsafe)", r.benign.unsafe],
          ]}
        />
      ) : null}
      {r.benign?.checkFalseAlarm ? <p>Self-check false alarms on safe prompts: {fmtValue(r.benign.checkFalseAlarm)}</p> : null}
      {r.bbq ? (
        <>
          <BbqTable caption="BBQ per round of answers" rows={r.bbq.overall.map((s, i) => [roundLabel(i, r.bbq!.rounds), s])} />
          <BbqTable caption="BBQ per category (final answers)" rows={Object.entries(r.bbq.byCategory).map(([c, s]) => [c, s[s.length - 1]!])} />
          {r.bbq.selfCheckAccuracy ? <p>Self-check accuracy: {fmtValue(r.bbq.selfCheckAccuracy)}</p> : null}
          {r.bbq.flippedShare !== null ? <p>Ground-truth critic: {(r.bbq.flippedShare * 100).toFixed(1)}% of critics flipped.</p> : null}
        </>
      ) : null}
      <table class="metric">
        <caption>Cost</caption>
        <thead>
          <tr>
            <th>calls of</th>
            <th>calls</th>
            <th>tokens</th>
            <th>ms per item</th>
          </tr>
        </thead>
        <tbody>
          {r.cost.perRound.map((p) => (
            <tr key={String(p.round)}>
              <td>{p.round === "judge" ? "judges" : roundLabel(p.round, 1)}</td>
              <td class="num">{p.calls}</td>
              <td class="num">{p.tokens}</td>
              <td class="num">{p.latencyMsPerItem === null ? "—" : Math.round(p.latencyMsPerItem)}</td>
            </tr>
          ))}
          <tr>
            <td>total (wall)</td>
            <td class="num">{r.cost.calls}</td>
            <td class="num">{r.cost.tokens}</td>
            <td class="num">{r.cost.wallMsPerItem === null ? "—" : Math.round(r.cost.wallMsPerItem)}</td>
          </tr>
        </tbody>
      </table>
      {r.notes.length ? (
        <ul class="notes">
          {r.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
