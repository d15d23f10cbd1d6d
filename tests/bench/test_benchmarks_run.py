"""The recording benchmark runs in CI's slow tier and prints its ratios (issue 13).

Nothing about speed is asserted here (speed is measured by ``python -m bench.recording`` and
recorded in BENCHMARKS.md): the test runs a small instance end to end — the old and the new
writer on the embedded SQLite store and through an MLflow server with the ``dualsweep`` app —
checks that every cell read its trials back (``check ok``) and shows the table in CI's log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_recording_benchmark_runs_and_reads_every_trial_back(capsys) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.recording", "--trials", "60", "--rounds", "1",
         "--old-trials", "16", "--stores", "sqlite,server+sqlite",
         "--servers", "dualsweep uvicorn×1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("(c) runs/s") :]
    with capsys.disabled():  # the ratios, in CI's log
        print("\n" + table)
    rows = [ln for ln in table.splitlines() if ln.startswith(("sqlite", "server"))]
    assert len(rows) == 2, table
    assert all(ln.rstrip().endswith("ok") for ln in rows), table  # every trial read back
