// Bundles every entry point in src/*.js (one per page family) into ../static/dist/.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { buildViewerWorker, viewerBuildOptions } from "./src/viewer/build.mjs";

const entryPoints = readdirSync("src")
  .filter((name) => name.endsWith(".js"))
  .map((name) => `src/${name}`);

// Start from an empty folder so chunks of earlier builds are not collected and served.
rmSync("../static/dist", { recursive: true, force: true });

await build({
  entryPoints,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  splitting: true,
  target: ["chrome110", "firefox110", "safari16"],
  outdir: "../static/dist",
  loader: { ".wasm": "file", ".woff2": "file" },
  ...viewerBuildOptions, // Node-only modules of the viewer's dependencies (src/viewer/build.mjs)
  logLevel: "warning",
});
// The viewer's decoding worker and codecs (see src/viewer/build.mjs).
await buildViewerWorker("../static/dist");
console.log(`[secondread] built ${entryPoints.length} front-end bundle(s)`);
