"""THEORY §10: the pattern program for two-layer ReLU networks on any data.

References: the convex program written independently in cvxpy over ALL enumerated patterns
(``solvers.reference.relu_two_layer``, Clarabel, ~1e-8 relative), the per-cell maximum of the
dual constraint in cvxpy, dense random sampling of directions (enumeration and ``c(λ)``), the
closed forms of §3/§4 where they apply, and multistart float64 L-BFGS of the network (slow).
Tolerances: our solve is certified to a relative gap 1e-8; against cvxpy we allow 2e-7 relative
(cvxpy's own accuracy); certificates must never exceed the certified upper end by more than
1e-12 relative (round-off).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from solvers import NotCovered, Problem, certificate, objective, solve
from solvers.problem import Network, Status, forward
from solvers.two_layer import (
    dual_norm,
    enumerate_patterns,
    pattern_count_bound,
    relaxed_dual_norm,
    sample_patterns,
    solve_two_layer,
    solve_two_layer_path,
    two_layer_certificate,
)

cp = pytest.importorskip("cvxpy")
from solvers.reference import relu_two_layer  # noqa: E402

REF_RTOL = 2e-7


def _brute_patterns(X: np.ndarray, bias: bool, samples: int, seed: int) -> set[bytes]:
    rng = np.random.default_rng(seed)
    Xt = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    U = rng.standard_normal((Xt.shape[1], samples))
    P = (Xt @ U >= 0).T
    return set(map(bytes, np.packbits(P, axis=1)))


def _as_set(P: np.ndarray) -> set[bytes]:
    return set(map(bytes, np.packbits(P, axis=1)))


def _instance(n: int, d: int, seed: int, beta: float, bias: bool) -> Problem:
    rng = np.random.default_rng(seed)
    return Problem(rng.standard_normal((n, d)), rng.standard_normal(n), 2, beta, "relu", bias=bias)


# ----------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize(
    ("n", "d", "bias"),
    [(10, 1, False), (10, 1, True), (12, 2, False), (9, 2, True), (10, 3, False)],
)
def test_enumeration_complete_and_count_in_general_position(n: int, d: int, bias: bool) -> None:
    X = np.random.default_rng(n * 10 + d).standard_normal((n, d))
    E = enumerate_patterns(X, bias=bias)
    r = d + int(bias)
    assert len(_as_set(E)) == E.shape[0]  # unique rows
    assert E.shape[0] == pattern_count_bound(n, r)  # general position: the bound is attained
    assert _brute_patterns(X, bias, 200_000, 1) <= _as_set(E)


def test_enumeration_exact_counts_1d_and_2d() -> None:
    x = np.array([[-2.0], [-1.0], [0.5], [3.0]])
    assert enumerate_patterns(x).shape[0] == 2  # {x > 0}, {x < 0}
    assert enumerate_patterns(x, bias=True).shape[0] == 2 * 4  # thresholds, two directions
    # 2-D, no bias: n lines through 0 in general position cut the plane into 2n sectors
    ang = np.array([0.1, 0.7, 1.3, 2.0, 2.9])
    X = np.stack([np.cos(ang), np.sin(ang)], axis=1) * np.array([1, 2, 3, 4, 5])[:, None]
    assert enumerate_patterns(X).shape[0] == 10


@pytest.mark.parametrize("bias", [False, True])
def test_enumeration_degenerate_data(bias: bool) -> None:
    """Duplicates, collinear rows and integer grids: still complete (checked by sampling)."""
    X = np.array([[1, 0], [2, 0], [0, 1], [1, 1], [1, 1], [-1, 1], [3, 3], [-2, 0]], float)
    assert _brute_patterns(X, bias, 300_000, 2) <= _as_set(enumerate_patterns(X, bias=bias))
    rng = np.random.default_rng(5)
    G = rng.integers(-2, 3, size=(14, 3)).astype(float)
    G = G[np.any(G != 0, axis=1)]
    assert _brute_patterns(G, bias, 300_000, 3) <= _as_set(enumerate_patterns(G, bias=bias))


def test_enumeration_check_can_fail() -> None:
    """The completeness check above is not vacuous: dropping one pattern is detected."""
    X = np.random.default_rng(0).standard_normal((8, 2))
    E = enumerate_patterns(X)
    assert not _brute_patterns(X, False, 200_000, 1) <= _as_set(E[1:])


# ----------------------------------------------------------------------------- c(λ)
@pytest.mark.parametrize(
    ("n", "d", "bias"),
    [
        (9, 2, False),
        (8, 2, True),
        pytest.param(8, 3, False, marks=pytest.mark.slow),
        pytest.param(7, 3, True, marks=pytest.mark.slow),
    ],
)
def test_dual_norm_exact_against_cvxpy_cells_and_sampling(n: int, d: int, bias: bool) -> None:
    rng = np.random.default_rng(n + 7 * d)
    X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    if bias:
        lam -= lam.mean()
    c, exact = dual_norm(X, lam, bias=bias)
    assert exact
    Xt = np.hstack([X, np.ones((n, 1))]) if bias else X
    best = 0.0
    for D in enumerate_patterns(X, bias=bias):
        A = (2.0 * D - 1.0)[:, None] * Xt
        g = (D * lam) @ Xt
        for s in (1.0, -1.0):
            z = cp.Variable(Xt.shape[1])
            prob = cp.Problem(cp.Maximize(s * g @ z), [A @ z >= 0, cp.norm(z[:d]) <= 1])
            prob.solve(solver="CLARABEL")
            best = max(best, float(prob.value))
    assert c == pytest.approx(best, rel=1e-7)
    U = rng.standard_normal((d, 200_000))
    U /= np.linalg.norm(U, axis=0)
    B = rng.uniform(-5, 5, U.shape[1]) if bias else 0.0
    sampled = float(np.max(np.abs(lam @ np.maximum(X @ U + B, 0.0))))
    assert sampled <= c * (1 + 1e-12)
    assert relaxed_dual_norm(X, lam, bias=bias) >= c * (1 - 1e-12)  # the relaxation is valid


@pytest.mark.parametrize(("n", "d", "bias"), [(11, 6, False), (9, 3, True)])
def test_dual_norm_per_pattern_paths_agree(monkeypatch, n: int, d: int, bias: bool) -> None:  # noqa: ANN001
    """The per-pattern c(λ): any number of vectorised active-set steps, any pruning (``top``)
    and one NNLS on EVERY cell (no vectorised pass, no pruning) give the same value to 1e-12;
    the best candidate attains it, and cvxpy on that candidate's cell agrees (2e-7)."""
    from solvers import arrangement

    rng = np.random.default_rng(n + d)
    X = rng.standard_normal((n, d))
    X[1], X[2] = X[0], -X[3]  # a duplicate and a negative multiple: shared hyperplanes
    geo = arrangement.geometry(X, bias)
    for _ in range(6):
        lam = rng.standard_normal(n)
        if bias:
            lam -= lam.mean()
        G = geo.patterns.astype(np.float64) @ (lam[:, None] * geo.Xt)
        brute = max(
            arrangement._cone_max(geo, D, s * g)[0]
            for D, g in zip(geo.patterns, G, strict=True)
            for s in (1, -1)
        )
        for steps in (0, 1, 3, d + 1):
            monkeypatch.setattr(arrangement, "ACTIVE_STEPS", steps)
            for top in (0, 5, 64):
                c, cands = arrangement.dual_norm_exact(geo, lam, top=top)
                assert c == pytest.approx(brute, rel=1e-12)
                assert cands[0][0] == pytest.approx(c, rel=1e-12)
    _, s, D = cands[0]
    A = (2.0 * D - 1.0)[:, None] * geo.Xt
    z = cp.Variable(geo.k)
    prob = cp.Problem(
        cp.Maximize(s * (D * lam) @ geo.Xt @ z), [A @ z >= 0, cp.norm(z[: geo.r]) <= 1]
    )
    prob.solve(solver="CLARABEL")
    assert float(prob.value) == pytest.approx(brute, rel=REF_RTOL)


