// The backward pass step by step: play / pause / step / back through k = T … 1. Each step
// lights the edge it crosses in the unrolled graph (graph.js draws view.player) and shows,
// side by side, the two routes to dz_k with the response's numbers:
//   route 1, the δ table, row t:   δ_{t,k} = f′(z_k) ⊙ (W_hhᵀ δ_{t,k+1}),  and column k: dz_k = Σ_t δ_{t,k}
//   route 2, the dh_next pass:     dh_k = ε_{k,k} + W_hhᵀ dz_{k+1},  dz_k = f′(z_k) ⊙ dh_k
// Every number is the API's (delta, delta_h_row, eps_tt, forward.fprime, dz, dh_next_pass):
// the page computes none of them. Of the ε tables ∂L_t/∂h_k it asks only for the row it draws,
// t = the selected loss (delta_h_row with select: ~50 KB at T = 256, m = 16, where the whole
// delta_h is ~12 MB); another row is asked for alone when the selection moves to another t.
// The step lives in the URL (view.player.k, 0-based).
//
//   initPlayer(hooks)   hooks: { state(), response(), select(t, k), refetch(), shown() }
//   renderPlayer(ctx)   called by every redraw
//   playerFields(state) the response fields the player needs (only while it is on)
//   playerKey(event)    the keyboard: true when the player took the key

import { rowOf } from "./rows.js";
import { dhIn, deltaSup } from "./display.js";
import { tr } from "./i18n.js";
import { fmt } from "./util.js";

const $ = (id) => document.getElementById(id);
const STEP_MS = 1500;  // one step at speed 1×
const SHOWN = 8;  // entries of a vector printed
const COLUMN_ROWS = 6;  // rows δ_{t,k} of a column listed before "… n more"

let hooks = null;
let timer = null;
let setK = null;  // the sel.k the player set last: another value means the user picked a step
let pending = false;  // the player's fields were asked for and have not come yet

const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (n) => String(n).split("").map((d) => SUBS[d] ?? d).join("");

/** Whether the player is on (it has a step). */
export function playerOn(view) {
  return !!view?.player && Number.isInteger(view.player.k);
}

export function playerFields(state) {
  if (!playerOn(state.view) || !hooks?.shown()) return [];
  return ["delta", "eps_tt", "forward", "dz", "dh_next_pass", "delta_h_row"];
}

/** Row t of ∂L_t/∂h_k for sequence b (rows.js): undefined while it comes, null when refused. */
const rowFor = (t, b) => rowOf("delta_h_row", t, b);

export function initPlayer(h) {
  hooks = h;
  $("player-start").addEventListener("click", () => (playerOn(hooks.state().view) ? stop() : go(lastStep())));
  $("player-first").addEventListener("click", () => go(lastStep()));
  $("player-back").addEventListener("click", () => go(current() + 1));
  $("player-step").addEventListener("click", () => go(current() - 1));
  $("player-end").addEventListener("click", () => go(0));
  $("player-play").addEventListener("click", toggle);
  $("player-speed").addEventListener("change", (e) => {
    const st = hooks.state();
    st.view.player = { ...(st.view.player || { k: null }), speed: Number(e.target.value) };
    if (timer) { pause(); play(); }
  });
}

const lastStep = () => (hooks.response()?.shapes.T ?? 1) - 1;
const current = () => hooks.state().view.player?.k ?? lastStep() + 1;

/** Go to step k (0-based; clamped): the selection's k follows while k ≤ t. */
function go(k) {
  const st = hooks.state();
  const resp = hooks.response();
  if (!resp) return;
  const T = resp.shapes.T;
  const wasOn = playerOn(st.view);
  k = Math.min(Math.max(k, 0), T - 1);
  st.view.player = { speed: 1, ...(st.view.player || {}), k };
  st.view.graphFrom = null;  // the graph's window follows the player
  setK = Math.min(k, st.sel.t);
  if (!wasOn || missing(resp)) {
    st.sel.k = setK;
    if (!pending) { pending = true; hooks.refetch(); }  // once: a tick of play must not abort it
    return;
  }
  hooks.select(null, setK);
}

function stop() {
  pause();
  pending = false;
  const st = hooks.state();
  st.view.player = { ...(st.view.player || {}), k: null };
  hooks.select(null, st.sel.k);  // redraws the graph without the player's edge
}

