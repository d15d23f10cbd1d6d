"""``python -m analysis --check`` on real MLflow stores of the ideal trials (``synthetic.ideal``,
recorded by the sweep's own writer): exit 0 as recorded; exit 1 after each tamper — a network
below P*, a structure changed on a network at the optimum, two routes to P* that disagree, an
objective changed in the store without its gap, trials missing from the grid — and exit 1 with
"optimizer" for an expectation SGD does not meet. No training: seconds.
"""

from __future__ import annotations

import copy
import sqlite3
import subprocess
import sys

import pytest

from analysis.__main__ import main
from tests.analysis.conftest import REPO, record
from tests.analysis.synthetic import ideal

pytestmark = pytest.mark.slow  # seven CLI runs on MLflow stores: ~20 s each on a loaded machine


def _store(
    tmp_path, change=None, *, keep=None, grid_size: int | None = None, expect: float | None = None
) -> str:
    """The ideal trials (``change(spec, result)`` applied to each; only ``keep(spec)`` ones
    recorded) in a fresh SQLite store whose sweep logged ``grid_size`` trials; ``expect``: the
    parent run is opened by the sweep's own ``_start`` for a grid file with
    ``grid.expect_reach: expect``."""
    specs, results = ideal()
    results = [copy.deepcopy(r) for r in results]
    if change is not None:
        for s, r in zip(specs, results, strict=True):
            change(s, r)
    pairs = [(s, r) for s, r in zip(specs, results, strict=True) if keep is None or keep(s)]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    if expect is not None:
        from sweep.config import load
        from sweep.runner import _start
        from sweep.tracking import Store, Tracker

        sweep = load({"grid": {"name": "ideal", "expect_reach": expect}})
        tracker = Tracker(Store(uri=uri, artifacts=(tmp_path / "art").as_uri()), "ideal")
        _start(tracker, sweep, [p[0] for p in pairs], [p[0] for p in pairs], [], "")
        for s, r in pairs:
            tracker.record(s, r)
        tracker.finish("FINISHED")
    elif grid_size is None:
        record(uri, tmp_path / "art", "ideal", [p[0] for p in pairs], [p[1] for p in pairs])
    else:
        from sweep.tracking import Store, Tracker

        tracker = Tracker(Store(uri=uri, artifacts=(tmp_path / "art").as_uri()), "ideal")
        tracker.start(params={"grid": "ideal", "trials": grid_size})
        for s, r in pairs:
            tracker.record(s, r)
        tracker.finish("FINISHED")
    return uri


def _check(tmp_path, uri: str, *extra: str) -> int:
    return main(
        ["--experiment", "ideal", "--tracking-uri", uri, "--out", str(tmp_path / "rep"),
         "--no-curves", "--check", *extra]
    )  # fmt: skip