def test_dual_norm_uncentred_with_bias_is_infinite() -> None:
    X = np.random.default_rng(0).standard_normal((6, 2))
    assert dual_norm(X, np.ones(6), bias=True)[0] == np.inf


# ----------------------------------------------------------------------------- P* vs cvxpy
CASES = [
    (8, 1, 0.05, False),
    (8, 1, 0.01, True),
    (10, 2, 0.1, False),
    (10, 2, 0.05, True),
    (9, 3, 0.1, False),
    (8, 3, 0.2, True),
    (8, 5, 0.1, False),
]


@pytest.mark.reference
@pytest.mark.parametrize(("n", "d", "beta", "bias"), CASES)
def test_pstar_equals_cvxpy_on_all_patterns(n: int, d: int, beta: float, bias: bool) -> None:
    p = _instance(n, d, 100 + n + d, beta, bias)
    opt = solve_two_layer(p)
    ref, _, _ = relu_two_layer(p.X, p.Y[:, 0], beta, enumerate_patterns(p.X, bias=bias), bias=bias)
    assert opt.status is Status.CERTIFIED
    assert opt.family == "relu_two_layer"
    assert opt.rel_gap <= 1e-8
    assert opt.objective == pytest.approx(ref, rel=REF_RTOL)
    assert opt.lower_bound <= ref * (1 + REF_RTOL)
    # the network realises the value, m* neurons with unit directions
    assert objective(p, opt.network) == pytest.approx(opt.objective, rel=1e-12)
    W1, W2 = opt.network.weights
    active = int(np.sum(np.abs(W2[:, 0]) > 0))
    assert opt.m_star <= active <= opt.m_star + int(bias)  # + a constant neuron with bias
    assert opt.m_star <= n + 1
    assert opt.directions.shape == (d, opt.m_star)
    np.testing.assert_allclose(np.linalg.norm(opt.directions, axis=0), 1.0, rtol=1e-12)
    # tight certificate at the optimal network
    cert = two_layer_certificate(p, opt.network)
    assert cert <= opt.objective * (1 + 1e-12)
    assert cert >= opt.objective * (1 - 1e-6)


