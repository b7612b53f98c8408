// BPTT Explorer page: state → POST /api/v1/bptt → every view. Plain ES modules, no build.

import { computeBptt, getJSON } from "./api.js";
import { clearErrors, errorText, initEditor, renderEditor, renderPresets, showError, toggleStep } from "./editor.js";
import { renderFormula, CSS as FORMULA_CSS } from "./formula.js";
import { renderSteps } from "./steps.js";
import { graphFigure, graphRange, WINDOW } from "./graph.js";
import { initPlayer, playerFields, playerKey, renderPlayer } from "./player.js";
import { initRows, rowOf } from "./rows.js";
import { initProjector, projectorFigure } from "./projector.js";
import { apply as applyLang, lang, tr } from "./i18n.js";
import { FRAMES, clipFactor, contribFigure, deltaNormFigure, deltaRowFigure, gradsFigure, hiddenFigure, paramList, vanishFigure, vanishReading } from "./plots.js";
import { defaultView, c0Of, h0Of, readURL, setCells, setNotations, sizes, writeURL } from "./state.js";
import { gatesFigure, gatesHelp, renderRtrl } from "./gates.js";
import { clone, debounce, download, fmt } from "./util.js";
import { displayNames, displayParts, displayResponse } from "./display.js";
import { initExercise } from "./exercise.js";
import { initQuiz, initialSelection, maskFigure, quizBanner, quizMasked, render as renderQuiz } from "./quiz.js";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 60;
// the API's warnings (English) that the page says in its own language, by how they start
const WARNING_BANNERS = [
  ["gradient_check: compares", "banner.check_exact"],
  ["gradient_check: skipped", "banner.check_skipped"],
  ["loss_steps: no step", "banner.no_loss"],
  ["loss softmax_ce with p = 1", "banner.softmax_one"],
];

const state = { lang: "en", preset: null, req: null, sel: { t: 0, k: 0, b: 0 }, view: defaultView(), hide: [] };
let resp = null; // last good response
let sentReq = null; // the request that produced resp
let presets = [];
let inflight = null;
let changeAt = 0;
let fromJSON = false; // the request being computed came from the JSON box
const perf = { renders: 0, lastMs: null, lastComputeMs: null };
window.bptt = { perf, state, response: () => resp };

