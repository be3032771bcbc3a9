// facepatch demo page: two photos, one score, and which patches of the face it comes from.
// Everything runs here: the library decodes, detects and encodes in a worker on this device.
import { Verifier, FacepatchError } from "./facepatch/facepatch.js";

const $ = (id) => document.getElementById(id);
const PHOTO_MAX_W = 640;
const PHOTO_MAX_H = 480;
// Diverging, colour-blind safe: RdBu blue end, PuOr orange end, near-white at 0.
const RAMP = [[0x21, 0x66, 0xac], [0x67, 0xa9, 0xcf], [0xf7, 0xf7, 0xf7], [0xf1, 0xa3, 0x40], [0xb3, 0x58, 0x06]];
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

const state = {
  verifier: null,
  loading: false,
  loadFailed: false,
  loadGen: 0,
  pending: 0, // queued tasks not yet finished
  mask: new Uint8Array(0), // shared by both faces; 0 = left out
  comparison: null,
  range: 1, // max |contribution| over both grids
  compareQueued: false,
  cursor: { r: 0, c: 0 }, // keyboard cell
  hover: null, // pointer cell
  hoverCanvas: null, // aligned canvas under the pointer
  focused: null, // aligned canvas with keyboard focus
};

const slots = ["a", "b"].map(makeSlot);

function makeSlot(key) {
  const el = (name) => $(`${name}-${key}`);
  return {
    key,
    name: key.toUpperCase(),
    source: null, // File, Blob or canvas: kept so a model switch can analyse it again
    face: undefined, // index the user picked, if any
    failed: false, // the last source could not be analysed
    analysis: null,
    gen: 0, // bumps on every new request, so late results are dropped
    stream: null,
    starting: false,
    root: el("slot"), file: el("file"), camera: el("camera"), capture: el("capture"),
    video: el("video"), photo: el("photo"), aligned: el("aligned"), faces: el("faces"),
    scratch: document.createElement("canvas"), // holds the 112x112 ImageData for scaling
  };
}

// ---- work queue: one task at a time, so analyses, compares and model switches never race ----

let queue = Promise.resolve();

function enqueue(task) {
  state.pending++;
  refreshState();
  queue = queue.then(task).catch(reportUnexpected).finally(() => {
    state.pending--;
    refreshState();
  });
  return queue;
}

function refreshState() {
  let s = "ready";
  if (state.loading) s = "loading";
  else if (!state.verifier && state.loadFailed) s = "error";
  else if (state.pending > 0) s = "busy";
  document.body.dataset.state = s;
}

function reportUnexpected(err) {
  console.error(err);
  say("unexpected", `Something went wrong: ${err?.message ?? err}`, "error");
}

// ---- messages: one line per topic, updated in place so screen readers hear only changes ----

function say(key, text, kind = "info") {
  const box = $("messages");
  let p = box.querySelector(`[data-key="${key}"]`);
  if (!text) {
    p?.remove();
    return;
  }
  if (!p) {
    p = document.createElement("p");
    p.dataset.key = key;
    box.append(p);
  }
  p.className = `msg msg-${kind}`;
  if (p.textContent !== text) p.textContent = text;
}

// ---- loading a model ----

function selectedText(id) {
  const sel = $(id);
  return sel.options[sel.selectedIndex]?.text ?? sel.value;
}

function requestLoad() {
  const gen = ++state.loadGen;
  // Old templates belong to the old model: drop them, keep the photos' sources.
  for (const s of slots) {
    s.analysis?.photo.close?.();
    s.analysis = null;
    s.gen++;
  }
  setComparison(null);
  enqueue(() => loadModel(gen));
}

async function loadModel(gen) {
  if (gen !== state.loadGen) return; // a newer choice is queued behind this one
  state.verifier?.close();
  state.verifier = null;
  state.loading = true;
  state.loadFailed = false;
  refreshState();
  say("model", "");
  say("backend", "");
  const model = $("model").value;
  const backend = $("backend-choice").value;
  setProgress(0, `Loading ${selectedText("model")}…`);
  $("backend").textContent = "Starting…";
  try {
    const v = await Verifier.load({ model, backend, onProgress: (p) => gen === state.loadGen && showProgress(p) });
    if (gen !== state.loadGen) {
      v.close();
      return;
    }
    state.verifier = v;
    onModelReady(v, backend);
  } catch (err) {
    if (gen !== state.loadGen) return;
    state.loadFailed = true;
    setProgress(0, "The model could not be loaded");
    $("backend").textContent = "Nothing is running.";
    say("model", `The ${selectedText("model")} model could not be loaded (${err?.message ?? err}). ` +
      "Reload the page, or choose another model or backend.", "error");
  } finally {
    state.loading = false;
    refreshState();
  }
}

