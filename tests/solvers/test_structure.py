"""solvers.structure on hand-built matrices of known rank / alignment and on exact splines."""

from __future__ import annotations

import numpy as np
import pytest

from solvers.problem import Network, Problem, forward
from solvers.structure import direction_alignment, fitted_function, layer_stats, spline_stats
from tests.conftest import assert_close


def orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return Q


def test_layer_stats_known_rank_and_alignment(rng: np.random.Generator) -> None:
    d, m, K = 7, 6, 3
    s = np.array([3.0, 2.0, 0.5])
    U, Q1, Q2, V = (
        orthonormal(rng, d, 3),
        orthonormal(rng, m, 3),
        orthonormal(rng, m, 3),
        orthonormal(rng, K, 3),
    )
    S = np.diag(s ** (1 / 3))
    Ws = [U @ S @ Q1.T, Q1 @ S @ Q2.T, Q2 @ S @ V.T]  # THEORY §1's aligned chain
    stats = layer_stats(Ws)
    sv = s ** (1 / 3)
    for st in stats:
        assert st["rank"] == 3
        assert_close(st["fro_norm"], float(np.linalg.norm(sv)), rtol=1e-13)
        assert_close(st["stable_rank"], float(np.sum(sv**2) / sv[0] ** 2), rtol=1e-13)
        assert_close(st["norm_ratio"], float(sv[0] / np.linalg.norm(sv)), rtol=1e-13)
        np.testing.assert_allclose(st["top_sv"][:3], sv, rtol=1e-13)
        assert len(st["top_sv"]) <= 5 and all(v < 1e-12 for v in st["top_sv"][3:])
    for st in stats[:2]:
        assert_close(st["align_next"], 1.0, rtol=1e-12)
        assert_close(st["subspace_align_next"], 1.0, rtol=1e-12)
    assert stats[2]["align_next"] is None and stats[2]["subspace_align_next"] is None

    # misaligned: replace W_2's left singular vectors by a subspace orthogonal to Q1's
    P = orthonormal(rng, m, m)
    Q1_perp = (np.eye(m) - Q1 @ Q1.T) @ P[:, :3]
    Q1_perp, _ = np.linalg.qr(Q1_perp)
    bad = layer_stats([Ws[0], Q1_perp @ S @ Q2.T])
    assert bad[0]["align_next"] < 1e-12 and bad[0]["subspace_align_next"] < 1e-12


