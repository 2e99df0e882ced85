// Load a published model with the real TensorFlow.js (node_modules/@tensorflow/tfjs, pure JS CPU
// backend) from a URL, exactly as a browser does (shards resolved relative to the model.json URL,
// redirects followed), and print its probabilities for the rows of a JSON file.
//
//   node tests/js/tfjs_predict.mjs MODEL_URL ROWS.json [--repeat N] [--no-output]
//
// ROWS.json: {"feature_names": [...], "rows": [[...], ...]} (the model's inputs, numbers), or rows as
// objects of typed feature values ({"island": "Dream", "smoker": true, "bill": null}): those are encoded
// with handlers/static/encoding.js (the dashboard's own file) and the model's metadata.json, fetched
// next to model.json — exactly what the dashboard does.
// Prints one JSON line: {"tfjs": version, "load_ms", "predict_ms" (best of N), "rows", "probabilities"}.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";

const encoding = createRequire(import.meta.url)("../../handlers/static/encoding.js");

const args = process.argv.slice(2);
const modelUrl = args[0];
const rowsFile = args[1];
const repeat = args.includes("--repeat") ? Number(args[args.indexOf("--repeat") + 1]) : 1;
const withOutput = !args.includes("--no-output");
if (!modelUrl || !rowsFile) {
  console.error("usage: node tfjs_predict.mjs MODEL_URL ROWS.json [--repeat N] [--no-output]");
  process.exit(2);
}

await tf.setBackend("cpu");
const input = JSON.parse(readFileSync(rowsFile, "utf8"));
let rows = input.rows;
const t0 = performance.now();
const model = await tf.loadLayersModel(modelUrl);
const loadMs = performance.now() - t0;
if (rows.length && !Array.isArray(rows[0])) {
  const meta = await (await fetch(new URL("metadata.json", modelUrl))).json();
  rows = encoding.encodeRows(encoding.fromMetadata(meta, input.feature_names), rows);
}
const x = tf.tensor2d(rows, [rows.length, rows[0].length], "float32");
let best = Infinity;
let probabilities = null;
for (let i = 0; i < Math.max(1, repeat); i++) {
  const t1 = performance.now();
  const y = model.predict(x);
  const values = await y.array();
  best = Math.min(best, performance.now() - t1);
  y.dispose();
  probabilities = values;
}
process.stdout.write(JSON.stringify({
  tfjs: tf.version.tfjs, load_ms: loadMs, predict_ms: best, rows: rows.length,
  probabilities: withOutput ? probabilities : null,
}) + "\n");
