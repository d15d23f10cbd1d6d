"""Two-layer ReLU nets with K > 1 outputs (:mod:`solvers.vector_relu`).

References: brute force over a fine grid of unit directions for ``c_K(Λ)`` (d = 2: every
direction of the circle at 2·10⁵ angles then a local refinement; d = 3: 2·10⁵ random directions,
a lower estimate only), and multistart float64 L-BFGS of the network (tests/lbfgs.py, torch
gradients, no code shared with the solver). Tolerances: ``c_K`` upper end within 1e-8 relative
of the d = 2 brute force and never below it by more than 1e-12; certificates never above any
network's objective by more than 1e-12 relative (round-off).
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import NotCovered, Problem, certificate, objective, solve
from solvers.problem import Status
from solvers.vector_relu import (
    enumeration_oracle,
    sampled_oracle,
    solve_vector_relu,
    vector_certificate,
    vector_dual_norm,
)
from tests.lbfgs import lbfgs_multistart

ROUND_OFF = 1e-12


def _instance(n: int, d: int, K: int, beta: float, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    return Problem(rng.standard_normal((n, d)), rng.standard_normal((n, K)), 2, beta, "relu")


def assert_never_above(bound: float, objectives: list[float]) -> None:
    """The check every certificate must pass: no network's objective lies below it."""
    worst = min(objectives)
    assert bound <= worst + ROUND_OFF * abs(worst), f"bound {bound!r} above a network {worst!r}"


def _brute_circle(X: np.ndarray, Lam: np.ndarray) -> float:
    th = np.linspace(0.0, 2 * np.pi, 200_001)
    U = np.stack([np.cos(th), np.sin(th)])
    vals = np.linalg.norm(Lam.T @ np.maximum(X @ U, 0.0), axis=0)
    best = float(np.max(vals))
    i = int(np.argmax(vals))
    for t in np.linspace(th[max(i - 1, 0)], th[min(i + 1, th.size - 1)], 20_001):
        u = np.array([np.cos(t), np.sin(t)])
        best = max(best, float(np.linalg.norm(Lam.T @ np.maximum(X @ u, 0.0))))
    return best


@pytest.mark.parametrize(("n", "K", "seed"), [(6, 2, 0), (9, 2, 1), (8, 3, 2), (12, 3, 3)])
def test_vector_norm_exact_against_brute_force_d2(n: int, K: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Lam = rng.standard_normal((n, 2)), rng.standard_normal((n, K))
    c = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10)
    brute = _brute_circle(X, Lam)
    assert c.lower <= c.upper
    assert brute <= c.upper * (1.0 + ROUND_OFF)  # valid upper end
    assert c.upper <= brute * (1.0 + 1e-8)  # and tight
    u = c.U[0]  # the lower end is attained by an explicit unit direction
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert np.isclose(np.linalg.norm(Lam.T @ np.maximum(X @ u, 0.0)), c.lower, rtol=1e-12)


@pytest.mark.parametrize("K", [2, 3])
def test_vector_norm_d3_above_every_sampled_direction(K: int) -> None:
    rng = np.random.default_rng(10 + K)
    X, Lam = rng.standard_normal((10, 3)), rng.standard_normal((10, K))
    c = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10)
    U = rng.standard_normal((3, 200_000))
    U /= np.linalg.norm(U, axis=0)
    sampled = float(np.max(np.linalg.norm(Lam.T @ np.maximum(X @ U, 0.0), axis=0)))
    assert sampled <= c.upper * (1.0 + ROUND_OFF)
    assert c.upper <= sampled * (1.0 + 1e-3)  # sampling 2e5 directions of S² comes this close
    assert c.upper <= c.lower * (1.0 + 1e-10)


def test_vector_norm_stopped_early_is_still_an_upper_bound() -> None:
    rng = np.random.default_rng(5)
    X, Lam = rng.standard_normal((9, 2)), rng.standard_normal((9, 3))
    exact = vector_dual_norm(X, Lam, enumeration_oracle(X), rtol=1e-10)
    early = vector_dual_norm(X, Lam, enumeration_oracle(X), max_evals=5)
    assert early.upper >= exact.upper * (1.0 - ROUND_OFF)
    assert early.lower <= exact.lower * (1.0 + ROUND_OFF)


