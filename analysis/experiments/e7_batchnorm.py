"""E7 (THEORY §6): batch norm — the closed form and neural collapse of the last features.

Claims: full-batch GD reaches P* = Σ_k h_{β/√n}(·); at the optimum the last hidden features
collapse: NC1 = 0, and

- **balanced classes** (``data.targets = onehot_balanced``): centred class means form a simplex
  ETF, mean pairwise cosine −1/(K−1) (NC2), classifier aligned with them, cosine 1 (NC3);
- **unbalanced classes** (``onehot``, random class sizes n_k): at the optimum of §6 each active
  class k has one feature direction ê_k (mutually orthogonal) with class mean
  μ_k ∝ √(s_k)/√n_k · ê_k and classifier column w_k ∝ √(s_k) · ê_k, where
  s_k = √n_k − β/√n. Centring by the feature mean μ_G = Σ_k (n_k/n) μ_k makes the pairwise
  cosines depend on the n_k (−1/(K−1) only when they are equal) and NC3 < 1. The trial logs
  these predictions as ``nc_opt.*`` — the same statistics of the closed-form optimal network
  (:func:`solvers.batchnorm.solve_batchnorm`); :func:`collapse_prediction` is the formula
  above (tested against them); without ``nc_opt.*`` the row is INCONCLUSIVE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import reach, structure_check, theory_checks
from analysis.tables import column, fmt

BALANCED = "onehot_balanced"


def collapse_prediction(counts: np.ndarray, beta: float) -> dict[str, float]:
    """NC2 / NC3 mean cosines at §6's optimum for one-hot targets with class sizes ``counts``.

    With n = Σ n_k, s_k = (√n_k − β/√n)_+, class means μ_k = a_k ê_k (ê_k orthonormal,
    a_k ∝ √s_k/√n_k), classifier columns w_k = b_k ê_k (b_k ∝ √s_k), μ_G = Σ_k (n_k/n) μ_k and
    w̄ = (1/K) Σ_k w_k: returns the mean over pairs k < l of cos(μ_k − μ_G, μ_l − μ_G) and the
    mean over k of cos(w_k − w̄, μ_k − μ_G). Balanced classes give −1/(K−1) and 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n, K = counts.sum(), counts.size
    s = np.maximum(np.sqrt(counts) - beta / np.sqrt(n), 0.0)
    M = np.diag(np.sqrt(s) / np.sqrt(counts))
    M = M - (counts / n) @ M
    W = np.diag(np.sqrt(s))
    W = W - W.mean(axis=0)
    unit = M / np.linalg.norm(M, axis=1, keepdims=True)
    nc2 = float((unit @ unit.T)[np.triu_indices(K, 1)].mean())
    nc3 = float(np.mean(np.sum(unit * W, axis=1) / np.linalg.norm(W, axis=1)))
    return {"nc2_cosine_mean": nc2, "nc3_cosine_mean": nc3}


def _match(f: pd.DataFrame) -> pd.Series:
    return h.flag(f, "model.batchnorm")


