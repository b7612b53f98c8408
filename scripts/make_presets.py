"""Writes app/presets/*.json. Run from the repository root: python scripts/make_presets.py

Presets are complete request bodies plus an English and a Chinese title and description.
The generated numbers come from fixed seeds, so running this again gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "app" / "presets"


def r(a, nd=4):
    return np.round(np.asarray(a, dtype=float), nd).tolist()


def write(order: int, pid: str, title_en: str, title_zh: str, desc_en: str, desc_zh: str, request: dict) -> None:
    doc = {
        "id": pid,
        "order": order,
        "title": {"en": title_en, "zh": title_zh},
        "description": {"en": desc_en, "zh": desc_zh},
        "request": request,
    }
    (OUT / f"{pid}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    OUT.mkdir(exist_ok=True)

    write(
        1, "classroom", "Classroom default: 10 steps, 4 hidden units",
        "课堂默认：10 步，4 个隐藏单元",
        "A tanh RNN with a squared-error loss on every step, weights from seed 7. Click a loss "
        "node to see where its gradient travels.",
        "tanh 循环网络，每个时刻都有平方误差损失，权重由种子 7 生成。点击一个损失节点，查看它的梯度沿哪些路径反向传播。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "tanh", "loss": "mse",
            "inputs": r(np.sin(np.linspace(0, 3, 10))[:, None] * [1.0, 0.5] + [0.0, 0.2], 3),
            "targets": r(np.cos(np.linspace(0, 3, 10))[:, None], 3),
            "init": {"seed": 7, "hidden": 4, "outputs": 1, "scale": 0.8},
        },
    )

    write(
        2, "note-003", "Course note 003: the sequence 1, 2, 3 with h₀ = 0",
        "课程笔记 003：输入序列 1, 2, 3，h₀ = 0",
        "The worked example of the lecture notes: one input, one hidden unit, one output, three "
        "steps, squared error on every step. Small enough to check every number by hand.",
        "讲义中的例子：一个输入、一个隐藏单元、一个输出，三个时刻，每个时刻都有平方误差。每个数都可以手算验证。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "tanh", "loss": "mse",
            "inputs": [[1.0], [2.0], [3.0]], "targets": [[0.5], [0.8], [0.9]], "h0": [0.0],
            "params": {"W_xh": [[0.5]], "W_hh": [[0.8]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]},
        },
    )

    rng = np.random.default_rng(3)
    write(
        3, "many-to-one", "Many-to-one: one label for the whole sequence",
        "多对一：整个序列只有一个标签",
        "Sentiment-style classification: softmax cross-entropy on the last step only (class 2 of 3). "
        "Every δ comes from the last loss, so only the last row of the δ table is filled.",
        "类似情感分析：只在最后一个时刻计算 softmax 交叉熵（3 类中的第 2 类）。所有误差项都来自最后一个损失，"
        "所以 δ 表只有最后一行有值。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "tanh", "loss": "softmax_ce",
            "inputs": r(rng.normal(size=(8, 3))), "targets": [2], "loss_steps": "last",
            "init": {"seed": 11, "hidden": 5, "outputs": 3},
        },
    )

    rng = np.random.default_rng(5)
    write(
        4, "vanishing", "Vanishing gradients: small W_hh, 30 steps",
        "梯度消失：W_hh 很小，30 个时刻",
        "W_hh has spectral radius about 0.25 and largest singular value about 0.5, so every step back multiplies "
        "‖δ‖ by at most ‖Jₖ‖ < 1: the loss at the last step hardly reaches the first inputs.",
        "W_hh 的谱半径约为 0.25，最大奇异值约为 0.5，每往回传一步，‖δ‖ 至多乘以 ‖Jₖ‖ < 1：最后时刻的损失几乎传不到最初的输入。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "tanh", "loss": "mse",
            "inputs": r(rng.normal(size=(30, 2))), "targets": [[1.0]], "loss_steps": "last",
            "init": {"seed": 2, "hidden": 6, "outputs": 1, "scale": 0.25},
        },
    )

    rng = np.random.default_rng(6)
    write(
        5, "exploding", "Exploding gradients: large W_hh, 25 steps",
        "梯度爆炸：W_hh 很大，25 个时刻",
        "A linear (identity) RNN whose W_hh has spectral radius above 1: ‖δₜ,ₖ‖ grows geometrically "
        "with t − k. Clipping by global norm (c = 5) keeps the update bounded.",
        "线性（恒等激活）循环网络，W_hh 的谱半径大于 1：‖δₜ,ₖ‖ 随 t − k 指数增长。按全局范数裁剪（c = 5）使更新保持有界。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "identity", "loss": "mse",
            "inputs": r(rng.normal(size=(25, 2)) * 0.1), "targets": [[0.0]], "loss_steps": "last",
            "init": {"seed": 4, "hidden": 4, "outputs": 1, "scale": 1.0}, "clip": {"max_norm": 5.0},
        },
    )

    write(
        6, "overflow", "Overflow: the numbers leave float64",
        "溢出：数值超出 float64 范围",
        "W_hh = 40·I with a linear activation over 250 steps: hₜ grows like 40^t and overflows. "
        "The response stays valid JSON; overflowed numbers are null and listed in nonfinite.",
        "W_hh = 40·I，线性激活，250 个时刻：hₜ 像 40^t 一样增长并溢出。响应仍是合法 JSON，溢出的数记为 null 并列在 nonfinite 中。",
        {
            "notation": "canonical", "cell": "vanilla", "activation": "identity", "loss": "mse",
            "inputs": [[1.0]] * 250, "targets": [[0.0]], "loss_steps": "last", "detail": "norms",
            "params": {"W_xh": [[1.0], [1.0]], "W_hh": [[40.0, 0.0], [0.0, 40.0]], "b_h": [0.0, 0.0],
                       "W_hy": [[1.0, 1.0]], "b_y": [0.0]},
        },
    )

    rng = np.random.default_rng(8)
    write(
        7, "residual-6-3", "Exercise 6-3: the residual cell hₜ = hₜ₋₁ + f(zₜ)",
        "习题 6-3：残差单元 hₜ = hₜ₋₁ + f(zₜ)",
        "In NNDL notation (U is the hidden-to-hidden matrix): ∂hₜ/∂hₜ₋₁ = I + diag(f′(zₜ)) U. The identity path "
        "keeps the gradient from vanishing, but when diag(f′) U adds positive gain the product grows and can explode.",
        "采用邱锡鹏书中的记号（U 是隐藏层到隐藏层的矩阵）：∂hₜ/∂hₜ₋₁ = I + diag(f′(zₜ)) U。恒等路径使梯度不会消失，但当 diag(f′) U 带来正增益时，连乘会增长，可能爆炸。",
        {
            "notation": "nndl", "cell": "residual", "activation": "tanh", "loss": "mse",
            "inputs": r(rng.normal(size=(12, 2))), "targets": [[0.5]], "loss_steps": "last",
            "init": {"seed": 9, "hidden": 4, "outputs": 1, "scale": 0.6},
        },
    )

    # The course notebook (seed 002): rnn_backward with np.random.seed(1); its layouts
    # (n_x, batch, T) and (n_a, batch) are transposed into B×T×n and B×m here.
    np.random.seed(1)
    x = np.random.randn(3, 10, 4)
    a0 = np.random.randn(5, 10)
    Wax = np.random.randn(5, 3)
    Waa = np.random.randn(5, 5)
    np.random.randn(2, 5)  # Wya: drawn by the notebook, unused by rnn_backward
    ba = np.random.randn(5, 1)
    np.random.randn(2, 1)  # by
    da = np.random.randn(5, 10, 4)
    write(
        8, "course-notebook", "Course notebook: rnn_backward (3 inputs, 5 hidden, batch 10, 4 steps)",
        "课程 notebook：rnn_backward（3 个输入，5 个隐藏单元，批量 10，4 个时刻）",
        "The numbers of the notebook's rnn_backward test (np.random.seed(1)), with its names Wax, Waa, "
        "ba and the upstream gradients da. Expect dWax[3][1] = 11.2641, dWaa[1][2] = 2.3033, "
        "dba[4] = −0.7475, da0[2][3] = −0.3149 (the notebook's a0 is h0 here).",
        "notebook 中 rnn_backward 测试的数据（np.random.seed(1)），使用它的命名 Wax、Waa、ba 和上游梯度 da。"
        "应得到 dWax[3][1] = 11.2641，dWaa[1][2] = 2.3033，dba[4] = −0.7475，da0[2][3] = −0.3149（notebook 的 a0 即此处的 h0）。",
        {
            "notation": "coursera", "cell": "vanilla", "activation": "tanh", "loss": "upstream",
            "inputs": x.transpose(1, 2, 0).tolist(), "h0": a0.T.tolist(),
            "upstream": da.transpose(1, 2, 0).tolist(),
            "params": {"Wax": Wax.tolist(), "Waa": Waa.tolist(), "ba": ba[:, 0].tolist()},
        },
    )

    torch_path = OUT / "pytorch-rnn.json"
    try:
        import torch
    except ImportError:
        print("torch not installed: kept", torch_path.name, "as it is")
    else:
        # Seed 002's comparison script: nn.RNN(4, 5) in double precision, 3 steps, batch 3.
        np.random.seed(123)
        torch.random.manual_seed(123)
        rnn = torch.nn.RNN(4, 5).double()
        x3 = np.random.random((3, 3, 4))  # (T, batch, n)
        h3 = np.random.random((1, 3, 5))
        dh = np.random.random((3, 3, 5))
        w = {k: v.detach().numpy() for k, v in rnn.named_parameters()}
        write(
            9, "pytorch-rnn", "PyTorch nn.RNN(4, 5): two biases, h.backward(dh)",
            "PyTorch nn.RNN(4, 5)：两个偏置，h.backward(dh)",
            "The exercise's NumPy-vs-PyTorch check: torch.manual_seed(123), nn.RNN(4, 5).double(), "
            "3 steps, batch 3, upstream gradients dh. bias_ih_l0 and bias_hh_l0 each get the b_h gradient.",
            "作业中 NumPy 与 PyTorch 的对照：torch.manual_seed(123)，nn.RNN(4, 5).double()，3 个时刻，批量 3，"
            "上游梯度 dh。bias_ih_l0 和 bias_hh_l0 各自得到 b_h 的梯度。",
            {
                "notation": "pytorch", "cell": "vanilla", "activation": "tanh", "loss": "upstream",
                "inputs": x3.transpose(1, 0, 2).tolist(), "h0": h3[0].tolist(),
                "upstream": dh.transpose(1, 0, 2).tolist(),
                "params": {k: w[k].tolist() for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")},
            },
        )


if __name__ == "__main__":
    main()
