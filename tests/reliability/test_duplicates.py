"""``analysis.load`` on a store holding several runs of the same trial keys (issue 12, defect 4):
one row per key, the latest FINISHED run wins (else the latest run), and the number of runs
left out is ``frame.attrs["superseded"]``. The duplicates are written with MLflow's client the
way drivers without claims wrote them (three invocations whose results differ, so which run
won is visible in the numbers), independent of the writer of ``sweep.tracking``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sweep.schema import TrialResult, TrialSpec

pytestmark = pytest.mark.slow


def _specs() -> list[TrialSpec]:
    return [TrialSpec(seed=s, experiment="E1") for s in range(6)]


def _result(spec: TrialSpec, status: str, value: float) -> TrialResult:
    return TrialResult(
        key=spec.key,
        status=status,
        sgd_objective=value,
        error="boom" if status == "failed" else None,
        curve_steps=[0, 1],
        curves={"objective": [value + 1.0, value]},
    )


# per invocation, the status of each of the 6 keys (None: not run in that invocation)
PLAN = [
    ["finished", "failed", "finished", "failed", "finished", "finished"],
    ["finished", "finished", "failed", "failed", None, "diverged"],
    [None, None, None, "failed", None, "finished"],
]
# the invocation whose run must win, per key: latest FINISHED (diverged is FINISHED in MLflow)
# run, else the latest run
WINNER = [1, 1, 0, 2, 0, 2]


def _write(client, exp_id: str, parent: str, spec: TrialSpec, res: TrialResult) -> None:
    """One child run as the sweep's writer lays it out (tags, params, metrics, a curve)."""
    from mlflow.entities import Metric, Param

    from sweep.schema import CURVE_PREFIX, TAG_KIND, TAG_STATUS, TAG_TRIAL_KEY
    from sweep.store import KIND_TRIAL, TAG_PARENT

    tags = {TAG_KIND: KIND_TRIAL, TAG_TRIAL_KEY: spec.key, TAG_STATUS: res.status}
    run = client.create_run(exp_id, tags={**tags, TAG_PARENT: parent})
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in res.metrics().items()]
    metrics += [
        Metric(CURVE_PREFIX + "objective", v, now, step)
        for step, v in zip(res.curve_steps, res.curves["objective"], strict=True)
    ]
    params = [Param(k, str(v)) for k, v in spec.params().items()]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id, "FAILED" if res.status == "failed" else "FINISHED")


def test_one_row_per_key_latest_finished_wins(tmp_path: Path) -> None:
    from analysis.load import load, load_curves
    from sweep.schema import TAG_KIND
    from sweep.store import KIND_SWEEP, Store, open_store

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client, exp_id = open_store(Store(uri=uri, artifacts=(tmp_path / "art").as_uri()), "dup")
    specs = _specs()
    for inv, statuses in enumerate(PLAN):
        parent = client.create_run(exp_id, tags={TAG_KIND: KIND_SWEEP}).info.run_id
        for spec, status in zip(specs, statuses, strict=True):
            if status is not None:
                _write(client, exp_id, parent, spec, _result(spec, status, 10.0 * inv + spec.seed))
        client.set_terminated(parent, "FINISHED")
        time.sleep(0.01)  # distinct start times between invocations
    runs = sum(s is not None for row in PLAN for s in row)
    frame = load("dup", uri, curves=True)
    assert len(frame) == len(specs) and frame["trial_key"].is_unique
    assert frame.attrs["superseded"] == runs - len(specs) == 7
    by_key = frame.set_index("trial_key")
    for spec, inv in zip(specs, WINNER, strict=True):
        row = by_key.loc[spec.key]
        assert row["sgd_objective"] == 10.0 * inv + spec.seed, (spec.seed, row["sgd_objective"])
        assert row["status"] == PLAN[inv][spec.seed]
    # the analysis counts failures once per key: only key 3 never finished
    assert (frame["status"] == "failed").sum() == 1
    # curves come from the winning runs only, by default as well as for load's frame
    curves = load_curves("dup", uri)
    assert set(curves["run_id"]) == set(frame["run_id"])
    assert frame.attrs["curves"]["run_id"].nunique() == len(specs)
