// Removes the compiled TypeScript before a build, so that a module deleted or moved in src/ leaves no stale
// copy in dist/ for a test to import or for `npm pack` to ship. dist/wasm (the kernel build) is kept.
import { rmSync } from "node:fs";

for (const dir of ["dist/src", "dist/test", "dist/bench"]) rmSync(dir, { recursive: true, force: true });
