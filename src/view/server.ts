/**
 * `selfcorrect view`: a local web app and JSON API over eval output directories and lab run
 * directories (hono on node:http). Loopback only unless a token is set; with a token every page and
 * API call needs it (Authorization: Bearer, ?token= once, which sets an HttpOnly cookie). On a loopback
 * bind the Host header must name a loopback host too, so a web page on another origin cannot reach the
 * API through DNS rebinding. Requests name runs and directories by id, never by path; the only paths
 * taken from a request are under /files/<dir>/, /assets/ and /playground/, resolved by resolveInside.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { Hono, type Context } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { UserError } from "../util/errors.js";
import { hostnameOf, isLoopbackHost } from "../cac/server/http.js";
import { compareItems, EvalRuns, itemOutcome, queryItems } from "./eval-data.js";
import { labDirView } from "./lab-data.js";
import { ServedDirs, type ServedDir } from "./sources.js";
import { readServedFile, resolveInside } from "./static.js";
import { buildTrace } from "./trace.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/web and dist/playground, next to dist/src where this module is compiled to. */
export const DEFAULT_WEB_ROOT = resolve(HERE, "../../web");
export const DEFAULT_PLAYGROUND_ROOT = resolve(HERE, "../../playground");
const COOKIE = "selfcorrect_view_token";

export interface ViewServerOptions {
  /** Directories to serve (eval outputs, lab runs, or folders holding them); none: under cwd. */
  dirs: readonly string[];
  cwd?: string;
  host?: string;
  port?: number;
  token?: string;
  webRoot?: string;
  playgroundRoot?: string;
  /** How often a live run's store is polled for the event stream. Default 500 ms. */
  pollMs?: number;
}

export interface ViewServer {
  url: string;
  port: number;
  /** Found at start; more are added as they appear (GET /api/dirs). */
  dirs: readonly ServedDir[];
  close(): Promise<void>;
}

const RunId = z.string().regex(/^\d{1,6}-[0-9a-f]{16}$/, { message: "expected <dir>-<run key> (16 hex digits), as GET /api/runs lists them" });
const DirId = z.string().regex(/^\d{1,6}$/, { message: "expected a directory id, as GET /api/dirs lists them" }).transform(Number);
const count = (min: number, max: number) =>
  z.coerce
    .number({ message: "must be a number" })
    .int({ message: "must be a whole number" })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` });
const page = { offset: count(0, 1e9).default(0), limit: count(1, 500).default(50) };
const ItemsQuery = z.object({
  ...page,
  judge: z.string().max(64).optional(),
  verdict: z.enum(["flagged", "clear"]).optional(),
  flipped: z
    .enum(["true", "false"])
    .transform((v) => v === "true")
    .optional(),
  status: z.enum(["done", "error", "all"]).optional(),
  category: z.string().max(200).optional(),
  q: z.string().max(500).optional(),
});
const CompareQuery = z.object({ a: RunId, b: RunId, only: z.enum(["differ", "all"]).default("all"), ...page });

class BadRequest extends Error {}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : where;
  throw new BadRequest(`${field}: ${issue.message}`);
}

/** Query parameters without the token (it may ride along on any request). */
function query(c: Context): Record<string, string> {
  const q = { ...c.req.query() };
  delete q.token;
  return q;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

function tokenMatches(given: string | undefined, token: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

/** The raw (still percent-encoded) path after `prefix`: the URL parser has already removed literal dot segments. */
function restOf(c: Context, prefix: string): string {
  const path = new URL(c.req.url).pathname;
  return path.startsWith(prefix) ? path.slice(prefix.length) : "";
}

function fileResponse(c: Context, root: string, rel: string, headers: Record<string, string> = {}): Response {
  const r = resolveInside(root, rel);
  if (!r.ok) return c.json({ error: r.reason }, r.status);
  const f = readServedFile(r.path);
  if (!f) return c.json({ error: "not found" }, 404);
  return new Response(f.body, { headers: { "content-type": f.type, ...headers } });
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>selfcorrect view</title><p>The front end is not built: run <code>npm run build:web</code> (or <code>npm run build</code>). The JSON API is at <a href="/api/runs">/api/runs</a>.</p>`;

