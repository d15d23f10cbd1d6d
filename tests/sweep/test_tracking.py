"""Recording and resume against a real MLflow SQLite store in a temporary directory, with the
in-process runner: failed trials, stale RUNNING runs, live drivers, forced re-runs."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from sweep.config import TrackingConfig, load
from sweep.grid import expand
from sweep.runner import run_sweep
from sweep.schema import (
    ARTIFACT_TRACEBACK,
    TAG_DRIVER,
    TAG_KIND,
    TAG_STATUS,
    TAG_TRIAL_KEY,
    TrialResult,
    TrialSpec,
)
from sweep.tracking import Tracker, resolve_store, ui_command

pytestmark = pytest.mark.slow


def boom(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """A batch function whose trials all raise (an engine bug, say)."""
    raise RuntimeError(f"engine exploded on {len(specs)} trial(s) on {device}")


def quick(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """Results computed from the spec alone (the recording path, without training)."""
    return [
        TrialResult(
            key=s.key,
            status="finished",
            sgd_objective=1.0 + s.seed,
            exact_objective=1.0,
            certificate=0.5,
            curve_steps=[0, 10, 20],
            curves={"objective": [3.0, 2.0, 1.0 + s.seed]},
            device=device,
        )
        for s in specs
    ]


def _sweep(tmp_path: Path, **over):
    cfg = {
        "grid": {"name": "track"},
        "seed": [0, 1, 2],
        "runner": {"kind": "inline", "batch_size": 2, "device": "cpu"},
        "tracking": {
            "uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            "artifacts": str(tmp_path / "art"),
        },
        "sweep": {"progress": False, **over},
    }
    sweep = load(cfg)
    return sweep, expand(sweep)


def _tracker(tmp_path: Path) -> Tracker:
    sweep, _ = _sweep(tmp_path)
    return Tracker(resolve_store(sweep.tracking), "track")


def test_store_defaults_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = resolve_store(TrackingConfig(), cwd=tmp_path)
    assert store.uri == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert store.artifacts == (tmp_path / "mlartifacts").as_uri()
    assert "--backend-store-uri sqlite:///" in ui_command(store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    server = resolve_store(TrackingConfig(), cwd=tmp_path)
    assert server.uri == "http://127.0.0.1:5000" and server.artifacts is None
    explicit = resolve_store(TrackingConfig(uri="sqlite:///rel.db"), cwd=tmp_path)
    assert explicit.uri == f"sqlite:///{tmp_path / 'rel.db'}"


def test_failed_trials_keep_their_traceback_and_are_retried(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    report = run_sweep(sweep, specs, batch_fn=boom, out=open(os.devnull, "w"))
    assert report.count("failed") == 3
    tracker = _tracker(tmp_path)
    runs = tracker.trial_runs()
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FAILED"}
    assert {r.data.tags[TAG_STATUS] for r in runs} == {"failed"}
    text = Path(
        tracker.client.download_artifacts(runs[0].info.run_id, ARTIFACT_TRACEBACK, str(tmp_path))
    ).read_text()
    assert "RuntimeError: engine exploded" in text and "Traceback" in text
    assert tracker.finished_keys() == set()

    report = run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 0 and report.count("finished") == 3
    assert tracker.finished_keys() == {s.key for s in specs}


def test_stale_running_runs_are_killed_and_redone_but_live_drivers_are_left(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    run_sweep(sweep, specs[:1], batch_fn=quick, out=open(os.devnull, "w"))
    tracker = _tracker(tmp_path)
    client, exp = tracker.client, tracker.experiment_id
    # a driver that died (pid 2**22 + 7 is beyond pid_max's default) left a trial RUNNING ...
    dead = client.create_run(
        exp, tags={TAG_KIND: "sweep", TAG_DRIVER: f"{socket.gethostname()}:4194311"}
    )
    stale = client.create_run(
        exp,
        tags={
            TAG_KIND: "trial",
            TAG_TRIAL_KEY: specs[1].key,
            "mlflow.parentRunId": dead.info.run_id,
        },
    )
    # ... while a live driver (another process on this host) owns another RUNNING trial
    other = subprocess.Popen(["sleep", "120"])
    try:
        live = client.create_run(
            exp, tags={TAG_KIND: "sweep", TAG_DRIVER: f"{socket.gethostname()}:{other.pid}"}
        )
        busy = client.create_run(
            exp,
            tags={
                TAG_KIND: "trial",
                TAG_TRIAL_KEY: "other",
                "mlflow.parentRunId": live.info.run_id,
            },
        )
        report = run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    finally:
        other.kill()
        other.wait()
    assert report.killed_stale == 2 and report.skipped == 1
    status = {r.info.run_id: r.info.status for r in tracker.trial_runs()}
    assert status[stale.info.run_id] == "KILLED" and status[busy.info.run_id] == "RUNNING"
    finished = [
        r.data.tags[TAG_TRIAL_KEY] for r in tracker.trial_runs() if r.info.status == "FINISHED"
    ]
    assert sorted(finished) == sorted(s.key for s in specs)  # redone once, nothing doubled
    assert client.get_run(dead.info.run_id).info.status == "KILLED"


def test_rerun_forces_every_trial_and_growing_the_grid_runs_only_new_points(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    grown, more = _sweep(tmp_path)
    more = expand(load({**_raw(tmp_path), "seed": [0, 1, 2, 3]}))
    report = run_sweep(grown, more, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 3 and [s.seed for s, _ in report.results] == [3]
    forced, _ = _sweep(tmp_path, rerun=True)
    report = run_sweep(forced, specs, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 0 and len(report.results) == 3
    assert len(_tracker(tmp_path).trial_runs()) == 3 + 1 + 3


def _raw(tmp_path: Path) -> dict:
    return {
        "grid": {"name": "track"},
        "runner": {"kind": "inline", "batch_size": 2, "device": "cpu"},
        "tracking": {
            "uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            "artifacts": str(tmp_path / "art"),
        },
        "sweep": {"progress": False},
    }
