"""An independent, deliberately plain reference for every cell: vanilla (and residual), and the
gated cells LSTM and GRU exactly as ``torch.nn.LSTM`` / ``torch.nn.GRU`` define them; the losses;
the backward pass written per loss (for every t, k = t … 1: ε^h_{t,k}, ε^c_{t,k}, δ_{t,k}); and
real-time recurrent learning (RTRL). Used only by the tests, to check the engine.

Loops over sequences b, steps t and k, float64, one matrix–vector product at a time
(min-char-rnn style): no vectorisation over b or t, nothing shared with app/engine.

Conventions (those of tests/reference.py):

- steps are 0-based: index t is step t + 1; h_0 (and c_0) is the state before index 0;
- B sequences, T steps, n inputs, m hidden units, p outputs; X is (B, T, n);
- the loss set S is a boolean ``mask`` over the T steps; the step weights are w_t = 1 on S
  (reduction "sum") or 1/(|S|·B) (reduction "mean"), 0 off S; every derivative below is that
  of the weighted w_t·L_t, and quantities are summed over the batch where they are shared;
- losses: "mse" L_t = ½‖o_t − y_t‖²; "softmax_ce" L_t = −Σ_i y_{t,i} log softmax(o_t)_i with
  target rows y_t (one-hot rows or distributions); "upstream" L_t = ⟨g_t, h_t⟩ (no output layer);
- parameters by name. Vanilla/residual (canonical): W_xh (m×n), W_hh (m×m), b_h (m),
  W_hy (p×m), b_y (p); a_t = W_xh x_t + W_hh h_{t−1} + b_h, h_t = f(a_t) (residual:
  h_{t−1} + f(a_t)). Gated (PyTorch): weight_ih_l0 (G·m×n), weight_hh_l0 (G·m×m),
  bias_ih_l0 (G·m), bias_hh_l0 (G·m), linear.weight (p×m), linear.bias (p); G = 4 (LSTM, gate
  order i, f, g, o), G = 3 (GRU, order r, z, n, with b_hn inside r ⊙ (W_hn h + b_hn));
- δ_{t,k} = ∂(w_t L_t)/∂a_k with a_k the stacked pre-activations in PyTorch's order; for the
  GRU a^n_k = W_in x_k + b_in + r_k ⊙ (W_hn h_{k−1} + b_hn), the argument of tanh.

Derivatives are the exact ones: σ'(z) = σ(z)σ(−z) and tanh'(z) = 1/cosh²(z) (not 1 − σ² or
1 − tanh², which round to 0 where the true value is 1e-17), σ in its two-branch stable form.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
CELL_PARAMS = {
    "vanilla": ("W_xh", "W_hh", "b_h"),
    "residual": ("W_xh", "W_hh", "b_h"),
    "lstm": ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
    "gru": ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
}
#: how many blocks of m rows the stacked pre-activation a has
N_GATES = {"vanilla": 1, "residual": 1, "lstm": 4, "gru": 3}
OUTPUT_PARAMS = {
    "vanilla": ("W_hy", "b_y"),
    "residual": ("W_hy", "b_y"),
    "lstm": ("linear.weight", "linear.bias"),
    "gru": ("linear.weight", "linear.bias"),
}


# ---------------------------------------------------------------- elementwise functions


def sigmoid(z):
    """σ(z) = 1/(1 + e^{−z}), two branches so that neither overflows nor loses precision."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def dsigmoid(z):
    """σ'(z) = σ(z)·σ(−z), accurate where 1 − σ(z) would round to 0."""
    return sigmoid(z) * sigmoid(-z)


def dtanh(z):
    """tanh'(z) = 1/cosh²(z) (0 where cosh overflows)."""
    with np.errstate(over="ignore"):
        return 1.0 / np.cosh(np.asarray(z, dtype=float)) ** 2


ACT = {
    "tanh": (np.tanh, dtanh),
    "sigmoid": (sigmoid, dsigmoid),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (np.asarray(z) > 0).astype(float)),
    "identity": (lambda z: np.asarray(z, dtype=float) * 1.0, lambda z: np.ones_like(np.asarray(z, dtype=float))),
}


# ---------------------------------------------------------------- the problem


