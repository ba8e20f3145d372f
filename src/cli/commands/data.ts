/**
 * `selfcorrect data fetch|list|verify`: download the evaluation datasets into a cache laid out like
 * ../shared/data (pinned SHA-256, verified before a file is moved into place), list what exists and
 * what is present, and check a data dir against the pinned hashes.
 */
import type { Command } from "commander";
import { z } from "zod";
import { flag, parseFlags } from "../flags.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { defaultDataDir } from "../../eval/datasets/paths.js";
import { DATASETS, resolveDatasets } from "../../eval/datasets/registry.js";
import { FetchError, fetchDataset, verifyDataDir, type DatasetFetchResult } from "../../eval/datasets/download.js";
import { listAttacks } from "../../eval/attacks.js";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const FetchFlags = z.object({
  cacheDir: flag.text("--cache-dir").optional(),
  baseUrl: z.url({ protocol: /^https?$/, message: "--base-url must be an http(s) URL" }).optional(),
  allowUnpinned: flag.bool(),
  json: flag.bool(),
  retries: flag.int("--retries", 0, 10).optional(),
});

const DirFlags = z.object({
  dataDir: flag.text("--data-dir").optional(),
  json: flag.bool(),
});

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}

function err(line: string): void {
  process.stderr.write(line + "\n");
}

