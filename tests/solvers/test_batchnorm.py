"""THEORY §6 (batch norm before the last hidden activation) against multistart L-BFGS, and the
neural-collapse metrics on hand-built features."""

from __future__ import annotations

import numpy as np
import pytest

from solvers import NotCovered, Problem, objective
from solvers.batchnorm import neural_collapse, solve_batchnorm
from solvers.problem import forward, last_hidden
from tests.conftest import assert_close
from tests.lbfgs import lbfgs_multistart

BETA = 0.4


def _targets(rng: np.random.Generator, n: int, case: str) -> tuple[np.ndarray, str]:
    if case == "linear":
        return rng.standard_normal((n, 2)), "linear"
    if case == "linear_uncentred":  # column means far from 0: the shift α must pay for them
        return rng.standard_normal((n, 2)) + np.array([3.0, -2.0]), "linear"
    if case == "relu_onehot":
        labels = np.arange(n) % 3
        rng.shuffle(labels)
        return np.eye(3)[labels] * rng.uniform(0.5, 2.0, (n, 1)), "relu"
    return rng.standard_normal(n) + 0.5, "relu"  # relu_signed, K = 1


CASES = ["linear", "linear_uncentred", "relu_onehot", "relu_signed"]


# Best-start tolerance 1e-8, except BN-ReLU with signed y: both paths sit on ReLU kinks (the
# optimal pre-activations are exactly 0 off y_±'s support) and L-BFGS stalls there — measured
# on one instance, best of 20 starts 5e-10 … 1.6e-6 above the closed form depending on width
# and init, never below — so 1e-5 with 12 starts at width 6, init 2.
SIGNED_RTOL = 1e-5


def _lbfgs_check(p: Problem, value: float, *, signed: bool) -> None:
    if signed:
        res = lbfgs_multistart(p, width=6, starts=12, seed=4, init_scale=2.0)
    else:
        res = lbfgs_multistart(p, width=6, starts=5, seed=4, init_scale=1.0)
    best = res[0][0]
    assert best >= value * (1 - 1e-9), f"L-BFGS {best!r} below the closed form {value!r}"
    assert_close(best, value, rtol=SIGNED_RTOL if signed else 1e-8)


def _bn_problem(rng: np.random.Generator, case: str, L: int) -> Problem:
    n, d = 6, 7
    X = rng.standard_normal((n, d))
    Y, act = _targets(rng, n, case)
    return Problem(X, Y, L, BETA, act, batchnorm=True)


@pytest.mark.reference
@pytest.mark.parametrize("L", [2, 3])
@pytest.mark.parametrize("case", CASES[:3])
def test_matches_lbfgs(rng: np.random.Generator, case: str, L: int) -> None:
    p = _bn_problem(rng, case, L)
    _lbfgs_check(p, solve_batchnorm(p).objective, signed=False)


