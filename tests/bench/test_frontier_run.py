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


def test_frontier_benchmark_prints_a_row_per_oracle(capsys) -> None:
    pytest.importorskip("pyscipopt")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.frontier", "--d", "10", "--ns", "15", "--limit", "20",
         "--oracles", "old,new"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [ln.split("|") for ln in proc.stdout.splitlines() if ln.startswith("| gaussian")]
    with capsys.disabled():
        print("\n" + proc.stdout)
    assert [r[5].strip() for r in rows] == ["old", "new"]
    assert all(r[6].strip() in ("certified", "bracket") for r in rows)
    assert all(float(r[7]) >= 0 for r in rows)


def test_frontier_benchmark_rejects_an_unknown_oracle() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.frontier", "--oracles", "old,nope"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "--oracles: unknown ['nope']" in proc.stderr


def test_brackets_mode_prints_the_shor_bound_beside_the_mip() -> None:
    pytest.importorskip("pyscipopt")
    pytest.importorskip("scs")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.frontier", "--brackets", "--shapes", "30x3", "--limit", "20",
         "--oracles", "old,shor"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [ln.split("|") for ln in proc.stdout.splitlines() if ln.startswith("| gaussian")]
    assert [r[8].strip() for r in rows] == ["old", "shor"]
    for r in rows:  # c value ≤ c bound; P* lower ≤ P* upper
        assert float(r[9]) <= float(r[10]) and float(r[12]) <= float(r[6])


def test_shor_is_refused_outside_brackets_mode() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.frontier", "--oracles", "shor"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "--brackets mode only" in proc.stderr
