"""Pydantic models that document the API in OpenAPI (/docs). Requests are parsed by
``parse`` for exact error messages; these models describe the same contract, and a test
checks that both know the same fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..engine.cells import CELLS
from .parse import RESPONSE_FIELDS

Number = float
Vector = list[Number]
Matrix = list[list[Number]]
Tensor3 = list[list[list[Number]]]
NullableArray = list[Any]  # numbers, nested arrays, or null where a number overflowed / does not exist
ResponseField = Literal[RESPONSE_FIELDS]  # type: ignore[valid-type]  (the names parse accepts)


class Init(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, ge=0, description="Seed of numpy's PCG64 generator.")
    hidden: int = Field(..., ge=1, description="Hidden units m.")
    outputs: int | None = Field(None, ge=1, description="Outputs p (read off target rows when omitted).")
    scale: float | None = Field(None, gt=0, description="Entries drawn from U(−s, s); default s = 1/√m.")
    forget_bias: float | None = Field(None, ge=-1000, le=1000, description="LSTM only: the forget gate's bias b (b_ih rows m…2m−1 = b, b_hh's = 0), so f = σ(b) at the start; 1 to 2 lets long dependencies be learned.")


class ClipNorm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_norm: float = Field(..., gt=0, description="g ← g · min(1, c/‖g‖) over all parameter gradients.")


class ClipValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_value: float = Field(..., gt=0, description="Every gradient entry clipped to [−c, c].")


class Select(BaseModel):
    model_config = ConfigDict(extra="forbid")
    t: int = Field(..., ge=0, description="The loss step, 0-based (< T).")
    k: int = Field(..., ge=0, description="The copy, 0-based, at most t.")
    b: int = Field(0, ge=0, description="The sequence, 0-based (< B), with a batch.")


class BPTTRequest(BaseModel):
    """A small RNN, its input sequence and its loss. Shapes: T steps, n inputs, m hidden,
    p outputs, optional batch B in front."""

    model_config = ConfigDict(extra="forbid")
    notation: Literal["canonical", "goodfellow", "nndl", "coursera", "pytorch"] = Field(
        "canonical", description="Names of the parameters in params and in the response (see names)."
    )
    cell: Literal[tuple(CELLS)] = Field(  # type: ignore[valid-type]  (the registry's names)
        "vanilla", description="; ".join(f"{c.name}: {c.summary}" for c in CELLS.values()) + "."
    )
    activation: Literal["tanh", "sigmoid", "relu", "identity"] = "tanh"
    loss: Literal["softmax_ce", "mse", "upstream"] = Field(
        "mse", description="softmax_ce, mse (½‖o−y‖²), or upstream (no output layer; give ∂L/∂h_t)."
    )
    inputs: Matrix | Tensor3 = Field(..., description="T×n, or B×T×n for a batch.")
    targets: list[int] | list[list[int]] | Matrix | Tensor3 | None = Field(
        None,
        description="mse: T×p rows; softmax_ce: T class indices, or T×p one-hot / probability rows. "
        "Leading B axis for a batch. Rows for the loss steps only (|S| instead of T) are accepted too.",
    )
    upstream: Matrix | Tensor3 | None = Field(None, description="loss upstream: ∂L/∂h_t, T×m or B×T×m.")
    h0: Vector | Matrix | None = Field(None, description="Initial state, m (or B×m); zeros when omitted.")
    c0: Vector | Matrix | None = Field(None, description="cell lstm: initial cell state, m (or B×m); zeros when omitted.")
    method: Literal["bptt", "rtrl"] = Field(
        "bptt", description="bptt (the δ table) or rtrl (real-time recurrent learning: the same grads "
        "carried forward in time; no δ fields, no truncation, no grads.inputs).")
    params: dict[str, Vector | Matrix] | None = Field(
        None,
        description="Named per the notation. canonical: W_xh m×n, W_hh m×m, b_h m, W_hy p×m, b_y p "
        "(no output layer with loss upstream). pytorch: weight_ih_l0, weight_hh_l0, bias_ih_l0, "
        "bias_hh_l0, linear.weight, linear.bias.",
    )
    init: Init | None = Field(None, description="Seeded random parameters instead of params.")
    loss_steps: Literal["all", "last"] | list[bool] = Field(
        "all", description='Steps that carry a loss: "all", "last" (many-to-one), or T booleans.'
    )
    reduction: Literal["sum", "mean"] = Field("sum", description="mean divides L by |S| × B.")
    truncation: int | None = Field(None, ge=1, description="Truncated BPTT: keep δ_{t,k} with t − k < K.")
    clip: ClipNorm | ClipValue | None = None
    gradient_check: bool = Field(False, description="Compare with central finite differences.")
    detail: Literal["full", "norms"] | None = Field(
        None, description="full (default while the δ table fits the size budget) or norms."
    )
    fields: list[ResponseField] | None = Field(
        None,
        description="The response fields to compute and send (default: all). The fields that describe "
        "the request (version … shapes) and nonfinite always come; gradient_check comes whenever it is "
        "asked for. A client that needs only the δ table and the gradients sends "
        '["delta", "grads"]: the response is then a third of the size, and the per-step gradients and '
        "the diagnostics are not computed. delta_h, delta_h_norm, delta_c, delta_c_norm, methods, grads_per_copy, dh_next_pass, delta_row and delta_h_row (with "
        "select) come only when named here; backward_parts when named here or whenever select is given.",
    )
    select: Select | None = Field(
        None, description="One δ_{t,k} whose every number backward_parts gives (the backward step at k and "
        "k + 1, the bound, copy k's gradient terms): t the loss step, k ≤ t the copy, b the sequence, all "
        "0-based like the response's arrays (index t is step t + 1). Asks for backward_parts.",
    )


class ErrorBody(BaseModel):
    status: int
    code: str = Field(..., description="Stable snake_case name of the error (README, \"Errors\"), for clients that "
                      "translate it.")
    params: dict[str, Any] = Field(default_factory=dict, description="The numbers and names a translation "
                                   "needs, e.g. {\"setting\": \"BPTT_MAX_T\", \"limit\": 1024, \"got\": 2000}.")
    field: str | None = Field(None, description="Path into the request, e.g. params.W_hh or inputs[2][0].")
    expected: str | None = None
    got: str | None = None
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Forward(BaseModel):
    z: NullableArray
    h: NullableArray
    fprime: NullableArray | None = Field(..., description="f'(z_t); null for gated cells")
    c: NullableArray | None = Field(None, description="cell lstm: the cell states c_t")
    gates: dict[str, NullableArray] | None = Field(
        None, description="gated cells: each gate's activations per step (LSTM i, f, g, o; GRU r, u, n — u is "
        "PyTorch's update gate z)")
    o: NullableArray | None
    y_hat: NullableArray | None
    loss_t: NullableArray = Field(..., description="Per-step losses L_t (0 on steps without a loss).")
    loss: float | None


class Diagnostics(BaseModel):
    jacobian_norm: NullableArray = Field(..., description="‖J_k‖₂ of every step Jacobian.")
    jacobian_norm_median: float | list[float | None] | None = Field(
        None, description="The median of the finite ‖J_k‖₂ (per sequence with a batch); null when none is finite.")
    delta_bound: NullableArray | None = Field(
        ..., description="max|f'(z_k)| Π_{τ=k+1}^{t} ‖J_τ‖ ‖ε_{t,t}‖ ≥ ‖δ_{t,k}‖ (T×T, null above the diagonal), "
        "in either detail; gated cells: ‖∂s_k/∂a_k‖₂ in place of max|f'(z_k)|.")
    spectral_radius: float | None
    sigma_max: float | None
    gamma: float | None = Field(..., description="sup|f'|; null for gated cells")
    gamma_sigma_max: float | None = Field(None, description="γ·σ_max(W_hh) ≥ ‖J_k‖₂ (vanilla cell); null for gated cells")


class Vanish(BaseModel):
    """How ‖δ_{t,k}‖ changes going back from the last loss step t (over the terms truncation keeps):
    the geometric-mean factor per step f, the exp of the least-squares slope of log ‖δ_{t,k}‖
    against t − k, and F = f^d over the span d; a verdict, or the reason there is none."""

    t: int | None = Field(..., description="The last loss step (0-based); null when no step carries a loss.")
    factor_per_step: float | None = Field(..., description="f = exp(slope); null without a trend.")
    span: int | None = Field(..., description="d, the largest distance t − k read; null without a trend.")
    factor_over_span: float | None = Field(..., description="F = f^d; null without a trend (or overflowed).")
    verdict: Literal["vanish", "explode", "stable"] | None = Field(
        ..., description="vanish: f < 0.8 or F < 0.2; explode: f > 1.25 or F > 5; else stable; null with a reason.")
    reason: Literal["short", "overflow_forward", "overflow", "zero", "truncation", "few"] | None = Field(
        ..., description="Why there is no trend: short (t < 3, or no loss), overflow_forward (the forward pass "
        "overflowed), overflow (some ‖δ_{t,k}‖ of the row overflowed), zero (some δ_{t,k} are exactly 0), "
        "truncation (window K < 3), few (fewer than 3 nonzero norms); null with a verdict.")
    overflowed: int = Field(..., description="‖δ_{t,k}‖ of the row read that are not finite.")
    zero: int = Field(..., description="δ_{t,k} of the row read that are exactly 0.")
    truncation: int | None = Field(..., description="K when truncation drops terms of this row (K ≤ t), else null.")
    long: bool = Field(..., description="Vanishing over d ≥ 8 steps to F < 1e-3: the loss at the end barely "
                       "reaches the first steps.")


class Clip(BaseModel):
    method: Literal["norm", "value"]
    threshold: float
    norm_before: float | None
    norm_after: float | None
    clipped: bool
    scale: float | None = Field(None, description="By norm: the factor min(1, c/‖g‖) every gradient was multiplied by; null by value.")


class CheckArray(BaseModel):
    max_rel_error: float | None
    max_abs_error: float | None
    checked: int
    of: int


class GradientCheck(BaseModel):
    step: float
    tolerance: float
    ok: bool
    max_rel_error: float | None
    compared: str
    arrays: dict[str, CheckArray]


class MethodRoute(BaseModel):
    work: float = Field(..., description="Multiply-adds of the route's backward part, estimated from the sizes.")
    floats: int = Field(..., description="Floats the route holds: BPTT every step's forward trace and dh_next "
                        "(B·T·(S + G·m) + B·S), RTRL its sensitivities P_t, Q_t (B·S·(|θ| + S), whatever T is).")
    time: str = Field(..., description="Order of growth of its time, e.g. O(T·S²·|θ|).")
    memory: str = Field(..., description="Order of growth of its memory, e.g. O(S·|θ|).")


class Methods(BaseModel):
    """BPTT beside RTRL on this request (only when named in fields). Their measured times are in
    the Server-Timing header (bptt;dur=…, rtrl;dur=… in ms), so the same request gives the same body."""

    max_rel_diff: float | None = Field(..., description="max over arrays of max|g_bptt − g_rtrl| / max|g_bptt|; "
                                       "null when a gradient overflowed.")
    arrays: dict[str, float | None] = Field(..., description="The same per parameter (notation's names), h0 and c0.")
    state_size: int = Field(..., description="S: m, or 2m for the LSTM (h, c).")
    n_params: int = Field(..., description="|θ| of the hidden layer.")
    bptt: MethodRoute
    rtrl: MethodRoute
    compared: str


class DhNextPass(BaseModel):
    """Course note 003's efficient pass step by step (0-based steps k, batch axis first with a
    batch), computed apart from the δ table: dh_k = ε_{k,k} + dh_next_k, dz_k = f'(z_k) ⊙ dh_k."""

    dh: NullableArray = Field(..., description="T×m ∂L/∂h_k as the pass carries it.")
    dh_next: NullableArray = Field(..., description="T×m what copy k+1 passes back to h_k, (∂h_{k+1}/∂h_k)ᵀ dh_{k+1}: "
                                   "W_hhᵀ dz_{k+1} (residual cell: dh_{k+1} + W_hhᵀ dz_{k+1}); 0 at k = T.")
    dc: NullableArray | None = Field(None, description="cell lstm: T×m ∂L/∂c_k as the pass carries it.")
    dc_next: NullableArray | None = Field(None, description="cell lstm: T×m what copy k+1 passes back to c_k.")
    dz: NullableArray = Field(..., description="T×G·m dz_k = ∂L/∂z_k of the pass (not summed from the δ table).")
    dz_gap: NullableArray = Field(..., description="T: max_i |dz_k of the pass − dz_k of the δ table (the field dz)| "
                                  "per step: rounding when untruncated; with truncation the pass stays exact, "
                                  "so this is what truncation drops.")


