/**
 * Where workers leave what other machines need (training checkpoints), reachable from every worker.
 *
 * Default: Redis itself, so one URL is all a cluster needs. A checkpoint (weights, both Adam moments and
 * the lab state; about 30 MB for the paper model, well under a megabyte for the quick one) is one binary
 * value, written with one SET, so a reader never sees half of one. Its small meta (step, total steps,
 * code version) is a second key, written after the blob, so a finished meta always points at a blob
 * at least that far along. Alternative: a shared directory (`--artifacts DIR`, e.g. NFS), files written
 * atomically (temp file + rename).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { writeFileAtomic } from "../util/fs.js";

export interface ArtifactStore {
  /** Where the artifacts live, for messages. */
  readonly where: string;
  put(key: string, data: Buffer): Promise<void>;
  get(key: string): Promise<Buffer | null>;
}

export const ARTIFACT_PREFIX = "selfcorrect:artifact:";

export class RedisArtifacts implements ArtifactStore {
  readonly where = "redis";
  constructor(private readonly client: Redis) {}
  async put(key: string, data: Buffer): Promise<void> {
    await this.client.set(ARTIFACT_PREFIX + key, data);
  }
  get(key: string): Promise<Buffer | null> {
    return this.client.getBuffer(ARTIFACT_PREFIX + key);
  }
}

export class DirArtifacts implements ArtifactStore {
  constructor(readonly where: string) {
    mkdirSync(where, { recursive: true });
  }
  private path(key: string): string {
    return join(this.where, key.replace(/[^A-Za-z0-9._-]/g, "_"));
  }
  async put(key: string, data: Buffer): Promise<void> {
    writeFileAtomic(this.path(key), data);
  }
  async get(key: string): Promise<Buffer | null> {
    const p = this.path(key);
    return existsSync(p) ? readFileSync(p) : null;
  }
}

export interface CheckpointMeta {
  runId: string;
  step: number;
  steps: number;
  codeVersion: string;
}

/** One buffer holding `<path>` and `<path>.json`: [4-byte length of the JSON][JSON][weights]. */
export function packCheckpoint(path: string): Buffer {
  const json = readFileSync(`${path}.json`);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  return Buffer.concat([head, json, readFileSync(path)]);
}

/** Writes a packed checkpoint back as `<path>` and `<path>.json` (weights first, meta last). */
export function unpackCheckpoint(data: Buffer, path: string): void {
  const n = data.readUInt32LE(0);
  writeFileAtomic(path, data.subarray(4 + n));
  writeFileAtomic(`${path}.json`, data.subarray(4, 4 + n));
}

const blobKey = (runId: string) => `ckpt:${runId}`;
const metaKey = (runId: string) => `ckpt:${runId}:meta`;

export async function putCheckpoint(store: ArtifactStore, path: string, meta: CheckpointMeta): Promise<void> {
  await store.put(blobKey(meta.runId), packCheckpoint(path));
  await store.put(metaKey(meta.runId), Buffer.from(JSON.stringify(meta)));
}

export async function checkpointMeta(store: ArtifactStore, runId: string): Promise<CheckpointMeta | null> {
  const b = await store.get(metaKey(runId));
  return b ? (JSON.parse(b.toString("utf8")) as CheckpointMeta) : null;
}

/** Downloads a run's checkpoint to `path`; false when the store has none. */
export async function fetchCheckpoint(store: ArtifactStore, runId: string, path: string): Promise<boolean> {
  const b = await store.get(blobKey(runId));
  if (!b) return false;
  unpackCheckpoint(b, path);
  return true;
}
