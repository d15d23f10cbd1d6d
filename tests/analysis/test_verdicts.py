"""Every verdict can fail: the ideal store (``synthetic.ideal``, numbers exactly as THEORY
predicts) gives PASS everywhere; one perturbation at a time — objective raised, objective
below P*, ranks / ratios / cosines changed, certificate above P*, duality gaps moved, the E3
zero-optimum grid, too few trials, networks not at the optimum — must turn the matching check
FAIL (or INCONCLUSIVE, with its reason). Fast: hand-made frames, no training, no MLflow.
"""

from __future__ import annotations

import copy
import json

import pytest

from analysis import experiments as ex
from analysis import frame_from_results
from analysis.experiments import verdicts as vd
from analysis.report import check_lines, write_verdicts
from tests.analysis.synthetic import ideal

OURS = ("E1", "E2", "E3", "E4", "E5", "R1", "E6", "E7", "E8", "E9", "E10")


def _run(specs, results, eid: str) -> ex.Outcome:
    return ex.run(eid, frame_from_results(specs, results))


def _check(outcome: ex.Outcome, name: str) -> ex.Check:
    (check,) = [c for c in outcome.checks if c.name == name]
    return check


def _perturbed(eid: str, change) -> tuple[list, list]:
    """The ideal store with ``change(spec, result)`` applied to every trial of ``eid``."""
    specs, results = ideal()
    results = [copy.deepcopy(r) for r in results]
    for s, r in zip(specs, results, strict=True):
        if s.experiment == eid:
            change(s, r)
    return specs, results


def test_ideal_store_passes_everywhere() -> None:
    specs, results = ideal()
    for eid in OURS:
        out = _run(specs, results, eid)
        assert out.status is ex.Status.PASS, (eid, out.verdict)
        for c in out.checks:
            assert c.claim and c.measured and c.expected and c.seen and c.n >= vd.MIN_TRIALS, (
                eid,
                c,
            )


def _raise(factor: float, *, polished: bool = True):
    """SGD ends ``factor`` × P*; with ``polished`` the polish from there does too (stuck)."""

    def change(_s, r) -> None:
        r.sgd_objective = r.exact_objective * factor
        if polished and r.polished_objective is not None:
            r.polished_objective = r.exact_objective * factor

    return change


@pytest.mark.parametrize("eid", ["E1", "E2", "E3", "E4", "E5", "R1", "E7", "E10"])
def test_objective_raised_fails_reaches_optimum(eid: str) -> None:
    """SGD (and the polish from its end point) 2% above P*, beyond GD_TOL and SGD_TOL, in one
    experiment: its "reaches P*" FAILs."""
    specs, results = _perturbed(eid, _raise(1.02))
    out = _run(specs, results, eid)
    assert out.status is ex.Status.FAIL
    failing = [c for c in out.checks if c.status is ex.Status.FAIL]
    assert failing and all(c.name.endswith("reaches P*") for c in failing), out.verdict
    assert "stopped above P*" in failing[0].reason
    # and the other experiments still pass
    assert _run(specs, results, "E5" if eid != "E5" else "E1").status is ex.Status.PASS


@pytest.mark.parametrize("eid", ["E1", "E3", "E5", "E7"])
def test_objective_below_p_star_refutes_the_closed_form(eid: str) -> None:
    specs, results = _perturbed(eid, _raise(1 - 1e-6))
    check = _check(_run(specs, results, eid), "reaches P*")
    assert check.status is ex.Status.FAIL and "below P*" in check.reason


@pytest.mark.parametrize("eid", ["E1", "E5", "R1", "E7", "E10"])
def test_sgd_short_of_p_star_but_polish_reaches_it_is_not_converged(eid: str) -> None:
    """SGD 2% above P* while the L-BFGS polish from its end point reaches P*: SGD ran out of
    steps — INCONCLUSIVE, "did not converge" — never PASS."""
    specs, results = _perturbed(eid, _raise(1.02, polished=False))
    out = _run(specs, results, eid)
    check = [c for c in out.checks if c.name.endswith("reaches P*")][0]
    assert check.status is ex.Status.INCONCLUSIVE and "did not converge" in check.reason
    assert out.status is ex.Status.INCONCLUSIVE


