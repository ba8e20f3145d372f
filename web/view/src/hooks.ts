import { useEffect, useState } from "preact/hooks";
import { api } from "./api";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
}

/** GET `path` (again whenever `path` or `version` changes); keeps the last data while reloading. */
export function useApi<T>(path: string | null, version = 0): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: null, error: null, loading: path !== null });
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api<T>(path)
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((e: Error) => live && setState((s) => ({ data: s.data, error: e.message, loading: false })));
    return () => {
      live = false;
    };
  }, [path, version]);
  return state;
}
