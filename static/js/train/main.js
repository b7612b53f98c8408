// The training view (issue 13): a run of POST /api/v1/train with play, pause, step and reset,
// TF Playground's habits. The setup lives in the URL (#c=…); changing it resets the run.
//
// Pause aborts the stream (the server stops the run at once); play and step start a new
// stream from the last resume point: the last checkpoint (its parameters and the optimizer's
// state before that update) or the last done line (after its last update), with start_update,
// so the seeded batches and draws continue and the run is bit for bit the uninterrupted one.
// Lines the page already has (after resuming from an earlier checkpoint) are skipped.

import { getJSON, url } from "../api.js";
import { apply as applyLang, tr } from "../i18n.js";
import { defaultView } from "../state.js";
import { clone, debounce, fmt, fromBase64Url, toBase64Url } from "../util.js";
import { deltaFigure, gradNormFigure, lossFigure, paramNormFigure } from "./curves.js";
import { streamTrain } from "./stream.js";

const $ = (id) => document.getElementById(id);
const MAX_REPORTS = 200; // report_every keeps a run at about this many points
const MAX_FRAMES = 60; // checkpoint_every keeps about this many δ frames

const PLOT_CONFIG = {
  displaylogo: false, responsive: true, showSendToCloud: false, showLink: false, plotlyServerURL: "",
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d", "sendChartToCloud", "sendDataToCloud"],
  toImageButtonOptions: { format: "png", scale: 2 },
};
// Plotly's own words (the modebar) in Chinese; the explorer's main.js has the full list
const PLOTLY_ZH = {
  moduleType: "locale", name: "zh-CN",
  dictionary: {
    "Download plot as a png": "下载图片（PNG）", "Download plot as a PNG": "下载图片（PNG）", "Download plot": "下载图片", "Zoom": "缩放", "Pan": "平移",
    "Zoom in": "放大", "Zoom out": "缩小", "Reset axes": "重置坐标轴", "Autoscale": "自动缩放",
    "Toggle Spike Lines": "切换辅助线", "Show closest data on hover": "悬停显示最近的数据",
    "Compare data on hover": "悬停比较数据", "Produced with Plotly.js": "由 Plotly.js 绘制", "Reset view": "重置视图",
    "Double-click to zoom back out": "双击恢复原始大小", "Toggle show closest data on hover": "切换悬停显示最近的数据",
    "Double-click on legend to isolate one trace": "双击图例可只显示这一条曲线",
  },
  format: { decimal: ".", thousands: "," },
};

// The presets a class starts from (the remedies: a vanilla RNN cannot carry the symbol over 20
// steps, an LSTM can once its forget gate starts open; clipping rescues an exploding run).
const PRESETS = {
  "echo": { task: { name: "echo", delay: 3, T: 20, n: 1, N: 32 }, cell: "vanilla", activation: "tanh", hidden: 16, seed: 0,
    forget_bias: null, optimizer: { name: "adam", lr: 0.01 }, batch_size: 16, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: null },
  "recall-vanilla": { task: { name: "recall", delay: 20, n: 4, N: 32 }, cell: "vanilla", activation: "tanh", hidden: 16, seed: 0,
    forget_bias: null, optimizer: { name: "adam", lr: 0.01 }, batch_size: null, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: null },
  "recall-lstm": { task: { name: "recall", delay: 20, n: 4, N: 32 }, cell: "lstm", activation: null, hidden: 16, seed: 0,
    forget_bias: null, optimizer: { name: "adam", lr: 0.01 }, batch_size: null, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: null },
  "recall-lstm-forget": { task: { name: "recall", delay: 20, n: 4, N: 32 }, cell: "lstm", activation: null, hidden: 16, seed: 0,
    forget_bias: 2, optimizer: { name: "adam", lr: 0.01 }, batch_size: null, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: null },
  "exploding": { task: { name: "sum", T: 20, n: 1, N: 32 }, cell: "vanilla", activation: "relu", hidden: 16, seed: 0,
    forget_bias: null, optimizer: { name: "momentum", lr: 0.05, momentum: 0.9 }, batch_size: 16, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: null },
  "exploding-clipped": { task: { name: "sum", T: 20, n: 1, N: 32 }, cell: "vanilla", activation: "relu", hidden: 16, seed: 0,
    forget_bias: null, optimizer: { name: "momentum", lr: 0.05, momentum: 0.9 }, batch_size: 16, updates: 300, truncation: { kind: "none", K: 5, p: 0.5 }, clip: 1 },
  "chars-zh": { task: { name: "chars", text: "zh", T: 25, N: 32 }, cell: "lstm", activation: null, hidden: 32, seed: 0,
    forget_bias: 1, optimizer: { name: "adam", lr: 0.01 }, batch_size: 16, updates: 300, truncation: { kind: "chunked", K: 10, p: 0.5 }, clip: 5 },
};
const DEFAULT_PRESET = "echo";

