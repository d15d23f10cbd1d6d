"""``python -m analysis`` on REAL stores: the report's files, counts and verdict lines."""

from __future__ import annotations

import html as _html
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from analysis import EXPERIMENTS, load
from analysis.report import check_lines
from tests.analysis.conftest import REPO

pytestmark = pytest.mark.slow


def test_report_files_and_counts(mini_report, mini) -> None:
    index, readme = mini_report / "index.html", mini_report / "README.md"
    assert index.exists() and readme.exists()
    html, md = index.read_text(), readme.read_text()
    n = len(mini.results)
    diverged = sum(r.status == "diverged" for r in mini.results)
    failed = sum(r.status == "failed" for r in mini.results)
    counts = f"{n} trials: {n - diverged - failed} finished, {diverged} diverged, {failed} failed"
    assert counts in md and counts in html
    # one verdict line per experiment, each a real sentence (no experiment of the mini store lacks trials)
    verdicts = pd.read_csv(mini_report / "verdicts.csv")
    assert verdicts["id"].tolist() == list(EXPERIMENTS)
    doc = json.loads((mini_report / "verdicts.json").read_text())
    screen = check_lines(doc)  # the first screen: theory verdicts beside the optimizer's reach
    assert len(screen) == 1 + len(EXPERIMENTS)  # the grid line, then every experiment
    for line in screen:
        assert line in md and _html.escape(line) in html
    for eid, verdict in zip(verdicts["id"], verdicts["verdict"], strict=True):
        assert verdict != "no trials", eid
    # every image referenced exists, every experiment has its figure and tables
    images = re.findall(r"<img src='([^']+)'", html)
    assert sorted(images) == sorted(f"{eid}.png" for eid in EXPERIMENTS)
    for name in images:
        assert (mini_report / name).stat().st_size > 10_000
    for eid in EXPERIMENTS:
        assert f"![{eid}]({eid}.png)" in md
        assert (mini_report / f"{eid}.csv").exists() and (mini_report / f"{eid}.md").exists()
    # the grid table lists every experiment block with its trial count
    grid = pd.read_csv(mini_report / "grid.csv")
    frame = load(mini.experiment, mini.uri)
    assert (
        dict(zip(grid["experiment"], grid["trials"], strict=True))
        == frame["experiment"].value_counts().to_dict()
    )
    # the diverged trial is listed
    fails = pd.read_csv(mini_report / "failures.csv")
    assert sorted(fails["status"]) == sorted(
        r.status for r in mini.results if r.status != "finished"
    )
    # the failed trial's reason comes from its traceback.txt artifact
    (reason,) = fails.loc[fails["status"] == "failed", "error"]
    (failed,) = [r for r in mini.results if r.status == "failed"]
    assert reason == failed.error.strip().splitlines()[-1].strip() and reason.startswith(
        "ValueError"
    )
    stdout = (mini_report / "stdout.txt").read_text().splitlines()
    for eid, status in zip(verdicts["id"], verdicts["status"], strict=True):  # one line each
        (line,) = [ln for ln in stdout if ln.split()[:1] == [eid]]
        assert line.split()[1:3] == ["theory", status]
    doc = json.loads((mini_report / "verdicts.json").read_text())
    assert [e["id"] for e in doc["experiments"]] == list(EXPERIMENTS)
    assert [e["status"] for e in doc["experiments"]] == verdicts["status"].tolist()


