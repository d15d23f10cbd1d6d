"""What a user sees of a sweep in the MLflow UI, read back from the store: child runs named by
what varies (the key stays a tag), MLflow's own source tags (the UI's Source column and git
commit), and on the parent run the sweep's summary (``summary.md``, ``trials.csv``) and its
counts and gaps as metrics (the chart view). The UI itself: tests/analysis/test_ui_sweep.py."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest

from sweep.config import load
from sweep.grid import expand
from sweep.progress import SUMMARY_CSV, SUMMARY_MD
from sweep.runner import run_sweep
from sweep.schema import TAG_GIT_COMMIT, TAG_KIND, TAG_TRIAL_KEY, TrialResult
from sweep.tracking import run_name
from tests.sweep.test_tracking import quick


def _grid(tmp_path: Path, **over) -> dict:
    return {
        "grid": {"name": "names"},
        "data": {"kind": "gaussian", "n": 6, "d": 4, "whiten": ["zca", "none"]},
        "model": {"depth": [2, 3], "width": 5},
        "train": {"beta": 0.2, "steps": 10},
        "seed": [0, 1],
        "runner": {"kind": "inline", "batch_size": 4, "device": "cpu"},
        "tracking": {
            "uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            "artifacts": str(tmp_path / "art"),
        },
        "sweep": {"progress": False},
        **over,
    }


def test_run_names_say_what_varies() -> None:
    sweep = load(
        {
            "model": {"depth": 3, "width": [10, 20]},
            "train": {"beta": [0.2, 0.5]},
            "data": {"whiten": ["zca", "none"]},
            "seed": [0, 1],
        }
    )
    from sweep.grid import axes

    names = {run_name(s, axes(sweep), "x") for s in expand(sweep)}
    assert len(names) == 16  # one name per trial
    assert "w=10 β=0.2 zca s0" in names and "w=20 β=0.5 none s1" in names
    (single,) = expand(load({}))
    assert run_name(single, [], "default-1234abcd") == "default-1234abcd"  # nothing varies
    lr = single.params()["train.lr"]
    assert run_name(single, ["train.lr", "model.depth"], "d") == f"L=2 lr={lr:g}"


def test_a_finished_sweep_reads_well_in_the_ui(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    sweep = load(_grid(tmp_path))
    specs = expand(sweep)
    run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    client = MlflowClient(tracking_uri=sweep.tracking.uri or f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.get_experiment_by_name("names")
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags[TAG_KIND] == "trial"]
    (parent,) = [r for r in runs if r.data.tags[TAG_KIND] == "sweep"]
    assert len(trials) == len(specs) == 8

    names = {r.info.run_name for r in trials}
    assert "L=2 zca s0" in names and "L=3 none s1" in names and len(names) == 8
    for r in trials:
        assert r.data.tags["mlflow.runName"] == r.info.run_name
        assert len(r.data.tags[TAG_TRIAL_KEY]) == 20  # the key stays a tag
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    for r in [*trials, parent]:
        tags = r.data.tags
        assert tags["mlflow.source.name"] == "python -m sweep"
        assert tags["mlflow.source.type"] == "LOCAL"
        if head:  # a git checkout: the commit, without git_commit's -dirty mark
            assert tags["mlflow.source.git.commit"] == head
            assert tags[TAG_GIT_COMMIT].startswith(head)

    # honest durations: a child run starts when its batch started on the worker (not when it
    # was claimed) and ends when its result was recorded, after the batch ended
    for r in trials:
        path = client.download_artifacts(r.info.run_id, "trial.json", str(tmp_path / "dl"))
        res = TrialResult.from_json(Path(path).read_text())
        assert res.started_at is not None and res.ended_at >= res.started_at
        assert r.info.start_time == int(res.started_at * 1000), (r.info, res.started_at)
        assert r.info.end_time >= int(res.ended_at * 1000)

    # the parent: counts and gaps for the chart view, the summary as artifacts
    m = parent.data.metrics
    assert m["trials_total"] == 8 and m["trials_done"] == 8 and m["trials_finished"] == 8
    assert m["trials_failed"] == 0 and m["trials_diverged"] == 0 and m["trials_skipped"] == 0
    assert m["rel_gap_median"] == 0.5 and m["rel_gap_worst"] == 1.0  # quick: sgd = 1 + seed
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {SUMMARY_MD, SUMMARY_CSV} <= files and "report" not in files  # verdicts: opt-in
    md = Path(client.download_artifacts(parent.info.run_id, SUMMARY_MD, str(tmp_path))).read_text()
    assert "sweep 'names': FINISHED" in md and "8 ran in this invocation" in md
    assert "model.depth=2" in md and "python -m analysis --experiment names" in md
    text = Path(client.download_artifacts(parent.info.run_id, SUMMARY_CSV, str(tmp_path)))
    rows = list(csv.DictReader(io.StringIO(text.read_text())))
    assert {r["run_name"] for r in rows} == names
    assert {r["key"] for r in rows} == {s.key for s in specs}
    assert {"data.whiten", "model.depth", "seed"} <= set(rows[0])

    # a resume runs nothing new: the parent of that invocation says so
    run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    parents = [
        r
        for r in client.search_runs([exp.experiment_id], f"tags.{TAG_KIND} = 'sweep'")
        if r.info.run_id != parent.info.run_id
    ]
    assert all(p.data.metrics.get("trials_done", 0) == 0 for p in parents)


@pytest.mark.slow
def test_verdicts_on_request_are_logged_on_the_parent_run(tmp_path: Path) -> None:
    """sweep.verdicts=true runs python -m analysis (a subprocess) after the sweep and logs its
    verdicts on the parent run; off by default (the first test's parent has no report/)."""
    from mlflow.tracking import MlflowClient

    cfg = _grid(tmp_path)
    cfg["sweep"] = {"progress": False, "verdicts": True}
    sweep = load(cfg)
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        run_sweep(sweep, expand(sweep), batch_fn=quick, out=f)
    text = out.read_text()
    assert "verdicts logged on the parent run" in text, text
    assert "theory: " in text  # analysis's own summary line
    client = MlflowClient(tracking_uri=sweep.tracking.uri)
    exp = client.get_experiment_by_name("names")
    (parent,) = client.search_runs([exp.experiment_id], f"tags.{TAG_KIND} = 'sweep'")
    files = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert files == {"report/verdicts.md", "report/verdicts.json", "report/README.md"}


def test_the_printed_ui_command_is_the_readmes(tmp_path: Path, monkeypatch) -> None:
    """What `make run` prints (the venv's python under the working directory, the default
    store) is, character for character, the command in the README's Quickstart."""
    import sys

    from sweep.config import TrackingConfig
    from sweep.store import resolve_store, ui_command

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    command = ui_command(resolve_store(TrackingConfig(), cwd=tmp_path), cwd=tmp_path)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"\n{command}\n" in readme, command
    # elsewhere: absolute paths, quoted for the shell
    elsewhere = tmp_path / "elsewhere"
    other = ui_command(
        resolve_store(TrackingConfig(uri="sqlite:////x y/m.db"), cwd=elsewhere), cwd=elsewhere
    )
    assert other == (
        f"{tmp_path}/.venv/bin/python -m mlflow ui --backend-store-uri 'sqlite:////x y/m.db' "
        "--host 127.0.0.1"
    )
