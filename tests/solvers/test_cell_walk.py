"""The cell walk (:func:`solvers.vector_relu.cell_walk`): the cheap pricing of the raw-data
K > 1 rounds, and the solves that use it.

References: the exact ``c_K(Λ)`` of §10's face enumeration with the sphere branch and bound
(:func:`vector_dual_norm` with :func:`enumeration_oracle`, rtol 1e-10; itself checked against
brute force in test_vector_relu.py) and the enumeration-certified P*. Tolerances: a walk's value
equals ``‖Λᵀ(Xu)_+‖`` at its direction to 1e-12 relative (it is attained, not estimated) and is
never above the exact ``c_K`` by more than 1e-9 relative; "the walk finds the maximum" means
within 1e-6 relative, on at least 9 of 10 random instances (measured: 10 of 10).
"""

from __future__ import annotations

import numpy as np
import pytest

import solvers.vector_relu as vr
from solvers import Problem
from solvers.problem import Status
from solvers.vector_relu import (
    cell_walk,
    enumeration_oracle,
    mip_oracle,
    solve_vector_relu,
    vector_dual_norm,
)


def _instance(n: int, d: int, K: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) / np.sqrt(d), rng.standard_normal((n, K))


def _attained(X: np.ndarray, Lam: np.ndarray, U: np.ndarray) -> np.ndarray:
    return np.linalg.norm(Lam.T @ np.maximum(X @ U.T, 0.0), axis=0)


def test_walk_values_are_attained_and_never_above_the_exact_norm() -> None:
    hits = 0
    for seed in range(10):
        X, Lam = _instance(9, 4, 3, seed)
        vals, U = cell_walk(X, Lam, starts=60, seed=seed)
        assert np.allclose(np.linalg.norm(U, axis=1), 1.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(vals, _attained(X, Lam, U), rtol=1e-12, atol=0)
        assert np.all(np.diff(vals) <= 0)  # best first
        exact = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10)
        assert vals[0] <= exact.upper * (1.0 + 1e-9)
        hits += vals[0] >= exact.upper * (1.0 - 1e-6)
    assert hits >= 9


def test_walk_that_leaves_its_cell_fails_the_attained_check(monkeypatch) -> None:
    """Without the cone projection the step maximises ``‖ΛᵀDXz‖`` with the pattern D held while
    z leaves D's cell: the values reported are no longer those of ``(Xu)_+`` — the check above
    catches it."""
    monkeypatch.setattr(vr, "_cone_projection", lambda A, g: g)
    X, Lam = _instance(9, 4, 3, 0)
    vals, U = cell_walk(X, Lam, starts=60, seed=0)
    assert not np.allclose(vals, _attained(X, Lam, U), rtol=1e-12, atol=0)


def test_walk_is_deterministic_and_uses_its_warm_starts() -> None:
    X, Lam = _instance(12, 5, 2, 3)
    a = cell_walk(X, Lam, starts=20, seed=4)
    b = cell_walk(X, Lam, starts=20, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    exact = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10)
    # no random start: the exact maximiser as the only warm start is found again
    vals, _ = cell_walk(X, Lam, exact.U[:1], starts=0, seed=0)
    assert vals[0] >= exact.lower * (1.0 - 1e-12)


@pytest.mark.parametrize(("n", "d", "K", "beta", "seed"), [(8, 12, 2, 0.1, 7), (7, 10, 3, 0.2, 8)])
def test_walk_rounds_reach_p_star_and_the_bracket_holds_it(
    monkeypatch, n: int, d: int, K: int, beta: float, seed: int
) -> None:
    """The raw-data MIP path (row space, walk rounds, MIP rounds, outer polytope) forced on an
    instance the enumeration certifies: the walk rounds alone reach P* within 1e-7 relative,
    and the solve's bracket contains P*."""
    rng = np.random.default_rng(seed)
    p = Problem(
        rng.standard_normal((n, d)) / np.sqrt(d), rng.standard_normal((n, K)), 2, beta, "relu"
    )
    ref = solve_vector_relu(p, oracle=enumeration_oracle(p.X), exact=True)
    assert ref.status is Status.CERTIFIED
    V = vr.row_space_basis(p.X)
    q = p if V is None else Problem(p.X @ V, p.Y, 2, beta, "relu")
    first = vector_dual_norm(q.X, q.Y, enumeration_oracle(q.X), rtol=1e-3)
    net, upper, W, rounds = vr._walk_rounds(q, vr._merge(first.U[:8]), vr._polish_raw)
    assert rounds >= 1 and W.shape[0] >= 1
    assert upper <= ref.objective * (1.0 + 1e-7)
    assert upper >= ref.lower_bound * (1.0 - 1e-12)
    monkeypatch.setattr(vr, "scalar_oracle_for", lambda X, K=1, **_: (mip_oracle(X), True))
    got = solve_vector_relu(p)
    assert got.info["walk_rounds"] >= 1
    assert got.lower_bound <= ref.objective * (1.0 + 1e-12) <= got.objective * (1.0 + 1e-6)