def test_layer_stats_rank_tolerance_and_rank_one(rng: np.random.Generator) -> None:
    u, v = rng.standard_normal(5), rng.standard_normal(4)
    W = np.outer(u, v) + 1e-9 * rng.standard_normal((5, 4))
    st = layer_stats([W], rank_tol=1e-6)[0]
    assert st["rank"] == 1 and st["norm_ratio"] > 1 - 1e-12
    assert layer_stats([W], rank_tol=1e-12)[0]["rank"] == 4
    # below σ_1 = 1 the tolerance is absolute: a tiny matrix has rank 0
    assert layer_stats([1e-8 * W], rank_tol=1e-6)[0]["rank"] == 0
    zero = layer_stats([np.zeros((3, 2))])[0]
    assert zero["rank"] == 0 and zero["norm_ratio"] == 0.0 and zero["stable_rank"] == 0.0
    # the angle: a partially aligned pair with known cosine
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([np.cos(0.3), np.sin(0.3), 0.0])
    st2 = layer_stats([np.outer(rng.standard_normal(2), a), np.outer(b, rng.standard_normal(2))])[0]
    assert_close(st2["align_next"], np.cos(0.3), rtol=1e-13)
    with pytest.raises(ValueError, match="rows"):
        layer_stats([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="rank_tol"):
        layer_stats([W], rank_tol=0.0)


def test_direction_alignment(rng: np.random.Generator) -> None:
    d = 6
    dirs = orthonormal(rng, d, 2)
    W1 = np.column_stack(
        [3 * dirs[:, 0], -0.5 * dirs[:, 1], 1e-12 * rng.standard_normal(d), np.zeros(d)]
    )
    assert_close(direction_alignment(W1, dirs), 1.0, rtol=1e-12)
    # signed: the second direction is matched only by −neuron 2, so its best signed cosine is ~0
    assert abs(direction_alignment(W1, dirs, signed=True)) < 1e-12
    # an inactive (tiny) neuron does not count even if it were aligned
    W1b = np.column_stack([dirs[:, 0], 1e-12 * dirs[:, 1]])
    assert direction_alignment(W1b, dirs) < 1e-10
    # known angle
    e = np.eye(d)
    W = np.column_stack([np.cos(0.2) * e[:, 0] + np.sin(0.2) * e[:, 1]])
    assert_close(direction_alignment(W, e[:, 0]), np.cos(0.2), rtol=1e-13)
    # subspace version: W1 = D R Qᵀ spans span(D) exactly
    W_lin = dirs @ rng.standard_normal((2, 5))
    assert_close(direction_alignment(W_lin, dirs, subspace=True), 1.0, rtol=1e-12)
    assert (
        direction_alignment(
            W_lin, (np.eye(d) - dirs @ dirs.T) @ rng.standard_normal((d, 2)), subspace=True
        )
        < 1e-10
    )


def test_spline_stats_exact_linear_spline(rng: np.random.Generator) -> None:
    x = np.sort(rng.uniform(-1, 1, 9))
    y = rng.standard_normal(9)
    grid = np.union1d(np.linspace(x[0], x[-1], 2001), x)
    f = np.interp(grid, x, y)  # the interpolating linear spline: kinks exactly at data points
    st = spline_stats(x, y, f, grid)
    assert st["max_deviation"] <= 1e-14
    assert_close(st["share_near_data"], 1.0, rtol=1e-9)
    slopes = np.diff(y) / np.diff(x)
    tv_true = float(np.sum(np.abs(np.diff(slopes))))
    assert_close(st["tv_interpolant"], tv_true, rtol=1e-10)
    assert_close(st["tv"], tv_true, rtol=1e-9)
    assert st["n_kinks"] == 7
    np.testing.assert_allclose(st["kinks"], x[1:-1], atol=1e-12)


def test_spline_stats_smooth_curve() -> None:
    x = np.linspace(0, 1, 5)
    grid = np.linspace(0, 1, 4001)
    f = np.sin(2 * np.pi * grid)
    st = spline_stats(x, np.sin(2 * np.pi * x), f, grid)
    # on [0, 1/4] sin(2πx) − 4x peaks where 2π cos(2πx) = 4; the range of y is 2
    x_star = np.arccos(2 / np.pi) / (2 * np.pi)
    assert_close(st["max_deviation"], (np.sin(2 * np.pi * x_star) - 4 * x_star) / 2, rtol=1e-5)
    # TV(f′) = ∫₀¹|f″| = (2π)² ∫₀¹|sin 2πx| dx = (2π)²·(2/π) = 8π
    assert_close(st["tv"], 8 * np.pi, rtol=1e-3)
    # curvature is spread out: only a fraction of TV(f′) sits within 0.02 of the 5 points
    assert st["share_near_data"] < 0.3
    with pytest.raises(ValueError, match="grid"):
        spline_stats(x, x, f[::-1], grid[::-1])


def test_fitted_function_uses_forward(rng: np.random.Generator) -> None:
    x = rng.uniform(-1, 1, 6)
    p = Problem(x, rng.standard_normal(6), 3, 0.1, activation="relu", width=4, bias=True)
    net = Network(
        weights=(
            rng.standard_normal((1, 4)),
            rng.standard_normal((4, 4)),
            rng.standard_normal((4, 1)),
        ),
        biases=(rng.standard_normal(4), rng.standard_normal(4)),
    )
    grid = np.linspace(-1, 1, 50)
    f = fitted_function(p, net, grid)
    assert f.shape == (50,)
    np.testing.assert_allclose(fitted_function(p, net, x), forward(p, net)[:, 0], rtol=1e-14)
    # a ReLU net with biases is piecewise linear: at most (1 + 4·…) pieces; spline_stats sees kinks
    st = spline_stats(x, p.Y[:, 0], f, grid)
    assert st["tv"] >= 0 and np.isfinite(st["max_deviation"])
    with pytest.raises(ValueError, match="d = 1"):
        fitted_function(
            Problem(rng.standard_normal((4, 2)), np.zeros(4), 2, 0.1, width=3), net, grid
        )


def test_layer_stats_survive_weights_that_underflow() -> None:
    # weights trained towards W = 0 (β above every σ_k) end near 1e-160: σ_1² underflows to 0
    W = np.diag([3e-160, 1e-160])
    (stats,) = layer_stats([W])
    assert stats["stable_rank"] == pytest.approx((np.sqrt(10) / 3) ** 2, rel=1e-12)
    assert stats["norm_ratio"] == pytest.approx(3 / np.sqrt(10), rel=1e-12)
