"""A store that cannot be created, or one that is damaged (issue 19, defect 4): through a real
``python -m sweep`` and ``python -m analysis``, each is one sentence, exit status 2, within
15 s (the issue's bound on the whole process), and nothing is left behind or changed.

- creation refused by the database (``sqlite:////proc/mlruns.db``) or by a full disk mid-way
  through MLflow's migrations (the driver's file-size limit, ``RLIMIT_FSIZE``, makes SQLite's
  writes fail as a full disk does, without a privileged mount);
- four damaged copies of a real store (a truncated file, garbage over the last page, zeroed
  pages, garbage over middle pages): ``PRAGMA quick_check`` finds each, the sentence names the
  command that copies what can still be read (``python -m sweep.recover``), and that command
  gives a store MLflow's own client reads back.
"""

from __future__ import annotations

import random
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability import helpers as h

pytestmark = pytest.mark.slow

LIMIT = 15.0  # seconds, whole process included
PAGE = 4096  # the page size of MLflow's SQLite stores (SQLite's default)
N = 12  # trials in the store that is damaged


def _one_sentence(proc: subprocess.CompletedProcess, wall: float, prefix: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{err[-3000:]}"
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert err.startswith(prefix) and err.endswith("."), err
    assert wall < LIMIT, f"{wall:.1f} s: {err}"
    return err


def _sweep(db: Path, tmp_path: Path, n: int = N, **popen) -> tuple:
    cmd = h.command("dmg", n, uri=f"sqlite:///{db}", artifacts=None, hydra=tmp_path / "hy")
    return h.run(cmd, tmp_path, timeout=300) if not popen else _run_limited(cmd, tmp_path, **popen)


def _run_limited(cmd: list, cwd: Path, *, fsize: int) -> tuple:
    def limit() -> None:  # in the driver only: its writes past `fsize` bytes fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    import time

    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=cwd, env=h.env(), capture_output=True, text=True, timeout=300, preexec_fn=limit
    )
    return proc, time.monotonic() - t0


def test_a_store_sqlite_cannot_create_is_one_sentence(tmp_path: Path) -> None:
    proc, wall = _sweep(Path("/proc/mlruns.db"), tmp_path)
    err = _one_sentence(proc, wall, "store error: cannot create the store sqlite:////proc/")
    assert "unable to open database file" in err, err
    assert not list(Path("/proc").glob(".mlruns.db*"))


@pytest.mark.parametrize("fsize", [20_000, 200_000])  # at SQLite's first write; mid-migration
def test_a_disk_full_during_creation_is_one_sentence_and_leaves_nothing(
    tmp_path: Path, fsize: int
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    proc, wall = _sweep(store / "mlruns.db", tmp_path, fsize=fsize)
    err = _one_sentence(proc, wall, "store error: cannot create the store")
    assert "disk I/O error" in err or "full" in err, err
    assert sorted(p.name for p in store.iterdir()) == []  # no store, no .mlruns.db.creating-PID


# ---------------------------------------------------------------------------- damaged stores


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    db = d / "mlruns.db"
    proc, _ = _sweep(db, d)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not Path(f"{db}-wal").exists()  # the driver's last connection checkpointed it
    return db


def _schema_pages(db: Path) -> set[int]:
    """The pages of the table list (``sqlite_schema``), from SQLite's ``dbstat``."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def _damage(src: Path, dst: Path, kind: str) -> bool:
    """Copy ``src`` to ``dst`` damaged as ``kind``; whether the table list survived."""
    shutil.copy(src, dst)
    pages = dst.stat().st_size // PAGE
    schema = _schema_pages(src)
    mid = [p for p in range(pages // 3, pages) if p not in schema]  # 1-based page numbers
    rng = random.Random(0)
    with open(dst, "r+b") as fh:
        if kind == "truncated":
            fh.truncate(pages // 2 * PAGE)
            return max(schema) <= pages // 2
        if kind == "garbage-last-page":
            hit = [pages]
        elif kind == "zeroed-pages":
            hit = mid[:8]
        else:  # garbage-middle-pages
            hit = mid[len(mid) // 2 : len(mid) // 2 + 8]
        for p in hit:
            fh.seek((p - 1) * PAGE)
            fh.write(bytes(PAGE) if kind == "zeroed-pages" else rng.randbytes(PAGE))
    return not schema & set(hit)


KINDS = ["truncated", "garbage-last-page", "zeroed-pages", "garbage-middle-pages"]


@pytest.fixture(params=KINDS)
def damaged(request, good_store: Path, tmp_path: Path) -> tuple[bool, Path]:
    db = tmp_path / "store" / "mlruns.db"
    db.parent.mkdir()
    return _damage(good_store, db, request.param), db


def _analysis(db: Path, cwd: Path) -> tuple:
    cmd = [sys.executable, "-m", "analysis", "--experiment", "dmg", "--out", str(cwd / "rep"),
           "--tracking-uri", f"sqlite:///{db}"]  # fmt: skip
    return h.run(cmd, cwd, timeout=300)


def test_a_damaged_store_is_one_sentence_for_the_sweep_and_analysis(
    damaged: tuple[bool, Path], tmp_path: Path
) -> None:
    listed, db = damaged
    before = db.read_bytes()
    sentences = []
    for proc, wall in (_sweep(db, tmp_path, N + 1), _analysis(db, tmp_path)):
        sentences.append(_one_sentence(proc, wall, ""))
    for err, prefix in zip(sentences, ("store error: ", "analysis: "), strict=True):
        assert err.startswith(f"{prefix}the store sqlite:///{db} is damaged"), err
        if not listed:  # the table list is on the lost pages: nothing can be copied
            assert "beyond reading" in err and "restore it from a backup" in err, err
        else:
            assert f"`python -m sweep.recover {db} " in err, err
    assert db.read_bytes() == before  # neither wrote a byte
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlruns.db"]
    assert not (tmp_path / "rep").exists()


def test_recover_copies_the_runs_that_can_be_read(good_store: Path, tmp_path: Path) -> None:
    """The command the sentence names: for each damage that leaves the table list readable, a
    new store MLflow's client reads; its runs are whole runs of the damaged store (nothing
    made up: each run's trial key and params equal the undamaged store's)."""
    from sweep.store import open_store, search_runs

    def runs(db: Path) -> dict:
        cl, exp = open_store(f"sqlite:///{db}", "dmg", create=False)
        return {r.info.run_id: (r.data.tags.get("trial_key"), r.data.params)
                for r in search_runs(cl, exp)}  # fmt: skip

    truth, got = runs(good_store), {}
    for kind in KINDS:
        db = tmp_path / kind / "mlruns.db"
        db.parent.mkdir()
        if not _damage(good_store, db, kind):
            continue
        new = db.with_name("mlruns-recovered.db")
        proc, _ = h.run([sys.executable, "-m", "sweep.recover", str(db), str(new)], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith("recovered "), proc.stdout
        got = runs(new)
        assert got and all(truth[rid] == v for rid, v in got.items()), kind
    assert got, "no damage left the table list readable"
    again = h.run([sys.executable, "-m", "sweep.recover", str(db), str(new)], tmp_path)[0]
    assert again.returncode == 2 and "exists" in again.stderr, again.stderr