@dataclass(frozen=True)
class Case:
    """One problem for the reference. Arrays as documented in the module docstring."""

    cell: str  # "vanilla" | "residual" | "lstm" | "gru"
    #: parameters under the names of CELL_PARAMS and OUTPUT_PARAMS (no output layer with upstream)
    params: dict
    #: (B, T, n) inputs x_t
    X: np.ndarray
    loss: str = "mse"  # "mse" | "softmax_ce" | "upstream"
    #: (B, T, p) targets y_t (mse, softmax_ce)
    Y: np.ndarray | None = None
    #: (B, T, m) upstream gradients g_t (upstream)
    G: np.ndarray | None = None
    #: (T,) True where step t carries a loss; None: every step
    mask: np.ndarray | None = None
    reduction: str = "sum"  # "sum" | "mean" (divides by |S|·B)
    #: (B, m) initial hidden states; None: zeros
    h0: np.ndarray | None = None
    #: (B, m) initial cell states (LSTM); None: zeros
    c0: np.ndarray | None = None
    activation: str = "tanh"  # f of the vanilla/residual cell (gated cells: fixed by the cell)

    @property
    def sizes(self):
        """(B, T, n, m)."""
        B, T, n = self.X.shape
        m = self.params[CELL_PARAMS[self.cell][1]].shape[1]
        return B, T, n, m

    @property
    def has_output(self):
        return self.loss != "upstream"

    @property
    def S(self):
        """(T,) bool: the loss steps."""
        T = self.X.shape[1]
        return np.ones(T, bool) if self.mask is None else np.asarray(self.mask, bool)

    @property
    def step_weights(self):
        """(T,) w_t: 0 off S; 1 (sum) or 1/(|S|·B) (mean) on S."""
        w = self.S.astype(float)
        if self.reduction == "mean" and w.sum() > 0:
            w /= w.sum() * self.X.shape[0]
        return w

    def initial(self):
        """(h0 (B, m), c0 (B, m)) with zeros where not given."""
        B, _, _, m = self.sizes
        h0 = np.zeros((B, m)) if self.h0 is None else np.asarray(self.h0, float)
        c0 = np.zeros((B, m)) if self.c0 is None else np.asarray(self.c0, float)
        return h0, c0


# ---------------------------------------------------------------- one step forward


def vanilla_step(P, x, h, activation="tanh", residual=False, da=None):
    """One vanilla (residual) step. P: W_xh, W_hh, b_h; x (n,); h (m,) = h_{k−1}; da: optional
    (m,) added to a. Returns the step's cache: a (m,), h (m,) = h_k, h_prev, x."""
    f, _ = ACT[activation]
    a = P["W_xh"] @ x + P["W_hh"] @ h + P["b_h"]
    if da is not None:
        a = a + da
    h_new = h + f(a) if residual else f(a)
    return {"x": x, "h_prev": h, "a": a, "h": h_new}


def lstm_step(P, x, h, c, da=None):
    """One torch.nn.LSTM step. P: weight_ih_l0 (4m×n), weight_hh_l0 (4m×m), bias_ih_l0, bias_hh_l0
    (4m); x (n,); h, c (m,) = h_{k−1}, c_{k−1}; da: optional (4m,) added to a. Returns the cache:
    a (4m,) = [a^i; a^f; a^g; a^o], the gates i, f, g, o (m,), c (m,) = c_k, h (m,) = h_k."""
    m = h.shape[0]
    a = P["weight_ih_l0"] @ x + P["bias_ih_l0"] + P["weight_hh_l0"] @ h + P["bias_hh_l0"]
    if da is not None:
        a = a + da
    i = sigmoid(a[0:m])
    f = sigmoid(a[m : 2 * m])
    g = np.tanh(a[2 * m : 3 * m])
    o = sigmoid(a[3 * m : 4 * m])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return {"x": x, "h_prev": h, "c_prev": c, "a": a, "i": i, "f": f, "g": g, "o": o, "c": c_new, "h": h_new}


