// Builds one JavaScript plugin into a component with componentize-js (the library call:
// the jco CLI's `componentize` fails on this stack).
//
//   node plugins/js/build.mjs SOURCE.js WIT_FILE OUT.wasm
//
// Run `npm ci` in this directory first (plugins/build.sh does).
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

const [sourcePath, witPath, outPath] = process.argv.slice(2);
if (!sourcePath || !witPath || !outPath) {
  console.error("usage: node build.mjs SOURCE.js WIT_FILE OUT.wasm");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: resolve(sourcePath),
  witPath: resolve(witPath),
  worldName: "plugin",
  // Gannet grants no WASI: no stdio, clocks, random or HTTP in the component.
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await mkdir(dirname(resolve(outPath)), { recursive: true });
await writeFile(outPath, component);
