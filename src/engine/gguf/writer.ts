/**
 * A GGUF v3 writer (the file format of llama.cpp): header, typed key/value metadata, tensor infos,
 * alignment padding and F32/F16 tensor data, little-endian throughout.
 *
 * Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x   { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   zero padding to `general.alignment`
 *   tensor data, each tensor starting at a multiple of the alignment (offsets relative to here)
 * Strings are u64 byte length + UTF-8 bytes (no terminator); arrays are u32 item type + u64 count + items.
 * ne[0] is the fastest-varying dimension: a row-major matrix of R rows and C columns has ne = [C, R].
 */
import { writeFileAtomic } from "../../util/fs.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value type ids. */
export const GgufValueType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GgufValueType;
export type GgufScalarTypeName = Exclude<GgufValueTypeName, "array">;

/** ggml tensor type ids this writer can encode. */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

export type GgufNumberTypeName = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";

export type GgufValue =
  | { type: GgufNumberTypeName; value: number }
  | { type: "uint64" | "int64"; value: bigint | number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArray;

/** A homogeneous array; `itemType: "array"` nests arrays (each item is then a GgufArray). */
export type GgufArray =
  | { type: "array"; itemType: GgufNumberTypeName; value: ArrayLike<number> }
  | { type: "array"; itemType: "uint64" | "int64"; value: ArrayLike<bigint | number> }
  | { type: "array"; itemType: "bool"; value: ArrayLike<boolean> }
  | { type: "array"; itemType: "string"; value: readonly string[] }
  | { type: "array"; itemType: "array"; value: readonly GgufArray[] };

export interface GgufTensor {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (contiguous) dimension. */
  dims: number[];
  /** Storage type in the file; F16 data is converted from the given float32 values. */
  type: GgmlTypeName;
  data: Float32Array;
}

export interface GgufFile {
  /** Insertion order is kept in the file. `general.alignment` (uint32), if present, sets the padding. */
  metadata: Record<string, GgufValue>;
  tensors: GgufTensor[];
}

// Small helpers so metadata literals stay readable.
export const gguf = {
  u8: (value: number): GgufValue => ({ type: "uint8", value }),
  i8: (value: number): GgufValue => ({ type: "int8", value }),
  u16: (value: number): GgufValue => ({ type: "uint16", value }),
  i16: (value: number): GgufValue => ({ type: "int16", value }),
  u32: (value: number): GgufValue => ({ type: "uint32", value }),
  i32: (value: number): GgufValue => ({ type: "int32", value }),
  f32: (value: number): GgufValue => ({ type: "float32", value }),
  f64: (value: number): GgufValue => ({ type: "float64", value }),
  u64: (value: bigint | number): GgufValue => ({ type: "uint64", value }),
  i64: (value: bigint | number): GgufValue => ({ type: "int64", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strings: (value: readonly string[]): GgufArray => ({ type: "array", itemType: "string", value }),
  f32s: (value: ArrayLike<number>): GgufArray => ({ type: "array", itemType: "float32", value }),
  i32s: (value: ArrayLike<number>): GgufArray => ({ type: "array", itemType: "int32", value }),
};

const SCALAR_SIZE: Record<Exclude<GgufScalarTypeName, "string">, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};

const INT_RANGE: Record<string, [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

const TENSOR_ELEMENT_SIZE: Record<GgmlTypeName, number> = { F32: 4, F16: 2 };

/** Bytes the file will take, and a few layout facts, without encoding anything. */
export function ggufLayout(file: GgufFile): { headerBytes: number; dataOffset: number; tensorOffsets: number[]; totalBytes: number; alignment: number } {
  const alignment = resolveAlignment(file.metadata);
  let n = 4 + 4 + 8 + 8;
  for (const [key, value] of Object.entries(file.metadata)) n += stringSize(key) + 4 + valueSize(value, key);
  for (const t of file.tensors) n += stringSize(t.name) + 4 + 8 * t.dims.length + 4 + 8;
  const headerBytes = n;
  const dataOffset = alignUp(headerBytes, alignment);
  const tensorOffsets: number[] = [];
  let off = 0;
  for (const t of file.tensors) {
    tensorOffsets.push(off);
    off = alignUp(off + tensorBytes(t), alignment);
  }
  // The last tensor is padded too, as llama.cpp's writer does; readers only need the data itself.
  return { headerBytes, dataOffset, tensorOffsets, totalBytes: dataOffset + off, alignment };
}

/** Encodes a whole GGUF file into memory. Throws on an invalid value, name or tensor size. */
export function encodeGguf(file: GgufFile): Uint8Array {
  validate(file);
  const layout = ggufLayout(file);
  const buf = new Uint8Array(layout.totalBytes);
  const w = new ByteWriter(buf);
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(file.tensors.length);
  w.u64(Object.keys(file.metadata).length);
  for (const [key, value] of Object.entries(file.metadata)) {
    w.string(key);
    w.u32(GgufValueType[value.type]);
    writeValue(w, value);
  }
  file.tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(layout.tensorOffsets[i]!);
  });
  if (w.pos !== layout.headerBytes) throw new Error(`gguf writer: header size mismatch (${w.pos} != ${layout.headerBytes})`);
  file.tensors.forEach((t, i) => {
    w.pos = layout.dataOffset + layout.tensorOffsets[i]!;
    if (t.type === "F32") {
      for (let j = 0; j < t.data.length; j++) w.f32(t.data[j]!);
    } else {
      for (let j = 0; j < t.data.length; j++) w.u16(float32ToFloat16Bits(t.data[j]!));
    }
  });
  return buf;
}

/** Encodes and writes atomically (a reader never sees a half-written model). */
export function writeGguf(path: string, file: GgufFile): { bytes: number } {
  const bytes = encodeGguf(file);
  writeFileAtomic(path, bytes);
  return { bytes: bytes.length };
}

/** IEEE 754 binary16 bits of a float, round-to-nearest-even, with overflow to infinity and subnormals. */
export function float32ToFloat16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // may carry into the exponent: correct
  return sign | half;
}

