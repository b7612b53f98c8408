// The formula panel: δ_{t,k} of the selected (t, k), the recursion step that produced it,
// the closed form that explains vanishing / exploding gradients, and the sums over the
// unrolled copies, all as MathML with the numbers of the response (bptt-math.md).
//
//   renderFormula(el, { req, resp, t, k, b, lang, parts, pending })   t, k, b 0-based; shown 1-based
//
// The panel does no maths: every number, norm and product is the API's. Those of the selected
// δ_{t,k} come from backward_parts (the request's select {t, k, b}): ctx.parts, or
// resp.backward_parts when it is for this (t, k, b); without them the panel says the numbers
// are being computed (pending) or are not there. The cell's own step: vanilla and residual
// (ε from W_hhᵀ δ_{t,k+1}), LSTM (ĉ, δ^i … δ^o, ε^h and ε^c passed to k − 1), GRU (δ^n, δ^u, δ^r,
// δ^n ⊙ r inside b_hn's term, ε^h passed to k − 1 directly and through W_hh).
// Hooks for other panels (the backward player): every row of math is a div.fx-row; the rows
// with numbers carry data-fx-row (start, carry, carry-c, step, c_hat, delta_i … delta_o,
// delta_n, delta_u, delta_r, delta_n_r, pass-h, pass-c, bound, term-<canonical name>); each
// section and fold is a <details data-fx="delta|step|closed|grads|g-<name>">.
//
// No inline styles (the page's CSP forbids them): classes prefixed fx-, rules in CSS.

const NS = "http://www.w3.org/1998/Math/MathML";

/** Every visible word of the panel. {name} marks a slot filled with text or inline math. */
export const STRINGS = {
  en: {
    title: "Loss step t = {t}, back at step k = {k}",
    colon: ": ",
    seq: "sequence {b} of {B}",
    cell_vanilla: "vanilla cell",
    cell_residual: "residual cell",
    loss_softmax_ce: "softmax cross-entropy",
    loss_mse: "squared error",
    loss_upstream: "given upstream gradient",
    notation: "notation",
    nota_canonical: "canonical",
    nota_goodfellow: "Goodfellow, Deep Learning",
    nota_nndl: "NNDL (Qiu Xipeng)",
    nota_coursera: "course notebook",
    nota_pytorch: "PyTorch",
    role_xh: "input → hidden",
    role_hh: "hidden → hidden",
    role_bh: "hidden bias",
    role_hy: "hidden → output",
    role_h: "hidden state",
    s1: "1 · Error term",
    s2: "2 · Recursion step",
    s3: "3 · The product expansion: vanishing and exploding",
    s4: "4 · Gradients: sums over the unrolled copies",
    s1_def: "the error of the net input {z} caused by the loss {L}",
    s2_start: "k = t: the start of the recursion, from the output error {e}",
    s2_start_up: "k = t: the start of the recursion; with loss \"upstream\" there is no output layer and {g} is the given upstream gradient {dh}",
    s2_back: "k < t: one step back in time, from {d}",
    s2_res_eps: "{eps} follows from {epstt} by the same recursion",
    s2_none: "Nothing to propagate: {zero}.",
    s3_empty: "k = t: the product is empty, {d} is the start of the recursion.",
    s3_bound: "so ‖δ‖ is bounded by the norms of the step Jacobians {J} (Pascanu et al. 2013):",
    s3_jac: "norms of the step Jacobians {J}, {range}:",
    s3_vanish: "From step k to t each step back multiplies the bound by {g} on average (geometric mean of these {n} ‖J‖): below 1, so the bound shrinks as t − k grows. It bounds ‖δ‖ from above; the panel “Vanishing and exploding” reads the actual ‖δ‖ along the whole row.",
    s3_explode: "From step k to t each step back multiplies the bound by {g} on average (geometric mean of these {n} ‖J‖): above 1, so the bound grows as t − k grows; ‖δ‖ itself may still shrink (a bound is not a value). The panel “Vanishing and exploding” reads the actual ‖δ‖ along the whole row.",
    s3_one: "One step back: the bound is multiplied by ‖J‖ = {g}. One Jacobian tells no trend; the panel “Vanishing and exploding” reads the whole row.",
    s4_shared: "The weights are shared by all unrolled copies: every pair (t, k) adds one term.",
    s4_shared_trunc: "The weights are shared by all unrolled copies: every pair (t, k) with t − k < K = {K} adds one term.",
    s4_batch: "Summed over the batch too: z, h and δ below belong to sequence {b}.",
    term: "term of (t, k) = ({t}, {k}):",
    term_out: "term of step t = {t}:",
    total: "total:",
    total_clip: "total before clipping:",
    after_clip: "after clipping:",
    zero_notloss: "this term is 0 (step {t} carries no loss)",
    zero_trunc: "this term is dropped by truncation",
    bias_both: "both biases get this gradient, since {z} depends on their sum",
    h0_zero: "{h0} = 0 (no initial state was given)",
    clip_norm: "Clipping by global norm: ‖g‖ = {a} > c = {c}, so every gradient is multiplied by c / ‖g‖ = {s}.",
    clip_norm_no: "Clipping by global norm: ‖g‖ = {a} ≤ c = {c}, nothing clipped.",
    clip_value: "Clipping by value: every entry is clipped to [−c, c], c = {c}; ‖g‖ = {a} → {b}.",
    note_notloss: "Step {t} carries no loss: {Lt} is not part of L, so {zero}.",
    note_trunc: "Dropped by truncation: K = {K} and t − k = {d} ≥ K, so {dtk} is taken as 0 (the loss at step t reaches only the K steps t − K + 1 … t).",
    note_mean: "Reduction by the mean: δ is the error term of {L}, so e, ε and every δ here carry the factor 1 / (|S|·B) = {f}.",
    note_overflow: "Some numbers overflowed float64; they are shown as \"overflow\".",
    note_bigm: "m = {m} hidden units: vectors show their first {c} entries and their norm; matrices larger than 6 × 6 are shown by name and shape.",
    trunc_step: "Dropped by truncation (t − k = {d} ≥ K = {K}): this step of the recursion is not taken.",
    trunc_closed: "The product expansion and the bound describe the untruncated δ; truncation (t − k = {d} ≥ K = {K}) replaces it by 0.",
    note_kgt: "k > t: {d} does not exist (the loss at step t does not depend on later steps).",
    overflow: "overflow",
    not_computed: "(the bound was not computed for this response)",
    fail: "This part could not be drawn: {msg}",
    s1_def_gated: "the error of the stacked gate pre-activations {z} caused by the loss {L}",
    role_c: "cell state",
    cell_lstm: "LSTM",
    cell_gru: "GRU",
    parts_pending: "Computing the numbers of this step…",
    parts_missing: "The numbers of this step are not in the response (ask for them with select).",
    lstm_start_c: "{ec}: the loss at step t reaches the cell state cₜ only through {h}.",
    gated_in: "k < t: what step {k} passed back to this step",
    lstm_chat: "{c} is all of ∂Lₜ/∂cₖ: through cₖ₊₁ and through {h}",
    lstm_parts: "the four parts of δₜ,ₖ, one per gate ({a}):",
    gated_pass: "passed back to step {k}:",
    lstm_path: "{p} is the cell state's additive path: with {f} ≈ 1 the gradient crosses a step without being multiplied by {W}, which is why the LSTM's gradient decays slowly.",
    gru_parts: "the three parts of δₜ,ₖ ({a}; {u} is the update gate, PyTorch's z):",
    gru_bhn: "bₕₙ sits inside {inner}: the n rows of Wₕₕ and bₕₙ take {dr}, while bᵢₙ takes {dn}.",
    gru_path: "{p} is the direct path: with {u} ≈ 1 the gradient crosses a step almost unchanged.",
    gru_dh: "{dh} is δₜ,ₖ with its n block replaced by {dn} (what the n rows of Wₕₕ multiply).",
    s3_gated: "For a gated cell {J} is the step Jacobian of the whole state {s}, and max|f′| becomes {L}:",
    none: "Select a cell of the δ table to see its formulas.",
  },
  zh: {
    title: "损失时刻 t = {t}，回传到时刻 k = {k}",
    colon: "：",
    seq: "第 {b} 个序列（共 {B} 个）",
    cell_vanilla: "普通循环单元",
    cell_residual: "残差单元",
    loss_softmax_ce: "softmax 交叉熵",
    loss_mse: "平方误差",
    loss_upstream: "给定的上游梯度",
    notation: "记号",
    nota_canonical: "标准记号",
    nota_goodfellow: "Goodfellow《深度学习》",
    nota_nndl: "邱锡鹏《神经网络与深度学习》",
    nota_coursera: "课程 notebook",
    nota_pytorch: "PyTorch",
    role_xh: "输入 → 隐状态",
    role_hh: "隐状态 → 隐状态",
    role_bh: "隐藏层偏置",
    role_hy: "隐状态 → 输出",
    role_h: "隐状态",
    s1: "1 · 误差项",
    s2: "2 · 递推的一步",
    s3: "3 · 连乘展开式：梯度消失与梯度爆炸",
    s4: "4 · 梯度：对展开的各时刻副本求和",
    s1_def: "损失 {L} 对净输入 {z} 的误差项",
    s2_start: "k = t：递推的起点，来自输出误差 {e}",
    s2_start_up: "k = t：递推的起点；损失为“上游梯度”时没有输出层，{g} 是给定的上游梯度 {dh}",
    s2_back: "k < t：沿时间反向一步，由 {d} 得到",
    s2_res_eps: "{eps} 由 {epstt} 按同一递推得到",
    s2_none: "没有可传播的误差：{zero}。",
    s3_empty: "k = t：连乘为空，{d} 就是递推的起点。",
    s3_bound: "因此 ‖δ‖ 的上界由各步雅可比矩阵 {J} 的范数决定（Pascanu 等，2013）：",
    s3_jac: "各步雅可比矩阵的范数 {J}，{range}：",
    s3_vanish: "从时刻 k 到 t，上界每往回一步平均乘以 {g}（这 {n} 个 ‖J‖ 的几何平均）：小于 1，所以上界随 t − k 增大而缩小。它只是 ‖δ‖ 的上界；整行 ‖δ‖ 的实际变化见“梯度消失与梯度爆炸”面板。",
    s3_explode: "从时刻 k 到 t，上界每往回一步平均乘以 {g}（这 {n} 个 ‖J‖ 的几何平均）：大于 1，所以上界随 t − k 增大而变大；‖δ‖ 本身仍可能缩小（上界不是取值）。整行 ‖δ‖ 的实际变化见“梯度消失与梯度爆炸”面板。",
    s3_one: "往回一步：上界乘以 ‖J‖ = {g}。单个雅可比矩阵看不出趋势；整行见“梯度消失与梯度爆炸”面板。",
    s4_shared: "所有展开的副本共享同一组权重：每一对 (t, k) 贡献一项。",
    s4_shared_trunc: "所有展开的副本共享同一组权重：每一对满足 t − k < K = {K} 的 (t, k) 贡献一项。",
    s4_batch: "还要对整个批次求和：下面的 z、h 和 δ 属于第 {b} 个序列。",
    term: "(t, k) = ({t}, {k}) 这一项：",
    term_out: "时刻 t = {t} 这一项：",
    total: "总和：",
    total_clip: "裁剪前的总和：",
    after_clip: "裁剪后：",
    zero_notloss: "该项为 0（时刻 {t} 没有损失）",
    zero_trunc: "该项被截断舍去",
    bias_both: "两个偏置得到相同的梯度，因为 {z} 只依赖它们的和",
    h0_zero: "{h0} = 0（未给定初始状态）",
    clip_norm: "按全局范数裁剪：‖g‖ = {a} > c = {c}，所有梯度乘以 c / ‖g‖ = {s}。",
    clip_norm_no: "按全局范数裁剪：‖g‖ = {a} ≤ c = {c}，未裁剪。",
    clip_value: "按值裁剪：每个分量裁剪到 [−c, c]，c = {c}；‖g‖ = {a} → {b}。",
    note_notloss: "时刻 {t} 没有损失：{Lt} 不计入 L，所以 {zero}。",
    note_trunc: "被截断：K = {K}，t − k = {d} ≥ K，所以 {dtk} 记为 0（时刻 t 的损失只传到 t − K + 1 … t 这 K 个时刻）。",
    note_mean: "汇总方式为“平均”：δ 是 {L} 的误差项，所以这里的 e、ε 和每个 δ 都带有因子 1 / (|S|·B) = {f}。",
    note_overflow: "部分数值超出了 float64 的范围，显示为 “溢出”。",
    note_bigm: "隐藏单元数 m = {m}：向量只显示前 {c} 个分量及其范数；大于 6 × 6 的矩阵只显示名称和形状。",
    trunc_step: "被截断（t − k = {d} ≥ K = {K}）：递推不再走这一步。",
    trunc_closed: "连乘展开式和上界描述的是未截断的 δ；截断（t − k = {d} ≥ K = {K}）把它置为 0。",
    note_kgt: "k > t：{d} 不存在（时刻 t 的损失不依赖于之后的时刻）。",
    overflow: "溢出",
    not_computed: "（这次没有计算上界）",
    fail: "这一部分无法显示：{msg}",
    s1_def_gated: "损失 {L} 对堆叠的门净输入 {z} 的误差项",
    role_c: "记忆单元（细胞状态）",
    cell_lstm: "LSTM（长短期记忆网络）",
    cell_gru: "GRU（门控循环单元）",
    parts_pending: "正在计算这一步的数值…",
    parts_missing: "响应中没有这一步的数值（用 select 请求）。",
    lstm_start_c: "{ec}：时刻 t 的损失只通过 {h} 到达记忆单元 cₜ。",
    gated_in: "k < t：时刻 {k} 传回到这一步的误差",
    lstm_chat: "{c} 是完整的 ∂Lₜ/∂cₖ：经由 cₖ₊₁，以及经由 {h}",
    lstm_parts: "δₜ,ₖ 的四个部分，每个门一个（{a}）：",
    gated_pass: "传回时刻 {k}：",
    lstm_path: "{p} 是记忆单元的加法通路：{f} ≈ 1 时梯度穿过一步而不乘以 {W}，所以 LSTM 的梯度衰减得慢。",
    gru_parts: "δₜ,ₖ 的三个部分（{a}；{u} 是更新门，即 PyTorch 的 z）：",
    gru_bhn: "bₕₙ 在 {inner} 之内：Wₕₕ 的 n 行和 bₕₙ 得到 {dr}，而 bᵢₙ 得到 {dn}。",
    gru_path: "{p} 是直接通路：{u} ≈ 1 时梯度几乎不变地穿过一步。",
    gru_dh: "{dh} 就是把 δₜ,ₖ 的 n 块换成 {dn}（Wₕₕ 的 n 行所乘的误差）。",
    s3_gated: "对门控单元，{J} 是整个状态 {s} 的一步雅可比矩阵，max|f′| 换成 {L}：",
    none: "在 δ 表中选择一个格子以查看公式。",
  },
};