// course data stays on this server: no modebar button may send a chart elsewhere (Plotly's
// "Share chart…" uploads it to Plotly's cloud; showSendToCloud drops it, the removal list names
// it again, and an empty server URL leaves nothing to send to even if a later Plotly adds it back)
const PLOT_CONFIG = {
  displaylogo: false, responsive: true, showSendToCloud: false, showLink: false, plotlyServerURL: "",
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d", "sendChartToCloud", "sendDataToCloud"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

// Plotly's own words (modebar tooltips) in Chinese
const PLOTLY_ZH = {
  moduleType: "locale", name: "zh-CN",
  dictionary: {
    "Download plot as a png": "下载图片（PNG）", "Download plot as a PNG": "下载图片（PNG）", "Download plot": "下载图片", "Zoom": "缩放", "Pan": "平移",
    "Zoom in": "放大", "Zoom out": "缩小", "Reset axes": "重置坐标轴", "Autoscale": "自动缩放",
    "Toggle Spike Lines": "切换辅助线", "Show closest data on hover": "悬停显示最近的数据",
    "Compare data on hover": "悬停比较数据", "Produced with Plotly.js": "由 Plotly.js 绘制",
    "Reset view": "重置视图", "Double-click to zoom back out": "双击恢复原始大小",
    "Toggle show closest data on hover": "切换悬停显示最近的数据", "Box Select": "框选", "Lasso Select": "套索选择",
    "Reset": "重置", "Reset views": "重置视图", "Download plot as JSON": "下载图表（JSON）",
    "Preparing image - this may take a few seconds": "正在生成图片，请稍候…", "Image download succeeded": "图片已下载",
    "Sorry, there was a problem downloading your image!": "抱歉，下载图片时出错！",
    "JSON download succeeded": "JSON 已下载", "Sorry, there was a problem downloading your JSON file!": "抱歉，下载 JSON 时出错！",
    "Double-click on legend to isolate one trace": "双击图例可只显示这一条曲线",
    "Share": "分享", "Share chart": "分享图表", "Share chart...": "分享图表…", "Cancel": "取消",
  },
  format: { decimal: ".", thousands: "," },
};

// ------------------------------------------------------------------ compute

function change(mutate, opts = {}) {
  const r = clone(state.req);
  const out = mutate(r);
  state.req = out && typeof out === "object" ? out : r;
  if (!opts.samePreset) {  // a change of the model: it is no longer the preset (a rename is not)
    state.preset = null;
    $("preset").value = "";
    $("preset-desc").textContent = "";
  } else {
    renderPresets(presets, state.preset, state.lang);  // the description under the new names
  }
  changeAt = performance.now();
  renderEditor(state, resp, { rebuild: !!opts.rebuild });
  scheduleCompute();
}

const scheduleCompute = debounce(() => compute(), DEBOUNCE_MS);

const shown = (panel) => !$(`panel-${panel}`)?.classList.contains("hidden-by-link");

/** The response fields the panels on the page draw (the API computes and sends only these: at
 *  T = 256 the δ table alone is most of the response). Always: the weights (the editor's
 *  grids), the forward pass and ‖δ‖ (the graph, the heatmap), the clipping report and the
 *  diagnostics and the reading of ‖δ‖ (vanish: the vanishing panel and its sentence). */
function neededFields() {
  const f = new Set(["params", "forward", "delta_norm", "eps_tt", "clip", "diagnostics", "vanish"]);
  // the graph's colours and the heatmap's other measure: ‖∂L_t/∂h_k‖, which every cell has (and the LSTM's rail)
  if (shown("graph") || shown("delta")) { f.add("delta_h_norm"); if (state.req?.cell === "lstm") f.add("delta_c_norm"); }
  if (shown("deltarow")) f.add("delta_row");  // row t only (rows.js): the whole δ table is most of the response
  // the formula panel: its numbers come in backward_parts (select), its totals from grads
  if (shown("formula")) for (const x of ["grads", "grads_unclipped"]) f.add(x);
  if (shown("grads")) { f.add("grads"); if (state.req?.clip) f.add("grads_unclipped"); }  // before/after on one scale
  if (shown("steps")) for (const x of ["e", "dh", "dz", "grads"]) f.add(x);
  for (const x of playerFields(state)) f.add(x);  // the step-by-step player, while it is on
  if (shown("contrib")) {
    f.add("grads");  // its parameter list
    f.add(state.view.contribBy === "copy" ? "grads_per_copy" : "grads_per_step");
  }
  return [...f];
}

/** select {t, k, b} for the formula panel (every number of the selected δ_{t,k}, the API's
 *  backward_parts) and the player (row t of ∂L_t/∂h_k, delta_h_row), clamped to the request's
 *  sizes: the request may have fewer steps. */
function selectFor(body) {
  if (!(shown("formula") || shown("deltarow") || playerFields(state).length) || !body?.inputs) return {};
  const { B, T } = sizes(body);
  const t = Math.min(Math.max(0, state.sel.t), T - 1);
  const k = Math.min(Math.max(0, state.sel.k), t);
  return { select: { t, k, ...(B === null ? {} : { b: Math.min(Math.max(0, state.sel.b), B - 1) }) } };
}

/** backward_parts of the selections seen for the current response (key "t|k|b"), and the one
 *  request for a selection that is not among them. */
const partsCache = new WeakMap();
let partsInflight = null;
const partsKey = (t, k, b) => `${t}|${k}|${b}`;

/** The backward_parts for the selection, from the response or the cache; else null, after
 *  asking the API for them (only them: fields ["backward_parts"]) and drawing the panel again
 *  when they come. */
function partsFor(sel) {
  const b = resp.shapes.batch === null ? 0 : sel.b;
  const key = partsKey(sel.t, sel.k, b);
  let cache = partsCache.get(resp);
  if (!cache) {
    cache = new Map();
    partsCache.set(resp, cache);
    const own = resp.backward_parts;
    if (own) cache.set(partsKey(own.t, own.k, own.b), own);
  }
  if (cache.has(key)) return cache.get(key);
  if (partsInflight?.key === key && partsInflight.resp === resp) return null;
  if (partsInflight) partsInflight.ctl.abort();
  const ctl = new AbortController();
  const mine = { key, resp, ctl };
  partsInflight = mine;
  const select = { t: sel.t, k: sel.k, ...(resp.shapes.batch === null ? {} : { b }) };
  const { fields: _f, ...body } = sentReq;
  computeBptt({ ...body, select, fields: ["backward_parts"] }, ctl.signal).then((res) => {
    if (partsInflight === mine) partsInflight = null;
    // a refusal is kept as "not there" (the panel says so), not asked again at every redraw
    cache.set(key, res.ok ? res.data.backward_parts ?? null : null);
    if (mine.resp === resp) renderFormulaPanel();
  }).catch((e) => { if (e.name !== "AbortError") console.error("backward_parts", e); });
  return null;
}

/** Whether the last response lacks a field the page now needs (a view option changed). */
const lacks = () => !!resp && neededFields().some((f) => !(f in resp));

async function compute() {
  if (inflight) inflight.abort();
  const ctl = new AbortController();
  inflight = ctl;
  const body = clone(state.req);
  $("status").textContent = tr("status.computing");
  let res;
  try {
    res = await computeBptt({ ...body, fields: neededFields(), ...selectFor(body) }, ctl.signal);
  } catch (e) {
    if (e.name === "AbortError") return;
    $("status").textContent = tr("status.offline");
    return;
  }
  if (inflight !== ctl) return;
  inflight = null;
  if (!res.ok) {
    const placed = showError(res.error);
    if (fromJSON) {
      $("json-error").textContent = tr("json.refused", { msg: errorText(res.error) });
      $("json-error").title = res.error.message || "";  // the API's own sentence, on hover
    }
    refused(placed ? tr("status.error") : errorText(res.error), tr("status.refused.http", { status: res.status }));
    return;
  }
  fromJSON = false;
  clearErrors();
  setBanner("banner-error", "");
  $("panels").classList.remove("stale");
  resp = res.data;
  sentReq = body;
  perf.lastComputeMs = res.ms;
  clampSelection();
  renderEditor(state, resp, { rebuild: !document.querySelector("#grid-params .grid") && !!resp.params });
  await renderAll();
  const ms = performance.now() - (changeAt || performance.now());
  perf.lastMs = ms;
  $("status").textContent = tr("status.ready", { ms: Math.round(ms) });
  await writeURL(state);
  perf.renders += 1;
  document.body.dataset.renders = String(perf.renders);
  markViewed();
  if (rtrlActive()) runRtrl();
}

// ------------------------------------------------------------------ BPTT beside RTRL

/** The comparison panel is open: method rtrl, or its button was pressed (view.rtrl). */
const rtrlActive = () => shown("rtrl") && (state.view.rtrl || sentReq?.method === "rtrl");
let rtrlFlight = null;

/** The API runs both exact routes on the request just drawn (its own request, fields
 *  ["methods"]: a refusal there, e.g. RTRL's sensitivities over the limit, leaves the page as it is). */
async function runRtrl() {
  if (!sentReq) return;
  if (rtrlFlight) rtrlFlight.abort();
  const ctl = new AbortController();
  rtrlFlight = ctl;
  const { gradient_check: _gc, detail: _d, ...body } = clone(sentReq);
  renderRtrl($("rtrl"), { computing: true });
  let res;
  try {
    res = await computeBptt({ ...body, fields: ["methods"] }, ctl.signal);
  } catch (e) {
    if (e.name !== "AbortError") renderRtrl($("rtrl"), { error: tr("status.offline") });
    return;
  }
  if (rtrlFlight !== ctl) return;
  rtrlFlight = null;
  if (!res.ok) { renderRtrl($("rtrl"), { error: errorText(res.error) }); return; }
  renderRtrl($("rtrl"), { methods: res.data.methods, timing: res.timing, T: res.data.shapes.T });
  document.body.dataset.rtrl = String((Number(document.body.dataset.rtrl) || 0) + 1);
}

/** The current input was refused (by the API, or by the page before sending it): say so in
 *  the banner and the status, and grey the panels, which still show the last valid model. */
function refused(banner, status) {
  if (inflight) { inflight.abort(); inflight = null; }  // an older request must not answer for this input
  setBanner("banner-error", banner);
  $("status").textContent = status;
  $("panels").classList.toggle("stale", !!resp);
  setBanner("banner-info", resp ? tr("stale") : "");
  markViewed();
}

/** Every redraw (a computation, a new selection, a language switch) bumps data-views. */
function markViewed() {
  perf.views = (perf.views || 0) + 1;
  document.body.dataset.views = String(perf.views);
}

function clampSelection() {
  const T = resp.shapes.T;
  const B = resp.shapes.batch;
  state.sel.b = B === null ? 0 : Math.min(Math.max(0, state.sel.b), B - 1);
  state.sel.t = Math.min(Math.max(0, state.sel.t), T - 1);
  state.sel.k = Math.min(Math.max(0, state.sel.k), state.sel.t);
}

// ------------------------------------------------------------------ render

/** The response's names as the page shows them: the state letter s (seeds 000 and 004 write
 *  sₜ for the hidden state) is a display choice, the API's names are unchanged. */
function shownNames() {
  return displayNames(resp, state.view);  // sₜ, b_h / b_o (display.js)
}

function ctx() {
  const b = state.sel.b;
  const batched = resp.shapes.batch !== null;
  const seq = (v) => (batched && v !== null && v !== undefined ? v[b] : v);
  const h0For = (bb) => h0Of(sentReq, bb);
  // row t of δ for the δ-row heatmap (rows.js): undefined while it comes
  const deltaRow = shown("deltarow") ? (t) => rowOf("delta_row", t, batched ? b : 0) : null;
  return { resp: displayResponse(resp, state.view), req: sentReq, sel: state.sel, view: state.view, names: shownNames(), seq, h0: h0For(b), h0For, c0: c0Of(sentReq, b), lang: state.lang, deltaRow,
    width: $("heat-grads")?.clientWidth || undefined, height: $("heat-grads")?.clientHeight || undefined };  // (the gradient panel sizes its cells by them)
}

/** A plot the page shows (not hidden by ?hide= nor in a closed panel). */
const drawable = (el) => !!el && !el.closest(".hidden-by-link") && !el.closest(".panel")?.hidden;

async function react(id, fig) {
  if (!fig) return;  // (a view whose numbers are on their way keeps what it shows)
  const el = $(id);
  if (!drawable(el)) return;
  fig = projectorFigure(fig);  // larger type in the projector view
  fig = maskFigure(fig);  // quiz mode: no hover labels or printed numbers that give the answer
  await Plotly.react(el, fig.data, fig.layout, {
    ...PLOT_CONFIG, locale: state.lang === "zh" ? "zh-CN" : "en",
    toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: `bptt-${id}` },
  });
  // a plot's clicks are bound once it exists: a plot hidden by ?hide= is never drawn, and the
  // others must not depend on it
  if (!el.dataset.bound) {
    el.dataset.bound = "1";
    if (PLOT_EVENTS[id]) el.on("plotly_click", PLOT_EVENTS[id]);
    // resized (the element, or Plotly's responsive redraw after the window's size changed, which
    // can come after the element's: the projector view): the frame follows
    if (FRAMES[id]) { frameWatch.observe(el); el.on("plotly_relayout", schedulePlaceFrames); }
  }
}

