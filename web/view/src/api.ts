/** The JSON API of the view server (src/view/server.ts); same origin, so the token cookie rides along. */
export type { Counts, Proportion, RunSummary, Value } from "../../../src/view/api-types.js";

export interface Outcome {
  judge: string | null;
  initial: string;
  final: string;
  flaggedInitial: boolean;
  flaggedFinal: boolean;
}

export interface ItemRow {
  index: number;
  id: string;
  status: "done" | "error";
  category: string | null;
  outcome: Outcome | null;
  flipped: boolean;
  rounds: number;
  tokens: number;
  error?: string;
  preview: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(path: string): Promise<T> {
  const res = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new ApiError(res.status, (body as { error?: string }).error ?? res.statusText);
  return body as T;
}

export function qs(params: Record<string, string | number | boolean | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : "";
}
