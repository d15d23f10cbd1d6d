"""Real ``python -m sweep`` drivers for the reliability suite, and counts read straight from the
store's database (SQL on the SQLite file or on PostgreSQL, not through MLflow), so what is
counted does not depend on the code under test."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A grid of tiny trials (milliseconds each), one trial per batch so that the writes of a driver
# are spread over its lifetime; the seed axis gives the number of trials.
TINY = [
    "runner=inline",
    "runner.batch_size=1",
    "runner.device=cpu",
    "data.n=6",
    "data.d=3",
    "model.width=3",
    "train.steps=10",
    "train.log_every=5",
    "sweep.progress=false",
]


def seeds(n: int) -> str:
    return "seed=[" + ",".join(str(i) for i in range(n)) + "]"


def env(**extra: str) -> dict[str, str]:
    """A driver's environment: the repository importable, one thread, no inherited store."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out["OMP_NUM_THREADS"] = "1"
    out["MKL_NUM_THREADS"] = "1"
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def command(name: str, n: int, *, uri: str | None, artifacts: Path | None, hydra: Path) -> list:
    """``python -m sweep`` on the tiny grid ``name`` of ``n`` trials."""
    cmd = [sys.executable, "-m", "sweep", f"grid.name={name}", seeds(n), *TINY]
    if uri is not None:
        cmd.append(f"tracking.uri={uri}")
    if artifacts is not None:
        cmd.append(f"tracking.artifacts={artifacts}")
    # Hydra's own record of the invocation goes outside the directories the tests watch
    return cmd + [f"hydra.run.dir={hydra}", "hydra.output_subdir=null"]


def start(cmd: list, cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=env(), stdout=log.open("w"), stderr=subprocess.STDOUT, text=True
    )


def run(cmd: list, cwd: Path, timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    """Run to the end; returns the process and its wall time in seconds."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - t0


def kill9(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc``; True when it was still running (so the kill hit it)."""
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return alive


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 900) -> bool:
    """Poll ``cond`` every few ms until it holds (True) or ``proc`` exits (False); after
    ``timeout`` s (a hung driver) ``proc`` is killed and TimeoutError raised."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return cond()
        time.sleep(0.004)
    kill9(proc)
    raise TimeoutError(f"condition not reached within {timeout} s")


def expected_keys(name: str, n: int) -> set[str]:
    """Trial keys of the tiny grid, from the sweep's own config loading and expansion."""
    from sweep.config import load
    from sweep.grid import expand
    from tests.sweep.conftest import compose

    return {s.key for s in expand(load(compose([f"grid.name={name}", seeds(n), *TINY])))}


# ---------------------------------------------------------------------------- counting

TRIALS_SQL = """
SELECT k.value, r.status FROM runs r
  JOIN experiments e ON e.experiment_id = r.experiment_id
  JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = 'trial_key'
  JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'run_kind' AND t.value = 'trial'
 WHERE e.name = '{name}' AND r.lifecycle_stage = 'active'
"""
PARENTS_SQL = """
SELECT r.status FROM runs r
  JOIN experiments e ON e.experiment_id = r.experiment_id
  JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'run_kind' AND t.value = 'sweep'
 WHERE e.name = '{name}'
"""


def sqlite_rows(db: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the SQLite file ([] while the store does not exist). Opened read-write
    (never created) and only read: after a ``kill -9`` inside a transaction the store has a hot
    ``-journal`` that the first opener rolls back, which a read-only connection refuses."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=10)
    except sqlite3.Error:
        return []
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not there yet
        return []
    finally:
        con.close()


def finished_per_key(rows: list[tuple]) -> Counter:
    return Counter(key for key, status in rows if status == "FINISHED")


def assert_exactly_once(rows: list[tuple], keys: set[str]) -> Counter:
    """Every key of the grid has exactly one FINISHED trial run; nothing else is FINISHED."""
    counts = finished_per_key(rows)
    lost = sorted(keys - set(counts))
    doubled = {k: c for k, c in counts.items() if c > 1}
    strangers = sorted(set(counts) - keys)
    assert not lost and not doubled and not strangers, (
        f"{len(keys)} keys: {len(lost)} lost, {len(doubled)} with more than one FINISHED run "
        f"({sum(doubled.values())} runs), {len(strangers)} unknown keys"
    )
    return counts
