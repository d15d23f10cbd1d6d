"""``c_K`` on raw data from an outer polytope of conv F (:mod:`solvers.polytope_norm`).

Reference: the sphere branch and bound over §10's exact enumeration oracle
(:func:`solvers.vector_relu.vector_dual_norm`, rtol 1e-10; itself checked against brute force
in test_vector_relu.py), and 2·10⁵ sampled unit directions (a lower estimate). Tolerances: the
polytope's ``c̄`` never below the reference by more than 1e-12 relative (round-off) and within
``rtol`` = 1e-9 (+1e-12) above it; the lower end attained by an explicit unit ``u``.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers.polytope_norm import FeatureCuts, mip_one_sided, polytope_vector_norm
from solvers.vector_relu import enumeration_oracle, vector_dual_norm

ROUND_OFF = 1e-12
RTOL = 1e-9

CASES = [(8, 3, 3, 0), (10, 4, 2, 1), (7, 9, 3, 2), (9, 5, 3, 3)]


def _instance(n: int, d: int, K: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) / np.sqrt(d), rng.standard_normal((n, K))


def _sampled(X: np.ndarray, Lam: np.ndarray, seed: int) -> float:
    U = np.random.default_rng(seed).standard_normal((X.shape[1], 200_000))
    U /= np.linalg.norm(U, axis=0)
    return float(np.max(np.linalg.norm(Lam.T @ np.maximum(X @ U, 0.0), axis=0)))


def assert_upper_bound(cbar: float, exact: float) -> None:
    """The check every ``c̄`` must pass: not below the exact ``c_K``."""
    assert cbar >= exact * (1.0 - ROUND_OFF), f"c̄ {cbar!r} below c_K {exact!r}"


@pytest.mark.parametrize(("n", "d", "K", "seed"), CASES)
def test_polytope_norm_matches_the_enumeration(n: int, d: int, K: int, seed: int) -> None:
    X, Lam = _instance(n, d, K, seed)
    ref = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10, max_evals=20_000)
    cuts = FeatureCuts.of(X)
    c = polytope_vector_norm(X, Lam, mip_one_sided(X), cuts=cuts, rtol=RTOL)
    assert_upper_bound(c.upper, ref.upper)
    assert c.upper <= ref.upper * (1.0 + RTOL + ROUND_OFF)  # converged to rtol
    assert c.lower <= ref.upper * (1.0 + ROUND_OFF) <= c.upper * (1.0 + 2 * ROUND_OFF)
    assert_upper_bound(c.upper, _sampled(X, Lam, seed))
    u = c.U[0]
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert np.isclose(np.linalg.norm(Lam.T @ np.maximum(X @ u, 0.0)), c.lower, rtol=1e-12)
    # the cuts are X's, not Λ's: a second Λ reuses them and is still exact
    Lam2 = Lam + 0.2 * np.random.default_rng(seed + 1).standard_normal(Lam.shape)
    before = cuts.G.shape[0]
    c2 = polytope_vector_norm(X, Lam2, mip_one_sided(X), cuts=cuts, rtol=RTOL)
    ref2 = vector_dual_norm(X, Lam2, enumeration_oracle(X), rtol=1e-10, max_evals=20_000)
    assert cuts.G.shape[0] > before
    assert_upper_bound(c2.upper, ref2.upper)
    assert c2.upper <= ref2.upper * (1.0 + RTOL + ROUND_OFF)


def test_polytope_norm_stopped_early_is_still_an_upper_bound() -> None:
    X, Lam = _instance(8, 3, 3, 0)
    ref = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10, max_evals=20_000)
    c = polytope_vector_norm(X, Lam, mip_one_sided(X), cuts=FeatureCuts.of(X), max_evals=2)
    assert c.evals == 2
    assert_upper_bound(c.upper, ref.upper)
    assert c.upper > ref.upper * (1.0 + RTOL)  # two calls are not enough: a real bracket
    assert c.lower <= ref.upper * (1.0 + ROUND_OFF)


@pytest.mark.parametrize(("n", "d", "K", "seed"), CASES[:2])
def test_one_cut_tightened_by_one_percent_fails_the_check(
    n: int, d: int, K: int, seed: int
) -> None:
    """``c̄`` from the stored cuts alone (no oracle call) is ≥ c_K; the cut of the call that
    found the maximiser, 1% below the MIP's bound, removes part of conv F and the same check
    then fails."""
    X, Lam = _instance(n, d, K, seed)
    ref = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10, max_evals=20_000)
    exact = mip_one_sided(X)
    values: list[float] = []

    def record(g: np.ndarray) -> tuple[float, float, np.ndarray]:
        out = exact(g)
        values.append(out[0])
        return out

    cuts = FeatureCuts.of(X)
    polytope_vector_norm(X, Lam, record, cuts=cuts, rtol=RTOL)
    stored = polytope_vector_norm(X, Lam, exact, cuts=cuts, max_evals=0)
    assert stored.evals == 0
    assert_upper_bound(stored.upper, ref.upper)
    cuts.r[int(np.argmax(values))] *= 0.99
    bad = polytope_vector_norm(X, Lam, exact, cuts=cuts, max_evals=0)
    with pytest.raises(AssertionError):
        assert_upper_bound(bad.upper, ref.upper)


def test_scalar_oracle_for_picks_the_polytope_beyond_the_enumeration() -> None:
    """Raw data beyond §10's enumeration (the ``deep_relu`` shape): the MIP with the polytope
    for 2 ≤ K ≤ 3 up to ``POLYTOPE_MAX_N`` rows; the sampled oracle for K = 1 and beyond."""
    from solvers.vector_relu import POLYTOPE_MAX_N, scalar_oracle_for

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 50)) / np.sqrt(50)
    oracle, exact = scalar_oracle_for(X, 3)
    assert exact and oracle.__qualname__.startswith("mip_oracle")
    assert oracle.vector_norm is not None
    assert not scalar_oracle_for(X)[1]
    big = rng.standard_normal((POLYTOPE_MAX_N + 1, 50)) / np.sqrt(50)
    assert not scalar_oracle_for(big, 3)[1]