class Shapes(BaseModel):
    T: int
    n: int
    m: int
    p: int | None
    batch: int | None


class BackwardParts(BaseModel):
    """Every number of one δ_{t,k} (request select), each vector with its norm (bptt-math.md)."""

    t: int
    k: int
    b: int
    in_loss: bool = Field(..., description="Step t carries a loss (else every number of the row is 0).")
    kept: bool = Field(..., description="δ_{t,k} is kept by truncation (t − k < K); else step is null.")
    step: dict[str, NullableArray] | None = Field(..., description="The cell's backward step at k for the loss "
        "row t, by name (GET /api/v1/cells: parts): eps_h (ε^h_{t,k}), its factors, delta (δ_{t,k}) and its gate "
        "blocks, eps_h_prev (ε^h_{t,k−1}), for the LSTM eps_c, c_hat (ĉ), eps_c_prev, …")
    step_norms: dict[str, float | None] | None
    step_from: dict[str, NullableArray] | None = Field(..., description="The same step at k + 1 (what made "
        "ε_{t,k} from δ_{t,k+1}); null for k = t.")
    step_from_norms: dict[str, float | None] | None
    vectors: dict[str, NullableArray | None] = Field(..., description="e_t (null with loss upstream), eps_tt, "
        "h_t, h_prev (h_{k−1}), x_k of the sequence b.")
    vector_norms: dict[str, float | None]
    terms: dict[str, NullableArray] = Field(..., description="Copy k's term of ∂L_t/∂θ for the cell's parameters "
        "(δ_{t,k} x_kᵀ, δ^h_{t,k} h_{k−1}ᵀ, δ_{t,k}, …; 0 when dropped) and step t's of the output layer (e_t h_tᵀ, e_t).")
    term_norms: dict[str, float | None] = Field(..., description="‖·‖ (Frobenius for matrices) of each term.")
    grad_norms: dict[str, float | None] = Field(..., description="‖∂L/∂θ‖_F of each summed gradient (after clipping).")
    grad_unclipped_norms: dict[str, float | None] | None = Field(..., description="The same before clipping.")
    delta_norm: float | None
    jacobian_norms: NullableArray = Field(..., description="‖J_τ‖₂ for τ = k + 1 … t (0-based steps).")
    jacobian_product: float | None = Field(..., description="Π_{τ=k+1}^{t} ‖J_τ‖₂ (1 for k = t).")
    jacobian_geomean: float | None = Field(..., description="Their geometric mean; null for k = t.")
    gain: float | None = Field(..., description="‖∂s_k/∂a_k‖₂ (vanilla: max|f'(z_k)|).")
    eps_tt_norm: float | None
    bound: float | None = Field(..., description="gain · jacobian_product · eps_tt_norm ≥ ‖δ_{t,k}‖ "
                                "(diagnostics.delta_bound[t][k]).")


