import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted at every depth, so that equal values always give equal text: the input
 * of content hashes (run ids, config keys) that must not change when a field moves.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`;
  }
  // undefined (inside an array) gives "" here, as it always has: changing it would rename existing runs
  return JSON.stringify(value) as string;
}

/** The first `length` hex digits of the sha256 of canonicalJson(value): a short id for a spec. */
export function contentHash(value: unknown, length = 10): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, length);
}