def gru_step(P, x, h, da=None):
    """One torch.nn.GRU step. P: weight_ih_l0 (3m×n), weight_hh_l0 (3m×m), bias_ih_l0, bias_hh_l0
    (3m); x (n,); h (m,) = h_{k−1}; da: optional (3m,) added to a. Returns the cache:
    a (3m,) = [a^r; a^z; a^n] with a^n = W_in x + b_in + r ⊙ hn, hn (m,) = W_hn h_{k−1} + b_hn,
    the gates r, z, n (m,), h (m,) = h_k."""
    m = h.shape[0]
    Wi, Wh, bi, bh = P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"], P["bias_hh_l0"]
    d = np.zeros(3 * m) if da is None else da
    a_r = Wi[0:m] @ x + bi[0:m] + Wh[0:m] @ h + bh[0:m] + d[0:m]
    a_z = Wi[m : 2 * m] @ x + bi[m : 2 * m] + Wh[m : 2 * m] @ h + bh[m : 2 * m] + d[m : 2 * m]
    r = sigmoid(a_r)
    z = sigmoid(a_z)
    hn = Wh[2 * m : 3 * m] @ h + bh[2 * m : 3 * m]
    a_n = Wi[2 * m : 3 * m] @ x + bi[2 * m : 3 * m] + r * hn + d[2 * m : 3 * m]
    n = np.tanh(a_n)
    h_new = (1.0 - z) * n + z * h
    a = np.concatenate([a_r, a_z, a_n])
    return {"x": x, "h_prev": h, "a": a, "hn": hn, "r": r, "z": z, "n": n, "h": h_new}


def _step(case, P, x, h, c, da):
    if case.cell == "lstm":
        return lstm_step(P, x, h, c, da)
    if case.cell == "gru":
        return gru_step(P, x, h, da)
    return vanilla_step(P, x, h, case.activation, case.cell == "residual", da)


# ---------------------------------------------------------------- the forward pass


def forward(case, copies=None, da=None, dh=None, dc=None):
    """The whole forward pass, one sequence and one step at a time.

    copies: optional per-step parameter copies {name: (T, *shape)} (the unrolled graph);
    da (B, T, G·m), dh (B, T, m), dc (B, T, m): optional perturbations added to a_k, and to
    h_k, c_k after step k (for finite differences of ∂L_t/∂a_k, ∂L_t/∂h_k, ∂L_t/∂c_k).

    Returns a dict of arrays:
      h (B, T, m): h_k;  c (B, T, m): c_k (LSTM);  a (B, T, G·m): pre-activations;
      gates {name: (B, T, m)} (LSTM i, f, g, o; GRU r, z, n);  hn (B, T, m): W_hn h_{k−1} + b_hn (GRU);
      o (B, T, p): o_k = W_hy h_k + b_y (with an output layer);
      caches [b][k]: the step caches (for the backward pass).
    """
    B, T, n, m = case.sizes
    h0, c0 = case.initial()
    G = N_GATES[case.cell]
    out_w, out_b = OUTPUT_PARAMS[case.cell]
    res = {"h": np.zeros((B, T, m)), "a": np.zeros((B, T, G * m)), "caches": []}
    if case.cell == "lstm":
        res["c"] = np.zeros((B, T, m))
    if case.cell == "gru":
        res["hn"] = np.zeros((B, T, m))
    if case.cell in GATES:
        res["gates"] = {name: np.zeros((B, T, m)) for name in GATES[case.cell]}
    if case.has_output:
        p = case.params[out_w].shape[0]
        res["o"] = np.zeros((B, T, p))
    for b in range(B):
        h, c = h0[b].copy(), c0[b].copy()
        caches = []
        for t in range(T):
            P = {k: (copies[k][t] if copies is not None and k in copies else v) for k, v in case.params.items()}
            cache = _step(case, P, case.X[b, t], h, c, None if da is None else da[b, t])
            if dh is not None:
                cache["h"] = cache["h"] + dh[b, t]
            if dc is not None and case.cell == "lstm":
                cache["c"] = cache["c"] + dc[b, t]
            h = cache["h"]
            c = cache.get("c", c)
            caches.append(cache)
            res["h"][b, t] = h
            res["a"][b, t] = cache["a"]
            if case.cell == "lstm":
                res["c"][b, t] = c
            if case.cell == "gru":
                res["hn"][b, t] = cache["hn"]
            for name in GATES.get(case.cell, ()):
                res["gates"][name][b, t] = cache[name]
            if case.has_output:
                res["o"][b, t] = P[out_w] @ h + P[out_b]
        res["caches"].append(caches)
    return res


def lstm_forward(params, X, h0=None, c0=None):
    """torch.nn.LSTM (+ linear, when params has linear.weight and linear.bias) forward: see
    ``forward``; params by PyTorch's names, X (B, T, n), h0, c0 (B, m) or None (zeros)."""
    loss = "mse" if "linear.weight" in params else "upstream"  # only whether o_t is formed
    return forward(Case("lstm", params, np.asarray(X, float), loss=loss, h0=h0, c0=c0))


