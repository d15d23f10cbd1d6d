"""The separation oracle (solvers.separation) against the exact c(λ) of the face enumeration
(solvers.two_layer.dual_norm): equal to 1e-9 (relative) wherever the enumeration reaches, with
and without the quadratic cut, at random λ and at the dual point of a solved problem (c(λ) = β
at several cells); an early-stopped oracle's bound never below the exact value; the target mode
(SCIP's objective limit) proves ``c ≤ target`` above the exact value and returns a violator
below it; a wrong cut fails these checks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyscipopt")

import solvers.separation as sep  # noqa: E402
from solvers import Problem  # noqa: E402
from solvers.problem import forward  # noqa: E402
from solvers.separation import (  # noqa: E402
    best_bias,
    dual_norm_oracle,
    local_search,
    max_relu_correlation,
)
from solvers.two_layer import dual_norm, solve_two_layer  # noqa: E402


def _instance(n: int, d: int, bias: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    return X, (lam - lam.mean() if bias else lam)


def _check_oracle(X: np.ndarray, lam: np.ndarray, bias: bool, **kw) -> float:
    """The oracle equals the enumeration's c(λ) to 1e-9 (relative), its bound is above it and its
    point achieves its value with ‖u‖ ≤ 1; returns the exact value."""
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    top, other = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0, **kw)
    assert max(top.upper, other.upper) >= exact * (1 - 1e-12)
    assert top.exact and other.exact
    assert top.value == pytest.approx(exact, rel=1e-9)
    assert np.linalg.norm(top.u) <= 1 + 1e-12
    achieved = float(top.sign * lam @ np.maximum(X @ top.u + top.b, 0.0))
    assert achieved == pytest.approx(top.value, rel=1e-12)
    assert np.array_equal(top.pattern, X @ top.u + top.b > 0)
    return exact


@pytest.mark.parametrize("cuts", [True, False])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("n", "d", "seed"), [(8, 1, 0), (10, 2, 1), (14, 3, 2), (9, 4, 3)])
def test_oracle_equals_enumeration(n: int, d: int, seed: int, bias: bool, cuts: bool) -> None:
    X, lam = _instance(n, d, bias, seed)
    _check_oracle(X, lam, bias, cuts=cuts)


def _dual_point(n: int, d: int, bias: bool, seed: int, beta: float) -> tuple[np.ndarray, ...]:
    """X and the residual at the certified optimum of a problem within the enumeration's reach:
    c(λ) = β there, attained at every active neuron (the hard case for a branch and bound)."""
    rng = np.random.default_rng(seed)
    p = Problem(rng.standard_normal((n, d)), rng.standard_normal(n), 2, beta, "relu", bias=bias)
    opt = solve_two_layer(p)
    assert opt.status.value == "certified"
    lam = p.Y[:, 0] - forward(p, opt.network)[:, 0]
    return p.X, (lam - lam.mean() if bias else lam), opt


@pytest.mark.parametrize(("n", "d", "bias", "seed"), [(24, 3, False, 0), (16, 3, True, 1)])
def test_oracle_at_the_dual_optimum_and_target(n: int, d: int, bias: bool, seed: int) -> None:
    beta = 0.1
    X, lam, opt = _dual_point(n, d, bias, seed, beta)
    exact = _check_oracle(X, lam, bias)
    assert exact == pytest.approx(beta, rel=1e-6)  # KKT: the constraint is active
    above = exact * (1 + 1e-7)
    top, other = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0, target=above)
    assert top.below_target and other.below_target  # proved c ≤ target ...
    assert min(top.upper, other.upper) >= 0 and max(top.upper, other.upper) >= exact
    assert max(top.upper, other.upper) <= above * (1 + 1e-7)  # ... and the bound says so
    assert top.value <= exact * (1 + 1e-12)
    below = exact * (1 - 1e-3)  # a violator exists: returned, never claimed below
    top, _ = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0, target=below)
    assert top.value > below and not top.below_target
    assert top.value <= exact * (1 + 1e-12) and top.upper >= exact * (1 - 1e-12)


@pytest.mark.parametrize("target", [0.5, 0.999, 1.001, 2.0])
def test_target_brackets_random_lambda(target: float) -> None:
    X, lam = _instance(14, 3, False, 4)
    exact, _ = dual_norm(X, lam)
    t = target * exact
    for res in dual_norm_oracle(X, lam, time_limit=60.0, target=t):
        assert res.value <= exact * (1 + 1e-12)
    for first in (False, True):
        top, other = dual_norm_oracle(X, lam, time_limit=60.0, target=t, first_violator=first)
        assert max(top.upper, other.upper) >= exact * (1 - 1e-12)
        assert top.value <= exact * (1 + 1e-12)
        if target > 1:
            assert top.below_target and other.below_target
        else:
            assert top.value > t and not top.below_target
            if not first:  # a violator: solved as without a target
                assert top.exact and top.value == pytest.approx(exact, rel=1e-9)


def test_a_wrong_cut_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quadratic cut with its right-hand side cut by 40% (no longer valid): the oracle's
    bound falls below the exact c(λ) and :func:`_check_oracle` catches it."""
    X, lam = _instance(14, 3, False, 2)
    _check_oracle(X, lam, False, cuts=True)
    right = sep._norm_cut
    monkeypatch.setattr(sep, "_norm_cut", lambda *a: (right(*a)[0], 0.6 * right(*a)[1]))
    with pytest.raises(AssertionError):
        _check_oracle(X, lam, False, cuts=True)


