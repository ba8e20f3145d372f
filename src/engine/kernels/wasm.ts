/**
 * WebAssembly SIMD implementation of the kernel contract (./types.ts).
 *
 * How to use:
 *   const memory = createKernelMemory(bytes, shared);          // shared = true for worker threads
 *   // Reserve floats [0, KERNEL_HEAP_BASE) for the module; allocate your buffers above it, and give
 *   // every instance (thread) its own scratch region of kernelScratchFloats(maxC, maxOC, T) floats.
 *   const k = await createWasmKernels({ memory, scratchPtr, scratchFloats });
 *   k.matmulForward(outPtr, inpPtr, wPtr, biasPtr, BT, C, OC);  // pointers are float indices
 *   const heap = k.heap();                                     // Float32Array view; re-read after grow()
 *
 * In a worker thread: compile once in the main thread with `compileKernelModule(shared)`, post the
 * WebAssembly.Module and the shared WebAssembly.Memory to the worker (both are transferable by
 * structured clone), and call `instantiateKernels(module, { memory, scratchPtr, scratchFloats })`
 * there (synchronous). Each instance keeps no state except its scratch region, so instances on
 * different threads may run concurrently on different buffers of one shared memory.
 *
 * The binaries are built from src/engine/kernels/assembly by `npm run build:wasm` into dist/wasm:
 * kernels.wasm imports a shared memory, kernels-unshared.wasm a plain one (wasm requires the import
 * to match); the right one is picked from the memory you pass (compileKernelModule(shared) for
 * workers). Each also exists as an FMA build (relaxed SIMD, ~1.5x faster matmuls), used by default
 * where the runtime supports it: see KernelModuleOptions.fma and defaultKernelVariant().
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import type { Kernels } from "./types.js";
import { compileKernelBytes, instantiateKernels, isShared, kernelBytesValid, type KernelModule, type WasmKernelOptions } from "./wasm-instance.js";

export {
  KERNEL_HEAP_BASE, createKernelMemory, instantiateKernels, kernelScratchFloats,
  type KernelMemory, type KernelModule, type WasmKernelOptions,
} from "./wasm-instance.js";

export interface KernelModuleOptions {
  /**
   * Use the relaxed-SIMD FMA build (f32x4.relaxed_madd; ~1.5x faster matmuls). Default: on when the
   * runtime supports relaxed SIMD (Node 20 after V8's --experimental-wasm-relaxed-simd, which this
   * module sets; on by default in Node 22+), unless SELFCORRECT_WASM_FMA=0. Results differ from the
   * mul+add build in the last bits; a process uses one build for all its threads.
   */
  fma?: boolean;
}

function wasmPath(shared: boolean, fma: boolean): string {
  const file = `kernels${fma ? "-fma" : ""}${shared ? "" : "-unshared"}.wasm`;
  // SELFCORRECT_WASM_DIR points at another build (e.g. `node scripts/build-wasm.mjs --out-dir /tmp/k`
  // for kernel experiments, leaving dist/wasm, which other processes use, alone).
  const dir = process.env.SELFCORRECT_WASM_DIR;
  if (dir) return join(dir, file);
  // dist/src/engine/kernels/wasm.js -> dist/wasm/
  return fileURLToPath(new URL(`../../../wasm/${file}`, import.meta.url));
}

async function readWasm(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`WebAssembly kernels not built: ${file} is missing; run \`npm run build:wasm\``);
    }
    throw err;
  }
}

let fmaSupport: Promise<boolean> | null = null;

/** Whether this runtime accepts the FMA build (enabling V8's relaxed-SIMD flag if needed). */
function runtimeSupportsFma(): Promise<boolean> {
  fmaSupport ??= (async () => {
    const bytes = await readWasm(wasmPath(false, true));
    if (kernelBytesValid(bytes)) return true;
    // Node 20 (V8 11.3) implements relaxed SIMD behind a flag; V8 reads it when validating.
    setFlagsFromString("--experimental-wasm-relaxed-simd");
    return kernelBytesValid(bytes);
  })();
  return fmaSupport;
}

/** Which build `compileKernelModule` picks by default in this process. */
export async function defaultKernelVariant(): Promise<"fma" | "mul-add"> {
  if (process.env.SELFCORRECT_WASM_FMA === "0") return "mul-add";
  return (await runtimeSupportsFma()) ? "fma" : "mul-add";
}

const modules = new Map<string, Promise<KernelModule>>();

/** Compiles (once per process and variant, cached) the kernel module for a shared or a plain memory. */
export async function compileKernelModule(shared = true, opts: KernelModuleOptions = {}): Promise<KernelModule> {
  const fma = opts.fma ?? (await defaultKernelVariant()) === "fma";
  if (fma && !(await runtimeSupportsFma())) {
    throw new Error("compileKernelModule: the FMA build needs WebAssembly relaxed SIMD, which this runtime lacks; pass fma: false");
  }
  const key = `${shared}/${fma}`;
  let m = modules.get(key);
  if (!m) {
    m = readWasm(wasmPath(shared, fma)).then((bytes) => compileKernelBytes(bytes));
    modules.set(key, m);
    m.catch(() => modules.delete(key));
  }
  return m;
}

/** Creates the kernels over `opts.memory`, compiling the matching module if needed. */
export async function createWasmKernels(opts: WasmKernelOptions & KernelModuleOptions): Promise<Kernels> {
  const module = await compileKernelModule(isShared(opts.memory), { fma: opts.fma });
  return instantiateKernels(module, opts);
}