def test_polish_that_makes_no_progress_means_stuck() -> None:
    """SGD 1e-3 above P*; the polish from there ends 2e-5 above (50× closer: not 100×) → FAIL;
    ends 5e-6 above (200× closer, though not within 1e-6) → did not converge."""

    def change(polished: float):
        def f(_s, r) -> None:
            r.sgd_objective = r.exact_objective * (1 + 1e-3)
            r.polished_objective = r.exact_objective * (1 + polished)

        return f

    specs, results = _perturbed("E5", change(2e-5))
    assert _check(_run(specs, results, "E5"), "reaches P*").status is ex.Status.FAIL
    specs, results = _perturbed("E5", change(5e-6))
    check = _check(_run(specs, results, "E5"), "reaches P*")
    assert check.status is ex.Status.INCONCLUSIVE and "did not converge" in check.reason


def test_e4_minibatch_noise_floor_is_the_threshold() -> None:
    """E4 trains by minibatch SGD: 5e-4 passes (THEORY §8 floor 1e-3), 2e-3 fails."""
    specs, results = _perturbed("E4", _raise(1 + 2e-3))
    assert _check(_run(specs, results, "E4"), "reaches P*").status is ex.Status.FAIL


def test_e1_rank_changed_fails() -> None:
    def change(s, r) -> None:
        if s.train.beta == 1.0:
            r.layers[0].rank += 1

    specs, results = _perturbed("E1", change)
    out = _run(specs, results, "E1")
    assert _check(out, "rank").status is ex.Status.FAIL and out.status is ex.Status.FAIL
    assert _check(out, "rank").seen.startswith("3/4")


def test_e2_hidden_ratio_fails_but_the_last_layer_is_never_counted() -> None:
    def hidden(_s, r) -> None:
        r.layers[1].norm_ratio = 0.99

    specs, results = _perturbed("E2", hidden)
    assert _check(_run(specs, results, "E2"), "hidden layers rank one").status is ex.Status.FAIL

    def last(_s, r) -> None:
        r.layers[-1].norm_ratio = 0.5  # not a hidden layer: ratio 1 by definition for K = 1

    specs, results = _perturbed("E2", last)
    assert _run(specs, results, "E2").status is ex.Status.PASS


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("rank one", lambda s, r: setattr(r.layers[0], "norm_ratio", 0.99)),
        ("aligned", lambda s, r: setattr(r.layers[0], "align_next", 0.98)),
        ("W₁ direction", lambda s, r: setattr(r, "w1_alignment", 0.98)),
    ],
)
def test_e3_structure_changed_fails(name: str, change) -> None:
    specs, results = _perturbed("E3", change)
    out = _run(specs, results, "E3")
    assert _check(out, name).status is ex.Status.FAIL and out.status is ex.Status.FAIL


def test_e3_zero_optimum_grid_is_inconclusive() -> None:
    """β so large that P* = ½‖y‖² (the old E3 grid): every trial is left out, INCONCLUSIVE,
    even with nonsense structure (round-off of a zero network)."""

    def zero(_s, r) -> None:
        r.extra["null_objective"] = r.exact_objective
        r.extra["predicted_rank"] = 0.0
        r.layers[0].norm_ratio = 0.3  # what underflowing weights give

    specs, results = _perturbed("E3", zero)
    out = _run(specs, results, "E3")
    assert out.status is ex.Status.INCONCLUSIVE
    guard = _check(out, "non-zero optimum")
    assert "P* = ½‖Y‖²" in guard.reason and guard.seen.startswith("3/3")
    # stores without null_objective: the optimum's rank 0 says the same
    for r in results:
        r.extra.pop("null_objective", None)
    assert _run(specs, results, "E3").status is ex.Status.INCONCLUSIVE
    # one zero trial among good ones: still INCONCLUSIVE (the grid tests less than it says)
    specs, results = ideal()
    (first,) = [r for s, r in zip(specs, results, strict=True) if s.experiment == "E3"][:1]
    first.extra["null_objective"] = first.exact_objective
    out = _run(specs, results, "E3")
    assert out.status is ex.Status.INCONCLUSIVE and len(out.data) == 2


