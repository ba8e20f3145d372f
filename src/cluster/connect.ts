/**
 * Opening the cluster's Redis: a fail-fast probe first (one connect, bounded, no reconnects) so that an
 * unreachable host or a wrong password is a clear error within seconds, then the long-lived client that
 * reconnects by itself (a restarted redis-server).
 */
import type { Queue } from "bullmq";
import { UserError } from "../util/errors.js";
import { DirArtifacts, RedisArtifacts, type ArtifactStore } from "./artifacts.js";
import { openQueue } from "./queue.js";
import { parseRedisUrl, RedisClient, type RedisOptions } from "./redis.js";

/** Bound of the first connect plus handshake. */
export const CONNECT_TIMEOUT_MS = 5000;

function describeFailure(url: string, o: RedisOptions, e: Error): string {
  const where = `${o.host}:${o.port}`;
  const code = (e as NodeJS.ErrnoException).code;
  const msg = e.message;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
    return `Redis at ${where} refused the password (${msg}); give the right one in the URL: redis://:PASSWORD@${where}`;
  }
  if (/NOAUTH/i.test(msg)) return `Redis at ${where} needs a password (${msg}); give it in the URL: redis://:PASSWORD@${where}`;
  if (code === "ECONNREFUSED") return `cannot reach Redis at ${where}: connection refused; is redis-server running there? (--redis ${redactUrl(url)})`;
  if (code === "ETIMEDOUT") return `cannot reach Redis at ${where}: no answer within ${CONNECT_TIMEOUT_MS} ms (--redis ${redactUrl(url)})`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot reach Redis at ${where}: unknown host (--redis ${redactUrl(url)})`;
  return `cannot use Redis at ${where}: ${msg}`;
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(redis:\/\/[^:@/]*:)[^@]*@/, "$1***@");
}

function waitReady(c: RedisClient): Promise<void> {
  return new Promise((resolve, reject) => {
    if (c.status === "ready") return resolve();
    c.once("ready", () => resolve());
    c.once("end", () => reject(c.lastError ?? new Error("connection closed")));
  });
}

/** Connects to `url` or throws a UserError that says what is wrong, within about CONNECT_TIMEOUT_MS. */
export async function openRedis(url: string): Promise<RedisClient> {
  let opts: RedisOptions;
  try {
    opts = parseRedisUrl(url);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const probe = new RedisClient({ ...opts, reconnect: false, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  probe.on("error", () => {});
  try {
    await waitReady(probe);
    await probe.call("PING");
  } catch (e) {
    probe.disconnect();
    throw new UserError(describeFailure(url, opts, e as Error));
  }
  await probe.quit();
  const client = new RedisClient({ ...opts, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  // Errors of a dropped connection are handled by reconnecting; the reconnect loop logs nothing by itself.
  client.on("error", () => {});
  return client;
}

export interface Cluster {
  client: RedisClient;
  queue: Queue;
  artifacts: ArtifactStore;
  close: () => Promise<void>;
}

/** The Redis connection, the queue and the artifact store (`artifactsDir`, else Redis itself). */
export async function openCluster(url: string, artifactsDir?: string): Promise<Cluster> {
  const client = await openRedis(url);
  const queue = openQueue(client);
  const artifacts = artifactsDir ? new DirArtifacts(artifactsDir) : new RedisArtifacts(client);
  return {
    client,
    queue,
    artifacts,
    close: async () => {
      await queue.close().catch(() => {});
      await client.quit().catch(() => {});
    },
  };
}
