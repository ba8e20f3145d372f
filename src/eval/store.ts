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
 *
 * Schema version: `PRAGMA user_version` says which record layout the file holds (STORE_SCHEMA_VERSION
 * for new files). A file from before versioning (user_version 0 with a results table) is version 1
 * and is upgraded in place, in one transaction, when opened (store-migrate.ts). A file from a newer
 * selfcorrect is refused with a UserError naming it. Every record read back is validated against
 * ItemRecordSchema; a row that does not match is a UserError naming the file, the run and the item.
 */
import Database from "better-sqlite3";
import { acquireDirLock } from "../util/fs.js";
import { UserError } from "../util/errors.js";
import { issueList } from "./datasets/files.js";
import { upgradeV1Record } from "./store-migrate.js";
import { ItemRecordSchema, type ItemRecord, type StoredResult } from "./types.js";

export const STORE_FILE = "eval.sqlite";
export const LOCK_FILE = "eval.lock";
/** The record layout this version writes and reads (see the module doc). */
export const STORE_SCHEMA_VERSION = 2;

const TABLES = `
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
`;

export class ResultStore {
  private readonly db: Database.Database;
  private readonly insertDone: Database.Statement;
  private readonly insertError: Database.Statement;

  constructor(readonly path: string) {
    this.db = new Database(path);
    try {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("busy_timeout = 5000");
      this.openSchema();
    } catch (e) {
      this.db.close();
      throw e;
    }
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

  /** The schema version of the file (after any upgrade, STORE_SCHEMA_VERSION). */
  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  private openSchema(): void {
    const upgrade = this.db.transaction(() => {
      const stored = this.db.pragma("user_version", { simple: true }) as number;
      const hasResults = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'").get() !== undefined;
      const version = stored === 0 && hasResults ? 1 : stored;
      if (version > STORE_SCHEMA_VERSION) {
        throw new UserError(
          `${this.path}: results store of schema version ${version}, written by a newer selfcorrect (this one reads up to ${STORE_SCHEMA_VERSION}); ` +
            "upgrade selfcorrect, or give another --output to start a new run",
        );
      }
      this.db.exec(TABLES);
      if (version === 1) this.upgradeFromV1();
      this.db.pragma(`user_version = ${STORE_SCHEMA_VERSION}`);
    });
    upgrade.immediate();
  }

  private upgradeFromV1(): void {
    const judgesOf = new Map<string, string[]>();
    for (const r of this.db.prepare("SELECT run_key, config FROM runs").all() as { run_key: string; config: string }[]) {
      const judges = (JSON.parse(r.config) as { judges?: unknown }).judges;
      judgesOf.set(r.run_key, Array.isArray(judges) ? judges.map(String) : []);
    }
    const rows = this.db.prepare("SELECT run_key, item_id, record FROM results WHERE status = 'done'").all() as { run_key: string; item_id: string; record: string }[];
    const update = this.db.prepare("UPDATE results SET record = ? WHERE run_key = ? AND item_id = ?");
    for (const r of rows) {
      const upgraded = upgradeV1Record(this.parseJson(r.run_key, r.item_id, r.record) as Record<string, unknown>, judgesOf.get(r.run_key) ?? []);
      update.run(JSON.stringify(upgraded), r.run_key, r.item_id);
    }
  }

  private parseJson(runKey: string, itemId: string, text: string | null): unknown {
    try {
      return JSON.parse(text ?? "");
    } catch (e) {
      throw this.badRow(runKey, itemId, `not valid JSON (${(e as Error).message})`);
    }
  }

  private badRow(runKey: string, itemId: string, why: string): UserError {
    return new UserError(
      `${this.path}: run ${runKey}, item ${itemId}: the stored record is ${why}; ` +
        "the file was changed outside selfcorrect: delete it, or give another --output, to run the items again",
    );
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

  /** Every stored result of a run, by item id; each record validated against the schema. */
  results(runKey: string): Map<string, StoredResult> {
    const rows = this.db
      .prepare("SELECT item_id, status, attempts, record, error FROM results WHERE run_key = ?")
      .all(runKey) as { item_id: string; status: "done" | "error"; attempts: number; record: string | null; error: string | null }[];
    const out = new Map<string, StoredResult>();
    for (const r of rows) {
      if (r.status === "done") {
        const parsed = ItemRecordSchema.safeParse(this.parseJson(runKey, r.item_id, r.record));
        if (!parsed.success) throw this.badRow(runKey, r.item_id, `not a valid schema-${STORE_SCHEMA_VERSION} record (${issueList(parsed.error, 3)})`);
        out.set(r.item_id, { itemId: r.item_id, status: "done", attempts: r.attempts, record: parsed.data });
      } else out.set(r.item_id, { itemId: r.item_id, status: "error", attempts: r.attempts, error: r.error ?? "unknown error" });
    }
    return out;
  }

  /** Every run the file holds, oldest first (the config as registered). */
  runs(): { runKey: string; config: Record<string, unknown>; createdAt: string }[] {
    const rows = this.db.prepare("SELECT run_key, config, created_at FROM runs ORDER BY created_at, run_key").all() as { run_key: string; config: string; created_at: string }[];
    return rows.map((r) => ({ runKey: r.run_key, config: this.parseJson(r.run_key, "(config)", r.config) as Record<string, unknown>, createdAt: r.created_at }));
  }

  /** Row counts of a run without reading the records: cheap enough to poll while a run writes. */
  counts(runKey: string): { done: number; errors: number } {
    const r = this.db
      .prepare("SELECT COALESCE(SUM(status = 'done'), 0) AS done, COALESCE(SUM(status = 'error'), 0) AS errors FROM results WHERE run_key = ?")
      .get(runKey) as { done: number; errors: number };
    return { done: r.done, errors: r.errors };
  }

  close(): void {
    this.db.close();
  }
}

/** One writer per output directory (see acquireDirLock); a lock left by a killed process is taken over. */
export function acquireLock(dir: string): () => void {
  return acquireDirLock(dir, LOCK_FILE, "eval");
}
