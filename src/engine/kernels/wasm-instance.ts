/**
 * The browser-safe half of the WebAssembly kernels (./wasm.ts has the Node loader that reads the
 * binaries from dist/wasm): memory sizing, and instantiating a compiled kernel module over a memory.
 * Nothing here touches the file system or Node's modules, so a web page can compile the .wasm bytes
 * itself (WebAssembly.compile) and call instantiateKernels with the module.
 */
import type { Kernels } from "./types.js";

// The project compiles with lib ES2023 + @types/node 20, neither of which declares WebAssembly (it
// lives in lib.dom). These module-local declarations describe the part used here; at run time the
// names resolve to Node's global WebAssembly object.
// eslint-disable-next-line @typescript-eslint/no-namespace
declare namespace WebAssembly {
  interface Memory {
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(deltaPages: number): number;
  }
  // biome-ignore lint/suspicious/noEmptyInterface: an opaque handle, passed back to Instance and to workers
  interface Module {}
  interface Instance {
    readonly exports: Record<string, unknown>;
  }
  const Memory: { new (desc: { initial: number; maximum?: number; shared?: boolean }): Memory };
  const Instance: { new (module: Module, imports: Record<string, Record<string, unknown>>): Instance };
  function compile(bytes: Uint8Array): Promise<Module>;
  function validate(bytes: Uint8Array): boolean;
}
/** The (shared or plain) linear memory the kernels import. */
export type KernelMemory = WebAssembly.Memory;
/** The compiled kernel module (structured-cloneable to worker threads). */
export type KernelModule = WebAssembly.Module;

/** First float index the caller may allocate at; [0, KERNEL_HEAP_BASE) holds the module's static data. */
export const KERNEL_HEAP_BASE = 16384;

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit (the module declares the same maximum)

/** Floats of per-instance scratch the kernels need for matmuls up to maxC inputs x maxOC outputs and sequences up to T. */
export function kernelScratchFloats(maxC: number, maxOC: number, T: number): number {
  // matmulForward transposes the [OC, C] weight into scratch; matmulBackward packs 128-row chunks of
  // dout transposed ([OC, 128]); attention transposes one head's keys (or values) to [hs, T rounded
  // up to 8]. The calls never overlap, so they share the region.
  const c = Math.ceil(maxC);
  const oc = Math.ceil(maxOC);
  return Math.max(c * oc, Math.max(c, oc) * 128, c * attentionRowStride(T)) + 64;
}

function attentionRowStride(T: number): number {
  return (Math.ceil(T) + 7) & ~7;
}

/** A memory the kernel module can import: at least `bytes` long, growable to 4 GiB. */
export function createKernelMemory(bytes: number, shared: boolean): WebAssembly.Memory {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`createKernelMemory: bytes must be a finite number >= 0, got ${bytes}`);
  const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  if (pages > MAX_PAGES) throw new RangeError(`createKernelMemory: ${bytes} bytes exceeds the 4 GiB wasm32 limit`);
  return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared });
}

export interface WasmKernelOptions {
  memory: WebAssembly.Memory;
  /** Float index of this instance's scratch region (>= KERNEL_HEAP_BASE). */
  scratchPtr: number;
  /** Size of the scratch region in floats (see kernelScratchFloats). */
  scratchFloats: number;
}

/** Compiles kernel binary bytes (a build from dist/wasm, however the caller got them). */
export function compileKernelBytes(bytes: Uint8Array): Promise<KernelModule> {
  return WebAssembly.compile(bytes);
}

/** Whether this runtime accepts the binary (the FMA builds need relaxed SIMD). */
export function kernelBytesValid(bytes: Uint8Array): boolean {
  return WebAssembly.validate(bytes);
}

/** Whether `memory` is a shared (threads) memory; picks the matching binary. */
export function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
}

interface KernelExports {
  setScratch(ptr: number, floats: number): void;
  heapBaseBytes(): number;
  matmulForward(out: number, inp: number, weight: number, bias: number, BT: number, C: number, OC: number): void;
  matmulBackward(dinp: number, dweight: number, dbias: number, dout: number, inp: number, weight: number, BT: number, C: number, OC: number, overwrite?: number): void;
  layernormForward(out: number, mean: number, rstd: number, inp: number, weight: number, bias: number, BT: number, C: number): void;
  layernormBackward(dinp: number, dweight: number, dbias: number, dout: number, inp: number, weight: number, mean: number, rstd: number, BT: number, C: number): void;
  attentionForward(out: number, att: number, qkv: number, B: number, T: number, C: number, NH: number, softmax: number): void;
  attentionBackward(dqkv: number, datt: number, dout: number, qkv: number, att: number, B: number, T: number, C: number, NH: number, softmax: number, overwrite?: number): void;
  geluForward(out: number, inp: number, N: number): void;
  geluBackward(dinp: number, inp: number, dout: number, N: number, overwrite?: number): void;
  add(out: number, a: number, b: number, N: number): void;
  accumulate(dst: number, src: number, N: number): void;
  fill(dst: number, value: number, N: number): void;
  flushTiny(dst: number, N: number): void;
  adamUpdate(params: number, grads: number, m: number, v: number, N: number, lr: number, beta1: number, beta2: number, eps: number, t: number): void;
}

