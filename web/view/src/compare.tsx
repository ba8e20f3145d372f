import { useState } from "preact/hooks";
import { qs, type Outcome, type RunSummary } from "./api";
import { fmtValue } from "./format";
import { useApi } from "./hooks";
import { Pager } from "./pager";
import { href } from "./router";

interface Side {
  outcome: Outcome;
  answer: string;
}
interface ComparePage {
  a: RunSummary;
  b: RunSummary;
  total: number;
  differ: number;
  offset: number;
  limit: number;
  rows: { id: string; a: Side | null; b: Side | null; differ: boolean }[];
}

const PAGE = 100;

function Cell(props: { s: Side | null; run: string; id: string }) {
  if (!props.s) return <td class="muted">not in this run</td>;
  return (
    <td>
      <a href={href.item(props.run, props.id)} class={props.s.outcome.flaggedFinal ? "bad" : "ok"}>
        {props.s.outcome.final}
      </a>
      <pre class="answer">{props.s.answer}</pre>
    </td>
  );
}

export function ComparePage(props: { a: string; b: string }) {
  const [only, setOnly] = useState(false);
  const [offset, setOffset] = useState(0);
  const { data, error } = useApi<ComparePage>(`/api/compare${qs({ a: props.a, b: props.b, only: only ? "differ" : "all", offset, limit: PAGE })}`);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p>Loading…</p>;
  return (
    <section>
      <h1>
        {data.a.label} vs {data.b.label}
      </h1>
      <table class="metric">
        <thead>
          <tr>
            <th>metric</th>
            <th>
              <a href={href.run(data.a.id)}>{data.a.label}</a>: initial → final
            </th>
            <th>
              <a href={href.run(data.b.id)}>{data.b.label}</a>: initial → final
            </th>
          </tr>
        </thead>
        <tbody>
          {data.a.headline.map((h) => {
            const o = data.b.headline.find((x) => x.title === h.title);
            return (
              <tr key={h.title}>
                <td>{h.title}</td>
                <td class="num">
                  {fmtValue(h.initial)} → {fmtValue(h.final)}
                </td>
                <td class="num">{o ? `${fmtValue(o.initial)} → ${fmtValue(o.final)}` : "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p>
        <strong id="differ-count">{data.differ}</strong> items end with a different final verdict.{" "}
        <label>
          <input
            type="checkbox"
            name="only-differ"
            checked={only}
            onChange={() => {
              setOnly(!only);
              setOffset(0);
            }}
          />{" "}
          only those
        </label>
      </p>
      <table class="compare">
        <thead>
          <tr>
            <th>item</th>
            <th>{data.a.label}: final verdict and answer</th>
            <th>{data.b.label}: final verdict and answer</th>
          </tr>
        </thead>
        <tbody>
          {data.rows.map((r) => (
            <tr key={r.id} class={r.differ ? "differ" : ""} data-item={r.id}>
              <td>
                <code>{r.id}</code>
                {r.differ ? <div class="badge differ">differs</div> : null}
              </td>
              <Cell s={r.a} run={data.a.id} id={r.id} />
              <Cell s={r.b} run={data.b.id} id={r.id} />
            </tr>
          ))}
        </tbody>
      </table>
      <Pager offset={offset} total={data.total} size={PAGE} onOffset={setOffset} />
    </section>
  );
}