def gru_forward(params, X, h0=None):
    """torch.nn.GRU (+ linear, when params has linear.weight and linear.bias) forward: see
    ``forward``; params by PyTorch's names, X (B, T, n), h0 (B, m) or None (zeros)."""
    loss = "mse" if "linear.weight" in params else "upstream"  # only whether o_t is formed
    return forward(Case("gru", params, np.asarray(X, float), loss=loss, h0=h0))


# ---------------------------------------------------------------- the losses


def _loss_and_e(case, o_or_h, b, t):
    """(L_t unweighted, ∂L_t/∂o_t or ∂L_t/∂h_t) for sequence b at step t."""
    if case.loss == "upstream":
        g = case.G[b, t]
        return float(g @ o_or_h), g.copy()
    y = case.Y[b, t]
    if case.loss == "mse":
        e = o_or_h - y
        return 0.5 * float(e @ e), e
    # softmax_ce with target row y (any nonnegative row: ∂/∂o = softmax(o)·Σy − y)
    s = o_or_h - o_or_h.max()
    logp = s - np.log(np.exp(s).sum())
    return -float(np.sum(np.where(y != 0, y * logp, 0.0))), np.exp(logp) * y.sum() - y


def step_losses(case, **perturb):
    """(T,) weighted per-step losses w_t L_t, summed over the batch (perturb: see ``forward``;
    also ``copies``)."""
    fw = forward(case, **perturb)
    B, T, _, _ = case.sizes
    w = case.step_weights
    out = np.zeros(T)
    for b in range(B):
        for t in range(T):
            if w[t] == 0:
                continue
            L, _ = _loss_and_e(case, fw["o"][b, t] if case.has_output else fw["h"][b, t], b, t)
            out[t] += w[t] * L
    return out


def loss_t(case):
    """(B, T) unweighted L_t per sequence (0 off S)."""
    fw = forward(case)
    B, T, _, _ = case.sizes
    out = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            if case.S[t]:
                out[b, t] = _loss_and_e(case, fw["o"][b, t] if case.has_output else fw["h"][b, t], b, t)[0]
    return out


# ---------------------------------------------------------------- one step backward


def vanilla_back(case, P, cache, eps_h):
    """One step back for one loss: ε^h_{t,k} (m,) → δ_{t,k} (m,), ε^h_{t,k−1} (m,), and the
    step's terms of the parameter gradients {name: array}."""
    _, fprime = ACT[case.activation]
    delta = fprime(cache["a"]) * eps_h
    eps_prev = P["W_hh"].T @ delta
    if case.cell == "residual":
        eps_prev = eps_prev + eps_h
    terms = {"W_xh": np.outer(delta, cache["x"]), "W_hh": np.outer(delta, cache["h_prev"]), "b_h": delta}
    return delta, eps_prev, None, terms


def lstm_back(P, cache, eps_h, eps_c):
    """One LSTM step back for one loss: (ε^h_{t,k}, ε^c_{t,k}) (m,) → δ_{t,k} (4m,) =
    [δ^i; δ^f; δ^g; δ^o], ε^h_{t,k−1}, ε^c_{t,k−1} (m,), and the parameter-gradient terms."""
    a, i, f, g, o, c, c_prev = (cache[k] for k in ("a", "i", "f", "g", "o", "c", "c_prev"))
    m = i.shape[0]
    c_hat = eps_c + eps_h * o * dtanh(c)  # all of ∂L_t/∂c_k
    d_i = c_hat * g * dsigmoid(a[0:m])
    d_f = c_hat * c_prev * dsigmoid(a[m : 2 * m])
    d_g = c_hat * i * dtanh(a[2 * m : 3 * m])
    d_o = eps_h * np.tanh(c) * dsigmoid(a[3 * m : 4 * m])
    delta = np.concatenate([d_i, d_f, d_g, d_o])
    eps_h_prev = P["weight_hh_l0"].T @ delta
    eps_c_prev = c_hat * f
    terms = {
        "weight_ih_l0": np.outer(delta, cache["x"]),
        "weight_hh_l0": np.outer(delta, cache["h_prev"]),
        "bias_ih_l0": delta,
        "bias_hh_l0": delta,
    }
    return delta, eps_h_prev, eps_c_prev, terms


