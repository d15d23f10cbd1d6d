"""Experiment functions on REAL trials: tiny specs of every paper block run by
``sweep.trial.run_batch`` (the ``mini_runs`` fixture), turned into the frame ``load`` would
give by ``analysis.frame_from_results``. Each table's numbers are checked against the
TrialResult objects themselves (not against the frame they were computed from); each figure
must exist as a PNG; each check's counts are recomputed here from the results.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    curves_from_results,
    frame_from_results,
    run_experiments,
)
from analysis import experiments as ex
from analysis.experiments import verdicts as vd
from analysis.tables import fmt, to_markdown
from tests.conftest import assert_close

PNG = b"\x89PNG\r\n\x1a\n"
MAX_WIDTH_PX = 1800


@pytest.fixture(scope="module")
def runs(mini_runs):
    specs, results = mini_runs
    return {s.key: (s, r) for s, r in zip(specs, results, strict=True)}


@pytest.fixture(scope="module")
def frame(mini_runs) -> pd.DataFrame:
    return frame_from_results(*mini_runs)


@pytest.fixture(scope="module")
def curves(mini_runs) -> pd.DataFrame:
    return curves_from_results(*mini_runs)


@pytest.fixture(scope="module")
def outs(frame, curves, runs, tmp_path_factory) -> dict[str, ex.Outcome]:
    """Every experiment function once, figures and tables written to a temporary directory."""
    results = {k: r for k, (_, r) in runs.items()}
    out_dir = tmp_path_factory.mktemp("outcomes")
    return {
        o.id: o for o in run_experiments(frame, curves=curves, results=results, out_dir=out_dir)
    }


def _of(runs: dict, experiment: str, status: str = "finished") -> list:
    return [(s, r) for s, r in runs.values() if s.experiment == experiment and r.status == status]


def _check(outcome: ex.Outcome, name: str) -> ex.Check:
    (check,) = [c for c in outcome.checks if c.name == name]
    return check


def _figure_ok(outcome: ex.Outcome) -> None:
    assert outcome.figure is not None and outcome.figure.exists(), outcome.id
    data = outcome.figure.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000, (outcome.id, len(data))
    width = int.from_bytes(data[16:20], "big")  # IHDR: legible in a 1200 px page, not 3179 px
    assert 400 <= width <= MAX_WIDTH_PX, (outcome.id, width)
    csv = pd.read_csv(outcome.files["csv"])
    assert len(csv) == len(outcome.table)
    assert outcome.files["md"].read_text() == to_markdown(outcome.table)


def test_mini_trials_finished(runs) -> None:
    """The fixture itself: every trial ran, one diverged and one failed on purpose."""
    status = [r.status for _, r in runs.values()]
    failed = [r for _, r in runs.values() if r.status == "failed"]
    assert len(failed) == 1 and "ValueError" in failed[0].error, [r.error for r in failed]
    assert status.count("diverged") == 1


def test_frame_types(frame, runs) -> None:
    from sweep.schema import param_types

    assert len(frame) == len(runs)
    for name, typ in param_types().items():
        kind = frame[name].dtype.kind
        if typ is int:
            assert kind == "i", (name, frame[name].dtype)
        elif typ is float:
            assert kind == "f", (name, frame[name].dtype)
        elif typ is bool:
            assert kind == "b", (name, frame[name].dtype)
        else:
            assert pd.api.types.is_string_dtype(frame[name]) or kind == "O", (
                name,
                frame[name].dtype,
            )
    for _, row in frame.iterrows():
        spec, res = runs[row["run_id"]]
        assert row["model.depth"] == spec.model.depth and row["train.beta"] == spec.train.beta
        assert row["status"] == res.status
        for k, v in res.metrics().items():
            assert row[k] == v, k


def test_e1_rank_vs_beta(outs, runs) -> None:
    out = outs["E1"]
    _figure_ok(out)
    trials = _of(runs, "E1")
    assert len(out.data) == len(trials) == out.n_trials
    matched = counted = 0
    for spec, res in trials:
        row = out.data.set_index("run_id").loc[spec.key]
        assert row["trained_rank"] == res.layers[0].rank
        assert row["predicted_rank"] == res.extra["predicted_rank"]
        assert row["beta"] == spec.train.beta
        assert_close(row["rel_gap"], res.rel_gap, rtol=0, atol=1e-300)
        final = res.rel_gap if res.polished_rel_gap is None else res.polished_rel_gap
        if abs(final) <= vd.AT_OPT:
            counted += 1
            matched += res.layers[0].rank == res.extra["predicted_rank"]
    rank = _check(out, "rank")
    assert (rank.n, rank.passed) == (counted, matched)
    # SGD's reach: an optimizer measurement beside the verdict (SGD alone, both tolerances)
    assert out.reach.n == len(trials)
    for t in vd.REACH_TOLS:
        assert out.reach.within[t] == sum(r.rel_gap <= t for _, r in trials)
    below = _check(out, "no network below P*")
    assert below.status is ex.Status.PASS and below.n == len(trials)
    assert out.table["trials"].sum() == len(trials)


def test_e2_norm_ratio_curves(outs, runs) -> None:
    out = outs["E2"]
    _figure_ok(out)
    trials = _of(runs, "E2")
    assert out.data["run_id"].nunique() == len(trials)
    for spec, res in trials:
        rows = out.data[out.data["run_id"] == spec.key].set_index("layer")
        assert list(rows.index) == list(range(1, spec.model.depth + 1))
        for layer, ls in enumerate(res.layers, start=1):
            assert rows.loc[layer, "final_ratio"] == ls.norm_ratio
            curve = res.curves[f"norm_ratio.{layer}"]
            assert rows.loc[layer, "initial_ratio"] == curve[0]
            assert rows.loc[layer, "curve_final_ratio"] == curve[-1]
            reached = [s for s, v in zip(res.curve_steps, curve, strict=True) if v >= 0.99]
            expected = reached[0] if reached else math.nan
            assert rows.loc[layer, "first_step_ratio_0.99"] == pytest.approx(expected, nan_ok=True)
    hidden = out.data[out.data["hidden"]]
    assert set(out.data.loc[~out.data["hidden"], "layer"]) == {s.model.depth for s, _ in trials}
    assert len(hidden) == sum(s.model.depth - 1 for s, _ in trials)


def test_e3_deep_linear_counts_diverged(outs, runs) -> None:
    out = outs["E3"]
    _figure_ok(out)
    trials = _of(runs, "E3")
    assert out.diverged == len(_of(runs, "E3", "diverged")) == 1
    assert "(1 diverged)" in out.verdict
    for spec, res in trials:
        if spec.key not in set(out.data["run_id"]):  # left out: its optimum is zero
            null = res.extra.get("null_objective")
            assert (
                (res.extra["predicted_rank"] == 0)
                if null is None
                else (res.exact_objective >= null * (1 - 1e-12))
            )
            continue
        row = out.data.set_index("run_id").loc[spec.key]
        assert row["min_norm_ratio"] == min(ls.norm_ratio for ls in res.layers[:-1])
        aligns = [abs(ls.align_next) for ls in res.layers[:-1] if ls.align_next is not None]
        assert aligns
        assert row["min_abs_align_next"] == min(aligns)
        assert row["depth"] == spec.model.depth


def test_e4_deep_relu(outs, runs) -> None:
    out = outs["E4"]
    _figure_ok(out)
    trials = _of(runs, "E4")
    gaps = [r.rel_gap for _, r in trials]
    assert f"SGD relative gap {ex_fmt(min(gaps))}–{ex_fmt(max(gaps))}" in out.summary
    assert out.table["trials"].sum() == len(trials)
    assert out.table["max_rel_gap"].max() == max(gaps)
    assert out.reach.within[1e-4] == sum(g <= 1e-4 for g in gaps)  # a measurement, no verdict
    assert not [c for c in out.checks if c.status is ex.Status.FAIL]


def ex_fmt(v: float) -> str:
    return fmt(v, 2)


def test_e5_and_rank_one(outs, runs) -> None:
    out = outs["E5"]
    _figure_ok(out)
    trials = _of(runs, "E5")
    assert out.failed == 1 and out.verdict.endswith("(1 failed)")
    assert out.data["w1_alignment"].tolist() == [r.w1_alignment for _, r in trials]

    r1 = outs["R1"]
    _figure_ok(r1)
    ((spec, res),) = _of(runs, "R1")
    assert r1.data["exact_objective"].tolist() == [res.exact_objective]
    assert r1.data["sgd_objective"].tolist() == [res.sgd_objective]


def test_e6_spline_draws_the_arrays(outs, frame, runs, tmp_path) -> None:
    trials = _of(runs, "E6")
    out = outs["E6"]
    _figure_ok(out)
    shares = [r.extra["spline.share_near_data"] for _, r in trials]
    assert sorted(out.data["share_near_data"]) == sorted(shares)
    assert out.checks[0].passed == sum(
        s >= 0.957
        for s, fit in zip(out.data["share_near_data"], out.data["fitted"], strict=True)
        if fit
    )
    for spec, res in trials:
        row = out.data.set_index("run_id").loc[spec.key]
        assert row["n_kinks"] == len(res.arrays["kinks"]) == res.extra["spline.n_kinks"]
    # without the arrays the figure still comes out (annotated), the table is the same
    bare = ex.run("E6", frame, out_dir=tmp_path / "bare")
    _figure_ok(bare)
    pd.testing.assert_frame_equal(bare.table, out.table)


def test_e7_batchnorm_collapse(outs, runs) -> None:
    out = outs["E7"]
    _figure_ok(out)
    ((spec, res),) = _of(runs, "E7")
    row = out.data.iloc[0]
    assert row["nc1"] == res.extra["nc.nc1"]
    assert row["nc3_cosine_mean"] == res.extra["nc.nc3_cosine_mean"]
    assert row["classes"] == (
        "balanced" if spec.data.targets == "onehot_balanced" else "unbalanced"
    )


def test_e8_rescaled_duality(outs, runs) -> None:
    out = outs["E8"]
    _figure_ok(out)
    trials = _of(runs, "E8")
    assert set(out.data["run_id"]) == {s.key for s, _ in trials}
    for spec, _res in trials:
        rows = out.data[out.data["run_id"] == spec.key]
        assert set(rows["ball"]) >= {spec.model.ball} - {"none"}
        assert len(rows) >= 1


def test_e9_certificates_every_trial(outs, runs) -> None:
    out = outs["E9"]
    _figure_ok(out)
    finished = [r for _, r in runs.values() if r.status == "finished"]
    assert len(out.data) == len(finished)
    exact = sum(r.exact_objective is not None for r in finished)
    violations = sum(
        r.certificate is not None
        and r.certificate - r.sgd_objective > 1e-9 * max(1.0, abs(r.sgd_objective))
        for r in finished
    )
    assert f"covered: {exact} trials" in out.summary
    assert out.table["trials"].sum() == len(finished)
    assert violations == 0  # a lower bound above a feasible objective would be a bug upstream
    assert _check(out, "bound ≤ objective").status is ex.Status.PASS
    assert _check(out, "bound ≤ P*").n == sum(
        r.exact_objective is not None and r.certificate is not None for r in finished
    )


def test_e10_digits(outs, runs) -> None:
    out = outs["E10"]
    _figure_ok(out)
    ((spec, res),) = _of(runs, "E10")
    assert out.data["certificate"].tolist() == [res.certificate]
    t = spec.data.targets
    assert [c.name for c in out.checks] == [
        f"{t}: record consistent",
        f"{t}: no network below P*",
        f"{t}: routes to P* agree",
    ]
    assert out.reach.n == 1


def test_no_trials_and_missing_columns(frame, tmp_path) -> None:
    """An empty store and a store that logged none of the metrics: INCONCLUSIVE, no crash."""
    empty = frame.iloc[0:0]
    for o in run_experiments(empty, out_dir=tmp_path / "empty"):
        assert o.status is ex.Status.INCONCLUSIVE and o.figure is None and o.n_trials == 0
        assert o.checks[0].reason == "no trials"
    from sweep.schema import param_types

    params_only = frame[["run_id", "status", *param_types()]]
    bare = {o.id: o for o in run_experiments(params_only)}
    assert list(bare) == list(ex.EXPERIMENTS)
    for o in bare.values():
        assert o.status is not ex.Status.PASS, o.id  # nothing logged: nothing can pass
        assert o.figure is None


def test_structural_selection_without_experiment_ids(frame, runs) -> None:
    """A grid without experiment ids (e.g. +grid=smoke): rows are matched by their settings."""
    anon = frame.assign(experiment="")
    out = ex.run("E1", anon)
    expected = {
        s.key
        for s, r in runs.values()
        if s.model.activation == "linear"
        and s.model.depth == 2
        and not s.model.batchnorm
        and not s.model.bias
        and s.model.ball == "none"
        and r.status == "finished"
    }
    assert set(out.data["run_id"]) == expected
    assert out.figure is None  # no out_dir: nothing written
    spl = ex.run("E6", anon)
    assert set(spl.data["run_id"]) == {s.key for s, _ in _of(runs, "E6")}
    # a paper store that lacks an experiment gives "no trials" for it
    assert ex.run("E6", frame[frame["experiment"] != "E6"]).checks[0].reason == "no trials"


def test_tables_are_tidy_numbers(outs) -> None:
    for o in outs.values():
        assert o.n_trials, o.id  # the mini store has trials of every experiment
        assert o.figure is not None, o.id
        numeric = o.table.select_dtypes(include=[np.number])
        assert numeric.shape[1] >= 2, o.id
        assert not o.table.empty and not o.data.empty


def test_figures_draw_a_spread_sample_of_many_trials() -> None:
    from analysis.experiments import helpers as h

    big = pd.DataFrame({"i": range(1000)})
    shown, note = h.drawn(big, limit=120)
    assert len(shown) == 120 and note == " (120 of 1000 trials drawn)"
    assert shown["i"].iloc[0] == 0 and shown["i"].iloc[-1] == 999  # both ends of the sweep
    assert shown["i"].is_monotonic_increasing and shown["i"].diff().max() <= 9
    small = big.iloc[:50]
    got, note = h.drawn(small, limit=120)
    assert got is small and note == ""


def test_deep_relu_grid(outs, runs) -> None:
    """The card's grid experiment on a real raw-data trial: no P* (a bracket), the certificate
    below every network; its table row carries the bracket, its reach counts no trial."""
    out = outs["deep_relu"]
    _figure_ok(out)
    ((spec, res),) = _of(runs, "deep_relu")
    row = out.data.set_index("run_id").loc[spec.key]
    assert np.isnan(row["p_star"]) and row["certificate"] == res.certificate
    assert row["bracket_lower"] <= res.sgd_objective
    # deep ReLU K = 1: the width left at the relaxation's limit is part of the bracket's width
    assert 0.0 <= row["limit_rel_width"] <= row["bracket_rel_width"] * (1 + 1e-7)
    routes = _check(out, "routes to P* agree")
    assert routes.status is ex.Status.PASS and "1 bracketed only" in routes.seen
    assert out.reach.n == 0 and out.reach.without == 1
    assert out.table[["depth", "width", "whitened", "K"]].values.tolist() == [[3, 6, False, 1]]
