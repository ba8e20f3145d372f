/**
 * Builds the training playground into dist/playground/ as ONE self-contained index.html: the page's
 * script and styles are inlined, the training worker is inlined (Vite's `?worker&inline`, started from
 * a blob: URL) and the WebAssembly kernels from dist/wasm are inlined into the worker as base64. So the
 * page needs no fetch at all and works from file://, from any static file server, and from
 * `selfcorrect view` at /playground/ (which adds COOP/COEP, letting the engine use shared memory).
 *
 * npm run build:playground   (needs dist/wasm: npm run build:wasm)
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig, type Plugin } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const KERNELS_ID = "virtual:selfcorrect-kernels";

/** `import kernels from "virtual:selfcorrect-kernels"`: the four dist/wasm builds as base64 strings. */
function inlineKernels(): Plugin {
  return {
    name: "selfcorrect-inline-kernels",
    resolveId(id) {
      return id === KERNELS_ID ? `\0${KERNELS_ID}` : undefined;
    },
    load(id) {
      if (id !== `\0${KERNELS_ID}`) return undefined;
      const b64 = (file: string) => {
        const path = resolve(root, "dist/wasm", file);
        try {
          return readFileSync(path).toString("base64");
        } catch {
          throw new Error(`${path} is missing: run \`npm run build:wasm\` before \`npm run build:playground\``);
        }
      };
      const files = {
        plain: b64("kernels-unshared.wasm"),
        plainFma: b64("kernels-fma-unshared.wasm"),
        shared: b64("kernels.wasm"),
        sharedFma: b64("kernels-fma.wasm"),
      };
      return `export default ${JSON.stringify(files)};`;
    },
  };
}

/** The engine and lab code the worker imports must stay browser-safe: fail the build on any Node module. */
function noNodeModules(): Plugin {
  return {
    name: "selfcorrect-no-node-modules",
    enforce: "pre",
    resolveId(id, importer) {
      if (id.startsWith("node:")) throw new Error(`${importer ?? "?"} imports ${id}: the playground runs in a browser; import the browser-safe module instead`);
      return undefined;
    },
  };
}

/** Inlines the emitted script and stylesheet into index.html, so the page works opened from file://. */
function singleFile(): Plugin {
  return {
    name: "selfcorrect-single-file",
    enforce: "post",
    generateBundle(_options, bundle) {
      const html = Object.values(bundle).find((f) => f.type === "asset" && f.fileName === "index.html");
      if (html?.type !== "asset") return;
      let text = String(html.source);
      for (const [name, file] of Object.entries(bundle)) {
        if (file.type === "chunk" && file.isEntry) {
          const tag = new RegExp(`<script type="module" crossorigin src="[^"]*${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"></script>`);
          if (!tag.test(text)) throw new Error(`singleFile: no <script> tag for ${name} in index.html`);
          // A function replacement: the code may contain "$&"-style patterns.
          text = text.replace(tag, () => `<script type="module">${file.code.replace(/<\/script/gi, "<\\/script")}</script>`);
          delete bundle[name];
        } else if (file.type === "asset" && name.endsWith(".css")) {
          const tag = new RegExp(`<link rel="stylesheet" crossorigin href="[^"]*${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}">`);
          if (!tag.test(text)) throw new Error(`singleFile: no <link> tag for ${name} in index.html`);
          text = text.replace(tag, () => `<style>${String(file.source)}</style>`);
          delete bundle[name];
        }
      }
      html.source = text;
    },
  };
}

export default defineConfig({
  root: here,
  base: "./",
  logLevel: "warn",
  plugins: [noNodeModules(), preact(), singleFile()],
  worker: {
    format: "iife",
    plugins: () => [noNodeModules(), inlineKernels()],
    // On a busy machine rolldown warns that plugins "took significant time"; that is the machine, not the build.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  build: {
    outDir: resolve(root, "dist/playground"),
    emptyOutDir: true,
    target: "es2022",
    modulePreload: false,
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
});