function setProgress(value, text) {
  $("progress").value = value;
  $("progress-label").textContent = text;
}

function showProgress(p) {
  const file = p.file ?? "the model";
  const what = { download: `downloading ${file}`, cache: `reading ${file} from this browser's cache`,
    compile: "preparing the networks" }[p.stage] ?? p.stage;
  const mb = (n) => (n / 1e6).toFixed(1);
  const amount = p.stage === "download" && p.total ? ` (${mb(p.loaded)} of ${mb(p.total)} MB)` : "";
  setProgress(p.fraction, `Loading ${selectedText("model")}: ${what}${amount}, ${Math.round(p.fraction * 100)}%`);
}

function onModelReady(v, choice) {
  const { rows, cols } = v.model;
  if (state.mask.length !== rows * cols) state.mask = new Uint8Array(rows * cols).fill(1);
  state.cursor = { r: Math.min(state.cursor.r, rows - 1), c: Math.min(state.cursor.c, cols - 1) };
  state.hover = null;
  for (const s of slots) {
    s.aligned.dataset.rows = String(rows);
    s.aligned.dataset.cols = String(cols);
  }
  setProgress(1, `${selectedText("model")} is ready`);
  $("backend").textContent = describeBackend(v.backend);
  if (v.backend.kind === "cpu" && choice !== "cpu") {
    // The reason names the fallback, e.g. "WebGPU is not available in this browser: running on the CPU (wasm)".
    say("backend", `${capitalise(v.backend.reason)}. Everything works the same way, only slower.`, "warn");
  }
  $("calibration").textContent = `Thresholds calibrated on: ${v.model.calibrationSource}`;
  renderVerdict();
  redrawAligned();
  // Photos chosen before (or under another model) are analysed again, with the face the user picked.
  for (const s of slots) if (s.source) analyse(s, (ver) => ver.analyze(s.source, s.face == null ? {} : { face: s.face }));
}

function describeBackend(b) {
  return `Backend: ${b.kind === "webgpu" ? "WebGPU" : "CPU (wasm)"} — ${b.reason}`;
}

const capitalise = (t) => t.charAt(0).toUpperCase() + t.slice(1);

// ---- analysing a photo ----

function setSource(slot, source) {
  slot.source = source;
  slot.face = undefined;
  slot.failed = false;
  analyse(slot, (v) => v.analyze(source));
}

function pickFace(slot, i) {
  const analysis = slot.analysis;
  if (!analysis || i === analysis.chosen) return;
  slot.face = i;
  analyse(slot, (v) => v.chooseFace(analysis, i));
}

function analyse(slot, run) {
  const gen = ++slot.gen;
  enqueue(() => analyseTask(slot, gen, run));
}

async function analyseTask(slot, gen, run) {
  const v = state.verifier;
  if (gen !== slot.gen) return; // superseded by a newer photo or face choice
  if (!v) {
    // No model: the source is kept and analysed after the next successful load.
    if (state.loadFailed) say(`slot-${slot.key}`, `Photo ${slot.name} will be analysed once a model has loaded.`, "warn");
    return;
  }
  let analysis;
  try {
    analysis = await run(v);
  } catch (err) {
    if (gen === slot.gen && v === state.verifier) failSlot(slot, err);
    return;
  }
  if (gen !== slot.gen || v !== state.verifier) return;
  showAnalysis(slot, analysis);
  scheduleCompare();
}

function showAnalysis(slot, a) {
  const old = slot.analysis;
  if (old && old.photo !== a.photo) old.photo.close?.(); // free the previous photo's pixels
  slot.analysis = a;
  drawPhoto(slot);
  renderFaceButtons(slot);
  drawAligned(slot);
  const who = `photo ${slot.name}`;
  if (!a.template) {
    say(`slot-${slot.key}`, `Photo ${slot.name}: ${a.message || "no face found in this photo"}.`, "warn");
  } else if (a.faces.length > 1) {
    const used = slot.face == null ? "the largest, most central is used" : `face ${a.chosen + 1} is used`;
    say(`slot-${slot.key}`, `${a.faces.length} faces found in ${who}: ${used}; pick another below.`);
  } else {
    say(`slot-${slot.key}`, a.message ? `Photo ${slot.name}: ${a.message}` : "");
  }
}

