/**
 * The browser-safe part of the kernel backend (./backend.ts adds the Node loader of the WebAssembly
 * binaries): what a thread needs to build its kernels over the heap, given an already compiled
 * kernel module.
 */
import type { Kernels } from "../kernels/types.js";
import { createReferenceKernels } from "../kernels/reference.js";
import {
  KERNEL_HEAP_BASE, createKernelMemory, instantiateKernels, kernelScratchFloats, type KernelMemory, type KernelModule,
} from "../kernels/wasm-instance.js";

export type KernelKind = "wasm" | "reference";

/** What a thread needs to build its kernels over the shared heap (structured-cloneable for workers). */
export type KernelSource =
  | { kind: "reference"; buffer: ArrayBuffer | SharedArrayBuffer }
  | {
      kind: "wasm"; module: KernelModule; memory: KernelMemory;
      /** Path of the native matmul addon that replaces the WebAssembly matmuls (same bits); Node only. */
      native?: string;
    };

export interface PreparedBackend {
  kind: KernelKind;
  /** First float index the model may use. */
  baseFloats: number;
  /** Kernel scratch each thread needs (floats). */
  scratchFloats: number;
  /** Allocates the heap of `totalFloats` floats. */
  allocate(totalFloats: number): KernelSource;
  /** Builds a thread's kernels over the heap; makeKernels below when absent (Node's adds the native matmuls). */
  makeKernels?: (src: KernelSource, scratchPtr: number, scratchFloats: number) => Kernels;
}

/** Largest heap we allocate: wasm32 addresses 4 GiB; keep one 64 KiB page of headroom. */
export const MAX_HEAP_BYTES = 4 * 1024 * 1024 * 1024 - 65536;

export function referenceBackend(shared: boolean): PreparedBackend {
  return {
    kind: "reference",
    baseFloats: 16,
    scratchFloats: 0,
    allocate(totalFloats) {
      const bytes = totalFloats * 4;
      return { kind: "reference", buffer: shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes) };
    },
  };
}

/**
 * The WebAssembly kernels from a compiled `module` (built for a shared memory when `shared`). `dims`
 * sizes each thread's kernel scratch: the widest matmul side is 4C (c_fc's output, mlp c_proj's
 * input) or the token width d (read-in, read-out), and attention needs T.
 */
export function wasmBackend(
  module: KernelModule, shared: boolean, dims: { C: number; T: number; d: number }, native?: string,
): PreparedBackend {
  const wide = Math.max(4 * dims.C, dims.d);
  return {
    kind: "wasm",
    baseFloats: KERNEL_HEAP_BASE,
    scratchFloats: kernelScratchFloats(wide, wide, dims.T),
    allocate(totalFloats) {
      const memory = createKernelMemory(totalFloats * 4, shared);
      return native ? { kind: "wasm", module, memory, native } : { kind: "wasm", module, memory };
    },
  };
}

export function heapOf(src: KernelSource, floats: number): Float32Array {
  return new Float32Array(src.kind === "reference" ? src.buffer : src.memory.buffer, 0, floats);
}

export function makeKernels(src: KernelSource, scratchPtr: number, scratchFloats: number): Kernels {
  if (src.kind === "reference") return createReferenceKernels(new Float32Array(src.buffer));
  return instantiateKernels(src.module, { memory: src.memory, scratchPtr, scratchFloats });
}
