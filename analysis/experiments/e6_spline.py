"""E6 (THEORY §5): 1-D data — deep ReLU nets with biases fit linear splines, kinks at the data.

Claim: a fitted network's f′ changes only at data points: the share of TV(f′) within 0.02 of a
data point is ≥ 0.957 (THEORY's reference, in every fitted run). "Fitted" excludes the poor
fits THEORY §5 warns of (deep nets from some inits stop ~10× higher): a run counts when its
final objective is within ``FIT_FACTOR`` = 2× the best of its (depth, β) group. The spread of
objectives is reported, and the figure draws every seed. Arrays (``x, y, grid, f, kinks``)
come from ``trial.json`` (``needs=("results",)``); the table uses the logged ``spline.*``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import count_check
from analysis.tables import fmt

SHARE_OK = 0.957  # THEORY E6: share of TV(f′) at data points in every fitted run
FIT_FACTOR = 2.0  # a run within this factor of its group's best objective is "fitted"


def _match(f: pd.DataFrame) -> pd.Series:
    return h.is_(f, "data.kind", "spline_1d")


def _arrays(result: object) -> dict:
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return dict(result)
    return dict(getattr(result, "arrays", {}) or {})


def _final_objective(done: pd.DataFrame) -> pd.Series:
    pol = h.num(done, "polished_objective")
    return pol.where(pol.notna(), h.num(done, "sgd_objective"))


@experiment(
    "E6",
    "E6 — 1-D data: fitted deep ReLU functions and the linear spline (THEORY §5)",
    section="§5",
    match=_match,
    needs=("results",),
)
def spline(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": h.num(done, "model.depth").values,
            "beta": h.num(done, "train.beta").values,
            "seed": h.num(done, "seed").values,
            "sgd_objective": h.num(done, "sgd_objective").values,
            "final_objective": _final_objective(done).values,
            "share_near_data": h.num(done, "spline.share_near_data").values,
            "max_deviation": h.num(done, "spline.max_deviation").values,
            "tv_ratio": h.num(done, "spline.tv_ratio").values,
            "n_kinks": h.num(done, "spline.n_kinks").values,
        }
    )
    best = data.groupby(["depth", "beta"])["final_objective"].transform("min")
    data["objective_vs_best"] = data["final_objective"] / best
    data["fitted"] = data["objective_vs_best"] <= FIT_FACTOR
    table = data.groupby(["depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        best_objective=("final_objective", "min"),
        median_objective=("final_objective", "median"),
        worst_objective=("final_objective", "max"),
        fitted=("fitted", "sum"),
        min_share_near_data=("share_near_data", "min"),
        median_max_deviation=("max_deviation", "median"),
        median_kinks=("n_kinks", "median"),
    )
    share = pd.Series(data["share_near_data"].values, index=done.index)
    fitted = pd.Series(data["fitted"].values, index=done.index)
    counted = fitted & share.notna()
    n_poor = int((~fitted).sum())
    checks = [
        count_check(
            "kinks at data",
            claim="A fitted deep ReLU net on 1-D data is a linear spline with kinks at the data "
            "points (THEORY §5).",
            measured="share of TV(f′) within 0.02 of a data point",
            expected=f"≥ {SHARE_OK} in every run within {FIT_FACTOR:g}× its group's best objective",
            ok=(share >= SHARE_OK).where(counted),
            worst=f"min {fmt(float(share[counted].min()), 3)}" if counted.any() else "",
            skipped=f"{n_poor} poor fits (> {FIT_FACTOR:g}× best) not counted" if n_poor else "",
        )
    ]
    summary = (
        f"median max deviation from the interpolant {fmt(h.vmedian(data['max_deviation']), 2)}; "
        f"worst/best objective up to {fmt(h.vmax(data['objective_vs_best']), 3)}×; share ≥ "
        f"{SHARE_OK} in {int((share >= SHARE_OK).sum())}/{int(share.notna().sum())} runs in all"
    )
    # one panel per (seed, β): a seed fixes the data set, so the depths are compared on the
    # same points; every seed is drawn (rows), β in columns
    depths = sorted(data["depth"].unique())
    betas = sorted(data["beta"].unique())
    seeds = sorted(data["seed"].unique())
    fig, axes = h.make_figure(len(betas), "E6 — 1-D data: fitted deep ReLU functions and the linear spline",
                              width=4.4, height=2.7, nrows=len(seeds), floor_note=False)  # fmt: skip
    results = inputs.results or {}
    for si, seed in enumerate(seeds):
        for bi, b in enumerate(betas):
            ax = axes[si, bi]
            grp = data[(data["beta"] == b) & (data["seed"] == seed)]
            drawn_data = False
            objectives = []
            for _, r in grp.sort_values("depth").iterrows():
                arr = _arrays(results.get(r["run_id"]))
                mark = "" if r["fitted"] else " (poor fit)"
                objectives.append(f"L={int(r['depth'])}: {fmt(r['final_objective'], 2)}{mark}")
                if not {"x", "y", "grid", "f"} <= set(arr):
                    continue
                x, y = np.asarray(arr["x"], float), np.asarray(arr["y"], float)
                if not drawn_data:
                    order = np.argsort(x)
                    ax.plot(x[order], y[order], "k--", lw=1, label="linear spline through data")
                    ax.scatter(x, y, color="k", s=18, zorder=3, label="data")
                    drawn_data = True
                color = f"C{depths.index(r['depth'])}"
                ax.plot(arr["grid"], arr["f"], color=color, lw=1.2, alpha=0.85,
                        ls="-" if r["fitted"] else ":", label=f"depth L={int(r['depth'])}")  # fmt: skip
                kinks = np.asarray(arr.get("kinks", []), float)
                if kinks.size:
                    ax.plot(kinks, np.full(kinks.size, 0.03), "|", color=color, ms=10, mew=1.5,
                            transform=ax.get_xaxis_transform())  # fmt: skip
            ax.set_title(f"β={fmt(b)}, seed {int(seed)}\nobjective {', '.join(objectives)}",
                         fontsize=8)  # fmt: skip
            ax.tick_params(labelsize=8)
            if si == len(seeds) - 1:
                ax.set_xlabel("input x (data units)", fontsize=8)
            if bi == 0:
                ax.set_ylabel("f(x) (target units)", fontsize=8)
            if not drawn_data:
                ax.text(0.5, 0.5, "no trial.json arrays", ha="center", transform=ax.transAxes)
    handles, labels = [], []
    for ax in axes.ravel():
        for hd, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(hd)
                labels.append(lab)
    if handles:
        handles.append(Line2D([], [], color="0.3", marker="|", ls="none", ms=10, mew=1.5))
        labels.append("kinks of f (ticks, colour = depth); dotted curve = poor fit")
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    return Result(data, table, checks, fig, summary)
