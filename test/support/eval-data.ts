/**
 * Where the eval tests find data. The samples under test/fixtures/data (a few rows of every format,
 * laid out like ../shared/data; see the README there) are committed, so the tests run on a lone
 * checkout. The full copy in ../shared/data exists only beside a development checkout: tests that
 * need it take `FULL_DATA_SKIP` as their `skip` option. SELFCORRECT_TEST_NO_SHARED_DATA=1 hides it,
 * to check that everything else passes without it.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DATASETS, type DatasetSpec } from "../../src/eval/datasets/registry.js";

/** The repository root (this file runs from dist/test/support/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The committed samples. */
export const SAMPLE_DATA = join(REPO_ROOT, "test/fixtures/data");

/** The full data beside the checkout, when it is there. */
export const FULL_DATA = resolve(REPO_ROOT, "../shared/data");

/** `skip` option of a test that needs FULL_DATA: false when present, else the reason. */
export const FULL_DATA_SKIP: string | false =
  process.env["SELFCORRECT_TEST_NO_SHARED_DATA"] === "1"
    ? "SELFCORRECT_TEST_NO_SHARED_DATA=1 hides ../shared/data"
    : existsSync(FULL_DATA)
      ? false
      : `needs the full evaluation data in ${FULL_DATA} (beside the checkout; see test/fixtures/data/README.md)`;

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * The dataset registry as it applies to the samples: the pinned files present under SAMPLE_DATA, each
 * pinned to the sample's own hash and size, and the unpinned files as they are, so the downloader can
 * be tested on the samples end to end.
 */
export function sampleRegistry(): DatasetSpec[] {
  return DATASETS.map((d) => ({
    ...d,
    files: d.files
      .filter((f) => f.sha256 === null || existsSync(join(SAMPLE_DATA, f.path)))
      .map((f) => {
        const path = join(SAMPLE_DATA, f.path);
        return f.sha256 === null ? { ...f } : { ...f, sha256: sha256(path), bytes: statSync(path).size };
      }),
  }));
}

/** Hash of a sample file, for expectations computed in the tests themselves. */
export function sampleSha256(relPath: string): string {
  return sha256(join(SAMPLE_DATA, relPath));
}
