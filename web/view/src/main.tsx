import { render } from "preact";
import { ComparePage } from "./compare";
import { ItemPage } from "./item";
import { LabDirPage, LabListPage } from "./lab";
import { href, useRoute, type Route } from "./router";
import { RunPage } from "./run";
import { RunsPage } from "./runs";
import "./style.css";

function Page(props: { route: Route }) {
  const r = props.route;
  switch (r.page) {
    case "run":
      return <RunPage key={r.id} id={r.id} />;
    case "item":
      return <ItemPage key={`${r.id}/${r.item}`} id={r.id} item={r.item} />;
    case "compare":
      return <ComparePage key={`${r.a}/${r.b}`} a={r.a} b={r.b} />;
    case "lab":
      return <LabListPage />;
    case "labdir":
      return <LabDirPage key={r.dir} dir={r.dir} />;
    default:
      return <RunsPage />;
  }
}

function App() {
  const route = useRoute();
  const at = (p: Route["page"][]) => (p.includes(route.page) ? "active" : "");
  return (
    <>
      <nav>
        <strong>selfcorrect view</strong>
        <a class={at(["runs", "run", "item", "compare"])} href={href.runs()}>
          Eval runs
        </a>
        <a class={at(["lab", "labdir"])} href={href.lab()}>
          Lab
        </a>
        <a href="/playground/">Playground</a>
      </nav>
      <main>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
