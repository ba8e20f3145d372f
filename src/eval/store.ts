/**
 * Results store: one SQLite file per output directory (better-sqlite3, WAL), one row per
 * (run key, item id), written the moment an item finishes.
 *
 * Why SQLite and not append-only JSONL: the primary key makes "never double count" a property of the
 * file rather than of the reader (a done row cannot be inserted twice, and an error row is replaced,
 * not appended, when retried); each row is one committed transaction, so a `kill -9` leaves either
 * the whole row or none (no torn last line to detect and repair); one file holds several runs keyed
 * by their config hash; and the report can read while a run writes. WAL with synchronous=NORMAL
 * survives a killed process; only an OS crash or power loss can drop the last few commits, which a
 * re-run then redoes.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { acquireDirLock } from "../util/fs.js";
import type { ItemRecord, StoredResult } from "./types.js";

export const STORE_FILE = "eval.sqlite";
export const LOCK_FILE = "eval.lock";

export class ResultStore {
  private readonly db: Database.Database;
  private readonly insertDone: Database.Statement;
  private readonly insertError: Database.Statement;

  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        run_key TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS results (
        run_key TEXT NOT NULL,
        item_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('done', 'error')),
        attempts INTEGER NOT NULL,
        record TEXT,
        error TEXT,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (run_key, item_id)
      );
    `);
    // A done row is final: an insert for it is ignored. An error row is replaced (attempts add up).
    this.insertDone = this.db.prepare(`
      INSERT INTO results (run_key, item_id, status, attempts, record, error, finished_at)
      VALUES (?, ?, 'done', ?, ?, NULL, ?)
      ON CONFLICT (run_key, item_id) DO UPDATE SET
        status = 'done', attempts = results.attempts + excluded.attempts, record = excluded.record,
        error = NULL, finished_at = excluded.finished_at
      WHERE results.status = 'error'`);
    this.insertError = this.db.prepare(`
      INSERT INTO results (run_key, item_id, status, attempts, record, error, finished_at)
      VALUES (?, ?, 'error', ?, NULL, ?, ?)
      ON CONFLICT (run_key, item_id) DO UPDATE SET
        attempts = results.attempts + excluded.attempts, error = excluded.error, finished_at = excluded.finished_at
      WHERE results.status = 'error'`);
  }

  registerRun(runKey: string, config: unknown): void {
    this.db
      .prepare("INSERT OR IGNORE INTO runs (run_key, config, created_at) VALUES (?, ?, ?)")
      .run(runKey, JSON.stringify(config), new Date().toISOString());
  }

  putDone(runKey: string, itemId: string, attempts: number, record: ItemRecord): void {
    this.insertDone.run(runKey, itemId, attempts, JSON.stringify(record), new Date().toISOString());
  }

  putError(runKey: string, itemId: string, attempts: number, error: string): void {
    this.insertError.run(runKey, itemId, attempts, error, new Date().toISOString());
  }

  /** Every stored result of a run, by item id. */
  results(runKey: string): Map<string, StoredResult> {
    const rows = this.db
      .prepare("SELECT item_id, status, attempts, record, error FROM results WHERE run_key = ?")
      .all(runKey) as { item_id: string; status: "done" | "error"; attempts: number; record: string | null; error: string | null }[];
    const out = new Map<string, StoredResult>();
    for (const r of rows) {
      if (r.status === "done") out.set(r.item_id, { itemId: r.item_id, status: "done", attempts: r.attempts, record: JSON.parse(r.record!) as ItemRecord });
      else out.set(r.item_id, { itemId: r.item_id, status: "error", attempts: r.attempts, error: r.error ?? "unknown error" });
    }
    return out;
  }

  close(): void {
    this.db.close();
  }
}

/** One writer per output directory (see acquireDirLock); a lock left by a killed process is taken over. */
export function acquireLock(dir: string): () => void {
  return acquireDirLock(dir, LOCK_FILE, "eval");
}