/** A row of the tables came (rows.js): the views that draw it, again. */
async function redrawRows() {
  if (!resp) return;
  const c = ctx();
  if (shown("deltarow")) await drawOrDefer(["heat-deltarow"], c);
  placeFrames();
  if (shown("player")) renderPlayer(c);
  document.body.dataset.rows = String((Number(document.body.dataset.rows) || 0) + 1);
}

/** A plot of the δ table: with method rtrl (no δ table) it says so instead. */
const ofTable = (fig) => (c) => (c.resp.delta_norm || c.resp.method !== "rtrl" ? fig(c) : {
  data: [], layout: { xaxis: { visible: false }, yaxis: { visible: false }, margin: { l: 10, r: 10, t: 10, b: 10 },
    annotations: [{ text: tr("rtrl.nodelta").replace(/: |：/, "$&<br>").replace(/\. /, ".<br>").replace(/。/, "。<br>"),
      showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 12 } }] },
});

/** A plot's figure; a view that cannot draw this response (a cell it does not know yet) says so
 *  in its place instead of stopping the page. */
function figureOf(id, c) {
  try {
    return FIGURES[id](c);
  } catch (e) {
    console.warn(id, e);
    return { data: [], layout: { xaxis: { visible: false }, yaxis: { visible: false }, margin: { l: 10, r: 10, t: 10, b: 10 },
      annotations: [{ text: tr("view.unavailable"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 12 } }] } };
  }
}

