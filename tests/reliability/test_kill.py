"""``kill -9`` of a real ``python -m sweep`` driver at 20+ points from the creation of its store
to its last write; after every kill the store opens, and after the rerun every trial of the
grid has exactly one FINISHED run (zero lost, zero doubled). Issue 12, defect 1.

Points are found by watching the store from outside (the temporary file of a store being
created, the parent run, the number of FINISHED trial runs, a trial run still RUNNING), then
``SIGKILL`` after a small delay, so kills land inside the creation, between trials and in the
middle of a trial's write.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.reliability import helpers as h

pytestmark = pytest.mark.slow

N = 16  # trials of the grid
CREATION_FRACTIONS = (0.0, 0.15, 0.3, 0.5, 0.7, 0.9)  # of the time a store takes to create
FINISHED_TARGETS = (1, 2, 4, 6, 8, 10, 12, 14, 15)  # cumulative FINISHED trial runs


def _schema(db: Path) -> tuple[str | None, set[str]]:
    # read-write, as the next driver (and MLflow) opens it: a kill inside a transaction of a
    # rollback-journal store leaves a hot ``-journal`` that the first opener must roll back,
    # which a read-only connection refuses ("attempt to write a readonly database")
    con = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
    try:
        rev = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        names = {r[0] for r in con.execute("SELECT name FROM experiments")}
    finally:
        con.close()
    return rev, names


def _remove_store(d: Path) -> None:
    for p in d.glob("mlruns.db*"):
        p.unlink()


def test_kill_9_at_20_points_from_store_creation_to_last_write(tmp_path: Path) -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = _get_latest_schema_revision()
    keys = h.expected_keys("rel", N)
    assert len(keys) == N
    d = tmp_path / "w"
    d.mkdir()
    db = d / "mlruns.db"
    trials_sql = h.TRIALS_SQL.format(name="rel")
    rng = random.Random(20260226)

    def finished() -> int:
        return sum(h.finished_per_key(h.sqlite_rows(db, trials_sql)).values())

    def parent_running() -> bool:
        return ("RUNNING",) in h.sqlite_rows(db, h.PARENTS_SQL.format(name="rel"))

    def trial_running() -> bool:
        return any(s == "RUNNING" for _, s in h.sqlite_rows(db, trials_sql))

    points: list[tuple[str, object]] = [("parent run open", parent_running)]
    for i, target in enumerate(FINISHED_TARGETS):
        points.append((f"{target} finished", lambda t=target: finished() >= t))
        if i % 3 == 1:
            points.append(("a trial run RUNNING", trial_running))
    points.append(("all finished, parent still open", lambda: finished() >= N))

    def creating() -> bool:
        return db.exists() or any(d.glob(".mlruns.db.creating-*"))

    def complete_or_none(label: str) -> str:
        """A store after a kill is absent or complete (schema at head, experiment in it)."""
        if not db.exists():
            return "none"
        rev, names = _schema(db)
        assert rev == head and "rel" in names, (label, rev, names)
        return "complete"

    # point 0: how long a store takes to create here (temp file -> store), killed once created
    proc = h.start(
        h.command("rel", N, uri=None, artifacts=None, hydra=tmp_path / "h0"), d, tmp_path / "c0.log"
    )
    assert h.wait_for(creating, proc), (tmp_path / "c0.log").read_text()[-2000:]
    t0 = time.monotonic()
    assert h.wait_for(db.exists, proc)
    took = time.monotonic() - t0
    log = [("store created", True, h.kill9(proc), complete_or_none("created"))]
    # points 1..6: kills inside the creation of a fresh store
    for i, frac in enumerate(CREATION_FRACTIONS, 1):
        _remove_store(d)
        cmd = h.command("rel", N, uri=None, artifacts=None, hydra=tmp_path / f"hc{i}")
        proc = h.start(cmd, d, tmp_path / f"c{i}.log")
        assert h.wait_for(creating, proc), (tmp_path / f"c{i}.log").read_text()[-2000:]
        time.sleep(frac * took)
        hit = h.kill9(proc)
        log.append((f"creation +{frac * took:.2f} s", True, hit, complete_or_none(f"c{i}")))
    print(f"store creation took {took:.2f} s here")
    assert any(state == "none" for *_, state in log[1:])  # some kills inside the creation

    # points 7..: from the last creation kill's leftovers to the last write
    for i, (label, cond) in enumerate(points):
        cmd = h.command("rel", N, uri=None, artifacts=None, hydra=tmp_path / f"hydra{i}")
        proc = h.start(cmd, d, tmp_path / f"w{i}.log")
        reached = h.wait_for(cond, proc)
        if reached and "finished" in label:
            time.sleep(rng.uniform(0.0, 0.03))  # land inside the next trial's write, sometimes
        hit = h.kill9(proc)
        log.append((label, reached, hit, finished()))
        assert not list(d.glob(".mlruns.db.creating-*"))  # removed by the next opening
        counts = h.finished_per_key(h.sqlite_rows(db, trials_sql))
        assert all(c == 1 for c in counts.values()), (label, counts)  # never doubled on the way
    print("kills (point, reached, killed while running, state after):", *log, sep="\n  ")
    assert sum(hit for _, _, hit, _ in log) >= 20

    proc, _ = h.run(h.command("rel", N, uri=None, artifacts=None, hydra=tmp_path / "hf"), d)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    h.assert_exactly_once(h.sqlite_rows(db, trials_sql), keys)
    # every parent run is closed: the killed ones marked KILLED by the next driver
    parents = [s for (s,) in h.sqlite_rows(db, h.PARENTS_SQL.format(name="rel"))]
    assert "RUNNING" not in parents and parents.count("FINISHED") >= 1, parents
