"""THEORY §4 (rank-one data X = c aᵀ, K = 1) against multistart L-BFGS of the network.

Also pins the correction to THEORY §4: for deep ReLU nets with ``r_+ r_− > 0`` the separable
formula is too high, and L-BFGS finds networks strictly below it.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Problem, objective
from solvers.problem import forward
from solvers.rank_one import solve_rank_one
from solvers.scalar import path_value
from tests.conftest import assert_close
from tests.lbfgs import lbfgs_multistart

pytestmark = pytest.mark.reference

BETA = 0.3


def _instance(rng: np.random.Generator, *, n: int = 8, d: int = 5, same_sign: bool | None = None):
    """X = c aᵀ and y; ``same_sign`` forces the sign relation of r_± = ⟨ĉ_±, y⟩ (None: random)."""
    while True:
        c = rng.standard_normal(n)
        a = rng.standard_normal(d)
        a /= np.linalg.norm(a)
        y = 2.0 * rng.standard_normal(n)
        cp, cm = np.maximum(c, 0), np.maximum(-c, 0)
        if np.linalg.norm(cp) == 0 or np.linalg.norm(cm) == 0:
            continue
        rp, rm = cp @ y, cm @ y
        if same_sign is None or (rp * rm > 0) == same_sign:
            return np.outer(c, a), y, c, a


def _lbfgs_best(p: Problem, *, seed: int = 1) -> float:
    """Best multistart value: deep nets need a wider net and larger inits to escape the
    narrow-net local minima, and more starts because L-BFGS can stall ~1e-7 above the optimum
    at a ReLU kink (the optimal pre-activations are exactly 0 off a channel's support)."""
    if p.L == 2:
        res = lbfgs_multistart(p, width=4, starts=6, seed=seed, init_scale=1.0)
    else:
        res = lbfgs_multistart(p, width=6, starts=10, seed=seed, init_scale=2.0)
    return res[0][0]


# Best-start tolerance: 1e-8 for L = 2; for L ≥ 3 L-BFGS stalls on ReLU kinks (measured: best
# of 10 starts 1e-16 … 1.3e-8 above the closed form, a stalled net had pre-activations of
# 1e-14 feeding tiny leak neurons, and restarts from it made no progress), so 1e-6 there.
DEEP_RTOL = 1e-6


def _check_against_lbfgs(p: Problem, value: float) -> None:
    rtol = 1e-8 if p.L == 2 or p.activation == "linear" else DEEP_RTOL
    best = _lbfgs_best(p)
    assert best >= value * (1 - 1e-9), f"L-BFGS {best!r} below the closed form {value!r}"
    assert_close(best, value, rtol=rtol)


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("same_sign", [True, False])
def test_relu_matches_lbfgs(rng: np.random.Generator, L: int, same_sign: bool) -> None:
    for _ in range(2):
        X, y, _, _ = _instance(rng, same_sign=same_sign)
        p = Problem(X, y, L, BETA, "relu")
        opt = solve_rank_one(p)
        assert opt.family == "relu_rank_one"
        _check_against_lbfgs(p, opt.objective)


@pytest.mark.parametrize("L", [2, 3, 4])
def test_linear_matches_lbfgs(rng: np.random.Generator, L: int) -> None:
    for _ in range(2):
        X, y, _, _ = _instance(rng)
        p = Problem(X, y, L, BETA, "linear")
        opt = solve_rank_one(p)
        assert opt.family == "linear_rank_one"
        _check_against_lbfgs(p, opt.objective)


@pytest.mark.parametrize("L", [2, 3])
def test_relu_one_sided_c(rng: np.random.Generator, L: int) -> None:
    """c ≥ 0 (or ≤ 0): a single channel, one path."""
    c = np.abs(rng.standard_normal(6))
    a = rng.standard_normal(4)
    a /= np.linalg.norm(a)
    y = rng.standard_normal(6) + 1.0
    for sgn in (1.0, -1.0):
        p = Problem(np.outer(sgn * c, a), y, L, BETA, "relu")
        opt = solve_rank_one(p)
        assert opt.weights[0].shape[1] == 1
        _check_against_lbfgs(p, opt.objective)


def _theory_separable(X: np.ndarray, y: np.ndarray, c: np.ndarray, L: int) -> float:
    value = 0.5 * float(y @ y)
    for sgn in (1.0, -1.0):
        cs = np.maximum(sgn * c, 0)
        cn = np.linalg.norm(cs)
        r = cs @ y / cn
        value += -0.5 * r * r + path_value(abs(r), BETA * cn ** (-2.0 / L), L)
    return float(value)


@pytest.mark.parametrize("L", [3, 4])
def test_theory_formula_too_high_for_same_sign_deep(rng: np.random.Generator, L: int) -> None:
    """THEORY §4's separable value is beaten by trained networks when r_+ r_− > 0 (L ≥ 3)."""
    X, y, c, _ = _instance(rng, same_sign=True)
    # large correlations so both channels are active
    y = y + 3.0 * np.sign(np.maximum(c, 0) @ y) * np.abs(c) / np.linalg.norm(c)
    p = Problem(X, y, L, BETA, "relu")
    theory = _theory_separable(X, y, c, L)
    best = _lbfgs_best(p, seed=2)
    assert best < theory * (1 - 1e-3), (best, theory)
    opt = solve_rank_one(p)
    assert opt.info["shared_path"]
    assert_close(best, opt.objective, rtol=DEEP_RTOL)


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("same_sign", [True, False])
def test_network_structure(
    rng: np.random.Generator, activation: str, L: int, same_sign: bool
) -> None:
    X, y, c, a = _instance(rng, same_sign=same_sign)
    boost = c if activation == "linear" else np.abs(c)  # make sure some path is active
    y = y + 4.0 * np.sign(y @ boost) * boost / np.linalg.norm(c)
    for width in (None, 5):
        p = Problem(X, y, L, BETA, activation, width=width)
        opt = solve_rank_one(p)
        assert_close(objective(p, opt.network), opt.objective, rtol=1e-10)
        Ws = opt.weights
        if width is not None:
            assert Ws[0].shape[1] == width
        norms = [np.linalg.norm(W) for W in Ws]
        assert norms[0] > 0
        np.testing.assert_allclose(norms, norms[0], rtol=1e-10)  # balanced
        active = np.flatnonzero(np.linalg.norm(Ws[0], axis=0) > 0)
        dirs = opt.directions
        assert dirs.shape == (p.d, active.size)
        for j in active:
            w = Ws[0][:, j]
            assert_close(abs(w @ a) / np.linalg.norm(w), 1.0, rtol=1e-10)  # ±a
        if activation == "relu":
            assert all(np.all(W >= 0) for W in Ws[1:-1])  # hidden weights pass the ReLU


def test_dual_certificate_two_layer(rng: np.random.Generator) -> None:
    """L = 2: Λ = y − f* is dual feasible and the dual value equals P* (independent check)."""
    for activation in ("relu", "linear"):
        X, y, c, _ = _instance(rng)
        p = Problem(X, y, 2, BETA, activation)
        opt = solve_rank_one(p)
        lam = opt.dual[:, 0]
        if activation == "linear":
            constraint = abs(lam @ c)  # ‖Xᵀλ‖ = |⟨λ, c⟩|
        else:  # max_{‖u‖≤1} |λᵀ(Xu)_+| = max_s |⟨λ, c_s⟩|
            constraint = max(abs(lam @ np.maximum(c, 0)), abs(lam @ np.maximum(-c, 0)))
        assert constraint <= BETA * (1 + 1e-10)
        dual_value = float(lam @ y) - 0.5 * float(lam @ lam)
        assert_close(dual_value, opt.objective, rtol=1e-10)
        np.testing.assert_allclose(lam, y - forward(p, opt.network)[:, 0], atol=1e-12)


def test_not_covered(rng: np.random.Generator) -> None:
    from solvers import NotCovered

    X, y, _, _ = _instance(rng)
    X2 = X + 1e-3 * rng.standard_normal(X.shape)
    cases = [
        (Problem(X2, y, 2, BETA, "relu"), "not rank one"),
        (Problem(np.zeros_like(X), y, 2, BETA, "relu"), "zero"),
        (Problem(X, np.stack([y, y], 1), 2, BETA, "relu"), "K = 1"),
        (Problem(X, y, 2, BETA, "relu", bias=True), "biases"),
        (Problem(X, y, 2, BETA, "relu", batchnorm=True), "batch norm"),
    ]
    for p, msg in cases:
        with pytest.raises(NotCovered, match=msg):
            solve_rank_one(p)
    X, y, c, _ = _instance(rng, same_sign=False)
    y = y + 5.0 * (np.maximum(c, 0) - np.maximum(-c, 0)) * np.sign(y @ np.maximum(c, 0))
    with pytest.raises(NotCovered, match="width"):
        solve_rank_one(Problem(X, y, 3, 1e-3, "relu", width=1))
    with pytest.raises(ValueError, match="p must be"):
        solve_rank_one("not a problem")  # type: ignore[arg-type]
