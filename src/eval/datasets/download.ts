/**
 * The dataset downloader: fetches a registry dataset (registry.ts) into a cache laid out like
 * ../shared/data, and checks a data dir against the pinned hashes.
 *
 * A download is streamed to a temporary file next to its destination while being hashed, the hash is
 * checked, and only then is the file fsynced and renamed into place; a mismatch deletes the temporary
 * file and fails naming the file, the expected and the actual hash. Files already cached with the
 * right hash are not downloaded again. Files with no pinned hash are skipped unless `allowUnpinned`
 * is set; then they are downloaded unverified and their hash is reported so it can be pinned.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ExitCode, UserError } from "../../util/errors.js";
import { ensureWritableDir } from "../../util/fs.js";
import { ProgressBar } from "../../util/progress.js";
import { RetriesExhausted, retryWithBackoff } from "../../util/retry.js";
import { defaultDataDir } from "./paths.js";
import { DATASETS, getDataset, resolveDatasets, type DataFile, type DatasetSpec } from "./registry.js";

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export type FileStatus = "cached" | "downloaded" | "skipped-unpinned" | "downloaded-unpinned" | "cached-unpinned" | "failed";

export interface FileFetchResult {
  path: string;
  status: FileStatus;
  url: string | null;
  bytes?: number;
  sha256?: string;
  error?: string;
}

export interface FetchOptions {
  /** Cache / data dir to fill. Default: defaultDataDir() (~/.cache/selfcorrect/data). */
  cacheDir?: string;
  /** Mirror laid out like the cache: file URL = `${baseUrl}/${path}`. Overrides upstream URLs. */
  baseUrl?: string;
  signal?: AbortSignal;
  /** Also download files with no pinned SHA-256 (unverified; their hash is reported). */
  allowUnpinned?: boolean;
  /** Retries after a network error, a 5xx or a 429 (not after a 4xx or a checksum mismatch). Default 2. */
  retries?: number;
  retryDelayMs?: number;
  /** Abort a request when no bytes arrive for this long (headers or body). Default 60 s. */
  timeoutMs?: number;
  /** Progress bar on stderr for files of at least this many bytes. Default 1 MiB; Infinity disables. */
  progressMinBytes?: number;
  /** One line per file (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface DatasetFetchResult {
  dataset: string;
  cacheDir: string;
  files: FileFetchResult[];
}

/** Raised when a download fails; names the file. Exit code 1 (the work failed). */
export class FetchError extends UserError {
  /** From fetchDataset: what happened to every file, the failed ones included. */
  results?: DatasetFetchResult;
  constructor(message: string) {
    super(message, ExitCode.failure);
    this.name = "FetchError";
  }
}

class HttpStatusError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function fileUrl(file: DataFile, baseUrl: string | undefined): string | null {
  if (baseUrl) return `${baseUrl.replace(/\/+$/, "")}/${file.path.split("/").map(encodeURIComponent).join("/")}`;
  return file.url;
}

/**
 * Downloads `url` to `dest` via a temporary sibling, hashing as it streams; checks the pinned
 * SHA-256 (when there is one) BEFORE the fsync + rename. Returns the size and hash.
 */
