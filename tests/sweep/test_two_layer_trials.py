"""Trial fields of THEORY §10 (sweep.trial): exact/certified optima log P*, family, m* and the
neuron alignment; brackets and not-covered points log [lower_bound, upper_bound] and never an
exact value.

The bracket / certified paths are driven through the real engine (run_batch) with ``solve``
replaced by one returning a typed Optimum built from an independently known optimum (THEORY §3
on whitened data, where §10's program and §3's closed form have the same P* and network), so
the expected numbers come from that closed form, not from the code under test. The real §10
solver is exercised by the last tests, which skip until ``solvers.two_layer`` exists.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

import sweep.trial as trial
from solvers import Network, NotCovered, Problem, objective, solve
from solvers.dual import certificate
from solvers.problem import Optimum
from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec
from sweep.trial import make_problem, neuron_alignment, run_batch


def _dispatched() -> bool:
    """solve() reaches THEORY §10's solver (H-twolayer's solvers.two_layer) on general data."""
    if importlib.util.find_spec("solvers.two_layer") is None:
        return False
    X = np.random.default_rng(0).standard_normal((6, 2))
    try:
        return solve(Problem(X, X[:, 0] ** 2, depth=2, beta=0.1, activation="relu")).family == (
            "relu_two_layer"
        )
    except NotCovered:
        return False


HAVE_TWO_LAYER = _dispatched()


def relu_spec(*, kind: str = "whitened", seed: int = 0, depth: int = 2, **train) -> TrialSpec:
    return TrialSpec(
        data=DataSpec(kind=kind, targets="gaussian", n=8, d=12, outputs=1),
        model=ModelSpec(depth=depth, width=6, activation="relu"),
        train=TrainSpec(
            **{"beta": 0.2, "steps": 300, "lr": 0.02, "momentum": 0.9, "log_every": 50, **train}
        ),
        seed=seed,
    )


def closed_form(spec: TrialSpec) -> tuple[Problem, Optimum]:
    p = make_problem(spec)
    opt = solve(p)
    assert opt.family == "relu_whitened"
    return p, opt


def net_of(W1: np.ndarray, a: np.ndarray) -> Network:
    return Network(weights=(np.asarray(W1, float), np.asarray(a, float).reshape(-1, 1)))


# ---------------------------------------------------------------- the alignment measure


def test_neuron_alignment_is_one_for_the_optimum_up_to_permutation_scale_and_dead_neurons() -> None:
    p, opt = closed_form(relu_spec(seed=3))
    W1, a = (np.asarray(w, float) for w in opt.network.weights)
    W1, a = W1.reshape(p.d, -1), a.reshape(-1)
    assert neuron_alignment(p, opt.network, opt.network) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(0)
    perm = rng.permutation(W1.shape[1])
    c = rng.uniform(0.5, 2.0, size=W1.shape[1])  # rescale w_j → c w_j, a_j → a_j / c
    tiny = 1e-9 * rng.standard_normal((p.d, 3))  # dead neurons: below ACTIVE_TOL
    trained = net_of(
        np.hstack([(W1 * c)[:, perm], tiny]), np.concatenate([(a / c)[perm], [1, 1, 1]])
    )
    assert neuron_alignment(p, trained, opt.network) == pytest.approx(1.0, abs=1e-12)


def test_neuron_alignment_drops_when_an_optimal_neuron_is_missing_or_mirrored() -> None:
    p, opt = closed_form(relu_spec(seed=4))
    W1, a = (np.asarray(w, float) for w in opt.network.weights)
    W1, a = W1.reshape(p.d, -1), a.reshape(-1)
    strength = np.linalg.norm(W1, axis=0) * np.abs(a)
    active = np.flatnonzero(strength > 0)
    assert len(active) == 2  # §3: one neuron for y+, one for y−
    # keep only the first active neuron: Σ_k ω_k max_j cos = ω_1 + ω_2 cos(u_2, u_1)
    keep = active[0]
    trained = net_of(W1[:, [keep]], a[[keep]])
    u = W1[:, active] / np.linalg.norm(W1[:, active], axis=0)
    omega = strength[active] / strength[active].sum()
    want = omega[0] + omega[1] * float(u[:, 1] @ u[:, 0])
    got = neuron_alignment(p, trained, opt.network)
    assert got == pytest.approx(want, abs=1e-12)
    assert got < 1 - 0.1  # the measure can fail
    mirrored = net_of(-W1, a)
    assert neuron_alignment(p, mirrored, opt.network) <= 0.0
    assert neuron_alignment(p, net_of(np.zeros_like(W1), a), opt.network) == 0.0


# ---------------------------------------------------------------- through the engine


def _patched_solve(monkeypatch, make):
    real = trial.solve

    def fake(problem):
        return make(problem, real(problem))

    monkeypatch.setattr(trial, "solve", fake)


def _shrunk_bracket(problem: Problem, opt: Optimum, scale: float) -> Optimum:
    """A bracket around the true P*: a feasible network above it (output layer times ``scale``)
    and the lower bound ``P*/2``."""
    W1, W2 = opt.network.weights
    feasible = Network(weights=(W1, scale * W2))
    return Optimum(
        objective=float(objective(problem, feasible)),
        weights=list(feasible.weights),
        family="relu_two_layer",
        status="bracket",
        lower_bound=0.5 * opt.objective,
        network=feasible,
    )


def test_certified_two_layer_optimum_logs_p_star_m_star_and_alignment(monkeypatch) -> None:
    def certified(problem, opt):
        return dataclasses.replace(
            opt,
            family="relu_two_layer",
            status="certified",
            lower_bound=opt.objective * (1 - 1e-9),
            rel_gap=0.0,
            m_star=2,
            directions=None,
        )

    _patched_solve(monkeypatch, certified)
    specs = [relu_spec(seed=s) for s in (0, 1)]
    for spec, r in zip(specs, run_batch(specs), strict=True):
        assert r.status == "finished", r.error
        p, opt = closed_form(spec)
        assert r.family == "relu_two_layer"
        assert r.exact_objective == pytest.approx(opt.objective, rel=1e-15)
        assert r.m_star == 2
        assert r.extra["optimum_rel_gap"] == pytest.approx(1e-9, rel=1e-6)
        assert r.upper_bound is None and r.lower_bound is None and r.bracket_rel_width is None
        assert r.not_covered is None
        assert -1.0 <= r.w1_alignment <= 1.0
        m = r.metrics()
        assert {"exact_objective", "m_star", "w1_alignment", "certified_gap"} <= set(m)
        assert "bracket_rel_width" not in m


def test_bracket_logs_bounds_and_the_reason_never_an_exact_value(monkeypatch) -> None:
    _patched_solve(monkeypatch, lambda problem, opt: _shrunk_bracket(problem, opt, 0.8))
    spec = relu_spec(seed=2, steps=5, lr=1e-4)  # barely trained: its objective is far above P*
    (r,) = run_batch([spec])
    assert r.status == "finished", r.error
    p, opt = closed_form(spec)
    upper = float(
        objective(p, Network(weights=(opt.network.weights[0], 0.8 * opt.network.weights[1])))
    )
    assert r.exact_objective is None and r.rel_gap is None
    assert "exact_objective" not in r.metrics()
    assert r.upper_bound == pytest.approx(min(upper, r.sgd_objective), rel=1e-12)
    assert r.lower_bound >= 0.5 * opt.objective
    assert r.lower_bound <= opt.objective * (1 + 1e-9)  # still a valid bound on the true P*
    assert r.lower_bound <= r.upper_bound
    width = (r.upper_bound - r.lower_bound) / r.upper_bound
    assert r.bracket_rel_width == pytest.approx(width, rel=1e-12)
    assert "bracket" in r.not_covered and "relu_two_layer" in r.not_covered
    assert r.w1_alignment is None and r.m_star is None


def test_a_bracket_wider_than_the_trial_is_refit_at_the_trials_width(monkeypatch) -> None:
    """A bracket whose network has more neurons than the trial (raw K = 3 at width 10 in
    ``deep_relu``): its value is no width-m value, so the upper end is a width-m network's (the
    refit, or the trained one). Reference: on whitened data a single ReLU neuron is one of §3's
    two paths, so ``P*_1 = ½‖y‖² − ½ max(‖y_+‖ − β, ‖y_−‖ − β, 0)²`` in closed form; the
    bracket's two-neuron network lies below it, so taking its value would fail the check."""

    def bracket(problem, opt):
        return _shrunk_bracket(problem, opt, 0.95)

    _patched_solve(monkeypatch, bracket)
    spec = dataclasses.replace(
        relu_spec(seed=3), model=ModelSpec(depth=2, width=1, activation="relu")
    )
    (r,) = run_batch([spec])
    assert r.status == "finished", r.error
    p = make_problem(spec)
    wide = bracket(p, solve(dataclasses.replace(p, width=None)))
    y = p.Y.reshape(-1)
    best_path = max(np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.minimum(y, 0))) - p.beta
    p1 = 0.5 * float(y @ y) - 0.5 * max(best_path, 0.0) ** 2
    assert np.sum(trial._live(wide.network)) == 2 and wide.objective < p1 * (1 - 1e-3)  # a trap
    assert r.upper_bound >= p1 * (1 - 1e-9)
    searched = r.extra["width_search_objective"]
    assert p1 * (1 - 1e-9) <= searched and r.upper_bound <= searched
    p_star = solve(dataclasses.replace(p, width=None)).objective  # any width: below P*_1
    assert 0.5 * p_star <= r.lower_bound <= p_star * (1 + 1e-9)
    assert "bracket" in r.not_covered


