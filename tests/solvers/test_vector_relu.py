"""Two-layer ReLU nets with K > 1 outputs (:mod:`solvers.vector_relu`).

References: brute force over a fine grid of unit directions for ``c_K(Λ)`` (d = 2: every
direction of the circle at 2·10⁵ angles then a local refinement; d = 3: 2·10⁵ random directions,
a lower estimate only), and multistart float64 L-BFGS of the network (tests/lbfgs.py, torch
gradients, no code shared with the solver). Tolerances: ``c_K`` upper end within 1e-8 relative
of the d = 2 brute force and never below it by more than 1e-12; certificates never above any
network's objective by more than 1e-12 relative (round-off).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from solvers import NotCovered, Problem, certificate, objective, solve
from solvers.problem import Status, forward
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
    # the solve with the halved oracle reaches P* here and caps its returned lower end at its
    # network's objective: the check is made on the lower ends of its rounds (before the cap)
    with pytest.raises(AssertionError):
        assert_never_above(max(lo for _, lo in fake_opt.info["trace"]), [opt.objective])
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


def _whitened_instance(n: int, d: int, K: int, beta: float, seed: int) -> Problem:
    from solvers import data

    X, _ = data.make_dataset("whitened", "gaussian", n=n, d=d, outputs=1, seed=seed)
    Y = np.random.default_rng(seed + 100).standard_normal((n, K))
    return Problem(X, Y, 2, beta, "relu")


def _brute_sphere(Lam: np.ndarray, seed: int) -> float:
    """``max_{‖v‖=1} ‖(Λv)_+‖`` (= c_K(Λ) on whitened data) from below: 2·10⁵ random unit v
    (a fine circle for K = 2), then projected ascent ``v ← Λᵀ(Λv)_+/‖·‖`` from the best 20."""
    K = Lam.shape[1]
    if K == 2:
        th = np.linspace(0.0, 2 * np.pi, 200_001)
        V = np.stack([np.cos(th), np.sin(th)])
    else:
        V = np.random.default_rng(seed).standard_normal((K, 200_000))
        V /= np.linalg.norm(V, axis=0)
    vals = np.linalg.norm(np.maximum(Lam @ V, 0.0), axis=0)
    best = float(vals.max())
    for j in np.argsort(-vals)[:20]:
        v = V[:, j]
        for _ in range(200):
            g = Lam.T @ np.maximum(Lam @ v, 0.0)
            if not np.any(g):
                break
            v = g / np.linalg.norm(g)
        best = max(best, float(np.linalg.norm(np.maximum(Lam @ v, 0.0))))
    return best


@pytest.mark.parametrize(
    ("n", "d", "K", "seed", "kind"),
    [(6, 8, 2, 0, "random"), (12, 15, 2, 1, "residual"), (9, 9, 3, 2, "random"),
     (14, 20, 3, 3, "residual"), (10, 12, 3, 4, "rank_two"), (16, 16, 3, 5, "residual")],
)  # fmt: skip
def test_whitened_vector_norm_is_exact(n: int, d: int, K: int, seed: int, kind: str) -> None:
    """The arrangement formula against the sphere branch and bound over the closed-form scalar
    oracle (rtol 1e-10) and against brute-force sampling with ascent; ``residual``: Λ = Y − F
    at a network from the solver (many near-equal peaks, the certificate's hard case)."""
    from solvers.vector_relu import whitened_oracle, whitened_vector_norm

    p = _whitened_instance(n, d, K, 0.1, seed)
    rng = np.random.default_rng(seed)
    Lam = rng.standard_normal((n, K))
    if kind == "rank_two":
        Lam[:, 2] = Lam[:, 0] - 0.5 * Lam[:, 1]
    if kind == "residual":
        opt = solve_vector_relu(p, max_rounds=3)
        Lam = p.Y - forward(p, opt.network)
    c = whitened_vector_norm(p.X, Lam)
    scalar = whitened_oracle(p.X)
    bb = vector_dual_norm(p.X, Lam, lambda lam: scalar(lam), rtol=1e-10, max_evals=40_000)
    brute = _brute_sphere(Lam, seed)
    assert c.lower <= c.upper
    assert bb.lower <= c.upper * (1.0 + ROUND_OFF) and brute <= c.upper * (1.0 + ROUND_OFF)
    assert c.upper <= bb.upper * (1.0 + ROUND_OFF)  # as tight as the branch and bound
    assert c.upper <= c.lower * (1.0 + 1e-9)  # attained by an explicit u
    u = c.U[0]
    assert np.isclose(np.linalg.norm(Lam.T @ np.maximum(p.X @ u, 0.0)), c.lower, rtol=1e-12)


def test_whitened_vector_norm_without_its_cells_fails_the_check(monkeypatch) -> None:
    """A wrong arrangement (the full-dimensional cells dropped) understates c_K: the same
    comparison against the branch and bound then fails."""
    import solvers.vector_relu as vr

    p = _whitened_instance(9, 9, 3, 0.1, 2)
    Lam = np.random.default_rng(2).standard_normal((9, 3))
    full = vr.whitened_vector_norm(p.X, Lam)
    real = vr._plane_faces
    monkeypatch.setattr(vr, "_plane_faces", lambda L: [f for f in real(L) if f[0].shape[1] < 3])
    cut = vr.whitened_vector_norm(p.X, Lam)
    scalar = vr.whitened_oracle(p.X)
    bb = vector_dual_norm(p.X, Lam, lambda lam: scalar(lam), rtol=1e-10, max_evals=40_000)
    assert cut.upper < full.upper * (1.0 - 1e-6)
    with pytest.raises(AssertionError):
        assert bb.lower <= cut.upper * (1.0 + ROUND_OFF)


@pytest.mark.parametrize(("n", "d", "K", "beta", "seed"), [(8, 10, 2, 0.2, 0), (12, 14, 3, 0.5, 1)])
def test_whitened_vector_outputs_certified(n: int, d: int, K: int, beta: float, seed: int) -> None:
    """Whitened data, K = 2, 3: CERTIFIED, and the certificate of the network found (the exact
    c_K of its own residual) never above it."""
    p = _whitened_instance(n, d, K, beta, seed)
    opt = solve_vector_relu(p)
    assert opt.status is Status.CERTIFIED
    assert opt.rel_gap <= 1e-6
    assert opt.objective == objective(p, opt.network)
    assert vector_certificate(p, opt.network) <= opt.objective * (1.0 + ROUND_OFF)


@pytest.mark.slow  # 20 L-BFGS starts
@pytest.mark.parametrize(("n", "d", "K", "beta", "seed"), [(8, 10, 2, 0.2, 0), (10, 12, 3, 0.5, 1)])
def test_whitened_certificate_never_above_twenty_multistarts(
    n: int, d: int, K: int, beta: float, seed: int
) -> None:
    p = _whitened_instance(n, d, K, beta, seed)
    opt = solve_vector_relu(p)
    assert opt.status is Status.CERTIFIED
    runs = lbfgs_multistart(p, width=2 * n, starts=20, seed=seed, maxiter=4000)
    nets = [val for val, _ in runs]
    assert_never_above(opt.lower_bound, nets)
    assert_never_above(certificate(p, runs[0][1]), nets)
    assert min(nets) >= opt.objective * (1.0 - 1e-6)


# ------------------------------------------------------------------ P*(I_n, Y, β/‖X‖₂) ≤ P*
@functools.cache
def _certified(n: int, d: int, K: int, beta: float, seed: int) -> tuple[Problem, object]:
    """A small raw instance (``X`` Gaussian / √d, ``d > n`` as in ``deep_relu``) and its P*
    certified by the enumeration oracle with the sphere branch and bound."""
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d)) / np.sqrt(d), rng.standard_normal((n, K))
    p = Problem(X, Y, 2, beta, "relu")
    return p, solve_vector_relu(p)