function play() {
  const st = hooks.state();
  if (!playerOn(st.view) || st.view.player.k === 0) go(lastStep());
  const speed = st.view.player?.speed || 1;
  timer = setInterval(() => {
    const k = hooks.state().view.player?.k;
    if (pending) return;  // the numbers of the first step have not come yet
    if (!Number.isInteger(k) || k <= 0) { pause(); return; }
    go(k - 1);
    if (k - 1 === 0) pause();
  }, STEP_MS / speed);
  playButton();
}

function pause() {
  clearInterval(timer);
  timer = null;
  playButton();
}

function toggle() {
  if (timer) pause(); else play();
}

function playButton() {
  const b = $("player-play");
  b.textContent = tr(timer ? "player.pause" : "player.play");
  b.setAttribute("aria-pressed", timer ? "true" : "false");
}

/** The fields of the response the player reads and this one lacks (asked for again). */
function missing(resp) {
  return ["dh_next_pass", "eps_tt", "dz", "delta_h_row"].some((f) => !(f in resp));
}

export function playerKey(e) {
  if (!hooks?.shown() || !hooks.response()) return false;
  const on = playerOn(hooks.state().view);
  const tag = (e.target.tagName || "").toLowerCase();
  if (e.key === " " || e.code === "Space") {
    // Space on a button, a link or a dropdown is theirs (it presses or opens them), except
    // on the player's own buttons: a student who just pressed "step" plays with Space
    const ours = !!e.target.closest?.(".player-bar") && tag === "button";
    if (!ours && ["button", "select", "a", "summary"].includes(tag)) return false;
    e.preventDefault();
    toggle();
    return true;
  }
  if (!on) return false;
  // the backward pass runs from k = T down to 1: → (or a presenter's PageDown) is the next step
  const moves = { ArrowRight: -1, PageDown: -1, ArrowLeft: 1, PageUp: 1 };
  if (e.key in moves) {
    e.preventDefault();  // also keeps a focused dropdown from changing
    pause();
    go(current() + moves[e.key]);
    return true;
  }
  if (e.key === "Home" || e.key === "End") {
    e.preventDefault();
    pause();
    go(e.key === "Home" ? lastStep() : 0);
    return true;
  }
  if (e.key === "Escape") { stop(); return true; }
  return false;
}

// ------------------------------------------------------------------ drawing

function el(tag, cls, ...kids) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function vecText(v) {
  if (v === null || v === undefined) return tr("steps.na");
  if (!Array.isArray(v)) return fmt(v);
  const head = v.slice(0, SHOWN).map((x) => fmt(x)).join(", ");
  return v.length <= SHOWN ? `[${head}]` : `[${head}, …] ${tr("player.entries", { n: v.length })}`;
}

/** A row: symbol, how it is formed, its numbers; q names the quantity (for tests and print). */
function line(q, sym, how, value, note = null) {
  const r = el("tr", null, el("td", "pl-sym", sym), el("td", "pl-how", how), el("td", "pl-num", note ?? vecText(value)));
  if (q) r.dataset.q = q;
  return r;
}

function block(title, rows, extra = []) {
  return el("div", "pl-route", el("h3", null, title), el("table", "pl-table", ...rows), ...extra);
}

function noteP(text, cls = "pl-note") {
  return el("p", cls, text);
}

export function renderPlayer(c) {
  if (!hooks) return;
  const st = hooks.state();
  const { resp } = c;
  const box = $("player");
  const on = playerOn(st.view);
  $("player-start").textContent = tr(on ? "player.leave" : "player.start");
  for (const id of ["player-first", "player-back", "player-step", "player-end"]) $(id).disabled = !on;
  $("player-speed").value = String(st.view.player?.speed || 1);
  playButton();
  if (!on) {
    $("player-pos").textContent = "";
    box.replaceChildren(noteP(tr("player.off"), "pl-note muted"));
    return;
  }
  const T = resp.shapes.T;
  if (st.view.player.k > T - 1) st.view.player.k = T - 1;
  // the user picked another step (a click on the heatmap, the graph): the player goes there
  if (setK !== null && st.sel.k !== setK && st.sel.k !== Math.min(st.view.player.k, st.sel.t)) st.view.player.k = st.sel.k;
  setK = Math.min(st.view.player.k, st.sel.t);
  const k = st.view.player.k;
  $("player-pos").textContent = tr("player.pos", { i: T - k, T, k: k + 1 });
  $("player-first").disabled = k === T - 1;
  $("player-back").disabled = k === T - 1;
  $("player-step").disabled = k === 0;
  $("player-end").disabled = k === 0;
  if (resp.method === "rtrl") { box.replaceChildren(noteP(tr("player.rtrl"))); return; }
  if (missing(resp)) {
    box.replaceChildren(noteP(tr("status.computing")));
    return;
  }
  pending = false;
  box.replaceChildren(
    el("div", "pl-routes", routeTable(c, k), routePass(c, k)),
    agreement(c, k),
  );
}