def test_not_covered_points_log_the_best_certified_bracket() -> None:
    """Deep ReLU on raw Gaussian data (no closed form, not §10): [certificate, trained objective]."""
    spec = relu_spec(kind="gaussian", depth=3, seed=0)
    (r,) = run_batch([spec])
    assert r.status == "finished", r.error
    assert r.exact_objective is None and r.not_covered
    p = make_problem(spec)
    assert r.lower_bound == pytest.approx(r.certificate, rel=1e-15)
    assert r.upper_bound >= r.lower_bound
    assert r.upper_bound <= r.sgd_objective * (1 + 1e-12)
    assert r.bracket_rel_width == pytest.approx(
        (r.upper_bound - r.lower_bound) / r.upper_bound, rel=1e-12
    )
    assert r.lower_bound <= 0.5 * float(np.sum(p.Y**2))  # never above P* ≤ ½‖y‖²


def test_closed_form_relu_trials_log_m_star() -> None:
    (r,) = run_batch([relu_spec(seed=5)])
    assert r.family == "relu_whitened" and r.m_star == 2
    assert r.upper_bound is None


# ---------------------------------------------------------------- the real §10 solver


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_TWO_LAYER, reason="solve() does not dispatch to THEORY §10 yet (H-twolayer)"
)
@pytest.mark.parametrize("bias", [False, True])
def test_real_two_layer_solver_on_gaussian_data(bias: bool) -> None:
    spec = TrialSpec(
        data=DataSpec(kind="gaussian", targets="gaussian", n=12, d=2, outputs=1),
        model=ModelSpec(depth=2, width=30, activation="relu", bias=bias),
        train=TrainSpec(beta=0.1, steps=400, lr=0.02, momentum=0.9, polish=50, log_every=100),
    )
    (r,) = run_batch([spec])
    assert r.status == "finished", r.error
    assert r.family == "relu_two_layer", r.not_covered
    p = make_problem(spec)
    assert r.exact_objective <= r.sgd_objective * (1 + 1e-8)
    assert r.certificate <= r.exact_objective * (1 + 1e-8)
    assert 1 <= r.m_star <= p.n + 1
    assert -1.0 <= r.w1_alignment <= 1.0 + 1e-12
    # the certificate of the optimal network itself is tight (THEORY §10)
    opt = solve(p)
    assert certificate(p, opt.network) == pytest.approx(opt.objective, rel=1e-6)


