/*
 * The model's input encoding in JavaScript: the same rules as autotraining/encoding.py, read from
 * the model's own metadata.json ("encoding"), for the dashboard and for TensorFlow.js in Node
 * (tests/js/tfjs_predict.mjs loads this very file).
 *
 * Per feature, in order: a number is its raw value; a boolean is 1/0; a category is one-hot over
 * its values plus an "other" column when it has one; an optional feature adds a missing-indicator
 * column (1 when the value is null/absent; the value columns then hold the imputed number, or
 * zeros for a boolean or a category).
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.AutotrainingEncoding = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  function featureWidth(f) {
    const base = f.type === 'category' ? f.values.length + (f.other ? 1 : 0) : 1;
    return base + (f.optional ? 1 : 0);
  }

  // A model published before encodings existed: plain numbers in feature_names order.
  function identity(featureNames) {
    return { features: featureNames.map((name) => ({ name, type: 'number', optional: false })) };
  }

  function fromMetadata(meta, fallbackNames) {
    if (meta && meta.encoding && Array.isArray(meta.encoding.features)) return meta.encoding;
    return identity(meta && Array.isArray(meta.feature_names) ? meta.feature_names : fallbackNames);
  }

  function width(enc) {
    return enc.features.reduce((n, f) => n + featureWidth(f), 0);
  }

  // One row (an object keyed by feature name; absent or null = missing) → an array of numbers.
  function encodeRow(enc, row) {
    const out = [];
    for (const f of enc.features) {
      const cols = new Array(featureWidth(f)).fill(0);
      const v = row[f.name];
      if (v === null || v === undefined) {
        if (f.optional) {
          cols[cols.length - 1] = 1;
          if (f.type === 'number') cols[0] = Number(f.impute || 0);
        }
      } else if (f.type === 'category') {
        const i = f.values.indexOf(v);
        if (i >= 0) cols[i] = 1;
        else if (f.other) cols[f.values.length] = 1;
      } else if (f.type === 'boolean') {
        cols[0] = v === true ? 1 : 0;
      } else {
        cols[0] = Number(v);
      }
      out.push(...cols);
    }
    return out;
  }

  function encodeRows(enc, rows) {
    return rows.map((row) => encodeRow(enc, row));
  }

  return { encodeRow, encodeRows, width, identity, fromMetadata };
});
