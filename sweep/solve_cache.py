"""Optima shared across the processes of one machine: each problem is solved once.

A sweep's trials that differ only in width (or in training settings) share one problem, hence
one optimum over every width (:func:`sweep.trial._solve_any_width`). Within a process a memo
already shares it; across processes — Ray workers running different batches, a resumed or
re-run sweep, a second grid on the same data — this file cache does: ``python -m sweep
+grid=deep_relu`` solved each raw-data K = 3 problem twice (widths 10 and 50, 300–700 s each)
before it.

- **Where:** ``$DUALSWEEP_CACHE`` (a directory), else ``$XDG_CACHE_HOME/dualsweep/optima``, else
  ``~/.cache/dualsweep/optima``. ``DUALSWEEP_CACHE=off`` turns it off; deleting the directory
  clears it. On a Ray cluster each node has its own unless the directory is shared.
- **Key:** the problem's content (X, Y, β, depth, activation, bias, batch norm) and a digest of
  the solver code and of the numerical libraries' versions: an edit to ``solvers/`` or an upgrade
  never returns an optimum computed by other code.
- **Once:** a process about to solve takes an exclusive lock on the key (``fcntl.flock``, freed
  by the OS if the process dies); another process wanting the same key waits for it and reads
  the result. :func:`busy` lets a batch take its other problems first (:func:`order`).
- **What a hit returns:** the optimum as the first process computed it, warm-started from that
  trial's networks — P* and its certificate are properties of the problem; the network reaching
  it (and, for a bracket, the bracket) may differ from what another trial's warm start gives.
- **Format:** pickles written atomically (a temporary file, then ``os.replace``) in a directory
  of the user's own; an entry that cannot be read is solved again and rewritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "busy", "cache_dir", "order", "problem_key", "solve_once"]

CACHE_ENV = "DUALSWEEP_CACHE"
OFF = ("off", "0", "false", "no", "none")
LIBRARIES = ("numpy", "scipy", "pyscipopt", "scs")  # their versions enter the key
MIN_SECONDS = 1.0  # solves quicker than this are not written


def cache_dir() -> Path | None:
    """The cache directory (created on first write), or None when ``DUALSWEEP_CACHE=off``."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dualsweep" / "optima"


@functools.cache
def code_digest() -> str:
    """sha256 of every ``solvers/*.py`` (sorted by name) and the libraries' versions."""
    import solvers

    h = hashlib.sha256()
    for path in sorted(Path(solvers.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=-;".encode())
    return h.hexdigest()


def problem_key(problem: Any) -> str:
    """The cache key of ``problem`` at every width (its content and :func:`code_digest`)."""
    return hashlib.sha256(
        problem.X.tobytes()
        + problem.Y.tobytes()
        + repr(
            (problem.X.shape, problem.Y.shape, problem.beta, problem.depth, problem.activation)
            + (problem.bias, problem.batchnorm)
        ).encode()
        + code_digest().encode()
    ).hexdigest()


def _paths(key: str) -> tuple[Path, Path] | None:
    root = cache_dir()
    return None if root is None else (root / f"{key}.pkl", root / f"{key}.lock")


def _read(path: Path) -> tuple[bool, Any]:
    try:
        with path.open("rb") as f:
            return True, pickle.load(f)
    except FileNotFoundError:
        return False, None
    except Exception:  # truncated by a full disk, unreadable after a class moved: solve again
        return False, None


def _write(path: Path, value: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(lock: Path, *, block: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of ``lock`` (yields True), or yield False at once when
    ``block=False`` and another process holds it."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def busy(key: str) -> bool:
    """Whether another process is solving ``key`` right now (holds its lock)."""
    paths = _paths(key)
    if paths is None or paths[0].exists() or not paths[1].exists():
        return False
    try:
        with _locked(paths[1], block=False) as got:
            return not got
    except OSError:
        return False


def order(keys: Sequence[str | None]) -> Iterator[int]:
    """Indices of ``keys`` in the order a batch should solve them: at each step the first whose
    key no other process is solving (None: no key, never busy), else the first left (it waits).
    Two workers given the same problems in the same order thus solve different ones first."""
    left = list(range(len(keys)))
    while left:
        pick = next((i for i in left if keys[i] is None or not busy(keys[i])), left[0])
        left.remove(pick)
        yield pick


def solve_once(key: str, solve: Callable[[], Any]) -> Any:
    """``solve()``'s value for ``key``: read from the cache, or computed under the key's lock
    (a process already computing it is waited for) and stored when it took at least
    :data:`MIN_SECONDS` (closed forms are not worth a file). Off: ``solve()``."""
    paths = _paths(key)
    if paths is None:
        return solve()
    entry, lock = paths
    found, value = _read(entry)
    if found:
        return value
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: the optimum is still computed, only not shared
        return solve()
    with _locked(lock):
        try:
            found, value = _read(entry)  # written while this process waited for the lock
            if found:
                return value
            t0 = time.perf_counter()
            value = solve()
            if time.perf_counter() - t0 >= MIN_SECONDS:
                with contextlib.suppress(OSError):  # a full disk loses the sharing only
                    _write(entry, value)
            return value
        finally:
            # the lock file lives while a solve runs: one waiting on it finds the entry (written
            # first) or, for a cheap solve, solves it too; one arriving later makes a new one
            with contextlib.suppress(OSError):
                os.unlink(lock)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sweep.solve_cache [--clear]``: where the cache is, its entries and size;
    ``--clear`` deletes the entries (a solve running now still writes its own)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sweep.solve_cache", description=main.__doc__)
    parser.add_argument("--clear", action="store_true", help="delete every cached optimum")
    args = parser.parse_args(argv)
    root = cache_dir()
    if root is None:
        print(f"the optima cache is off ({CACHE_ENV}={os.environ.get(CACHE_ENV)})")
        return 0
    entries = sorted(root.glob("*.pkl")) if root.is_dir() else []
    size = sum(p.stat().st_size for p in entries)
    solving = sum(busy(p.stem) for p in root.glob("*.lock")) if root.is_dir() else 0
    print(f"{root}: {len(entries)} optima, {size / 1e6:.1f} MB; {solving} being solved now")
    if args.clear:
        for p in entries:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        print(f"cleared {len(entries)} optima")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