# ---------------------------------------------------------------- the sweep's summary table


def test_summary_table_shows_trials_with_p_star_and_the_bracket_per_axis_value() -> None:
    from sweep.config import load
    from sweep.grid import expand
    from sweep.progress import summary_table
    from sweep.schema import TrialResult

    specs = expand(load({"data": {"whiten": ["none", "zca"]}, "seed": [0, 1]}))
    pairs = []
    for s in specs:
        if s.data.whiten == "zca":  # P* known
            r = TrialResult(key=s.key, status="finished", sgd_objective=1.1, exact_objective=1.0)
        else:  # bracket only: width (1.0 − 0.5)/1.0 for seed 0, (1.0 − 0.8)/1.0 for seed 1
            lower = 0.5 if s.seed == 0 else 0.8
            r = TrialResult(
                key=s.key,
                status="finished",
                sgd_objective=1.0,
                certificate=lower,
                upper_bound=1.0,
                lower_bound=lower,
                bracket_rel_width=1.0 - lower,
            )
        pairs.append((s, r))
    lines = summary_table(pairs).splitlines()
    header = lines[0].split()
    rows = {line.split()[0]: dict(zip(header, line.split()[1:], strict=True)) for line in lines[1:]}
    assert rows["data.whiten=zca"]["with_P*"] == "2"
    assert rows["data.whiten=zca"]["median_bracket"] == "NaN"
    assert rows["data.whiten=none"]["with_P*"] == "0"
    assert float(rows["data.whiten=none"]["median_bracket"]) == pytest.approx(0.35, abs=1e-3)
    assert float(rows["seed=0"]["median_bracket"]) == pytest.approx(0.5, abs=1e-3)


