"""Declared metrics (sweep.schema): every metric a trial logs is a named field or a declared
key; a trial that logs an undeclared name fails instead of reaching the store."""

from __future__ import annotations

import pytest

from sweep.schema import (
    EXTRA_METRICS,
    DataSpec,
    ModelSpec,
    TrainSpec,
    TrialResult,
    TrialSpec,
    declared_metric,
)
from sweep.trial import run_batch

# one small trial of each family that logs its own extra metrics
FAMILIES = {
    "closed form (null_objective, dual_bound, predicted_rank, optimum_rel_gap, polish.*)": (
        TrialSpec(
            data=DataSpec(kind="whitened", n=6, d=10, outputs=2),
            model=ModelSpec(depth=2, width=6),
            train=TrainSpec(steps=50, log_every=25, polish=5),
        )
    ),
    "spline.*, spline_opt.*, y_plus_norm": TrialSpec(
        data=DataSpec(kind="spline_1d", n=6, d=1),
        model=ModelSpec(depth=2, width=10, activation="relu", bias=True),
        train=TrainSpec(beta=0.01, steps=50, log_every=25, lr=0.002),
    ),
    "nc.*, nc_opt.*": TrialSpec(
        data=DataSpec(targets="onehot_balanced", n=6, d=8, outputs=3),
        model=ModelSpec(depth=2, width=8, activation="relu", batchnorm=True),
        train=TrainSpec(steps=50, log_every=25, lr=0.002),
    ),
    "rescaled.*": TrialSpec(
        data=DataSpec(kind="whitened", n=5, d=8, outputs=2),
        model=ModelSpec(depth=3, width=5, ball="operator"),
        train=TrainSpec(steps=50, log_every=25, lr=0.002),
    ),
    "deep_dual_limit": TrialSpec(
        data=DataSpec(n=8, d=3),
        model=ModelSpec(depth=3, width=4, activation="relu"),
        train=TrainSpec(beta=0.1, steps=50, log_every=25),
    ),
    "min_width, min_width_lower": TrialSpec(
        data=DataSpec(kind="whitened", n=6, d=10),
        model=ModelSpec(depth=2, width=1, activation="relu"),
        train=TrainSpec(beta=0.01, steps=50, log_every=25),
    ),
    "p_star_any_width": TrialSpec(
        data=DataSpec(n=8, d=2),
        model=ModelSpec(depth=2, width=1, activation="relu"),
        train=TrainSpec(beta=0.01, steps=50, log_every=25),
    ),
}


@pytest.mark.parametrize("spec", FAMILIES.values(), ids=FAMILIES.keys())
def test_every_metric_a_trial_logs_is_declared(spec: TrialSpec) -> None:
    (result,) = run_batch([spec])
    assert result.status == "finished", result.error
    assert result.extra  # the family logged extra metrics ...
    undeclared = [k for k in result.metrics() if not declared_metric(k)]
    assert undeclared == []  # ... every one of them declared


def test_the_families_cover_every_declared_prefix() -> None:
    logged = set()
    for spec in FAMILIES.values():
        logged |= set(run_batch([spec])[0].extra)
    prefixes = {k.split(".")[0] for k in EXTRA_METRICS}
    assert prefixes == {k.split(".")[0] for k in logged}


def test_an_undeclared_metric_fails_its_trial(monkeypatch) -> None:
    """A misspelt metric (here E8's gap logged as ``op_relative_gap``) fails the trial, its
    error naming the name, instead of being recorded under a name nobody reads."""
    import solvers.rescaled

    def misspelt(problem):
        return {"op_primal": 1.0, "op_dual": 1.0, "op_relative_gap": 0.0}

    monkeypatch.setattr(solvers.rescaled, "rescaled_both", misspelt)
    (result,) = run_batch([FAMILIES["rescaled.*"]])
    assert result.status == "failed"
    assert "rescaled.op_relative_gap" in result.error and "EXTRA_METRICS" in result.error


def test_check_declared_names_the_first_undeclared_key() -> None:
    ok = TrialResult(key="k", status="finished", extra={"rescaled.op_gap": 0.0, "nc.nc1": 1.0})
    ok.check_declared()
    bad = TrialResult(key="k", status="finished", extra={"nc.nc1": 1.0, "rescaled_op_gap": 0.0})
    with pytest.raises(ValueError, match=r"extra\['rescaled_op_gap'\] is no declared metric"):
        bad.check_declared()
    assert not declared_metric("layer.rank") and declared_metric("layer3.align_next")
