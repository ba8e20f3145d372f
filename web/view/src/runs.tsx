import { useState } from "preact/hooks";
import type { RunSummary } from "./api";
import { fmtValue } from "./format";
import { useApi } from "./hooks";
import { href } from "./router";

export function StatusBadge(props: { status: string }) {
  return <span class={`badge ${props.status}`}>{props.status}</span>;
}

export function RunsPage() {
  const { data, error } = useApi<{ runs: RunSummary[] }>("/api/runs");
  const [picked, setPicked] = useState<string[]>([]);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const toggle = (id: string) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p.slice(-1), id]));
  const [a, b] = picked;
  return (
    <section>
      <h1>Eval runs ({data.runs.length})</h1>
      <p class="hint">
        Tick two runs of one task to compare them item by item.{" "}
        {a && b ? (
          <a class="button" id="compare-picked" href={href.compare(a, b)}>
            Compare the two
          </a>
        ) : null}
      </p>
      <table class="runs">
        <thead>
          <tr>
            <th />
            <th>run</th>
            <th>task</th>
            <th>model</th>
            <th>defense</th>
            <th>rounds</th>
            <th>items</th>
            <th>status</th>
            <th>headline (initial → final, 95% interval)</th>
            <th>directory</th>
          </tr>
        </thead>
        <tbody>
          {data.runs.map((r) => (
            <tr key={r.id} data-run={r.id}>
              <td>
                <input type="checkbox" aria-label={`pick ${r.label}`} checked={picked.includes(r.id)} onChange={() => toggle(r.id)} />
              </td>
              <td>
                <a href={href.run(r.id)}>{r.label}</a>
              </td>
              <td>{r.task}</td>
              <td class="model" title={r.model ?? ""}>
                {r.model}
              </td>
              <td>
                {r.defense}
                {r.variant ? ` (${r.variant})` : ""}
              </td>
              <td>{r.rounds}</td>
              <td class="counts">
                {r.counts.done}
                {r.status === "running" ? "" : `/${r.counts.selected}`}
                {r.counts.errors ? <span class="bad"> +{r.counts.errors} errors</span> : null}
              </td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td class="headline">
                {r.headline.slice(0, 2).map((h) => (
                  <div key={h.title}>
                    <span class="muted">{h.title}:</span> {fmtValue(h.initial)} → <strong>{fmtValue(h.final)}</strong>
                  </div>
                ))}
              </td>
              <td class="muted">{r.dirLabel}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.runs.length === 0 ? <p class="hint">No eval runs found. Start the viewer with eval output directories: selfcorrect view runs/my-eval</p> : null}
    </section>
  );
}
