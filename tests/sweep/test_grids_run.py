"""Every smoke-sized grid runs through the real trial engine and MLflow (in-process runner,
temporary SQLite store): no trial fails and every trial is recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sweep.config import load
from sweep.grid import expand
from sweep.runner import run_sweep
from tests.sweep.conftest import CONF, compose

pytestmark = pytest.mark.slow

KNOWN = {
    # E3 (beta = 2: the optimum is W = 0) trains weights down to ~1e-160, and
    # solvers.structure.layer_stats computes fro**2 / spec**2 with spec**2 underflowing to 0.
    "paper_smoke": "solvers.structure.layer_stats: ZeroDivisionError when the weights underflow",
}
SMOKE = [
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN[name])) if name in KNOWN else name
    for name in sorted(p.stem for p in (CONF / "grid").glob("*.yaml") if p.stem.endswith("smoke"))
]


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_grid_runs_without_failures(name: str, tmp_path: Path) -> None:
    cfg = compose(
        [
            f"+grid={name}",
            "runner=inline",
            "runner.device=cpu",
            "sweep.progress=false",
            f"tracking.uri=sqlite:///{tmp_path / 'mlruns.db'}",
            f"tracking.artifacts={tmp_path / 'art'}",
        ]
    )
    sweep = load(cfg)
    specs = expand(sweep)
    with open(os.devnull, "w") as null:
        report = run_sweep(sweep, specs, out=null)
    failed = [(s.experiment, s.key, r.error) for s, r in report.results if r.status == "failed"]
    assert not failed, failed[0]
    assert report.mlflow_runs == len(specs) == len(report.results)
