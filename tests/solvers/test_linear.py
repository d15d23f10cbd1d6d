"""Deep linear closed forms (THEORY §1, §2) against independent references.

- convex cases (L = 2, group lasso): cvxpy (``solvers.reference``), rtol 1e-6 (solver accuracy);
- deep cases (L ≥ 3): ``tests.lbfgs.lbfgs_multistart``: the best start within 1e-8 relative of
  the closed form, and no start below it by more than 1e-10 relative;
- structure of the returned layers: balanced, aligned, rank = #{s*_k > 0}.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import NotCovered, Problem, Status, data, forward, objective, solve
from solvers.detect import is_partial_isometry, is_whitened
from solvers.linear import (
    group_lasso,
    solve_linear_deep_k1,
    solve_linear_l2_general,
    solve_linear_whitened,
)
from solvers.nuclear import NuclearNorm
from solvers.scalar import path_minimiser
from tests.conftest import assert_close
from tests.lbfgs import lbfgs_multistart
from tests.problems import ZOO

LINEAR_ZOO = [
    c for c in ZOO if c.family in ("linear_whitened", "linear_l2_general", "linear_deep_k1")
]


def _product(Ws: list[np.ndarray]) -> np.ndarray:
    P = Ws[0]
    for W in Ws[1:]:
        P = P @ W
    return P


def _check_structure(Ws: list[np.ndarray], s_star: np.ndarray, *, L: int) -> None:
    """Balanced, aligned layers with singular values (s*_k)^{1/L} and rank #{s*_k > 0}."""
    active = np.sort(s_star[s_star > 0])[::-1]
    rank = active.size
    for W in Ws:
        sv = np.linalg.svd(W, compute_uv=False)
        assert np.sum(sv > 1e-12 * max(sv[0], 1e-300)) == rank
        np.testing.assert_allclose(sv[:rank], active ** (1.0 / L), rtol=1e-12)
    # consecutive layers align: right singular vectors of W_l = left singular vectors of W_{l+1}
    for A, B in zip(Ws[:-1], Ws[1:], strict=True):
        _, _, Vt = np.linalg.svd(A)
        U, _, _ = np.linalg.svd(B)
        cos = np.abs(np.sum(Vt[:rank].T * U[:, :rank], axis=0))
        assert np.all(cos >= 1 - 1e-8), cos


@pytest.mark.parametrize("case", LINEAR_ZOO, ids=lambda c: c.name)
def test_zoo(case) -> None:  # noqa: ANN001
    opt = solve(case.problem)
    assert opt.family == case.family
    assert_close(opt.objective, case.expected, rtol=1e-12)
    assert_close(objective(case.problem, opt.weights), opt.objective, rtol=1e-12)
    assert opt.m_star == case.rank


@pytest.mark.reference
@pytest.mark.parametrize(
    ("n", "d", "K", "beta"), [(10, 25, 4, 0.5), (12, 12, 3, 1.5), (8, 20, 1, 0.3)]
)
def test_whitened_l2_vs_cvxpy(n: int, d: int, K: int, beta: float) -> None:
    from solvers.reference import nuclear_dual, nuclear_primal

    X, Y = data.make_dataset("whitened", "gaussian", n=n, d=d, outputs=K, seed=n + K)
    p = Problem(X, Y, 2, beta)
    opt = solve_linear_whitened(p)
    primal, _ = nuclear_primal(X, Y, beta)
    dual, _ = nuclear_dual(X, Y, beta)
    assert_close(opt.objective, primal, rtol=1e-6)
    assert_close(opt.objective, dual, rtol=1e-6)
    assert_close(objective(p, opt.weights), opt.objective, rtol=1e-12)
    # the returned dual is feasible and its value equals P* (zero gap)
    Lam = opt.dual
    assert np.linalg.norm(X.T @ Lam, 2) <= beta * (1 + 1e-12)
    assert_close(float(np.sum(Lam * Y)) - 0.5 * float(np.sum(Lam**2)), opt.objective, rtol=1e-12)


@pytest.mark.reference
def test_partial_isometry_vs_cvxpy(rng: np.random.Generator) -> None:
    from solvers.reference import nuclear_primal

    X = data.zca(rng.standard_normal((15, 6)))  # n > d: XXᵀ ≠ I, singular values all 1
    assert is_partial_isometry(X) and not is_whitened(X)
    Y = rng.standard_normal((15, 3))
    p = Problem(X, Y, 2, 0.7)
    opt = solve_linear_whitened(p)
    assert_close(opt.objective, nuclear_primal(X, Y, 0.7)[0], rtol=1e-6)
    assert_close(objective(p, opt.weights), opt.objective, rtol=1e-12)


