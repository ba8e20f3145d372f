/**
 * The safetensors format in memory, browser-safe (./safetensors.ts adds files and node:crypto's
 * SHA-256): 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the
 * raw little-endian tensor bytes.
 */
import { UserError } from "../util/errors.js";

export interface TensorData {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorData & { dtype: string }>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
// The host byte order, without node:os (the big-endian paths keep such a host correct).
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Hex SHA-256 of the tensor bytes, recorded as `data_sha256` (Node: node:crypto; a browser: Web Crypto). */
export type DataDigest = (data: Uint8Array) => string;

/** The header entries and the raw little-endian data of F32 tensors, in insertion order. */
export function packTensors(tensors: Map<string, TensorData>): { header: Record<string, unknown>; data: Uint8Array } {
  let dataBytes = 0;
  const header: Record<string, unknown> = {};
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: tensor ${name} has ${t.data.length} values but shape [${t.shape}]`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [dataBytes, dataBytes + 4 * n] };
    dataBytes += 4 * n;
  }
  const data = new Uint8Array(dataBytes);
  const dv = new DataView(data.buffer);
  let off = 0;
  for (const t of tensors.values()) {
    if (LITTLE) data.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off);
    else for (let i = 0; i < t.data.length; i++) dv.setFloat32(off + 4 * i, t.data[i]!, true);
    off += t.data.byteLength;
  }
  return { header, data };
}

/** The file bytes for packTensors' output and the metadata (which should carry `data_sha256`). */
export function assembleSafetensors(packed: { header: Record<string, unknown>; data: Uint8Array }, metadata: Record<string, string>): Uint8Array {
  let json = JSON.stringify({ __metadata__: metadata, ...packed.header });
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) {
    json += " ".repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.length + packed.data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(packed.data, 8 + hb.length);
  return out;
}

/** Parses and validates a safetensors file (checking `data_sha256` with `digest`); F32 and F64 tensors are returned as Float32Array. */
export function decodeSafetensorsWith(bytes: Uint8Array, what: string, digest: DataDigest): SafetensorsFile {
  const bad = (msg: string): never => {
    throw new UserError(`${what}: ${msg}; the file is truncated or corrupted, expected a safetensors file written by the engine`);
  };
  if (bytes.length < 8) bad(`only ${bytes.length} bytes, expected at least an 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    bad(`header length ${n64} exceeds the ${bytes.length - 8} bytes after the length field`);
  }
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) bad("header is not a JSON object");
  const h = header as Record<string, unknown>;
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  if (h.__metadata__ !== undefined) {
    const m = h.__metadata__;
    if (typeof m !== "object" || m === null || Array.isArray(m)) bad("__metadata__ is not an object");
    for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
      if (typeof v !== "string") bad(`__metadata__.${k} is not a string`);
      metadata[k] = v as string;
    }
  }

  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, e] of Object.entries(h)) {
    if (name === "__metadata__") continue;
    if (typeof e !== "object" || e === null) bad(`entry ${name} is not an object`);
    const { dtype, shape, data_offsets } = e as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw new UserError(`${what}: tensor ${name} has dtype ${JSON.stringify(dtype)}; expected "F32" (or "F64")`);
    }
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) bad(`tensor ${name} has an invalid shape`);
    if (
      !Array.isArray(data_offsets) || data_offsets.length !== 2 ||
      !data_offsets.every((x) => Number.isSafeInteger(x) && x >= 0) || data_offsets[1] < data_offsets[0]
    ) {
      bad(`tensor ${name} has invalid data_offsets`);
    }
    const [begin, end] = data_offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== count * DTYPE_BYTES[dtype]!) {
      bad(`tensor ${name}: shape [${shape}] needs ${count * DTYPE_BYTES[dtype]!} bytes but data_offsets span ${end - begin}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // The byte ranges must tile [0, dataLen) exactly: no gaps, no overlap, nothing missing.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) bad(`tensor ${e.name} starts at byte ${e.begin}, expected ${cursor} (gap or overlap)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    bad(cursor > dataLen ? `header says the data is ${cursor} bytes but the file holds ${dataLen}` : `${dataLen - cursor} unexpected bytes after the last tensor`);
  }
  if (metadata.data_sha256 !== undefined) {
    const got = digest(bytes.subarray(dataStart));
    if (got !== metadata.data_sha256) bad("data checksum (data_sha256) does not match");
  }

  const tensors = new Map<string, TensorData & { dtype: string }>();
  for (const e of entries) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    const at = dataStart + e.begin;
    if (e.dtype === "F32") {
      if (LITTLE) new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * count));
      else for (let i = 0; i < count; i++) out[i] = dv.getFloat32(at + 4 * i, true);
    } else {
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(at + 8 * i, true);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: out });
  }
  return { tensors, metadata };
}

