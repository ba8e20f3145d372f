/**
 * A GGUF header reader and validator: parses the header, metadata and tensor infos of a GGUF v2/v3
 * file with bounds checks, and checks that every tensor's data lies inside the file. Used to reject a
 * malformed model with a clear message before handing it to llama.cpp (whose own error is terse).
 * Only the header region is read, not the tensor data.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType } from "./writer.js";

export type GgufReadValue = number | bigint | boolean | string | GgufReadValue[];

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  /** Offset relative to the start of the data section. */
  offset: number;
}

export interface GgufHeader {
  version: number;
  fileSize: number;
  metadata: Record<string, GgufReadValue>;
  /** Value type name of each metadata key, as stored. */
  metadataTypes: Record<string, string>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
}

/** A file that is not a usable GGUF model; the message names the file and what is wrong. */
export class GgufFormatError extends Error {
  constructor(readonly path: string, detail: string) {
    super(`${path}: not a valid GGUF model file: ${detail}`);
    this.name = "GgufFormatError";
  }
}

/** [elements per block, bytes per block] of the ggml types whose size this reader knows. */
const GGML_TYPE_SIZE: Record<number, [number, number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  9: [32, 36], // Q8_1
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  15: [256, 292], // Q8_K
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  30: [1, 2], // BF16
};

const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(GgufValueType).map(([k, v]) => [v, k]));
const MAX_STRING = 1 << 30;
const MAX_DIMS = 4;

/** Bytes of a tensor's data, or undefined for a ggml type this reader does not know. */
export function ggmlTensorBytes(type: number, dims: number[]): number | undefined {
  const size = GGML_TYPE_SIZE[type];
  if (!size) return undefined;
  const n = dims.reduce((a, b) => a * b, 1);
  return Math.ceil(n / size[0]) * size[1];
}

