"""The frontier benchmark (bench/frontier.py) runs end to end in CI's slow tier: both oracles on
one small shape beyond the enumeration cap, one row each, with a status and a gap. Nothing about
speed is asserted (BENCHMARKS.md records the measurements)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m bench.frontier ARGS`` from the repository root (its own PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "bench.frontier", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_frontier_benchmark_prints_a_row_per_oracle(capsys) -> None:
    pytest.importorskip("pyscipopt")
    proc = _bench("--d", "10", "--ns", "15", "--limit", "20", "--oracles", "old,new")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [ln.split("|") for ln in proc.stdout.splitlines() if ln.startswith("| gaussian")]
    with capsys.disabled():
        print("\n" + proc.stdout)
    assert [r[5].strip() for r in rows] == ["old", "new"]
    assert all(r[6].strip() in ("certified", "bracket") for r in rows)
    assert all(float(r[7]) >= 0 for r in rows)


def test_frontier_benchmark_rejects_an_unknown_oracle() -> None:
    proc = _bench("--oracles", "old,nope", timeout=120)
    assert proc.returncode == 2 and "--oracles: unknown ['nope']" in proc.stderr


def test_brackets_mode_prints_the_shor_bound_beside_the_mip() -> None:
    pytest.importorskip("pyscipopt")
    pytest.importorskip("scs")
    proc = _bench("--brackets", "--shapes", "30x3", "--limit", "20", "--oracles", "old,shor")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [ln.split("|") for ln in proc.stdout.splitlines() if ln.startswith("| gaussian")]
    assert [r[8].strip() for r in rows] == ["old", "shor"]
    for r in rows:  # c value ≤ c bound; P* lower ≤ P* upper
        assert float(r[9]) <= float(r[10]) and float(r[12]) <= float(r[6])


def test_shor_is_refused_outside_brackets_mode() -> None:
    proc = _bench("--oracles", "shor", timeout=120)
    assert proc.returncode == 2 and "--brackets mode only" in proc.stderr