@experiment(
    "E7",
    "E7 — batch norm: closed form and neural collapse (THEORY §6)",
    section="§6",
    needs=("curves",),
    match=_match,
)
def batchnorm_collapse(done: pd.DataFrame, inputs: Inputs) -> Result:
    K = column(done, "data.outputs")
    balanced = column(done, "data.targets", "").fillna("").astype(str) == BALANCED
    nc2_pred = h.num(done, "nc_opt.nc2_cosine_mean").where(~balanced, -1.0 / (K - 1))
    nc3_pred = h.num(done, "nc_opt.nc3_cosine_mean").where(~balanced, 1.0)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "classes": np.where(balanced, "balanced", "unbalanced"),
            "activation": column(done, "model.activation", "").values,
            "depth": column(done, "model.depth").values,
            "K": K.values,
            "seed": column(done, "seed").values,
            **h.gaps(done),
            "nc1": h.num(done, "nc.nc1").values,
            "nc2_cosine_mean": h.num(done, "nc.nc2_cosine_mean").values,
            "nc2_predicted": nc2_pred.values,
            "nc2_norm_cv": h.num(done, "nc.nc2_norm_cv").values,
            "nc3_cosine_mean": h.num(done, "nc.nc3_cosine_mean").values,
            "nc3_predicted": nc3_pred.values,
        }
    )
    table = data.groupby(["classes", "activation", "depth"], as_index=False).agg(
        trials=("run_id", "size"),
        worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
        worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
        max_nc1=("nc1", "max"),
        nc2_min=("nc2_cosine_mean", "min"),
        nc2_max=("nc2_cosine_mean", "max"),
        nc2_predicted_median=("nc2_predicted", "median"),
        nc3_min=("nc3_cosine_mean", "min"),
        nc3_predicted_median=("nc3_predicted", "median"),
    )
    checks = [
        *theory_checks(done, section="§6", what="Σ_k h_{β/√n}(·)"),
        structure_check(
            "NC1",
            done,
            h.num(done, "nc.nc1"),
            claim="At the optimum the within-class variation of the last features vanishes (NC1, THEORY §6).",
            measured="tr(Σ_W Σ_B⁺)/K of the final network",
            target=0.0,
        ),
    ]
    for rows, name in ((balanced, "balanced"), (~balanced, "unbalanced")):
        if not rows.any():
            continue
        sub = done[rows]
        if name == "balanced":
            claim2 = "With balanced classes the centred class means form a simplex ETF: mean pairwise cosine −1/(K−1) (NC2, THEORY §6)."
            claim3 = "With balanced classes the classifier columns align with the centred class means: cosine 1 (NC3, THEORY §6)."
            text2, text3 = "−1/(K−1)", "1"
        else:
            claim2 = "With unbalanced classes the centred class means have the pairwise cosines of §6's optimum for these class sizes (derived in this module; −1/(K−1) only for equal sizes)."
            claim3 = "With unbalanced classes the classifier–class-mean cosine is that of §6's optimum for these class sizes (NC3 < 1 in general)."
            text2 = text3 = "the optimum's value (nc_opt.*)"
        checks.append(
            structure_check(
                f"NC2 {name}",
                sub,
                h.num(sub, "nc.nc2_cosine_mean"),
                claim=claim2,
                measured="mean pairwise cosine of the centred class means, per trial",
                target=nc2_pred[rows],
                target_text=text2,
            )  # fmt: skip
        )
        checks.append(
            structure_check(
                f"NC3 {name}",
                sub,
                h.num(sub, "nc.nc3_cosine_mean"),
                claim=claim3,
                measured="mean cosine of w_k − w̄ with μ_k − μ_G, per trial",
                target=nc3_pred[rows],
                target_text=text3,
            )  # fmt: skip
        )
        if nc2_pred[rows].isna().all():
            checks[-2].reason = checks[-1].reason = (
                "unbalanced classes: no prediction logged (nc_opt.* missing)"
            )
    summary = "; ".join(
        f"{c}: NC2 cosine {fmt(h.vmin(g['nc2_cosine_mean']), 4)}…{fmt(h.vmax(g['nc2_cosine_mean']), 4)} "
        f"(predicted {fmt(h.vmin(g['nc2_predicted']), 4)}…{fmt(h.vmax(g['nc2_predicted']), 4)})"
        for c, g in data.groupby("classes")
    )
    fig, axes = h.make_figure(4, "E7 — batch norm: closed form and neural collapse (THEORY §6)",
                              width=3.9)  # fmt: skip
    groups = list(data.groupby(["classes", "activation", "depth"]))
    labels = [f"{c[:3]}. {a} L={int(d)}" for (c, a, d), _ in groups]
    panels = [
        ("rel_gap", True, "|SGD − P*| / |P*| (SGD alone, log)", "gap to closed form", None),
        ("nc1", True, "tr(Σ_W Σ_B⁺)/K (dimensionless, log)", "NC1: within-class → 0", None),
        ("nc2_cosine_mean", False, "mean pairwise cosine of class means", "NC2 (− − predicted)", "nc2_predicted"),
        ("nc3_cosine_mean", False, "cos(w_k − w̄, μ_k − μ_G)", "NC3 (− − predicted)", "nc3_predicted"),
    ]  # fmt: skip
    for j, (metric, logy, ylabel, sub, pred) in enumerate(panels):
        ax = axes[0, j]
        vals = [g[metric].dropna() for _, g in groups]
        h.strip(ax, labels, [h.pos(v) if logy else np.asarray(v, float) for v in vals], color=f"C{j}",
                label="trained")  # fmt: skip
        if pred is not None:
            for i, (_, g) in enumerate(groups):
                p = g[pred].dropna()
                if len(p):
                    ax.hlines(p.median(), i - 0.3, i + 0.3, colors="k", linestyles="--", lw=1,
                              label="predicted")  # fmt: skip
            h.legend(ax)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("classes, activation, depth L", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(sub, fontsize=10)
        ax.tick_params(labelsize=7)
    return Result(data, table, checks, fig, summary, reach=reach(done, inputs.curves))