@pytest.mark.reference
@pytest.mark.parametrize(
    ("n", "d", "K", "beta"), [(30, 8, 1, 0.2), (30, 8, 3, 0.5), (12, 20, 4, 0.3), (25, 10, 5, 2.0)]
)
def test_l2_general_vs_cvxpy(n: int, d: int, K: int, beta: float) -> None:
    from solvers.reference import nuclear_dual, nuclear_primal

    X, Y = data.make_dataset("gaussian", "gaussian", n=n, d=d, outputs=K, seed=3 * n + K)
    p = Problem(X, Y, 2, beta)
    opt = solve_linear_l2_general(p)
    assert opt.status is Status.CERTIFIED and opt.rel_gap <= 1e-10
    primal, W_ref = nuclear_primal(X, Y, beta)
    dual, _ = nuclear_dual(X, Y, beta)
    assert_close(opt.objective, primal, rtol=1e-6)
    assert_close(opt.objective, dual, rtol=1e-6)
    assert_close(objective(p, opt.weights), opt.objective, rtol=1e-10)
    # the certificate is genuine: Λ feasible, its dual value is the lower_bound ≤ P
    Lam = opt.dual
    assert np.linalg.norm(X.T @ Lam, 2) <= beta * (1 + 1e-12)
    lower = float(np.sum(Lam * Y)) - 0.5 * float(np.sum(Lam**2))
    assert_close(lower, opt.lower_bound, rtol=1e-12)
    assert lower <= opt.objective * (1 + 1e-14)  # exact K = 1 root: equal up to round-off
    # factors: W_1 W_2 is the nuclear-norm minimiser (cvxpy's W to its accuracy), balanced
    W = _product(opt.weights)
    assert np.linalg.norm(W - W_ref) <= 1e-4 * max(np.linalg.norm(W_ref), 1.0)
    s = np.linalg.svd(W, compute_uv=False)
    _check_structure(opt.weights, s[: opt.m_star], L=2)


def test_l2_general_iteration_cap_is_reported() -> None:
    X, Y = data.make_dataset("gaussian", "gaussian", n=40, d=15, outputs=4, seed=1)
    sol = NuclearNorm(X, Y).solve(0.3, max_iter=3)
    assert sol.method == "fista" and not sol.converged and sol.rel_gap > 1e-10
    assert sol.lower_bound <= sol.primal
    opt = solve_linear_l2_general(Problem(X, Y, 2, 0.3), max_iter=3)
    # an unconverged FISTA result is a bracket, never an exact P*
    assert opt.status is Status.BRACKET and not opt.is_exact and opt.rel_gap > 1e-10
    assert opt.lower_bound <= opt.objective
    assert_close(opt.rel_gap, (opt.objective - opt.lower_bound) / opt.objective, rtol=1e-12)


def test_l2_general_rank_deficient_x(rng: np.random.Generator) -> None:
    # X of rank 3 in R^{10×6}: the reduced (rank-r) problem must still certify
    X = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 6))
    Y = rng.standard_normal((10, 2))
    opt = solve_linear_l2_general(Problem(X, Y, 2, 0.4))
    assert opt.status is Status.CERTIFIED and opt.info["rank_X"] == 3
    assert np.linalg.norm(X.T @ opt.dual, 2) <= 0.4 * (1 + 1e-12)


@pytest.mark.reference
@pytest.mark.parametrize("gamma", [0.05, 0.8, 3.0, 50.0])
def test_group_lasso_vs_cvxpy(gamma: float) -> None:
    from solvers.reference import group_lasso as gl_cvxpy

    X, y = data.make_dataset("gaussian", "gaussian", n=20, d=7, outputs=1, seed=11)
    value, w = group_lasso(X, y, gamma)
    ref, w_ref = gl_cvxpy(X, y, gamma)
    assert_close(value, ref, rtol=1e-6)
    assert_close(
        value, 0.5 * np.sum((X @ w - y[:, 0]) ** 2) + gamma * np.linalg.norm(w), rtol=1e-12
    )
    assert np.linalg.norm(w - w_ref) <= 1e-4 * max(np.linalg.norm(w_ref), 1.0)


def _multistart_check(p: Problem, closed: float, *, width: int, starts: int = 4) -> list:
    # deep nets: small inits stall at the stationary point W = 0 (THEORY §8), so start larger
    scale = 0.7 if p.L <= 3 else 1.5
    runs = lbfgs_multistart(p, width=width, starts=starts, seed=0, init_scale=scale, maxiter=5000)
    best = runs[0][0]
    assert best <= closed * (1 + 1e-8), (best, closed)
    assert all(v >= closed * (1 - 1e-10) for v, _ in runs), ([v for v, _ in runs], closed)
    return runs


