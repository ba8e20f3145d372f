/**
 * Native AVX-512 matmuls for Node (built from ./native/matmul.c into dist/native/matmul.node by
 * `npm run build:native`, during `npm ci`). They compute the same bits as the WebAssembly FMA
 * kernels, so a machine with them trains exactly like one without (or like a browser): every output
 * element gets the same chain of fused multiply-adds in the same order, only 16 lanes at a time
 * instead of 4 (the argument is in matmul.c's header; test/engine-native.test.ts checks the bits).
 *
 * Used by default where the addon is built, the CPU has AVX-512F and FMA, and the FMA WebAssembly
 * build is in use (the mul + add build rounds differently). SELFCORRECT_NATIVE=0 turns it off.
 * Only the matmuls are native: they are about 80% of a step, and the other kernels are memory-bound.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kernels } from "./types.js";
import { defaultKernelVariant } from "./wasm.js";

interface NativeMatmulAddon {
  supported(): boolean;
  matmulForward(heap: Float32Array, out: number, inp: number, weight: number, bias: number, BT: number, C: number, OC: number): void;
  matmulBackward(
    heap: Float32Array, dinp: number, dweight: number, dbias: number, dout: number, inp: number, weight: number,
    BT: number, C: number, OC: number, overwrite: number, wasmScratchFloats: number,
  ): void;
  fmaPeak(iterations: number): number;
}

/** Where the addon is: SELFCORRECT_NATIVE_DIR (another build), else dist/native. */
export function nativeMatmulPath(): string {
  const dir = process.env.SELFCORRECT_NATIVE_DIR;
  if (dir) return join(dir, "matmul.node");
  // dist/src/engine/kernels/native.js -> dist/native/
  return fileURLToPath(new URL("../../../native/matmul.node", import.meta.url));
}

const require = createRequire(import.meta.url);

/** The addon at `path`; require's module cache loads each file once per thread. */
function loadAddon(path: string): NativeMatmulAddon {
  return require(path) as NativeMatmulAddon;
}

export type NativeMatmulStatus =
  | { available: true; path: string }
  /** `hardware`: this machine cannot run them (not x86-64, or no AVX-512F / FMA); otherwise turned off or not built. */
  | { available: false; reason: string; hardware: boolean };

/** Whether the native matmuls can run here, and if not, why (for logs and test skips). */
export function nativeMatmulStatus(): NativeMatmulStatus {
  if (process.env.SELFCORRECT_NATIVE === "0") return { available: false, reason: "SELFCORRECT_NATIVE=0", hardware: false };
  if (process.arch !== "x64") return { available: false, reason: `the native matmuls are x86-64 only (this is ${process.arch})`, hardware: true };
  const path = nativeMatmulPath();
  if (!existsSync(path)) {
    return { available: false, reason: `${path} is not built (run \`npm run build:native\`; it needs a C compiler)`, hardware: false };
  }
  let addon: NativeMatmulAddon;
  try {
    addon = loadAddon(path);
  } catch (err) {
    return { available: false, reason: `${path} does not load: ${(err as Error).message}`, hardware: false };
  }
  if (!addon.supported()) return { available: false, reason: "this CPU lacks AVX-512F or FMA", hardware: true };
  return { available: true, path };
}

/**
 * The addon this process runs its matmuls on, or undefined for the WebAssembly ones: only over the FMA
 * WebAssembly build (the mul + add build rounds differently), and where nativeMatmulStatus() allows.
 */
export async function nativeMatmulInUse(): Promise<string | undefined> {
  if ((await defaultKernelVariant()) !== "fma") return undefined;
  const status = nativeMatmulStatus();
  return status.available ? status.path : undefined;
}

/**
 * `k` with its matmuls replaced by the native ones at `path` (a path nativeMatmulStatus() gave).
 * `scratchFloats` is the WebAssembly instance's scratch size: its bias gradient's row blocking
 * depends on it, and the native code copies that blocking.
 */
export function withNativeMatmul(k: Kernels, path: string, scratchFloats: number): Kernels {
  const addon = loadAddon(path);
  const heap = k.heap as () => Float32Array;
  return {
    ...k,
    matmulForward(out, inp, weight, bias, BT, C, OC) {
      addon.matmulForward(heap(), out, inp, weight, bias, BT, C, OC);
    },
    matmulBackward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, overwrite = 0) {
      addon.matmulBackward(heap(), dinp, dweight, dbias, dout, inp, weight, BT, C, OC, overwrite, scratchFloats);
    },
  };
}

/**
 * For benchmarks: a loop of nothing but 512-bit FMAs (24 independent chains) from the addon at
 * `path`. `run()` does `flops` floating-point operations; flops / seconds is this core's FMA peak,
 * the ceiling the native matmuls are measured against.
 */
export function nativeFmaProbe(path: string, iterations = 100_000): { flops: number; run: () => void } {
  const addon = loadAddon(path);
  return { flops: iterations * 24 * 32, run: () => void addon.fmaPeak(iterations) };
}
