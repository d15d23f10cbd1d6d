"""``sweep.store`` in-process: the checks that need no MLflow (fast), and against real SQLite
stores: a store half-migrated by a killed MLflow is rebuilt (saying so), an old store holding
runs is refused, the lock between drivers, readers never create a store."""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.config import ConfigError, TrackingConfig
from sweep.store import (
    Store,
    StoreError,
    check_reachable,
    default_uri,
    open_store,
    resolve_store,
    sqlite_path,
)


def test_default_uri_and_resolution(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlruns.db'}"
    store = resolve_store(TrackingConfig(uri="sqlite:///sub/x.db", artifacts="art"), cwd=tmp_path)
    assert store.uri == f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    assert store.artifacts == (tmp_path / "art").as_uri()
    assert sqlite_path(store.uri) == tmp_path / "sub" / "x.db"
    assert sqlite_path("http://127.0.0.1:5000") is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "not a uri")
    with pytest.raises(ConfigError, match="tracking.uri"):
        resolve_store(TrackingConfig(), cwd=tmp_path)


def test_refused_port_is_reported_without_mlflow(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert check_reachable(f"http://127.0.0.1:{port}") == "Connection refused"
    assert check_reachable(f"postgresql://u:p@127.0.0.1:{port}/db") == "Connection refused"
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}.*Connection refused"):
        open_store(Store(f"http://127.0.0.1:{port}", None), "x")
    # the check runs before mlflow (~2 s to import) is imported: a fresh interpreter shows it
    code = (
        "import sys\n"
        "from sweep.store import Store, StoreError, open_store\n"
        "try:\n"
        f"    open_store(Store('http://127.0.0.1:{port}', None), 'x')\n"
        "except StoreError:\n"
        "    print(sorted(m for m in ('mlflow', 'torch', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    "content, match",
    [(b"not a database at all" * 10, "not a SQLite database"), (None, "does not exist")],
)
def test_bad_sqlite_paths_raise_before_anything_is_written(
    tmp_path: Path, content: bytes | None, match: str
) -> None:
    db = tmp_path / "mlruns.db" if content is not None else tmp_path / "missing" / "mlruns.db"
    if content is not None:
        db.write_bytes(content)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(StoreError, match=match):
        open_store(Store(f"sqlite:///{db}", None), "x")
    assert sorted(tmp_path.rglob("*")) == before


# ---------------------------------------------------------------------------- real stores