/** Every plot: element id → figure. */
const FIGURES = {
  "graph": graphFigure, "heat-delta": ofTable(deltaNormFigure), "heat-deltarow": ofTable(deltaRowFigure), "plot-vanish": ofTable(vanishFigure),
  "heat-hidden": hiddenFigure, "heat-grads": gradsFigure, "heat-contrib": ofTable(contribFigure), "heat-gates": gatesFigure,
};
/** What a new selection redraws: the graph on any move, the δ vectors of row t and the
 *  vanishing plot's row t when t moves; the ‖δ‖ heatmap's and the δ rows' frames are boxes
 *  over the plots (placeFrame), moved without a Plotly redraw. */
const ON_T = ["graph", "heat-deltarow", "plot-vanish"];
const ON_K = ["graph"];

// ------------------------------------------------------------------ plots out of view

/** A plot outside the window (NEAR_PX beyond it) is not drawn when the response or the
 *  selection changes: it is marked stale and drawn from the state of that moment when it comes
 *  near the window (IntersectionObserver, or a check at the next frame for a plot that the same
 *  task moved into view), when the page is idle (one plot per idle period) or before printing,
 *  so a change costs the plots a reader sees, not all seven. A plot whose numbers are on their
 *  way (the δ-row heatmap's row, rows.js) waits for them: asked for when it is marked stale,
 *  drawn when they come (redrawRows). data-pending counts the plots stale or waiting (0: every
 *  plot shows the last response and selection; tests/browser.py waits for it). */
const NEAR_PX = 200;
const stale = new Set();
const waiting = new Set();
let idleHandle = null;

/** What a plot's figure asks the API for (its figure is null until it comes): asked for at once. */
const PREFETCH = { "heat-deltarow": (c) => c.deltaRow?.(c.sel.t) };

function inView(el) {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.bottom > -NEAR_PX && r.top < innerHeight + NEAR_PX;
}

function markPending() {
  document.body.dataset.pending = String(stale.size + waiting.size);
}

/** One plot from c; a figure whose numbers are on their way (null) waits for them. */
async function draw(id, c) {
  const fig = figureOf(id, c);
  if (!fig) { waiting.add(id); markPending(); return; }
  await react(id, fig);
}

/** Draws ids in view now (awaited), marks the others stale. */
async function drawOrDefer(ids, c) {
  const now = ids.filter((id) => !drawable($(id)) || inView($(id)));  // (react skips what is not shown)
  for (const id of ids) {
    waiting.delete(id);
    if (now.includes(id)) stale.delete(id);
    else { stale.add(id); PREFETCH[id]?.(c); }
  }
  markPending();
  await Promise.all(now.map((id) => draw(id, c)));
  scheduleIdle();
  requestAnimationFrame(() => drawStaleNow(inView));
}

async function drawStale(id) {
  if (!resp || !stale.has(id)) return;  // (no response yet: the render that brings one marks it again)
  stale.delete(id);
  markPending();
  try {
    await draw(id, ctx());
    if (FRAMES[id]) placeFrame(id);
  } catch (e) {
    console.warn(id, e);
  }
}

/** The stale plots that pass keep (all of them by default: before printing, the paper shows
 *  every plot), drawn now. */
function drawStaleNow(keep = () => true) {
  for (const id of [...stale]) if (keep($(id))) drawStale(id);
}

function scheduleIdle() {
  if (idleHandle !== null || !stale.size || !resp) return;
  idleHandle = requestIdleCallback(async () => {
    const [id] = stale;
    try {
      if (id !== undefined) await drawStale(id);
    } finally {
      idleHandle = null;
      scheduleIdle();
    }
  }, { timeout: 1000 });
}

const nearWatch = new IntersectionObserver((entries) => {
  for (const e of entries) if (e.isIntersecting && stale.has(e.target.id)) drawStale(e.target.id);
}, { rootMargin: `${NEAR_PX}px 0px` });

async function redraw(ids) {
  const c = ctx();
  await drawOrDefer(ids, c);
  placeFrames();
  renderSelectionText(c);
  renderGraphWindow();
  renderFormulaPanel();
  if (shown("steps")) {
    try { renderSteps($("steps"), c); } catch (e) { console.warn("steps panel", e); }  // (method rtrl: no dh, dz)
  }
  if (shown("player")) renderPlayer(c);
  renderQuiz();
  return c;
}

/** A box over heatmap id around the selection (FRAMES), placed from Plotly's axes. */
function placeFrame(id) {
  const gd = $(id);
  if (resp && !resp.delta_norm) {  // method rtrl: no δ table, nothing selected in it
    gd?.parentElement?.querySelector(`.sel-frame[data-for="${id}"]`)?.remove();
    return;
  }
  const fl = gd?._fullLayout;
  if (!fl?.xaxis || !gd.closest || gd.closest(".hidden-by-link")) return;
  let box = gd.parentElement.querySelector(`.sel-frame[data-for="${id}"]`);
  if (!box) {
    box = document.createElement("div");
    box.dataset.for = id;
    gd.parentElement.classList.add("framed");
    gd.after(box);
  }
  const f = FRAMES[id](state.sel);
  const xa = fl.xaxis, ya = fl.yaxis, size = fl._size;
  const left = f.x0 === null ? size.l : size.l + Math.min(xa.l2p(f.x0), xa.l2p(f.x1));
  const right = f.x0 === null ? size.l + size.w : size.l + Math.max(xa.l2p(f.x0), xa.l2p(f.x1));
  const top = size.t + Math.min(ya.l2p(f.y0), ya.l2p(f.y1));
  const bottom = size.t + Math.max(ya.l2p(f.y0), ya.l2p(f.y1));
  box.className = `sel-frame ${f.cls}`;
  Object.assign(box.style, { left: `${gd.offsetLeft + left}px`, top: `${gd.offsetTop + top}px`,
    width: `${Math.max(2, right - left)}px`, height: `${Math.max(2, bottom - top)}px` });
}

// not on every plotly_afterplot: reading the layout while the other plots draw costs a layout each
let framePending = false;
function schedulePlaceFrames() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => { framePending = false; placeFrames(); });
}
const frameWatch = new ResizeObserver(schedulePlaceFrames);

