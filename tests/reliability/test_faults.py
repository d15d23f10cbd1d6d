"""Store and server faults (issue 12, defect 5): each is one sentence naming the store and what
to do, exit status 2, within 10 s, and nothing is written — through a real ``python -m sweep``.

The 10 s bound is the issue's requirement on a hang (MLflow's own retries took 105–252 s), not
a speed benchmark: the check itself uses a 3 s timeout (``sweep.store.CHECK_TIMEOUT``). On a
machine so loaded that merely starting a driver takes seconds, the bound is the start-up time
(a dry run of the same grid, measured once) plus that timeout plus 3 s, if that is larger.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep.store import CHECK_TIMEOUT
from tests.reliability import helpers as h

pytestmark = pytest.mark.slow

LIMIT = 10.0  # seconds, whole driver process included


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder`` with its size, mtime and first bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, p.read_bytes()[:64])
        else:
            out[str(p.relative_to(folder))] = (-1, 0, b"")
    return out


_STARTUP: list[float] = []  # wall time of a dry run of the grid (a driver without a store)


def _limit() -> float:
    if not _STARTUP:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            cmd = h.command("rel", 3, uri=None, artifacts=None, hydra=Path(tmp) / "hydra")
            proc, wall = h.run([*cmd, "sweep.dry_run=true"], Path(tmp), timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        _STARTUP.append(wall)
    return max(LIMIT, _STARTUP[0] + CHECK_TIMEOUT + 3.0)


def _one_sentence_exit_2(proc: subprocess.CompletedProcess, wall: float, *names: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{err[-3000:]}"
    assert wall < _limit(), f"{wall:.1f} s (a dry run took {_STARTUP[0]:.1f} s): {err}"
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert err.startswith("store error: ") and err.endswith("."), err
    for name in names:
        assert name in err, (name, err)
    assert "trials" not in proc.stdout  # the sweep never started
    return err


def _sweep(cwd: Path, tmp_path: Path, uri: str | None, *extra: str) -> tuple:
    cmd = h.command("rel", 3, uri=uri, artifacts=None, hydra=tmp_path / "hydra") + list(extra)
    return h.run(cmd, cwd, timeout=600)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def test_unreachable_server_is_refused_in_seconds(work: Path, tmp_path: Path) -> None:
    proc, wall = _sweep(work, tmp_path, "http://127.0.0.1:9")
    err = _one_sentence_exit_2(proc, wall, "http://127.0.0.1:9", "Connection refused")
    assert "cluster/mlflow-server.sh" in err
    assert _snapshot(work) == {}
    print(f"unreachable server: exit 2 after {wall:.1f} s: {err}")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_server_that_never_answers_times_out_in_seconds(
    work: Path, tmp_path: Path, silent_port: int
) -> None:
    uri = f"http://127.0.0.1:{silent_port}"
    proc, wall = _sweep(work, tmp_path, uri)
    err = _one_sentence_exit_2(proc, wall, uri, "no answer within")
    assert _snapshot(work) == {}
    print(f"silent server: exit 2 after {wall:.1f} s: {err}")


def test_unreachable_database_url_is_refused_and_hides_the_password(
    work: Path, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"postgresql://mlflow:s3cret@127.0.0.1:{port}/mlflow"
    proc, wall = _sweep(work, tmp_path, uri)
    err = _one_sentence_exit_2(proc, wall, f"127.0.0.1:{port}/mlflow")
    assert "s3cret" not in err and "***" in err
    print(f"unreachable database: exit 2 after {wall:.1f} s: {err}")


def test_garbage_default_store_is_named_and_left_alone(work: Path, tmp_path: Path) -> None:
    db = work / "mlruns.db"
    db.write_bytes(b"these are my lab notes, not a database\n" * 100)
    before = _snapshot(work)
    proc, wall = _sweep(work, tmp_path, None)  # the default store: ./mlruns.db
    err = _one_sentence_exit_2(proc, wall, str(db), "not a SQLite database")
    assert _snapshot(work) == before
    print(f"garbage store: exit 2 after {wall:.1f} s: {err}")


def _immutable(path: Path) -> None:
    """Make ``path`` read-only even for root (``chattr +i``), or skip."""
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make {path} read-only here (chattr: {r.stderr.strip()})")


def _mutable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.fixture
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store with one finished sweep of the grid (written by a driver)."""
    d = tmp_path_factory.mktemp("good")
    proc, _ = h.run(h.command("rel", 3, uri=None, artifacts=None, hydra=d / "hydra"), d)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return d


def test_read_only_store_is_refused_and_unchanged(good_store: Path, tmp_path: Path) -> None:
    db = good_store / "mlruns.db"
    if os.geteuid() == 0:
        _immutable(db)
    else:
        db.chmod(0o444)
    try:
        before = _snapshot(good_store)
        proc, wall = _sweep(good_store, tmp_path, None)
        err = _one_sentence_exit_2(proc, wall, str(db), "cannot be written")
        after = _snapshot(good_store)
    finally:
        _mutable(db)
        db.chmod(0o644)
    assert after == before
    print(f"read-only store: exit 2 after {wall:.1f} s: {err}")


def test_store_in_a_read_only_directory_is_refused(work: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        _immutable(work)
    else:
        work.chmod(0o555)
    try:
        proc, wall = _sweep(work, tmp_path, None)
        err = _one_sentence_exit_2(proc, wall, str(work))
        after = _snapshot(work)
    finally:
        _mutable(work)
        work.chmod(0o755)
    assert after == {}
    print(f"read-only directory: exit 2 after {wall:.1f} s: {err}")


def test_store_under_a_missing_directory_is_not_created(work: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    uri = f"sqlite:///{missing / 'mlruns.db'}"
    proc, wall = _sweep(work, tmp_path, uri)
    err = _one_sentence_exit_2(proc, wall, str(missing), "mkdir -p")
    assert not (tmp_path / "no").exists()  # MLflow alone would create all three directories
    assert _snapshot(work) == {}
    print(f"missing directory: exit 2 after {wall:.1f} s: {err}")


def test_artifacts_under_a_missing_directory_are_not_created(work: Path, tmp_path: Path) -> None:
    """tracking.artifacts whose parent is missing: one sentence, exit 2, no directory made and
    no store written; once the parent exists the same command runs and makes the directory."""
    art = tmp_path / "no" / "such" / "art"
    cmd = h.command("rel", 2, uri=None, artifacts=art, hydra=tmp_path / "hydra")
    proc, wall = h.run(cmd, work, timeout=600)
    err = _one_sentence_exit_2(proc, wall, str(art), "tracking.artifacts", f"mkdir -p {art.parent}")
    assert not (tmp_path / "no").exists()  # MLflow alone would create all three directories
    assert _snapshot(work) == {}  # nor the default store
    print(f"missing artifacts parent: exit 2 after {wall:.1f} s: {err}")
    art.parent.mkdir(parents=True)
    proc, _ = h.run(cmd, work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert art.is_dir() and any(art.rglob("*.json"))
    assert (work / "mlruns.db").exists() and not (work / "mlartifacts").exists()
    h.assert_exactly_once(
        h.sqlite_rows(work / "mlruns.db", h.TRIALS_SQL.format(name="rel")),
        h.expected_keys("rel", 2),
    )
