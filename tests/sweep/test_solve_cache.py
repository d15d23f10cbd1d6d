"""The optima cache shared by the processes of one machine (sweep/solve_cache.py): a second
process reads the first one's solve instead of solving, one arriving while it solves waits for
it, a batch takes the problems no one is solving first, and the key moves with the solver code.
Readiness is read from the other process's output, never waited for with a sleep."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from solvers import Problem
from sweep import solve_cache, trial
from sweep.solve_cache import busy, order, problem_key, solve_once

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "optima"
    monkeypatch.setenv(solve_cache.CACHE_ENV, str(root))
    monkeypatch.setattr(trial, "_SOLVED", type(trial._SOLVED)())  # no in-process memo
    return root


def _problem(seed: int = 0, width: int | None = 4) -> Problem:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 2))
    return Problem(X=X, Y=rng.standard_normal((8, 1)), depth=2, beta=0.1, activation="relu",
                   width=width)  # fmt: skip


def _other(code: str, cache: Path) -> subprocess.Popen:
    """A second Python process with the repository importable and this cache."""
    env = {"PYTHONPATH": str(ROOT), solve_cache.CACHE_ENV: str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _same(a, b) -> None:
    """Two optima equal field by field, bit for bit."""
    assert (a.objective, a.lower_bound, a.status, a.m_star) == (
        b.objective, b.lower_bound, b.status, b.m_star)  # fmt: skip
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert np.array_equal(wa, wb)


def test_a_second_process_reads_the_first_ones_solve(cache: Path, monkeypatch) -> None:
    p = _problem()
    first = _other(
        """
        import pickle
        from sweep import solve_cache, trial
        from tests.sweep.test_solve_cache import _problem
        solve_cache.MIN_SECONDS = 0.0  # store even this quick solve
        opt = trial._solve_any_width(_problem(width=9))  # another width: the same problem
        print(pickle.dumps(opt).hex())
        """,
        cache,
    )
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(list(cache.glob("*.pkl"))) == 1 and not list(cache.glob("*.lock"))

    def no_solve(*a, **k):
        raise AssertionError("solved again: the cache was not read")

    monkeypatch.setattr(trial, "solve", no_solve)
    import pickle

    _same(trial._solve_any_width(p), pickle.loads(bytes.fromhex(out.strip())))


def test_off_solves_every_time_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(solve_cache.CACHE_ENV, "off")
    monkeypatch.setattr(solve_cache, "MIN_SECONDS", 0.0)
    calls = []
    for _ in range(2):
        assert solve_once("k", lambda: calls.append(1) or len(calls)) == len(calls)
    assert calls == [1, 1] and solve_cache.cache_dir() is None


def test_a_process_arriving_while_another_solves_waits_and_reads_its_result(
    cache: Path, monkeypatch
) -> None:
    key = problem_key(_problem())
    other = _other(
        f"""
        import sys
        from sweep import solve_cache
        solve_cache.MIN_SECONDS = 0.0

        def slow():
            print("solving", flush=True)
            sys.stdin.readline()  # until the test says so
            return {{"p_star": 42.0}}

        print(solve_cache.solve_once({key!r}, slow), flush=True)
        """,
        cache,
    )
    try:
        assert other.stdout.readline().strip() == "solving", other.stderr.read()
        assert busy(key)
        got: list = []
        waiter = threading.Thread(target=lambda: got.append(solve_once(key, lambda: "mine")))
        waiter.start()
        waiter.join(timeout=0.5)  # not a sleep for readiness: it must still be waiting
        assert waiter.is_alive() and got == []
        other.stdin.write("go\n")
        other.stdin.flush()
        waiter.join(timeout=120)
        assert got == [{"p_star": 42.0}]  # its result, not this process's own "mine"
        assert not busy(key)
    finally:
        out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err


def test_a_batch_takes_first_the_problems_no_other_process_is_solving(cache: Path) -> None:
    a, b = problem_key(_problem(0)), problem_key(_problem(1))
    assert list(order([a, b, None])) == [0, 1, 2]
    other = _other(
        f"""
        import sys
        from sweep import solve_cache

        def slow():
            print("solving", flush=True)
            sys.stdin.readline()
            return 1.0

        solve_cache.solve_once({a!r}, slow)
        """,
        cache,
    )
    try:
        assert other.stdout.readline().strip() == "solving", other.stderr.read()
        assert list(order([a, b, None])) == [1, 2, 0]  # a's solver is busy: a waits till last
        assert list(order([a, a])) == [0, 1]  # nothing else to take: the first waits
    finally:
        other.communicate("go\n", timeout=120)
    assert list(order([a, b, None])) == [0, 1, 2]


def test_an_unreadable_entry_is_solved_again_and_rewritten(cache: Path, monkeypatch) -> None:
    monkeypatch.setattr(solve_cache, "MIN_SECONDS", 0.0)
    cache.mkdir(parents=True)
    (cache / "k.pkl").write_bytes(b"\x80\x05truncated")
    assert solve_once("k", lambda: "fresh") == "fresh"
    assert solve_once("k", lambda: "again") == "fresh"  # rewritten, read back


def test_quick_solves_are_not_written(cache: Path) -> None:
    assert solve_once("k", lambda: "closed form") == "closed form"
    assert not list(cache.glob("*"))  # neither an entry nor a lock file left


def test_the_key_moves_with_the_solver_code_and_the_problem(monkeypatch) -> None:
    p = _problem()
    key = problem_key(p)
    assert problem_key(_problem(width=9)) == key  # the width is not part of it
    assert problem_key(_problem(seed=1)) != key
    monkeypatch.setattr(solve_cache, "code_digest", lambda: "an edited solvers/")
    assert problem_key(p) != key


def test_the_command_line_shows_the_cache_and_clears_it(cache: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(solve_cache, "MIN_SECONDS", 0.0)
    for key in ("a", "b"):
        solve_once(key, lambda: list(range(1000)))
    assert solve_cache.main([]) == 0
    assert f"{cache}: 2 optima" in capsys.readouterr().out
    assert solve_cache.main(["--clear"]) == 0
    assert "cleared 2 optima" in capsys.readouterr().out
    assert not list(cache.glob("*.pkl"))
    assert solve_once("a", lambda: "solved again") == "solved again"