WHITENED_CASES = [
    (5, 7, 2, 0.1, 2),
    pytest.param(5, 6, 3, 0.1, 0, marks=pytest.mark.slow),  # K = 3 branch and bound: ~20 s
    pytest.param(6, 8, 2, 0.3, 3, marks=pytest.mark.slow),  # ~15 s
]


@pytest.mark.parametrize(("n", "d", "K", "beta", "seed"), WHITENED_CASES)
def test_whitened_lower_bound_never_above_certified_p_star(
    n: int, d: int, K: int, beta: float, seed: int
) -> None:
    """``P*(I_n, Y, β/‖X‖₂) ≤ P*(X, Y, β)`` against P* certified by the enumeration; with
    ``σ_min(X)`` in place of ``‖X‖₂`` (the proof's ``‖Xu‖ ≤ s‖u‖`` broken) the same check
    fails."""
    from solvers.vector_relu import whitened_lower_bound

    p, opt = _certified(n, d, K, beta, seed)
    assert opt.status is Status.CERTIFIED
    sv = np.linalg.svd(p.X, compute_uv=False)
    bound = whitened_lower_bound(p.Y, p.beta, float(sv[0]))
    assert 0.0 < bound
    assert_never_above(bound, [opt.objective])
    wrong = whitened_lower_bound(p.Y, p.beta, float(sv[-1]))
    with pytest.raises(AssertionError):
        assert_never_above(wrong, [opt.objective])


def test_inexact_solve_takes_the_whitened_lower_bound() -> None:
    """With an inexact oracle (sampled directions) the lower end is at least the whitened
    problem's bound — here above what the relaxed c̄ gives (the check fails without it)."""
    from solvers.vector_relu import whitened_lower_bound

    p, opt = _certified(5, 7, 2, 0.1, 2)
    bound = whitened_lower_bound(p.Y, p.beta, float(np.linalg.norm(p.X, 2)))
    loose = solve_vector_relu(p, oracle=sampled_oracle(p.X), max_rounds=3)
    assert loose.status is Status.BRACKET
    assert loose.lower_bound >= bound
    assert_never_above(loose.lower_bound, [opt.objective])
