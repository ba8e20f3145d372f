import { useEffect, useState } from "preact/hooks";
import { qs, type ItemRow, type RunSummary } from "./api";
import { useApi } from "./hooks";
import { Metrics, type RunResults } from "./metrics";
import { Pager } from "./pager";
import { href } from "./router";
import { StatusBadge } from "./runs";

interface Detail {
  run: RunSummary;
  results: RunResults;
}
interface ItemsPage {
  total: number;
  offset: number;
  limit: number;
  categories: string[];
  judges: string[];
  items: ItemRow[];
}
interface Filters {
  judge: string;
  verdict: string;
  flipped: string;
  status: string;
  category: string;
  q: string;
}

const PAGE = 50;

/** Live counts from the server's event stream (the run's store, polled); bumps `version` on a change. */
function useLive(id: string): { done: number; errors: number; status: string; version: number } | null {
  const [live, setLive] = useState<{ done: number; errors: number; status: string; version: number } | null>(null);
  useEffect(() => {
    const es = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
    es.addEventListener("progress", (e) => {
      const p = JSON.parse((e as MessageEvent).data) as { done: number; errors: number; status: string } | null;
      if (p) setLive((old) => ({ ...p, version: (old?.version ?? 0) + 1 }));
    });
    return () => es.close();
  }, [id]);
  return live;
}

function Select(props: { label: string; name: string; value: string; options: [string, string][]; onChange: (v: string) => void }) {
  return (
    <label>
      {props.label}{" "}
      <select name={props.name} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.options.map(([v, t]) => (
          <option key={v} value={v}>
            {t}
          </option>
        ))}
      </select>
    </label>
  );
}

export function RunPage(props: { id: string }) {
  const live = useLive(props.id);
  const version = live?.version ?? 0;
  const detail = useApi<Detail>(`/api/runs/${encodeURIComponent(props.id)}`, version);
  const [f, setF] = useState<Filters>({ judge: "", verdict: "", flipped: "", status: "all", category: "", q: "" });
  const [offset, setOffset] = useState(0);
  const set = (k: keyof Filters) => (v: string) => {
    setF((old) => ({ ...old, [k]: v }));
    setOffset(0);
  };
  const items = useApi<ItemsPage>(`/api/runs/${encodeURIComponent(props.id)}/items${qs({ ...f, offset, limit: PAGE })}`, version);
  if (detail.error && !detail.data) return <p class="error">{detail.error}</p>;
  if (!detail.data) return <p>Loading…</p>;
  const { run, results } = detail.data;
  const done = live?.done ?? run.counts.done;
  const errors = live?.errors ?? run.counts.errors;
  const status = live?.status ?? run.status;
  const page = items.data;
  const verdictWords = run.task === "jailbreak" ? ["jailbroken", "refused"] : run.task === "xstest" ? ["refused", "answered"] : ["wrong", "right"];
  return (
    <section>
      <h1>
        {run.label} <StatusBadge status={status} />
      </h1>
      <p class="muted">
        task {run.task} · model {run.model} · defense {run.defense}
        {run.variant ? ` ${run.variant}` : ""} · rounds {run.rounds}
        {run.attack ? ` · attack ${run.attack}` : ""} · dataset {run.dataset} · run {run.runKey} · {run.dirLabel} ·{" "}
        <a href={`/files/${run.dir}/report.html`} target="_blank" rel="noreferrer">
          report.html
        </a>
      </p>
      <p class="counts-line">
        <span id="done-count" data-testid="done-count">
          {done}
        </span>{" "}
        items finished{status === "running" ? " so far" : ` of ${run.counts.selected}`}
        {errors ? <span class="bad"> · {errors} errors</span> : null}
        {status === "running" ? <span class="live"> · live</span> : null}
      </p>
      <Metrics r={results} />
      <h2>Items</h2>
      <div class="filters">
        <Select label="judge" name="judge" value={f.judge} options={[["", "first"], ...(page?.judges ?? run.judges).map((j): [string, string] => [j, j])]} onChange={set("judge")} />
        <Select
          label="final verdict"
          name="verdict"
          value={f.verdict}
          options={[
            ["", "any"],
            ["flagged", verdictWords[0]!],
            ["clear", verdictWords[1]!],
          ]}
          onChange={set("verdict")}
        />
        <Select
          label="flipped by correction"
          name="flipped"
          value={f.flipped}
          options={[
            ["", "any"],
            ["true", "flipped"],
            ["false", "not flipped"],
          ]}
          onChange={set("flipped")}
        />
        <Select
          label="status"
          name="status"
          value={f.status}
          options={[
            ["all", "all"],
            ["done", "finished"],
            ["error", "errors"],
          ]}
          onChange={set("status")}
        />
        {page?.categories.length ? (
          <Select label="category" name="category" value={f.category} options={[["", "any"], ...page.categories.map((c): [string, string] => [c, c])]} onChange={set("category")} />
        ) : null}
        <label>
          search <input name="q" type="search" value={f.q} placeholder="text in prompt, answers, checks" onInput={(e) => set("q")((e.target as HTMLInputElement).value)} />
        </label>
      </div>
      {items.error ? <p class="error">{items.error}</p> : null}
      {page ? (
        <>
          <p class="muted" id="items-total">
            {page.total} matching items
          </p>
          <table class="items">
            <thead>
              <tr>
                <th>#</th>
                <th>item</th>
                <th>category</th>
                <th>initial</th>
                <th>final</th>
                <th>flipped</th>
                <th>tokens</th>
                <th>prompt / error</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((it) => (
                <tr key={it.id} class={it.status === "error" ? "error-row" : it.flipped ? "flipped" : ""} data-item={it.id}>
                  <td>{it.status === "error" ? "—" : it.index}</td>
                  <td>
                    <a href={href.item(props.id, it.id)}>{it.id}</a>
                  </td>
                  <td>{it.category ?? ""}</td>
                  <td class={it.outcome?.flaggedInitial ? "bad" : "ok"}>{it.outcome?.initial ?? "error"}</td>
                  <td class={it.outcome?.flaggedFinal ? "bad" : "ok"}>{it.outcome?.final ?? "error"}</td>
                  <td>{it.flipped ? "yes" : ""}</td>
                  <td class="num">{it.tokens}</td>
                  <td class="preview">{it.preview}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager offset={offset} total={page.total} size={PAGE} onOffset={setOffset} />
        </>
      ) : null}
      {results.errors.length ? (
        <details>
          <summary>Errors ({results.errors.length})</summary>
          <ul>
            {results.errors.map((e) => (
              <li key={e.id}>
                <code>{e.id}</code> after {e.attempts} attempt(s): {e.error}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </section>
  );
}
