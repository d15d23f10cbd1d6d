"""Several ``python -m sweep`` drivers started together on one grid (issue 12, defects 2 and 3):
on a fresh SQLite store (one machine) and on an MLflow tracking server backed by PostgreSQL
(several machines). Every driver exits 0, no trial is lost, and every trial key has exactly one
FINISHED run (the drivers' claims, sweep.tracking). Counted with SQL on the database itself.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import helpers as h

pytestmark = pytest.mark.slow

N = 12  # trials of the grid


def _drivers(n: int, cmd_of, cwd: Path, logs: Path) -> list[tuple[int, str, float]]:
    """Start ``n`` drivers at once; wait for all; returns (exit status, output, wall s)."""
    procs = []
    for i in range(n):
        log = logs / f"driver{i}.log"
        procs.append((h.start(cmd_of(i), cwd, log), log, time.monotonic()))
    out = []
    for proc, log, t0 in procs:
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            h.kill9(proc)
        out.append((proc.returncode, log.read_text(), time.monotonic() - t0))
    return out


# ---------------------------------------------------------------------------- SQLite


@pytest.fixture(scope="module", params=[2, 4], ids=lambda n: f"{n}drivers")
def sqlite_sweep(request, tmp_path_factory) -> tuple[int, list, list, set]:
    """``n`` drivers started together on a store that does not exist yet."""
    n = request.param
    d = tmp_path_factory.mktemp(f"sqlite{n}")
    name = f"rel{n}"
    results = _drivers(
        n, lambda i: h.command(name, N, uri=None, artifacts=None, hydra=d / f"h{i}"), d, d
    )
    rows = h.sqlite_rows(d / "mlruns.db", h.TRIALS_SQL.format(name=name))
    print(f"{n} drivers on a fresh SQLite store:", [(rc, round(w, 1)) for rc, _, w in results])
    print(f"  FINISHED runs per key: {sorted(h.finished_per_key(rows).values())}")
    return n, results, rows, h.expected_keys(name, N)


def test_drivers_on_a_fresh_sqlite_store_all_finish_and_lose_nothing(sqlite_sweep) -> None:
    n, results, rows, keys = sqlite_sweep
    for rc, out, _ in results:
        assert rc == 0, out[-3000:]  # no migration race, no crash
        assert "store error" not in out
    counts = h.finished_per_key(rows)
    assert set(counts) == keys  # zero lost


def test_drivers_on_sqlite_run_each_key_exactly_once(sqlite_sweep) -> None:
    _, _, rows, keys = sqlite_sweep
    h.assert_exactly_once(rows, keys)


# ---------------------------------------------------------------------------- server + PostgreSQL


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory) -> Iterator[tuple]:
    """A throw-away PostgreSQL and an MLflow tracking server on it, both on 127.0.0.1."""
    from tests.cluster.harness import MlflowServer, start_postgres

    pg = start_postgres()
    srv = None
    try:
        url = pg.create_database("mlflow")
        srv = MlflowServer(backend=url, workdir=tmp_path_factory.mktemp("server")).start()
        srv.ready(timeout=180)
        yield pg, srv
    finally:
        if srv is not None:
            srv.stop()
        pg.stop()


@pytest.fixture(scope="module", params=[2, 4], ids=lambda n: f"{n}drivers")
def server_sweep(request, pg_server, tmp_path_factory) -> tuple[int, list, list, set]:
    n = request.param
    pg, srv = pg_server
    d = tmp_path_factory.mktemp(f"server{n}")
    name = f"srv{n}"
    results = _drivers(
        n, lambda i: h.command(name, N, uri=srv.uri, artifacts=None, hydra=d / f"h{i}"), d, d
    )
    rows = pg.execute(h.TRIALS_SQL.format(name=name), dbname="mlflow")
    print(f"{n} drivers on a server with PostgreSQL:", [(rc, round(w, 1)) for rc, _, w in results])
    print(f"  FINISHED runs per key: {sorted(h.finished_per_key(rows).values())}")
    return n, results, rows, h.expected_keys(name, N)


def test_drivers_on_a_server_all_finish_and_lose_nothing(server_sweep) -> None:
    n, results, rows, keys = server_sweep
    for rc, out, _ in results:
        assert rc == 0, out[-3000:]
    assert set(h.finished_per_key(rows)) == keys


def test_drivers_on_a_server_run_each_key_exactly_once(server_sweep) -> None:
    _, _, rows, keys = server_sweep
    h.assert_exactly_once(rows, keys)


# ---------------------------------------------------------------------------- failing trials

# A driver whose trials of odd seed raise (make_problem fails: the trial is recorded FAILED).
# Its tiny grid runs in about a second, less than the spread of the drivers' start-up (torch,
# Hydra) on a loaded machine, so each driver waits after opening its parent run until all
# `{n}` drivers have opened theirs: the invocations really overlap before any trial runs.
FAILING_DRIVER = """
import os, runpy, sys, time
import sweep.tracking as tracking
import sweep.trial as trial
make = trial.make_problem
def failing(spec):
    if spec.seed % 2:
        raise RuntimeError(f"injected failure (seed {{spec.seed}})")
    return make(spec)