function failSlot(slot, err) {
  slot.analysis = null;
  slot.failed = true;
  drawPhoto(slot, "This photo could not be read");
  renderFaceButtons(slot);
  drawAligned(slot);
  const msg = err?.message ?? String(err);
  const text = err instanceof FacepatchError && err.code === "bad-image"
    ? `Photo ${slot.name}: this file could not be read as an image (${msg}). Try a JPEG, PNG or WebP photo.`
    : `Photo ${slot.name}: the photo could not be analysed (${msg}).`;
  say(`slot-${slot.key}`, text, "error");
  scheduleCompare(); // clears the verdict
}

// ---- comparing ----

function scheduleCompare() {
  if (state.compareQueued) return; // one queued compare sees every change made before it runs
  state.compareQueued = true;
  enqueue(runCompare);
}

async function runCompare() {
  state.compareQueued = false;
  const v = state.verifier;
  const a = slots[0].analysis?.template;
  const b = slots[1].analysis?.template;
  if (!v || !a || !b) return setComparison(null);
  if (!state.mask.some(Boolean)) {
    say("compare", "Every cell is left out: put at least one back (or reset the mask) to get a score.", "warn");
    return setComparison(null);
  }
  say("compare", "");
  try {
    // A plain copy: the mask must stay ours even if the library transfers what it is given.
    const mask = Array.from(state.mask, Boolean);
    const cmp = await v.compare(a, b, { mask, operatingPoint: $("operating-point").value });
    if (v === state.verifier) setComparison(cmp);
  } catch (err) {
    say("compare", `The two faces could not be compared (${err?.message ?? err}).`, "error");
    setComparison(null);
  }
}

function setComparison(cmp) {
  state.comparison = cmp;
  state.range = 1;
  if (cmp) {
    let m = 0;
    for (const g of [cmp.grid.a, cmp.grid.b]) for (const x of g) m = Math.max(m, Math.abs(x));
    state.range = m > 0 ? m : 1e-9;
  }
  renderVerdict();
  renderLegend();
  refreshCells();
}

const signed = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

function formatFar(far) {
  if (!(far > 0)) return "0% (no different-person pair of the calibration data scores this high)";
  const pct = far * 100;
  return `${pct >= 1 ? pct.toFixed(1) : pct.toPrecision(2)}% (1 in ${Math.round(1 / far)})`;
}

function renderVerdict() {
  const v = state.verifier;
  const cmp = state.comparison;
  const verdict = $("verdict");
  const total = v ? v.model.rows * v.model.cols : 0;
  const used = state.mask.reduce((n, x) => n + (x ? 1 : 0), 0);
  $("cells-used").textContent = v ? `${cmp ? cmp.cells : used} of ${total} cells` : "—";
  if (!cmp) {
    const op = v?.model.operatingPoints[$("operating-point").value];
    $("score").textContent = "—";
    $("threshold").textContent = op ? op.threshold.toFixed(4) : "—";
    $("far").textContent = op ? formatFar(op.far) : "—";
    verdict.textContent = v ? "Choose two photos, each with a face" : "Waiting for the model";
    delete verdict.dataset.match;
    delete verdict.dataset.score;
    return;
  }
  $("score").textContent = cmp.score.toFixed(4);
  $("threshold").textContent = cmp.threshold.toFixed(4);
  $("far").textContent = formatFar(cmp.far);
  verdict.textContent = cmp.match ? "Same person" : "Different people";
  verdict.dataset.match = String(cmp.match);
  verdict.dataset.score = String(cmp.score);
}

// ---- colour map and legend ----