const state = { lang: "en", preset: DEFAULT_PRESET, cfg: clone(PRESETS[DEFAULT_PRESET]), frame: null };
let CELLS = {};
let TASKS = {};
let run = newRun();
const taskCache = new Map();

function newRun() {
  return {
    series: { update: [], loss: [], grad_norm: [], clipped: [], param_norms: {} },
    checkpoints: [], resume: null, shown: 0, status: "idle", ctl: null, lines: 0, streams: 0,
    stopped: false, finalLoss: null, error: null,
  };
}
window.bpttTrain = { state, run: () => run, request: (target) => request(state.cfg, target) };

// ------------------------------------------------------------------ the request

/** report_every and checkpoint_every for U updates (checkpoints are reports too). */
function cadence(U) {
  const r = Math.max(1, Math.ceil(U / MAX_REPORTS));
  const c = r * Math.max(1, Math.ceil(U / r / MAX_FRAMES));
  return { r, c };
}

const gated = (cell) => (CELLS[cell]?.gates?.length ?? 0) > 0;

/** The body of POST /api/v1/train for the setup, up to update `target` (default: all). */
function request(cfg, target = cfg.updates) {
  const { r, c } = cadence(cfg.updates);
  const task = { ...cfg.task, seed: cfg.seed };
  const body = {
    cell: cfg.cell, init: { seed: cfg.seed, hidden: cfg.hidden }, task, optimizer: optimizerBody(cfg.optimizer),
    updates: target, seed: cfg.seed, reduction: "mean", report_every: r, checkpoint_every: c, resumable: true,
  };
  if (!gated(cfg.cell) && cfg.activation) body.activation = cfg.activation;
  if (cfg.cell === "lstm" && cfg.forget_bias !== null && cfg.forget_bias !== undefined) body.init.forget_bias = cfg.forget_bias;
  if (cfg.batch_size) body.batch_size = cfg.batch_size;
  const t = cfg.truncation;
  if (t.kind === "window" || t.kind === "chunked") body.truncation = { kind: t.kind, K: t.K };
  else if (t.kind === "randomized") body.truncation = { kind: "randomized", p: t.p };
  if (cfg.clip !== null && cfg.clip !== undefined) body.clip = { max_norm: cfg.clip };
  return body;
}

function optimizerBody(o) {
  const out = { name: o.name, lr: o.lr };
  const has = (k) => o[k] !== null && o[k] !== undefined;
  if (["sgd", "momentum", "rmsprop"].includes(o.name) && has("momentum")) out.momentum = o.momentum;
  if (["sgd", "momentum"].includes(o.name) && o.nesterov) out.nesterov = true;
  if (o.name === "adam" && (has("beta1") || has("beta2"))) out.betas = [o.beta1 ?? 0.9, o.beta2 ?? 0.999];
  if (o.name === "rmsprop" && has("alpha")) out.alpha = o.alpha;
  if (has("weight_decay")) out.weight_decay = o.weight_decay;
  return out;
}

// ------------------------------------------------------------------ running

async function runTo(target, status) {
  if (run.ctl) return;
  const body = request(state.cfg, target);
  if (run.resume) {
    body.start_update = run.resume.start;
    body.params = run.resume.params;
    body.optimizer_state = run.resume.optimizer_state;
    delete body.init;
  }
  const mine = run;
  const ctl = new AbortController();
  run.ctl = ctl;
  run.status = status;
  run.streams += 1;
  setBanner("banner-error", "");
  clearFieldErrors();
  renderControls();
  const res = await streamTrain(body, { signal: ctl.signal, onLine: (line) => onLine(line, ctl) });
  if (run !== mine || run.ctl !== ctl) return; // reset, or paused: the pause already said so
  run.ctl = null;
  if (!res.ok) refused(res);
  run.status = run.stopped || run.shown >= state.cfg.updates ? "done" : "paused";
  renderControls();
  draw();
}