def test_e1_keeps_rank_zero_trials_but_not_an_all_zero_grid() -> None:
    specs, results = ideal()
    assert _run(specs, results, "E1").status is ex.Status.PASS  # one trial has rank 0 on purpose

    def zero(_s, r) -> None:
        r.extra["null_objective"] = r.exact_objective
        r.extra["predicted_rank"] = 0.0
        r.layers[0].rank = 0

    specs, results = _perturbed("E1", zero)
    assert _run(specs, results, "E1").status is ex.Status.INCONCLUSIVE


@pytest.mark.parametrize("eid", ["E5", "R1"])
def test_w1_alignment_changed_fails(eid: str) -> None:
    specs, results = _perturbed(eid, lambda s, r: setattr(r, "w1_alignment", 0.95))
    assert _run(specs, results, eid).status is ex.Status.FAIL


def test_structure_not_at_the_optimum_is_inconclusive() -> None:
    """A final network 1e-3 above P* says nothing about the optimum's structure."""

    def far(_s, r) -> None:
        r.polished_objective = r.exact_objective * (1 + 1e-3)
        r.w1_alignment = 0.5

    specs, results = _perturbed("E5", far)
    check = _check(_run(specs, results, "E5"), "neurons aligned")
    assert check.status is ex.Status.INCONCLUSIVE and "did not converge" in check.reason


def test_too_few_trials_is_inconclusive_but_one_counterexample_fails() -> None:
    specs, results = ideal()
    keep = [i for i, s in enumerate(specs) if s.experiment != "E5"]
    keep += [i for i, s in enumerate(specs) if s.experiment == "E5"][:2]
    sub_s, sub_r = [specs[i] for i in keep], [results[i] for i in keep]
    check = _check(_run(sub_s, sub_r, "E5"), "reaches P*")
    assert check.status is ex.Status.INCONCLUSIVE and "too few trials" in check.reason
    sub_r = [copy.deepcopy(r) for r in sub_r]
    for s, r in zip(sub_s, sub_r, strict=True):
        if s.experiment == "E5":
            r.sgd_objective *= 1.5
            r.polished_objective *= 1.5
    assert _check(_run(sub_s, sub_r, "E5"), "reaches P*").status is ex.Status.FAIL


def test_e6_share_below_threshold_fails_and_poor_fits_are_not_counted() -> None:
    specs, results = ideal()
    e6 = [r for s, r in zip(specs, results, strict=True) if s.experiment == "E6"]
    e6[0].extra["spline.share_near_data"] = 0.9
    assert _run(specs, results, "E6").status is ex.Status.FAIL
    e6[0].sgd_objective *= 10  # a poor fit (THEORY §5): shown, not counted
    out = _run(specs, results, "E6")
    assert "1 poor fits" in out.checks[0].seen and out.checks[0].n == 2


@pytest.mark.parametrize(
    ("targets", "metric", "value", "name"),
    [
        ("onehot_balanced", "nc.nc2_cosine_mean", -0.438, "NC2 balanced"),
        ("onehot_balanced", "nc.nc3_cosine_mean", 0.99, "NC3 balanced"),
        ("onehot", "nc.nc2_cosine_mean", -0.5, "NC2 unbalanced"),  # the ETF is wrong here
        ("onehot", "nc.nc3_cosine_mean", 1.0, "NC3 unbalanced"),
        ("onehot", "nc.nc1", 0.1, "NC1"),
    ],
)
def test_e7_collapse_changed_fails(targets: str, metric: str, value: float, name: str) -> None:
    def change(s, r) -> None:
        if s.data.targets == targets and s.seed == 1:
            r.extra[metric] = value

    specs, results = _perturbed("E7", change)
    out = _run(specs, results, "E7")
    assert _check(out, name).status is ex.Status.FAIL and out.status is ex.Status.FAIL


