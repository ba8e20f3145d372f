import type { Kernels } from "../kernels/types.js";
import { nativeMatmulInUse, withNativeMatmul } from "../kernels/native.js";
import { compileKernelModule } from "../kernels/wasm.js";
import { makeKernels as makeCoreKernels, referenceBackend, wasmBackend, type KernelKind, type KernelSource, type PreparedBackend } from "./backend-core.js";

export {
  MAX_HEAP_BYTES, heapOf, referenceBackend, wasmBackend,
  type KernelKind, type KernelSource, type PreparedBackend,
} from "./backend-core.js";

/** A thread's kernels over the heap, with the native matmuls when the source names them. */
export function makeKernels(src: KernelSource, scratchPtr: number, scratchFloats: number): Kernels {
  const k = makeCoreKernels(src, scratchPtr, scratchFloats);
  return src.kind === "wasm" && src.native ? withNativeMatmul(k, src.native, scratchFloats) : k;
}

/**
 * Picks the kernels, loading the WebAssembly binary from dist/wasm and, with the FMA build, the
 * native matmuls where they run here (the same bits; src/engine/kernels/native.ts). `shared`: the
 * heap will be used by several worker threads. `dims`: see wasmBackend.
 */
export async function prepareBackend(kind: KernelKind, shared: boolean, dims: { C: number; T: number; d: number }): Promise<PreparedBackend> {
  if (kind === "reference") return referenceBackend(shared);
  const module = await compileKernelModule(shared);
  return { ...wasmBackend(module, shared, dims, await nativeMatmulInUse()), makeKernels };
}