function onLine(line, ctl) {
  if (run.ctl !== ctl) return; // paused or reset: nothing more from this stream
  run.lines += 1;
  if ("update" in line) {
    const s = run.series;
    if (line.update > run.shown) {
      s.update.push(line.update);
      s.loss.push(line.loss);
      s.grad_norm.push(line.grad_norm);
      s.clipped.push(line.clipped);
      for (const [k, v] of Object.entries(line.param_norms || {})) (s.param_norms[k] ||= []).push(v);
      run.shown = line.update;
    }
    if (line.params) {
      run.resume = { start: line.update, params: line.params, optimizer_state: line.optimizer_state };
      if (!run.checkpoints.some((c) => c.update === line.update)) {
        run.checkpoints.push({ update: line.update, params: line.params, delta_norm: line.delta_norm, reach: line.delta_reach });
      }
    }
    if (line.nonfinite) run.nonfinite = line.update;
  } else if (line.done) {
    run.resume = { start: line.updates + 1, params: line.params, optimizer_state: line.optimizer_state };
    run.finalLoss = line.loss;
    if (line.stopped) run.stopped = true;
  }
  scheduleDraw();
}

function play() {
  if (run.ctl) return pause();
  if (run.stopped || run.shown >= state.cfg.updates) return;
  runTo(state.cfg.updates, "playing");
}

function pause() {
  if (!run.ctl) return;
  const ctl = run.ctl;
  run.ctl = null; // lines still in flight are dropped: the resume point stays the last one kept
  ctl.abort();
  run.status = "paused";
  renderControls();
  draw();
}

/** One update (or, with report, up to the next reported update). */
function step(report = false) {
  if (run.ctl || run.stopped || run.shown >= state.cfg.updates) return;
  const { r } = cadence(state.cfg.updates);
  const u = run.shown;
  const target = report ? (u === 0 ? 1 : u - ((u - 1) % r) + r) : u + 1;
  runTo(Math.min(state.cfg.updates, target), "stepping");
}

function reset() {
  if (run.ctl) run.ctl.abort();
  run = newRun();
  state.frame = null;
  renderControls();
  draw();
}

function refused(res) {
  const e = res.error || {};
  if (res.status === 503) {
    setBanner("banner-error", tr("train.busy", { s: res.retryAfter || "5" }));
    return;
  }
  if (res.status === 0) {
    setBanner("banner-error", tr("status.offline"));
    return;
  }
  const text = tr("err.api", { field: e.field ?? "", msg: e.message ?? "", got: e.got ?? "" });
  const box = e.field && [...document.querySelectorAll(".field-error")].find((el) =>
    el.dataset.for.split(" ").some((f) => f && (e.field === f || e.field.startsWith(f + ".") || e.field.startsWith(f + "["))));
  if (box) {
    box.textContent = text;
    box.title = e.message || "";
  }
  setBanner("banner-error", box ? tr("train.refused") : text, e.message);
}

function clearFieldErrors() {
  for (const el of document.querySelectorAll(".field-error")) { el.textContent = ""; el.title = ""; }
}

function setBanner(id, text, title = "") {
  const el = $(id);
  el.textContent = text;
  el.title = title || "";
  el.hidden = !text;
}

// ------------------------------------------------------------------ drawing

let drawQueued = false;
function scheduleDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; draw(); });
}

async function react(id, fig) {
  await Plotly.react($(id), fig.data, fig.layout, {
    ...PLOT_CONFIG, locale: state.lang === "zh" ? "zh-CN" : "en",
    toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: `bptt-train-${id}` },
  });
}

async function draw() {
  renderControls();
  const s = run.series;
  await Promise.all([
    react("plot-loss", lossFigure([{ name: tr("train.curve.loss"), update: s.update, loss: s.loss }])),
    react("plot-grad", gradNormFigure(s, { maxNorm: state.cfg.clip ?? null })),
    react("plot-params", paramNormFigure(s)),
  ]);
  await drawFrame();
  document.body.dataset.draws = String(Number(document.body.dataset.draws || 0) + 1);
}

async function drawFrame() {
  const cks = run.checkpoints;
  const slider = $("frame");
  const last = cks.length - 1;
  const following = state.frame === null || state.frame >= last;
  const i = cks.length ? (following ? last : state.frame) : null;
  slider.max = String(Math.max(0, last));
  slider.value = String(i ?? 0);
  slider.disabled = cks.length < 2;
  if (i === null) {
    $("frame-label").textContent = "";
    $("delta-reading").textContent = tr("train.delta.empty");
    $("show-update").hidden = true;
    await react("plot-delta", deltaFigure([]));
    return;
  }
  const ck = cks[i];
  $("frame-label").textContent = tr("train.frame.label", { u: ck.update, i: i + 1, n: cks.length });
  $("delta-reading").textContent = reading(ck, cks[0]);
  await react("plot-delta", deltaFigure(ck.delta_norm));
  showLink(ck);
}

