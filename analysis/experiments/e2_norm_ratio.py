"""E2 (THEORY §1–2, K = 1): ‖W_l‖₂/‖W_l‖_F over training of deep linear nets → 1.

Claim: at the optimum every hidden layer W_1 … W_{L−1} is rank one (‖W_l‖₂/‖W_l‖_F = 1),
and full-batch GD reaches §2's closed form. The last layer W_L (m × 1 for K = 1) has ratio 1 by
definition and is drawn but never counted. Curves ``norm_ratio.<l>`` and ``objective`` come
from :func:`analysis.load_curves`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import (
    REACH_TOLS,
    reach,
    structure_check,
    theory_checks,
    tol_text,
)
from analysis.tables import column, fmt

CURVE_OK = 0.99  # the table reports the first step each layer's ratio reached this


def _match(f: pd.DataFrame) -> pd.Series:
    return (
        h.is_(f, "model.activation", "linear")
        & (column(f, "model.depth") >= 3)
        & h.is_(f, "data.outputs", 1)
        & h.plain(f)
    )


@experiment(
    "E2",
    "E2 — ‖W_l‖₂ / ‖W_l‖_F over training, deep linear nets, K = 1 (THEORY §1–2)",
    section="§1–2",
    match=_match,
    needs=("curves",),
)
def norm_ratio_curves(done: pd.DataFrame, inputs: Inputs) -> Result:
    curves = inputs.curves
    cur = (
        curves if curves is not None else pd.DataFrame(columns=["run_id", "curve", "step", "value"])
    )
    cur = cur[cur["run_id"].isin(set(done["run_id"]))].astype({"step": float, "value": float})
    cur = cur.sort_values(["run_id", "curve", "step"], kind="stable")
    by_curve = {key: g for key, g in cur.groupby(["run_id", "curve"], sort=False)}
    none = cur.iloc[0:0]

    def curve_of(run_id: str, name: str) -> pd.DataFrame:
        return by_curve.get((run_id, name), none)

    # per trial and layer, from numpy arrays (a 10^4-trial sweep: DataFrame ops per row were
    # most of the report's time)
    no_points = np.empty(0)
    depths = done["model.depth"].to_numpy()  # int64, typed by analysis.load
    finals = {
        layer: column(done, f"layer{layer}.norm_ratio").to_numpy(dtype=float)
        for layer in range(1, int(depths.max(initial=0)) + 1)
    }
    gaps = column(done, "rel_gap").to_numpy(dtype=float)
    records = []
    for i, (run_id, depth, seed, beta) in enumerate(
        zip(done["run_id"], depths, done["seed"], done["train.beta"], strict=True)
    ):
        for layer in range(1, depth + 1):
            c = curve_of(run_id, f"norm_ratio.{layer}")
            steps = c["step"].to_numpy(dtype=float) if len(c) else no_points
            values = c["value"].to_numpy(dtype=float) if len(c) else no_points
            finite = np.isfinite(values)
            steps, values = steps[finite], values[finite]
            reached = np.flatnonzero(values >= CURVE_OK)
            records.append(
                {
                    "run_id": run_id,
                    "depth": depth,
                    "seed": seed,
                    "beta": beta,
                    "layer": layer,
                    "hidden": layer < depth,
                    "initial_ratio": float(values[0]) if len(values) else np.nan,
                    "curve_final_ratio": float(values[-1]) if len(values) else np.nan,
                    "first_step_ratio_0.99": float(steps[reached[0]]) if len(reached) else np.nan,
                    "final_ratio": float(finals[layer][i]),
                    "rel_gap": float(gaps[i]),
                }
            )
    data = pd.DataFrame(records)
    table = data.groupby(["depth", "layer"], as_index=False).agg(
        hidden=("hidden", "first"),
        trials=("run_id", "size"),
        initial_ratio=("initial_ratio", "median"),
        median_step_to_0_99=("first_step_ratio_0.99", "median"),
        min_final_ratio=("final_ratio", "min"),
    )
    hidden = data[data["hidden"]]
    per_trial = hidden.groupby("run_id")["final_ratio"].min()
    checks = [
        *theory_checks(done, section="§2"),
        structure_check(
            "hidden layers rank one",
            done,
            pd.Series(done["run_id"].map(per_trial).values, index=done.index),
            claim="At the optimum every hidden layer W_1 … W_{L−1} is rank one, "
            "‖W_l‖₂/‖W_l‖_F = 1 (THEORY §1–2, K = 1).",
            measured="min over hidden layers of ‖W_l‖₂/‖W_l‖_F of the final network, per trial",
            target=1.0,
        ),
    ]
    summary = (
        f"{int((hidden['final_ratio'] >= 1 - 1e-3).sum())}/{len(hidden)} hidden layers of "
        f"{len(done)} trials end with ratio ≥ 0.999 (min {fmt(h.vmin(hidden['final_ratio']), 6)}; "
        f"median start {fmt(h.vmedian(hidden['initial_ratio']), 2)})"
    )
    if cur.empty:
        summary += "; no norm_ratio curves logged"

    fig, axes = h.make_figure(2, "E2 — ‖W_l‖₂ / ‖W_l‖_F over training, deep linear nets, K = 1",
                              width=5.5)  # fmt: skip
    ax = axes[0, 0]
    seeds = sorted(done["seed"].unique())
    styles = ["-", "--", ":", "-."]
    shown, note = h.drawn(done)
    for _, r in shown.iterrows():
        depth = r["model.depth"]
        for layer in range(1, depth + 1):
            c = curve_of(r["run_id"], f"norm_ratio.{layer}")
            if len(c):
                ax.plot(
                    c["step"],
                    c["value"],
                    color=f"C{layer - 1}",
                    ls=styles[seeds.index(r["seed"]) % len(styles)],
                    lw=1.2 if layer < depth else 0.6,
                    label=f"layer {layer}" + ("" if layer < depth else " (last: 1 by definition)"),
                )
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    if len(cur):
        positive = cur.loc[cur["step"] > 0, "step"]
        ax.set_xscale("symlog", linthresh=max(1.0, float(positive.min())) if len(positive) else 1.0)
        ax.set_xlim(left=0.0)
    ax.set_xlabel("training step (count, symlog)")
    ax.set_ylabel("‖W_l‖₂ / ‖W_l‖_F (dimensionless; 1 = rank one)")
    ax.set_title("per layer; line style = seed" + note)
    h.legend(ax)
    ax = axes[0, 1]
    exact = h.num(shown, "exact_objective")
    drawn = False
    for (_, r), p in zip(shown.iterrows(), exact, strict=True):
        c = curve_of(r["run_id"], "objective")
        if len(c) and np.isfinite(p):
            ax.plot(c["step"], h.pos((c["value"] - p) / abs(p)), lw=1.2,
                    label=f"seed {r['seed']}")  # fmt: skip
            drawn = True
    if drawn:
        ax.axhline(
            REACH_TOLS[0], color="k", ls=":", lw=1, label=f"SGD reach {tol_text(REACH_TOLS[0])}"
        )
        ax.set_yscale("log")
    ax.set_xlabel("training step (count)")
    ax.set_ylabel("(objective − P*) / P* (relative, log)")
    ax.set_title("objective vs closed form (THEORY §2)" + note)
    h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