/** The float value of binary16 bits (for tests and readers). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

function resolveAlignment(metadata: Record<string, GgufValue>): number {
  const a = metadata["general.alignment"];
  if (a === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (a.type !== "uint32") throw new Error(`gguf writer: general.alignment must be uint32, got ${a.type}`);
  const v = a.value;
  if (!Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0) throw new Error(`gguf writer: general.alignment must be a power of two, got ${v}`);
  return v;
}

function validate(file: GgufFile): void {
  resolveAlignment(file.metadata);
  for (const [key, value] of Object.entries(file.metadata)) {
    if (key.length === 0) throw new Error("gguf writer: empty metadata key");
    checkValue(value, key);
  }
  const names = new Set<string>();
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new Error(`gguf writer: duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name) >= 64) throw new Error(`gguf writer: tensor name ${t.name} is 64 bytes or longer (ggml limit)`);
    if (t.dims.length < 1 || t.dims.length > 4) throw new Error(`gguf writer: tensor ${t.name} has ${t.dims.length} dims (1..4 allowed)`);
    if (!t.dims.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`gguf writer: tensor ${t.name} has invalid dims [${t.dims.join(", ")}]`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`gguf writer: tensor ${t.name} dims [${t.dims.join(", ")}] need ${n} values, got ${t.data.length}`);
    if (!(t.type in GgmlType)) throw new Error(`gguf writer: tensor ${t.name} has unsupported type ${String(t.type)}`);
  }
}

function checkValue(v: GgufValue, key: string): void {
  switch (v.type) {
    case "string":
      if (typeof v.value !== "string") throw new Error(`gguf writer: ${key} must be a string`);
      return;
    case "bool":
      if (typeof v.value !== "boolean") throw new Error(`gguf writer: ${key} must be a boolean`);
      return;
    case "float32":
    case "float64":
      if (typeof v.value !== "number") throw new Error(`gguf writer: ${key} must be a number`);
      return;
    case "uint64":
    case "int64": {
      const b = BigInt(v.value);
      const [lo, hi] = v.type === "uint64" ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
      if (b < lo || b > hi) throw new Error(`gguf writer: ${key} = ${b} is out of range for ${v.type}`);
      return;
    }
    case "array": {
      const items = v.value as ArrayLike<unknown>;
      for (let i = 0; i < items.length; i++) checkValue(itemAsValue(v, i), `${key}[${i}]`);
      return;
    }
    default: {
      const [lo, hi] = INT_RANGE[v.type]!;
      if (!Number.isInteger(v.value) || v.value < lo || v.value > hi) throw new Error(`gguf writer: ${key} = ${v.value} is not a valid ${v.type}`);
    }
  }
}

function itemAsValue(a: GgufArray, i: number): GgufValue {
  if (a.itemType === "array") return a.value[i]!;
  return { type: a.itemType, value: (a.value as ArrayLike<unknown>)[i] } as GgufValue;
}

function stringSize(s: string): number {
  return 8 + Buffer.byteLength(s, "utf8");
}

function valueSize(v: GgufValue, key: string): number {
  if (v.type === "string") return stringSize(v.value);
  if (v.type !== "array") return SCALAR_SIZE[v.type];
  let n = 4 + 8;
  if (v.itemType === "string") for (const s of v.value) n += stringSize(s);
  else if (v.itemType === "array") for (const inner of v.value) n += valueSize(inner, key);
  else n += SCALAR_SIZE[v.itemType] * v.value.length;
  return n;
}

function writeValue(w: ByteWriter, v: GgufValue): void {
  switch (v.type) {
    case "uint8": w.u8(v.value); return;
    case "int8": w.i8(v.value); return;
    case "uint16": w.u16(v.value); return;
    case "int16": w.i16(v.value); return;
    case "uint32": w.u32(v.value); return;
    case "int32": w.i32(v.value); return;
    case "float32": w.f32(v.value); return;
    case "float64": w.f64(v.value); return;
    case "uint64": w.u64(v.value); return;
    case "int64": w.i64(v.value); return;
    case "bool": w.u8(v.value ? 1 : 0); return;
    case "string": w.string(v.value); return;
    case "array": {
      w.u32(GgufValueType[v.itemType]);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) writeValue(w, itemAsValue(v, i));
      return;
    }
  }
}

function tensorBytes(t: GgufTensor): number {
  return t.dims.reduce((a, b) => a * b, 1) * TENSOR_ELEMENT_SIZE[t.type];
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

class ByteWriter {
  pos = 0;
  private view: DataView;
  constructor(private buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(v: number) { this.view.setUint8(this.pos, v); this.pos += 1; }
  i8(v: number) { this.view.setInt8(this.pos, v); this.pos += 1; }
  u16(v: number) { this.view.setUint16(this.pos, v, true); this.pos += 2; }
  i16(v: number) { this.view.setInt16(this.pos, v, true); this.pos += 2; }
  u32(v: number) { this.view.setUint32(this.pos, v, true); this.pos += 4; }
  i32(v: number) { this.view.setInt32(this.pos, v, true); this.pos += 4; }
  f32(v: number) { this.view.setFloat32(this.pos, v, true); this.pos += 4; }
  f64(v: number) { this.view.setFloat64(this.pos, v, true); this.pos += 8; }
  u64(v: bigint | number) { this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; }
  i64(v: bigint | number) { this.view.setBigInt64(this.pos, BigInt(v), true); this.pos += 8; }
  string(s: string) {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(n);
    this.buf.set(Buffer.from(s, "utf8"), this.pos);
    this.pos += n;
  }
}
