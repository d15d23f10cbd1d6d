"""Several ``python -m sweep`` drivers started together on one grid (issue 12, defects 2 and 3):
on a fresh SQLite store (one machine) and on an MLflow tracking server backed by PostgreSQL
(several machines). Every driver exits 0, no trial is lost, and every trial key has exactly one
FINISHED run (the drivers' claims, sweep.tracking). Counted with SQL on the database itself.
"""

from __future__ import annotations

import subprocess
import time
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
    from tests.cluster.harness import MlflowServer, Postgres, find_pg_bin

    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make system-deps installs it)")
    pg = Postgres(bindir)
    try:
        pg.start()
    except KeyError:
        pytest.skip("running as root but there is no 'postgres' system user to run PostgreSQL as")
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
