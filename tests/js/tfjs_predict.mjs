// Load a published model with the real TensorFlow.js (node_modules/@tensorflow/tfjs; backend `cpu`,
// pure JS, or `wasm`, @tensorflow/tfjs-backend-wasm whose .wasm binaries ship in the npm package) from a URL, exactly as a browser does (shards resolved relative to the model.json URL,
// redirects followed), and print its probabilities for the rows of a JSON file.
//
//   node tests/js/tfjs_predict.mjs MODEL_URL ROWS.json [--repeat N] [--no-output] [--backend cpu|wasm] [--batch-size N]
//
// ROWS.json: {"feature_names": [...], "rows": [[...], ...]} (the model's inputs, numbers), or rows as
// objects of typed feature values ({"island": "Dream", "smoker": true, "bill": null}): those are encoded
// with handlers/static/encoding.js (the dashboard's own file) and the model's metadata.json, fetched
// next to model.json — exactly what the dashboard does.
// Prints one JSON line: {"tfjs": version, "backend", "load_ms", "predict_ms" (best of N), "rows", "probabilities"}.
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
const backend = args.includes("--backend") ? args[args.indexOf("--backend") + 1] : "cpu";
// model.predict's own default is 32 rows per batch; 0 (the default here) = all rows in one batch
const batchSize = args.includes("--batch-size") ? Number(args[args.indexOf("--batch-size") + 1]) : 0;
if (!modelUrl || !rowsFile) {
  console.error("usage: node tfjs_predict.mjs MODEL_URL ROWS.json [--repeat N] [--no-output]");
  process.exit(2);
}

if (backend === "wasm") {
  await import("@tensorflow/tfjs-backend-wasm"); // registers the backend; dev dependency only
} else if (backend !== "cpu") {
  console.error(`unknown backend ${backend}: cpu or wasm`);
  process.exit(2);
}
if (!(await tf.setBackend(backend))) {
  console.error(`TensorFlow.js backend ${backend} did not initialize`);
  process.exit(1);
}
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
  // Timed: the forward pass and the probabilities back in one typed array (as numpy gives an
  // ndarray); the nested arrays printed below are built outside the clock.
  const t1 = performance.now();
  const y = model.predict(x, { batchSize: batchSize > 0 ? batchSize : rows.length });
  await y.data();
  best = Math.min(best, performance.now() - t1);
  if (withOutput && i === 0) probabilities = await y.array();
  y.dispose();
}
process.stdout.write(JSON.stringify({
  tfjs: tf.version.tfjs, backend: tf.getBackend(), batch_size: batchSize > 0 ? batchSize : rows.length, load_ms: loadMs, predict_ms: best, rows: rows.length,
  probabilities: withOutput ? probabilities : null,
}) + "\n");