/** The sentence under the δ matrix: the API's delta_reach, against the first checkpoint's. */
function reading(ck, first) {
  const r = ck.reach;
  if (!r || r.t === null) return tr("train.reach.noloss");
  if (r.steps === null) return tr("train.reach.none", { u: ck.update, t: r.t });
  let s = tr(r.steps === 0 ? "train.reach.local" : "train.reach", {
    u: ck.update, t: r.t, d: r.steps, pct: fmt(100 * r.fraction, 2), first: fmt(r.first, 2),
  });
  const r0 = first.reach;
  if (first !== ck && r0 && r0.steps !== null) {
    s += tr(r.steps > r0.steps ? "train.reach.more" : r.steps < r0.steps ? "train.reach.less" : "train.reach.same",
      { u0: first.update, d0: r0.steps });
  }
  return s;
}

let linkFor = null;
async function showLink(ck) {
  const a = $("show-update");
  const key = JSON.stringify([state.cfg, ck.update, state.lang]);
  if (linkFor === key) return;
  linkFor = key;
  a.hidden = false;
  try {
    const href = await explorerLink(ck);
    if (linkFor === key) {
      a.href = href;
      window.bpttTrain.linkFor = ck.update; // which checkpoint the link opens (for tests)
    }
  } catch (e) {
    a.hidden = true;
    console.warn("no explorer link", e);
  }
}

async function taskArrays(cfg) {
  const task = { ...cfg.task, seed: cfg.seed };
  const key = JSON.stringify(task);
  if (!taskCache.has(key)) {
    taskCache.set(key, fetch(url("/api/v1/task"), {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ task, sequences: 1 }),
    }).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))));
  }
  return taskCache.get(key);
}

/** The explorer's URL (static/js/state.js writeURL: #s= {r: request, s: [t, k, b], v: view})
 *  for this checkpoint: its parameters, the first training sequence (the one the δ matrix is
 *  of), the loss as trained (mean over the loss steps), the clipping and a window truncation. */
async function explorerLink(ck) {
  const cfg = state.cfg;
  const task = await taskArrays(cfg);
  const req = {
    notation: "canonical", cell: cfg.cell, loss: task.loss, reduction: "mean", loss_steps: task.loss_steps,
    inputs: task.inputs[0], targets: task.loss === "softmax_ce" ? task.target_classes[0] : task.targets[0], params: ck.params,
  };
  if (!gated(cfg.cell) && cfg.activation) req.activation = cfg.activation;
  if (cfg.clip !== null && cfg.clip !== undefined) req.clip = { max_norm: cfg.clip };
  if (cfg.truncation.kind === "window") req.truncation = cfg.truncation.K;
  const T = task.inputs[0].length;
  const blob = await toBase64Url(JSON.stringify({ r: req, s: [T - 1, 0, 0], v: defaultView(), p: null }));
  return `${url("/")}?lang=${state.lang}#s=${blob}`;
}

// ------------------------------------------------------------------ controls

function renderControls() {
  const U = state.cfg.updates;
  const p = $("progress");
  p.max = U;
  p.value = run.shown;
  const playing = !!run.ctl;
  const over = run.stopped || run.shown >= U;
  $("play").textContent = tr(playing ? "train.pause" : "train.play");
  $("play").disabled = over && !playing;
  $("play").setAttribute("aria-pressed", String(playing));
  $("step").disabled = playing || over;
  $("step-report").disabled = playing || over;
  const loss = run.series.loss.length ? fmt(run.series.loss[run.series.loss.length - 1]) : "—";
  $("progress-text").textContent = tr("train.progress", { u: run.shown, U, loss, status: tr(`train.status.${run.status}`) });
  document.body.dataset.status = run.status;
  const { r, c } = cadence(U);
  $("run-note").textContent = tr("train.cadence", { r, c });
  if (run.stopped) setBanner("banner-warn", tr("train.diverged", { u: run.nonfinite ?? run.shown }));
  else setBanner("banner-warn", "");
}

