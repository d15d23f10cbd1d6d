"""E10: real data — scikit-learn's 8×8 digits (ZCA-whitened, n ≤ 64 so XXᵀ = I exactly).

Theory (§3) on real data: two-class signed targets (P* = g_L(‖y₊‖) + g_L(‖y₋‖)) and one-hot
targets (P* = Σ_k g_L(‖y_k‖)) — no network below P*, the routes to P* agree; one set of checks
per target kind. Optimizer measurement: how close (S)GD alone gets (the figure's title says
full-batch GD when every trial trained on the full batch).
"""

from __future__ import annotations

import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import minibatch, reach, theory_checks
from analysis.tables import column, fmt


def _match(f: pd.DataFrame) -> pd.Series:
    return h.is_(f, "data.kind", "digits")


@experiment(
    "E10",
    "E10 — 8×8 digits: SGD vs closed form / certificate (THEORY §3)",
    section="§3",
    needs=("curves",),
    match=_match,
)
def digits(done: pd.DataFrame, inputs: Inputs) -> Result:
    targets = column(done, "data.targets", "").fillna("").astype(str)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "targets": targets.values,
            "K": column(done, "data.outputs").values,
            "depth": column(done, "model.depth").values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            "family": column(done, "family", None).values,
            **h.gaps(done),
            "certificate": h.num(done, "certificate").values,
            "rel_certified_gap": h.num(done, "rel_certified_gap").values,
        }
    )
    table = data.groupby(["targets", "depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        with_exact=("exact_objective", lambda s: int(s.notna().sum())),
        worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
        worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
        median_rel_certified_gap=("rel_certified_gap", "median"),
    )
    checks = []
    for t in sorted(targets.unique()):
        for c in theory_checks(done[targets == t], section="§3", what=f"§3's P* ({t} targets)"):
            c.name = f"{t}: {c.name}"
            checks.append(c)
    who = (
        "full-batch GD"
        if not minibatch(done).any()
        else ("minibatch SGD" if minibatch(done).all() else "GD / minibatch SGD")
    )
    summary = "; ".join(
        f"{t}: closed form for {int(g['exact_objective'].notna().sum())}/{len(g)}, median SGD gap "
        f"{fmt(h.vmedian(g['rel_gap']), 2)}, median certified gap {fmt(h.vmedian(g['rel_certified_gap']), 2)}"
        for t, g in data.groupby("targets")
    )
    fig, axes = h.make_figure(1, f"E10 — 8×8 digits: {who} vs closed form / certificate",
                              width=8.0, height=4.4)  # fmt: skip
    ax = axes[0, 0]
    groups = list(data.groupby(["targets", "depth", "beta"]))
    labels = [f"{t} L={int(d)} β={fmt(b)}" for (t, d, b), _ in groups]
    h.strip(ax, labels, [h.pos(g["rel_gap"].dropna()) for _, g in groups], color="C0",
            label=f"({who} − P*)/P*, alone", shift=-0.2)  # fmt: skip
    if data["polished_rel_gap"].notna().any():
        h.strip(ax, labels, [h.pos(g["polished_rel_gap"].dropna()) for _, g in groups], color="C2",
                marker="^", label="after L-BFGS polish")  # fmt: skip
    h.strip(ax, labels, [h.pos(g["rel_certified_gap"].dropna()) for _, g in groups], color="C3",
            marker="x", label="(SGD − certificate)/SGD", shift=0.2)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("relative gap (log)")
    ax.set_xlabel("targets, depth L, β")
    h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