function colour(t) {
  const x = (Math.max(-1, Math.min(1, t)) + 1) / 2 * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

function renderLegend() {
  const cv = $("legend-strip");
  const ctx = cv.getContext("2d");
  for (let x = 0; x < cv.width; x++) {
    ctx.fillStyle = colour((x / (cv.width - 1)) * 2 - 1);
    ctx.fillRect(x, 0, 1, cv.height);
  }
  const has = state.comparison != null;
  $("legend-min").textContent = has ? signed(-state.range) : "−";
  $("legend-zero").textContent = "0";
  $("legend-max").textContent = has ? signed(state.range) : "+";
}

let hatch = null;
function hatchPattern(ctx) {
  if (!hatch) {
    const c = document.createElement("canvas");
    c.width = c.height = 8;
    const g = c.getContext("2d");
    g.fillStyle = "rgba(120, 120, 120, 0.75)";
    g.fillRect(0, 0, 8, 8);
    g.strokeStyle = "rgba(235, 235, 235, 0.9)";
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(0, 8); g.lineTo(8, 0);
    g.moveTo(-2, 2); g.lineTo(2, -2);
    g.moveTo(6, 10); g.lineTo(10, 6);
    g.stroke();
    hatch = c;
  }
  return ctx.createPattern(hatch, "repeat");
}

// ---- drawing ----

function placeholder(cv, text) {
  const ctx = cv.getContext("2d");
  ctx.fillStyle = "#e8e8e8";
  ctx.fillRect(0, 0, cv.width, cv.height);
  ctx.fillStyle = "#555";
  ctx.font = "16px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, cv.width / 2, cv.height / 2);
}

// A dark halo under a light line keeps boxes visible on any photo.
function strokeTwoTone(ctx, path, colourName, width, dash = []) {
  ctx.setLineDash(dash);
  ctx.lineWidth = width + 2;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
  path();
  ctx.stroke();
  ctx.lineWidth = width;
  ctx.strokeStyle = colourName;
  path();
  ctx.stroke();
  ctx.setLineDash([]);
}

function drawPhoto(slot, emptyText = "No photo yet") {
  const a = slot.analysis;
  const cv = slot.photo;
  if (!a) {
    cv.width = 320;
    cv.height = 240;
    placeholder(cv, emptyText);
    cv.setAttribute("aria-label", `Photo ${slot.name}: ${emptyText.toLowerCase()}`);
    return;
  }
  const k = Math.min(PHOTO_MAX_W / a.width, PHOTO_MAX_H / a.height); // small photos are scaled up too
  cv.width = Math.max(1, Math.round(a.width * k));
  cv.height = Math.max(1, Math.round(a.height * k));
  const ctx = cv.getContext("2d");
  ctx.drawImage(a.photo, 0, 0, cv.width, cv.height);
  const lw = Math.max(2, cv.width / 240);
  a.faces.forEach((f, i) => {
    const [x, y, w, h] = f.box.map((v) => v * k);
    const chosen = i === a.chosen;
    const rect = () => { ctx.beginPath(); ctx.rect(x, y, w, h); };
    strokeTwoTone(ctx, rect, chosen ? "#ffb000" : "#ffffff", chosen ? lw * 1.5 : lw, chosen ? [] : [6, 4]);
    if (a.faces.length > 1) label(ctx, String(i + 1), x, y, chosen);
  });
  const face = a.chosen == null ? null : a.faces[a.chosen];
  for (const [x, y] of face?.landmarks ?? []) {
    ctx.beginPath();
    ctx.arc(x * k, y * k, lw * 1.5, 0, 2 * Math.PI);
    ctx.fillStyle = "#00e0ff";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
  const n = a.faces.length;
  const desc = n === 0 ? "no face found" : `${n} face${n > 1 ? "s" : ""} found${a.chosen == null ? "" : `, face ${a.chosen + 1} used`}`;
  cv.setAttribute("aria-label", `Photo ${slot.name}: ${desc}`);
}

function label(ctx, text, x, y, chosen) {
  ctx.font = "bold 14px system-ui, sans-serif";
  const w = ctx.measureText(text).width + 8;
  ctx.fillStyle = chosen ? "#ffb000" : "#ffffff";
  ctx.fillRect(x, Math.max(0, y - 20), w, 20);
  ctx.fillStyle = "#000";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x + 4, Math.max(0, y - 20) + 10);
}

function renderFaceButtons(slot) {
  const a = slot.analysis;
  const list = slot.faces;
  const hadFocus = list.contains(document.activeElement);
  list.hidden = !(a && a.faces.length > 1);
  if (list.hidden) return list.replaceChildren();
  list.replaceChildren(...a.faces.map((_, i) => {
    const li = document.createElement("li");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = `Face ${i + 1}`;
    btn.setAttribute("aria-pressed", String(i === a.chosen));
    btn.addEventListener("click", () => pickFace(slot, i));
    li.append(btn);
    return li;
  }));
  if (hadFocus) list.querySelector('[aria-pressed="true"]')?.focus(); // keep focus where the user was
}

function gridShape() {
  const m = state.verifier?.model;
  return m ? { rows: m.rows, cols: m.cols } : null;
}

function redrawAligned() {
  for (const s of slots) drawAligned(s);
}

// After the mask, the hovered or the cursor cell changed: both canvases and the tooltip.
function refreshCells() {
  redrawAligned();
  updateCellInfo();
}

function drawAligned(slot) {
  const cv = slot.aligned;
  const a = slot.analysis;
  delete cv.dataset.gridDrawn;
  if (!a?.aligned) {
    const why = a ? "No face found" : slot.failed ? "Could not read the photo" : slot.source ? "Analysing…" : "No face yet";
    return placeholder(cv, why);
  }
  const ctx = cv.getContext("2d");
  slot.scratch.width = a.aligned.width;
  slot.scratch.height = a.aligned.height;
  slot.scratch.getContext("2d").putImageData(a.aligned, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(slot.scratch, 0, 0, cv.width, cv.height);
  const shape = gridShape();
  if (!shape) return;
  const cmp = state.comparison;
  drawGrid(ctx, cv, shape, cmp ? (slot.key === "a" ? cmp.grid.a : cmp.grid.b) : null);
  if (cmp) cv.dataset.gridDrawn = "true";
  const cell = activeCell();
  if (cell) drawHighlight(ctx, cv, cell);
}

function cellRect(cv, { rows, cols }, r, c) {
  const x0 = Math.round((c * cv.width) / cols);
  const y0 = Math.round((r * cv.height) / rows);
  return [x0, y0, Math.round(((c + 1) * cv.width) / cols) - x0, Math.round(((r + 1) * cv.height) / rows) - y0];
}

function drawGrid(ctx, cv, shape, values) {
  const pattern = hatchPattern(ctx);
  ctx.strokeStyle = "rgba(255, 255, 255, 0.25)"; // faint cell borders, so equal colours still read as cells
  ctx.lineWidth = 1;
  for (let r = 0; r < shape.rows; r++) {
    for (let c = 0; c < shape.cols; c++) {
      const i = r * shape.cols + c;
      const rect = cellRect(cv, shape, r, c);
      if (!state.mask[i]) {
        ctx.fillStyle = pattern;
        ctx.fillRect(...rect);
      } else if (values) {
        ctx.globalAlpha = 0.55; // semi-transparent: the face stays visible under the colours
        ctx.fillStyle = colour(values[i] / state.range);
        ctx.fillRect(...rect);
        ctx.globalAlpha = 1;
        ctx.strokeRect(rect[0] + 0.5, rect[1] + 0.5, rect[2] - 1, rect[3] - 1);
      }
    }
  }
}

// The cell under the pointer, else the keyboard cursor while a grid has focus.
function activeCell() {
  return state.hover ?? (state.focused ? state.cursor : null);
}

// Outline the pixels the cell can see (its receptive window, clipped to the face) and the cell itself.
function drawHighlight(ctx, cv, cell) {
  const m = state.verifier.model;
  const k = cv.width / m.alignedSide;
  const span = (i) => {
    const lo = Math.max(0, m.cellOffset + i * m.cellStride);
    const hi = Math.min(m.alignedSide - 1, m.cellOffset + i * m.cellStride + m.receptiveField - 1);
    return [lo * k, (hi - lo + 1) * k];
  };
  const [wx, ww] = span(cell.c);
  const [wy, wh] = span(cell.r);
  strokeTwoTone(ctx, () => { ctx.beginPath(); ctx.rect(wx + 1, wy + 1, ww - 2, wh - 2); }, "#ffffff", 2, [8, 5]);
  const [x, y, w, h] = cellRect(cv, gridShape(), cell.r, cell.c);
  strokeTwoTone(ctx, () => { ctx.beginPath(); ctx.rect(x + 1, y + 1, w - 2, h - 2); }, "#ffe000", 2);
}

// ---- cell info, hover, keyboard, mask ----

function describeCell({ r, c }) {
  const { cols } = gridShape();
  const i = r * cols + c;
  const cmp = state.comparison;
  let text = `row ${r}, col ${c}: `;
  text += cmp ? `contribution ${signed(cmp.grid.a[i])} (A), ${signed(cmp.grid.b[i])} (B)` : "no score yet (choose two photos)";
  if (!state.mask[i]) text += ", left out of the score";
  return text;
}

function updateCellInfo() {
  const box = $("cell-info");
  const cell = activeCell();
  const cv = state.hoverCanvas && state.hover ? state.hoverCanvas : state.focused;
  if (!cell || !cv || !gridShape()) {
    box.textContent = "";
    return;
  }
  box.textContent = describeCell(cell);
  // Place it beside the cell; CSSOM custom properties are allowed by the page's style-src.
  const rect = cv.getBoundingClientRect();
  const { rows, cols } = gridShape();
  const x = rect.left + window.scrollX + ((cell.c + 1) * rect.width) / cols + 10;
  const y = rect.top + window.scrollY + (cell.r * rect.height) / rows;
  const maxX = document.documentElement.clientWidth + window.scrollX - Math.min(box.offsetWidth || 280, 320) - 8;
  box.style.setProperty("--x", `${Math.max(window.scrollX + 4, Math.min(x, maxX))}px`);
  box.style.setProperty("--y", `${y}px`);
}

function sameCell(p, q) {
  return p && q && p.r === q.r && p.c === q.c;
}

function cellAt(cv, ev) {
  const rect = cv.getBoundingClientRect();
  const { rows, cols } = gridShape();
  const clamp = (v, n) => Math.max(0, Math.min(n - 1, v));
  return {
    r: clamp(Math.floor(((ev.clientY - rect.top) / rect.height) * rows), rows),
    c: clamp(Math.floor(((ev.clientX - rect.left) / rect.width) * cols), cols),
  };
}

function toggleCell({ r, c }) {
  const i = r * gridShape().cols + c;
  state.mask[i] = state.mask[i] ? 0 : 1;
  renderVerdict();
  refreshCells();
  scheduleCompare();
}

function wireAligned(cv) {
  cv.addEventListener("pointermove", (ev) => {
    if (!gridShape()) return;
    const cell = cellAt(cv, ev);
    if (sameCell(cell, state.hover) && state.hoverCanvas === cv) return;
    state.hover = cell;
    state.hoverCanvas = cv;
    refreshCells();
  });
  cv.addEventListener("pointerleave", () => {
    state.hover = null;
    state.hoverCanvas = null;
    refreshCells();
  });
  cv.addEventListener("click", (ev) => {
    if (!gridShape()) return;
    state.cursor = cellAt(cv, ev);
    toggleCell(state.cursor);
  });
  cv.addEventListener("focus", () => {
    state.focused = cv;
    refreshCells();
  });
  cv.addEventListener("blur", () => {
    if (state.focused === cv) state.focused = null;
    refreshCells();
  });
  cv.addEventListener("keydown", (ev) => onGridKey(ev));
}

function onGridKey(ev) {
  const shape = gridShape();
  if (!shape) return;
  const move = MOVES[ev.key];
  if (move) {
    ev.preventDefault(); // arrows move the cursor, not the page
    state.cursor = {
      r: Math.max(0, Math.min(shape.rows - 1, state.cursor.r + move[0])),
      c: Math.max(0, Math.min(shape.cols - 1, state.cursor.c + move[1])),
    };
    state.hover = null; // the keyboard takes over from the pointer
    refreshCells();
  } else if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    if (!ev.repeat) toggleCell(state.cursor); // a held key would flicker the cell on and off
  }
}

function resetMask() {
  state.mask.fill(1);
  renderVerdict();
  refreshCells();
  scheduleCompare();
}

// ---- photo sources: file input, drag and drop, camera ----

function wireSlot(slot) {
  slot.file.addEventListener("change", () => {
    const file = slot.file.files?.[0];
    if (!file) return;
    stopCamera(slot);
    setSource(slot, file);
  });
  slot.root.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    slot.root.classList.add("drag-over");
  });
  slot.root.addEventListener("dragleave", (ev) => {
    if (!slot.root.contains(ev.relatedTarget)) slot.root.classList.remove("drag-over");
  });
  slot.root.addEventListener("drop", (ev) => {
    ev.preventDefault();
    slot.root.classList.remove("drag-over");
    const file = ev.dataTransfer?.files?.[0];
    if (!file) return say(`slot-${slot.key}`, `Photo ${slot.name}: drop an image file here.`, "warn");
    stopCamera(slot);
    setSource(slot, file);
  });
  slot.camera.addEventListener("click", () => (slot.stream ? stopCamera(slot) : startCamera(slot)));
  slot.capture.addEventListener("click", () => capture(slot));
}