function fillSelect(el, options) {
  el.replaceChildren(...options.map(([value, label]) => Object.assign(document.createElement("option"), { value, textContent: label })));
}

function renderForm() {
  const c = state.cfg;
  $("task").value = c.task.name;
  const opts = TASKS[c.task.name]?.options || {};
  for (const el of document.querySelectorAll("[data-opt]")) el.hidden = !(el.dataset.opt in opts);
  for (const k of ["delay", "T", "n", "N"]) $(`opt-${k}`).value = c.task[k] ?? opts[k] ?? "";
  $("opt-text").value = c.task.text ?? "zh";
  $("task-help").textContent = tr(`train.task.${c.task.name}.help`);
  fillSelect($("cell"), Object.keys(CELLS).map((k) => [k, tr(`train.cell.${k}`)]));
  $("cell").value = c.cell;
  const acts = gated(c.cell) ? [] : CELLS[c.cell]?.activations || [];
  fillSelect($("activation"), acts.map((a) => [a, a === "identity" ? tr("act.identity") : a]));
  $("activation-label").hidden = !acts.length;
  if (acts.length) $("activation").value = acts.includes(c.activation) ? c.activation : acts[0];
  $("hidden").value = c.hidden;
  $("seed").value = c.seed;
  $("forget-label").hidden = c.cell !== "lstm";
  $("forget-bias").value = c.forget_bias ?? "";
  const o = c.optimizer;
  $("optimizer").value = o.name;
  $("lr").value = o.lr;
  for (const el of document.querySelectorAll("[data-for-opt]")) el.hidden = !el.dataset.forOpt.split(" ").includes(o.name);
  $("momentum").placeholder = o.name === "momentum" ? "0.9" : "0";
  for (const [id, k] of [["momentum", "momentum"], ["beta1", "beta1"], ["beta2", "beta2"], ["alpha", "alpha"], ["weight-decay", "weight_decay"]]) $(id).value = o[k] ?? "";
  $("nesterov").checked = !!o.nesterov;
  $("batch").value = c.batch_size ?? "";
  $("updates").value = c.updates;
  $("trunc-kind").value = c.truncation.kind;
  $("trunc-K").value = c.truncation.K;
  $("trunc-p").value = c.truncation.p;
  $("trunc-K-label").hidden = !["window", "chunked"].includes(c.truncation.kind);
  $("trunc-p-label").hidden = c.truncation.kind !== "randomized";
  $("trunc-help").textContent = tr(`train.trunc.${c.truncation.kind}.help`, { K: c.truncation.K, p: c.truncation.p });
  $("clip-on").checked = c.clip !== null && c.clip !== undefined;
  $("clip-c").value = c.clip ?? 1;
  $("clip-c").disabled = !$("clip-on").checked;
  $("grad-help").textContent = tr(c.clip !== null && c.clip !== undefined ? "train.panel.grad.clip" : "train.panel.grad.help", { c: fmt(c.clip ?? 0) });
  fillSelect($("train-preset"), [["", tr("preset.custom")], ...Object.keys(PRESETS).map((k) => [k, tr(`train.preset.${k}`)])]);
  $("train-preset").value = state.preset ?? "";
  $("preset-desc").textContent = state.preset ? tr(`train.preset.${state.preset}.desc`) : "";
}