def test_solve_dispatches_and_closed_forms_win() -> None:
    p = _instance(12, 3, 1, 0.1, False)
    opt = solve(p)
    assert opt.family == "relu_two_layer" and opt.status is Status.CERTIFIED
    # whitened data: §3's closed form wins and agrees with the pattern program
    Q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((7, 4)))
    pw = Problem(Q.T, np.array([1.0, -2.0, 0.5, 0.3]), 2, 0.3, "relu")
    closed = solve(pw)
    assert closed.family == "relu_whitened" and closed.status is Status.EXACT
    ours = solve_two_layer(pw)
    assert ours.objective == pytest.approx(closed.objective, rel=1e-8)
    assert ours.m_star == closed.m_star
    # rank-one data: §4
    c = np.array([2.0, -1.0, 0.5, 1.5, -0.7])
    pr = Problem(np.outer(c, [0.6, 0.8]), np.array([1.0, 0.3, -0.2, 2.0, 0.4]), 2, 0.2, "relu")
    closed = solve(pr)
    assert closed.family == "relu_rank_one"
    assert solve_two_layer(pr).objective == pytest.approx(closed.objective, rel=1e-8)


def test_certificate_dispatch_is_tight_and_moves() -> None:
    p = _instance(12, 2, 3, 0.1, True)
    opt = solve(p)
    assert opt.family == "relu_two_layer"
    assert certificate(p, opt.network) == pytest.approx(opt.objective, rel=1e-6)
    W1, W2 = opt.network.weights
    moved = Network(weights=(W1 * 1.1, W2), biases=opt.network.biases)
    c1 = certificate(p, moved)
    assert c1 < certificate(p, opt.network)
    assert c1 <= opt.objective


def test_certificate_never_above_pstar_on_many_networks() -> None:
    """Random, perturbed and optimal networks on several problems: certificate ≤ the certified
    upper end P*(1 + 1e-8) — counted over 300 networks."""
    rng = np.random.default_rng(11)
    checked = 0
    for i, (n, d, beta, bias) in enumerate(
        [(10, 2, 0.1, False), (9, 2, 0.05, True), (8, 3, 0.2, False)]
    ):
        p = _instance(n, d, 200 + i, beta, bias)
        opt = solve_two_layer(p)
        upper = opt.objective
        W1, W2 = opt.network.weights
        b = opt.network.biases
        for k in range(100):
            if k % 3 == 0:  # random network of random width
                m = int(rng.integers(1, 12))
                net = Network(
                    weights=(rng.standard_normal((d, m)), rng.standard_normal((m, 1))),
                    biases=(rng.standard_normal(m),) if bias else None,
                )
            else:  # the optimum, perturbed (k % 3 == 1: tiny, 2: larger)
                eps = 1e-6 if k % 3 == 1 else 1e-2
                net = Network(
                    weights=(
                        W1 + eps * rng.standard_normal(W1.shape),
                        W2 + eps * rng.standard_normal(W2.shape),
                    ),
                    biases=(b[0] + eps * rng.standard_normal(b[0].shape),) if bias else None,
                )
            cert = two_layer_certificate(p, net)
            assert cert <= upper * (1 + 1e-12)
            assert cert <= objective(p, net) * (1 + 1e-12)
            checked += 1
    assert checked == 300


