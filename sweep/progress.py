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

__all__ = ["SUMMARY_CSV", "SUMMARY_MD", "Progress", "parent_summary", "summary_table"]

SUMMARY_MD = "summary.md"  # parent run: counts and the summary table of the sweep
SUMMARY_CSV = "trials.csv"  # parent run: one row per trial of the sweep


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


def parent_summary(
    pairs: Sequence[tuple[TrialSpec, TrialResult]],
    *,
    grid: str,
    total: int,
    skipped: int,
    axes: Sequence[str],
    names: dict[str, str],
    status: str,
) -> tuple[dict[str, float], dict[str, str]]:
    """What the parent run of a sweep keeps for the MLflow UI: ``(metrics, artifacts)``.

    Metrics (its chart view): trials in the grid, done (finished, diverged, failed) in this
    invocation, skipped, the median and worst relative gap of the finished trials and the
    median trial ``wall_time``. Artifacts: ``summary.md`` (the counts, :func:`summary_table`
    and how to get the experiments' verdicts) and ``trials.csv`` (one row per trial of this
    invocation: run name, key, status, the axes, objectives, gaps, wall time)."""
    import csv
    import io
    import statistics

    count = {k: sum(r.status == k for _, r in pairs) for k in ("finished", "diverged", "failed")}
    gaps = [
        r.rel_gap
        for _, r in pairs
        if r.status == "finished" and r.rel_gap is not None and math.isfinite(r.rel_gap)
    ]
    walls = [r.wall_time for _, r in pairs]
    metrics = {
        "trials_total": float(total),
        "trials_done": float(len(pairs)),
        "trials_finished": float(count["finished"]),
        "trials_diverged": float(count["diverged"]),
        "trials_failed": float(count["failed"]),
        "trials_skipped": float(skipped),
        "rel_gap_median": statistics.median(gaps) if gaps else math.nan,
        "rel_gap_worst": max(gaps) if gaps else math.nan,
        "wall_time_median": statistics.median(walls) if walls else math.nan,
    }
    fields = ["run_name", "key", "status", *axes, "sgd_objective", "exact_objective",
              "rel_gap", "rel_certified_gap", "family", "wall_time", "node_id"]  # fmt: skip
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for spec, r in pairs:
        params = spec.params()
        w.writerow(
            {
                "run_name": names.get(spec.key, ""),
                "key": spec.key,
                "status": r.status,
                **{a: params.get(a) for a in axes},
                "sgd_objective": r.sgd_objective,
                "exact_objective": r.exact_objective,
                "rel_gap": r.rel_gap,
                "rel_certified_gap": r.rel_certified_gap,
                "family": r.family,
                "wall_time": r.wall_time,
                "node_id": r.node_id,
            }
        )
    table = summary_table(pairs)
    md = [
        f"# sweep '{grid}': {status}",
        "",
        f"{total} trials in the grid: {len(pairs)} ran in this invocation "
        f"({count['finished']} finished, {count['diverged']} diverged, {count['failed']} "
        f"failed), {skipped} skipped (already recorded).",
        "",
        "Per grid axis (rel_gap = (P_sgd - P*)/|P*| of the finished trials):",
        "",
        "```",
        table or "(no trial ran)",
        "```",
        "",
        f"One row per trial: {SUMMARY_CSV}. The verdicts of the experiments (each claim of "
        f"docs/theory.md, PASS / FAIL / INCONCLUSIVE): "
        f"`python -m analysis --experiment {grid} --out report --check`, or run the sweep with "
        f"sweep.verdicts=true to have them in report/ on its parent run.",
        "",
    ]
    return metrics, {SUMMARY_MD: "\n".join(md), SUMMARY_CSV: buf.getvalue()}
