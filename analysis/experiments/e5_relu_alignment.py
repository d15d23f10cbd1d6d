"""E5 (THEORY §3): 2-layer ReLU nets on whitened data — active neurons along Xᵀy₊, Xᵀy₋.

Claim: at the optimum every active first-layer neuron has cosine 1 with Xᵀy₊ or Xᵀy₋
(``w1_alignment``), and full-batch GD reaches P* = h_β(‖y₊‖) + h_β(‖y₋‖).
"""

from __future__ import annotations

import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import AT_OPT, reach, structure_check, theory_checks, whitened
from analysis.tables import column, fmt


def _match(f: pd.DataFrame) -> pd.Series:
    return (
        h.is_(f, "model.activation", "relu")
        & h.is_(f, "model.depth", 2)
        & whitened(f)
        & h.is_(f, "data.outputs", 1)
        & ~h.is_(f, "data.kind", "digits")  # E10's
        & h.plain(f)
    )


@experiment(
    "E5",
    "E5 — 2-layer ReLU, whitened data: W₁ neurons vs Xᵀy₊, Xᵀy₋ (THEORY §3)",
    section="§3",
    needs=("curves",),
    match=_match,
)
def relu_alignment(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            "w1_alignment": h.num(done, "w1_alignment").values,
            **h.gaps(done),
            "rel_certified_gap": h.num(done, "rel_certified_gap").values,
        }
    )
    table = data.groupby("beta", as_index=False).agg(
        trials=("run_id", "size"),
        min_w1_alignment=("w1_alignment", "min"),
        median_w1_alignment=("w1_alignment", "median"),
        worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
        worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
    )
    checks = [
        *theory_checks(done, section="§3", what="h_β(‖y₊‖) + h_β(‖y₋‖)"),
        structure_check(
            "neurons aligned",
            done,
            h.num(done, "w1_alignment"),
            claim="At the optimum the active first-layer neurons are ∝ Xᵀy₊ and Xᵀy₋ (THEORY §3).",
            measured="min cosine of an active W₁ neuron with Xᵀy₊ or Xᵀy₋",
            target=1.0,
        ),
    ]
    summary = f"min cosine {fmt(h.vmin(data['w1_alignment']), 7)} over {len(data)} trials"
    fig, axes = h.make_figure(2, "E5 — 2-layer ReLU, whitened data: W₁ neurons vs Xᵀy₊, Xᵀy₋")
    betas = sorted(data["beta"].unique())
    labels = [f"β={fmt(b)}" for b in betas]
    ax = axes[0, 0]
    h.strip(ax, labels, [h.pos(1 - data.loc[data["beta"] == b, "w1_alignment"].dropna()) for b in betas],
            color="C0")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("1 − cos(W₁ neuron, Xᵀy±) (log)")
    ax.set_title("alignment of active neurons: → 0")
    ax = axes[0, 1]
    h.strip(ax, labels, [h.pos(data.loc[data["beta"] == b, "rel_gap"].dropna()) for b in betas],
            color="C1", label="SGD alone", shift=-0.15)  # fmt: skip
    if data["polished_rel_gap"].notna().any():
        h.strip(ax, labels,
                [h.pos(data.loc[data["beta"] == b, "polished_rel_gap"].dropna()) for b in betas],
                color="C2", marker="^", label="after polish", shift=0.15)  # fmt: skip
    ax.axhline(AT_OPT, color="k", ls=":", lw=1, label=f"{AT_OPT:g}")
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("|objective − P*| / |P*| (relative, log)")
    ax.set_title("objective vs closed form")
    h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