@pytest.mark.parametrize("cuts", [True, False])
@pytest.mark.parametrize("bias", [False, True])
def test_early_stopped_bound_is_above_the_exact_value(bias: bool, cuts: bool) -> None:
    X, lam = _instance(20, 3, bias, 7) if bias else _instance(30, 4, bias, 7)
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    for sg in (1, -1):
        res = max_relu_correlation(X, sg * lam, bias=bias, time_limit=0.05, cuts=cuts)
        assert res.value <= exact * (1 + 1e-12)
    stopped = dual_norm_oracle(X, lam, bias=bias, time_limit=0.1, cuts=cuts)
    assert max(r.upper for r in stopped) >= exact * (1 - 1e-12)
    assert stopped[0].value <= exact * (1 + 1e-12)


def test_unbounded_and_trivial() -> None:
    X, lam = _instance(6, 2, True, 0)
    res = max_relu_correlation(X, lam + 0.1, bias=True)  # 1ᵀλ > 0: b → ∞
    assert res.upper == np.inf and not res.exact
    res = max_relu_correlation(X, -np.abs(lam))  # λ ≤ 0 without bias: 0 at u = 0
    assert res.value == 0.0 and res.upper == 0.0 and res.exact
    with pytest.raises(ValueError, match="lam has 5 entries"):
        max_relu_correlation(X, lam[:5])


def test_best_bias_is_the_maximum_over_a_grid() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 9))
    lam = rng.standard_normal(9)
    lam -= lam.mean()
    val, b = best_bias(A, lam)
    grid = np.linspace(-6, 6, 24001)
    for k in range(4):
        brute = np.max(np.maximum(A[k][None, :] + grid[:, None], 0.0) @ lam)
        assert val[k] >= brute - 1e-12
        assert val[k] == pytest.approx(max(float(np.maximum(A[k] + b[k], 0) @ lam), 0.0))
    assert val.max() <= np.max(np.maximum(A[:, None, :] + grid[None, :, None], 0) @ lam) + 1e-3