function placeFrames() {
  for (const id of Object.keys(FRAMES)) placeFrame(id);
}

async function renderAll() {
  renderBanners();
  renderContribOptions();
  renderCellPanels();
  const c = await redraw(Object.keys(FIGURES));
  renderVanishText(c);
  renderCheck();
  renderNotes();
}

async function renderSelection(tMoved) {
  await redraw(tMoved ? ON_T : ON_K);
  markViewed();
  scheduleURL();  // off the critical path: deflating the state is 50–100 ms at T = 256
}

const scheduleURL = debounce(() => writeURL(state), 250);

function renderFormulaPanel() {
  if (!shown("formula")) return;
  try {
    const parts = partsFor(state.sel);
    // while the numbers of a new selection are on their way, the panel keeps the last ones (no flicker)
    if (!parts && $("formula").childElementCount && partsInflight?.resp === resp) { $("formula").classList.add("fx-waiting"); return; }
    $("formula").classList.remove("fx-waiting");
    renderFormula($("formula"), { req: sentReq, resp: displayResponse(resp, state.view), t: state.sel.t, k: state.sel.k, b: state.sel.b, lang: state.lang,
      parts: displayParts(parts, resp, state.view), pending: !!partsInflight });
  } catch (e) {
    console.error("formula panel", e);
  }
}

/** The graph's window of steps (T > 60): where it is, and ◀ ▶ to move it by half a window. */
function renderGraphWindow() {
  const T = resp.shapes.T;
  const [lo, hi] = graphRange(T, state.sel, state.view);
  $("graph-window").hidden = lo === 1 && hi === T;
  $("graph-range").textContent = tr("graph.range", { lo, hi, T });
  $("graph-prev").disabled = lo === 1;
  $("graph-next").disabled = hi === T;
}

function moveGraphWindow(dir) {
  if (!resp) return;
  const [lo] = graphRange(resp.shapes.T, state.sel, state.view);
  state.view.graphFrom = Math.max(1, Math.min(resp.shapes.T - WINDOW + 1, lo + dir * (WINDOW / 2)));
  react("graph", graphFigure(ctx()));
  renderGraphWindow();
  writeURL(state);
}

function renderSelectionText(c) {
  const { t, k } = state.sel;
  const el = $("selection");
  el.replaceChildren();
  const b1 = document.createElement("b");
  b1.textContent = tr("sel.t", { t: sub(t + 1) });
  const b2 = document.createElement("b");
  b2.textContent = tr("sel.k", { k: k + 1 });
  el.append(tr("sel"), b1, " · ", b2);
  if (resp.delta_norm) el.append(` · ‖δ${sub(t + 1)},${sub(k + 1)}‖ = ${fmt(c.seq(resp.delta_norm)[t][k])}`);
  if (resp.delta_h_norm) el.append(` · ‖∂L${sub(t + 1)}/∂${shownNames().h || "h"}${sub(k + 1)}‖ = ${fmt(c.seq(resp.delta_h_norm)[t][k])}`);
}

const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (n) => String(n).split("").map((d) => SUBS[d]).join("");

function renderVanishText(c) {
  $("vanish-reading").textContent = resp.vanish ? vanishReading(c) : "";
  const d = resp.diagnostics;
  const jmed = c.seq(d.jacobian_norm_median);  // the API's median of the finite ‖J_k‖₂
  // a gated cell's W_hh stacks G blocks (G·m × m): no eigenvalues, no spectral radius
  // (gamma is null for gated cells only: a vanilla W_hh that overflowed has a null radius too)
  const stats = d.gamma === null ? "vanish.stats.gated" : "vanish.stats";
  $("vanish-stats").textContent = tr(stats, { W: resp.names.W_hh, rho: fmt(d.spectral_radius), smax: fmt(d.sigma_max), jmed: fmt(jmed) });
}

/** The parts that depend on the cell and the method: the gates panel (gated cells only), the
 *  heatmap's measure menu, the RTRL panel's state. */
function renderCellPanels() {
  const gated = !!resp.forward?.gates;
  $("panel-gates").hidden = !gated;
  $("gates-help").textContent = gatesHelp(resp);
  $("graph").classList.toggle("with-rail", !!resp.forward?.c);
  const G = resp.forward?.gates ? Object.keys(resp.forward.gates).length : 1;
  const opt = $("delta-measure").options[0];
  opt.textContent = G > 1 ? tr("measure.delta.gated", { G }) : tr("measure.delta");
  $("delta-measure").value = state.view.measure === "dh" ? "dh" : "delta";
  const absent = state.view.measure === "dh" && !resp.delta_h_norm && !!resp.delta_norm;
  $("delta-measure-note").hidden = !absent;
  $("delta-measure-note").textContent = absent ? tr("measure.absent") : "";
  $("rtrl-run").hidden = rtrlActive();
  if (!rtrlActive()) renderRtrl($("rtrl"), {});
}

function renderNotes() {
  // with clipping, before and after share one scale per array: "each on its own scale" would be wrong
  const shared = resp.clip && resp.grads_unclipped && clipFactor(resp) !== null;
  const notes = shared ? [] : [tr("grads.note.scale")];
  if (resp.clip) {
    const how = tr(resp.clip.method === "norm" ? "clip.max_norm" : "clip.max_value") + ` c = ${fmt(resp.clip.threshold)}`;
    notes.push(tr("grads.note.clip", { how, before: fmt(resp.clip.norm_before), after: fmt(resp.clip.norm_after) }));
    if (resp.grads_unclipped && clipFactor(resp) !== null) notes.push(tr("grads.note.clipshared", { f: fmt(clipFactor(resp), 4) }));
  }
  if (resp.truncation && resp.truncation < resp.shapes.T) notes.push(tr("grads.note.trunc", { K: resp.truncation }));
  $("grads-note").textContent = notes.join(" ");
  const hn = shownNames().h || "h";
  $("hidden-title").textContent = tr("panel.hidden", { h: `${hn}ₜ` });
}