def _absent(description: str | None = None) -> Any:
    """A response field the request's fields may leave out: not required, and no default."""
    return Field(None, description=description, json_schema_extra=lambda schema: schema.pop("default", None))


class BPTTResponse(BaseModel):
    """Every field from params to gradient_check is there unless the request's fields left it out."""

    version: str
    notation: str
    names: dict[str, str] = Field(..., description="canonical name → the notation's name")
    cell: str
    method: str
    activation: str
    loss: str
    reduction: str
    loss_steps: list[bool]
    truncation: int | None
    detail: Literal["full", "norms"]
    warnings: list[str]
    shapes: Shapes
    params: dict[str, NullableArray] = _absent()
    forward: Forward = _absent()
    e: NullableArray | None = _absent("e_t = ∂L/∂o_t (the step's share of L), T×p; null with loss upstream.")
    eps_tt: NullableArray = _absent("ε_{t,t} = ∂L/∂h_t through the step's own loss: W_hyᵀ e_t (upstream: g_t), T×m.")
    delta: NullableArray | None = _absent("delta[t][k] = δ_{t,k} = ∂L_t/∂z_k for k ≤ t (0-based; gated cells: z = "
                                          "the stacked gate pre-activations); null with detail norms or rtrl.")
    delta_norm: NullableArray | None = _absent("T×T ‖δ_{t,k}‖, null above the diagonal; null with method rtrl.")
    dz: NullableArray | None = _absent("dz_k = Σ_t δ_{t,k} = ∂L/∂z_k (gated cells: z = the stacked gate "
                                       "pre-activations); null with method rtrl")
    dh: NullableArray | None = _absent("∂L/∂h_k; null with method rtrl")
    dc: NullableArray | None = _absent("cell lstm: ∂L/∂c_k; null for other cells and with method rtrl")
    delta_h: NullableArray | None = _absent("Only when named in fields: delta_h[t][k] = ∂L_t/∂h_k for k ≤ t, the "
                                            "measure comparable across cells; null with detail norms or rtrl.")
    delta_h_norm: NullableArray | None = _absent("Only when named in fields: T×T ‖∂L_t/∂h_k‖, null above the diagonal.")
    delta_h_row: NullableArray | None = _absent(
        "Only when named in fields, with select: row t = select.t of delta_h for the sequence select.b, "
        "delta_h_row[k] = ∂L_t/∂h_k for k ≤ t ((t + 1)×m, the same numbers as delta_h[t], without the T×T×m "
        "tables; in either detail); null with rtrl.")
    delta_row: NullableArray | None = _absent(
        "Only when named in fields, with select: row t = select.t of delta for the sequence select.b, "
        "delta_row[k] = δ_{t,k} for k ≤ t ((t + 1)×G·m, 0 where truncation drops it; in either detail: the "
        "δ table is not sent); null with rtrl.")
    delta_c: NullableArray | None = _absent("Only when named in fields, cell lstm: delta_c[t][k] = ∂L_t/∂c_k.")
    delta_c_norm: NullableArray | None = _absent("Only when named in fields, cell lstm: T×T ‖∂L_t/∂c_k‖ (the error "
                                                 "on the cell-state rail), null above the diagonal.")
    methods: Methods | None = _absent("Only when named in fields: BPTT beside RTRL on this request, the largest "
                                      "relative difference of their exact gradients and what each route costs.")
    dh_next_pass: DhNextPass | None = _absent("Only when named in fields: the dh_next pass step by step beside the "
                                              "δ table's dz; null with method rtrl.")
    grads: dict[str, NullableArray | float | None] = _absent()
    grads_unclipped: dict[str, NullableArray | float | None] | None = _absent()
    grads_per_step: dict[str, NullableArray] | None = _absent("∂L_t/∂θ, leading T axis; null with detail norms.")
    grads_per_copy: dict[str, NullableArray] | None = _absent(
        "Only when named in fields: the term of unrolled copy k in each summed gradient (dz_k x_kᵀ, dz_k h_{k−1}ᵀ, "
        "dz_k, e_k h_kᵀ, e_k; the GRU's n rows of W_hh take dz^n_k ⊙ r_k), leading T axis, summed over the batch, "
        "before clipping: its sum over k is grads_unclipped (or grads). In either detail; null with rtrl.")
    backward_parts: BackwardParts | None = _absent(
        "With select (or named in fields with select): every number of the selected δ_{t,k}; null with rtrl.")
    clip: Clip | None = _absent()
    diagnostics: Diagnostics = _absent()
    vanish: Vanish | list[Vanish] | None = _absent(
        "The reading of ‖δ_{t,k}‖ along the last loss row (per sequence with a batch): factor per step, factor "
        "over the span and verdict, or why there is none; null with method rtrl.")
    gradient_check: GradientCheck | None = _absent()
    nonfinite: list[str] = Field(..., description="Paths of fields holding numbers that overflowed.")


class PresetSummary(BaseModel):
    id: str
    title: dict[str, str] = Field(..., description="en and zh")
    description: dict[str, str] = Field(..., description="en and zh")
