"""The progress counters and the closing summary table."""

from __future__ import annotations

import math

from sweep.config import load
from sweep.grid import expand
from sweep.progress import Progress, summary_table
from sweep.schema import TrialResult


def _result(spec, status: str, sgd: float, exact: float | None = 1.0) -> TrialResult:
    return TrialResult(key=spec.key, status=status, sgd_objective=sgd, exact_objective=exact)


def test_progress_counts_statuses_and_the_worst_finished_gap() -> None:
    specs = expand(load({"seed": [0, 1, 2, 3]}))
    p = Progress(len(specs), enabled=False)
    p.update(_result(specs[0], "finished", 1.5))  # rel gap 0.5
    p.update(_result(specs[1], "finished", 1.25))
    p.update(_result(specs[2], "diverged", math.nan))
    p.update(_result(specs[3], "failed", math.nan, None))
    assert p.done == 4
    assert p.counts == {"finished": 2, "diverged": 1, "failed": 1}
    assert p.worst_rel_gap == 0.5
    p.close()


def test_summary_has_one_row_per_axis_value() -> None:
    specs = expand(load({"model": {"depth": [2, 3]}, "seed": [0, 1]}))
    pairs = [(s, _result(s, "finished", 1.0 + 0.1 * s.model.depth)) for s in specs]
    pairs[0] = (specs[0], _result(specs[0], "diverged", math.nan))
    table = summary_table(pairs)
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert set(rows) == {"model.depth=2", "model.depth=3", "seed=0", "seed=1"}
    assert rows["model.depth=2"][1:5] == ["2", "1", "1", "0"]  # trials finished diverged failed
    assert abs(float(rows["model.depth=3"][5]) - 0.3) < 1e-3  # median rel gap, 3 digits
    assert summary_table([]) == ""


def test_summary_of_a_grid_of_experiments_has_one_row_per_experiment() -> None:
    cfg = {"grid": {"name": "g", "blocks": {"E1": {"seed": [0, 1]}, "E2": {"model": {"depth": 3}}}}}
    pairs = [(s, _result(s, "finished", 1.0)) for s in expand(load(cfg))]
    rows = [line.split()[0] for line in summary_table(pairs).splitlines()[1:]]
    assert rows == ["experiment=E1", "experiment=E2"]


def test_summary_of_a_single_point_is_one_row() -> None:
    (spec,) = expand(load({}))
    lines = summary_table([(spec, _result(spec, "finished", 1.0))]).splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == ["all", "1"]
