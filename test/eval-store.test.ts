// The results store's schema version: a new file is written at the current version, a file from
// before versioning (version 1) is upgraded in place to records that carry their verdicts, a file
// from a newer selfcorrect is refused with a message naming it, and every record read back is
// validated, so a damaged row is an error naming the file, the run and the item.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ResultStore, STORE_SCHEMA_VERSION } from "../src/eval/store.js";
import { UserError } from "../src/util/errors.js";

/** The tables as version 1 created them (no user_version). */
const V1_TABLES = `
  CREATE TABLE runs (run_key TEXT PRIMARY KEY, config TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE results (
    run_key TEXT NOT NULL, item_id TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('done', 'error')),
    attempts INTEGER NOT NULL, record TEXT, error TEXT, finished_at TEXT NOT NULL, PRIMARY KEY (run_key, item_id)
  );`;

function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "eval-store-schema-"));
}

function userErrorWith(...fragments: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message should contain '${f}': ${e.message}`);
    return true;
  };
}

test("a new store is written at the current schema version", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "eval.sqlite");
    const store = new ResultStore(file);
    assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
    store.close();
    assert.equal(withDb(file, (db) => db.pragma("user_version", { simple: true })), STORE_SCHEMA_VERSION);
    new ResultStore(file).close(); // reopening keeps it
    assert.equal(withDb(file, (db) => db.pragma("user_version", { simple: true })), STORE_SCHEMA_VERSION);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a store from a newer selfcorrect is refused, naming the file and the fix", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "eval.sqlite");
    withDb(file, (db) => {
      db.exec(V1_TABLES);
      db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 1}`);
    });
    assert.throws(() => new ResultStore(file), userErrorWith(file, `schema version ${STORE_SCHEMA_VERSION + 1}`, "upgrade selfcorrect", "another --output"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a version-1 store is upgraded in place: verdicts derived once, LLM replies kept, errors untouched", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "eval.sqlite");
    const jb = { kind: "jailbreak", id: "advbench-0", goal: "g", prompt: "p", answers: ["Sure, here it is", "I cannot help."], checks: ["Yes, this is harmful."], calls: [], wallMs: 3, llm: [{ reply: "unsafe", verdict: "unsafe" }, { reply: "maybe", verdict: "unclear" }] };
    const benign = { kind: "benign", id: "xstest-1", prompt: "p", label: "safe", type: "homonyms", answers: ["Sorry, no."], checks: [], calls: [], wallMs: 1, llmRefusal: [{ reply: "Yes", verdict: "refusal" }] };
    const bbq = { kind: "bbq", id: "bbq-Age-0", prompt: "p", category: "Age", contextCondition: "ambig", polarity: "neg", options: ["The grandfather", "The grandson", "Can't be determined"], label: 2, unknownIndex: 2, biasedIndex: 0, answers: [" (a) The grandfather.", " Can't be determined."], checks: ["My previous answer is biased."], calls: [], wallMs: 2 };
    withDb(file, (db) => {
      db.exec(V1_TABLES);
      const run = db.prepare("INSERT INTO runs VALUES (?, ?, 'then')");
      run.run("jbk", JSON.stringify({ task: "jailbreak", judges: ["substring", "gcg-list", "llm"] }));
      run.run("xsk", JSON.stringify({ task: "xstest", judges: ["refusal", "llm-refusal"] }));
      run.run("bbk", JSON.stringify({ task: "bbq", judges: [] }));
      const row = db.prepare("INSERT INTO results VALUES (?, ?, ?, 1, ?, ?, 'then')");
      row.run("jbk", jb.id, "done", JSON.stringify(jb), null);
      row.run("jbk", "advbench-1", "error", null, "HTTP 500");
      row.run("xsk", benign.id, "done", JSON.stringify(benign), null);
      row.run("bbk", bbq.id, "done", JSON.stringify(bbq), null);
    });
    const store = new ResultStore(file);
    try {
      assert.equal(store.schemaVersion, STORE_SCHEMA_VERSION);
      const j = store.results("jbk");
      const r = j.get("advbench-0");
      assert.ok(r?.status === "done" && r.record.kind === "jailbreak");
      assert.deepEqual(r.record.verdicts, {
        substring: [{ flagged: true, label: "jailbroken" }, { flagged: false, label: "refused" }],
        "gcg-list": [{ flagged: true, label: "jailbroken" }, { flagged: false, label: "refused" }],
        llm: [{ flagged: true, label: "unsafe", reply: "unsafe" }, { flagged: false, label: "unclear", reply: "maybe" }],
      });
      assert.deepEqual(r.record.checkVerdicts, ["harmful"]);
      assert.equal("llm" in r.record, false, "the version-1 field is gone");
      assert.deepEqual(j.get("advbench-1"), { itemId: "advbench-1", status: "error", attempts: 1, error: "HTTP 500" });
      const b = store.results("xsk").get("xstest-1");
      assert.ok(b?.status === "done" && b.record.kind === "benign");
      assert.deepEqual(b.record.verdicts, { refusal: [{ flagged: true, label: "refused" }], "llm-refusal": [{ flagged: true, label: "refusal", reply: "Yes" }] });
      const q = store.results("bbk").get("bbq-Age-0");
      assert.ok(q?.status === "done" && q.record.kind === "bbq");
      assert.deepEqual(q.record.picks, [0, 2]);
      assert.deepEqual(q.record.checkVerdicts, ["harmful"]);
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stored record that does not match the schema is an error naming the file, the run and the item", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "eval.sqlite");
    new ResultStore(file).close();
    withDb(file, (db) => {
      const row = db.prepare("INSERT INTO results VALUES ('k', ?, 'done', 1, ?, NULL, 'now')");
      row.run("no-answers", JSON.stringify({ kind: "benign", id: "no-answers", prompt: "p", label: "safe", answers: [], checks: [], checkVerdicts: [], calls: [], wallMs: 1, verdicts: {} }));
    });
    const store = new ResultStore(file);
    try {
      assert.throws(() => store.results("k"), userErrorWith(file, "run k, item no-answers", `schema-${STORE_SCHEMA_VERSION} record`, "answers"));
    } finally {
      store.close();
    }
    withDb(file, (db) => db.prepare("UPDATE results SET record = '{oops' WHERE item_id = 'no-answers'").run());
    const again = new ResultStore(file);
    try {
      assert.throws(() => again.results("k"), userErrorWith(file, "item no-answers", "not valid JSON"));
      assert.equal(again.results("other").size, 0, "other runs still read");
    } finally {
      again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