def gru_back(P, cache, eps_h):
    """One GRU step back for one loss: ε^h_{t,k} (m,) → δ_{t,k} (3m,) = [δ^r; δ^z; δ^n],
    ε^h_{t,k−1} (m,), and the parameter-gradient terms (the n rows of weight_hh_l0 and
    bias_hh_l0 take δ^n ⊙ r)."""
    a, hn, r, z, n, h_prev = (cache[k] for k in ("a", "hn", "r", "z", "n", "h_prev"))
    m = r.shape[0]
    Wh = P["weight_hh_l0"]
    d_n = eps_h * (1.0 - z) * dtanh(a[2 * m : 3 * m])
    d_z = eps_h * (h_prev - n) * dsigmoid(a[m : 2 * m])
    d_r = d_n * hn * dsigmoid(a[0:m])
    delta = np.concatenate([d_r, d_z, d_n])
    d_hn = d_n * r  # ∂L_t/∂(W_hn h_{k−1} + b_hn)
    eps_prev = eps_h * z + Wh[0:m].T @ d_r + Wh[m : 2 * m].T @ d_z + Wh[2 * m : 3 * m].T @ d_hn
    hh = np.concatenate([d_r, d_z, d_hn])  # what weight_hh_l0's rows multiply
    terms = {
        "weight_ih_l0": np.outer(delta, cache["x"]),
        "weight_hh_l0": np.outer(hh, h_prev),
        "bias_ih_l0": delta,
        "bias_hh_l0": hh,
    }
    return delta, eps_prev, None, terms


def _back(case, P, cache, eps_h, eps_c):
    if case.cell == "lstm":
        return lstm_back(P, cache, eps_h, eps_c)
    if case.cell == "gru":
        return gru_back(P, cache, eps_h)
    return vanilla_back(case, P, cache, eps_h)


# ---------------------------------------------------------------- BPTT, one loss at a time