@pytest.mark.slow  # 20 L-BFGS starts: ~50 s each on a loaded machine
@pytest.mark.parametrize(("n", "d", "K", "beta", "seed"), [(10, 2, 2, 0.1, 0), (10, 2, 3, 0.3, 1)])
def test_certificate_never_above_twenty_multistarts(
    n: int, d: int, K: int, beta: float, seed: int
) -> None:
    p = _instance(n, d, K, beta, seed)
    opt = solve_vector_relu(p)
    assert opt.status is Status.CERTIFIED
    assert opt.objective == objective(p, opt.network)
    runs = lbfgs_multistart(p, width=8, starts=20, seed=seed, maxiter=4000)
    nets = [val for val, _ in runs]
    assert_never_above(opt.lower_bound, nets)
    assert_never_above(certificate(p, runs[0][1]), nets)
    # the certified value is P*: no start below it, and the best start close to it
    assert min(nets) >= opt.objective * (1.0 - 1e-6)


def test_tampered_bound_fails_the_check() -> None:
    """An oracle that under-reports c(λ) (half of it) yields a 'bound' above real networks."""
    p = _instance(10, 2, 2, 0.1, 0)
    exact = enumeration_oracle(p.X)

    def halved(lam: np.ndarray) -> tuple[float, np.ndarray]:
        cbar, Z = exact(lam)
        return 0.5 * cbar, Z

    zero = [np.zeros((2, 1)), np.zeros((1, 2))]
    opt = solve_vector_relu(p)
    fake = vector_certificate(p, zero, oracle=halved) + 0.0
    fake_opt = solve_vector_relu(p, oracle=halved, exact=True)
    with pytest.raises(AssertionError):
        assert_never_above(fake_opt.lower_bound, [opt.objective])
    assert fake > vector_certificate(p, zero, oracle=exact)


def test_solve_dispatches_vector_outputs_and_names_k_with_bias() -> None:
    p = _instance(8, 2, 2, 0.2, 3)
    opt = solve(p)
    assert opt.family == "relu_two_layer_vector"
    assert opt.is_exact and opt.p_star_kind == "attained"
    assert opt.directions.shape == (2, opt.m_star)
    pb = Problem(p.X, p.Y, 2, 0.2, "relu", bias=True)
    with pytest.raises(NotCovered, match="K=2"):
        solve(pb)


def test_sampled_oracle_gives_a_bracket() -> None:
    p = _instance(10, 2, 2, 0.1, 4)
    opt = solve_vector_relu(p, oracle=sampled_oracle(p.X), max_rounds=3)
    ref = solve_vector_relu(p)
    assert opt.status is Status.BRACKET
    assert opt.lower_bound <= ref.objective * (1.0 + ROUND_OFF)
    assert ref.lower_bound <= opt.objective * (1.0 + ROUND_OFF)


def test_whitened_oracle_equals_the_enumeration_on_whitened_data() -> None:
    from solvers import data
    from solvers.vector_relu import scalar_oracle_for, whitened_oracle

    X, _ = data.make_dataset("whitened", "gaussian", n=5, d=7, outputs=1, seed=0)
    oracle, exact = scalar_oracle_for(X)
    assert exact
    enum = enumeration_oracle(X)
    rng = np.random.default_rng(0)
    for _ in range(20):
        lam = rng.standard_normal(5)
        c, Z = whitened_oracle(X)(lam)
        ce, _ = enum(lam)
        assert np.isclose(c, ce, rtol=1e-9)
        attained = max(abs(float(lam @ np.maximum(X @ z, 0.0))) for z in Z)
        assert np.isclose(attained, ce, rtol=1e-9)  # the maximiser is explicit
    raw = np.random.default_rng(1).standard_normal((5, 7))  # not whitened: not this oracle
    assert scalar_oracle_for(raw)[0].__qualname__.startswith("enumeration_oracle")