trial.make_problem = failing
start = tracking.Tracker.start
def start_together(self, **kw):
    out = start(self, **kw)
    open(os.path.join({barrier!r}, f"started-{{os.getpid()}}"), "w").close()
    deadline = time.monotonic() + 300
    while len(os.listdir({barrier!r})) < {n} and time.monotonic() < deadline:
        time.sleep(0.05)
    return out
tracking.Tracker.start = start_together
sys.argv = ["sweep", *sys.argv[1:]]
runpy.run_module("sweep", run_name="__main__", alter_sys=True)
"""


def _status_counts(rows: list[tuple]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for key, status in rows:
        out.setdefault(status, Counter())[key] += 1
    return out


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory) -> tuple:
    """Two drivers started together on a grid whose odd seeds fail, then a third driver after
    both ended; the store's (key, status) rows after the pair and after the third."""
    from sweep.config import load
    from sweep.grid import expand
    from tests.sweep.conftest import compose

    d = tmp_path_factory.mktemp("failing")
    name = "relfail"

    def cmd(i: int, together: int) -> list:
        base = h.command(name, N, uri=None, artifacts=None, hydra=d / f"h{i}")
        assert base[1:3] == ["-m", "sweep"]
        barrier = d / f"barrier{together}"
        barrier.mkdir(exist_ok=True)
        code = FAILING_DRIVER.format(barrier=str(barrier), n=together)
        return [base[0], "-c", code, *base[3:]]

    pair = _drivers(2, lambda i: cmd(i, 2), d, d)
    sql = h.TRIALS_SQL.format(name=name)
    rows_pair = h.sqlite_rows(d / "mlruns.db", sql)
    later, _ = h.run(cmd(2, 1), d, timeout=600)
    rows_later = h.sqlite_rows(d / "mlruns.db", sql)
    specs = expand(load(compose([f"grid.name={name}", h.seeds(N), *h.TINY])))
    failing = {s.key for s in specs if s.seed % 2}
    print("failing grid, 2 drivers:", [(rc, round(w, 1)) for rc, _, w in pair])
    print(f"  runs per key and status after the pair: {_status_counts(rows_pair)}")
    return pair, rows_pair, later, rows_later, failing, {s.key for s in specs} - failing


def test_concurrent_drivers_run_each_failing_key_once(failing_sweep) -> None:
    """A FAILED run of a concurrent driver counts as done for the other: each failing key has
    one FAILED run (not one per driver), each other key one FINISHED run, nothing else."""
    pair, rows, _, _, failing, good = failing_sweep
    for rc, out, _ in pair:
        assert rc == 0, out[-3000:]
    counts = _status_counts(rows)
    assert set(counts) == {"FAILED", "FINISHED"}, counts
    assert counts["FAILED"] == Counter(dict.fromkeys(failing, 1)), counts["FAILED"]
    assert counts["FINISHED"] == Counter(dict.fromkeys(good, 1)), counts["FINISHED"]


def test_a_later_invocation_retries_the_failed_keys(failing_sweep) -> None:
    """Only concurrent drivers share failures: a driver started after both ended runs every
    failed key once more and nothing that finished."""
    _, _, later, rows, failing, good = failing_sweep
    assert later.returncode == 0, later.stdout[-2000:] + later.stderr[-2000:]
    out = later.stdout + later.stderr
    assert f"0 finished, 0 diverged, {len(failing)} failed, {len(good)} skipped" in out, out[-2000:]
    counts = _status_counts(rows)
    assert counts["FAILED"] == Counter(dict.fromkeys(failing, 2)), counts["FAILED"]
    assert counts["FINISHED"] == Counter(dict.fromkeys(good, 1)), counts["FINISHED"]
