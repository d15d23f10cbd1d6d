"""A zoo of small problems whose optima are worked out by hand from THEORY.md's formulas.

Each expected value below is derived in its comment (no solver code is called): the scalar
path values are chosen at points where the stationarity root is a round number, e.g. for
``L = 3``, ``φ(s) = s − r + β s^{−1/3}`` has root ``s = 8`` at ``r = 9, β = 2``, so
``g_3(9) = ½(8 − 9)² + (2·3/2)·8^{2/3} = 0.5 + 12 = 12.5``; for ``L = 4``,
``φ(s) = s − r + β s^{−1/2}`` has root ``s = 4`` at ``r = 5, β = 2``, so
``g_4(5) = ½ + (2·4/2)·4^{1/2} = 8.5``. Huber: ``h_γ(r) = γr − γ²/2`` for ``r > γ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers import Problem

__all__ = ["ZOO", "ZooCase"]


@dataclass(frozen=True)
class ZooCase:
    name: str
    problem: Problem
    expected: float  # P*, derived by hand in the comment where the case is built
    family: str  # the family solve() must report
    rank: int | None = None  # number of active singular values / paths, where it is clear


def _zoo() -> list[ZooCase]:
    I2, I3, I4 = np.eye(2), np.eye(3), np.eye(4)
    c = np.array([2.0, -1.0])
    X_rank_one = np.outer(c, [1.0, 0.0])  # c aᵀ, a = e_1
    cases = [
        # §1, L = 2: σ(XᵀY) = 3, h_1(3) = 3 − ½ = 2.5
        ZooCase("identity_l2", Problem(I3, 3.0 * I3[:, 0], 2, 1.0), 2.5, "linear_whitened", 1),
        # §1, L = 2, K = 2: σ = (2, 1), β = 1.5: h(2) = 3 − 1.125 = 1.875, h(1) = ½ → 2.375, rank 1
        ZooCase(
            "identity_two_outputs",
            Problem(I4, np.array([[2.0, 0], [0, 1], [0, 0], [0, 0]]), 2, 1.5),
            2.375,
            "linear_whitened",
            1,
        ),
        # §1, X = [I_2 0] (2×4, XXᵀ = I), one-hot Y = diag(2, 3): h_1(3) + h_1(2) = 2.5 + 1.5 = 4
        ZooCase(
            "whitened_onehot",
            Problem(np.eye(2, 4), np.diag([2.0, 3.0]), 2, 1.0),
            4.0,
            "linear_whitened",
            2,
        ),
        # §1 partial isometry with n > d: X = e_1 (2×1), y = (3, 4): outside ½·4² = 8, h_1(3) = 2.5
        ZooCase(
            "partial_isometry",
            Problem(np.array([[1.0], [0.0]]), np.array([3.0, 4.0]), 2, 1.0),
            10.5,
            "linear_whitened",
            1,
        ),
        # §1, L = 3: g_3(9; β = 2) = 12.5 (module doc)
        ZooCase(
            "deep3_whitened", Problem(I2, np.array([9.0, 0.0]), 3, 2.0), 12.5, "linear_whitened", 1
        ),
        # §1, L = 4, K = 2: σ = (5, 0.5), β = 2: g_4(5) = 8.5; g_4(0.5) = ½·0.25 (s_min = 1 > r) → 8.625
        ZooCase(
            "deep4_whitened_two",
            Problem(I2, np.diag([5.0, 0.5]), 4, 2.0),
            8.625,
            "linear_whitened",
            1,
        ),
        # §2, L = 2, X = diag(2, 1), Y = diag(4, 1), β = 1. Sign flips W → DWD keep the objective,
        # so (convexity) W is diagonal: ½(2w−4)² + |w| has 4w − 8 + 1 = 0, w = 7/4, value
        # ½(½)² + 7/4 = 1.875; ½(w−1)² + |w| = h_1(1) = ½ at w = 0 → 2.375, rank 1
        ZooCase(
            "diagonal_l2",
            Problem(np.diag([2.0, 1.0]), np.diag([4.0, 1.0]), 2, 1.0),
            2.375,
            "linear_l2_general",
            1,
        ),
        # §2, L = 4, K = 1: X = diag(2, 1), y = (5, 0): z = 2w₁, w₂ = 0,
        # ½(z − 5)² + (βL/2)(z/2)^{1/2} = g_4(5; β/√2); β = 2√2 → β' = 2 → 8.5
        ZooCase(
            "diagonal_deep4",
            Problem(np.diag([2.0, 1.0]), np.array([5.0, 0.0]), 4, 2.0 * np.sqrt(2.0)),
            8.5,
            "linear_deep_k1",
            1,
        ),
        # §4 linear, L = 2: c = (2, −1), ‖c‖ = √5, y = (3, 1), r = (6 − 1)/√5 = √5:
        # ½‖y‖² − ½r² + h_{β/‖c‖}(r) = 5 − 2.5 + (1 − 1/10) = 3.4
        ZooCase(
            "rank_one_linear",
            Problem(X_rank_one, np.array([3.0, 1.0]), 2, 1.0),
            3.4,
            "linear_rank_one",
            1,
        ),
        # §3, L = 2: y = (3, −2, 0): h_1(‖y_+‖ = 3) + h_1(‖y_−‖ = 2) = 2.5 + 1.5 = 4
        ZooCase(
            "relu_identity",
            Problem(I3, np.array([3.0, -2.0, 0.0]), 2, 1.0, "relu"),
            4.0,
            "relu_whitened",
            2,
        ),
        # §3, L = 3, one-hot-like: ‖y_1‖ = 9 → g_3 = 12.5; ‖y_2‖ = ½ < s_min → ⅛ → 12.625
        ZooCase(
            "relu_deep3_onehot",
            Problem(I3, np.array([[9.0, 0], [0, 0.5], [0, 0]]), 3, 2.0, "relu"),
            12.625,
            "relu_whitened_onehot",
            1,
        ),
        # §3, L = 4: y = (5, 0, 0) only positive: g_4(5; β = 2) = 8.5 + g_4(0) = 0
        ZooCase(
            "relu_deep4",
            Problem(I3, np.array([5.0, 0.0, 0.0]), 4, 2.0, "relu"),
            8.5,
            "relu_whitened",
            1,
        ),
        # §4 ReLU, L = 2: c_+ = (2, 0), c_− = (0, 1), y = (3, 1), r_+ = 3, r_− = 1, β = 1:
        # ½‖y‖² − ½[(3 − ½)² + (1 − 1)_+²] = 5 − 3.125 = 1.875
        ZooCase(
            "rank_one_relu",
            Problem(X_rank_one, np.array([3.0, 1.0]), 2, 1.0, "relu"),
            1.875,
            "relu_rank_one",
            1,
        ),
        # §6 BN-linear: X = I_4 (rank(CX) = 3 = n − 1), β = 2, β/√n = 1, y = 3e_1: h_1(3) = 2.5
        ZooCase(
            "bn_linear",
            Problem(I4, 3.0 * I4[:, 0], 2, 2.0, batchnorm=True),
            2.5,
            "bn_linear",
            1,
        ),
        # §6 BN-ReLU one-hot-like: ‖y_k‖ = 3, 2 and β/√n = 1: 2.5 + 1.5 = 4
        ZooCase(
            "bn_relu_onehot",
            Problem(
                I4, np.array([[3.0, 0], [0, 2], [0, 0], [0, 0]]), 2, 2.0, "relu", batchnorm=True
            ),
            4.0,
            "bn_relu_onehot",
            2,
        ),
    ]
    return cases


ZOO: list[ZooCase] = _zoo()