async function downloadOnce(
  url: string,
  dest: string,
  file: DataFile,
  opts: FetchOptions,
): Promise<{ bytes: number; sha256: string }> {
  // A stall timeout rather than a total one: a big file on a slow link is fine as long as bytes flow.
  const stallMs = opts.timeoutMs ?? 60_000;
  const stall = new AbortController();
  let timer = setTimeout(() => stall.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
  };
  const signal = opts.signal ? AbortSignal.any([opts.signal, stall.signal]) : stall.signal;
  try {
    return await streamTo(url, dest, file, opts, signal, touch);
  } catch (e) {
    if (stall.signal.aborted && !opts.signal?.aborted) throw new Error(`timed out: ${(stall.signal.reason as Error).message}`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function streamTo(
  url: string,
  dest: string,
  file: DataFile,
  opts: FetchOptions,
  signal: AbortSignal,
  touch: () => void,
): Promise<{ bytes: number; sha256: string }> {
  const res = await fetch(url, { signal, redirect: "follow" });
  touch();
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new HttpStatusError(`HTTP ${res.status} ${res.statusText}`.trim(), res.status);
  }
  const lengthHeader = res.headers.get("content-length");
  const expectedLength = lengthHeader !== null ? Number(lengthHeader) : file.bytes;
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.${process.pid}.${randomBytes(4).toString("hex")}.part`);
  const hash = createHash("sha256");
  let bytes = 0;
  const minBytes = opts.progressMinBytes ?? 1 << 20;
  const bar =
    expectedLength !== undefined && expectedLength >= minBytes
      ? new ProgressBar({ total: expectedLength, label: file.path, unit: "B", plainIntervalMs: 2000 })
      : null;
  const fd = openSync(tmp, "w");
  let closed = false;
  try {
    if (res.body) {
      for await (const chunk of res.body) {
        const buf = chunk as Uint8Array;
        hash.update(buf);
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
        bytes += buf.length;
        touch();
        bar?.update(bytes);
      }
    }
    bar?.finish();
    if (lengthHeader !== null && bytes !== Number(lengthHeader)) {
      throw new Error(`truncated body: got ${bytes} of ${lengthHeader} bytes`);
    }
    const actual = hash.digest("hex");
    if (file.sha256 !== null && actual !== file.sha256) {
      throw new FetchError(
        `${file.path}: SHA-256 mismatch for the download from ${url}: expected ${file.sha256}, got ${actual} (${bytes} bytes); the file was not saved`,
      );
    }
    fsyncSync(fd);
    closeSync(fd);
    closed = true;
    renameSync(tmp, dest);
    return { bytes, sha256: actual };
  } finally {
    if (!closed) closeSync(fd);
    rmSync(tmp, { force: true });
  }
}

function retriable(e: unknown): boolean {
  if (e instanceof FetchError) return false;
  if (e instanceof HttpStatusError) return e.status >= 500 || e.status === 429 || e.status === 408;
  if ((e as Error)?.name === "AbortError") return false;
  return true;
}

function describe(e: unknown): string {
  const err = e as Error & { cause?: { message?: string; code?: string } };
  const cause = err.cause?.message ?? err.cause?.code;
  return cause && cause !== err.message ? `${err.message} (${cause})` : err.message;
}

async function fetchFile(file: DataFile, cacheDir: string, opts: FetchOptions): Promise<FileFetchResult> {
  const dest = join(cacheDir, file.path);
  const url = fileUrl(file, opts.baseUrl);
  const log = opts.log ?? (() => {});
  if (existsSync(dest)) {
    if (file.sha256 === null) {
      log(`cached     ${file.path} (no pinned SHA-256; not verified)`);
      return { path: file.path, status: "cached-unpinned", url, bytes: statSync(dest).size };
    }
    const have = await sha256File(dest);
    if (have === file.sha256) {
      log(`cached     ${file.path}`);
      return { path: file.path, status: "cached", url, bytes: statSync(dest).size, sha256: have };
    }
    // Remove it now: if the new download fails, loaders must not go on reading a corrupt copy.
    log(`stale      ${file.path}: cached copy has SHA-256 ${have}, expected ${file.sha256}; removed, downloading again`);
    rmSync(dest, { force: true });
  }
  if (file.sha256 === null && !opts.allowUnpinned) {
    log(`skipped    ${file.path} (no pinned SHA-256; use --allow-unpinned to download it unverified)`);
    return { path: file.path, status: "skipped-unpinned", url };
  }
  if (url === null) {
    throw new FetchError(`${file.path}: no upstream URL (derived data); fetch it from a mirror laid out like ../shared/data with --base-url`);
  }
  const retries = opts.retries ?? 2;
  try {
    const { bytes, sha256 } = await retryWithBackoff(() => downloadOnce(url, dest, file, opts), {
      retries,
      baseDelayMs: opts.retryDelayMs ?? 1000,
      jitter: false,
      signal: opts.signal,
      shouldRetry: (e) => !opts.signal?.aborted && retriable(e),
      onRetry: (e, attempt) => log(`retrying   ${file.path}: ${describe(e)} (attempt ${attempt + 2} of ${retries + 1})`),
    });
    const unpinned = file.sha256 === null;
    log(`downloaded ${file.path} (${bytes} bytes, SHA-256 ${unpinned ? `${sha256}, NOT VERIFIED: no pinned hash` : "verified"})`);
    return { path: file.path, status: unpinned ? "downloaded-unpinned" : "downloaded", url, bytes, sha256 };
  } catch (e) {
    const cause = e instanceof RetriesExhausted ? e.cause : e;
    if (opts.signal?.aborted || cause instanceof FetchError) throw cause;
    throw new FetchError(`${file.path}: download from ${url} failed: ${describe(cause)}`);
  }
}

/**
 * Fetches every file of a dataset into the cache. Files already cached with the pinned hash are
 * kept. Every file is attempted; if any failed, throws a FetchError listing them after the others
 * are done (files that were verified stay in the cache, complete).
 */
export async function fetchDataset(name: string | DatasetSpec, opts: FetchOptions = {}): Promise<DatasetFetchResult> {
  const dataset = typeof name === "string" ? getDataset(name) : name;
  const cacheDir = opts.cacheDir ?? defaultDataDir();
  if (opts.baseUrl !== undefined && !/^https?:\/\//i.test(opts.baseUrl)) {
    throw new UserError(`--base-url must be an http(s) URL (got '${opts.baseUrl}')`);
  }
  ensureWritableDir(cacheDir, "--cache-dir");
  const results: FileFetchResult[] = [];
  const failures: string[] = [];
  for (const file of dataset.files) {
    try {
      results.push(await fetchFile(file, cacheDir, opts));
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const msg = (e as Error).message;
      results.push({ path: file.path, status: "failed", url: fileUrl(file, opts.baseUrl), error: msg });
      failures.push(msg);
    }
  }
  if (failures.length > 0) {
    const err = new FetchError(
      failures.length === 1 ? failures[0]! : `${failures.length} files of ${dataset.name} failed:\n  ${failures.join("\n  ")}`,
    );
    err.results = { dataset: dataset.name, cacheDir, files: results };
    throw err;
  }
  return { dataset: dataset.name, cacheDir, files: results };
}

export type VerifyStatus = "ok" | "missing" | "mismatch" | "unpinned";

export interface VerifyFileResult {
  dataset: string;
  path: string;
  status: VerifyStatus;
  expected: string | null;
  actual?: string;
}

/**
 * Checks the files present in `dir` against the pinned hashes: of every dataset of `registry` (by
 * default the built-in one), or of the named ones.
 */
export async function verifyDataDir(dir: string, names?: string[], registry: readonly DatasetSpec[] = DATASETS): Promise<VerifyFileResult[]> {
  const sets = names && names.length > 0 ? names.flatMap((n) => resolveDatasets(n, registry)) : [...registry];
  const out: VerifyFileResult[] = [];
  for (const d of sets) {
    for (const f of d.files) {
      const p = join(dir, f.path);
      if (!existsSync(p)) {
        out.push({ dataset: d.name, path: f.path, status: "missing", expected: f.sha256 });
        continue;
      }
      const actual = await sha256File(p);
      const status: VerifyStatus = f.sha256 === null ? "unpinned" : actual === f.sha256 ? "ok" : "mismatch";
      out.push({ dataset: d.name, path: f.path, status, expected: f.sha256, actual });
    }
  }
  return out;
}