def test_e7_unbalanced_without_prediction_is_inconclusive() -> None:
    def change(s, r) -> None:
        for k in [k for k in r.extra if k.startswith("nc_opt.")]:
            del r.extra[k]

    specs, results = _perturbed("E7", change)
    out = _run(specs, results, "E7")
    assert _check(out, "NC2 balanced").status is ex.Status.PASS  # −1/(K−1) needs no prediction
    check = _check(out, "NC2 unbalanced")
    assert check.status is ex.Status.INCONCLUSIVE and "no prediction" in check.reason


@pytest.mark.parametrize(
    ("metric", "value", "name"),
    [
        ("rescaled.op_gap", 1e-3, "operator: P_R = D"),
        ("rescaled.fro_gap", 0.0, "Frobenius: D < P_R"),
        ("rescaled.fro_gap", -0.01, "Frobenius: D < P_R"),  # weak duality broken
    ],
)
def test_e8_duality_gaps_changed_fail(metric: str, value: float, name: str) -> None:
    def change(s, r) -> None:
        if s.seed == 2:
            r.extra[metric] = value

    specs, results = _perturbed("E8", change)
    assert _check(_run(specs, results, "E8"), name).status is ex.Status.FAIL


def test_e8_rank_one_optimum_is_not_counted_for_frobenius() -> None:
    def change(s, r) -> None:
        r.extra["predicted_rank"] = 1.0
        r.extra["rescaled.fro_gap"] = 0.0  # both balls coincide at rank one

    specs, results = _perturbed("E8", change)
    check = _check(_run(specs, results, "E8"), "Frobenius: D < P_R")
    assert check.status is ex.Status.INCONCLUSIVE and check.n == 0


@pytest.mark.parametrize(
    ("eid", "change", "name"),
    [
        (
            "E3",
            lambda s, r: setattr(r, "certificate", r.exact_objective * (1 + 1e-6)),
            "bound ≤ P*",
        ),
        ("E6", lambda s, r: setattr(r, "certificate", r.sgd_objective * 1.01), "bound ≤ objective"),
        (
            "E4",
            lambda s, r: r.extra.__setitem__("lower_bound", r.sgd_objective * 2),
            "bound ≤ objective",
        ),
    ],
)
def test_e9_certificate_above_fails(eid: str, change, name: str) -> None:
    specs, results = _perturbed(eid, change)
    out = _run(specs, results, "E9")
    assert _check(out, name).status is ex.Status.FAIL and out.status is ex.Status.FAIL


def test_verdicts_json_and_check_lines(tmp_path) -> None:
    specs, results = _perturbed("E4", _raise(1.5))
    outcomes = [_run(specs, results, eid) for eid in OURS]
    doc = json.loads(write_verdicts(outcomes, tmp_path).read_text())
    assert doc["status"] == "FAIL"
    assert [e["id"] for e in doc["experiments"]] == list(OURS)
    e4 = doc["experiments"][OURS.index("E4")]
    assert e4["status"] == "FAIL" and e4["checks"][0]["status"] == "FAIL"
    assert set(e4["checks"][0]) >= {
        "claim",
        "measured",
        "expected",
        "seen",
        "status",
        "reason",
        "n",
        "passed",
    }
    lines = check_lines(doc)
    assert len(lines) == len(OURS)
    assert lines[OURS.index("E4")].split()[:2] == ["E4", "FAIL"]
    assert lines[OURS.index("E1")].split()[:2] == ["E1", "PASS"]