@pytest.mark.reference
@pytest.mark.parametrize(("L", "K", "beta"), [(3, 3, 0.2), (4, 2, 0.1)])
def test_whitened_deep_vs_lbfgs(L: int, K: int, beta: float) -> None:
    X, Y = data.make_dataset("whitened", "gaussian", n=6, d=8, outputs=K, seed=L)
    p = Problem(X, Y, L, beta)
    opt = solve_linear_whitened(p)
    assert_close(objective(p, opt.weights), opt.objective, rtol=1e-12)
    _multistart_check(p, opt.objective, width=K)
    s_star = np.asarray(path_minimiser(np.linalg.svd(Y, compute_uv=False), beta, L))
    assert opt.m_star == int(np.sum(s_star > 0))
    _check_structure(opt.weights, s_star, L=L)
    # W_1 is aligned with U of XᵀY = U diag(σ) Vᵀ
    U = np.linalg.svd(X.T @ Y)[0]
    U1 = np.linalg.svd(opt.weights[0])[0]
    r = opt.m_star
    assert np.all(np.abs(np.sum(U[:, :r] * U1[:, :r], axis=0)) >= 1 - 1e-8)


@pytest.mark.reference
@pytest.mark.parametrize(("L", "beta"), [(3, 0.3), (4, 0.1), (5, 0.2)])
def test_deep_k1_vs_lbfgs(L: int, beta: float) -> None:
    X, y = data.make_dataset("gaussian", "gaussian", n=12, d=5, outputs=1, seed=L)
    p = Problem(X, y, L, beta)
    opt = solve_linear_deep_k1(p)
    assert opt.family == "linear_deep_k1" and opt.m_star == 1  # a non-zero optimum
    assert_close(objective(p, opt.weights), opt.objective, rtol=1e-12)
    # the rescaled form min_t GL(β/t^{L−2}) + (β/2)(L−2)t² at the optimal t gives the same value
    assert_close(opt.info["rescaled_value"], opt.objective, rtol=1e-10)
    runs = _multistart_check(p, opt.objective, width=2)
    # structure: every layer rank one with ‖W‖₂ = ‖W‖_F, balanced, W_1 ∝ w* (also L-BFGS's w)
    for W in opt.weights:
        sv = np.linalg.svd(W, compute_uv=False)
        assert sv[1:].max(initial=0.0) <= 1e-14 * sv[0]
        assert_close(sv[0], np.linalg.norm(opt.info["w"]) ** (1.0 / L), rtol=1e-12)
    u1 = np.linalg.svd(opt.weights[0])[0][:, 0]
    w_ref = _product(list(runs[0][1].weights))[:, 0]
    assert abs(u1 @ w_ref) / np.linalg.norm(w_ref) >= 1 - 1e-6


def test_deep_k1_zero_optimum() -> None:
    # β large: ½‖y‖² beats every non-zero w; all layers zero, width 1
    X, y = data.make_dataset("gaussian", "gaussian", n=10, d=4, outputs=1, seed=0)
    p = Problem(X, y, 3, 1e3)
    opt = solve_linear_deep_k1(p)
    assert_close(opt.objective, 0.5 * float(np.sum(p.Y**2)), rtol=1e-15)
    assert all(np.all(W == 0) for W in opt.weights) and opt.m_star == 0


def test_width_padding_and_too_narrow() -> None:
    X, Y = data.make_dataset("whitened", "gaussian", n=6, d=9, outputs=3, seed=2)
    opt = solve_linear_whitened(Problem(X, Y, 3, 0.05, width=7))
    assert [W.shape for W in opt.weights] == [(9, 7), (7, 7), (7, 3)]
    assert_close(opt.objective, solve_linear_whitened(Problem(X, Y, 3, 0.05)).objective, rtol=1e-14)
    np.testing.assert_allclose(forward(Problem(X, Y, 3, 0.05, width=7), opt.weights).shape, (6, 3))
    with pytest.raises(NotCovered, match="width 1 is below the rank 3"):
        solve_linear_whitened(Problem(X, Y, 3, 0.05, width=1))


def test_not_covered() -> None:
    X, Y = data.make_dataset("gaussian", "gaussian", n=10, d=4, outputs=3, seed=0)
    with pytest.raises(NotCovered, match="Schatten-2/3"):
        solve(Problem(X, Y, 3, 0.1))
    with pytest.raises(NotCovered, match="not a partial isometry"):
        solve_linear_whitened(Problem(X, Y, 2, 0.1))
    with pytest.raises(NotCovered, match="K = 1"):
        solve_linear_deep_k1(Problem(X, Y, 3, 0.1))
    with pytest.raises(NotCovered, match="depth 2"):
        solve_linear_l2_general(Problem(X, Y, 3, 0.1))
    with pytest.raises(NotCovered, match="not linear"):
        solve_linear_whitened(Problem(X, Y, 2, 0.1, activation="relu"))
    with pytest.raises(ValueError, match="gamma"):
        group_lasso(X, Y[:, 0], -1.0)