def test_local_search_value_is_achieved_and_below_exact() -> None:
    X, lam = _instance(12, 3, False, 5)
    exact, _ = dual_norm(X, lam)
    res = local_search(X, lam)
    assert res.upper == np.inf
    assert res.value <= exact * (1 + 1e-12)
    assert res.value == pytest.approx(float(lam @ np.maximum(X @ res.u, 0.0)), rel=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_cut_on_many_points_brackets_the_enumeration(bias: bool) -> None:
    """The cut (on by default without bias from ``CUT_MIN_POINTS`` points with λ_i > 0) at
    n = 140, d = 2, where SCIP may not finish in 20 s: its bracket holds the exact value. The bias instance caught an
    earlier form of the cut (``a_i = h_i − k_i`` as an equality: SCIP returned an "optimal"
    bound 4.8e-6 below the enumeration's value)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((140, 2))
    lam = rng.standard_normal(140) + 1.0
    if bias:  # 1ᵀλ = 0 with 120 positive entries
        lam = rng.exponential(1.0, 140)
        lam[:20] = -lam[20:].sum() / 20
    assert np.sum(lam > 0) >= sep.CUT_MIN_POINTS
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    res = [
        max_relu_correlation(X, sg * lam, bias=bias, time_limit=20.0, cuts=True) for sg in (1, -1)
    ]
    assert max(r.value for r in res) <= exact * (1 + 1e-12)
    assert max(r.upper for r in res) >= exact * (1 - 1e-12)


def test_scip_lp_error_with_the_cut_falls_back_to_the_plain_program() -> None:
    """On this instance SCIP stops with "error in LP solver" (unresolved numerical trouble in
    an LP) when the cut is on; the oracle then solves without it: still exact, no exception."""
    rng = np.random.default_rng(1094)
    n, d = int(rng.integers(10, 60)), int(rng.integers(1, 4))
    X = rng.standard_normal((n, d))
    lam = rng.exponential(1.0, n)
    lam[: n // 7] = -lam[n // 7 :].sum() / (n // 7)
    _check_oracle(X, lam, False, cuts=True)


@pytest.mark.parametrize("bias", [False, True])
def test_stall_nodes_stops_at_a_violator_and_still_proves_below_target(bias: bool) -> None:
    """``stall_nodes`` (column generation's early stop): above the exact value SCIP finds no
    point above the target, the stall limit fires anyway and the oracle must go on to the proof
    (``below_target``, bound at the target; stopping there would leave SCIP's loose bound);
    below it the oracle returns a violator and a bound that is still above the exact value."""
    X, lam = _instance(24, 3, bias, 11)
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    above = exact * (1 + 1e-6)
    for sg in (1, -1):  # each sign's maximum is at most c(λ)
        res = max_relu_correlation(X, sg * lam, bias=bias, target=above, stall_nodes=1)
        assert res.below_target and res.upper <= above * (1 + 1e-7)
        assert res.value <= exact * (1 + 1e-12)
    below = exact * (1 - 0.2)
    top, other = dual_norm_oracle(X, lam, bias=bias, target=below, stall_nodes=1)
    assert top.value > below and not top.below_target
    assert top.value <= exact * (1 + 1e-12)
    assert max(top.upper, other.upper) >= exact * (1 - 1e-12)


def _cell_max(X: np.ndarray, lam: np.ndarray, pattern: np.ndarray, bias: bool) -> float:
    """max λᵀD(Xu + b) over the cell of ``pattern`` (``(2D − I)(Xu + b) ≥ 0``, ‖u‖ ≤ 1): cvxpy,
    the independent reference for a pool point's cell."""
    cp = pytest.importorskip("cvxpy")
    u = cp.Variable(X.shape[1])
    b = cp.Variable() if bias else 0.0
    a = X @ u + b
    sgn = np.where(pattern, 1.0, -1.0)
    prob = cp.Problem(cp.Maximize((lam * pattern) @ a), [cp.multiply(sgn, a) >= 0, cp.norm(u) <= 1])
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


@pytest.mark.parametrize("bias", [False, True])
def test_pool_points_are_distinct_violated_cells(bias: bool) -> None:
    """``others`` (SCIP's pool above the target): each pattern is a cell whose maximum (cvxpy)
    reaches the reported value, above the target and at most the exact c(λ); patterns distinct."""
    X, lam = _instance(16, 3, bias, 5)
    exact, _ = dual_norm(X, lam, bias=bias)
    target = 0.3 * exact
    res = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0, target=target)
    seen = {(r.sign, r.pattern.tobytes()) for r in res if r.value > target}
    pool = [(r.sign, pt, v) for r in res for pt, v in r.others]
    assert pool, "a low target leaves violated points in the pool"
    for sg, pt, v in pool:
        assert target < v <= exact * (1 + 1e-12)
        assert (sg, pt.tobytes()) not in seen
        seen.add((sg, pt.tobytes()))
        assert _cell_max(X, sg * lam, pt, bias) >= v * (1 - 1e-7)
    assert all(not r.others for r in dual_norm_oracle(X, lam, bias=bias, time_limit=60.0))


@pytest.mark.parametrize("bias", [False, True])
def test_proofs_carried_to_a_new_dual_point_stay_upper_bounds(bias: bool) -> None:
    """Column generation's carried bounds (``_Proofs``: ``s(σλ) ≤ ū_k + c̄(λ − λ_k)``) are never
    below the enumeration's exact c(λ) at nearby and far dual points, and per sign never below
    an achieved value; with bias a non-centred step bounds nothing (∞). Without the step term
    the bound fails (shown at 1.5λ_k)."""
    from solvers.column_generation import _Proofs

    X, lam = _instance(14, 3, bias, 6)
    proofs = _Proofs(X, bias)
    proofs.add(lam, dual_norm_oracle(X, lam, bias=bias, time_limit=60.0))
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1e-3, 0.3):
        step = rng.standard_normal(lam.shape[0])
        new = lam + scale * np.linalg.norm(lam) * (step - step.mean() if bias else step)
        exact, _ = dual_norm(X, new, bias=bias)
        assert proofs.bound(new) >= exact * (1 - 1e-9)
        for sg in (1, -1):
            assert proofs.bound(new, sg) >= max_relu_correlation(X, sg * new, bias=bias).value
    assert proofs.bound(lam) == pytest.approx(dual_norm(X, lam, bias=bias)[0], rel=1e-6)
    far = 1.5 * lam
    assert proofs.bound(far) >= dual_norm(X, far, bias=bias)[0] * (1 - 1e-9)
    no_step = max(u for kept in proofs.kept.values() for _, u in kept)
    assert no_step < dual_norm(X, far, bias=bias)[0]  # the step term is what keeps it valid
    if bias:
        assert proofs.bound(lam + 1e-3) == np.inf
