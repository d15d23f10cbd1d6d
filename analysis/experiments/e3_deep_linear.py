"""E3 (THEORY §1–2): deep linear nets, K = 1 — rank one and aligned at the optimum.

Claim: at the optimum every hidden layer is rank one (‖W_l‖₂/‖W_l‖_F = 1), consecutive layers
align (|cos| = 1 between W_l's top right and W_{l+1}'s top left singular vectors), W₁'s column
space is w*/‖w*‖ (``w1_alignment`` = 1), and GD reaches §2's P*. Needs β with
P* < ½‖y‖² (the guard of :func:`analysis.experiments.base.run` leaves out the others).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import reach, structure_check, theory_checks
from analysis.tables import column, fmt


def _match(f: pd.DataFrame) -> pd.Series:
    return h.is_(f, "model.activation", "linear") & (column(f, "model.depth") >= 3) & h.plain(f)


@experiment(
    "E3",
    "E3 — deep linear nets: gap, rank one and alignment by depth (THEORY §1–2)",
    section="§1–2",
    needs=("curves",),
    match=_match,
)
def deep_linear(done: pd.DataFrame, inputs: Inputs) -> Result:
    depth = column(done, "model.depth")
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": depth.values,
            "width": column(done, "model.width").values,
            "K": column(done, "data.outputs").values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            **h.gaps(done),
            "rel_certified_gap": h.num(done, "rel_certified_gap").values,
            # hidden layers only: W_L (m × 1) is rank one by definition
            "min_norm_ratio": h.nanmin(h.layer_values(done, "norm_ratio", depth, 1)),
            "min_abs_align_next": h.nanmin(h.layer_values(done, "align_next", depth, 1), np.abs),
            "w1_alignment": h.num(done, "w1_alignment").values,
        }
    )
    table = data.groupby(["depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
        worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
        min_norm_ratio=("min_norm_ratio", "min"),
        min_align_next=("min_abs_align_next", "min"),
        min_w1_alignment=("w1_alignment", "min"),
    )
    idx = done.index
    checks = [
        *theory_checks(done, section="§2"),
        structure_check(
            "rank one",
            done,
            pd.Series(data["min_norm_ratio"].values, index=idx),
            claim="At the optimum every hidden layer is rank one: ‖W_l‖₂/‖W_l‖_F = 1 (THEORY §1–2).",
            measured="min over hidden layers of ‖W_l‖₂/‖W_l‖_F of the final network",
            target=1.0,
        ),
        structure_check(
            "aligned",
            done,
            pd.Series(data["min_abs_align_next"].values, index=idx),
            claim="At the optimum consecutive layers align: W_l's right and W_{l+1}'s left "
            "singular vectors coincide (THEORY §1).",
            measured="min over l of |cos| between consecutive layers' top singular vectors",
            target=1.0,
        ),
        structure_check(
            "W₁ direction",
            done,
            pd.Series(data["w1_alignment"].values, index=idx),
            claim="At the optimum W₁'s column space is w*/‖w*‖ (THEORY §2).",
            measured="cosine of W₁'s span with the closed-form direction",
            target=1.0,
        ),
    ]
    summary = (
        f"min ‖W_l‖₂/‖W_l‖_F {fmt(h.vmin(data['min_norm_ratio']), 7)}; min |cos| "
        f"{fmt(h.vmin(data['min_abs_align_next']), 7)}; min W₁ alignment "
        f"{fmt(h.vmin(data['w1_alignment']), 7)}"
    )
    fig, axes = h.make_figure(3, "E3 — deep linear nets: gap, rank one and alignment by depth",
                              width=4.6)  # fmt: skip
    depths = sorted(data["depth"].dropna().unique())
    labels = [f"L={int(d)}" for d in depths]
    betas = sorted(data["beta"].dropna().unique())
    for j, (metric, ylabel, sub) in enumerate(
        [
            ("rel_gap", "|SGD − P*| / |P*| (SGD alone, relative, log)", "gap to the closed form"),
            ("min_norm_ratio", "1 − min_l ‖W_l‖₂/‖W_l‖_F (log)", "rank one: → 0"),
            ("min_abs_align_next", "1 − |cos| (log)", "alignment: → 0"),
        ]
    ):
        ax = axes[0, j]
        for i, b in enumerate(betas):
            vals = []
            for d in depths:
                v = data.loc[(data["depth"] == d) & (data["beta"] == b), metric].dropna()
                vals.append(h.pos(v) if metric == "rel_gap" else h.pos(1 - v.abs()))
            h.strip(ax, labels, vals, color=f"C{i}", label=f"β={fmt(b)}",
                    shift=0.25 * (i - (len(betas) - 1) / 2))  # fmt: skip
        if j == 2:
            vals = [
                h.pos(1 - data.loc[data["depth"] == d, "w1_alignment"].dropna().abs())
                for d in depths
            ]
            h.strip(ax, labels, vals, color="k", marker="x", label="W₁ vs closed form")
        ax.set_yscale("log")
        ax.set_xlabel("depth L (layers)")
        ax.set_ylabel(ylabel)
        ax.set_title(sub)
        h.legend(ax)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