/** A number input's value, or null when empty (the API's default then). */
function num(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function readForm() {
  const c = clone(state.cfg);
  const name = $("task").value;
  if (name !== c.task.name) {
    const d = { ...(TASKS[name]?.options || {}) };
    delete d.seed;
    if ("text" in d) d.text = "zh";
    c.task = { name, ...d };
  } else {
    for (const k of ["delay", "T", "n", "N"]) if (k in (TASKS[name]?.options || {})) c.task[k] = num(`opt-${k}`);
    if ("text" in (TASKS[name]?.options || {})) c.task.text = $("opt-text").value;
    for (const k of Object.keys(c.task)) if (c.task[k] === null) delete c.task[k];
  }
  c.cell = $("cell").value;
  c.activation = gated(c.cell) ? null : ($("activation").value || "tanh");
  c.hidden = num("hidden");
  c.seed = num("seed") ?? 0;
  c.forget_bias = num("forget-bias");
  const oname = $("optimizer").value;
  if (oname !== c.optimizer.name) c.optimizer = { name: oname, lr: num("lr") };
  else {
    c.optimizer = { name: oname, lr: num("lr"), nesterov: $("nesterov").checked };
    for (const [id, k] of [["momentum", "momentum"], ["beta1", "beta1"], ["beta2", "beta2"], ["alpha", "alpha"], ["weight-decay", "weight_decay"]]) {
      const v = num(id);
      if (v !== null) c.optimizer[k] = v;
    }
  }
  c.batch_size = num("batch");
  c.updates = num("updates") ?? 1;
  c.truncation = { kind: $("trunc-kind").value, K: num("trunc-K") ?? 5, p: num("trunc-p") ?? 0.5 };
  c.clip = $("clip-on").checked ? (num("clip-c") ?? 1) : null;
  return c;
}

const onChange = debounce(() => {
  state.cfg = readForm();
  state.preset = null;
  reset();
  renderForm();
  writeURL();
}, 150);

// ------------------------------------------------------------------ URL

async function writeURL() {
  const blob = await toBase64Url(JSON.stringify({ c: state.cfg, p: state.preset }));
  const q = new URLSearchParams(location.search);
  q.set("lang", state.lang);
  history.replaceState(null, "", `${location.pathname}?${q.toString()}#c=${blob}`);
}

async function readURL() {
  const q = new URLSearchParams(location.search);
  const out = { lang: q.get("lang"), preset: q.get("preset") };
  const m = /(?:^#|&)c=([^&]+)/.exec(location.hash);
  if (m) {
    try {
      const d = JSON.parse(await fromBase64Url(m[1]));
      out.cfg = d.c;
      out.preset = d.p ?? null;
    } catch (e) {
      console.warn("could not read the setup in the URL", e);
    }
  }
  return out;
}

function setLang(l) {
  state.lang = l === "zh" ? "zh" : "en";
  applyLang(state.lang);
  document.title = `${tr("train.title")} · ${tr("app.title")}`;
  linkFor = null;
  renderForm();
  draw();
  writeURL();
}

async function copyLink() {
  await writeURL();
  let ok = true;
  try { await navigator.clipboard.writeText(location.href); } catch { ok = false; }
  setBanner("banner-share", tr(ok ? "train.share.done" : "share.failed"));
  setTimeout(() => setBanner("banner-share", ""), 4000);
}

// ------------------------------------------------------------------ start

async function start() {
  Plotly.register(PLOTLY_ZH);
  [CELLS, TASKS] = await Promise.all([getJSON("/api/v1/cells"), getJSON("/api/v1/tasks")]);
  const u = await readURL();
  const def = document.querySelector('meta[name="bptt-default-lang"]')?.content || "zh";
  state.lang = u.lang === "en" || u.lang === "zh" ? u.lang : def;
  if (u.cfg) { state.cfg = { ...clone(PRESETS[DEFAULT_PRESET]), ...u.cfg }; state.preset = u.preset; }
  else if (u.preset && PRESETS[u.preset]) { state.cfg = clone(PRESETS[u.preset]); state.preset = u.preset; }
  applyLang(state.lang);
  document.title = `${tr("train.title")} · ${tr("app.title")}`;
  renderForm();
  for (const el of $("editor").querySelectorAll("input, select")) el.addEventListener("change", onChange);
  $("train-preset").addEventListener("change", (e) => {
    e.stopPropagation();
    const k = $("train-preset").value;
    if (!PRESETS[k]) return;
    state.cfg = clone(PRESETS[k]);
    state.preset = k;
    reset();
    renderForm();
    writeURL();
  });
  $("play").addEventListener("click", play);
  $("step").addEventListener("click", () => step(false));
  $("step-report").addEventListener("click", () => step(true));
  $("reset").addEventListener("click", reset);
  $("frame").addEventListener("input", () => {
    const v = Number($("frame").value);
    state.frame = v >= run.checkpoints.length - 1 ? null : v;
    drawFrame();
  });
  $("lang").addEventListener("click", () => setLang(state.lang === "zh" ? "en" : "zh"));
  $("share").addEventListener("click", copyLink);
  document.addEventListener("keydown", (e) => {
    // a focused control keeps its own keys (Space on a focused button clicks it already)
    if (e.target.closest("input, select, textarea, button, a, summary")) return;
    if (e.key === " ") { e.preventDefault(); play(); }
    else if (e.key === "ArrowRight" && !run.ctl) step(e.shiftKey);
  });
  await draw();
  await writeURL();
  document.body.dataset.ready = "1";
}

start().catch((e) => {
  console.error(e);
  setBanner("banner-error", tr("status.offline"));
});
