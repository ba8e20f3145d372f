import { useEffect, useState } from "preact/hooks";
import { LineChart } from "./chart";
import { useApi } from "./hooks";
import { href } from "./router";

interface Finding {
  claim: string;
  holds: boolean;
  detail: string;
}
interface Panel {
  panel: string;
  title: string;
  paperFinding: string;
  examples: number[];
  curves: Record<string, number[]>;
  dashed: string[];
  findings: Finding[];
}
interface Training {
  id: string;
  status: string;
  step: number;
  steps: number | null;
  lossHistory: number[];
  lossWindow: number;
  trainSeconds: number | null;
}
interface LabDir {
  dir: number;
  label: string;
  running: boolean;
  results: { preset: string; updatedAt: string; panels: Record<string, Panel> } | null;
  training: Training[];
}
interface LabList {
  lab: { dir: number; label: string; running: boolean; preset: string | null; panels: string[]; training: { id: string; status: string; step: number; steps: number | null }[] }[];
}

export function LabListPage() {
  const { data, error } = useApi<LabList>("/api/lab");
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p>Loading…</p>;
  return (
    <section>
      <h1>Lab runs ({data.lab.length})</h1>
      <table class="runs">
        <thead>
          <tr>
            <th>directory</th>
            <th>preset</th>
            <th>panels</th>
            <th>training runs</th>
          </tr>
        </thead>
        <tbody>
          {data.lab.map((d) => (
            <tr key={d.dir}>
              <td>
                <a href={href.labdir(d.dir)}>{d.label}</a>
                {d.running ? <span class="badge running">running</span> : null}
              </td>
              <td>{d.preset ?? "—"}</td>
              <td>{d.panels.join(", ") || "—"}</td>
              <td>
                {d.training.map((t) => (
                  <div key={t.id}>
                    {t.id}: {t.status} {t.step}/{t.steps ?? "?"}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.lab.length === 0 ? <p class="hint">No lab directories found. Start the viewer with lab run directories: selfcorrect view runs/lab/quick</p> : null}
    </section>
  );
}

function PanelView(props: { p: Panel }) {
  const p = props.p;
  const labels = Object.keys(p.curves);
  return (
    <div class="panel" data-panel={p.panel}>
      <LineChart
        title={`Panel ${p.panel}: ${p.title}`}
        x={p.examples}
        xLabel="in-context examples"
        yLabel="1 - cos error"
        width={760}
        series={labels.map((l) => ({ label: l, values: p.curves[l]!, dashed: p.dashed.includes(l) }))}
      />
      <aside class="findings">
        <p class="muted">{p.paperFinding}</p>
        <ul>
          {p.findings.map((f) => (
            <li key={f.claim} class={f.holds ? "ok" : "bad"}>
              <strong>{f.holds ? "holds" : "fails"}:</strong> {f.claim} <span class="muted">({f.detail})</span>
            </li>
          ))}
        </ul>
      </aside>
    </div>
  );
}

function LossChart(props: { t: Training }) {
  const t = props.t;
  const x = t.lossHistory.map((_, i) => (i + 1) * t.lossWindow);
  return (
    <div class="training" data-training={t.id}>
      <LineChart title={`${t.id}: ${t.status}, step ${t.step}/${t.steps ?? "?"}`} x={x} xLabel="step" yLabel="training loss" series={[{ label: `mean loss per ${t.lossWindow} steps`, values: t.lossHistory }]} width={600} height={240} />
    </div>
  );
}

export function LabDirPage(props: { dir: string }) {
  const [version, setVersion] = useState(0);
  const { data, error } = useApi<LabDir>(`/api/lab/${encodeURIComponent(props.dir)}`, version);
  const active = !!data && (data.running || data.training.some((t) => t.status === "training"));
  // Checkpoints (and their loss history) are rewritten every few steps: poll while something trains.
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setVersion((v) => v + 1), 2000);
    return () => clearInterval(t);
  }, [active]);
  if (error && !data) return <p class="error">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const panels = Object.values(data.results?.panels ?? {});
  return (
    <section>
      <h1>
        Lab: {data.label} {active ? <span class="badge running">training</span> : null}
      </h1>
      {data.results ? (
        <p class="muted">
          preset {data.results.preset} · updated {data.results.updatedAt}
        </p>
      ) : null}
      {panels.map((p) => (
        <PanelView key={p.panel} p={p} />
      ))}
      {data.training.length ? <h2>Training runs</h2> : null}
      <div class="trainings">
        {data.training.map((t) => (
          <LossChart key={t.id} t={t} />
        ))}
      </div>
    </section>
  );
}
