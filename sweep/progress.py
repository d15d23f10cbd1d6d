"""Live progress of a sweep (a tqdm bar) and the closing summary table (pandas).

The bar shows done/total and ETA (tqdm's own), plus the number of failed and diverged
trials and the worst relative gap ``(P_sgd - P*) / |P*|`` seen so far. The summary groups
this invocation's trials by each grid axis (the params that vary) and gives counts by status,
the median / worst relative and certified gaps, how many trials have P* (``with_P*``) and, for
those without, the median relative width of the certified bracket on P* (``median_bracket``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from sweep.grid import varying_fields
from sweep.schema import TrialResult, TrialSpec

__all__ = ["Progress", "summary_table"]


class Progress:
    """Counts results as they arrive and shows them on a tqdm bar (when ``enabled``)."""

    def __init__(self, total: int, *, enabled: bool = True, desc: str = "trials") -> None:
        self.total = total
        self.done = 0
        self.counts = {"finished": 0, "diverged": 0, "failed": 0}
        self.worst_rel_gap: float | None = None
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit="trial", file=sys.stderr, dynamic_ncols=True
            )

    def update(self, result: TrialResult) -> None:
        self.done += 1
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        gap = result.rel_gap if result.status == "finished" else None
        if gap is not None and math.isfinite(gap):
            self.worst_rel_gap = gap if self.worst_rel_gap is None else max(self.worst_rel_gap, gap)
        if self._bar is not None:
            worst = "-" if self.worst_rel_gap is None else f"{self.worst_rel_gap:.2e}"
            self._bar.set_postfix(
                failed=self.counts["failed"],
                diverged=self.counts["diverged"],
                worst_rel_gap=worst,
                refresh=False,
            )
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summary_table(pairs: Sequence[tuple[TrialSpec, TrialResult]]) -> str:
    """Per grid axis and value (per experiment for a grid of several experiments; one row
    for a single point): trials, finished/diverged/failed, median and worst relative gap,
    median relative certified gap; trials with P* and the median bracket width of those without.
    Empty string when there is nothing to summarise."""
    import pandas as pd

    if not pairs:
        return ""
    rows = []
    for spec, res in pairs:
        row = dict(spec.params())
        row["status"] = res.status
        ok = res.status == "finished"
        row["rel_gap"] = res.rel_gap if ok and res.rel_gap is not None else math.nan
        row["rel_cert_gap"] = (
            res.rel_certified_gap if ok and res.rel_certified_gap is not None else math.nan
        )
        # P* known (exact or certified), else the width of the certified bracket on it
        row["exact"] = ok and res.exact_objective is not None
        width = res.bracket_rel_width if ok and res.exact_objective is None else None
        row["bracket"] = width if width is not None else math.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    specs = [s for s, _ in pairs]
    if len({s.experiment for s in specs}) > 1:
        axes = ["experiment"]  # a grid of blocks (paper): one row per experiment
    else:
        axes = varying_fields(specs) or ["all"]  # a single point: one row
    df["all"] = "all"
    blocks = []
    for axis in axes:
        g = df.groupby(axis, sort=True, dropna=False)
        t = pd.DataFrame(
            {
                "trials": g.size(),
                "finished": g["status"].apply(lambda s: int((s == "finished").sum())),
                "diverged": g["status"].apply(lambda s: int((s == "diverged").sum())),
                "failed": g["status"].apply(lambda s: int((s == "failed").sum())),
                "median_rel_gap": g["rel_gap"].median(),
                "worst_rel_gap": g["rel_gap"].max(),
                "median_rel_cert_gap": g["rel_cert_gap"].median(),
                "with_P*": g["exact"].sum().astype(int),
                "median_bracket": g["bracket"].median(),
            }
        )
        t.index = ["all"] if axis == "all" else [f"{axis}={v}" for v in t.index]
        blocks.append(t)
    table = pd.concat(blocks)
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 160):
        return table.to_string()