function words(c) {
  const { resp, names } = c;
  const h = names.h || "h";
  return {
    h, W: `${names.W_hh}ᵀ`, Wy: `${names.W_hy ?? "W_hy"}ᵀ`, f: "f′",
    cell: resp.cell, gated: resp.cell === "lstm" || resp.cell === "gru",
  };
}

/** Route 1: the δ table, row t (the selected loss), one step back; then column k. */
function routeTable(c, k) {
  const { resp, sel, seq } = c;
  const w = words(c);
  const t = sel.t;
  const T1 = sub(t + 1), K1 = sub(k + 1), K2 = sub(k + 2);
  const d = (tt, kk) => `δ${sub(tt + 1)},${sub(kk + 1)}`;
  const delta = seq(resp.delta);
  const fp = seq(resp.forward.fprime);
  const rows = [];
  const notes = [];
  const v = { t: t + 1, ts: T1, k: k + 1, ks: K1, d: t - k, K: resp.truncation };
  const title = tr("player.r1", v);
  const K = resp.truncation;
  if (!resp.loss_steps[t]) notes.push(noteP(tr("player.r1.noloss", v)));
  else if (k > t) notes.push(noteP(tr("player.r1.after", v)));
  else if (K && t - k >= K) notes.push(noteP(tr("player.r1.trunc", v)));
  else if (!delta) notes.push(noteP(tr("player.norms")));
  else if (k === t) {
    rows.push(line("eps_row", `ε${T1},${T1}`, resp.loss === "upstream" ? `g${T1}` : `${w.Wy} e${T1}`, seq(resp.eps_tt)[t]));
    if (!w.gated) {
      rows.push(line("fprime", `${w.f}(z${T1})`, tr("player.fprime"), fp[t]));
      rows.push(line("delta", d(t, t), `${w.f}(z${T1}) ⊙ ε${T1},${T1}`, delta[t][t]));
    } else {
      rows.push(line("delta", d(t, t), tr("player.gated.delta", { h: w.h, ks: K1, c: w.cell === "lstm" ? tr("player.gated.andc", { ks: K1 }) : "" }), delta[t][t]));
    }
  } else {
    const row = rowFor(t, sel.b ?? 0);  // ∂L_t/∂h_k, k ≤ t: undefined while it comes
    const dh = row?.[k];
    const dhNote = row === undefined ? tr("status.computing") : row === null ? tr("player.nodh") : null;
    rows.push(line("delta_prev", d(t, k + 1), tr("player.prev"), delta[t][k + 1]));
    const dLh = `∂L${T1}/∂${w.h}${K1}`;
    if (w.cell === "vanilla") {
      rows.push(line("carry_row", `${w.W} ${d(t, k + 1)}`, `= ${dLh}`, dh, dhNote));
      rows.push(line("fprime", `${w.f}(z${K1})`, tr("player.fprime"), fp[k]));
      rows.push(line("delta", d(t, k), `${w.f}(z${K1}) ⊙ (${w.W} ${d(t, k + 1)})`, delta[t][k]));
    } else if (w.cell === "residual") {
      rows.push(line("carry_row", dLh, `∂L${T1}/∂${w.h}${K2} + ${w.W} ${d(t, k + 1)}`, dh, dhNote));
      rows.push(line("fprime", `${w.f}(z${K1})`, tr("player.fprime"), fp[k]));
      rows.push(line("delta", d(t, k), `${w.f}(z${K1}) ⊙ ${dLh}`, delta[t][k]));
    } else {
      rows.push(line("carry_row", dLh, tr("player.gated.carry", { h: w.h, ks: K1, k1: k + 2 }), dh, dhNote));
      rows.push(line("delta", d(t, k), tr("player.gated.delta", { h: w.h, ks: K1, c: w.cell === "lstm" ? tr("player.gated.andc", { ks: K1 }) : "" }), delta[t][k]));
    }
  }
  // column k: every loss row that reaches step k, summed
  const col = [];
  if (delta) {
    const rowsT = [];
    for (let tt = k; tt < resp.shapes.T; tt++) if (resp.loss_steps[tt] && !(K && tt - k >= K)) rowsT.push(tt);
    for (const tt of rowsT.slice(0, COLUMN_ROWS)) col.push(line(tt === t ? "col_sel" : "col", d(tt, k), "", delta[tt][k]));
    if (rowsT.length > COLUMN_ROWS) col.push(line(null, "…", "", null, tr("player.more", { n: rowsT.length - COLUMN_ROWS })));
    col.push(line("dz_table", `dz${K1}`, `Σₜ δₜ,${K1}`, seq(resp.dz)[k]));
  }
  const colBlock = delta ? [el("h4", null, tr("player.col", { k: k + 1 })), el("table", "pl-table", ...col)] : [];
  return block(title, rows, [...notes, ...colBlock]);
}

