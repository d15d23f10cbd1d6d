"""E4 (THEORY §3, §8): deep ReLU nets on whitened data — SGD vs P* = g_L(‖y₊‖) + g_L(‖y₋‖).

Theory (§3): P* = g_L(‖y₊‖) + g_L(‖y₋‖) is the minimum — no network below it, the certificate
and dual bound below it, the networks above. Optimizer measurement: how close SGD alone gets
(within 1e-4 / 1e-6), misses classified — e.g. at β = 1 with ‖y₊‖ below g_3's threshold the
optimum has the y₊ path off, and SGD may sit at the stationary point with it on (predicted by
§3's reduced problem: :func:`~analysis.experiments.verdicts.stationary_values`).
Trials are picked by what they are: ReLU, depth ≥ 3, K = 1, whitened (‖XXᵀ − I‖_F ≤ 1e-10,
however produced — ``data.kind=whitened`` or ``gaussian`` + ``whiten=zca``), no bias / BN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import (
    REACH_TOLS,
    classify_misses,
    minibatch,
    reach,
    theory_checks,
    tol_text,
    whitened,
)
from analysis.tables import column, fmt


def _match(f: pd.DataFrame) -> pd.Series:
    return (
        h.is_(f, "model.activation", "relu")
        & (column(f, "model.depth") >= 3)
        & whitened(f)
        & h.is_(f, "data.outputs", 1)
        & ~h.is_(f, "data.kind", "digits")  # E10's
        & h.plain(f)
    )


@experiment(
    "E4",
    "E4 — deep ReLU nets on whitened data: SGD vs closed form (THEORY §3)",
    section="§3",
    needs=("curves",),
    match=_match,
)
def deep_relu(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": column(done, "model.depth").values,
            "width": column(done, "model.width").values,
            "data": column(done, "data.kind", "").values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            "minibatch": minibatch(done).values,
            **h.gaps(done),
            "certificate": h.num(done, "certificate").values,
            "rel_certified_gap": h.num(done, "rel_certified_gap").values,
            "w1_alignment": h.num(done, "w1_alignment").values,
            "miss": classify_misses(done, inputs.curves).values,
        }
    )
    table = data.groupby(["depth", "width", "data", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        min_rel_gap=("rel_gap", "min"),
        median_rel_gap=("rel_gap", "median"),
        max_rel_gap=("rel_gap", "max"),
        max_polished_rel_gap=("polished_rel_gap", "max"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
    )
    checks = theory_checks(done, section="§3", what="g_L(‖y₊‖) + g_L(‖y₋‖)")
    summary = (
        "; ".join(
            f"β={fmt(b)}: SGD relative gap {fmt(h.vmin(g['rel_gap']), 2)}–{fmt(h.vmax(g['rel_gap']), 2)}"
            for b, g in data.groupby("beta")
        )
        + f"; median certified gap {fmt(h.vmedian(data['rel_certified_gap']), 2)}"
    )
    fig, axes = h.make_figure(2, "E4 — deep ReLU nets on whitened data: SGD vs closed form (THEORY §3)",
                              width=5.2)  # fmt: skip
    ax = axes[0, 0]
    for i, (b, g) in enumerate(data.groupby("beta")):
        ax.scatter(
            g["exact_objective"], g["sgd_objective"], color=f"C{i}", s=28, label=f"β={fmt(b)}"
        )
    finite = data[["exact_objective", "sgd_objective"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite).all(axis=1) & (finite > 0).all(axis=1)]
    if finite.size:
        lo, hi = finite.min() * 0.9, finite.max() * 1.1
        ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="SGD = P*")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("closed-form P* = g_L(‖y₊‖) + g_L(‖y₋‖) (objective units)")
    ax.set_ylabel("SGD objective, alone (objective units)")
    ax.set_title("final objective vs exact optimum")
    h.legend(ax)
    ax = axes[0, 1]
    groups = list(data.groupby(["depth", "width", "beta"]))
    labels = [f"L={int(d)} m={int(m)} β={fmt(b)}" for (d, m, b), _ in groups]
    h.strip(ax, labels, [h.pos(g["rel_gap"].dropna()) for _, g in groups], color="C0",
            label="(SGD − P*)/P*, SGD alone", shift=-0.2)  # fmt: skip
    if data["polished_rel_gap"].notna().any():
        h.strip(ax, labels, [h.pos(g["polished_rel_gap"].dropna()) for _, g in groups],
                color="C2", marker="^", label="after L-BFGS polish")  # fmt: skip
    h.strip(ax, labels, [h.pos(g["rel_certified_gap"].dropna()) for _, g in groups], color="C3",
            marker="x", label="(SGD − certificate)/SGD", shift=0.2)  # fmt: skip
    ax.axhline(REACH_TOLS[0], color="k", ls=":", lw=1, label=f"SGD reach {tol_text(REACH_TOLS[0])}")
    ax.set_yscale("log")
    ax.set_ylabel("relative gap (log)")
    ax.set_xlabel("depth L, width m, β")
    ax.set_title("gap distributions")
    h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
