"""E1 (THEORY §1): rank of the trained W₁ vs β for 2-layer linear nets on whitened data.

Claim: at the optimum rank(W₁) = #{k : σ_k(XᵀY) > β} (singular-value soft-thresholding), and
full-batch GD reaches P* = Σ_k h_β(σ_k). The predicted count is the trial's ``predicted_rank``
(the rank of the closed-form optimum's W₁). E1 keeps trials whose optimum is zero (β > σ₁):
rank 0 there is part of the claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import (
    AT_OPT,
    REACH_TOLS,
    at_optimum,
    count_check,
    inconclusive,
    reach,
    theory_checks,
    tol_text,
    whitened,
    zero_optimum,
)
from analysis.tables import column, fmt


def _match(f: pd.DataFrame) -> pd.Series:
    return (
        h.is_(f, "model.activation", "linear")
        & h.is_(f, "model.depth", 2)
        & h.plain(f)
        & whitened(f)
    )


@experiment(
    "E1",
    "E1 — rank of W₁ vs β, 2-layer linear nets (THEORY §1)",
    section="§1",
    needs=("curves",),
    match=_match,
    zero_optimum="keep",
)
def rank_vs_beta(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "K": column(done, "data.outputs").values,
            "beta": column(done, "train.beta").values,
            "seed": column(done, "seed").values,
            "trained_rank": h.num(done, "layer1.rank").values,
            "predicted_rank": h.num(done, "predicted_rank").values,
            **h.gaps(done),
        }
    )
    at = at_optimum(done).values
    data["at_optimum"] = at
    has_pred = data["predicted_rank"].notna()
    data["match"] = (data["trained_rank"] == data["predicted_rank"]).where(has_pred)
    table = (
        data.groupby(["K", "beta"], as_index=False)
        .agg(
            trials=("run_id", "size"),
            predicted_rank=("predicted_rank", "median"),
            trained_rank_min=("trained_rank", "min"),
            trained_rank_max=("trained_rank", "max"),
            matched=("match", lambda s: int(s.fillna(False).astype(bool).sum())),
            worst_sgd_rel_gap=("rel_gap", lambda s: s.abs().max()),
            worst_polished_rel_gap=("polished_rel_gap", lambda s: s.abs().max()),
        )
        .sort_values(["K", "beta"])
    )
    counted = pd.Series(at, index=done.index) & has_pred.values
    n_not = int((~counted).sum())
    rank = count_check(
        "rank",
        claim="At the optimum rank(W₁) equals #{σ_k(XᵀY) > β} (THEORY §1, soft-thresholding).",
        measured="rank(W₁) (singular values > 1e-6·max(1, σ₁)) of the final network vs "
        "the closed-form optimum's",
        expected=f"equal in every trial whose final network is within {AT_OPT:g} of P*",
        ok=pd.Series(data["match"].values, index=done.index).where(counted),
        skipped=f"{n_not} not at the optimum or without prediction" if n_not else "",
    )
    if rank.status.value == "INCONCLUSIVE" and n_not:
        rank.reason = f"no network at the optimum: {n_not}/{len(done)} final networks not at P*"
    checks = [*theory_checks(done, section="§1", what="Σ_k h_β(σ_k)"), rank]
    zero = zero_optimum(done)
    if zero.all():
        checks.insert(
            0,
            inconclusive(
                "non-zero optimum",
                claim="Some β of the grid lie below σ₁, so rank(W₁) > 0 is predicted (THEORY §1).",
                measured="trials with P* = ½‖Y‖²",
                expected="not all",
                seen=f"{len(done)}/{len(done)} trials have P* = ½‖Y‖²",
                reason="optimum is zero (P* = ½‖Y‖²) in every trial",
                n=len(done),
            ),
        )
    summary = (
        f"rank matched in {int(data['match'].fillna(False).astype(bool).sum())}/{int(has_pred.sum())} "
        f"trials (all, converged or not)"
    )

    fig, axes = h.make_figure(2, "E1 — rank of W₁ vs β, 2-layer linear nets (THEORY §1)")
    ax = axes[0, 0]
    for i, (K, grp) in enumerate(data.groupby("K")):
        for j, (_, per_seed) in enumerate(grp.groupby("seed")):  # one line per data set
            pred = per_seed.sort_values("beta")
            ax.plot(pred["beta"], pred["predicted_rank"], color=f"C{i}", lw=1.0, ls="--",
                    alpha=0.7, label=f"predicted #{{σ_k>β}} per seed, K={int(K)}" if j == 0
                    else None)  # fmt: skip
        ax.scatter(grp["beta"], grp["trained_rank"], color=f"C{i}", marker="o", s=22,
                   label=f"trained rank(W₁), K={int(K)}")  # fmt: skip
    ax.set_xlabel("β (weight decay, dimensionless)")
    ax.set_ylabel("rank of W₁ (count, tol 1e-6)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    top = np.nanmax(
        np.r_[data["trained_rank"].to_numpy(float), data["predicted_rank"].to_numpy(float), 0.0]
    )
    ax.set_ylim(-0.5, top + 0.5)
    ax.set_title("trained rank vs predicted count")
    h.legend(ax)
    ax = axes[0, 1]
    ax.scatter(data["beta"], h.pos(data["rel_gap"]), s=30, label="SGD alone")
    if data["polished_rel_gap"].notna().any():
        ax.scatter(data["beta"], h.pos(data["polished_rel_gap"]), s=30, marker="x",
                   label="after L-BFGS polish")  # fmt: skip
    ax.axhline(AT_OPT, color="k", ls=":", lw=1, label=f"at the optimum: {AT_OPT:g}")
    ax.axhline(
        REACH_TOLS[0], color="0.5", ls="--", lw=1, label=f"SGD reach {tol_text(REACH_TOLS[0])}"
    )
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay, dimensionless)")
    ax.set_ylabel("|objective − P*| / |P*| (relative, log)")
    ax.set_title("objective vs closed form Σ h_β(σ_k)")
    h.legend(ax)
    return Result(
        data,
        table,
        checks,
        fig,
        summary + f"; worst |SGD gap| {fmt(h.abs_max(data['rel_gap']), 2)}",
        reach=reach(done, inputs.curves),
    )
