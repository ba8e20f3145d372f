import { compileKernelModule } from "../kernels/wasm.js";
import { referenceBackend, wasmBackend, type KernelKind, type PreparedBackend } from "./backend-core.js";

export {
  MAX_HEAP_BYTES, heapOf, makeKernels, referenceBackend, wasmBackend,
  type KernelKind, type KernelSource, type PreparedBackend,
} from "./backend-core.js";

/**
 * Picks the kernels, loading the WebAssembly binary from dist/wasm. `shared`: the heap will be used
 * by several worker threads. `dims`: see wasmBackend.
 */
export async function prepareBackend(kind: KernelKind, shared: boolean, dims: { C: number; T: number; d: number }): Promise<PreparedBackend> {
  if (kind === "reference") return referenceBackend(shared);
  return wasmBackend(await compileKernelModule(shared), shared, dims);
}
