declare module "virtual:selfcorrect-kernels" {
  /** The dist/wasm kernel builds, base64 (see vite.config.ts). */
  const kernels: { plain: string; plainFma: string; shared: string; sharedFma: string };
  export default kernels;
}

declare module "*?worker&inline" {
  const WorkerFactory: new (options?: { name?: string }) => Worker;
  export default WorkerFactory;
}