def test_unscaled_residual_would_break_validity() -> None:
    """The scaling by β/c(λ) is what makes the bound valid: the unscaled dual value of a random
    network's residual lies above P* (the check above can fail)."""
    p = _instance(10, 2, 5, 0.1, False)
    opt = solve_two_layer(p)
    rng = np.random.default_rng(0)
    net = Network(weights=(rng.standard_normal((2, 3)), rng.standard_normal((3, 1))))
    y = p.Y[:, 0]
    lam = y - net.weights[1][:, 0] @ np.maximum(p.X @ net.weights[0], 0).T
    assert 0.5 * y @ y - 0.5 * np.sum((lam - y) ** 2) > opt.objective
    assert two_layer_certificate(p, net) <= opt.objective


# ----------------------------------------------------------------------------- paths, brackets
def test_beta_path_matches_single_solves() -> None:
    p = _instance(10, 2, 9, 0.1, False)
    betas = [0.3, 0.1, 0.03]
    path = solve_two_layer_path(p, betas)
    for beta, opt in zip(betas, path, strict=True):
        single = solve_two_layer(dataclasses.replace(p, beta=beta))
        assert opt.status is Status.CERTIFIED
        assert opt.objective == pytest.approx(single.objective, rel=2e-8)


def test_beyond_the_cap_the_oracle_certifies_or_brackets() -> None:
    """Beyond the cap the MIP oracle's exact check certifies (the same P* as the enumeration);
    without time for it (time_limit = 0) the result is a BRACKET around P*."""
    p = _instance(12, 3, 4, 0.1, False)
    exact = solve_two_layer(p)
    cert = solve_two_layer(p, cap=50)
    assert cert.status is Status.CERTIFIED and cert.info["oracle"]["exact"]
    assert cert.objective == pytest.approx(exact.objective, rel=1e-6)
    assert cert.lower_bound <= exact.objective * (1 + 1e-8)
    br = solve_two_layer(p, cap=50, time_limit=0.0)
    assert br.status is Status.BRACKET
    assert "cap" in br.info["not_covered"]
    assert br.lower_bound <= exact.lower_bound * (1 + 1e-12)
    assert br.objective >= exact.objective * (1 - 1e-8)
    assert objective(p, br.network) == pytest.approx(br.objective, rel=1e-12)
    assert two_layer_certificate(p, exact.network, cap=50) <= exact.objective


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(NotCovered, match="n = 1"):
        solve_two_layer(Problem(np.ones((1, 2)), [1.0], 2, 0.1, "relu"))
    X = rng.standard_normal((6, 2))
    X[3] = 0.0
    with pytest.raises(NotCovered, match="zero row"):
        solve_two_layer(Problem(X, rng.standard_normal(6), 2, 0.1, "relu"))
    with pytest.raises(NotCovered, match="exceed the cap 100"):
        enumerate_patterns(rng.standard_normal((20, 3)), cap=100)
    with pytest.raises(NotCovered, match="K = 2"):
        solve_two_layer(
            Problem(rng.standard_normal((5, 2)), rng.standard_normal((5, 2)), 2, 0.1, "relu")
        )
    with pytest.raises(NotCovered, match="depth 3"):
        solve_two_layer(
            Problem(rng.standard_normal((5, 2)), rng.standard_normal(5), 3, 0.1, "relu")
        )
    with pytest.raises(ValueError, match="solvers.Problem"):
        solve_two_layer("not a problem")
    # a zero row is fine with a bias (x = 0 is an ordinary point of a 1-D spline)
    x = np.array([[-1.0], [0.0], [1.0], [2.0]])
    assert solve_two_layer(Problem(x, [1.0, 0.0, 1.0, -1.0], 2, 0.01, "relu", bias=True)).is_exact


def test_zero_targets() -> None:
    p = Problem(np.random.default_rng(0).standard_normal((5, 2)), np.zeros(5), 2, 0.1, "relu")
    opt = solve_two_layer(p)
    assert opt.objective == 0.0 and opt.m_star == 0 and opt.is_exact


