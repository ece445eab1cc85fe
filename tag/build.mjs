// Minifies the browser tags into crates/collector/assets, where the collector embeds them.
//   node tag/build.mjs          build
//   node tag/build.mjs --check  fail if the committed assets are stale or oriel.js is over budget
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { minify } from "terser";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const TAGS = [
  { src: "tag/oriel.js", out: "crates/collector/assets/oriel.min.js", budget: 3072 },
  { src: "tag/divolte.js", out: "crates/collector/assets/divolte.min.js", budget: null },
];
const check = process.argv.includes("--check");
let failed = false;

for (const tag of TAGS) {
  const srcPath = join(root, tag.src);
  if (!existsSync(srcPath)) {
    console.error(`missing ${tag.src}`);
    failed = true;
    continue;
  }
  const result = await minify(readFileSync(srcPath, "utf8"), {
    ecma: 2017,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false },
  });
  const code = result.code + "\n";
  const gz = gzipSync(code, { level: 9 }).length;
  const outPath = join(root, tag.out);
  if (check) {
    const committed = existsSync(outPath) ? readFileSync(outPath, "utf8") : "";
    if (committed !== code) {
      console.error(`${tag.out} is stale: run node tag/build.mjs and commit the result`);
      failed = true;
    }
  } else {
    writeFileSync(outPath, code);
  }
  const over = tag.budget !== null && gz > tag.budget;
  console.log(`${tag.out}: ${code.length} bytes, ${gz} bytes gzipped${tag.budget ? ` (budget ${tag.budget})` : ""}${over ? " OVER BUDGET" : ""}`);
  if (over) failed = true;
}
process.exit(failed ? 1 : 0);
