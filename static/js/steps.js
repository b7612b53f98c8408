// The forward pass and the backward quantities with their numbers (course note 003's
// unrolling): at the selected loss step t, zₜ, hₜ, oₜ, eₜ, Lₜ; at the selected step k,
// ∂L/∂hₖ (the dh_next of the efficient pass), ∂L/∂zₖ = δ summed over t, ∂L/∂xₖ; and ∂L/∂h₀.
// Every number is the response's own (the page computes none of them).
//
//   renderSteps(el, { resp, req, sel, names, seq, h0 })

import { dhIn, dhLabel } from "./display.js";
import { tr } from "./i18n.js";
import { fmt } from "./util.js";

const SHOWN = 8;  // entries of a vector printed; longer ones end with "…" and how many entries there are

function vecText(v) {
  if (v === null || v === undefined) return tr("steps.na");
  if (!Array.isArray(v)) return fmt(v);
  const head = v.slice(0, SHOWN).map((x) => fmt(x)).join(", ");
  // (the norm of the whole vector was formed here: the page computes no number, see player.js)
  return v.length <= SHOWN ? `[${head}]` : `[${head}, …] ${tr("player.entries", { n: v.length })}`;
}

function table(title, rows) {
  const box = document.createElement("div");
  box.className = "steps-block";
  const h = document.createElement("h3");
  h.textContent = title;
  const t = document.createElement("table");
  t.className = "steps";
  for (const [label, formula, value] of rows) {
    const r = t.insertRow();
    const a = r.insertCell();
    a.className = "steps-sym";
    a.textContent = label;
    const b = r.insertCell();
    b.className = "steps-formula";
    b.textContent = formula;
    const c = r.insertCell();
    c.className = "steps-num";
    c.textContent = vecText(value);
  }
  box.append(h, t);
  return box;
}

export function renderSteps(el, ctx) {
  const { resp, req, sel, names, seq, view } = ctx;
  const t = sel.t, k = sel.k;
  const T1 = t + 1, K1 = k + 1;
  const hn = names.h || "h";
  const fw = resp.forward;
  const x = seq(req.inputs);
  const h = seq(fw.h);
  const W = (c) => names[c] ?? c;
  const f = resp.activation;
  const gated = !!fw.gates;  // LSTM, GRU: a_t, the stacked gate pre-activations, in place of z_t
  const z = gated ? "a" : "z";
  const fwd = [[`x${T1}`, tr("steps.input"), x?.[t]]];
  if (!gated) {
    fwd.push([`z${T1}`, `${W("W_xh")} x${T1} + ${W("W_hh")} ${hn}${t} + ${W("b_h")}`, seq(fw.z)[t]]);
    fwd.push([`${hn}${T1}`, resp.cell === "residual" ? `${hn}${t} + ${f}(z${T1})` : `${f}(z${T1})`, h[t]]);
  } else {
    const gates = Object.keys(fw.gates).join(", ");
    const a = `${W("W_ih")} x${T1} + ${W("b_ih")} + ${W("W_hh")} ${hn}${t} + ${W("b_hh")}`;
    fwd.push([`a${T1}`, resp.cell === "gru" ? tr("steps.a.gru", { a, gates, t: T1, h: `${hn}${t}` }) : tr("steps.a", { a, gates }), seq(fw.z)[t]]);
    if (resp.cell === "lstm") {
      fwd.push([`c${T1}`, `f${T1} ⊙ c${t} + i${T1} ⊙ g${T1}`, seq(fw.c)[t]]);
      fwd.push([`${hn}${T1}`, `o${T1} ⊙ tanh(c${T1})`, h[t]]);
    } else {
      fwd.push([`${hn}${T1}`, `(1 − u${T1}) ⊙ n${T1} + u${T1} ⊙ ${hn}${t}`, h[t]]);
    }
  }
  if (resp.shapes.p !== null) {
    fwd.push([`o${T1}`, `${W("W_hy")} ${hn}${T1} + ${W("b_y")}`, seq(fw.o)?.[t]]);
    if (resp.loss === "softmax_ce") fwd.push([`ŷ${T1}`, `softmax(o${T1})`, seq(fw.y_hat)?.[t]]);
    // targets for every step, or for the loss steps only (row i of them is the i-th loss step)
    const Y = seq(req.targets);
    const y = Y?.length === resp.shapes.T ? Y[t] : resp.loss_steps[t] ? Y?.[resp.loss_steps.slice(0, t).filter(Boolean).length] : undefined;
    fwd.push([`y${T1}`, resp.loss === "softmax_ce" ? tr("steps.class") : tr("steps.target"), y]);
    if (resp.e) fwd.push([`e${T1}`, resp.loss === "softmax_ce" ? `∂L${T1}/∂o${T1} = ŷ${T1} − onehot(y${T1})` : `∂L${T1}/∂o${T1} = o${T1} − y${T1}`, seq(resp.e)[t]]);
  }
  fwd.push([`L${T1}`, resp.loss_steps[t] ? (resp.loss === "mse" ? `½‖o${T1} − y${T1}‖²` : resp.loss === "softmax_ce" ? `−log ŷ${T1}[y${T1}]` : `⟨g${T1}, ${hn}${T1}⟩`) : tr("steps.noloss"),
    resp.loss_steps[t] ? seq(fw.loss_t)[t] : 0]);
  fwd.push(["L", resp.reduction === "mean" ? tr("steps.mean") : "Σₜ Lₜ", fw.loss]);
  const g = resp.grads || {};
  const bwd = [
    [dhLabel(K1, view, hn, resp.notation), tr("steps.dh", { h: hn, k: K1, k1: K1 + 1, next: dhIn(K1 + 1, view, `∂L/∂${hn}${K1 + 1}`) }), resp.dh ? seq(resp.dh)[k] : null],
    [`∂L/∂${z}${K1}`, tr(gated ? "steps.da" : "steps.dz", { k: K1, dh: dhIn(K1, view, `∂L/∂${hn}${K1}`) }), resp.dz ? seq(resp.dz)[k] : null],
    [`∂L/∂x${K1}`, `${W(gated ? "W_ih" : "W_xh")}ᵀ ∂L/∂${z}${K1}`, g.inputs ? seq(g.inputs)[k] : null],
    [dhLabel(0, view, hn, resp.notation), `(∂${hn}1/∂${hn}0)ᵀ ${dhIn(1, view, `∂L/∂${hn}1`)}`, g.h0 !== undefined ? seq(g.h0) : null],
  ];
  el.replaceChildren(
    table(tr("steps.forward", { t: T1 }), fwd),
    table(tr("steps.backward", { k: K1 }), bwd),
  );
}
