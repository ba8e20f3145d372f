import { useEffect, useState } from "preact/hooks";

/** Hash routes: #/, #/run/<id>, #/run/<id>/item/<item id>, #/compare?a=&b=, #/lab, #/lab/<dir>. */
export type Route =
  | { page: "runs" }
  | { page: "run"; id: string }
  | { page: "item"; id: string; item: string }
  | { page: "compare"; a: string; b: string }
  | { page: "lab" }
  | { page: "labdir"; dir: string };

export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const q = new URLSearchParams(search);
  if (parts[0] === "run" && parts[1] && parts[2] === "item" && parts[3] !== undefined) return { page: "item", id: parts[1], item: parts[3] };
  if (parts[0] === "run" && parts[1]) return { page: "run", id: parts[1] };
  if (parts[0] === "compare") return { page: "compare", a: q.get("a") ?? "", b: q.get("b") ?? "" };
  if (parts[0] === "lab" && parts[1]) return { page: "labdir", dir: parts[1] };
  if (parts[0] === "lab") return { page: "lab" };
  return { page: "runs" };
}

export const href = {
  runs: () => "#/",
  run: (id: string) => `#/run/${encodeURIComponent(id)}`,
  item: (id: string, item: string) => `#/run/${encodeURIComponent(id)}/item/${encodeURIComponent(item)}`,
  compare: (a: string, b: string) => `#/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`,
  lab: () => "#/lab",
  labdir: (dir: number | string) => `#/lab/${dir}`,
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}
