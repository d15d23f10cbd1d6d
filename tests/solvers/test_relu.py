"""THEORY §3 (deep ReLU nets on whitened data) against multistart L-BFGS of the network."""

from __future__ import annotations

import numpy as np
import pytest

from solvers import NotCovered, Problem, objective
from solvers.problem import forward
from solvers.relu import solve_relu_whitened
from tests.conftest import assert_close
from tests.lbfgs import lbfgs_multistart

pytestmark = pytest.mark.reference

BETA = 0.5
# Best-start tolerance. L = 2: 1e-8. L ≥ 3: L-BFGS stalls on ReLU kinks — the optimal
# first-layer pre-activations are exactly 0 off each path's support — measured best of
# 10–16 starts between 1e-16 and 2.6e-6 above the closed form (never below), so 1e-5.
DEEP_RTOL = 1e-5


def _whitened(rng: np.random.Generator, n: int = 8, d: int = 12) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((d, n)))[0].T


def _targets(rng: np.random.Generator, n: int, K: int) -> np.ndarray:
    if K == 1:
        return 1.5 * rng.standard_normal(n)
    labels = np.arange(n) % K
    rng.shuffle(labels)
    return np.eye(K)[labels] * rng.uniform(0.5, 2.0, (n, 1))


def _lbfgs_check(p: Problem, value: float, *, starts: int) -> float:
    if p.L == 2:
        res = lbfgs_multistart(p, width=4, starts=starts, seed=3, init_scale=1.0)
    else:  # wider nets and larger inits escape the narrow-net local minima of deep nets
        res = lbfgs_multistart(p, width=6, starts=starts, seed=3, init_scale=2.0)
    best = res[0][0]
    assert best >= value * (1 - 1e-9), f"L-BFGS {best!r} below the closed form {value!r}"
    assert_close(best, value, rtol=1e-8 if p.L == 2 else DEEP_RTOL)
    return best


@pytest.mark.parametrize("K", [1, 2, 3])
def test_two_layer_matches_lbfgs(rng: np.random.Generator, K: int) -> None:
    for _ in range(2):
        X = _whitened(rng)
        p = Problem(X, _targets(rng, 8, K), 2, BETA, "relu")
        _lbfgs_check(p, solve_relu_whitened(p).objective, starts=6)


@pytest.mark.parametrize("K", [1, 2])
def test_three_layer_matches_lbfgs(rng: np.random.Generator, K: int) -> None:
    X = _whitened(rng)
    p = Problem(X, _targets(rng, 8, K), 3, BETA, "relu")
    _lbfgs_check(p, solve_relu_whitened(p).objective, starts=10)


@pytest.mark.slow
@pytest.mark.parametrize("L", [3, 4])
@pytest.mark.parametrize("K", [1, 2])
def test_deep_matches_lbfgs_sweep(rng: np.random.Generator, L: int, K: int) -> None:
    for _ in range(2):
        X = _whitened(rng)
        p = Problem(X, _targets(rng, 8, K), L, BETA, "relu")
        _lbfgs_check(p, solve_relu_whitened(p).objective, starts=16)


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("K", [1, 2, 3])
def test_network_structure(rng: np.random.Generator, L: int, K: int) -> None:
    X = _whitened(rng)
    Y = _targets(rng, 8, K)
    Y2 = Y[:, None] if Y.ndim == 1 else Y
    for width in (None, 6):
        p = Problem(X, Y, L, 0.05, "relu", width=width)
        opt = solve_relu_whitened(p)
        assert_close(objective(p, opt.network), opt.objective, rtol=1e-10)
        Ws = opt.weights
        assert Ws[0].shape[1] == (width or (2 if K == 1 else K))
        # target vectors of the paths: y_+, y_− (K = 1) or the classes
        vs = [np.maximum(Y2[:, 0], 0), np.maximum(-Y2[:, 0], 0)] if K == 1 else list(Y2.T)
        active = np.flatnonzero(np.linalg.norm(Ws[0], axis=0) > 0)
        assert active.size == len(vs)
        dirs = opt.directions
        for j, v in zip(active, vs, strict=True):
            w, u = Ws[0][:, j], X.T @ v
            assert_close(w @ u / (np.linalg.norm(w) * np.linalg.norm(u)), 1.0, rtol=1e-10)
            assert_close(dirs[:, j] @ u / np.linalg.norm(u), 1.0, rtol=1e-10)
            assert np.all(X @ w >= -1e-12)  # the ReLU passes the path
            path = [np.linalg.norm(Ws[0][:, j])]
            path += [np.linalg.norm(W[j]) for W in Ws[1:]]
            np.testing.assert_allclose(path, path[0], rtol=1e-10)  # balanced
        assert all(np.all(W >= 0) for W in Ws[1:-1])
        if K == 1:
            out = Ws[-1][active, 0]
            assert out[0] > 0 > out[1]  # opposite signs: y_+ path then y_− path
        else:
            np.testing.assert_allclose(np.abs(Ws[-1][active]) > 0, np.eye(K, dtype=bool))


def test_dual_certificate_two_layer(rng: np.random.Generator) -> None:
    """L = 2, K = 1: Λ = y − f* satisfies max_{‖u‖≤1} |λᵀ(Xu)_+| = max(‖λ_+‖, ‖λ_−‖) ≤ β
    (exact for whitened X) and its dual value equals P*."""
    for _ in range(3):
        X = _whitened(rng)
        y = _targets(rng, 8, 1)
        p = Problem(X, y, 2, BETA, "relu")
        opt = solve_relu_whitened(p)
        lam = opt.dual[:, 0]
        np.testing.assert_allclose(lam, y - forward(p, opt.network)[:, 0], atol=1e-12)
        constraint = max(np.linalg.norm(np.maximum(lam, 0)), np.linalg.norm(np.maximum(-lam, 0)))
        assert constraint <= BETA * (1 + 1e-10)
        assert_close(float(lam @ y) - 0.5 * float(lam @ lam), opt.objective, rtol=1e-10)
    p3 = Problem(X, y, 3, BETA, "relu")
    assert solve_relu_whitened(p3).dual is None


def test_inactive_side_gives_one_path(rng: np.random.Generator) -> None:
    X = _whitened(rng)
    y = np.abs(rng.standard_normal(8)) + 0.5
    opt = solve_relu_whitened(Problem(X, y, 3, BETA, "relu"))
    assert opt.weights[0].shape[1] == 1
    assert opt.directions.shape == (12, 1)


def test_not_covered(rng: np.random.Generator) -> None:
    X = _whitened(rng)
    y = _targets(rng, 8, 1)
    Y3 = _targets(rng, 8, 3)
    overlap = Y3.copy()
    overlap[0] = 1.0
    cases = [
        (Problem(X + 1e-6, y, 2, BETA, "relu"), "not whitened"),
        (Problem(rng.standard_normal((8, 12)), y, 2, BETA, "relu"), "not whitened"),
        (Problem(X, y, 2, BETA, "linear"), "not relu"),
        (Problem(X, y, 2, BETA, "relu", bias=True), "biases"),
        (Problem(X, y, 2, BETA, "relu", batchnorm=True), "batch norm"),
        (Problem(X, Y3 - 0.5, 2, BETA, "relu"), "negative"),
        (Problem(X, overlap, 2, BETA, "relu"), "overlap"),
        (Problem(X, Y3, 2, 1e-3, "relu", width=2), "width 2"),
    ]
    for p, msg in cases:
        with pytest.raises(NotCovered, match=msg):
            solve_relu_whitened(p)
    with pytest.raises(ValueError, match="p must be"):
        solve_relu_whitened(X)  # type: ignore[arg-type]