/** Synchronous instantiation (for worker threads that received a compiled module). */
export function instantiateKernels(module: WebAssembly.Module, opts: WasmKernelOptions): Kernels {
  const { memory, scratchPtr, scratchFloats } = opts;
  if (!Number.isInteger(scratchPtr) || scratchPtr < KERNEL_HEAP_BASE) {
    throw new RangeError(`instantiateKernels: scratchPtr must be an integer >= KERNEL_HEAP_BASE (${KERNEL_HEAP_BASE}), got ${scratchPtr}`);
  }
  if (!Number.isInteger(scratchFloats) || scratchFloats < 0) {
    throw new RangeError(`instantiateKernels: scratchFloats must be an integer >= 0, got ${scratchFloats}`);
  }
  if ((scratchPtr + scratchFloats) * 4 > memory.buffer.byteLength) {
    throw new RangeError(`instantiateKernels: scratch [${scratchPtr}, ${scratchPtr + scratchFloats}) lies beyond the memory (${memory.buffer.byteLength} bytes)`);
  }
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const x = instance.exports as unknown as KernelExports;
  if (x.heapBaseBytes() > KERNEL_HEAP_BASE * 4) {
    throw new Error(`kernel module static data (${x.heapBaseBytes()} bytes) overlaps KERNEL_HEAP_BASE; raise KERNEL_HEAP_BASE`);
  }
  // A binary built before the `overwrite` arguments would ignore them and add into unzeroed buffers:
  // wrong gradients, silently. A wasm export's length is its parameter count.
  if (x.matmulBackward.length !== 10 || x.attentionBackward.length !== 11 || x.geluBackward.length !== 5) {
    throw new Error("WebAssembly kernels are older than the engine's source; run `npm run build:wasm`");
  }
  x.setScratch(scratchPtr, scratchFloats);

  const checkAttentionScratch = (what: string, T: number, C: number, NH: number): void => {
    if (!Number.isInteger(C / NH)) throw new RangeError(`${what}: NH (${NH}) must divide C (${C})`);
    const need = (C / NH) * attentionRowStride(T);
    if (need > scratchFloats) {
      throw new RangeError(`${what}: T = ${T}, head size ${C / NH} needs ${need} scratch floats, this instance has ${scratchFloats} (size it with kernelScratchFloats)`);
    }
  };

  let view = new Float32Array(memory.buffer);
  const heap = (): Float32Array => {
    const buf = memory.buffer;
    if (view.buffer !== buf || view.length * 4 !== buf.byteLength) view = new Float32Array(buf);
    return view;
  };

  return {
    heap,
    matmulForward(out, inp, weight, bias, BT, C, OC) {
      if (C * OC > scratchFloats) {
        throw new RangeError(`matmulForward: weight ${OC}x${C} needs ${C * OC} scratch floats, this instance has ${scratchFloats} (size it with kernelScratchFloats)`);
      }
      x.matmulForward(out, inp, weight, bias, BT, C, OC);
    },
    matmulBackward: x.matmulBackward,
    layernormForward: x.layernormForward,
    layernormBackward: x.layernormBackward,
    attentionForward(out, att, qkv, B, T, C, NH, softmax) {
      checkAttentionScratch("attentionForward", T, C, NH);
      x.attentionForward(out, att, qkv, B, T, C, NH, softmax);
    },
    attentionBackward(dqkv, datt, dout, qkv, att, B, T, C, NH, softmax, overwrite = 0) {
      checkAttentionScratch("attentionBackward", T, C, NH);
      x.attentionBackward(dqkv, datt, dout, qkv, att, B, T, C, NH, softmax, overwrite);
    },
    geluForward: x.geluForward,
    geluBackward: x.geluBackward,
    add: x.add,
    accumulate: x.accumulate,
    fill: x.fill,
    flushTiny: x.flushTiny,
    adamUpdate: x.adamUpdate,
  };
}