export function createViewApp(o: { dirs: ServedDirs; token?: string; loopback: boolean; webRoot: string; playgroundRoot: string; pollMs: number; signal: AbortSignal }): { app: Hono; close(): void } {
  const runs = new EvalRuns(o.dirs);
  const app = new Hono();

  app.use("*", async (c, next) => {
    if (o.loopback) {
      const host = c.req.header("host");
      if (!host || !isLoopbackHost(hostnameOf(host))) return c.text("this server answers loopback host names only", 403);
    }
    if (o.token) {
      const auth = c.req.header("authorization");
      const bearer = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
      const fromQuery = c.req.query("token");
      const ok = tokenMatches(bearer, o.token) || tokenMatches(fromQuery, o.token) || tokenMatches(cookieValue(c.req.header("cookie"), COOKIE), o.token);
      if (!ok) {
        c.header("www-authenticate", 'Bearer realm="selfcorrect view"');
        return c.req.path.startsWith("/api/") ? c.json({ error: "a token is required: Authorization: Bearer <token> or ?token=<token>" }, 401) : c.text("a token is required: open this page with ?token=<token>", 401);
      }
      if (tokenMatches(fromQuery, o.token)) c.header("set-cookie", `${COOKIE}=${encodeURIComponent(o.token)}; Path=/; HttpOnly; SameSite=Strict`);
    }
    await next();
    c.header("x-content-type-options", "nosniff");
    // The token may be in the URL: never send it on in a Referer.
    c.header("referrer-policy", "no-referrer");
    if (!c.res.headers.has("content-security-policy")) c.header("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
  });

  app.onError((e, c) => {
    if (e instanceof BadRequest) return c.json({ error: e.message }, 400);
    return c.json({ error: e instanceof UserError ? e.message : `internal error: ${(e as Error).message}` }, 500);
  });

  app.get("/api/health", (c) => c.json({ ok: true }));
  app.get("/api/dirs", (c) => c.json({ dirs: o.dirs.refresh().map(({ id, label, eval: ev, lab }) => ({ id, label, eval: ev, lab })) }));
  app.get("/api/runs", (c) => c.json({ runs: runs.list() }));

  app.get("/api/runs/:id", (c) => {
    const id = parse(RunId, c.req.param("id"), "id");
    const d = runs.detail(id);
    return d ? c.json(d) : c.json({ error: `run ${id} not found` }, 404);
  });

  app.get("/api/runs/:id/items", (c) => {
    const id = parse(RunId, c.req.param("id"), "id");
    const q = parse(ItemsQuery, query(c), "query");
    const r = runs.records(id);
    if (!r) return c.json({ error: `run ${id} not found` }, 404);
    const out = queryItems(r.results, q);
    return c.json({ run: id, offset: q.offset, limit: q.limit, total: out.total, categories: out.categories, judges: r.results.judges, items: out.rows });
  });

  app.get("/api/runs/:id/items/:item", (c) => {
    const id = parse(RunId, c.req.param("id"), "id");
    const itemId = parse(z.string().min(1).max(500), c.req.param("item"), "item");
    const r = runs.records(id);
    if (!r) return c.json({ error: `run ${id} not found` }, 404);
    const index = r.results.records.findIndex((x) => x.id === itemId);
    if (index < 0) {
      const err = r.results.errors.find((e) => e.id === itemId);
      return err ? c.json({ run: r.run, index: null, error: err }) : c.json({ error: `item ${itemId} not found in run ${id}` }, 404);
    }
    const record = r.results.records[index]!;
    return c.json({ run: r.run, index, record, outcome: itemOutcome(record, undefined), trace: buildTrace(record, r.results.config) });
  });

  app.get("/api/runs/:id/events", (c) => {
    const id = parse(RunId, c.req.param("id"), "id");
    if (!runs.progress(id)) return c.json({ error: `run ${id} not found` }, 404);
    return streamSSE(c, async (stream) => {
      let last = "";
      while (!stream.aborted && !stream.closed && !o.signal.aborted) {
        const p = runs.progress(id);
        const text = JSON.stringify(p);
        if (text !== last) {
          await stream.writeSSE({ event: "progress", data: text });
          last = text;
        }
        await stream.sleep(o.pollMs);
      }
    });
  });

  app.get("/api/compare", (c) => {
    const q = parse(CompareQuery, query(c), "query");
    const a = runs.records(q.a);
    const b = runs.records(q.b);
    if (!a || !b) return c.json({ error: `run ${a ? q.b : q.a} not found` }, 404);
    if (a.results.task !== b.results.task) throw new BadRequest(`b: run ${q.b} is a ${b.results.task} run and ${q.a} a ${a.results.task} run; compare runs of one task`);
    const items = compareItems(a.results, b.results, { onlyDiffer: q.only === "differ", offset: q.offset, limit: q.limit });
    return c.json({ a: a.run, b: b.run, offset: q.offset, limit: q.limit, ...items });
  });

  const labDir = (c: Context) => {
    const id = parse(DirId, c.req.param("dir"), "dir");
    const d = o.dirs.get(id);
    return d?.lab ? d : null;
  };
  app.get("/api/lab", (c) =>
    c.json({
      lab: o.dirs
        .refresh()
        .filter((d) => d.lab)
        .map((d) => {
          const v = labDirView(d);
          return { dir: d.id, label: d.label, running: v.running, preset: v.results?.preset ?? null, panels: Object.keys(v.results?.panels ?? {}), training: v.training.map(({ lossHistory: _l, spec: _s, ...t }) => t) };
        }),
    }),
  );
  app.get("/api/lab/:dir", (c) => {
    const d = labDir(c);
    return d ? c.json(labDirView(d)) : c.json({ error: "no lab directory with that id" }, 404);
  });
  app.get("/api/lab/:dir/training", (c) => {
    const d = labDir(c);
    return d ? c.json({ dir: d.id, training: labDirView(d).training }) : c.json({ error: "no lab directory with that id" }, 404);
  });

  app.get("/api/*", (c) => c.json({ error: `no API route ${c.req.path}` }, 404));

  // A served directory's own files (report.html, summary.md, results.json). Their HTML runs sandboxed:
  // no script in it can call this API with the viewer's cookie.
  app.get("/files/:dir/*", (c) => {
    const d = o.dirs.get(parse(DirId, c.req.param("dir"), "dir"));
    if (!d) return c.json({ error: "no served directory with that id" }, 404);
    return fileResponse(c, d.path, restOf(c, `/files/${c.req.param("dir")}/`), { "content-security-policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:" });
  });

  // The training playground (built by its own script): cross-origin isolated, so SharedArrayBuffer works.
  const isolation = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cross-origin-resource-policy": "same-origin" };
  app.get("/playground", (c) => c.redirect("/playground/"));
  app.get("/playground/*", (c) => {
    if (!existsSync(o.playgroundRoot)) return c.text("the playground is not built (npm run build:playground)", 404);
    const rel = restOf(c, "/playground/");
    return fileResponse(c, o.playgroundRoot, rel === "" ? "index.html" : rel, { ...isolation, "content-security-policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; img-src 'self' data:" });
  });

  app.get("/assets/*", (c) => fileResponse(c, join(o.webRoot, "assets"), restOf(c, "/assets/"), { "cache-control": "public, max-age=31536000, immutable" }));
  app.get("/", (c) => {
    const f = readServedFile(join(o.webRoot, "index.html"));
    return f ? new Response(f.body, { headers: { "content-type": f.type, "cache-control": "no-cache" } }) : c.html(NOT_BUILT);
  });
  app.get("/favicon.ico", (c) => c.body(null, 204));
  app.all("*", (c) => c.json({ error: "not found" }, 404));

  return { app, close: () => runs.close() };
}

export async function startViewServer(o: ViewServerOptions): Promise<ViewServer> {
  const host = o.host ?? "127.0.0.1";
  const token = o.token?.trim() || undefined;
  const loopback = isLoopbackHost(host);
  if (!loopback && !token) {
    throw new UserError(`--host ${host} is reachable from other machines and would show every run to anyone who connects: add --token <secret> (or $SELFCORRECT_VIEW_TOKEN), or bind 127.0.0.1`);
  }
  if (token !== undefined && token.length < 8) throw new UserError("--token must be at least 8 characters");
  const dirs = new ServedDirs(o.dirs, o.cwd ?? process.cwd());
  const stop = new AbortController();
  const { app, close } = createViewApp({
    dirs,
    token,
    loopback,
    webRoot: o.webRoot ?? DEFAULT_WEB_ROOT,
    playgroundRoot: o.playgroundRoot ?? DEFAULT_PLAYGROUND_ROOT,
    pollMs: o.pollMs ?? 500,
    signal: stop.signal,
  });
  const server = await new Promise<Server>((resolveServer, reject) => {
    const s = serve({ fetch: app.fetch, port: o.port ?? 0, hostname: host }) as Server;
    s.once("listening", () => resolveServer(s));
    s.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new UserError(`--port ${o.port}: in use on ${host}; pick another port (or 0 for any free one)`));
      else if (e.code === "EACCES") reject(new UserError(`no permission to listen on ${host}:${o.port}; use a port above 1023`));
      else reject(e);
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    dirs: dirs.all(),
    close: () =>
      new Promise<void>((done) => {
        stop.abort();
        server.close(() => {
          close();
          done();
        });
        // Event streams stay open until told: end them with the server.
        server.closeAllConnections();
      }),
  };
}