/** Rules for the page's stylesheet (no inline styles under the CSP). */
export const CSS = `
.fx-panel{font-size:14px;line-height:1.4;min-width:0}
.fx-panel math{font-family:"STIX Two Math","Latin Modern Math","DejaVu Math TeX Gyre",math;font-size:1.05em}
.fx-head{margin:0 0 4px}
.fx-title{font-weight:600;margin:0 0 2px}
.fx-meta{font-size:12px;color:#555}
.fx-meta math{font-size:1em}
.fx-h{font-size:13px;font-weight:600;margin:12px 0 4px;padding-bottom:2px;border-bottom:1px solid #ddd}
/* a row wraps before its relations (=, ≤, ←, ∈: line()); a piece wider than the panel scrolls sideways,
   with a shadow on the side with more (fx-more-l, -r: markOverflow) */
.fx-row{display:flex;flex-wrap:wrap;align-items:center;column-gap:.3em;row-gap:4px;overflow-x:auto;overflow-y:hidden;white-space:nowrap;padding:3px 0 3px 2px;max-width:100%}
.fx-row>math+math{margin-left:0}
.fx-waiting .fx-panel{opacity:.55;transition:opacity .15s .1s}
.fx-lbl{font-size:12px;color:#555;margin:4px 0 0}
.fx-note{font-size:12px;color:#444;margin:3px 0;padding:3px 6px;border-left:3px solid #c9d3e0;background:#f5f7fa}
.fx-warn{border-left-color:#e0b060;background:#fdf7ea}
.fx-err{border-left-color:#d05050;background:#fdf0f0}
.fx-ovf{color:#b00020;font-style:italic}
.fx-code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.9em}
.fx-aside{color:#666}
.fx-panel mtd{padding:.15ex .3em;text-align:right;text-align:-webkit-right}
.fx-panel mtd.fx-c{text-align:center;text-align:-webkit-center}
.fx-sec>summary,.fx-g>summary{cursor:pointer}
.fx-sec>summary>.fx-h{display:inline-block;width:calc(100% - 1.2em);box-sizing:border-box;vertical-align:middle}
.fx-g{margin:4px 0 6px}
.fx-g>summary{overflow-x:auto;overflow-y:hidden;white-space:nowrap;padding:2px 0}
.fx-g>summary>math{vertical-align:middle}
.fx-g>.fx-body{padding-left:12px;border-left:2px solid #eef1f5;margin-left:4px}
.fx-more-r{box-shadow:inset -20px 0 14px -12px rgba(40,60,90,.55)}
.fx-more-l{box-shadow:inset 20px 0 14px -12px rgba(40,60,90,.55)}
.fx-more-l.fx-more-r{box-shadow:inset -20px 0 14px -12px rgba(40,60,90,.55),inset 20px 0 14px -12px rgba(40,60,90,.55)}
`;