async function startCamera(slot) {
  const key = `camera-${slot.key}`;
  if (slot.starting) return;
  if (!navigator.mediaDevices?.getUserMedia) {
    say(key, `Photo ${slot.name}: no camera is available here (this browser gives the page no camera, ` +
      "or the page is not served over https). Choose a file instead.", "warn");
    return;
  }
  for (const s of slots) if (s !== slot) stopCamera(s); // many devices give only one stream at a time
  slot.starting = true;
  try {
    slot.stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) {
    say(key, cameraError(slot, err), "warn");
    return;
  } finally {
    slot.starting = false;
  }
  say(key, "");
  slot.video.srcObject = slot.stream;
  slot.video.hidden = false;
  slot.capture.hidden = false;
  slot.camera.textContent = "Stop camera";
  try {
    await slot.video.play();
  } catch {
    // muted inline playback is allowed everywhere we know of; if not, the preview just stays still
  }
  slot.capture.focus();
}

function cameraError(slot, err) {
  const who = `Photo ${slot.name}`;
  if (err?.name === "NotAllowedError" || err?.name === "SecurityError") {
    return `${who}: camera access was refused. Allow the camera in the browser's site settings, or choose a file instead.`;
  }
  if (err?.name === "NotFoundError" || err?.name === "OverconstrainedError") {
    return `${who}: no camera was found on this device. Choose a file instead.`;
  }
  return `${who}: the camera could not start (${err?.message || err?.name || err}).`;
}

