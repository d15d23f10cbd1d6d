"""R1 (THEORY §4): rank-one data X = c aᵀ — SGD vs the closed form, W₁ along ±a.

Claim: full-batch GD reaches §4's P* (with the shared-path erratum for ReLU L ≥ 3), and at
the optimum the active first-layer neurons are ±a (``w1_alignment`` = 1).
"""

from __future__ import annotations

import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import reach, structure_check, theory_checks
from analysis.tables import column, fmt


def _rows(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[column(trials, "data.kind", "") == "rank_one"]


@experiment(
    "R1",
    "R1 — rank-one data X = c aᵀ: SGD vs closed form (THEORY §4)",
    section="§4",
    needs=("curves",),
    rows=_rows,
    order=5.5,
)
def rank_one(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "activation": column(done, "model.activation", "").values,
            "depth": column(done, "model.depth").values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            **h.gaps(done),
            "w1_alignment": h.num(done, "w1_alignment").values,
        }
    )
    table = data.groupby(["activation", "depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
        worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
        min_w1_alignment=("w1_alignment", "min"),
    )
    checks = [
        *theory_checks(done, section="§4"),
        structure_check(
            "W₁ along ±a",
            done,
            h.num(done, "w1_alignment"),
            claim="At the optimum the active first-layer neurons are ±a (THEORY §4).",
            measured="min cosine of W₁'s active directions with ±a",
            target=1.0,
        ),
    ]
    summary = f"median |SGD gap| {fmt(h.abs_median(data['rel_gap']), 2)} over {len(data)} trials"
    fig, axes = h.make_figure(2, "R1 — rank-one data X = c aᵀ: SGD vs closed form (THEORY §4)")
    ax = axes[0, 0]
    for i, (act, g) in enumerate(data.groupby("activation")):
        ax.scatter(g["exact_objective"], g["sgd_objective"], s=28, color=f"C{i}", label=str(act))
    h.diagonal(ax, data, "exact_objective", "sgd_objective", "SGD = P*")
    ax.set_xlabel("closed-form P* (objective units)")
    ax.set_ylabel("SGD objective, alone (objective units)")
    ax.set_title("final objective vs exact optimum")
    h.legend(ax)
    ax = axes[0, 1]
    groups = list(data.groupby(["activation", "depth"]))
    labels = [f"{a} L={int(d)}" for (a, d), _ in groups]
    h.strip(ax, labels, [h.pos(g["rel_gap"].dropna()) for _, g in groups], color="C0",
            label="SGD alone", shift=-0.15)  # fmt: skip
    if data["polished_rel_gap"].notna().any():
        h.strip(ax, labels, [h.pos(g["polished_rel_gap"].dropna()) for _, g in groups],
                color="C2", marker="^", label="after polish", shift=0.15)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("activation, depth L")
    ax.set_ylabel("|objective − P*| / |P*| (relative, log)")
    ax.set_title("relative gap")
    h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
