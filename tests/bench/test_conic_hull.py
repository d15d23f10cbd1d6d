"""bench/conic_hull.py's QP (the conic-hull dual bound, measured there to gain nothing on the
solvers' own points): on random points it agrees with SLSQP, its Λ is feasible for the
combination constraint, and on a hand-built pair it beats the best single scaled point."""

from __future__ import annotations

import numpy as np

from bench.conic_hull import _dual_value, _slsqp, conic_hull_bound


def _single(points, cbars, y, beta) -> float:
    best = 0.0
    for lam, cb in zip(points, cbars, strict=True):
        t = float(np.clip(lam @ y / (lam @ lam), 0.0, beta / cb))
        best = max(best, _dual_value(t * lam, y))
    return best


def test_random_points_agree_with_slsqp_and_stay_feasible() -> None:
    rng = np.random.default_rng(5)
    for _ in range(5):
        y = rng.standard_normal(12)
        points = [rng.standard_normal(12) for _ in range(6)]
        cbars = [float(np.abs(rng.standard_normal()) + 0.5) for _ in points]
        val, Lam = conic_hull_bound(points, cbars, y, 0.7)
        assert abs(val - _slsqp(points, cbars, y, 0.7)) <= 1e-8 * max(1.0, abs(val))
        assert val >= _single(points, cbars, y, 0.7) - 1e-12
        assert abs(_dual_value(Lam.reshape(-1), y) - val) <= 1e-12 * max(1.0, abs(val))
        # Λ in the cone of the points with Σ μ_i c̄_i ≤ β (nonnegative least squares recovers μ)
        from scipy.optimize import nnls

        mu, res = nnls(np.column_stack(points), Lam.reshape(-1))
        assert res <= 1e-8 and float(np.dot(mu, cbars)) <= 0.7 * (1 + 1e-9)


def test_two_orthogonal_points_combine_above_either_alone() -> None:
    y = np.array([1.0, 1.0])
    points, cbars = [np.array([1.0, 0.0]), np.array([0.0, 1.0])], [1.0, 1.0]
    single = _single(points, cbars, y, 1.0)
    val, _ = conic_hull_bound(points, cbars, y, 1.0)
    assert single == 0.5 and val == 0.75  # (½, ½): D = 1 − ¼ against 1 − ½ alone
