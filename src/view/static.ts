/**
 * Files from a root directory, never from outside it. A request path is percent-decoded until it stops
 * changing (so %2e%2e and %252e%252e are seen as ".."), and refused (400) when any segment is "." or
 * "..", holds a NUL or a backslash, or the path is absolute; what remains is resolved under the root
 * and, after following symlinks, must still be inside it (else 404, as if absent).
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { extname, join, sep } from "node:path";

export const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".wasm": "application/wasm",
  ".ico": "image/x-icon",
  ".map": "application/json; charset=utf-8",
};

export type Resolved = { ok: true; path: string } | { ok: false; status: 400 | 404; reason: string };

/** Decodes until stable (at most 4 times); null when the encoding is malformed. */
function fullyDecoded(raw: string): string | null {
  let s = raw;
  for (let i = 0; i < 4; i++) {
    let next: string;
    try {
      next = decodeURIComponent(s);
    } catch {
      return null;
    }
    if (next === s) return s;
    s = next;
  }
  return s;
}

/** `rel` is the still-encoded path under the root ("" for the root itself). */
export function resolveInside(root: string, rel: string): Resolved {
  const decoded = fullyDecoded(rel);
  if (decoded === null) return { ok: false, status: 400, reason: "malformed percent-encoding in the path" };
  if (decoded.includes("\0") || decoded.includes("\\")) return { ok: false, status: 400, reason: "the path holds a NUL or a backslash" };
  if (decoded.startsWith("/") || /^[a-zA-Z]:/.test(decoded)) return { ok: false, status: 400, reason: "absolute paths are not served" };
  const segments = decoded.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) return { ok: false, status: 400, reason: "the path leaves its directory (.. or .)" };
  let realRoot: string;
  let real: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(join(realRoot, ...segments));
  } catch {
    return { ok: false, status: 404, reason: "not found" };
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return { ok: false, status: 404, reason: "not found" };
  return { ok: true, path: real };
}

/** A file's bytes and content type, or null when it is not a regular file. */
export function readServedFile(path: string): { body: Uint8Array; type: string } | null {
  try {
    if (!statSync(path).isFile()) return null;
    return { body: readFileSync(path), type: CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream" };
  } catch {
    return null;
  }
}