function renderCheck() {
  const box = $("check");
  box.replaceChildren();
  const gc = resp.gradient_check;
  if (!gc) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = tr("check.none");
    box.append(p);
  } else {
    const p = document.createElement("p");
    p.className = gc.ok ? "ok" : "bad";
    p.textContent = tr(gc.ok ? "check.summary.ok" : "check.summary.bad", { tol: gc.tolerance });
    const tbl = document.createElement("table");
    const head = tbl.insertRow();
    for (const h of ["check.array", "check.maxrel", "check.checked", ""]) { const th = document.createElement("th"); th.textContent = h ? tr(h) : ""; head.append(th); }
    for (const [name, a] of Object.entries(gc.arrays)) {
      const r = tbl.insertRow();
      const ok = a.max_rel_error !== null && a.max_rel_error < gc.tolerance;
      r.insertCell().textContent = name;
      r.insertCell().textContent = fmt(a.max_rel_error, 2);
      r.insertCell().textContent = `${a.checked} / ${a.of}`;
      const cell = r.insertCell();
      cell.textContent = ok ? tr("check.ok") : tr("check.bad");
      cell.className = ok ? "ok" : "bad";
    }
    box.append(p, tbl);
    if (resp.clip || (resp.truncation && resp.truncation < resp.shapes.T)) {
      const n = document.createElement("p");
      n.className = "muted";
      n.textContent = tr("check.note.exact");
      box.append(n);
    }
  }
  const cl = resp.clip;
  // an overflowed gradient has no norm (null): clipping cannot bound it, and "under the threshold" would be false
  $("clip-info").textContent = !cl ? "" : !Number.isFinite(cl.norm_before) ? tr("clip.nonfinite")
    : tr("clip.info", { before: fmt(cl.norm_before), after: fmt(cl.norm_after), clipped: tr(cl.clipped ? "clip.clipped" : "clip.not") });
}

function renderBanners() {
  setBanner("banner-overflow", resp.nonfinite.length ? tr("banner.overflow", { fields: overflowWords(resp.nonfinite) }) : "");
  const info = [];
  if (resp.detail === "norms") info.push(tr("banner.norms"));
  // overflow has its own banner; the fallback to norms is said by banner.norms in the page's language
  for (const w of resp.warnings) {
    if (w.startsWith("overflow") || w.startsWith("detail:") || w.startsWith("fields:")) continue;
    const key = WARNING_BANNERS.find(([start]) => w.startsWith(start));
    info.push(key ? tr(key[1]) : w);
  }
  setBanner("banner-info", info.join(" "));
}


/** The response's paths that overflowed ("forward.h", "grads.W_hh"), in the page's words (the
 *  JSON's own list is `nonfinite`). */
function overflowWords(paths) {
  const seen = new Set();
  const out = [];
  for (const p of paths) {
    const [head, rest] = p.split(/\.(.*)/s);
    const key = `field.${head}` + (head === "forward" ? `.${rest}` : "");
    let words = tr(key) !== key ? tr(key) : null;
    if (words && rest && head !== "forward") words = words.endsWith("∂") ? words + rest : `${words} ${rest}`;
    const text = words || p;
    if (!seen.has(text)) { seen.add(text); out.push(text); }
  }
  return out.join(lang() === "zh" ? "、" : ", ");
}