def bptt(case, K=None, chunk=None, xi=None):
    """The backward pass written per loss: for every sequence b and loss step t, k = t … 0.

    K: truncation window; δ_{t,k} is kept for t − k < K (the loss at t reaches the K copies
    t−K+1 … t), so ε^h_{t,k} = ∂(w_t L_t)/∂h_k through the kept copies is nonzero for t − k ≤ K
    (h_k feeds copy k+1) and h_0 receives ε_{t,−1} for t < K. None: no truncation.
    chunk: chunked truncation with chunks of C steps (what ``h = h.detach()`` every C steps
    does in a PyTorch training loop): δ_{t,k} is kept when t and k lie in the same chunk
    (⌊t/C⌋ = ⌊k/C⌋, 0-based), ε^h_{t,k} for k ≥ C⌊t/C⌋ − 1 (the detached state included), and
    h_0 receives only the losses of the first chunk. Not together with K.
    xi: (B, T) or (T,) weights of the state's edges backwards: the error passed from step k to
    the state before it (ε^h, ε^c to k−1, or to h_0, c_0 for k = 0) is multiplied by xi[k], so the
    loss at t reaches copy k weighted by xi[k+1] ⋯ xi[t]. Randomized truncation (Tallec &
    Ollivier 2017; Dive into Deep Learning §9.7) draws xi[k] = 1/π with probability π, else 0;
    xi = 0 at the chunk starts is chunked truncation. The forward pass is unchanged.

    Returns a dict:
      eps_h (B, T, T, m): [b, t, k] = ∂(w_t L_t)/∂h_k, zero for k > t and beyond the window;
      eps_h0 (B, T, m): [b, t] = ∂(w_t L_t)/∂h_0;
      eps_c (B, T, T, m), eps_c0 (B, T, m): the same for the cell state c (LSTM);
      delta (B, T, T, G·m): [b, t, k] = δ_{t,k} = ∂(w_t L_t)/∂a_k, zero for k > t and t − k ≥ K;
      da (B, T, G·m) = Σ_t δ_{t,k};  dh (B, T, m) = Σ_t ε^h_{t,k};  dc (B, T, m) (LSTM);
      e (B, T, p or m): ∂(w_t L_t)/∂o_t (or ∂/∂h_t with upstream);
      grads: every parameter's ∂L/∂θ (summed over the batch), h0 (B, m), c0 (B, m) (LSTM),
        X (B, T, n) = ∂L/∂x_k;
      per_step: {name: (T, *shape)} ∂(w_t L_t)/∂θ (summed over the batch);
      loss: Σ_t w_t L_t.
    """
    B, T, n, m = case.sizes
    if K is not None and chunk is not None:
        raise ValueError("a window K or chunks, not both")

    def first_kept(t):  # the earliest copy k whose δ_{t,k} is kept
        if chunk is not None:
            return (t // chunk) * chunk
        return 0 if K is None else max(0, t - K + 1)

    G = N_GATES[case.cell]
    fw = forward(case)
    w = case.step_weights
    P = case.params
    out_w, out_b = OUTPUT_PARAMS[case.cell]
    names = list(CELL_PARAMS[case.cell]) + (list(OUTPUT_PARAMS[case.cell]) if case.has_output else [])
    per_step = {name: np.zeros((T,) + P[name].shape) for name in names}
    res = {
        "eps_h": np.zeros((B, T, T, m)),
        "eps_h0": np.zeros((B, T, m)),
        "delta": np.zeros((B, T, T, G * m)),
        "e": np.zeros((B, T) + ((P[out_w].shape[0],) if case.has_output else (m,))),
    }
    if case.cell == "lstm":
        res["eps_c"] = np.zeros((B, T, T, m))
        res["eps_c0"] = np.zeros((B, T, m))
    dX = np.zeros((B, T, n))
    loss = 0.0
    for b in range(B):
        caches = fw["caches"][b]
        for t in range(T):
            if w[t] == 0:
                continue
            h_t = fw["h"][b, t]
            if case.has_output:
                L, e = _loss_and_e(case, fw["o"][b, t], b, t)
                e = w[t] * e
                eps_h = P[out_w].T @ e
                per_step[out_w][t] += np.outer(e, h_t)
                per_step[out_b][t] += e
            else:
                L, e = _loss_and_e(case, h_t, b, t)
                e = w[t] * e
                eps_h = e.copy()
            loss += w[t] * L
            res["e"][b, t] = e
            eps_c = np.zeros(m)
            for k in range(t, first_kept(t) - 1, -1):  # k = t … the first kept copy
                res["eps_h"][b, t, k] = eps_h
                if case.cell == "lstm":
                    res["eps_c"][b, t, k] = eps_c
                delta, eps_h, eps_c, terms = _back(case, P, caches[k], eps_h, eps_c)
                if xi is not None:
                    weight = xi[b, k] if np.ndim(xi) == 2 else xi[k]
                    eps_h = eps_h * weight
                    if eps_c is not None:
                        eps_c = eps_c * weight
                res["delta"][b, t, k] = delta
                for name, v in terms.items():
                    per_step[name][t] += v
                dX[b, k] += P[CELL_PARAMS[case.cell][0]].T @ delta
                if k >= 1:  # what reaches h_{k−1}, c_{k−1} (the state the copy k takes)
                    res["eps_h"][b, t, k - 1] = eps_h
                    if case.cell == "lstm":
                        res["eps_c"][b, t, k - 1] = eps_c
                else:
                    res["eps_h0"][b, t] = eps_h
                    if case.cell == "lstm":
                        res["eps_c0"][b, t] = eps_c
    grads = {name: per_step[name].sum(axis=0) for name in names}
    grads["h0"] = res["eps_h0"].sum(axis=1)
    if case.cell == "lstm":
        grads["c0"] = res["eps_c0"].sum(axis=1)
        res["dc"] = res["eps_c"].sum(axis=1)
    grads["X"] = dX
    res["da"] = res["delta"].sum(axis=1)
    res["dh"] = res["eps_h"].sum(axis=1)
    res["grads"] = grads
    res["per_step"] = per_step
    res["loss"] = loss
    return res


# ---------------------------------------------------------------- RTRL


def _rtrl_parts(case, P, cache):
    """The step s_k = F(s_{k−1}, x_k; θ) as s_k = F(u, s_{k−1}) with u linear in θ and s:
    returns U_theta (|u| × |θ|) = ∂u/∂θ, U_s (|u| × |s|) = ∂u/∂s_{k−1}, D (|s| × |u|) = ∂F/∂u,
    direct (|s| × |s|) = ∂F/∂s_{k−1} at fixed u. Then J_k = D U_s + direct, ∂F/∂θ = D U_theta.

    vanilla: u = a (m); LSTM: u = a (4m), s = (h, c); GRU: u = [a^r; a^z; W_in x + b_in; W_hn h + b_hn]."""
    names = CELL_PARAMS[case.cell]
    x, h = cache["x"], cache["h_prev"]
    m = h.shape[0]
    n = x.shape[0]
    sizes = [P[k].size for k in names]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    W_x, W_h = P[names[0]], P[names[1]]
    rows = W_x.shape[0]
    nu = 4 * m if case.cell == "gru" else rows
    ns = 2 * m if case.cell == "lstm" else m
    U_theta = np.zeros((nu, offs[-1]))

    def hh_row(r):  # the row of u that row r of weight_hh_l0 / bias_hh_l0 feeds (the ih rows: row r)
        return r + m if case.cell == "gru" and r >= 2 * m else r

    for r in range(rows):
        for j in range(n):
            U_theta[r, offs[0] + r * n + j] = x[j]
        for j in range(m):
            U_theta[hh_row(r), offs[1] + r * m + j] = h[j]
        U_theta[r, offs[2] + r] = 1.0
        if case.cell in ("lstm", "gru"):
            U_theta[hh_row(r), offs[3] + r] = 1.0
    U_s = np.zeros((nu, ns))
    for r in range(rows):
        U_s[hh_row(r), 0:m] = W_h[r]
    D = np.zeros((ns, nu))
    direct = np.zeros((ns, ns))
    if case.cell in ("vanilla", "residual"):
        _, fprime = ACT[case.activation]
        D[:, :] = np.diag(fprime(cache["a"]))
        if case.cell == "residual":
            direct[:, :] = np.eye(m)
    elif case.cell == "lstm":
        a, i, f, g, o, c, c_prev = (cache[k] for k in ("a", "i", "f", "g", "o", "c", "c_prev"))
        dc_da = np.zeros((m, 4 * m))  # ∂c_k/∂a
        dc_da[:, 0:m] = np.diag(g * dsigmoid(a[0:m]))
        dc_da[:, m : 2 * m] = np.diag(c_prev * dsigmoid(a[m : 2 * m]))
        dc_da[:, 2 * m : 3 * m] = np.diag(i * dtanh(a[2 * m : 3 * m]))
        dh_dc = np.diag(o * dtanh(c))  # ∂h_k/∂c_k
        dh_da = dh_dc @ dc_da
        dh_da[:, 3 * m : 4 * m] = np.diag(np.tanh(c) * dsigmoid(a[3 * m : 4 * m]))
        D[0:m] = dh_da
        D[m : 2 * m] = dc_da
        direct[m : 2 * m, m : 2 * m] = np.diag(f)  # ∂c_k/∂c_{k−1}
        direct[0:m, m : 2 * m] = dh_dc @ np.diag(f)  # ∂h_k/∂c_{k−1}
    else:  # GRU: h_k = (1 − z) n + z h, n = tanh(xn + r hn), r = σ(a^r), z = σ(a^z)
        a, hn, r, z, nn = (cache[k] for k in ("a", "hn", "r", "z", "n"))
        dn = (1.0 - z) * dtanh(a[2 * m : 3 * m])  # ∂h_k/∂a^n, elementwise
        D[:, 0:m] = np.diag(dn * hn * dsigmoid(a[0:m]))
        D[:, m : 2 * m] = np.diag((h - nn) * dsigmoid(a[m : 2 * m]))
        D[:, 2 * m : 3 * m] = np.diag(dn)
        D[:, 3 * m : 4 * m] = np.diag(dn * r)
        direct[:, :] = np.diag(z)
    return U_theta, U_s, D, direct, offs


def rtrl_grads(case):
    """Real-time recurrent learning, written plainly, for every cell (no truncation).

    For each sequence, carry P_k = ∂s_k/∂θ (|s| × |θ|, s = h, or (h, c) for the LSTM) and
    Q_k = ∂s_k/∂s_0 forward: P_k = J_k P_{k−1} + ∂F/∂θ|_k, Q_k = J_k Q_{k−1}, and add
    (∂(w_t L_t)/∂s_t) P_t to the gradient at every loss step (the output layer's own terms
    e_t h_tᵀ, e_t directly). Returns {name: ∂L/∂θ} for every parameter, h0 (B, m), c0 (B, m) (LSTM).
    """
    B, T, n, m = case.sizes
    fw = forward(case)
    w = case.step_weights
    Pm = case.params
    names = CELL_PARAMS[case.cell]
    out_w, out_b = OUTPUT_PARAMS[case.cell]
    ns = 2 * m if case.cell == "lstm" else m
    n_theta = sum(Pm[k].size for k in names)
    g_theta = np.zeros(n_theta)
    grads = {}
    if case.has_output:
        grads[out_w] = np.zeros_like(Pm[out_w])
        grads[out_b] = np.zeros_like(Pm[out_b])
    g_s0 = np.zeros((B, ns))
    for b in range(B):
        sens = np.zeros((ns, n_theta))  # P_k
        Q = np.eye(ns)
        for t in range(T):
            cache = fw["caches"][b][t]
            U_theta, U_s, D, direct, offs = _rtrl_parts(case, Pm, cache)
            J = D @ U_s + direct
            sens = J @ sens + D @ U_theta
            Q = J @ Q
            if w[t] == 0:
                continue
            h_t = fw["h"][b, t]
            if case.has_output:
                _, e = _loss_and_e(case, fw["o"][b, t], b, t)
                e = w[t] * e
                eps_h = Pm[out_w].T @ e
                grads[out_w] += np.outer(e, h_t)
                grads[out_b] += e
            else:
                eps_h = w[t] * _loss_and_e(case, h_t, b, t)[1]
            gs = np.zeros(ns)
            gs[0:m] = eps_h
            g_theta += gs @ sens
            g_s0[b] += gs @ Q
    for idx, name in enumerate(names):
        grads[name] = g_theta[offs[idx] : offs[idx + 1]].reshape(Pm[name].shape)
    grads["h0"] = g_s0[:, 0:m]
    if case.cell == "lstm":
        grads["c0"] = g_s0[:, m : 2 * m]
    return grads


# ---------------------------------------------------------------- finite differences


def fd_grads(case, eps=1e-6):
    """Central differences of L = Σ_t w_t L_t for every parameter, h0, c0 (LSTM) and X."""
    out = {}
    L = lambda c: step_losses(c).sum()  # noqa: E731
    for name, v in case.params.items():
        g = np.zeros(v.size)
        for i in range(v.size):
            plus = {k: a.copy() for k, a in case.params.items()}
            minus = {k: a.copy() for k, a in case.params.items()}
            plus[name].reshape(-1)[i] += eps
            minus[name].reshape(-1)[i] -= eps
            g[i] = (L(replace(case, params=plus)) - L(replace(case, params=minus))) / (2 * eps)
        out[name] = g.reshape(v.shape)
    h0, c0 = case.initial()
    whats = {"h0": h0, "X": case.X} | ({"c0": c0} if case.cell == "lstm" else {})
    for what, base in whats.items():
        g = np.zeros(base.shape)
        for idx in np.ndindex(base.shape):
            a = base.copy()
            a[idx] += eps
            plus = L(replace(case, **{what: a}))
            a[idx] -= 2 * eps
            g[idx] = (plus - L(replace(case, **{what: a}))) / (2 * eps)
        out[what] = g
    return out


def fd_tables(case, eps=1e-6):
    """Central differences of the per-loss tables, untruncated: eps_h (B, T, T, m) and delta
    (B, T, T, G·m) (and eps_c for the LSTM), [b, t, k] = ∂(w_t L_t)/∂(h_k, a_k, c_k), zero for k > t."""
    B, T, _, m = case.sizes
    G = N_GATES[case.cell]
    out = {}
    kinds = {"eps_h": ("dh", m), "delta": ("da", G * m)} | ({"eps_c": ("dc", m)} if case.cell == "lstm" else {})
    for key, (arg, size) in kinds.items():
        tab = np.zeros((B, T, T, size))
        for b in range(B):
            for k in range(T):
                for i in range(size):
                    d = np.zeros((B, T, size))
                    d[b, k, i] = eps
                    per_t = (step_losses(case, **{arg: d}) - step_losses(case, **{arg: -d})) / (2 * eps)
                    tab[b, k:, k, i] = per_t[k:]
        out[key] = tab
    return out


def fd_truncated_grads(case, K=None, eps=1e-6, chunk=None):
    """Σ_t Σ_{k kept} ∂(w_t L_t)/∂θ_k by central differences: perturb θ only in the copies
    k ∈ (t−K, t] (window K) or k ∈ [C⌊t/C⌋, t] (chunks of C steps), the unrolled graph's copies."""
    T = case.X.shape[1]
    grads = {}
    for name, v in case.params.items():
        g = np.zeros(v.size)
        for i in range(v.size):
            for t in range(T):
                lo = (t // chunk) * chunk if chunk is not None else max(0, t - K + 1)
                plus = {k: np.repeat(a[None], T, axis=0) for k, a in case.params.items()}
                minus = {k: np.repeat(a[None], T, axis=0) for k, a in case.params.items()}
                plus[name].reshape(T, -1)[lo : t + 1, i] += eps
                minus[name].reshape(T, -1)[lo : t + 1, i] -= eps
                g[i] += (step_losses(case, copies=plus)[t] - step_losses(case, copies=minus)[t]) / (2 * eps)
        grads[name] = g.reshape(v.shape)
    return grads