# ----------------------------------------------------------------------------- L-BFGS (slow)


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.parametrize(
    ("n", "d", "beta", "bias", "reach"),
    [(10, 2, 0.1, False, 1e-5), (8, 5, 0.2, False, 1e-5), (8, 1, 0.05, True, 1e-3)],
)
def test_lbfgs_never_below_and_reaches_pstar(
    n: int, d: int, beta: float, bias: bool, reach: float
) -> None:
    """Multistart L-BFGS of the wide network never goes below the certified lower bound; started
    from the optimal network perturbed by 1e-3 (relative) it comes back to P* within ``reach``
    (measured with scipy 1.17's L-BFGS-B and nudged restarts, tests/lbfgs.py: 1.8e-6 for d = 2
    and 2.1e-6 for d = 5, where it stalls on the ReLU kinks; 1.5e-4 for 1-D with biases, where its huge-bias constant neuron is ill-conditioned). Random starts
    stop at worse local minima (1-D with biases: +43%)."""
    from tests.lbfgs import lbfgs_from, lbfgs_multistart

    p = _instance(n, d, 300 + n + d, beta, bias)
    opt = solve_two_layer(p)
    runs = lbfgs_multistart(p, width=max(2 * opt.m_star, 8), starts=3, seed=1, maxiter=3000)
    values = np.array([v for v, _ in runs])
    assert np.all(values >= opt.lower_bound * (1 - 1e-9)), values
    rng = np.random.default_rng(0)
    W1, W2 = opt.network.weights

    def jiggle(a: np.ndarray) -> np.ndarray:  # relative: the constant neuron has a huge bias
        return a * (1.0 + 1e-3 * rng.standard_normal(a.shape))

    pert = Network(
        weights=(jiggle(W1), jiggle(W2)),
        biases=(jiggle(opt.network.biases[0]),) if bias else None,
    )
    back = lbfgs_from(p, pert)
    assert back >= opt.lower_bound * (1 - 1e-9)
    assert back <= opt.objective * (1 + reach), (back, opt.objective, values)


# ----------------------------------------------------------------------------- issue 17 defects
def test_polished_tiny_neurons_do_not_crash_caratheodory() -> None:
    """Biased uniform data where the polish leaves blocks of ‖u‖ ≈ 1e-15 (seed 23, β = 0.1):
    Carathéodory's step used to find no positive entry (ValueError in ``np.min``)."""
    rng = np.random.default_rng(23)
    X = rng.uniform(-1, 1, (15, 2))
    y = rng.standard_normal(15)
    opt = solve(Problem(X, y, depth=2, beta=0.1, activation="relu", bias=True))
    assert opt.status is Status.CERTIFIED and opt.m_star <= 15 + 1


def test_caratheodory_leaves_at_most_n_plus_one_neurons() -> None:
    from solvers.arrangement import geometry as _geometry
    from solvers.relu_program import caratheodory as _caratheodory

    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 2))
    geo = _geometry(X, False)
    merged = [(float(rng.choice([-1, 1])), rng.standard_normal(geo.k)) for _ in range(20)]
    merged += [(1.0, 1e-15 * rng.standard_normal(geo.k)) for _ in range(3)]  # polish leftovers

    def out_cost(ms: list) -> tuple[np.ndarray, float]:
        f = sum(s * np.maximum(geo.Xt @ z, 0.0) for s, z in ms)
        return f, sum(float(np.linalg.norm(z[: geo.r])) for _, z in ms)

    f0, c0 = out_cost(merged)
    reduced = _caratheodory(geo, merged)
    f1, c1 = out_cost(reduced)
    assert len(reduced) <= 6 + 1
    np.testing.assert_allclose(f1, f0, rtol=0, atol=1e-9 * np.abs(f0).max())
    assert c1 == pytest.approx(c0, rel=1e-9)


