// Bundles the page scripts into ../static/ (package data; not committed). Run by the Makefile
// (`npm ci && npm run build`) and by setup.py when a wheel is built without the bundle.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static");
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, format: "iife", target: ["es2020"], legalComments: "eof", logLevel: "warning" };
for (const name of ["viewer", "layout-worker", "events"]) {
  await build({ ...common, entryPoints: [join(here, "src", `${name}.js`)], outfile: join(out, `${name}.js`) });
}
for (const name of ["viewer.css", "events.css"]) copyFileSync(join(here, "src", name), join(out, name));