function setBanner(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

function renderContribOptions() {
  const sel = $("contrib-param");
  const ps = paramList(resp);
  const seen = new Set();
  const opts = ps.filter((p) => !seen.has(p.canon) && seen.add(p.canon));
  const key = opts.map((p) => `${p.canon}:${p.name}`).join();
  if (sel.dataset.key !== key) {
    sel.replaceChildren(...opts.map((p) => new Option(p.name, p.canon)));
    sel.dataset.key = key;
  }
  if (!opts.some((p) => p.canon === state.view.contribParam)) state.view.contribParam = opts[0]?.canon;
  sel.value = state.view.contribParam;
  $("contrib-by").value = state.view.contribBy;
}

// ------------------------------------------------------------------ selection and events

function select(t, k, b) {
  if (!resp) return;
  const t0 = state.sel.t;
  if (b !== null && b !== undefined) state.sel.b = b;
  if (t !== null && t !== undefined) state.sel.t = t;
  if (k !== null && k !== undefined) state.sel.k = k;
  if (k !== null && k !== undefined && state.sel.k > state.sel.t) state.sel.t = state.sel.k;
  clampSelection();
  if (b !== null && b !== undefined) { renderEditor(state, resp, { rebuild: true }); renderAll().then(markViewed); return; }
  renderSelection(state.sel.t !== t0);
}

/** The plots a click selects in: element id → plotly_click handler (bound by react()). */
const PLOT_EVENTS = {
  "graph": (ev) => {
    const cd = ev.points?.[0]?.customdata;
    if (!cd) return;
    const [kind, step] = cd;
    if (kind === "t") {
      // Shift+click on a loss node switches its loss on or off (the "pick" steps mode)
      if (ev.event?.shiftKey && ev.points[0].data.meta === "loss") { toggleStep(step); return; }
      select(step, Math.min(state.sel.k, step));
    } else {
      select(null, step);
    }
  },
  "heat-delta": (ev) => {
    const p = ev.points?.[0];
    if (!p) return;
    const t = p.y - 1, k = p.x - 1;
    state.view.graphFrom = null;
    if (k <= t) select(t, k);
  },
  "heat-deltarow": (ev) => { const p = ev.points?.[0]; if (p) select(null, p.y - 1); },
};

function onKey(e) {
  if (!resp) return;
  const tag = (e.target.tagName || "").toLowerCase();
  if (["input", "textarea"].includes(tag) || e.altKey || e.ctrlKey || e.metaKey) return;
  if (playerKey(e)) return;  // Space, and while the player is on ← → PageUp PageDown Home End Esc
  // a focused dropdown (just used to pick a notation or a loss) must not change the model on an
  // arrow key meant for the selection: the arrows move (t, k); Space, Enter or Alt+↓ open it
  const { t, k } = state.sel;
  const T = resp.shapes.T;
  const moves = { ArrowLeft: [t, k - 1], ArrowRight: [t, k + 1], ArrowUp: [t - 1, k], ArrowDown: [t + 1, k], Home: [t, 0], End: [t, t] };
  const mv = moves[e.key];
  if (!mv) return;
  e.preventDefault();
  let [nt, nk] = mv;
  nt = Math.min(Math.max(nt, 0), T - 1);
  nk = Math.min(Math.max(nk, 0), nt);
  state.view.graphFrom = null;  // the graph's window follows the selection again
  select(nt, nk);
}

// ------------------------------------------------------------------ presets, JSON, export, share

async function loadPreset(id, sel = null) {
  if (!id) return;
  const req = await getJSON(`/api/v1/presets/${encodeURIComponent(id)}`);
  loadRequest(req, id, sel);
}

function loadRequest(req, presetId = null, sel = null) {
  // the page draws every field of the response: a pasted request's "fields" would leave it
  // without some, so it is dropped here (the API keeps it for programs)
  const { fields: _fields, ...whole } = req;
  req = whole;
  state.req = req;
  state.preset = presetId;
  state.scaleByUser = false;  // a loaded scale is the preset's (or the link's) choice, for its m
  const mask = Array.isArray(req.loss_steps) ? req.loss_steps : null;
  const { T } = sizes(req);
  const last = req.loss_steps === "last" ? T - 1 : (mask ? mask.lastIndexOf(true) : T - 1);
  // default: the last loss, one step back (the first step of the recursion with numbers in it)
  state.sel = sel || { t: Math.max(0, last), k: Math.max(0, last - 1), b: 0 };
  renderPresets(presets, presetId, state.lang);
  changeAt = performance.now();
  resp = null;
  renderEditor(state, null, { rebuild: true });
  compute();
}

function applyJSON(text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (e) {
    showError({ field: "json", message: jsonErrorText(text, e), local: true });
    return;
  }
  if (!req || typeof req !== "object" || Array.isArray(req)) {
    showError({ field: "json", message: tr("json.hint"), local: true });
    return;
  }
  fromJSON = true;
  loadRequest(req);
}

/** A JSON syntax error in the page's language: the line and column (from the parser's
 *  character position, when it gives one), not the browser's English sentence. */
function jsonErrorText(text, e) {
  if (lang() === "en") return `JSON: ${e.message}`;
  const msg = e.message || "";
  let pos = null, m;
  if ((m = /position (\d+)/.exec(msg))) pos = Number(m[1]);
  else if (/end of JSON input/.test(msg)) pos = text.length;
  else if ((m = /^Unexpected token '(.)', (?:\.\.\.)?"(.*?)(?:\.\.\.)?" is not valid JSON/s.exec(msg)) && text.includes(m[2])) {
    pos = text.indexOf(m[2]) + Math.max(0, m[2].indexOf(m[1]));  // Chromium quotes the text around the token
  }
  if (pos === null) return tr("json.syntax");
  const before = text.slice(0, pos).split("\n");
  return tr("json.syntax.at", { line: before.length, col: before[before.length - 1].length + 1 });
}

async function exportCSV() {
  if (!resp || !resp.delta_norm || !sentReq) return;  // (method rtrl: no δ table)
  // the whole table, asked for now (the page's own response carries one row of it)
  const got = await computeBptt({ ...sentReq, fields: ["delta", "delta_norm"] });
  if (!got.ok) { setBanner("banner-error", errorText(got.error)); return; }
  const full = got.data;
  const rows = ["sequence,t,k,unit,delta"];
  const B = full.shapes.batch ?? 1;
  for (let b = 0; b < B; b++) {
    const D = full.shapes.batch === null ? full.delta : full.delta?.[b];
    const N = full.shapes.batch === null ? full.delta_norm : full.delta_norm[b];
    for (let t = 0; t < full.shapes.T; t++) for (let k = 0; k <= t; k++) {
      if (D) D[t][k].forEach((v, i) => rows.push(`${b + 1},${t + 1},${k + 1},${i + 1},${v ?? ""}`));
      else rows.push(`${b + 1},${t + 1},${k + 1},norm,${N[t][k] ?? ""}`);
    }
  }
  download("bptt-delta.csv", rows.join("\n") + "\n", "text/csv");
}

async function share() {
  const href = await writeURL(state);
  try {
    await navigator.clipboard.writeText(href);
    setBanner("banner-share", tr("share.done"));
  } catch {
    setBanner("banner-share", tr("share.failed"));
  }
  setTimeout(() => setBanner("banner-share", ""), 4000);
}

function setLang(l) {
  state.lang = l;
  applyLang(l);
  applyHide(state.hide);
  renderPresets(presets, state.preset, l);
  if (perf.lastMs != null) $("status").textContent = tr("status.ready", { ms: Math.round(perf.lastMs) });
  if (resp) {
    renderEditor(state, resp, { rebuild: true });
    renderAll().then(() => writeURL(state)).then(markViewed);
  }
}

/** The parts ?hide= can hide: the editor's data-hide sections and the panels (#panel-NAME). */
function hideable() {
  const names = new Set([...document.querySelectorAll("[data-hide]")].map((el) => el.dataset.hide));
  for (const el of document.querySelectorAll("#panels > .panel[id^='panel-']")) names.add(el.id.slice("panel-".length));
  return names;
}

function applyHide(flags) {
  const known = hideable();
  const good = flags.filter((f) => known.has(f));
  const unknown = flags.filter((f) => !known.has(f));
  for (const f of good) for (const el of document.querySelectorAll(`[data-hide="${CSS.escape(f)}"], #panel-${CSS.escape(f)}`)) el.classList.add("hidden-by-link");
  $("hide-note").hidden = good.length === 0;
  // a misspelt flag hides nothing: say so, so a teacher does not hand out a page with the answers on it
  setBanner("banner-hide", [unknown.length ? tr("hide.unknown", { bad: unknown.join(", "), known: [...known].join(", ") }) : "", quizBanner()].filter(Boolean).join(" "));
}

// ------------------------------------------------------------------ start

async function start() {
  Plotly.register(PLOTLY_ZH);
  if (FORMULA_CSS) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(FORMULA_CSS);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }
  const url = await readURL();
  const fallbackLang = document.querySelector('meta[name="bptt-default-lang"]')?.content || "en";
  state.lang = url.lang === "zh" || url.lang === "en" ? url.lang : fallbackLang;
  state.hide = url.hide;
  if (url.view) state.view = { ...defaultView(), ...url.view };
  applyLang(state.lang);
  applyHide(state.hide);
  const [nots, list, cellList] = await Promise.all([getJSON("/api/v1/notations"), getJSON("/api/v1/presets"), getJSON("/api/v1/cells")]);
  setNotations(nots);
  setCells(cellList);
  presets = list;
  initEditor({ state: () => state, response: () => resp, change, select, loadPreset, applyJSON,
    refuse: () => refused(tr("status.error"), tr("status.refused")) });
  $("lang").addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
  $("share").addEventListener("click", share);
  $("export-request").addEventListener("click", () => download("bptt-request.json", JSON.stringify(state.req, null, 1)));
  // the whole response, every field (the page's own carries only what its panels draw)
  $("export-response").addEventListener("click", async () => {
    if (!sentReq || quizMasked()) return;
    const res = await computeBptt(sentReq);
    if (res.ok) download("bptt-response.json", JSON.stringify(res.data));
  });
  $("export-csv").addEventListener("click", exportCSV);
  $("delta-log").addEventListener("change", (e) => { state.view.log = e.target.checked; if (resp) renderAll().then(markViewed); writeURL(state); });
  $("contrib-param").addEventListener("change", (e) => { state.view.contribParam = e.target.value; react("heat-contrib", figureOf("heat-contrib", ctx())); writeURL(state); });
  $("contrib-by").addEventListener("change", (e) => {
    state.view.contribBy = e.target.value;
    if (lacks()) { changeAt = performance.now(); compute(); return; }  // per copy needs dz and e
    react("heat-contrib", figureOf("heat-contrib", ctx()));
    writeURL(state);
  });
  $("delta-log").checked = state.view.log;
  $("delta-measure").addEventListener("change", (e) => {
    state.view.measure = e.target.value;
    if (resp) renderAll().then(markViewed);
    writeURL(state);
  });
  $("rtrl-run").addEventListener("click", () => {
    state.view.rtrl = true;
    $("rtrl-run").hidden = true;
    runRtrl();
    writeURL(state);
  });
  $("state-letter").value = state.view.stateLetter || "h";
  $("state-letter").addEventListener("change", (e) => { state.view.stateLetter = e.target.value; if (resp) renderAll().then(markViewed); writeURL(state); });
  // the notes' names: biases b_h, b_o and δ⁽ᵏ⁾ = ∂L/∂hₖ (display.js; the API's names stay)
  $("names-bo").checked = state.view.biasNames === "ho";
  $("names-dh").checked = !!state.view.deltaH;
  $("names-bo").addEventListener("change", (e) => {
    state.view.biasNames = e.target.checked ? "ho" : "";
    if (resp) { renderEditor(state, resp, { rebuild: true }); renderAll().then(markViewed); }  // the weight grids' names too
    writeURL(state);
  });
  $("names-dh").addEventListener("change", (e) => { state.view.deltaH = e.target.checked; if (resp) renderAll().then(markViewed); writeURL(state); });
  $("graph-prev").addEventListener("click", () => moveGraphWindow(-1));
  $("graph-next").addEventListener("click", () => moveGraphWindow(1));
  document.addEventListener("keydown", onKey);
  initPlayer({ state: () => state, response: () => resp, select, shown: () => shown("player"),
    refetch: () => { changeAt = performance.now(); compute(); } });
  // the rows of another loss t (the δ-row heatmap, the player): asked together, drawn when they come
  initRows({ response: () => resp, request: () => sentReq, sel: () => state.sel,
    fields: () => [...(shown("deltarow") ? ["delta_row"] : []), ...(playerFields(state).includes("delta_h_row") ? ["delta_h_row"] : [])],
    redraw: redrawRows });
  initProjector(() => { if (resp) renderAll().then(markViewed); }, drawStaleNow);
  for (const id of Object.keys(FIGURES)) if ($(id)) nearWatch.observe($(id));
  // the exercise builder and the quiz (?quiz=…): the quiz hides the numbers before the first render
  initExercise({ state: () => state, response: () => resp, presets: () => presets,
    hideable: () => [...hideable()].map((name) => ({ name, panel: !!$(`panel-${name}`) })) });
  initQuiz({ state: () => state, response: () => resp, sentRequest: () => sentReq,
    redrawAll: () => { if (resp) renderAll().then(markViewed); } }, new URLSearchParams(location.search).get("quiz"));
  applyHide(state.hide);  // a quiz value the page does not know is said with the hide flags
  const quizSel = initialSelection();
  if (url.req) loadRequest(url.req, url.preset, quizSel || url.sel);
  else await loadPreset(url.preset && presets.some((p) => p.id === url.preset) ? url.preset : presets[0]?.id, quizSel);
}

start().catch((e) => {
  console.error(e);
  setBanner("banner-error", String(e));
});
