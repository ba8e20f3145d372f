/**
 * safetensors, by hand: 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the
 * raw little-endian tensor bytes. Reading validates everything (header length, JSON, dtypes,
 * shapes against byte ranges, ranges tiling the data exactly, file length) and, when the writer
 * recorded one, the SHA-256 of the data, so a truncated or corrupted file is never loaded silently.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { UserError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { assembleSafetensors, decodeSafetensorsWith, packTensors, type SafetensorsFile, type TensorData } from "./safetensors-codec.js";

export type { SafetensorsFile, TensorData } from "./safetensors-codec.js";

const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** Serialises F32 tensors (in insertion order) plus string metadata; adds `data_sha256` to the metadata. */
export function encodeSafetensors(tensors: Map<string, TensorData>, metadata: Record<string, string> = {}): Uint8Array {
  const packed = packTensors(tensors);
  return assembleSafetensors(packed, { ...metadata, data_sha256: sha256(packed.data) });
}

export function writeSafetensors(path: string, tensors: Map<string, TensorData>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Parses and validates a safetensors file; F32 and F64 tensors are returned as Float32Array. */
export function decodeSafetensors(bytes: Uint8Array, what = "safetensors file"): SafetensorsFile {
  return decodeSafetensorsWith(bytes, what, sha256);
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`checkpoint ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected an existing safetensors file`);
  }
  return decodeSafetensors(bytes, `checkpoint ${path}`);
}
