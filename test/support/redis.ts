/**
 * A real redis-server for the cluster tests, on a free 127.0.0.1 port with a temp dir.
 *
 * With SELFCORRECT_TEST_REDIS_URL set, tests that need nothing special (no restart, no password) use that
 * server instead, each on its own database number, flushed first. When Redis is unavailable the tests
 * fail under CI=true (CI installs it) and skip with the reason elsewhere.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { connectOnce, parseRedisUrl } from "../../src/cluster/connect.js";
import { sleep } from "../../src/util/sleep.js";

export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server (SIGTERM: with appendonly the AOF is flushed) and starts it again on the same port and dir. */
  restart(): Promise<void>;
  /** FLUSHALL: a clean queue and artifact store for the next test. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  appendonly?: boolean;
  password?: string;
  /** Database number on a shared SELFCORRECT_TEST_REDIS_URL server. */
  db?: number;
  /** Needs its own server (restart, requirepass), never the shared one. */
  own?: boolean;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

async function command(url: string, name: string, ...args: string[]): Promise<unknown> {
  const c = await connectOnce(parseRedisUrl(url), 2000);
  try {
    return await c.call(name, ...args);
  } finally {
    c.disconnect();
  }
}

async function waitUp(url: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      await command(url, "PING");
      return;
    } catch (e) {
      if (Date.now() > end) throw new Error(`redis-server at ${url} did not come up: ${(e as Error).message}`);
      await sleep(100);
    }
  }
}

/** A Redis for this test, or null after t.skip (outside CI) when none can be had. */
export async function testRedis(t: TestContext, o: RedisOptions = {}): Promise<TestRedis | null> {
  const shared = process.env.SELFCORRECT_TEST_REDIS_URL;
  if (shared && !o.own && !o.password) {
    const url = `${shared.replace(/\/\d*$/, "")}/${o.db ?? 0}`;
    await command(url, "FLUSHDB");
    const port = Number(new URL(url).port);
    return {
      url,
      port,
      restart: () => Promise.reject(new Error("a shared server cannot be restarted; use { own: true }")),
      flush: async () => void (await command(url, "FLUSHDB")),
      stop: async () => {},
    };
  }
  if (!hasRedisServer()) {
    const why = "redis-server is not installed (apt-get install redis-server, or set SELFCORRECT_TEST_REDIS_URL)";
    if (process.env.CI === "true") throw new Error(why);
    t.skip(why);
    return null;
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "selfcorrect-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", o.appendonly ? "yes" : "no"];
  if (o.password) args.push("--requirepass", o.password);
  const auth = o.password ? `:${encodeURIComponent(o.password)}@` : "";
  const url = `redis://${auth}127.0.0.1:${port}`;
  let child: ChildProcess;
  const start = async () => {
    child = spawn("redis-server", args, { stdio: "ignore" });
    await waitUp(url);
  };
  const stopChild = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  await start();
  return {
    url,
    port,
    restart: async () => {
      await stopChild();
      await start();
    },
    flush: async () => void (await command(url, "FLUSHALL")),
    stop: async () => {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