// ---------------------------------------------------------------- MathML building blocks

function M(tag, attrs, ...kids) {
  const e = document.createElementNS(NS, tag);
  if (attrs) for (const [a, v] of Object.entries(attrs)) if (v != null) e.setAttribute(a, String(v));
  for (const c of kids.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : fresh(c));
  }
  return e;
}
/** A node that is already placed is copied, so one symbol can be used several times. */
const fresh = (c) => (c instanceof Node && c.parentNode ? c.cloneNode(true) : c);
const mi = (s, a) => M("mi", a, s);
const mn = (s) => M("mn", null, String(s));
const mo = (s, a) => M("mo", a, s);
const mtext = (s, a) => M("mtext", a, s);
const row = (...k) => M("mrow", null, ...k);
const sub = (b, s) => M("msub", null, b, s);
const sup = (b, s) => M("msup", null, b, s);
const subsup = (b, s, p) => M("msubsup", null, b, s, p);
const frac = (a, b) => M("mfrac", null, a, b);
const upright = (s) => mi(s, { mathvariant: "normal" });
const tr = () => upright("T");
const eq = () => mo("=");
const sp = (w = "0.5em") => M("mspace", { width: w });
const op = (s) => mo(s, { stretchy: "false" });
const par = (...k) => row(mo("("), ...k, mo(")"));
const norm = (...k) => row(mo("‖"), ...k, mo("‖"));
const idx = (v) => (typeof v === "number" ? mn(v) : v instanceof Node ? v : mi(String(v)));
const pair = (a, b) => row(idx(a), mo(",", { separator: "true" }), idx(b));
const bigop = (s, under, over) =>
  over == null ? M("munder", null, mo(s), under) : M("munderover", null, mo(s), under, over);
const diff = (num, den) => frac(row(mo("∂", { rspace: "0" }), num), row(mo("∂", { rspace: "0" }), den));
const fprimeOf = (arg) => row(mi("f"), mo("′", { lspace: "0", rspace: "0" }), par(arg));
const reals = (...dims) => sup(upright("ℝ"), row(...dims.flatMap((d, i) => (i ? [mo("×"), mn(d)] : [mn(d)]))));

function html(tag, cls, ...kids) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const c of kids.flat(Infinity)) if (c != null && c !== false) e.append(fresh(c));
  return e;
}
/** Inline math for notes and labels. */
const im = (...k) => M("math", { class: "fx-im" }, ...k);

/** "…{x}…" with slots filled by strings or MathML (wrapped in inline <math>). */
function fill(str, vals = {}) {
  const out = [];
  const re = /\{(\w+)\}/g;
  let last = 0, m;
  while ((m = re.exec(str))) {
    if (m.index > last) out.push(str.slice(last, m.index));
    const v = vals[m[1]];
    if (v == null) out.push(m[0]);
    else if (v instanceof Node) out.push(v.namespaceURI === NS && v.localName !== "math" ? im(v) : v);
    else out.push(String(v));
    last = re.lastIndex;
  }
  if (last < str.length) out.push(str.slice(last));
  return out;
}

// ---------------------------------------------------------------- numbers

/** 4 significant digits: { m: mantissa, e: exponent or null }, real minus signs. */
function fmtParts(x) {
  if (x === 0) return { m: "0", e: null };
  const strip = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
  const minus = (s) => s.replace(/^-/, "−");
  const [mant, ex] = x.toExponential(3).split("e");
  const e = parseInt(ex, 10);
  if (e >= -3 && e <= 3) return { m: minus(strip(x.toFixed(Math.max(0, 3 - e)))), e: null };
  return { m: minus(strip(mant)), e: minus(String(e)) };
}
const isNum = (x) => typeof x === "number" && Number.isFinite(x);

/** One number as MathML; the full value in a hover title (on an HTML span, which Chromium
 *  shows as a tooltip; MathML elements do not get one). */