function stopCamera(slot) {
  if (!slot.stream) return;
  for (const t of slot.stream.getTracks()) t.stop();
  slot.stream = null;
  slot.video.srcObject = null;
  slot.video.hidden = true;
  const hadFocus = document.activeElement === slot.capture;
  slot.capture.hidden = true;
  slot.camera.textContent = "Use camera";
  if (hadFocus) slot.camera.focus();
}

function capture(slot) {
  const v = slot.video;
  if (!slot.stream || !v.videoWidth) {
    say(`camera-${slot.key}`, `Photo ${slot.name}: the camera has no picture yet; try again in a moment.`, "warn");
    return;
  }
  // A snapshot canvas: it stays valid after the camera stops, so a model switch can re-analyse it.
  const frame = document.createElement("canvas");
  frame.width = v.videoWidth;
  frame.height = v.videoHeight;
  frame.getContext("2d").drawImage(v, 0, 0);
  stopCamera(slot);
  setSource(slot, frame);
}

// ---- settings and start-up ----

function applyQuery() {
  const q = new URLSearchParams(location.search);
  for (const [param, id] of [["model", "model"], ["backend", "backend-choice"], ["op", "operating-point"]]) {
    const want = q.get(param);
    const sel = $(id);
    if (want && [...sel.options].some((o) => o.value === want)) sel.value = want;
  }
}

// Keep the URL in step with the settings so a link reproduces them (no request is made).
function writeQuery() {
  const q = new URLSearchParams(location.search);
  q.set("model", $("model").value);
  q.set("backend", $("backend-choice").value);
  q.set("op", $("operating-point").value);
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

function init() {
  applyQuery();
  slots.forEach(wireSlot);
  slots.forEach((s) => wireAligned(s.aligned));
  for (const id of ["model", "backend-choice"]) {
    $(id).addEventListener("change", () => {
      writeQuery();
      requestLoad();
    });
  }
  $("operating-point").addEventListener("change", () => {
    writeQuery();
    renderVerdict();
    scheduleCompare();
  });
  $("reset-mask").addEventListener("click", resetMask);
  // A file dropped outside a slot would make the browser navigate to it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (ev) => ev.preventDefault());
  window.addEventListener("resize", updateCellInfo);
  for (const s of slots) {
    drawPhoto(s);
    drawAligned(s);
  }
  renderLegend();
  renderVerdict();
  requestLoad();
  // Offline second visits: sw.js keeps the page and the wasm core (the library keeps the models).
  navigator.serviceWorker?.register("sw.js").catch(() => {});
}

init();
