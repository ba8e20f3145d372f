/**
 * Shapes the view server sends and the front end (web/view) reads: one definition for both sides.
 * Type-only, importing only type-only modules, so the browser build can import it without pulling in server code.
 */
import type { Proportion } from "../eval/proportion.js";

export type { Proportion };

export type RunStatus = "complete" | "incomplete" | "running";

export type Value = Proportion | number | null;

export interface Counts {
  selected: number;
  done: number;
  errors: number;
  pending: number;
  skippedByAttack: number;
}

export interface RunSummary {
  id: string;
  dir: number;
  dirLabel: string;
  runKey: string;
  label: string;
  task: string;
  model: string | null;
  defense: string | null;
  variant: string | null;
  rounds: number;
  attack: string | null;
  dataset: string | null;
  judges: string[];
  status: RunStatus;
  createdAt: string;
  counts: Counts;
  headline: { title: string; initial: Value; final: Value }[];
}