@pytest.mark.reference
@pytest.mark.parametrize("L", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_signed_relu_matches_lbfgs(rng: np.random.Generator, L: int) -> None:
    """Beyond THEORY §6: BN-ReLU with K = 1 signed y, h(‖y_+‖) + h(‖y_−‖) at β/√n."""
    p = _bn_problem(rng, "relu_signed", L)
    _lbfgs_check(p, solve_batchnorm(p).objective, signed=True)


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("case", CASES)
def test_network_realises_value(rng: np.random.Generator, case: str, L: int) -> None:
    n = 9
    X = rng.standard_normal((n, 10))
    Y, act = _targets(rng, n, case)
    for width in (None, 8):
        p = Problem(X, Y, L, 0.1, act, batchnorm=True, width=width)
        opt = solve_batchnorm(p)
        assert_close(objective(p, opt.network), opt.objective, rtol=1e-10)
        np.testing.assert_allclose(opt.dual, p.Y - forward(p, opt.network), atol=1e-12)
        # γ, α, W_L balanced per neuron: γ_j² + α_j² = ‖W_L[j]‖²
        g2 = opt.network.gamma**2 + opt.network.alpha**2
        np.testing.assert_allclose(g2, np.sum(opt.weights[-1] ** 2, axis=1), rtol=1e-10, atol=1e-15)
        if act == "relu":  # the pre-activation of every used neuron is non-negative
            H = last_hidden(p, opt.network)
            used = np.linalg.norm(opt.weights[-1], axis=1) > 0
            assert np.all(H[:, used] >= 0)


def test_linear_dual_certificate(rng: np.random.Generator) -> None:
    """BN-linear = nuclear-norm problem with β/√n: Λ = Y − F* has ‖Λ‖₂ ≤ β/√n and dual value P*."""
    n = 7
    X = rng.standard_normal((n, 8))
    Y = rng.standard_normal((n, 3)) + 1.0
    p = Problem(X, Y, 2, 1.5, "linear", batchnorm=True)
    opt = solve_batchnorm(p)
    lam = opt.dual
    assert np.linalg.norm(lam, 2) <= 1.5 / np.sqrt(n) * (1 + 1e-10)
    assert_close(float(np.sum(lam * Y)) - 0.5 * float(np.sum(lam * lam)), opt.objective, rtol=1e-10)


def test_neural_collapse_at_the_optimum(rng: np.random.Generator) -> None:
    """Balanced one-hot labels: the optimal last hidden features are a collapsed simplex ETF."""
    K, n = 3, 9
    labels = np.arange(n) % K
    X = rng.standard_normal((n, 10))
    p = Problem(X, np.eye(K)[labels], 3, 0.3, "relu", batchnorm=True)
    opt = solve_batchnorm(p)
    nc = neural_collapse(last_hidden(p, opt.network), labels, W=opt.weights[-1])
    assert nc["nc1"] < 1e-20
    assert_close(nc["nc2_cosine_mean"], -1.0 / (K - 1), rtol=1e-10)
    assert nc["nc2_cosine_max_dev"] < 1e-10
    assert nc["nc2_norm_cv"] < 1e-10
    assert_close(nc["nc3_cosine_mean"], 1.0, rtol=1e-10)
    assert_close(nc["nc3_cosine_uncentred_mean"], 1.0, rtol=1e-10)


def test_neural_collapse_hand_built() -> None:
    # two classes in R², class means (2,0) and (0,1), within-class offsets ±(0, 0.5), ±(0.5, 0)
    H = np.array([[2.0, 0.5], [2.0, -0.5], [0.5, 1.0], [-0.5, 1.0]])
    labels = np.array([0, 0, 1, 1])
    W = np.array([[1.0, -1.0], [-0.5, 0.5]])  # columns ±(1, −0.5): parallel to M_0, M_1
    nc = neural_collapse(H, labels, W=W)
    # Σ_W = diag(0.125, 0.125); M_0 = (1, −0.5) = −M_1; Σ_B = M_0 M_0ᵀ, Σ_B^+ = M_0 M_0ᵀ/‖M_0‖⁴
    # trace(Σ_W Σ_B^+) = 0.125/‖M_0‖² = 0.125/1.25 = 0.1, nc1 = 0.1/2
    assert_close(nc["nc1"], 0.05, rtol=1e-12)
    assert_close(nc["nc2_cosine_mean"], -1.0, rtol=1e-12)
    assert nc["nc2_cosine_target"] == -1.0
    assert nc["nc2_norm_cv"] < 1e-15
    assert_close(nc["nc3_cosine_mean"], 1.0, rtol=1e-12)
    # uncentred: cos((1,−0.5),(2,0)) = 2/(√1.25·2), cos((−1,0.5),(0,1)) = 0.5/√1.25
    expected = 0.5 * (1.0 / np.sqrt(1.25) + 0.5 / np.sqrt(1.25))
    assert_close(nc["nc3_cosine_uncentred_mean"], expected, rtol=1e-12)
    # unequal class-mean norms and a non-ETF angle for K = 3
    H3 = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]) + np.array([0.3, -0.2])
    nc3 = neural_collapse(H3, np.array([0, 1, 2]))
    M = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]) - np.array([0.0, 1.0 / 3.0])
    Mn = M / np.linalg.norm(M, axis=1, keepdims=True)
    cos = [Mn[0] @ Mn[1], Mn[0] @ Mn[2], Mn[1] @ Mn[2]]
    assert_close(nc3["nc2_cosine_mean"], float(np.mean(cos)), rtol=1e-12)
    assert nc3["nc1"] == 0.0
    assert nc3["nc2_norm_cv"] > 0.1
    assert "nc3_cosine_mean" not in nc3


def test_neural_collapse_bad_input() -> None:
    with pytest.raises(ValueError, match="labels"):
        neural_collapse(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="2 classes"):
        neural_collapse(np.ones((3, 2)), np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="W must"):
        neural_collapse(np.ones((3, 2)), np.array([0, 1, 1]), W=np.ones((3, 2)))
    with pytest.raises(ValueError, match="H must"):
        neural_collapse(np.ones(3), np.array([0, 1, 1]))


def test_not_covered(rng: np.random.Generator) -> None:
    n = 6
    X = rng.standard_normal((n, 7))
    Y, _ = _targets(rng, n, "relu_onehot")
    cases = [
        (Problem(X, Y, 2, BETA, "relu"), "no batch norm"),
        (Problem(X, Y, 2, BETA, "relu", batchnorm=True, bias=True), "biases"),
        (Problem(X[:, :3], Y, 2, BETA, "relu", batchnorm=True), "rank"),
        (Problem(X[:, :1] @ np.ones((1, 7)), Y, 2, BETA, "relu", batchnorm=True), "rank"),
        (Problem(X, Y - 0.5, 2, BETA, "relu", batchnorm=True), "negative"),
        (Problem(X, np.ones((n, 2)), 2, BETA, "relu", batchnorm=True), "overlap"),
        (Problem(X, Y, 3, 1e-3, "relu", batchnorm=True, width=5), "width 5"),
    ]
    for p, msg in cases:
        with pytest.raises(NotCovered, match=msg):
            solve_batchnorm(p)
    with pytest.raises(ValueError, match="p must be"):
        solve_batchnorm(None)  # type: ignore[arg-type]