function numNode(x, S) {
  if (!isNum(x)) return mtext(S.overflow, { class: "fx-ovf" });
  const full = String(x);
  const tok = (s) => {
    const span = document.createElement("span");
    span.title = full;
    span.textContent = s;
    return M("mn", null, span);
  };
  const p = fmtParts(x);
  if (p.e == null) return tok(p.m);
  return row(tok(p.m), mo("×", { lspace: "0.05em", rspace: "0.05em" }), sup(tok("10"), mn(p.e)));
}
/** Plain-text number for notes. */
function numText(x, S) {
  if (!isNum(x)) return S.overflow;
  const p = fmtParts(x);
  const SUP = { "−": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
  return p.e == null ? p.m : `${p.m}×10${[...p.e].map((c) => SUP[c] ?? c).join("")}`;
}

// ---------------------------------------------------------------- arrays (formatting only: every
// number, norm and product below comes from the API, backward_parts and the fields beside it)

const VEC_MAX = 8, VEC_HEAD = 4, MAT_MAX = 6;
const allBad = (a) => a.flat(Infinity).every((x) => !isNum(x));

const cell = (c, center) => M("mtd", center ? { class: "fx-c" } : null, c);
const fenced = (t) => row(mo("["), t, mo("]"));
const ovfNode = (S) => mtext(S.overflow, { class: "fx-ovf" });

/** Column vector; long ones cut to their first entries, ⋮, and their norm (nrm, as the API
 *  sent it; not shown when undefined). */
function colVec(v, S, nrm) {
  if (!Array.isArray(v)) return ovfNode(S);
  if (v.length && allBad(v)) return ovfNode(S);
  const cut = v.length > VEC_MAX;
  const shown = cut ? v.slice(0, VEC_HEAD) : v;
  const rows = shown.map((x) => M("mtr", null, cell(numNode(x, S))));
  if (cut) rows.push(M("mtr", null, cell(mo("⋮"), true)));
  const t = fenced(M("mtable", null, rows));
  if (!cut || nrm === undefined) return t;
  return M("munder", null, t, M("mrow", { class: "fx-aside" }, norm(mo("·")), mo("="), numNode(nrm, S)));
}
/** Row vector (for h_{k−1}ᵀ, x_kᵀ). */
function rowVec(v, S) {
  if (!Array.isArray(v)) return ovfNode(S);
  if (v.length && allBad(v)) return ovfNode(S);
  const cut = v.length > VEC_MAX;
  const shown = cut ? v.slice(0, VEC_HEAD) : v;
  const cells = shown.map((x) => cell(numNode(x, S)));
  if (cut) cells.push(cell(mo("⋯"), true));
  return fenced(M("mtable", null, M("mtr", null, cells)));
}
function matrix(A, S) {
  if (!Array.isArray(A) || !A.length) return ovfNode(S);
  if (allBad(A)) return ovfNode(S);
  return fenced(M("mtable", null, A.map((r) => M("mtr", null, r.map((x) => cell(numNode(x, S)))))));
}
const small = (A) => Array.isArray(A) && A.length <= MAT_MAX && Array.isArray(A[0]) && A[0].length <= MAT_MAX;
/** A weight as the formulas use it transposed: its numbers (small) with ᵀ on the bracket, else its name. */
const matT = (A, S, name) => (small(A) ? sup(matrix(A, S), tr()) : name);


// ---------------------------------------------------------------- notation

function notationOf(resp) {
  const nota = resp.notation || "canonical";
  const names = resp.names || {};
  const style = nota === "coursera" ? "angle" : nota === "goodfellow" ? "paren" : "sub";
  const letters = (s) => row(...[...s].map((c) => mi(c)));
  const code = (s) => mi(s, { mathvariant: "normal", class: "fx-code" });

  /** A parameter under the notation's name, optionally transposed. */
  function P(canon, T = false) {
    const nm = names[canon] ?? canon;
    if (nm.includes(" + ")) {
      const g = row(mo("("), ...nm.split(" + ").flatMap((s, i) => (i ? [mo("+"), code(s)] : [code(s)])), mo(")"));
      return T ? sup(g, tr()) : g;
    }
    let base = null, subs = null, mm;
    if (/^[A-Za-z]$/.test(nm)) base = mi(nm);
    else if ((mm = /^([A-Za-z])_([A-Za-z]+)$/.exec(nm))) { base = mi(mm[1]); subs = letters(mm[2]); }
    else if (nota === "coursera" && (mm = /^([A-Za-z])([a-z]{1,2})$/.exec(nm))) { base = mi(mm[1]); subs = letters(mm[2]); }
    else base = code(nm);
    if (subs) return T ? subsup(base, subs, tr()) : sub(base, subs);
    return T ? sup(base, tr()) : base;
  }
  /** The parts a canonical name is written as (PyTorch's b_h is two arrays). */
  const parts = (canon) => String(names[canon] ?? canon).split(" + ");

  /** Time-indexed state (h or x): h_t, h^{(t)} (Goodfellow) or a^{⟨t⟩} (course notebook). */
  function timed(letter, i, T = false) {
    const ix = idx(i);
    if (style === "sub") return T ? subsup(mi(letter), ix, tr()) : sub(mi(letter), ix);
    const [l, r] = style === "angle" ? ["⟨", "⟩"] : ["(", ")"];
    return sup(mi(letter), row(op(l), ix, op(r), T ? tr() : null));
  }
  const hName = names.h || "h";
  return {
    P, parts,
    /** one shown name on its own (PyTorch's bias_ih_l0) */
    named: (s) => (/^[A-Za-z]$/.test(s) ? mi(s) : code(s)),
    /** the square of a state: h_t², (a^{⟨t⟩})² */
    sq: (node) => sup(style === "sub" ? node : par(node), mn(2)),
    h: (i, T) => timed(hName, i, T),
    x: (i, T) => timed("x", i, T),
    d: (t, k) => sub(mi("δ"), pair(t, k)),
    eps: (t, k) => sub(mi("ε"), pair(t, k)),
    z: (k) => sub(mi("z"), idx(k)),
    L: (t) => (t == null ? mi("L") : sub(mi("L"), idx(t))),
    e: (t) => sub(mi("e"), idx(t)),
    g: (t) => sub(mi("g"), idx(t)),
    o: (t) => sub(mi("o"), idx(t)),
    J: (t) => sub(mi("J"), idx(t)),
    // gated cells (bptt-math.md, "Gated cells"): ε^h, ε^c, δ^i …, ĉ, the gates at step k, a^q_k
    epsS: (s, t, k) => subsup(mi("ε"), pair(t, k), mi(s)),
    dG: (q, t, k) => subsup(mi("δ"), pair(t, k), mi(q)),
    chat: (t, k) => sub(mi("ĉ"), pair(t, k)),
    gate: (q, k) => sub(mi(q), idx(k)),
    c: (k) => sub(mi("c"), idx(k)),
    a: (k) => sub(mi("a"), idx(k)),
  };
}


// ---------------------------------------------------------------- the panel

export function renderFormula(el, ctx) {
  const lang = ctx && ctx.lang === "zh" ? "zh" : "en";
  const S = STRINGS[lang];
  const panel = html("div", "fx-panel");
  panel.lang = lang === "zh" ? "zh-Hans" : "en";
  try {
    build(panel, ctx || {}, S);
  } catch (err) {
    panel.append(html("p", "fx-note fx-err", ...fill(S.fail, { msg: String(err && err.message ? err.message : err) })));
  }
  el.replaceChildren(panel);
  markOverflow(panel);
}

/** Rows of math wider than the panel scroll sideways, and overlay scrollbars do not show it:
 *  a shadow on the side where more is hidden (classes fx-more-l, fx-more-r), kept up to date
 *  as the row scrolls. */
const ROWS = ".fx-row, .fx-g > summary";
const markRow = (row) => {
  const more = row.scrollWidth - row.clientWidth;
  row.classList.toggle("fx-more-l", more > 1 && row.scrollLeft > 1);
  row.classList.toggle("fx-more-r", more > 1 && row.scrollLeft < more - 1);
};
// the panel narrows or widens with the window: one observer, watching the panel shown now
const resized = typeof ResizeObserver === "undefined" ? null
  : new ResizeObserver((entries) => { for (const e of entries) e.target.querySelectorAll(ROWS).forEach(markRow); });

function markOverflow(panel) {
  const rows = [...panel.querySelectorAll(ROWS)];
  // every size read first, then every class written: one layout, not one per row
  const sizes = rows.map((row) => [row.scrollWidth - row.clientWidth, row.scrollLeft]);
  rows.forEach((row, i) => {
    const [more, left] = sizes[i];
    row.classList.toggle("fx-more-l", more > 1 && left > 1);
    row.classList.toggle("fx-more-r", more > 1 && left < more - 1);
    row.addEventListener("scroll", () => markRow(row), { passive: true });
  });
  // folds opened later: their rows get their size only then
  for (const d of panel.querySelectorAll("details")) {
    d.addEventListener("toggle", () => d.querySelectorAll(ROWS).forEach(markRow));
  }
  if (resized) {
    resized.disconnect();
    resized.observe(panel);
  }
}

function build(panel, ctx, S) {
  const { resp } = ctx;
  if (!resp || !resp.shapes) {
    panel.append(html("p", "fx-note", S.none));
    return;
  }
  const shapes = resp.shapes;
  const T = shapes.T, m = shapes.m, Bn = shapes.batch;
  const batched = Bn != null;
  const t = clampInt(ctx.t, 0, T - 1), k = clampInt(ctx.k, 0, T - 1);
  const b = batched ? clampInt(ctx.b, 0, Bn - 1) : 0;
  const seq = (a) => (batched && Array.isArray(a) ? a[b] : a);
  const N = notationOf(resp);
  const t1 = t + 1, k1 = k + 1;
  // every number of the selected δ_{t,k}: the API's backward_parts for exactly (t, k, b)
  const cand = ctx.parts !== undefined ? ctx.parts : resp.backward_parts;
  const P = cand && cand.t === t && cand.k === k && cand.b === b ? cand : null;
  const D = { dnorm: seq(resp.delta_norm) };
  const gated = resp.cell === "lstm" || resp.cell === "gru";
  const hasOut = resp.loss !== "upstream" && shapes.p != null;
  const K = resp.truncation;
  const inLoss = !Array.isArray(resp.loss_steps) || resp.loss_steps[t] !== false;
  const truncated = K != null && t - k >= K;
  const kgt = k > t;
  const at = (a, ...ix) => {  // a[i][j]… or undefined
    let v = a;
    for (const i of ix) v = Array.isArray(v) ? v[i] : undefined;
    return v;
  };
  /** A vector of backward_parts with its norm: group "step", "step_from" or "vectors". */
  const pv = (group, name) => {
    const normsOf = { step: "step_norms", step_from: "step_from_norms", vectors: "vector_norms" }[group];
    return colVec(P && P[group] ? P[group][name] : null, S, P && P[normsOf] ? P[normsOf][name] : undefined);
  };
  const param = (canon) => resp.params && resp.params[N.parts(canon)[0]];
  const st = { S, N, resp, ctx, D, P, pv, param, T, m, t, k, t1, k1, b, batched, Bn, gated, hasOut, K, inLoss, truncated, kgt, at };

  // ---- heading
  const head = html("div", "fx-head");
  head.append(html("div", "fx-title", ...fill(S.title, { t: String(t1), k: String(k1) }),
    batched ? ` · ${fill(S.seq, { b: String(b + 1), B: String(Bn) }).join("")}` : ""));
  const meta = html("div", "fx-meta");
  const roleBits = [[gated ? "W_ih" : "W_xh", S.role_xh], ["W_hh", S.role_hh]];
  if (hasOut) roleBits.push(["W_hy", S.role_hy]);
  const metaBits = [`${S.notation}${S.colon}${S["nota_" + resp.notation] || resp.notation}`, " · ", S["cell_" + resp.cell] || resp.cell,
    gated ? " · " : ` · f = ${resp.activation} · `, S["loss_" + resp.loss] || resp.loss];
  meta.append(...metaBits, html("br"));
  roleBits.forEach(([c, role], i) => meta.append(i ? " · " : "", im(N.P(c)), ` ${role}`));
  meta.append(" · ", im(N.h("t")), ` ${S.role_h}`);
  if (resp.cell === "lstm") meta.append(" · ", im(N.c("t")), ` ${S.role_c}`);
  head.append(meta);
  panel.append(head);

  // ---- general notes
  const notes = [];
  if (Array.isArray(resp.nonfinite) && resp.nonfinite.length) notes.push(["fx-warn", fill(S.note_overflow)]);
  if (resp.reduction === "mean") {
    const nS = Array.isArray(resp.loss_steps) ? resp.loss_steps.filter(Boolean).length : T;
    const Lmean = row(mi("L"), eq(), frac(mn(1), row(mo("|"), mi("S"), mo("|"), mo("·"), mi("B"))),
      bigop("∑", row(mi("t"), mo("∈"), mi("S"))), N.L("t"));
    notes.push(["", fill(S.note_mean, { L: Lmean, f: batched ? `1/(${nS}·${Bn})` : `1/${nS}` })]);
  }
  const cutVectors = P && P.step ? P.step.delta.length > VEC_MAX : m > VEC_MAX;
  if (cutVectors) notes.push(["", fill(S.note_bigm, { m: String(m), c: String(VEC_HEAD) })]);
  if (!P && !kgt) notes.push(["fx-warn", [ctx.pending ? S.parts_pending : S.parts_missing]]);
  for (const [cls, kids] of notes) panel.append(html("p", `fx-note ${cls}`.trim(), ...kids));

  section(panel, "delta", S.s1, st, sectionDelta);
  if (kgt) return;
  section(panel, "step", S.s2, st, sectionRecursion);
  section(panel, "closed", S.s3, st, sectionClosed);
  section(panel, "grads", S.s4, st, sectionGrads);
}

function clampInt(v, lo, hi) {
  const n = Number.isFinite(Number(v)) ? Math.trunc(Number(v)) : lo;
  return Math.min(hi, Math.max(lo, n));
}

/** Which foldable parts the reader opened or closed, kept across re-renders. */
const OPEN = new Map();

/** A <details> part with a remembered open state; returns its body. */
function fold(parent, key, summaryKids, defaultOpen, cls) {
  const d = html("details", cls);
  d.open = OPEN.has(key) ? OPEN.get(key) : defaultOpen;
  d.dataset.fx = key;
  d.addEventListener("toggle", () => OPEN.set(key, d.open));
  d.append(html("summary", null, ...summaryKids));
  const body = html("div", "fx-body");
  d.append(body);
  parent.append(d);
  return body;
}

function section(panel, key, title, st, fn) {
  const body = fold(panel, key, [html("h3", "fx-h", title)], true, "fx-sec");
  try {
    fn(body, st);
  } catch (err) {
    body.append(html("p", "fx-note fx-err", ...fill(st.S.fail, { msg: String(err && err.message ? err.message : err) })));
  }
}

/** One horizontally scrollable row of display-style math. */
/** One row of display-style math that wraps in a narrow panel: cut before each top-level
 *  relation (=, ≤, ←, ∈) into pieces of math that flow onto the next line (a piece wider than
 *  the panel still scrolls sideways). data-fx-row="step", … names the row for other panels. */
const BREAK_AT = new Set(["=", "≤", "←", "∈"]);
function line(parent, ...kids) {
  const chunks = [[]];
  for (const c of kids.flat(Infinity)) {
    if (c == null || c === false) continue;
    const rel = c instanceof Element && c.localName === "mo" && BREAK_AT.has(c.textContent);
    if (rel && chunks[chunks.length - 1].length) chunks.push([]);
    chunks[chunks.length - 1].push(c);
  }
  const div = html("div", "fx-row", ...chunks.map((ch) => M("math", { displaystyle: "true" }, row(...ch))));
  parent.append(div);
  return div;
}
const note = (parent, cls, kids) => parent.append(html("p", `fx-note ${cls || ""}`.trim(), ...kids));
const label = (parent, kids) => parent.append(html("div", "fx-lbl", ...kids));


// ---- 1. δ_{t,k}
function sectionDelta(sec, st) {
  const { S, N, t1, k1, t, k, P } = st;
  const zk = st.gated ? N.a(k1) : N.z(k1);
  label(sec, fill(st.gated ? S.s1_def_gated : S.s1_def, { z: zk, L: N.L(t1) }));
  if (st.kgt) { note(sec, "", fill(S.note_kgt, { d: N.d(t1, k1) })); return; }
  const nrm = P ? P.delta_norm : st.at(st.D.dnorm, t, k);
  const lhs = [N.d(t1, k1), eq(), diff(N.L(t1), zk), eq()];
  if (!st.inLoss) {
    line(sec, ...lhs, mn(0));
    note(sec, "", fill(S.note_notloss, { t: String(t1), Lt: N.L(t1), zero: row(N.d(t1, mo("·")), eq(), mn(0)) }));
    return;
  }
  if (st.truncated) {
    line(sec, ...lhs, mn(0));
    note(sec, "", fill(S.note_trunc, { K: String(st.K), d: String(t - k), dtk: N.d(t1, k1) }));
    return;
  }
  if (!P) {
    line(sec, norm(N.d(t1, k1)), eq(), numNode(nrm, S));
    return;
  }
  line(sec, ...lhs, st.pv("step", "delta")).dataset.fxRow = "delta";
  line(sec, norm(N.d(t1, k1)), eq(), numNode(nrm, S));
}

const hadam = () => mo("⊙");
const comma = () => mo(",", { separator: "true" });
const one = () => mn(1);

/** k = t: ε^h_{t,t} from the output error e_t (or the given upstream gradient g_t), with numbers. */
function startLines(sec, st, epsNode) {
  const { S, N, t1, resp } = st;
  if (resp.loss === "upstream" || !st.hasOut) {
    label(sec, fill(S.s2_start_up, { g: N.g(t1), dh: diff(N.L(t1), N.h(t1)) }));
    line(sec, epsNode, eq(), N.g(t1), eq(), st.pv("vectors", "eps_tt")).dataset.fxRow = "start";
    return;
  }
  const eDef = resp.loss === "softmax_ce" ? row(sub(mi("ŷ"), mn(t1)), mo("−"), sub(mi("y"), mn(t1)))
    : row(N.o(t1), mo("−"), sub(mi("y"), mn(t1)));
  label(sec, fill(S.s2_start, { e: row(N.e(t1), eq(), diff(N.L(t1), N.o(t1)), eq(), eDef) }));
  line(sec, epsNode, eq(), N.P("W_hy", true), N.e(t1), eq(), matT(st.param("W_hy"), S, N.P("W_hy", true)),
    st.pv("vectors", "e_t"), eq(), st.pv("vectors", "eps_tt")).dataset.fxRow = "start";
}

// ---- 2. the recursion step
function sectionRecursion(sec, st) {
  if (st.kgt) return;
  if (st.resp.cell === "lstm") return stepLSTM(sec, st);
  if (st.resp.cell === "gru") return stepGRU(sec, st);
  const { S, N, t1, k1, t, k, P, m, resp } = st;
  const residual = resp.cell === "residual";
  const fp = (kk) => fprimeOf(N.z(kk));
  const WhhT = () => N.P("W_hh", true);
  if (k === t) {
    line(sec, N.d(t1, t1), eq(), fp(t1), hadam(), N.eps(t1, t1));
    line(sec, activationHint(resp, N, t1));
    if (!st.inLoss) { note(sec, "", fill(S.s2_none, { zero: row(N.eps(t1, t1), eq(), mn(0)) })); return; }
    if (!P) return;
    startLines(sec, st, N.eps(t1, t1));
    line(sec, N.d(t1, t1), eq(), st.pv("step", "fprime"), hadam(), st.pv("step", "eps_h"), eq(), st.pv("step", "delta")).dataset.fxRow = "step";
    return;
  }
  // k < t
  label(sec, fill(S.s2_back, { d: N.d(t1, k1 + 1) }));
  if (residual) {
    line(sec, N.eps(t1, k1), eq(), N.eps(t1, k1 + 1), mo("+"), WhhT(), N.d(t1, k1 + 1));
    line(sec, N.d(t1, k1), eq(), fp(k1), hadam(), N.eps(t1, k1));
  } else {
    line(sec, N.d(t1, k1), eq(), row(mi("diag"), par(fp(k1))), WhhT(), N.d(t1, k1 + 1),
      eq(), fp(k1), hadam(), par(WhhT(), N.d(t1, k1 + 1)));
  }
  if (!st.inLoss) { note(sec, "", fill(S.s2_none, { zero: row(N.d(t1, mo("·")), eq(), mn(0)) })); return; }
  if (st.truncated) { note(sec, "", fill(S.trunc_step, { K: String(st.K), d: String(t - k) })); return; }
  if (!P) return;
  const W = st.param("W_hh");
  // one line per operation, so that each fits the panel: first W_hhᵀ δ_{t,k+1}, then the rest
  const WtD = residual ? st.pv("step_from", "WT_delta") : st.pv("step_from", "eps_h_prev");
  line(sec, WhhT(), N.d(t1, k1 + 1), eq(), matT(W, S, WhhT()), st.pv("step_from", "delta"), eq(), WtD).dataset.fxRow = "carry";
  if (residual) {
    if (k + 1 < t) label(sec, fill(S.s2_res_eps, { eps: N.eps(t1, k1 + 1), epstt: N.eps(t1, t1) }));
    line(sec, N.eps(t1, k1), eq(), st.pv("step_from", "eps_h"), mo("+"), st.pv("step_from", "WT_delta"), eq(), st.pv("step", "eps_h"));
    line(sec, N.d(t1, k1), eq(), st.pv("step", "fprime"), hadam(), st.pv("step", "eps_h"), eq(), st.pv("step", "delta")).dataset.fxRow = "step";
  } else {
    line(sec, N.d(t1, k1), eq(), st.pv("step", "fprime"), hadam(), WtD, eq(), st.pv("step", "delta")).dataset.fxRow = "step";
  }
  if (!small(W)) line(sec, N.P("W_hh"), mo("∈"), reals(m, m));
}

/** What reaches step k of a gated cell: ε^h_{t,k} (and ε^c_{t,k}) from step k + 1, or the start. */
function gatedIncoming(sec, st) {
  const { S, N, t1, k1, k, t, resp } = st;
  const lstm = resp.cell === "lstm";
  if (k === t) {
    startLines(sec, st, N.epsS("h", t1, t1));
    if (lstm) note(sec, "", fill(S.lstm_start_c, { ec: row(N.epsS("c", t1, t1), eq(), mn(0)), h: N.h(t1) }));
    return;
  }
  label(sec, fill(S.gated_in, { k: String(k1 + 1) }));
  if (resp.cell === "gru") {
    // h_{k+1} = (1 − u) ⊙ n + u ⊙ h_k: h_k reaches step k + 1 directly as well as through W_hh
    const g1 = (q) => N.gate(q, k1 + 1);
    const stack = fenced(row(N.dG("r", t1, k1 + 1), mo(";"), N.dG("u", t1, k1 + 1), mo(";"), N.dG("n", t1, k1 + 1), hadam(), g1("r")));
    line(sec, N.epsS("h", t1, k1), eq(), N.epsS("h", t1, k1 + 1), hadam(), g1("u"), mo("+"), N.P("W_hh", true), stack);
    line(sec, N.epsS("h", t1, k1), eq(), st.pv("step_from", "eps_h_direct"), mo("+"), st.pv("step_from", "eps_h_through"),
      eq(), st.pv("step_from", "eps_h_prev")).dataset.fxRow = "carry";
    return;
  }
  line(sec, N.epsS("h", t1, k1), eq(), N.P("W_hh", true), N.d(t1, k1 + 1), eq(), st.pv("step_from", "eps_h_prev")).dataset.fxRow = "carry";
  if (lstm) {
    line(sec, N.epsS("c", t1, k1), eq(), N.chat(t1, k1 + 1), hadam(), N.gate("f", k1 + 1), eq(),
      st.pv("step_from", "c_hat"), hadam(), st.pv("step_from", "f"), eq(), st.pv("step_from", "eps_c_prev")).dataset.fxRow = "carry-c";
  }
}

function stepLSTM(sec, st) {
  const { S, N, t1, k1, t, k, P } = st;
  const eh = () => N.epsS("h", t1, k1), ec = () => N.epsS("c", t1, k1), ch = () => N.chat(t1, k1);
  const g = (q) => N.gate(q, k1);
  const dsig = (q) => row(g(q), par(one(), mo("−"), g(q)));
  // the formulas, then (when kept) each with its numbers
  const chatFormula = () => {
    label(sec, fill(S.lstm_chat, { c: ch(), h: row(N.h(k1), eq(), g("o"), hadam(), mi("tanh"), par(N.c(k1))) }));
    line(sec, ch(), eq(), ec(), mo("+"), eh(), hadam(), g("o"), hadam(), par(one(), mo("−"), sup(mi("tanh"), mn(2)), par(N.c(k1))));
  };
  if (!st.inLoss || st.truncated || !P) {
    chatFormula();
    if (!st.inLoss) note(sec, "", fill(S.s2_none, { zero: row(N.d(t1, mo("·")), eq(), mn(0)) }));
    else if (st.truncated) note(sec, "", fill(S.trunc_step, { K: String(st.K), d: String(t - k) }));
    return;
  }
  gatedIncoming(sec, st);
  chatFormula();
  line(sec, ch(), eq(), st.pv("step", "eps_c"), mo("+"), st.pv("step", "eps_h"), hadam(), st.pv("step", "o"), hadam(),
    st.pv("step", "dtanh_c"), eq(), st.pv("step", "c_hat")).dataset.fxRow = "c_hat";
  label(sec, fill(S.lstm_parts, { a: row(N.a(k1), eq(), fenced(row(...["i", "f", "g", "o"].flatMap((q, i) => [i ? mo(";") : null, sup(mi("a"), mi(q))])))) }));
  const rows = [
    ["i", [ch(), hadam(), g("g"), hadam(), dsig("i")], ["c_hat", "g", "di"]],
    ["f", [ch(), hadam(), N.c(k1 - 1), hadam(), dsig("f")], ["c_hat", "c_prev", "df"]],
    ["g", [ch(), hadam(), g("i"), hadam(), par(one(), mo("−"), sup(g("g"), mn(2)))], ["c_hat", "i", "dg"]],
    ["o", [eh(), hadam(), mi("tanh"), par(N.c(k1)), hadam(), dsig("o")], ["eps_h", "tanh_c", "do"]],
  ];
  for (const [q, formula, names] of rows) {
    line(sec, N.dG(q, t1, k1), eq(), ...formula, eq(), ...names.flatMap((nm, i) => [i ? hadam() : null, st.pv("step", nm)]),
      eq(), st.pv("step", `delta_${q}`)).dataset.fxRow = `delta_${q}`;
  }
  label(sec, fill(S.gated_pass, { k: String(k1 - 1) }));
  line(sec, N.epsS("h", t1, k1 - 1), eq(), N.P("W_hh", true), N.d(t1, k1), eq(), matT(st.param("W_hh"), S, N.P("W_hh", true)),
    st.pv("step", "delta"), eq(), st.pv("step", "eps_h_prev")).dataset.fxRow = "pass-h";
  line(sec, N.epsS("c", t1, k1 - 1), eq(), ch(), hadam(), g("f"), eq(), st.pv("step", "c_hat"), hadam(), st.pv("step", "f"),
    eq(), st.pv("step", "eps_c_prev")).dataset.fxRow = "pass-c";
  note(sec, "", fill(S.lstm_path, { p: row(ch(), hadam(), g("f")), f: g("f"), W: N.P("W_hh") }));
}

function stepGRU(sec, st) {
  const { S, N, t1, k1, t, k, P } = st;
  const eh = () => N.epsS("h", t1, k1);
  const g = (q) => N.gate(q, k1);
  const dsig = (q) => row(g(q), par(one(), mo("−"), g(q)));
  const hn = () => row(sub(mi("W"), row(mi("h"), mi("n"))), N.h(k1 - 1), mo("+"), sub(mi("b"), row(mi("h"), mi("n"))));
  const parts = () => label(sec, fill(S.gru_parts, { a: row(N.a(k1), eq(), fenced(row(sup(mi("a"), mi("r")), mo(";"), sup(mi("a"), mi("u")), mo(";"), sup(mi("a"), mi("n"))))), u: g("u") }));
  if (!st.inLoss || st.truncated || !P) {
    parts();
    if (!st.inLoss) note(sec, "", fill(S.s2_none, { zero: row(N.d(t1, mo("·")), eq(), mn(0)) }));
    else if (st.truncated) note(sec, "", fill(S.trunc_step, { K: String(st.K), d: String(t - k) }));
    return;
  }
  // as the LSTM's: what came in from step k + 1 first, then the parts of δ_{t,k} it makes
  gatedIncoming(sec, st);
  parts();
  const rows = [
    ["n", [eh(), hadam(), par(one(), mo("−"), g("u")), hadam(), par(one(), mo("−"), sup(g("n"), mn(2)))], ["eps_h", "one_minus_u", "dn"]],
    ["u", [eh(), hadam(), par(N.h(k1 - 1), mo("−"), g("n")), hadam(), dsig("u")], ["eps_h", "h_prev_minus_n", "du"]],
    ["r", [N.dG("n", t1, k1), hadam(), par(hn()), hadam(), dsig("r")], ["delta_n", "hn", "dr"]],
  ];
  for (const [q, formula, names] of rows) {
    line(sec, N.dG(q, t1, k1), eq(), ...formula, eq(), ...names.flatMap((nm, i) => [i ? hadam() : null, st.pv("step", nm)]),
      eq(), st.pv("step", `delta_${q}`)).dataset.fxRow = `delta_${q}`;
  }
  note(sec, "", fill(S.gru_bhn, { inner: row(g("r"), hadam(), par(hn())), dr: row(N.dG("n", t1, k1), hadam(), g("r")), dn: N.dG("n", t1, k1) }));
  line(sec, N.dG("n", t1, k1), hadam(), g("r"), eq(), st.pv("step", "delta_n"), hadam(), st.pv("step", "r"), eq(), st.pv("step", "delta_n_r")).dataset.fxRow = "delta_n_r";
  label(sec, fill(S.gated_pass, { k: String(k1 - 1) }));
  const stack = fenced(row(N.dG("r", t1, k1), mo(";"), N.dG("u", t1, k1), mo(";"), N.dG("n", t1, k1), hadam(), g("r")));
  line(sec, N.epsS("h", t1, k1 - 1), eq(), eh(), hadam(), g("u"), mo("+"), N.P("W_hh", true), stack);
  line(sec, N.epsS("h", t1, k1 - 1), eq(), st.pv("step", "eps_h_direct"), mo("+"), st.pv("step", "eps_h_through"), eq(), st.pv("step", "eps_h_prev")).dataset.fxRow = "pass-h";
  note(sec, "", fill(S.gru_path, { p: row(eh(), hadam(), g("u")), u: g("u") }));
}

// ---- 3. closed form and the bound
function sectionClosed(sec, st) {
  const { S, N, t1, k1, t, k, P, resp, m } = st;
  if (st.kgt) return;
  const residual = resp.cell === "residual";
  const tau = () => mi("τ");
  const WhhT = () => N.P("W_hh", true), Whh = () => N.P("W_hh");
  const diagF = (z) => row(mi("diag"), par(fprimeOf(z)));
  const prodJ = () => bigop("∏", row(tau(), eq(), mn(k1 + 1)), mn(t1));
  const hPrev = N.h(row(tau(), mo("−"), mn(1)));
  if (st.gated) {
    // the whole state s = (h, c) (LSTM) or h (GRU); δ_{t,k} = L_kᵀ ε^s_{t,k}, L_k = ∂s_k/∂a_k
    const s = (i) => sub(mi("s"), idx(i));
    const side = () => (resp.cell === "lstm" ? row(mn(2), mi("m")) : mi("m"));  // (h, c): 2m
    line(sec, N.epsS("s", t1, k1), eq(), par(bigop("∏", row(tau(), eq(), mn(k1 + 1)), mn(t1)), subsup(mi("J"), tau(), tr())), N.epsS("s", t1, t1),
      comma(), sp("1em"), N.d(t1, k1), eq(), subsup(mi("L"), mn(k1), tr()), N.epsS("s", t1, k1));
    line(sec, N.J(tau()), eq(), diff(s(tau()), s(row(tau(), mo("−"), mn(1)))), mo("∈"), sup(upright("ℝ"), row(side(), mo("×"), side())), comma(), sp("1em"),
      sub(mi("L"), mn(k1)), eq(), diff(s(k1), N.a(k1)));
    if (k === t) note(sec, "", fill(S.s3_empty, { d: N.d(t1, t1) }));
    label(sec, fill(S.s3_gated, { J: N.J(tau()), L: norm(sub(mi("L"), mn(k1))), s: resp.cell === "lstm" ? row(s("τ"), eq(), par(N.h(tau()), comma(), N.c(tau()))) : row(s("τ"), eq(), N.h(tau())) }));
    line(sec, norm(N.d(t1, k1)), mo("≤"), norm(sub(mi("L"), mn(k1))), mo("·"), prodJ(), norm(N.J(tau())), mo("·"), norm(N.eps(t1, t1)));
    if (P) line(sec, norm(sub(mi("L"), mn(k1))), eq(), numNode(P.gain, S), comma(), sp("1em"), norm(N.eps(t1, t1)), eq(), numNode(P.eps_tt_norm, S));
  } else {
    if (!residual) {
      line(sec, N.d(t1, k1), eq(),
        par(bigop("∏", row(tau(), eq(), mn(k1)), row(mn(t1), mo("−"), mn(1))), diagF(N.z(tau())), WhhT()),
        N.d(t1, t1));
    } else {
      line(sec, N.d(t1, k1), eq(), diagF(N.z(k1)), par(prodJ(), subsup(mi("J"), tau(), tr())), N.eps(t1, t1));
    }
    if (k === t) note(sec, "", fill(S.s3_empty, { d: N.d(t1, t1) }));
    line(sec, N.J(tau()), eq(), diff(N.h(tau()), hPrev), eq(),
      ...(residual ? [upright("I"), mo("+")] : []), diagF(N.z(tau())), Whh());
    label(sec, fill(S.s3_bound, { J: N.J(mi("τ")) }));
    const maxf = row(M("munder", null, upright("max"), mi("i")), row(mo("|"), fprimeOf(sub(mi("z"), pair(k1, mi("i")))), mo("|")));
    line(sec, norm(N.d(t1, k1)), mo("≤"), maxf, mo("·"), prodJ(), norm(N.J(tau())), mo("·"), norm(N.eps(t1, t1)));
  }
  const nrm = st.truncated ? 0 : P ? P.delta_norm : st.at(st.D.dnorm, t, k);
  // a bound the response does not carry was not computed: not "overflow" (null in it is)
  const bnd = P ? numNode(P.bound, S) : mtext(S.not_computed, { class: "fx-aside" });
  line(sec, norm(N.d(t1, k1)), eq(), numNode(nrm, S), sp("0.6em"), mo("≤"), sp("0.6em"), bnd).dataset.fxRow = "bound";
  if (st.truncated) note(sec, "", fill(S.trunc_closed, { K: String(st.K), d: String(t - k) }));
  // the step Jacobians involved: τ = k+2 … t+1 (1-based), jacobian_norms of the API
  const js = P && Array.isArray(P.jacobian_norms) ? P.jacobian_norms : null;
  if (js && js.length === 1) {
    line(sec, norm(N.J(t1)), eq(), numNode(js[0], S));
    if (isNum(js[0])) note(sec, "", fill(S.s3_one, { g: numText(js[0], S) }));
  }
  if (js && js.length > 1) {
    const range = row(tau(), eq(), mn(k1 + 1), mo("…"), mn(t1));
    label(sec, fill(S.s3_jac, { J: norm(N.J(tau())), range }));
    const shown = js.length <= 7 ? js.map((x) => numNode(x, S))
      : [...js.slice(0, 3).map((x) => numNode(x, S)), mo("⋯"), ...js.slice(-2).map((x) => numNode(x, S))];
    line(sec, ...shown.flatMap((n, i) => (i ? [comma(), n] : [n])));
    line(sec, prodJ(), norm(N.J(tau())), eq(), numNode(P.jacobian_product, S));
    const g = P.jacobian_geomean;
    if (isNum(g)) note(sec, "", fill(g < 1 ? S.s3_vanish : S.s3_explode, { g: numText(g, S), n: String(js.length) }));
  }
  const dg = resp.diagnostics || {};
  const smax = () => row(sub(mi("σ"), upright("max")), par(Whh()));
  if (st.gated) {
    line(sec, smax(), eq(), numNode(dg.sigma_max, S));
    return;
  }
  line(sec, row(mi("ρ"), par(Whh())), eq(), numNode(dg.spectral_radius, S), comma(), sp(),
    smax(), eq(), numNode(dg.sigma_max, S));
  const gam = row(M("munder", null, upright("sup"), mi("z")), row(mo("|"), fprimeOf(mi("z")), mo("|")));
  if (!residual) {
    line(sec, norm(N.J(tau())), mo("≤"), mi("γ"), smax(), eq(), numNode(dg.gamma_sigma_max, S),
      sp("1em"), mi("γ"), eq(), gam, eq(), numNode(dg.gamma, S));
  } else {
    line(sec, mi("γ"), eq(), gam, eq(), numNode(dg.gamma, S));
  }
}

// ---- 4. sums over the unrolled copies
function sectionGrads(sec, st) {
  const { S, N, t1, k1, t, k, P, resp, m } = st;
  if (st.kgt) return;
  if (!P) return;
  const grads = resp.grads || {};
  const clip = resp.clip;
  const unclipped = clip ? resp.grads_unclipped : null;
  note(sec, "", st.K != null ? fill(S.s4_shared_trunc, { K: String(st.K) }) : fill(S.s4_shared));
  if (st.batched) note(sec, "", fill(S.s4_batch, { b: String(st.b + 1) }));
  if (clip) {
    if (clip.method === "norm") {
      note(sec, "fx-warn", fill(clip.clipped ? S.clip_norm : S.clip_norm_no,
        { a: numText(clip.norm_before, S), c: numText(clip.threshold, S), s: numText(clip.scale, S) }));
    } else {
      note(sec, "fx-warn", fill(S.clip_value, { c: numText(clip.threshold, S), a: numText(clip.norm_before, S), b: numText(clip.norm_after, S) }));
    }
  }
  const tI = () => mi("t"), kI = () => mi("k");
  const batchSum = () => (st.batched ? [bigop("∑", row(mi("b"), eq(), mn(1)), mi("B"))] : []);
  const sums = () => [...batchSum(), bigop("∑", row(tI(), eq(), mn(1)), mi("T")),
    st.K != null ? bigop("∑", row(tI(), mo("−"), mi("K"), mo("<"), kI(), mo("≤"), tI()))
      : bigop("∑", row(kI(), eq(), mn(1)), tI())];
  const dL = (c) => diff(mi("L"), c);
  const termState = !st.inLoss ? fill(S.zero_notloss, { t: String(t1) })
    : st.truncated ? fill(S.zero_trunc) : null;
  const terms = P.terms || {}, termNorms = P.term_norms || {};

  /** The total of one shown array (before or after clipping), its Frobenius norm from the API
   *  when it is too large to print. PyTorch's two biases each get the b_h gradient. */
  const totLine = (body, canon, rel, src, norms) => {
    const shown = N.parts(canon);
    const v = src[shown[0]];
    const lhs = () => (shown.length > 1 ? shown.flatMap((nm, i) => [i ? eq() : null, dL(N.named(nm))]) : [dL(N.P(canon))]);
    if (Array.isArray(v) && Array.isArray(v[0]) && !small(v)) {
      line(body, ...lhs(), mo("∈"), reals(v.length, v[0].length), comma(), sp("1em"),
        sub(norm(...lhs()), upright("F")), mo(rel), numNode(norms ? norms[shown[0]] : undefined, S));
    } else line(body, ...lhs(), mo(rel), Array.isArray(v) && Array.isArray(v[0]) ? matrix(v, S) : colVec(v, S, norms ? norms[shown[0]] : undefined));
  };
  const totals = (body, canonList) => {
    const useUn = unclipped && canonList.every((c) => unclipped[N.parts(c)[0]] != null);
    label(body, [useUn ? S.total_clip : S.total]);
    for (const c of canonList) totLine(body, c, "=", useUn ? unclipped : grads, useUn ? P.grad_unclipped_norms : P.grad_norms);
    if (useUn) {
      label(body, [S.after_clip]);
      for (const c of canonList) totLine(body, c, "←", grads, P.grad_norms);
    }
  };
  const item = (canon, summary, termRows, open) => {
    const body = fold(sec, "g-" + canon, [M("math", { displaystyle: "true" }, row(...summary))], open, "fx-g");
    label(body, fill(S.term, { t: String(t1), k: String(k1) }));
    if (termState) note(body, "", termState);
    else termRows(body);
    return body;
  };
  /** copy k's term of one parameter: vector × row vector = matrix when small, else its norm. */
  const outerTerm = (b, canon, lhsNodes, colName, rowVals) => {
    const name = N.parts(canon)[0];
    const term = terms[name];
    if (small(term)) {
      if (colName) line(b, ...lhsNodes, eq(), st.pv("step", colName), rowVec(rowVals, S));
      line(b, ...(colName ? [sp("1em")] : lhsNodes), eq(), matrix(term, S)).dataset.fxRow = `term-${canon}`;
    } else {
      line(b, norm(row(...lhsNodes)), eq(), numNode(termNorms[name], S)).dataset.fxRow = `term-${canon}`;
    }
  };
  const vecs = P.vectors || {};
  const gru = resp.cell === "gru";
  const hPrev = () => N.h(k1 - 1, true);
  const dh = (tt, kk) => (gru ? subsup(mi("δ"), pair(tt, kk), mi("h")) : N.d(tt, kk));

  // the recurrent weight: δ_{t,k} h_{k−1}ᵀ (the GRU: δ^h, its n rows times r_k)
  let body = item("W_hh", [dL(N.P("W_hh")), eq(), ...sums(), dh(tI(), kI()), N.h(row(kI(), mo("−"), mn(1)), true)], (b) => {
    outerTerm(b, "W_hh", [dh(t1, k1), hPrev()], gru ? null : "delta", vecs.h_prev);
    if (gru) note(b, "", fill(S.gru_dh, { dh: dh(t1, k1), dn: row(N.dG("n", t1, k1), hadam(), N.gate("r", k1)) }));
    if (k === 0 && !(st.ctx.req && Array.isArray(st.ctx.req.h0))) note(b, "", fill(S.h0_zero, { h0: N.h(0) }));
  }, true);
  totals(body, ["W_hh"]);

  // the input weight: δ_{t,k} x_kᵀ
  const Wx = st.gated ? "W_ih" : "W_xh";
  body = item(Wx, [dL(N.P(Wx)), eq(), ...sums(), N.d(tI(), kI()), N.x(kI(), true)], (b) => {
    outerTerm(b, Wx, [N.d(t1, k1), N.x(k1, true)], "delta", vecs.x_k);
  }, false);
  totals(body, [Wx]);

  // the biases: δ_{t,k} (gated cells: b_hh takes δ^h)
  const biases = st.gated ? [["b_ih", N.d], ["b_hh", dh]] : [["b_h", N.d]];
  for (const [bc, dsym] of biases) {
    body = item(bc, [dL(N.P(bc)), eq(), ...sums(), dsym(tI(), kI())], (b) => {
      const name = N.parts(bc)[0];
      line(b, dsym(t1, k1), eq(), colVec(terms[name], S, termNorms[name])).dataset.fxRow = `term-${bc}`;
    }, false);
    totals(body, [bc]);
    if (N.parts(bc).length > 1) note(body, "", fill(S.bias_both, { z: N.z("t") }));
  }

  // output layer: ∂L_t/∂W_hy = e_t h_tᵀ, ∂L_t/∂b_y = e_t (no k: the output layer is not recurrent)
  if (st.hasOut) {
    const sumT = () => [...batchSum(), bigop("∑", row(tI(), eq(), mn(1)), mi("T"))];
    body = fold(sec, "g-W_hy", [M("math", { displaystyle: "true" }, row(dL(N.P("W_hy")), eq(), ...sumT(), N.e(tI()), N.h(tI(), true),
      comma(), sp("1em"), dL(N.P("b_y")), eq(), ...sumT(), N.e(tI())))], false, "fx-g");
    label(body, fill(S.term_out, { t: String(t1) }));
    const Wy = N.parts("W_hy")[0], by = N.parts("b_y")[0];
    if (!st.inLoss) note(body, "", fill(S.zero_notloss, { t: String(t1) }));
    else if (small(terms[Wy])) {
      line(body, diff(N.L(t1), N.P("W_hy")), eq(), N.e(t1), N.h(t1, true), eq(), st.pv("vectors", "e_t"), rowVec(vecs.h_t, S));
      line(body, sp("1em"), eq(), matrix(terms[Wy], S)).dataset.fxRow = "term-W_hy";
    } else {
      line(body, norm(row(N.e(t1), N.h(t1, true))), eq(), numNode(termNorms[Wy], S)).dataset.fxRow = "term-W_hy";
    }
    if (st.inLoss) line(body, diff(N.L(t1), N.P("b_y")), eq(), N.e(t1), eq(), colVec(terms[by], S, termNorms[by]));
    totals(body, ["W_hy", "b_y"]);
  }
}

function activationHint(resp, N, t1) {
  const z = N.z(t1), f = (a) => fprimeOf(a);
  switch (resp.activation) {
    case "tanh":
      return resp.cell === "vanilla"
        ? row(f(z), eq(), mn(1), mo("−"), N.sq(N.h(t1)), sp("1em"), mtext("(f = tanh)"))
        : row(f(z), eq(), mn(1), mo("−"), sup(mi("tanh"), mn(2)), z);
    case "sigmoid":
      return row(f(z), eq(), mi("σ"), par(z), par(mn(1), mo("−"), mi("σ"), par(z)));
    case "relu":
      return row(f(z), eq(), sub(mn(1), row(z, mo(">"), mn(0))));
    case "identity":
      return row(f(z), eq(), mn(1), sp("1em"), mtext("(f = identity)"));
    default:
      return row(f(z));
  }
}

