/**
 * Strict readers for the data files: every failure is a UserError naming the file and the line, and
 * a reader returns all records or throws (never a partial list).
 */
import { readFileSync, existsSync } from "node:fs";
import { parse as parseCsv } from "csv-parse/sync";
import type { ZodError, ZodType } from "zod";
import { UserError } from "../../util/errors.js";

export interface CsvRecord {
  /** Header-named fields (header names trimmed and lower-cased). */
  fields: Record<string, string>;
  /** 1-based line where the record starts. */
  line: number;
}

function readText(file: string, what: string): string {
  if (!existsSync(file)) {
    throw new UserError(
      `${file}: ${what} file not found; fetch it with \`selfcorrect data fetch\` or point --data-dir at a copy laid out like ../shared/data`,
    );
  }
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new UserError(`${file}: cannot read ${what} file (${(e as Error).message})`);
  }
}

interface CsvInfo {
  lines: number;
}
interface CsvErrorLike {
  code?: string;
  lines?: number;
  message: string;
}

/**
 * Reads a CSV with a header row. Header names are compared case-insensitively (the JBB copy has
 * lower-case headers, upstream Hugging Face has `Index,Goal,...`); `required` columns must all be
 * present, every record must have exactly as many fields as the header.
 */
export function readCsv(file: string, required: readonly string[], what = "CSV"): CsvRecord[] {
  const text = readText(file, what);
  let rows: { record: Record<string, string>; info: CsvInfo; raw: string }[];
  let header: string[] = [];
  try {
    rows = parseCsv(text, {
      columns: (h: string[]) => {
        header = h.map((s) => s.trim().toLowerCase());
        return header;
      },
      bom: true,
      info: true,
      raw: true,
      skip_empty_lines: true,
    }) as { record: Record<string, string>; info: CsvInfo; raw: string }[];
  } catch (e) {
    const err = e as CsvErrorLike;
    const line = typeof err.lines === "number" ? err.lines : "?";
    throw new UserError(`${file}: line ${line}: malformed CSV (${err.message})`);
  }
  if (header.length === 0) throw new UserError(`${file}: line 1: empty file, expected a header row`);
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new UserError(
      `${file}: line 1: missing column${missing.length > 1 ? "s" : ""} ${missing.map((c) => `'${c}'`).join(", ")} ` +
        `(header has: ${header.join(", ")})`,
    );
  }
  if (rows.length === 0) throw new UserError(`${file}: no data rows after the header`);
  return rows.map((r) => {
    // info.lines is the line where the record ends; a quoted field may span several lines.
    const spanned = (r.raw.replace(/\r?\n$/, "").match(/\n/g) ?? []).length;
    return { fields: r.record, line: r.info.lines - spanned };
  });
}

/** Fails with file and line when a required CSV field is empty. */
export function requireField(file: string, rec: CsvRecord, column: string): string {
  const v = rec.fields[column];
  if (v === undefined || v.trim() === "") {
    throw new UserError(`${file}: line ${rec.line}: column '${column}' is empty`);
  }
  return v;
}

/** The first few issues of a failed parse, each as `field.path: message`. */
export function issueList(error: ZodError, max = 5): string {
  return error.issues
    .slice(0, max)
    .map((iss) => `${iss.path.length ? iss.path.map(String).join(".") : "(root)"}: ${iss.message}`)
    .join("; ");
}

/**
 * Reads a JSONL file, validating every line with `schema`. Blank lines are skipped; a line that is
 * not JSON or does not match the schema fails the whole read with the file, line and field named.
 */
export function readJsonl<T>(file: string, schema: ZodType<T>, what = "JSONL"): { value: T; line: number }[] {
  const text = readText(file, what).replace(/^\uFEFF/, "");
  const out: { value: T; line: number }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, "");
    if (raw.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new UserError(`${file}: line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const r = schema.safeParse(json);
    if (!r.success) throw new UserError(`${file}: line ${i + 1}: invalid ${what} record: ${issueList(r.error)}`);
    out.push({ value: r.data, line: i + 1 });
  }
  if (out.length === 0) throw new UserError(`${file}: no records (the file is empty)`);
  return out;
}

/** Reads and validates a whole JSON file. */
export function readJson<T>(file: string, schema: ZodType<T>, what = "JSON"): T {
  const text = readText(file, what);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new UserError(`${file}: invalid ${what}: ${issueList(r.error)}`);
  return r.data;
}
