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

SMOKE = sorted(p.stem for p in (CONF / "grid").glob("*.yaml") if p.stem.endswith("smoke"))


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