def test_table_numbers_match_the_runs(mini_report, mini) -> None:
    """E1's CSV (written from MLflow) against the TrialResults that were recorded."""
    e1 = pd.read_csv(mini_report / "E1_trials.csv")
    frame = load(mini.experiment, mini.uri).set_index("run_id")
    by_key = mini.by_key()
    assert len(e1) == sum(s.experiment == "E1" for s in mini.specs)
    for _, row in e1.iterrows():
        spec, res = by_key[frame.loc[row["run_id"], "trial_key"]]
        assert row["beta"] == spec.train.beta
        assert row["trained_rank"] == res.layers[0].rank
        assert row["predicted_rank"] == res.extra["predicted_rank"]
        assert row["rel_gap"] == pytest.approx(res.rel_gap, rel=1e-15, abs=1e-300)


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_smoke_report_and_missing_experiment(smoke, tmp_path) -> None:
    proc = _run(
        [
            "--experiment",
            smoke.experiment,
            "--out",
            str(tmp_path / "r"),
            "--tracking-uri",
            smoke.uri,
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (tmp_path / "r" / "README.md").read_text()
    status = load(smoke.experiment, smoke.uri)["status"]
    n, div, fail = (
        len(smoke.specs),
        int((status == "diverged").sum()),
        int((status == "failed").sum()),
    )
    assert f"{n} trials: {n - div - fail} finished, {div} diverged, {fail} failed" in md
    absent = [ln for ln in md.splitlines() if ln.startswith("no trials in this store: ")]
    assert absent and "E6" in absent[0]  # the smoke grid has no 1-D data: one line, no section
    assert "## E6 " not in md
    assert (tmp_path / "r" / "E1.png").exists()  # 2-layer linear trials matched structurally
    missing = _run(
        ["--experiment", "no-such-grid", "--out", str(tmp_path / "x"), "--tracking-uri", smoke.uri],
        tmp_path,
    )
    assert missing.returncode == 2 and "no trials" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_check_gates_on_fail_end_to_end(tmp_path) -> None:
    """``--check`` on real MLflow stores written by the sweep's writer: the ideal store exits
    0, also with ``--strict`` (experiments of other grids, with no trial here, never count);
    the same store with an E4 network below P* exits 1 and says ``E4  theory FAIL``."""
    import copy

    from tests.analysis.conftest import record
    from tests.analysis.synthetic import ideal

    specs, results = ideal()
    uri = f"sqlite:///{tmp_path / 'ideal.db'}"
    record(uri, tmp_path / "art", "ideal", specs, results)
    bad = [copy.deepcopy(r) for r in results]
    for s, r in zip(specs, bad, strict=True):
        if s.experiment == "E4":
            r.polished_objective = r.exact_objective * (1 - 1e-6)
    uri_bad = f"sqlite:///{tmp_path / 'bad.db'}"
    record(uri_bad, tmp_path / "art_bad", "ideal", specs, bad)

    def check(store: str, *extra: str) -> subprocess.CompletedProcess:
        return _run(
            ["--experiment", "ideal", "--out", str(tmp_path / "r"), "--tracking-uri", store,
             "--no-curves", "--check", *extra],
            tmp_path,
        )  # fmt: skip

    ok = check(uri)
    assert ok.returncode == 0, ok.stdout + ok.stderr[-2000:]
    lines = {ln.split()[0]: ln.split()[2] for ln in ok.stdout.splitlines() if ln[:1] in "ER"}
    assert {k: v for k, v in lines.items() if k in [s.experiment for s in specs]} == {
        s.experiment: "PASS" for s in specs
    }
    doc = json.loads((tmp_path / "r" / "verdicts.json").read_text())
    absent = [e["id"] for e in doc["experiments"] if e["trials"] == 0]  # e.g. E11: another grid
    assert ok.stdout.splitlines()[-2] == f"no trials in this store: {', '.join(absent)}"
    assert not {k for k, v in lines.items() if v == "INCONCLUSIVE"}
    strict = check(uri, "--strict")  # nothing this store ran is INCONCLUSIVE
    assert strict.returncode == 0, strict.stdout + strict.stderr[-2000:]
    failing = check(uri_bad)
    assert failing.returncode == 1
    assert any(ln.split()[:3] == ["E4", "theory", "FAIL"] for ln in failing.stdout.splitlines())
    assert "FAIL" in failing.stderr