def test_the_ideal_store_passes_through_the_cli(tmp_path, capsys) -> None:
    uri = _store(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "--experiment", "ideal", "--tracking-uri", uri,
         "--out", str(tmp_path / "rep"), "--no-curves", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()
    assert first[0] == f"grid: {len(ideal()[0])}/{len(ideal()[0])} trials of the grid recorded"
    e5 = [ln for ln in first if ln.startswith("E5 ")][0]
    assert "theory PASS" in e5 and "SGD reached P* within 1e-4 in 3/3" in e5


@pytest.mark.parametrize(
    ("tamper", "eid"),
    [
        (lambda s, r: setattr(r, "polished_objective", r.exact_objective * (1 - 1e-6))
         if s.experiment == "E1" else None, "E1"),  # a network below P*
        (lambda s, r: setattr(r, "w1_alignment", 0.95)
         if s.experiment == "E5" and s.seed == 1 else None, "E5"),  # structure at the optimum
        (lambda s, r: r.extra.__setitem__("dual_bound", r.exact_objective * 1.01)
         if s.experiment == "R1" else None, "R1"),  # two routes to P* disagree
    ],
    ids=["network below P*", "structure changed at the optimum", "routes disagree"],
)  # fmt: skip
def test_each_tamper_fails_the_check(tmp_path, capsys, tamper, eid: str) -> None:
    uri = _store(tmp_path, tamper)
    assert _check(tmp_path, uri) == 1
    out, err = capsys.readouterr()
    assert [ln for ln in out.splitlines() if ln.startswith(f"{eid} ")][0].split()[1:3] == [
        "theory",
        "FAIL",
    ]
    assert "analysis --check: theory — " in err and eid in err


def test_an_objective_changed_in_the_store_without_its_gap_fails(tmp_path, capsys) -> None:
    """``sgd_objective`` of one E1 run raised 2% in the SQLite store itself (metric history and
    latest value), its logged ``rel_gap`` left alone: the record check FAILs."""
    uri = _store(tmp_path)
    assert _check(tmp_path, uri) == 0
    con = sqlite3.connect(tmp_path / "mlruns.db")
    (run,) = con.execute(
        "SELECT r.run_uuid FROM runs r JOIN params p ON p.run_uuid = r.run_uuid "
        "WHERE p.key = 'experiment' AND p.value = 'E1' LIMIT 1"
    ).fetchone()
    for table in ("metrics", "latest_metrics"):
        con.execute(
            f"UPDATE {table} SET value = value * 1.02 WHERE run_uuid = ? AND key = 'sgd_objective'",
            (run,),
        )
    con.commit()
    con.close()
    capsys.readouterr()
    assert _check(tmp_path, uri) == 1
    out, _ = capsys.readouterr()
    e1 = [ln for ln in out.splitlines() if ln.startswith("E1 ")][0]
    assert "theory FAIL" in e1 and "record consistent 3/4 FAIL" in e1


def test_trials_missing_from_the_grid_fail(tmp_path, capsys) -> None:
    """Half of E1's trials never recorded (the sweep logged the whole grid): the grid line
    says how many are missing, exit 1 — whatever the verdicts on the rest say."""
    specs = ideal()[0]
    e1 = [s.key for s in specs if s.experiment == "E1"]
    uri = _store(tmp_path, keep=lambda s: s.key not in e1[:2], grid_size=len(specs))
    assert _check(tmp_path, uri) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"grid: {len(specs) - 2}/{len(specs)} trials")
    assert "analysis --check: grid — " in err


def _stuck(s, r) -> None:
    """SGD 2% above P* in E5 (the polish too)."""
    if s.experiment == "E5":
        r.sgd_objective = r.polished_objective = r.exact_objective * 1.02


def test_an_optimizer_expectation_gates_only_when_set(tmp_path, capsys) -> None:
    """SGD 2% above P* in E5 (the polish too): theory never FAILs (exit 0); with
    ``--expect-reach 0.9`` the check fails and the reason says optimizer."""
    stuck = _stuck
    uri = _store(tmp_path, stuck)
    assert _check(tmp_path, uri) == 0
    capsys.readouterr()
    assert _check(tmp_path, uri, "--expect-reach", "0.9") == 1
    out, err = capsys.readouterr()
    assert (
        "optimizer expectation FAIL" in [ln for ln in out.splitlines() if ln.startswith("E5 ")][0]
    )
    assert "analysis --check: optimizer — E4, E5" in err  # E4's ideal SGD is 5e-4 above P*
    assert "theory —" not in err


def test_an_expectation_in_the_grid_file_gates_from_the_parent_run(tmp_path, capsys) -> None:
    """The same store as above (E5 stuck 2% above P*), its sweep started from a grid file with
    ``grid.expect_reach: 0.99``: ``--check`` without the flag reads the expectation from the
    parent run and exits 1 naming the optimizer and where the expectation was set (without
    it the store exits 0: the test above)."""
    uri = _store(tmp_path, _stuck, expect=0.99)
    assert _check(tmp_path, uri) == 1
    out, err = capsys.readouterr()
    assert (
        "optimizer expectation FAIL" in [ln for ln in out.splitlines() if ln.startswith("E5 ")][0]
    )
    assert "analysis --check: optimizer — " in err and "E5" in err
    assert "grid.expect_reach" in err and "theory —" not in err
    doc = (tmp_path / "rep" / "verdicts.json").read_text()
    assert '"reach": 0.99' in doc