/** Route 2: course note 003's dh_next pass, every loss at once. */
function routePass(c, k) {
  const { resp, seq } = c;
  const w = words(c);
  const P = resp.dh_next_pass;
  const T = resp.shapes.T;
  const K1 = sub(k + 1), K2 = sub(k + 2);
  const rows = [];
  const notes = [];
  if (!P) return block(tr("player.r2"), [], [noteP(tr("player.rtrl"))]);
  // dh_k = ∂L/∂h_k, every loss: note 003's dhₖ, or δ⁽ᵏ⁾ with the notes' names (as the steps table)
  const dhK = (kk) => dhIn(kk, c.view, `d${w.h}${sub(kk)}`);
  rows.push(line("eps", `ε${K1},${K1}`, resp.loss_steps[k] ? (resp.loss === "upstream" ? `g${K1}` : `${w.Wy} e${K1}`) : tr("player.r2.noloss", { k: k + 1 }), seq(resp.eps_tt)[k]));
  const carry = w.cell === "vanilla" ? `${w.W} dz${K2}` : w.cell === "residual" ? `${dhK(k + 2)} + ${w.W} dz${K2}`
    : tr("player.gated.carry", { h: w.h, ks: K1, k1: k + 2 });
  rows.push(line("dh_next", `d${w.h}_next`, k === T - 1 ? tr("player.r2.last", { T }) : carry, seq(P.dh_next)[k]));
  rows.push(line("dh", c.view?.deltaH ? `${deltaSup(k + 1)} = d${w.h}${K1}` : `d${w.h}${K1}`, `ε${K1},${K1} + d${w.h}_next`, seq(P.dh)[k]));
  if (P.dc) {
    rows.push(line("dc_next", "dc_next", k === T - 1 ? tr("player.r2.last", { T }) : tr("player.gated.carry", { h: "c", ks: K1, k1: k + 2 }), seq(P.dc_next)[k]));
    rows.push(line("dc", `dc${K1}`, "dc_next", seq(P.dc)[k]));
  }
  if (!w.gated) {
    rows.push(line("fprime", `${w.f}(z${K1})`, tr("player.fprime"), seq(resp.forward.fprime)[k]));
    rows.push(line("dz_pass", `dz${K1}`, `${w.f}(z${K1}) ⊙ ${dhK(k + 1)}`, seq(P.dz)[k]));
  } else {
    rows.push(line("dz_pass", `dz${K1}`, tr("player.gated.dz", { dh: dhK(k + 1), c: w.cell === "lstm" ? tr("player.gated.anddc", { ks: K1 }) : "" }), seq(P.dz)[k]));
  }
  if (resp.truncation && resp.truncation < T) notes.push(noteP(tr("player.r2.trunc")));
  return block(tr("player.r2"), rows, notes);
}

/** Both routes give the same dz_k: the API's dz_gap says by how much they differ. */
function agreement(c, k) {
  const { resp, seq } = c;
  const gap = seq(resp.dh_next_pass.dz_gap)[k];
  const trunc = resp.truncation && resp.truncation < resp.shapes.T;
  const key = gap === null ? "player.same.overflow" : trunc ? (gap === 0 ? "player.same.trunc0" : "player.same.trunc")
    : gap === 0 ? "player.same.exact" : "player.same.round";
  const p = el("p", "pl-agree", tr(key, { k: k + 1, ks: sub(k + 1), gap: fmt(gap, 2), K: resp.truncation }));
  p.dataset.q = "agree";
  return p;
}
