// Extra build steps of the image viewer (called from ../../build.mjs).
//
// Cornerstone's DICOM image loader decodes in web workers it starts with
// `new Worker(new URL("./decodeImageFrameWorker.js", import.meta.url))`: esbuild leaves that URL
// alone, so it resolves next to the bundled chunk, in static/dist/. We bundle the worker there
// under that exact name. Its codecs load WebAssembly files by name from the `wasmBasePath` the
// viewer passes to the loader (static/dist/wasm/), where they are copied. No CDN: every byte is
// served by the app (whitenoise).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const WASM = [
  "codec-openjpeg/dist/openjpegwasm_decode.wasm",
  "codec-libjpeg-turbo-8bit/dist/libjpegturbowasm_decode.wasm",
  "codec-charls/dist/charlswasm_decode.wasm",
  "codec-openjph/dist/openjphjs.wasm",
  "codec-libjxl/dist/jpegxlwasm_decode.wasm",
];

// Options the main build needs for the viewer's dependencies: the codecs' Emscripten glue
// requires Node modules only on code paths browsers never take, and vtk.js's XML writer (never
// used) imports a package that needs Node.
export const viewerBuildOptions = {
  external: ["fs", "path", "crypto", "module", "url", "worker_threads"],
  alias: { xmlbuilder2: "./src/viewer/stubs/xmlbuilder2.js" },
};

export async function buildViewerWorker(outdir) {
  await build({
    entryPoints: ["node_modules/@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js"],
    bundle: true,
    minify: true,
    format: "esm",
    target: ["chrome110", "firefox110", "safari16"],
    outfile: `${outdir}/decodeImageFrameWorker.js`,
    ...viewerBuildOptions,
    logLevel: "warning",
  });
  mkdirSync(`${outdir}/wasm`, { recursive: true });
  for (const file of WASM) {
    copyFileSync(`node_modules/@cornerstonejs/${file}`, `${outdir}/wasm/${file.split("/").pop()}`);
  }
}