def _half_migrated(db: Path) -> str:
    """The state MLflow leaves when killed between creating its initial tables and finishing
    its migrations: the initial schema, stamped at the first revision. Returns that revision."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    InitialBase.metadata.create_all(engine)
    script = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    first = list(script.walk_revisions())[-1].revision
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32))")
        con.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{first}')")
    engine.dispose()
    return first


@pytest.mark.slow
def test_half_migrated_store_without_runs_is_rebuilt_saying_so(tmp_path: Path, capsys) -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    db = tmp_path / "mlruns.db"
    first = _half_migrated(db)
    assert first != _get_latest_schema_revision()
    client, exp = open_store(Store(f"sqlite:///{db}", (tmp_path / "art").as_uri()), "rel")
    assert client.get_experiment(exp).name == "rel"
    note = capsys.readouterr().err
    assert "half-created" in note and str(db) in note, note
    aside = [
        p for p in tmp_path.glob("mlruns.db.broken-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(aside) == 1 and _revision(aside[0]) == first  # kept aside, not deleted
    assert _revision(db) == _get_latest_schema_revision()


def _revision(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_old_schema_holding_runs_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "mlruns.db"
    first = _half_migrated(db)
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (1, 'old', 'active')"
    )
    con.execute(
        "INSERT INTO runs (run_uuid, experiment_id, status, lifecycle_stage) "
        "VALUES ('r1', 1, 'FINISHED', 'active')"
    )
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=f"schema {first}.*mlflow db upgrade"):
        open_store(Store(f"sqlite:///{db}", None), "rel")
    assert db.read_bytes() == before


@pytest.mark.slow
def test_a_driver_waits_for_the_lock_then_says_who_holds_it(tmp_path: Path, monkeypatch) -> None:
    import sweep.store as store_mod

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path)!r}, os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(store_mod, "LOCK_WAIT", 0.5)
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="another process has been opening the store"):
            open_store(Store(f"sqlite:///{tmp_path / 'mlruns.db'}", None), "rel")
        assert time.monotonic() - t0 >= 0.5  # it waited first
        assert not (tmp_path / "mlruns.db").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: the lock is free (flock dies with its process)
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    client, exp = open_store(Store(f"sqlite:///{tmp_path / 'mlruns.db'}", None), "rel")
    assert client.get_experiment(exp).name == "rel"


_ONE_RUN = """
import sys
from sweep.store import Store, open_store
client, exp = open_store(Store(sys.argv[1], None), "rel")
run = client.create_run(exp).info.run_id
client.set_terminated(run)
print(exp, run)
"""
_KILLED_MID_TRANSACTION = """
import os, signal, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=DELETE")  # as a store is between its creation and WAL mode
con.execute("PRAGMA cache_size=1")  # spill: pages reach the file, the journal turns hot
con.execute("BEGIN")
con.execute("DELETE FROM runs")
con.execute("INSERT INTO experiments (name, lifecycle_stage) VALUES ('half', 'active')")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_store_killed_inside_a_transaction_is_rolled_back_by_drivers_and_readers(
    tmp_path: Path,
) -> None:
    """``kill -9`` inside a write of a rollback-journal store leaves a hot ``-journal``; the
    next opener rolls it back (nothing of the half-done write, nothing lost). A read-only
    connection refuses such a file ("attempt to write a readonly database"): CI's flake of the
    kill test, whose probe read the store so."""
    import shutil

    db = tmp_path / "mlruns.db"
    made = subprocess.run(  # another process: this one's MLflow would keep the file open
        [sys.executable, "-c", _ONE_RUN, f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    exp, run = made.stdout.split()
    proc = subprocess.run([sys.executable, "-c", _KILLED_MID_TRANSACTION, str(db)], timeout=120)
    assert proc.returncode == -9
    assert Path(f"{db}-journal").stat().st_size > 0  # hot: the kill left it
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            con.execute("SELECT COUNT(*) FROM runs").fetchone()
        finally:
            con.close()
    for who, create in (("reader", False), ("driver", True)):
        copy = tmp_path / who
        copy.mkdir()
        for suffix in ("", "-journal"):
            shutil.copy(f"{db}{suffix}", copy / f"mlruns.db{suffix}")
        cl, got = open_store(Store(f"sqlite:///{copy / 'mlruns.db'}", None), "rel", create=create)
        assert got == exp, who
        assert [r.info.run_id for r in cl.search_runs([exp])] == [run], who
        assert cl.get_experiment_by_name("half") is None, who
        assert not Path(f"{copy / 'mlruns.db'}-journal").exists(), who


@pytest.mark.slow
def test_readers_never_create_a_store(tmp_path: Path) -> None:
    from analysis.load import load, load_parents

    db = tmp_path / "mlruns.db"
    with pytest.raises(StoreError, match="no MLflow store"):
        load("rel", f"sqlite:///{db}")
    with pytest.raises(StoreError, match="no MLflow store"):
        load_parents("rel", f"sqlite:///{tmp_path / 'nope' / 'mlruns.db'}")
    assert list(tmp_path.iterdir()) == []
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "--experiment", "rel", "--out", str(tmp_path / "r")],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2 and proc.stderr.strip().startswith("analysis: there is no MLflow")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_sql_store_whose_tables_differ_is_written_slowly_saying_so_once(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """MLflow pinned below 4, and an MLflow whose tables differ from the ones SqlWriter writes
    (simulated: one column more expected) costs one warning line, not silence."""
    from sweep.sqlstore import SqlWriter
    from sweep.store import Store
    from sweep.tracking import Tracker
    from sweep.writers import MlflowWriter, SqlRunWriter

    store = Store(f"sqlite:///{tmp_path / 'mlruns.db'}", (tmp_path / "art").as_uri())
    assert isinstance(Tracker(store, "fast").writer, SqlRunWriter)
    assert "warning" not in capsys.readouterr().err
    columns = {**SqlWriter._COLUMNS, "params": SqlWriter._COLUMNS["params"] | {"extra"}}
    monkeypatch.setattr(SqlWriter, "_COLUMNS", columns)
    t = Tracker(store, "slow")
    assert isinstance(t.writer, MlflowWriter)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: recording through MLflow's store API")
    assert "params differs in columns extra" in err[0], err