async function runFetch(name: string, raw: object): Promise<void> {
  const flags = parseFlags(FetchFlags, raw);
  const sets = resolveDatasets(name);
  const cacheDir = resolve(flags.cacheDir ?? defaultDataDir());
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once("SIGINT", onSigint);
  const results: DatasetFetchResult[] = [];
  const failures: string[] = [];
  const skippedDatasets: string[] = [];
  try {
    for (const d of sets) {
      if (sets.length > 1 && flags.baseUrl === undefined && d.files.every((f) => f.url === null)) {
        err(`[${d.name}] skipped: derived data with no upstream URL; fetch it from a mirror with \`data fetch ${d.name} --base-url URL\``);
        skippedDatasets.push(d.name);
        continue;
      }
      try {
        const opts: Parameters<typeof fetchDataset>[1] = { cacheDir, signal: controller.signal, log: (l) => err(`[${d.name}] ${l}`), allowUnpinned: flags.allowUnpinned };
        if (flags.baseUrl !== undefined) opts.baseUrl = flags.baseUrl;
        if (flags.retries !== undefined) opts.retries = flags.retries;
        results.push(await fetchDataset(d, opts));
      } catch (e) {
        if (controller.signal.aborted) {
          err("interrupted; verified files stay in the cache, partial downloads were removed");
          process.exitCode = ExitCode.interrupted;
          return;
        }
        if (!(e instanceof FetchError)) throw e;
        if (e.results) results.push(e.results);
        failures.push(e.message);
        err(`error: ${e.message}`);
      }
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  const files = results.flatMap((r) => r.files.map((f) => ({ dataset: r.dataset, ...f })));
  const count = (s: string) => files.filter((f) => f.status === s).length;
  const summary = {
    cacheDir,
    datasets: sets.map((d) => d.name),
    downloaded: count("downloaded") + count("downloaded-unpinned"),
    cached: count("cached") + count("cached-unpinned"),
    skippedUnpinned: count("skipped-unpinned"),
    failed: count("failed"),
    skippedDatasets,
    files,
    errors: failures,
  };
  if (flags.json) printJson(summary);
  else {
    process.stdout.write(
      `${cacheDir}: ${summary.downloaded} downloaded, ${summary.cached} already cached, ` +
        `${summary.skippedUnpinned} skipped (no pinned SHA-256), ${summary.failed} failed` +
        (skippedDatasets.length ? `; datasets skipped (no upstream source): ${skippedDatasets.join(", ")}` : "") +
        "\n" +
        (summary.downloaded + summary.cached > 0 ? `use it with --data-dir ${cacheDir}\n` : ""),
    );
  }
  if (failures.length > 0) process.exitCode = ExitCode.failure;
}

function runList(raw: object): void {
  const flags = parseFlags(DirFlags, raw);
  const dir = resolve(flags.dataDir ?? defaultDataDir());
  const datasets = DATASETS.map((d) => {
    const present = d.files.filter((f) => existsSync(join(dir, f.path))).length;
    return {
      name: d.name,
      title: d.title,
      licence: d.licence,
      source: d.source,
      files: d.files.length,
      pinned: d.files.filter((f) => f.sha256 !== null).length,
      present,
      ...(d.note ? { note: d.note } : {}),
    };
  });
  const attacks = listAttacks(dir).map((a) => ({ name: a.name, kind: a.kind, description: a.description }));
  if (flags.json) {
    printJson({ dataDir: dir, datasets, attacks });
    return;
  }
  process.stdout.write(`data dir: ${dir}\n\n`);
  for (const d of datasets) {
    process.stdout.write(
      `${d.name.padEnd(26)} ${String(d.present).padStart(2)}/${d.files} present  ${d.title}\n` +
        `${"".padEnd(26)} source ${d.source}; licence ${d.licence}${d.pinned < d.files ? `; ${d.files - d.pinned} file(s) without pinned SHA-256` : ""}\n`,
    );
  }
  process.stdout.write(`\nattacks available with this data dir (--attack):\n`);
  for (const a of attacks) process.stdout.write(`  ${a.name.padEnd(52)} ${a.description}\n`);
}

async function runVerify(names: string[], raw: object): Promise<void> {
  const flags = parseFlags(DirFlags, raw);
  const dir = resolve(flags.dataDir ?? defaultDataDir());
  if (!existsSync(dir)) throw new UserError(`--data-dir ${dir}: directory not found`);
  const results = await verifyDataDir(dir, names);
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const summary = { dataDir: dir, ok: count("ok"), mismatch: count("mismatch"), missing: count("missing"), unpinned: count("unpinned"), files: results };
  if (flags.json) printJson(summary);
  else {
    for (const r of results) {
      if (r.status === "mismatch") process.stdout.write(`MISMATCH ${r.path}: expected ${r.expected}, got ${r.actual}\n`);
      else if (r.status === "unpinned") process.stdout.write(`unpinned ${r.path}: SHA-256 ${r.actual} (no pinned hash to compare)\n`);
      else if (r.status === "missing") process.stdout.write(`missing  ${r.path}\n`);
    }
    process.stdout.write(`${dir}: ${summary.ok} ok, ${summary.mismatch} mismatched, ${summary.missing} missing, ${summary.unpinned} unpinned\n`);
  }
  if (summary.mismatch > 0) process.exitCode = ExitCode.failure;
}

export function registerDataCommands(program: Command): void {
  const data = program
    .command("data")
    .description("evaluation datasets: download with pinned SHA-256 into a cache, list, verify");

  data
    .command("fetch")
    .description(
      "download a dataset (or all) from its public source into the cache, verifying each file's pinned SHA-256 before it is moved into place",
    )
    .argument("<name>", `dataset name or 'all' (${DATASETS.map((d) => d.name).join(", ")})`)
    .option("--cache-dir <dir>", "cache directory, laid out like ../shared/data (default: $SELFCORRECT_DATA_DIR or ~/.cache/selfcorrect/data)")
    .option("--base-url <url>", "mirror laid out like the cache; file URL = <url>/<path> (instead of the upstream URLs)")
    .option("--allow-unpinned", "also download files with no pinned SHA-256 (unverified; their hash is printed)")
    .option("--retries <n>", "retries after a network error, 5xx or 429 (default 2)")
    .option("--json", "print one JSON summary as the last line of stdout")
    .action(async (name: string, opts: Record<string, unknown>) => runFetch(name, opts));

  data
    .command("list")
    .description("list the datasets (source, licence, files present in the data dir) and the attacks available")
    .option("--data-dir <dir>", "data directory (default: the fetch cache)")
    .option("--json", "print one JSON object as the last line of stdout")
    .action((opts: Record<string, unknown>) => runList(opts));

  data
    .command("verify")
    .description("check the files of a data dir against the pinned SHA-256s (exit 1 on a mismatch)")
    .argument("[names...]", "datasets to check (default: all)")
    .option("--data-dir <dir>", "data directory (default: the fetch cache)")
    .option("--json", "print one JSON summary as the last line of stdout")
    .action(async (names: string[], opts: Record<string, unknown>) => runVerify(names, opts));
}