/** Parses the header, metadata and tensor infos. Throws GgufFormatError naming the file on any problem. */
export function readGgufHeader(path: string): GgufHeader {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new GgufFormatError(path, "file not found");
    if (code === "EISDIR") throw new GgufFormatError(path, "is a directory, not a file");
    throw new GgufFormatError(path, `cannot open (${(e as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new GgufFormatError(path, "is a directory, not a file");
    const r = new FileCursor(fd, st.size, path);
    if (st.size >= 4) {
      const magic = r.u32();
      if (magic !== GGUF_MAGIC) {
        const got = Buffer.alloc(4);
        got.writeUInt32LE(magic);
        throw new GgufFormatError(path, `bad magic bytes ${JSON.stringify(got.toString("latin1"))} (expected "GGUF")`);
      }
    }
    if (st.size < 24) throw new GgufFormatError(path, `file is only ${st.size} bytes (a GGUF header alone is 24)`);
    const version = r.u32();
    if (version !== 2 && version !== 3) throw new GgufFormatError(path, `unsupported GGUF version ${version} (2 and 3 are supported)`);
    const nTensors = r.u64n("tensor count");
    const nKv = r.u64n("metadata count");
    const metadata: Record<string, GgufReadValue> = {};
    const metadataTypes: Record<string, string> = {};
    for (let i = 0; i < nKv; i++) {
      const key = r.string(`metadata key #${i}`);
      const type = r.u32();
      if (!(type in TYPE_NAME)) throw new GgufFormatError(path, `metadata ${key} has unknown value type ${type}`);
      metadataTypes[key] = TYPE_NAME[type]!;
      metadata[key] = r.value(type, key);
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.string(`tensor name #${i}`);
      const nDims = r.u32();
      if (nDims < 1 || nDims > MAX_DIMS) throw new GgufFormatError(path, `tensor ${name} has ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(r.u64n(`tensor ${name} dimension`));
      const type = r.u32();
      const offset = r.u64n(`tensor ${name} offset`);
      tensors.push({ name, dims, type, offset });
    }
    const a = metadata["general.alignment"];
    const alignment = typeof a === "number" && a > 0 ? a : GGUF_DEFAULT_ALIGNMENT;
    const dataOffset = Math.ceil(r.pos / alignment) * alignment;
    return { version, fileSize: st.size, metadata, metadataTypes, tensors, alignment, dataOffset };
  } finally {
    closeSync(fd);
  }
}

/**
 * Full structural check: the header parses, there is at least one tensor, names are unique, offsets are
 * aligned, and every tensor's data (for the ggml types whose size is known) lies within the file.
 */
export function validateGgufFile(path: string): GgufHeader {
  const h = readGgufHeader(path);
  if (h.tensors.length === 0) throw new GgufFormatError(path, "it has no tensors (a vocabulary-only file cannot generate)");
  if (typeof h.metadata["general.architecture"] !== "string") throw new GgufFormatError(path, "metadata general.architecture is missing");
  const names = new Set<string>();
  for (const t of h.tensors) {
    if (names.has(t.name)) throw new GgufFormatError(path, `duplicate tensor ${t.name}`);
    names.add(t.name);
    if (t.offset % h.alignment !== 0) throw new GgufFormatError(path, `tensor ${t.name} offset ${t.offset} is not a multiple of the alignment ${h.alignment}`);
    const bytes = ggmlTensorBytes(t.type, t.dims);
    if (bytes === undefined) continue;
    const end = h.dataOffset + t.offset + bytes;
    if (end > h.fileSize) {
      throw new GgufFormatError(
        path,
        `tensor ${t.name} [${t.dims.join(", ")}] needs bytes up to ${end} but the file has ${h.fileSize} (truncated or corrupted)`,
      );
    }
  }
  return h;
}

/** Reads sequentially through a file descriptor with a growing window, so only the header is read. */
class FileCursor {
  pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(private fd: number, private size: number, private path: string) {}

  private need(n: number, what: string): Buffer {
    if (this.pos + n > this.size) throw new GgufFormatError(this.path, `file ends inside ${what} at byte ${this.pos} (truncated)`);
    const rel = this.pos - this.bufStart;
    if (rel + n > this.buf.length) {
      const len = Math.min(this.size - this.pos, Math.max(n, 1 << 20, this.buf.length * 2));
      this.buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const k = readSync(this.fd, this.buf, got, len - got, this.pos + got);
        if (k === 0) throw new GgufFormatError(this.path, `unexpected end of file inside ${what}`);
        got += k;
      }
      this.bufStart = this.pos;
    }
    const start = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }

  u32(what = "header"): number {
    return this.need(4, what).readUInt32LE(0);
  }

  /** A u64 that must fit a JS number and (for counts and sizes) be plausible for this file. */
  u64n(what: string): number {
    const v = this.need(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(this.path, `${what} ${v} is implausibly large`);
    return Number(v);
  }

  string(what: string): string {
    const n = this.u64n(`${what} length`);
    if (n > MAX_STRING || this.pos + n > this.size) throw new GgufFormatError(this.path, `${what} claims ${n} bytes, past the end of the file (truncated)`);
    return this.need(n, what).toString("utf8");
  }

  value(type: number, key: string): GgufReadValue {
    switch (type) {
      case GgufValueType.uint8: return this.need(1, key).readUInt8(0);
      case GgufValueType.int8: return this.need(1, key).readInt8(0);
      case GgufValueType.uint16: return this.need(2, key).readUInt16LE(0);
      case GgufValueType.int16: return this.need(2, key).readInt16LE(0);
      case GgufValueType.uint32: return this.need(4, key).readUInt32LE(0);
      case GgufValueType.int32: return this.need(4, key).readInt32LE(0);
      case GgufValueType.float32: return this.need(4, key).readFloatLE(0);
      case GgufValueType.float64: return this.need(8, key).readDoubleLE(0);
      case GgufValueType.bool: return this.need(1, key).readUInt8(0) !== 0;
      case GgufValueType.uint64: return this.need(8, key).readBigUInt64LE(0);
      case GgufValueType.int64: return this.need(8, key).readBigInt64LE(0);
      case GgufValueType.string: return this.string(key);
      case GgufValueType.array: {
        const itemType = this.u32(key);
        if (!(itemType in TYPE_NAME)) throw new GgufFormatError(this.path, `metadata ${key} is an array of unknown type ${itemType}`);
        const n = this.u64n(`${key} array length`);
        if (n > this.size - this.pos) throw new GgufFormatError(this.path, `metadata ${key} claims ${n} items, past the end of the file (truncated)`);
        const out: GgufReadValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, key);
        return out;
      }
      default:
        throw new GgufFormatError(this.path, `metadata ${key} has unknown value type ${type}`);
    }
  }
}
