"""SIGTERM (what ``kill``, SLURM and Kubernetes send) stops a real ``python -m sweep`` as Ctrl-C
does (issue 19, defect 2): exit status 143, one sentence, the parent run KILLED, no claim left
RUNNING — inline and on a local Ray instance. The signal is sent once the store shows the sweep
under way (a RUNNING parent run and a FINISHED trial), never after a fixed sleep."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability import helpers as h

pytestmark = pytest.mark.slow

LIMIT = 15.0  # seconds from the signal to the driver's exit (the bound)
SENTENCE = (
    "terminated (SIGTERM): the trials that finished are recorded; run the same command to resume."
)


def _terminate(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float, Path]:
    db = tmp_path / "mlruns.db"
    cmd = h.command("term", 400, uri=f"sqlite:///{db}", artifacts=None, hydra=tmp_path / "hy")
    proc = subprocess.Popen(
        [*cmd, *extra],
        cwd=tmp_path,
        env=h.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def under_way() -> bool:
        parents = h.sqlite_rows(db, h.PARENTS_SQL.format(name="term"))
        trials = h.sqlite_rows(db, h.TRIALS_SQL.format(name="term"))
        return ("RUNNING",) in parents and any(s == "FINISHED" for _, s in trials)

    try:
        assert h.wait_for(under_way, proc, timeout=300), "the sweep ended before it was under way"
        assert proc.poll() is None, "the sweep ended before the signal"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        wall = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            h.kill9(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), wall, db


def _check(proc: subprocess.CompletedProcess, wall: float, db: Path) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 143, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    assert lines and lines[-1] == SENTENCE, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert wall < LIMIT, f"{wall:.1f} s from SIGTERM to exit"
    assert h.sqlite_rows(db, h.PARENTS_SQL.format(name="term")) == [("KILLED",)]
    trials = h.sqlite_rows(db, h.TRIALS_SQL.format(name="term"))
    # every active child run is a recorded result: the claims of trials that never came back
    # were withdrawn (deleted), none is left RUNNING
    assert trials and {s for _, s in trials} == {"FINISHED"}, trials
    assert len(trials) < 400, "the sweep ran to the end: the signal came too late to test"


def test_sigterm_inline_is_one_sentence_exit_143_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    proc, wall, db = _terminate(tmp_path)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    _check(proc, wall, db)


def test_sigterm_with_ray_is_one_sentence_exit_143_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    proc, wall, db = _terminate(tmp_path, "runner.kind=local", "runner.num_cpus=1")
    _check(proc, wall, db)