# ---------------------------------------------------------------- widths below m*


@pytest.mark.parametrize("activation,outputs,width", [("relu", 1, 1), ("linear", 3, 2)])
def test_a_width_below_m_star_logs_p_star_of_any_width_as_a_bound(activation, outputs, width):
    """§3 (ReLU, m* = 2 paths) and §1 (linear, rank 3 for K = 3 at small β) on whitened data:
    the width-m problem's P* is unknown, the any-width P* (computed here with width=None,
    independently of the engine) bounds it from below and is logged as such, never as P*."""
    spec = TrialSpec(
        data=DataSpec(kind="whitened", targets="gaussian", n=8, d=12, outputs=outputs),
        model=ModelSpec(depth=2, width=width, activation=activation),
        train=TrainSpec(beta=0.05, steps=300, lr=0.02, log_every=100, polish=30),
    )
    (r,) = run_batch([spec])
    assert r.status == "finished", r.error
    p = make_problem(spec)
    wide = solve(Problem(p.X, p.Y, depth=2, beta=p.beta, activation=activation))
    assert wide.m_star > width
    assert r.exact_objective is None and r.rel_gap is None
    assert r.m_star == wide.m_star
    assert r.extra["p_star_any_width"] == pytest.approx(wide.objective, rel=1e-15)
    assert r.lower_bound == pytest.approx(wide.objective, rel=1e-15)
    assert r.certificate <= wide.objective * (1 + 1e-12)
    assert r.upper_bound >= r.lower_bound
    assert f"width {width} is below" in r.not_covered and "p_star_any_width" in r.not_covered
    assert r.p_star_kind == "attained"  # no bias: a finite network reaches the any-width P*
    # the narrow net cannot reach P*: it is short of m* - m neurons / rank
    assert r.upper_bound > wide.objective * (1 + 1e-6)
    if activation == "relu":  # the wide optimum's neurons refit at width m: in the upper end
        searched = r.extra["width_search_objective"]
        assert wide.objective * (1 - 1e-9) <= searched and r.upper_bound <= searched
        assert r.sgd_objective != searched  # SGD's value stays SGD's
        # §3's two paths are the only optimal neurons: proven minimal, so P*_1 > P* strictly
        assert r.extra["min_width"] == r.extra["min_width_lower"] == wide.m_star
        assert "(proven, solvers.min_width)" in r.not_covered
    else:
        assert "width_search_objective" not in r.extra
        assert "min_width" not in r.extra  # linear nets: not covered