def test_duplicate_rows_are_counted_once() -> None:
    """10 distinct points in d = 3, each 5 times, plus their negatives: the a-priori count of
    the 100 rows (2ΣC(99, k<3) = 9,902) used to exceed a cap of 500; the 10 hyperplanes have
    at most 92 cells. The patterns agree with sampled directions on every row."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((10, 3))
    X = np.vstack([base] * 5 + [-2.0 * base] * 5)
    P = enumerate_patterns(X, cap=500)
    assert P.shape[0] <= 92
    S = sample_patterns(X, samples=4000)
    keys = {row.tobytes() for row in P}
    assert all(row.tobytes() in keys for row in S[(S.any(axis=1)) & (~S.all(axis=1))])
    assert np.array_equal(P[:, :10], P[:, 10:20]) and np.array_equal(P[:, 50:60], ~P[:, :10])


def test_bracket_upper_end_is_a_trained_network() -> None:
    """Beyond the cap (forced: cap = 50) a planted single neuron: the bracket's upper end is at
    most the planted network (it used to be the zero network, ½‖y‖²), and at most any warm start
    passed in; the lower end stays below P*."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    w = rng.standard_normal(3)
    y = np.maximum(X @ w, 0.0)
    p = Problem(X, y, 2, 0.1, "relu")
    exact = solve_two_layer(p)
    nw = float(np.linalg.norm(w))
    planted = Network(weights=(w[:, None] / np.sqrt(nw), np.array([[np.sqrt(nw)]])))
    br = solve_two_layer(p, cap=50, time_limit=5.0, warm_start=[planted])
    assert br.objective <= objective(p, planted) * (1 + 1e-12)
    assert br.objective < 0.5 * float(y @ y)
    assert br.lower_bound <= exact.objective * (1 + 1e-9)
    assert objective(p, br.network) == pytest.approx(br.objective, rel=1e-12)
    from solvers.two_layer import warm_starts

    wrong = Network(weights=(np.ones((2, 1)), np.ones((1, 1))))  # other shapes: ignored
    with warm_starts([wrong, planted]):  # what sweep.trial passes through solvers.solve
        ctx = solve_two_layer(p, cap=50, time_limit=5.0)
    assert ctx.objective <= objective(p, planted) * (1 + 1e-12)


@pytest.mark.reference
@pytest.mark.parametrize(("n", "d", "bias"), [(12, 3, False), (10, 2, True), (9, 4, False)])
def test_oracle_certified_equals_cvxpy_on_all_patterns(n: int, d: int, bias: bool) -> None:
    """Beyond a forced cap (50) the column generation with the MIP oracle certifies (gap ≤ 1e-6),
    and its bracket holds cvxpy/Clarabel's P* on ALL enumerated patterns (independent, ~1e-8)."""
    p = _instance(n, d, 40 + n + d, 0.05, bias)
    opt = solve_two_layer(p, cap=50, time_limit=120.0)
    assert opt.status is Status.CERTIFIED and opt.info["oracle"]["exact"]
    ref, _, _ = relu_two_layer(
        p.X, p.Y[:, 0], p.beta, enumerate_patterns(p.X, bias=bias), bias=bias
    )
    # CERTIFIED beyond the cap means a relative gap ≤ 1e-6 (TOL_BEYOND_CAP)
    assert ref * (1 - 5e-8) <= opt.objective <= ref * (1 + 1e-6)
    assert ref * (1 - 1e-6) <= opt.lower_bound <= ref * (1 + 5e-8)
    assert opt.m_star <= n + 1


@pytest.mark.slow
@pytest.mark.reference
def test_no_multistart_network_below_an_oracle_certified_pstar() -> None:
    from tests.lbfgs import lbfgs_multistart

    p = _instance(14, 4, 77, 0.1, False)
    opt = solve_two_layer(p, cap=50, time_limit=120.0)
    assert opt.status is Status.CERTIFIED
    runs = lbfgs_multistart(p, width=max(2 * opt.m_star, 8), starts=6, seed=2, maxiter=3000)
    values = np.array([v for v, _ in runs])
    assert np.all(values >= opt.lower_bound * (1 - 1e-9)), (values, opt.lower_bound)


def test_time_limit_applies_beyond_the_cap_only() -> None:
    p = _instance(20, 3, 6, 0.1, False)  # 382 patterns: several column-generation rounds
    opt = solve_two_layer(p, time_limit=0.0)
    assert opt.status is Status.CERTIFIED and opt.info["rounds"] > 1


