"""The dry run's time estimate from recorded ``wall_time`` of the same grid's batch shapes."""

from __future__ import annotations

import os
from pathlib import Path

from sweep.config import load
from sweep.grid import expand
from sweep.runner import run_sweep
from sweep.schema import TrialResult, TrialSpec
from tests.sweep.conftest import run_cli


def _timed(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """Results whose wall_time is set by the shape (depth) and the seed: 10*depth + seed s."""
    return [
        TrialResult(key=s.key, status="finished", sgd_objective=1.0, exact_objective=1.0,
                    wall_time=10.0 * s.model.depth + s.seed, device=device)
        for s in specs
    ]  # fmt: skip


GRID = ["+grid=smoke", "runner=inline", "model.activation=linear"]


def _cfg(tmp_path: Path, seeds: list[int]) -> dict:
    from tests.sweep.conftest import compose

    cfg = compose([*GRID, f"seed={seeds}", f"tracking.uri=sqlite:///{tmp_path / 'mlruns.db'}"])
    cfg["sweep"]["progress"] = False
    return cfg


def test_dry_run_estimates_from_the_recorded_trials_of_the_same_shapes(tmp_path: Path) -> None:
    # nothing recorded yet: no estimate
    r = run_cli([*GRID, "seed=[0,1,2]", "sweep.dry_run=true"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "estimate:" not in r.stdout
    # record depth 2 and 3 with seeds 0, 1 (wall_time 20, 21 and 30, 31)
    sweep = load(_cfg(tmp_path, [0, 1]))
    run_sweep(sweep, expand(sweep), batch_fn=_timed, out=open(os.devnull, "w"))
    # seeds 0..3 and a new width: 2 new trials per recorded shape, new-width trials unknown
    r = run_cli([*GRID, "seed=[0,1,2,3]", "model.width=[8,9]", "sweep.dry_run=true"], tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("estimate:")]
    median = {2: (20 + 21) / 2, 3: (30 + 31) / 2}  # per shape, from _timed
    expected = 2 * median[2] + 2 * median[3]  # seeds 2 and 3 of width 8, both depths
    assert line.startswith(f"estimate: {expected:.0f} s of trial time on one worker for 4 trial")
    assert "of 4 recorded trial(s)" in line and "4 already recorded" in line
    assert "8 trial(s) of shapes never recorded are not counted" in line  # width 9