def test_check_exit_status() -> None:
    from analysis.__main__ import exit_status

    def doc(*states: str) -> dict:
        return {
            "experiments": [{"id": f"E{i}", "status": s, "trials": 3} for i, s in enumerate(states)]
        }

    assert exit_status(doc("PASS", "PASS")) == 0
    assert exit_status(doc("PASS", "INCONCLUSIVE")) == 0
    assert exit_status(doc("PASS", "INCONCLUSIVE"), strict=True) == 1
    assert exit_status(doc("FAIL", "PASS")) == 1
    absent = doc("PASS", "INCONCLUSIVE")  # an experiment of another grid: no trial here
    absent["experiments"][1]["trials"] = 0
    assert exit_status(absent, strict=True) == 0


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_unbalanced_collapse_prediction_matches_the_closed_form_optimum(activation: str) -> None:
    """E7's derivation for random class sizes (``collapse_prediction``) against the NC
    statistics of solvers' §6 optimal network — what the trial logs as ``nc_opt.*``."""
    import numpy as np

    from analysis.experiments.e7_batchnorm import collapse_prediction
    from solvers import Problem
    from solvers.batchnorm import neural_collapse, solve_batchnorm
    from solvers.problem import last_hidden

    rng = np.random.default_rng(3)
    for counts in ([5, 6, 1], [2, 3, 7, 4], [4, 4, 4]):
        labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        n = labels.size
        Y = np.eye(len(counts))[labels]
        X = rng.standard_normal((n, n + 3)) / np.sqrt(n)
        for depth in (2, 3):
            p = Problem(X=X, Y=Y, depth=depth, beta=0.3, activation=activation, width=2 * n,
                        batchnorm=True)  # fmt: skip
            opt = solve_batchnorm(p)
            H = last_hidden(p, opt.network)
            got = neural_collapse(H, labels, W=np.asarray(opt.network.weights[-1]))
            want = collapse_prediction(np.asarray(counts), 0.3)
            for k, v in want.items():
                assert abs(got[k] - v) <= 1e-9, (counts, depth, k, got[k], v)
        if len(set(counts)) == 1:
            assert abs(want["nc2_cosine_mean"] + 1 / (len(counts) - 1)) <= 1e-12
            assert abs(want["nc3_cosine_mean"] - 1) <= 1e-12
        else:
            assert want["nc2_cosine_mean"] != pytest.approx(-1 / (len(counts) - 1), abs=1e-3)


def test_e6_figure_draws_every_seed_and_e9_stays_legible() -> None:
    """E6: one panel per (seed, β) — no seed left out (the worst fit included); E9: two
    panels (covered / not covered) whose width does not grow with the number of groups."""
    specs, results = ideal()
    frame = frame_from_results(specs, results)
    e6 = ex.EXPERIMENTS["E6"]
    done = e6.rows(frame)
    res = e6.fn(done, ex.Inputs(frame))
    assert len(res.figure.axes) == done["seed"].nunique() * done["train.beta"].nunique()
    e9 = ex.EXPERIMENTS["E9"].fn(frame, ex.Inputs(frame))
    assert len(e9.figure.axes) == 2 and e9.figure.get_size_inches()[0] <= 12.5
    assert set(e9.table["covered"]) == {True, False}


def test_e9_a_certified_p_star_is_known_only_to_its_own_gap() -> None:
    """A numerical P* certified to 1e-6 (§10): a certificate 1e-7 above it is not a violation;
    1e-5 above it is."""

    def change(factor: float):
        def f(_s, r) -> None:
            r.extra["optimum_rel_gap"] = 1e-6
            r.certificate = r.exact_objective * factor
            r.sgd_objective = r.exact_objective * 1.01  # the SGD net itself is not at P*

        return f

    specs, results = _perturbed("E3", change(1 + 1e-7))
    assert _check(_run(specs, results, "E9"), "bound ≤ P*").status is ex.Status.PASS
    specs, results = _perturbed("E3", change(1 + 1e-5))
    assert _check(_run(specs, results, "E9"), "bound ≤ P*").status is ex.Status.FAIL


def test_running_trials_are_not_counted_as_failed() -> None:
    """A store read while its sweep runs: claimed trials (status "running") are counted apart."""
    specs, results = ideal()
    frame = frame_from_results(specs, results)
    e5 = frame.index[frame["experiment"] == "E5"]
    frame.loc[e5[:1], "status"] = "running"
    out = ex.run("E5", frame)
    assert (out.running, out.failed) == (1, 0) and "1 not recorded yet" in out.verdict
    assert out.to_dict()["running"] == 1