@pytest.mark.skipif(
    not HAVE_TWO_LAYER, reason="solve() does not dispatch to THEORY §10 yet (H-twolayer)"
)
def test_spline_trials_carry_p_star() -> None:
    """THEORY §5 / E6: 1-D data with biases is §10's program with a bias column, for every β;
    depth 2 logs P* (never above the trained objective), depth 3 a certified bracket."""
    specs = [
        TrialSpec(
            data=DataSpec(kind="spline_1d", targets="signed", n=6, d=1, outputs=1),
            model=ModelSpec(depth=depth, width=12, activation="relu", bias=True),
            train=TrainSpec(beta=0.01, steps=500, lr=0.002, polish=100, log_every=100),
            experiment="E6",
        )
        for depth in (2, 3)
    ]
    two, three = (run_batch([s])[0] for s in specs)
    assert two.status == three.status == "finished", (two.error, three.error)
    assert two.family == "relu_two_layer", two.not_covered
    assert two.exact_objective <= min(two.sgd_objective, two.polished_objective) * (1 + 1e-8)
    assert two.certificate <= two.exact_objective * (1 + 1e-8)
    assert two.m_star >= 1
    assert three.exact_objective is None and three.not_covered
    assert three.lower_bound <= three.upper_bound


def test_trials_differing_only_in_width_share_one_solve(monkeypatch) -> None:
    calls = []
    real = trial.solve

    def counting(problem):
        calls.append(problem.width)
        return real(problem)

    monkeypatch.setattr(trial, "solve", counting)
    monkeypatch.setattr(trial, "_SOLVED", type(trial._SOLVED)())
    specs = [
        dataclasses.replace(relu_spec(seed=9), model=ModelSpec(depth=2, width=w, activation="relu"))
        for w in (1, 4, 8)
    ]
    results = [run_batch([s])[0] for s in specs]
    assert calls == [None]  # one solve, at width=None, for the three widths
    fresh = solve(make_problem(specs[1]))  # widths ≥ m* = 2 get exactly the fresh optimum
    assert results[1].exact_objective == results[2].exact_objective == fresh.objective
    assert results[0].extra["p_star_any_width"] == fresh.objective
    # a different β is a different problem: solved again
    run_batch([relu_spec(seed=9, beta=0.3)])
    assert calls == [None, None]


def test_a_width_below_the_proven_minimum_says_so_and_a_proven_narrower_one_gets_p_star():
    """Whitened K = 3 (seed 3 of tests/solvers/test_min_width.py): the optimum found has m* = 7
    neurons, solvers.min_width proves every optimal network has 5. Width 5 (< m*) gets P* with
    a 5-neuron network (not a bracket); width 4 is recorded as P*_4 > P* strictly, proven."""
    rng = np.random.default_rng(3)
    X = np.linalg.qr(rng.standard_normal((12, 8)))[0].T
    Y = rng.standard_normal((8, 3))
    wide = solve(Problem(X, Y, depth=2, beta=0.3, activation="relu"))
    five, _, why5 = trial._optimum(Problem(X, Y, depth=2, beta=0.3, activation="relu", width=5))
    assert wide.m_star > 5 and why5 is None
    assert five.is_exact and five.m_star == 5 and five.network.weights[0].shape[1] == 5
    assert five.objective <= wide.objective * (1 + 1e-9)
    assert five.objective >= five.lower_bound == wide.lower_bound
    assert objective(Problem(X, Y, depth=2, beta=0.3, activation="relu", width=5),
                     five.network) == five.objective  # fmt: skip
    none, found, why4 = trial._optimum(Problem(X, Y, depth=2, beta=0.3, activation="relu", width=4))
    assert none is None and found is not None
    assert "at least 5 neurons (proven" in why4 and "strictly above" in why4
