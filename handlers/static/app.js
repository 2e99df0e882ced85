/*
 * The dashboard: the version history (chart + rounds table, polled from GET models), and the
 * serving model run in the browser by TensorFlow.js (loaded through the model proxy): one input
 * per schema feature with the probability of every label, and a label map over two features.
 *
 * Everything comes from the API and from static/schema.json; nothing here knows the default
 * (thermal comfort) schema. The latest prediction is exposed for tests and scripts on
 * #prediction (data-state="ready", data-version, data-features, data-probabilities: JSON with
 * the exact float32 values TensorFlow.js returned).
 */
'use strict';

(function () {
  const POLL_MS = 4000;
  const MAX_HISTORY_PAGES = 20;
  const TABLE_ROWS = 200;
  const MAP_COLS = 90;
  const MAP_ROWS = 60;
  const MAP_W = 520;
  const MAP_H = 360;
  const PALETTE = ['#2563eb', '#16a34a', '#ea580c', '#9333ea', '#ca8a04', '#0891b2', '#db2777', '#4b5563'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    schema: null,
    features: [],        // schema features, with slider ranges resolved
    labels: [],
    values: [],          // current input per feature (schema order): number, boolean, string, or null (missing)
    rounds: new Map(),   // version -> ModelVersion dict
    servingVersion: '',
    model: null,
    modelVersion: '',
    encoding: null,      // the serving model's input encoding (metadata.json; see static/encoding.js)
    numeric: [],         // indexes of the numeric features (the label map's possible axes)
    modelLabels: [],
    loadingVersion: '',
    failedVersion: '',
    mapX: 0,
    mapY: 1,
    updateQueued: false,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) {
      // The API's errors carry {"message"}: e.g. why a read was refused (a missing signature or token).
      const answer = await r.json().catch(() => ({}));
      const why = typeof answer.message === 'string' ? `: ${answer.message.slice(0, 200)}` : '';
      throw new Error(`GET ${url} answered HTTP ${r.status}${why}`);
    }
    return r.json();
  }

  // ---------- formatting ----------
  const pct = (x) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
  const count = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
  const short = (n) => (n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${n}`);
  const versionLabel = (v) => (v ? String(parseInt(v, 10)) : '–');

  function when(ms) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function formatValue(f, v) {
    if (v === null || v === undefined) return 'missing';
    if (f.type === 'boolean') return v ? 'true' : 'false';
    if (f.type === 'category') return String(v);
    if (f.type === 'integer') return String(Math.round(v));
    return String(+v.toFixed(f.decimals));
  }

  function niceStep(span, targetTicks) {
    const raw = span / Math.max(1, targetTicks);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  }

  function ticks(lo, hi, target) {
    const step = niceStep(hi - lo, target);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  // ---------- schema and inputs ----------
  const isNumeric = (f) => f.type === 'number' || f.type === 'integer';
  const OTHER_VALUE = '(other)';

  function resolveFeature(f) {
    if (!isNumeric(f)) return Object.assign({}, f, { start: f.type === 'boolean' ? false : f.values[0] });
    const min = f.min === null || f.min === undefined ? -Infinity : f.min;
    const max = f.max === null || f.max === undefined ? Infinity : f.max;
    let lo = f.typical ? f.typical[0] : min;
    let hi = f.typical ? f.typical[1] : max;
    if (!isFinite(lo) && !isFinite(hi)) { lo = 0; hi = 1; }
    else if (!isFinite(lo)) lo = hi - Math.max(1, Math.abs(hi));
    else if (!isFinite(hi)) hi = lo + Math.max(1, Math.abs(lo));
    const step = f.type === 'integer' ? Math.max(1, Math.round(niceStep(hi - lo, 100))) : niceStep(hi - lo, 200);
    const decimals = Math.max(0, Math.min(6, 1 - Math.floor(Math.log10(step)))) ;
    let start = (lo + hi) / 2;
    if (f.type === 'integer') start = Math.round(start);
    return Object.assign({}, f, { min, max, lo, hi, step, decimals, start });
  }

  // A category is a select (with an "other" entry when the feature has that bucket), a boolean a
  // checkbox; an optional feature gets a "missing" toggle that sends null in place of the value.
  function typedInput(f, i) {
    let input;
    if (f.type === 'boolean') {
      input = el('input', { type: 'checkbox', id: `input-${f.name}`, 'data-feature': f.name, 'aria-label': f.name });
      input.addEventListener('change', () => { state.values[i] = input.checked; queueUpdate(); });
    } else {
      input = el('select', { id: `input-${f.name}`, 'data-feature': f.name, 'aria-label': f.name });
      f.values.forEach((v) => input.appendChild(el('option', { value: v, text: v })));
      if (f.other) input.appendChild(el('option', { value: OTHER_VALUE, text: 'other' }));
      input.addEventListener('change', () => { state.values[i] = input.value; queueUpdate(); });
    }
    return [input];
  }

  function missingToggle(f, i, inputs) {
    const toggle = el('input', { type: 'checkbox', id: `missing-${f.name}`, 'aria-label': `${f.name} missing` });
    let kept = null;
    toggle.addEventListener('change', () => {
      if (toggle.checked) { kept = state.values[i]; state.values[i] = null; }
      else state.values[i] = kept;
      inputs.forEach((x) => { x.disabled = toggle.checked; });
      queueUpdate();
    });
    return el('label', { class: 'missing' }, [toggle, 'missing']);
  }

  function buildInputs() {
    const box = $('inputs');
    box.textContent = '';
    state.features.forEach((f, i) => {
      const name = el('div', { class: 'feature-name' }, [f.name + (f.unit ? ` (${f.unit})` : '')]);
      if (f.description) name.appendChild(el('small', { text: f.description }));
      if (!isNumeric(f)) {
        const inputs = typedInput(f, i);
        const parts = [name, ...inputs];
        if (f.optional) parts.push(missingToggle(f, i, inputs));
        box.appendChild(el('div', { class: 'feature', 'data-feature': f.name }, parts));
        state.values[i] = f.start;
        return;
      }
      const slider = el('input', {
        type: 'range', id: `slider-${f.name}`, min: f.lo, max: f.hi, step: f.step, value: f.start,
        'aria-label': f.name,
      });
      const number = el('input', {
        type: 'number', id: `input-${f.name}`, 'data-feature': f.name, step: 'any', value: formatValue(f, f.start),
        'aria-label': `${f.name} value`,
      });
      if (isFinite(f.min)) number.min = f.min;
      if (isFinite(f.max)) number.max = f.max;
      slider.addEventListener('input', () => {
        state.values[i] = Number(slider.value);
        number.value = formatValue(f, state.values[i]);
        queueUpdate();
      });
      number.addEventListener('input', () => {
        const v = Number(number.value);
        if (number.value.trim() === '' || !isFinite(v) || v < f.min || v > f.max) return;
        if (f.type === 'integer' && !Number.isInteger(v)) return;
        state.values[i] = v;
        slider.value = String(Math.min(f.hi, Math.max(f.lo, v)));
        queueUpdate();
      });
      const parts = [name, slider, number];
      if (f.optional) parts.push(missingToggle(f, i, [slider, number]));
      box.appendChild(el('div', { class: 'feature', 'data-feature': f.name }, parts));
      state.values[i] = f.start;
    });
  }

  function buildMapControls() {
    // Only numeric features can be axes; categories, booleans and missing values stay as set.
    const xs = $('map-x');
    const ys = $('map-y');
    state.numeric = state.features.map((f, i) => (isNumeric(f) ? i : -1)).filter((i) => i >= 0);
    for (const s of [xs, ys]) {
      s.textContent = '';
      state.numeric.forEach((i) => s.appendChild(el('option', { value: String(i), text: state.features[i].name })));
    }
    state.mapX = state.numeric.length ? state.numeric[0] : -1;
    state.mapY = state.numeric.length > 1 ? state.numeric[1] : state.mapX;
    xs.value = String(state.mapX);
    ys.value = String(state.mapY);
    const onChange = (changed) => {
      const x = Number(xs.value);
      const y = Number(ys.value);
      // Two different features: picking the other axis's feature swaps the axes.
      if (x === y && state.numeric.length > 1) {
        if (changed === 'x') ys.value = String(state.mapX); else xs.value = String(state.mapY);
      }
      state.mapX = Number(xs.value);
      state.mapY = Number(ys.value);
      queueUpdate();
    };
    xs.addEventListener('change', () => onChange('x'));
    ys.addEventListener('change', () => onChange('y'));
    const legend = $('map-legend');
    legend.textContent = '';
    state.labels.forEach((label, k) => {
      const sw = el('span', { class: 'swatch' });
      sw.style.background = PALETTE[k % PALETTE.length];
      legend.appendChild(el('span', { 'data-label': label }, [sw, label]));
    });
  }

  function buildProbabilities() {
    const box = $('probabilities');
    box.textContent = '';
    state.labels.forEach((label, k) => {
      const fill = el('div', { class: 'prob-fill' });
      fill.style.background = PALETTE[k % PALETTE.length];
      fill.style.width = '0%';
      box.appendChild(el('div', { class: 'prob', 'data-label': label }, [
        el('div', { class: 'prob-name', text: label }),
        el('div', { class: 'prob-bar' }, [fill]),
        el('div', { class: 'prob-value', text: '–' }),
      ]));
    });
  }

  // ---------- the model ----------
  function predictRows(rows) {
    // One batched call; each row encoded with the model's own encoding (static/encoding.js).
    const n = rows.length;
    const nf = AutotrainingEncoding.width(state.encoding);
    const flat = new Float32Array(n * nf);
    for (let r = 0; r < n; r++) {
      const named = {};
      state.features.forEach((f, i) => { named[f.name] = rows[r][i]; });
      flat.set(AutotrainingEncoding.encodeRow(state.encoding, named), r * nf);
    }
    return tf.tidy(() => state.model.predict(tf.tensor2d(flat, [n, nf])).dataSync().slice());
  }

  function labelIndexes() {
    // For each schema label, its column in the model's output.
    return state.labels.map((l) => state.modelLabels.indexOf(l));
  }

  async function loadModel(version) {
    state.loadingVersion = version;
    $('model-status').textContent = `Loading model ${version} through the model proxy…`;
    const base = version ? `models/${encodeURIComponent(version)}` : 'models/latest';
    try {
      let meta = null;
      try { meta = await getJSON(`${base}/metadata.json`); } catch (e) { meta = null; }
      const started = performance.now();
      const model = await tf.loadLayersModel(`${base}/model.json`);
      $('prediction').setAttribute('data-load-ms', (performance.now() - started).toFixed(1));
      const names = state.features.map((f) => f.name);
      const encoding = AutotrainingEncoding.fromMetadata(meta, names);
      if (encoding.features.some((f) => names.indexOf(f.name) < 0)) throw new Error('the model expects features the schema does not have');
      if (state.model) state.model.dispose();
      state.model = model;
      state.modelVersion = (meta && meta.version) || version || 'latest';
      state.encoding = encoding;
      state.modelSchema = meta && meta.schema_hash ? `${meta.schema && meta.schema.name}@${meta.schema_hash}` : '';
      state.modelLabels = meta && Array.isArray(meta.labels) ? meta.labels : state.labels.slice();
      state.failedVersion = '';
      $('model-status').textContent =
        `Model ${versionLabel(state.modelVersion)} runs in this browser (TensorFlow.js ${tf.version.tfjs}, ${tf.getBackend()} backend)` +
        (state.modelSchema ? `, trained on schema ${state.modelSchema}.` : '.');
      $('prediction').setAttribute('data-schema', state.modelSchema);
      queueUpdate();
    } catch (e) {
      state.failedVersion = version;
      $('model-status').textContent = `Could not load model ${version}: ${e.message}. Retrying at the next refresh.`;
    } finally {
      state.loadingVersion = '';
    }
  }

  function queueUpdate() {
    if (state.updateQueued) return;
    state.updateQueued = true;
    setTimeout(() => {
      state.updateQueued = false;
      if (!state.model) return;
      updatePrediction();
      updateMap();
    }, 10);
  }

  function updatePrediction() {
    const row = state.values.slice();
    const out = predictRows([row]);
    const idx = labelIndexes();
    const probs = {};
    state.labels.forEach((l, k) => { probs[l] = idx[k] >= 0 ? out[idx[k]] : null; });
    const top = state.labels.reduce((a, b) => (probs[b] > probs[a] ? b : a), state.labels[0]);
    for (const rowEl of $('probabilities').children) {
      const l = rowEl.getAttribute('data-label');
      const p = probs[l];
      rowEl.setAttribute('data-probability', String(p));
      rowEl.classList.toggle('is-top', l === top);
      rowEl.querySelector('.prob-fill').style.width = `${(100 * p).toFixed(2)}%`;
      rowEl.querySelector('.prob-value').textContent = `${(100 * p).toFixed(1)}%`;
    }
    const features = {};
    state.features.forEach((f, i) => { features[f.name] = row[i]; });
    $('verdict-label').textContent = top;
    $('verdict-probability').textContent = `(${(100 * probs[top]).toFixed(1)}%)`;
    const box = $('prediction');
    box.setAttribute('data-version', state.modelVersion);
    box.setAttribute('data-label', top);
    box.setAttribute('data-features', JSON.stringify(features));
    box.setAttribute('data-probabilities', JSON.stringify(probs));
    box.setAttribute('data-state', 'ready');
  }

  function mix(hex, t) {
    // Blend a colour with white: t = 1 gives the colour, 0 gives white.
    const n = parseInt(hex.slice(1), 16);
    const c = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => Math.round(255 - (255 - v) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function updateMap() {
    const canvas = $('comfort-map');
    if (state.mapX < 0) { drawMapPlaceholder('The map needs a numeric feature.'); return; }
    const fx = state.features[state.mapX];
    const fy = state.features[state.mapY];
    const rows = [];
    for (let r = 0; r < MAP_ROWS; r++) {
      const y = fy.hi - (r + 0.5) * (fy.hi - fy.lo) / MAP_ROWS;
      for (let c = 0; c < MAP_COLS; c++) {
        const row = state.values.slice();
        row[state.mapX] = fx.lo + (c + 0.5) * (fx.hi - fx.lo) / MAP_COLS;
        row[state.mapY] = y;
        rows.push(row);
      }
    }
    const started = performance.now();
    const out = predictRows(rows);
    const predictMs = performance.now() - started;
    const nl = state.modelLabels.length;
    const idx = labelIndexes();

    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(MAP_W * dpr)) {
      canvas.width = Math.round(MAP_W * dpr);
      canvas.height = Math.round(MAP_H * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, MAP_W, MAP_H);
    const m = { l: 56, r: 14, t: 10, b: 44 };
    const pw = MAP_W - m.l - m.r;
    const ph = MAP_H - m.t - m.b;
    const cw = pw / MAP_COLS;
    const ch = ph / MAP_ROWS;
    const counts = {};
    state.labels.forEach((l) => { counts[l] = 0; });
    for (let r = 0; r < MAP_ROWS; r++) {
      for (let c = 0; c < MAP_COLS; c++) {
        const base = (r * MAP_COLS + c) * nl;
        let best = 0;
        for (let k = 1; k < state.labels.length; k++) {
          if (idx[k] >= 0 && out[base + idx[k]] > out[base + idx[best]]) best = k;
        }
        const p = out[base + idx[best]];
        counts[state.labels[best]] += 1;
        const strength = 0.3 + 0.7 * Math.max(0, (p - 1 / nl) / (1 - 1 / nl));
        ctx.fillStyle = mix(PALETTE[best % PALETTE.length], strength);
        ctx.fillRect(m.l + c * cw, m.t + r * ch, cw + 0.6, ch + 0.6);
      }
    }
    // Axes, ticks and names.
    ctx.strokeStyle = '#94a3b8';
    ctx.lineWidth = 1;
    ctx.strokeRect(m.l + 0.5, m.t + 0.5, pw - 1, ph - 1);
    ctx.fillStyle = '#475569';
    ctx.font = '11px system-ui, "Liberation Sans", sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of ticks(fx.lo, fx.hi, 6)) {
      const x = m.l + (t - fx.lo) / (fx.hi - fx.lo) * pw;
      ctx.fillRect(x, m.t + ph, 1, 4);
      ctx.fillText(String(t), x, m.t + ph + 6);
    }
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of ticks(fy.lo, fy.hi, 5)) {
      const y = m.t + (fy.hi - t) / (fy.hi - fy.lo) * ph;
      ctx.fillRect(m.l - 4, y, 4, 1);
      ctx.fillText(String(t), m.l - 7, y);
    }
    ctx.font = '600 12px system-ui, "Liberation Sans", sans-serif';
    ctx.fillStyle = '#1d2733';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(fx.name + (fx.unit ? ` (${fx.unit})` : ''), m.l + pw / 2, MAP_H - 4);
    ctx.save();
    ctx.translate(14, m.t + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(fy.name + (fy.unit ? ` (${fy.unit})` : ''), 0, 0);
    ctx.restore();
    // The current input, when it lies inside the map.
    const vx = state.values[state.mapX];
    const vy = state.values[state.mapY];
    if (vx !== null && vy !== null && vx >= fx.lo && vx <= fx.hi && vy >= fy.lo && vy <= fy.hi) {
      const x = m.l + (vx - fx.lo) / (fx.hi - fx.lo) * pw;
      const y = m.t + (fy.hi - vy) / (fy.hi - fy.lo) * ph;
      ctx.beginPath();
      ctx.arc(x, y, 6, 0, 2 * Math.PI);
      ctx.fillStyle = '#ffffff';
      ctx.fill();
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = '#111827';
      ctx.stroke();
    }
    const fixed = state.features
      .map((f, i) => ({ f, i }))
      .filter(({ i }) => i !== state.mapX && i !== state.mapY)
      .map(({ f, i }) => `${f.name} = ${formatValue(f, state.values[i])}${f.unit ? ' ' + f.unit : ''}`);
    $('map-fixed').textContent = fixed.length ? `Held fixed: ${fixed.join(', ')}. The ring marks the current input.` : 'The ring marks the current input.';
    canvas.setAttribute('data-x', fx.name);
    canvas.setAttribute('data-y', fy.name);
    canvas.setAttribute('data-cells', String(MAP_ROWS * MAP_COLS));
    canvas.setAttribute('data-label-counts', JSON.stringify(counts));
    canvas.setAttribute('data-version', state.modelVersion);
    canvas.setAttribute('data-predict-ms', predictMs.toFixed(2));
    canvas.setAttribute('data-state', 'ready');
  }

  function drawMapPlaceholder(text) {
    const canvas = $('comfort-map');
    const ctx = canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(MAP_W * dpr);
    canvas.height = Math.round(MAP_H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#f1f5f9';
    ctx.fillRect(0, 0, MAP_W, MAP_H);
    ctx.fillStyle = '#617083';
    ctx.font = '13px system-ui, "Liberation Sans", sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, MAP_W / 2, MAP_H / 2);
  }

  // ---------- history: chart, table, summary ----------
  function renderChart(rounds) {
    const box = $('chart');
    if (!rounds.length) return;
    const W = 1200;
    const H = 300;
    const m = { l: 52, r: 62, t: 34, b: 34 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const n = rounds.length;
    const slot = pw / n;
    const xAt = (i) => m.l + (i + 0.5) * slot;
    const accs = [];
    for (const r of rounds) {
      for (const k of ['holdout_accuracy', 'prequential_accuracy']) if (r[k] !== null && r[k] !== undefined) accs.push(r[k]);
    }
    const accLo = accs.length ? Math.max(0, Math.min(0.9, Math.floor(Math.min(...accs) * 10 - 0.5) / 10)) : 0;
    const yAcc = (a) => m.t + (1 - (a - accLo) / (1 - accLo)) * ph;
    const maxSeen = Math.max(1, ...rounds.map((r) => r.records_seen || 0));
    const seenStep = niceStep(maxSeen, 4);
    const seenTop = Math.ceil(maxSeen / seenStep) * seenStep;
    const ySeen = (s) => m.t + (1 - s / seenTop) * ph;

    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'accuracy and records seen per round' });
    for (const t of ticks(accLo, 1, 5)) {
      root.appendChild(svg('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: yAcc(t), y2: yAcc(t) }));
      root.appendChild(svg('text', { x: m.l - 8, y: yAcc(t) + 4, 'text-anchor': 'end' }, `${Math.round(t * 100)}%`));
    }
    for (const t of ticks(0, seenTop, 4)) {
      root.appendChild(svg('text', { x: W - m.r + 8, y: ySeen(t) + 4, 'text-anchor': 'start' }, short(t)));
    }
    root.appendChild(svg('text', { x: 2, y: m.t - 12, 'text-anchor': 'start' }, 'accuracy'));
    root.appendChild(svg('text', { x: W - m.r + 8, y: m.t - 12, 'text-anchor': 'start' }, 'records'));
    // Records seen: bars behind the lines.
    const bw = Math.max(2, Math.min(34, slot * 0.55));
    rounds.forEach((r, i) => {
      const bar = svg('rect', {
        class: r.status === 'rejected' ? 'bar rejected' : 'bar', x: xAt(i) - bw / 2, y: ySeen(r.records_seen || 0),
        width: bw, height: Math.max(0, m.t + ph - ySeen(r.records_seen || 0)), rx: 2,
      });
      bar.appendChild(svg('title', {}, `round ${versionLabel(r.version)}: ${count(r.records_seen)} records seen (+${count(r.new_records)})`));
      root.appendChild(bar);
    });
    root.appendChild(svg('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph }));
    // Held-out accuracy of the serving model after each round (a rejected round keeps its parent's).
    const line = (cls, pts) => {
      if (pts.length > 1) root.appendChild(svg('polyline', { class: cls, points: pts.map((p) => `${p[0]},${p[1]}`).join(' ') }));
    };
    const held = [];
    const preq = [];
    rounds.forEach((r, i) => {
      if (r.status === 'published' && r.holdout_accuracy !== null && r.holdout_accuracy !== undefined) held.push([xAt(i), yAcc(r.holdout_accuracy)]);
      else if (r.status === 'rejected' && r.parent_holdout_accuracy !== null && r.parent_holdout_accuracy !== undefined) held.push([xAt(i), yAcc(r.parent_holdout_accuracy)]);
      if (r.prequential_accuracy !== null && r.prequential_accuracy !== undefined) preq.push([xAt(i), yAcc(r.prequential_accuracy), r]);
    });
    line('prequential', preq);
    line('holdout', held);
    const dotR = n > 60 ? 2 : 3.5;
    preq.forEach(([x, y, r]) => {
      const c = svg('circle', { class: 'dot-prequential', cx: x, cy: y, r: dotR });
      c.appendChild(svg('title', {}, `round ${versionLabel(r.version)}: prequential ${pct(r.prequential_accuracy)} on ${count(r.new_records)} new records`));
      root.appendChild(c);
    });
    rounds.forEach((r, i) => {
      if (r.holdout_accuracy === null || r.holdout_accuracy === undefined) return;
      const x = xAt(i);
      const y = yAcc(r.holdout_accuracy);
      const title = svg('title', {}, `round ${versionLabel(r.version)}: ${r.status}, candidate held-out ${pct(r.holdout_accuracy)}` +
        (r.gate ? ` (${r.gate})` : ''));
      if (r.status === 'rejected') {
        const g = svg('g', { class: 'reject-mark' });
        g.appendChild(svg('line', { x1: x - 5, y1: y - 5, x2: x + 5, y2: y + 5 }));
        g.appendChild(svg('line', { x1: x - 5, y1: y + 5, x2: x + 5, y2: y - 5 }));
        g.appendChild(title);
        root.appendChild(g);
      } else {
        const c = svg('circle', { class: 'dot-holdout', cx: x, cy: y, r: dotR + 0.5 });
        c.appendChild(title);
        root.appendChild(c);
      }
    });
    // A change the worker's drift detector reported: a dashed vertical line at that round.
    const driftOf = (r) => (r.metrics && r.metrics.drift && r.metrics.drift.detected ? r.metrics.drift : null);
    rounds.forEach((r, i) => {
      const d = driftOf(r);
      if (!d) return;
      const g = svg('g', { class: 'drift-mark', 'data-version': r.version });
      g.appendChild(svg('line', { x1: xAt(i) - slot / 2, x2: xAt(i) - slot / 2, y1: m.t, y2: m.t + ph,
        stroke: '#d9822b', 'stroke-width': 2, 'stroke-dasharray': '4 3' }));
      g.appendChild(svg('text', { x: xAt(i) - slot / 2 + 4, y: m.t + 12, 'text-anchor': 'start', fill: '#d9822b' }, 'change'));
      g.appendChild(svg('title', {}, `round ${versionLabel(r.version)}: change detected (${(d.signals || []).join(', ')})`));
      root.appendChild(g);
    });
    // Round numbers along the x axis (thinned to about 14 labels).
    const every = Math.max(1, Math.ceil(n / 14));
    rounds.forEach((r, i) => {
      if (i % every === 0 || i === n - 1) root.appendChild(svg('text', { x: xAt(i), y: m.t + ph + 16, 'text-anchor': 'middle' }, versionLabel(r.version)));
    });
    root.appendChild(svg('text', { x: m.l + pw / 2, y: H - 2, 'text-anchor': 'middle' }, 'round'));
    // Legend.
    let lx = m.l;
    const legend = (draw, text) => {
      draw(lx);
      root.appendChild(svg('text', { class: 'legend-text', x: lx + 26, y: 14 }, text));
      lx += 34 + text.length * 7;
    };
    legend((x) => root.appendChild(svg('line', { class: 'holdout', x1: x, x2: x + 20, y1: 10, y2: 10 })), 'held-out accuracy (serving model)');
    legend((x) => root.appendChild(svg('line', { class: 'prequential', x1: x, x2: x + 20, y1: 10, y2: 10 })), 'prequential accuracy (new records, before training)');
    legend((x) => root.appendChild(svg('rect', { class: 'bar', x: x + 4, y: 4, width: 12, height: 12, rx: 2 })), 'records seen');
    legend((x) => {
      const g = svg('g', { class: 'reject-mark' });
      g.appendChild(svg('line', { x1: x + 5, y1: 5, x2: x + 15, y2: 15 }));
      g.appendChild(svg('line', { x1: x + 5, y1: 15, x2: x + 15, y2: 5 }));
      root.appendChild(g);
    }, 'rejected candidate');
    if (rounds.some(driftOf)) {
      legend((x) => root.appendChild(svg('line', { x1: x + 10, x2: x + 10, y1: 2, y2: 18, stroke: '#d9822b',
        'stroke-width': 2, 'stroke-dasharray': '4 3' })), 'change detected');
    }
    box.textContent = '';
    box.appendChild(root);
  }

  function renderTable(roundsNewestFirst) {
    const body = document.querySelector('#rounds tbody');
    body.textContent = '';
    for (const r of roundsNewestFirst.slice(0, TABLE_ROWS)) {
      const result = el('td', {}, [el('span', { class: `badge ${r.status}`, text: r.status })]);
      if (r.version === state.servingVersion) result.appendChild(el('span', { class: 'badge serving', text: 'serving' }));
      body.appendChild(el('tr', { class: r.status, 'data-version': r.version, 'data-status': r.status }, [
        el('td', { text: versionLabel(r.version) }),
        el('td', { text: r.created ? when(r.created) : '–' }),
        result,
        el('td', { class: 'gate', text: r.gate || '' }),
        el('td', { class: 'num', text: count(r.new_records) }),
        el('td', { class: 'num', text: count(r.records_seen) }),
        el('td', { class: 'num', text: pct(r.prequential_accuracy) }),
        el('td', { class: 'num', text: pct(r.holdout_accuracy) }),
        el('td', { class: 'num', text: pct(r.parent_holdout_accuracy) }),
        el('td', { class: 'num', text: r.duration_s ? `${r.duration_s.toFixed(1)} s` : '–' }),
      ]));
    }
  }

  function renderSummary(newestFirst) {
    const latest = newestFirst[0];
    const serving = state.rounds.get(state.servingVersion);
    const rejected = newestFirst.filter((r) => r.status === 'rejected').length;
    $('summary-model').textContent = versionLabel(state.servingVersion);
    $('summary-rounds').textContent = latest ? `${newestFirst.length}${rejected ? ` (${rejected} rejected)` : ''}` : '–';
    $('summary-records').textContent = latest ? count(latest.records_seen) : '–';
    $('summary-holdout').textContent = serving ? pct(serving.holdout_accuracy) : '–';
    $('summary-prequential').textContent = latest ? pct(latest.prequential_accuracy) : '–';
  }

  async function fetchHistory(allPages) {
    let url = 'models?limit=100';
    for (let page = 0; page < (allPages ? MAX_HISTORY_PAGES : 1); page++) {
      const data = await getJSON(url);
      for (const v of data.versions || []) state.rounds.set(v.version, v);
      if (!data.next) break;
      url = `models?limit=100&before=${encodeURIComponent(data.next)}`;
    }
  }

  function setStatus(kind, text) {
    $('status').setAttribute('data-state', kind);
    $('status-text').textContent = text;
  }

  async function refresh(first) {
    try {
      await fetchHistory(first);
      const newestFirst = [...state.rounds.values()].sort((a, b) => (a.version < b.version ? 1 : -1));
      state.servingVersion = newestFirst.length ? newestFirst[0].model_version || '' : '';
      renderSummary(newestFirst);
      renderTable(newestFirst);
      renderChart(newestFirst.slice().reverse());
      setStatus('live', `live · updated ${when(Date.now()).slice(11)}`);
      const wanted = state.servingVersion;
      if (wanted && wanted !== state.modelVersion && wanted !== state.loadingVersion) await loadModel(wanted);
      else if (!wanted && !state.model) $('model-status').textContent = 'No model has been published yet; it appears here after the first round.';
    } catch (e) {
      setStatus('error', `cannot read the history: ${e.message}`);
    } finally {
      setTimeout(() => refresh(false), POLL_MS);
    }
  }

  async function main() {
    try {
      // The CPU backend computes in float32 like the server's numpy predictor, on every
      // device (WebGL may use half floats), and a model this small needs nothing faster.
      await tf.setBackend('cpu');
      await tf.ready();
      state.schema = await getJSON('static/schema.json');
    } catch (e) {
      setStatus('error', `cannot start: ${e.message}`);
      return;
    }
    state.features = state.schema.features.map(resolveFeature);
    state.labels = state.schema.labels.slice();
    $('schema-description').textContent =
      `${state.schema.description || state.schema.name} Labels: ${state.labels.join(', ')}.`;
    buildInputs();
    buildProbabilities();
    buildMapControls();
    drawMapPlaceholder('The map appears when the first model is published.');
    refresh(true);
  }

  main();
})();