@pytest.mark.parametrize(("bias", "seed"), [(False, 5), (False, 7), (False, 0), (True, 3)])
def test_sampled_cells_are_priced_by_their_cone_maximum(bias: bool, seed: int) -> None:
    """Beyond the cap (cap = 50) the sampled cells (20,000 directions: every cell of 12 points
    in 3 dimensions) are priced by the exact maximum over each cell's cone, so the best violator
    equals c(λ) from the MIP oracle (independent, 1e-9) at the residual of a random network.
    Pricing only the cells whose unconstrained maximiser lies inside (before issue 17's
    profiling) found nothing at seeds 5 and 7 (value 0 vs 6.9 and 4.8) and 7.39 vs 7.95 at
    (bias, 3): the maximiser lies on a face there."""
    pytest.importorskip("pyscipopt")
    from solvers.arrangement import geometry, price
    from solvers.separation import dual_norm_oracle

    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    geo = geometry(X, bias, cap=50)
    assert not geo.exact
    p = Problem(X, y, 2, 0.1, "relu", bias=bias)
    W1, W2 = rng.standard_normal((3, 2)), rng.standard_normal((2, 1))
    net = Network(weights=(W1, W2), biases=(rng.standard_normal(2),) if bias else None)
    lam = y - forward(p, net)[:, 0]
    lam = lam - lam.mean() if bias else lam
    top, _ = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0)
    assert top.exact
    best, viol = price(geo, lam, beta=0.5 * top.value, top=8)
    assert best == pytest.approx(top.value, rel=1e-9)
    assert viol and viol[0][2] == pytest.approx(top.value, rel=1e-9)
    assert all(v <= top.upper * (1 + 1e-12) for _, _, v in viol)  # values are achieved


def _neighbour_violators(p: Problem, cap: int) -> tuple[list, np.ndarray, float]:
    """The neighbour pricing of column generation at the residual of the first restricted
    solve (a few blocks from the sampled cells), with the exact c(λ) of the enumeration."""
    import solvers.column_generation as cg
    from solvers.arrangement import geometry, price
    from solvers.relu_program import residual, solve_restricted

    geo = geometry(p.X, p.bias, cap=cap)
    y = p.Y[:, 0]
    _, viol = price(geo, y - y.mean() if p.bias else y, beta=0.0, top=6)
    Dw = np.array([D for D, _, _ in viol])
    s = np.array([float(sg) for _, sg, _ in viol])
    Z, const = solve_restricted(geo, y, p.beta, Dw, s, tol=1e-10)
    net, _, _, _ = cg.network_from_blocks(p, geo, s, Z, rel_drop=1e-9, const=const)
    lam = residual(p, net)
    exact, covered = dual_norm(p.X, lam, bias=p.bias)
    assert covered
    return cg._neighbours(geo, Dw, Z, lam, 0.5 * p.beta, 64), lam, exact


def _check_neighbours(p: Problem) -> None:
    """Every neighbour violator's value is the maximum over its pattern's cone (cvxpy,
    independent, 1e-6) and never above the exact c(λ)."""
    viol, lam, exact = _neighbour_violators(p, cap=50)
    assert viol
    Xt = np.hstack([p.X, np.ones((p.n, 1))]) if p.bias else p.X
    for D, sg, v in viol[:4]:
        z = cp.Variable(Xt.shape[1])
        cons = [cp.multiply(2.0 * D - 1.0, Xt @ z) >= 0, cp.norm(z[: p.d], 2) <= 1]
        ref = cp.Problem(cp.Maximize(sg * (lam * D) @ (Xt @ z)), cons).solve()
        assert v == pytest.approx(ref, rel=1e-6, abs=1e-9)
        assert v <= exact * (1 + 1e-12)


@pytest.mark.parametrize(("bias", "seed"), [(False, 1), (True, 2)])
def test_neighbour_cells_are_valid_blocks(bias: bool, seed: int) -> None:
    """Column generation also prices the cells next to its active blocks (one near point
    flipped; :func:`solvers.column_generation._neighbours`): :func:`_check_neighbours`."""
    _check_neighbours(_instance(12, 3, seed, 0.1, bias))


def test_neighbour_pricing_that_ignores_the_cone_fails(monkeypatch) -> None:  # noqa: ANN001
    """The same check catches a pricing that ignores the cone (‖X̃ᵀDλ‖ per flipped pattern)."""
    import solvers.column_generation as cg

    def unconstrained(geo, lam, *, beta, top):  # noqa: ANN001, ANN202
        G = geo.patterns.astype(float) @ (lam[:, None] * geo.Xt)
        val = np.linalg.norm(G, axis=1)
        return 0.0, [(D, 1, float(v)) for D, v in zip(geo.patterns, val, strict=True) if v > beta]

    monkeypatch.setattr(cg, "price", unconstrained)
    with pytest.raises(AssertionError):
        _check_neighbours(_instance(12, 3, 1, 0.1, False))
