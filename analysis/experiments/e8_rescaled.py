"""E8 (THEORY §9): the rescaled problem — which ball makes the paper's duality exact.

Claims, at the radius t minimising P_R(t) + (β/2)(L−2)t²:

- **operator-norm balls**: strong duality, P_R = D (for linear nets, any K) — the relative gap
  (P_R − D)/P_R is zero up to ``DUALITY_TOL``; P_R is computed independently of D, so a zero
  gap is a measurement;
- **Frobenius balls**: weak duality only; with K > 1 and an optimum of rank ≥ 2 the value is a
  Schatten-2/L problem and D is strictly below P_R (THEORY: 25–63%); the gap must exceed
  ``FRO_MIN_GAP`` = 100 × the numerical tolerance. With rank ≤ 1 both balls coincide (gap 0):
  such trials are shown but not counted;
- in both, P_R ≥ D (weak duality): a gap below −``DUALITY_TOL`` fails.

Metrics: one trial logs both balls — ``rescaled.op_primal/_dual/_gap`` and
``rescaled.fro_primal/_dual/_gap`` (also read as ``rescaled_op_primal`` …); stores from before
that have one ball per trial (``model.ball``, ``rescaled.primal/dual/relative_gap``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import count_check
from analysis.tables import column, fmt

DUALITY_TOL = 1e-6  # |P_R − D|/P_R below this is "equal" (both solved to ~1e-9)
FRO_MIN_GAP = 100 * DUALITY_TOL  # "strictly below": a gap this far above round-off
BALLS = {"operator": ("op", "operator"), "frobenius": ("fro", "frobenius")}


def _metric(frame: pd.DataFrame, ball: str, what: str) -> pd.Series:
    """``rescaled.<ball>_<what>`` under any of the spellings (NaN when none was logged)."""
    whats = (what, "relative_gap") if what == "gap" else (what,)
    for b in BALLS[ball]:
        for w in whats:
            for name in (f"rescaled.{b}_{w}", f"rescaled_{b}_{w}", f"rescaled.{b}.{w}"):
                if name in frame.columns:
                    return h.num(frame, name)
    return pd.Series(np.nan, index=frame.index)


def _has_metrics(f: pd.DataFrame) -> pd.Series:
    any_ball = column(f, "model.ball", "none").fillna("none") != "none"
    for ball in BALLS:
        any_ball = any_ball | _metric(f, ball, "primal").notna()
    return any_ball


def _long(done: pd.DataFrame) -> pd.DataFrame:
    """One row per trial × ball."""
    base = {
        "run_id": done["run_id"].values,
        "depth": column(done, "model.depth").values,
        "K": column(done, "data.outputs").values,
        "beta": column(done, "train.beta").values,
        "seed": column(done, "seed").values,
        "predicted_rank": h.num(done, "predicted_rank").values,
    }
    parts = []
    for ball in BALLS:
        p, d, g = (_metric(done, ball, w) for w in ("primal", "dual", "gap"))
        parts.append(pd.DataFrame({**base, "ball": ball, "P_R": p.values, "D": d.values,
                                   "relative_gap": g.values}))  # fmt: skip
    legacy_ball = column(done, "model.ball", "none").fillna("none").astype(str)
    if (legacy_ball != "none").any():
        p, d = h.num(done, "rescaled.primal"), h.num(done, "rescaled.dual")
        g = h.num(done, "rescaled.relative_gap")
        parts.append(pd.DataFrame({**base, "ball": legacy_ball.values, "P_R": p.values,
                                   "D": d.values, "relative_gap": g.values}))  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    gap = out["relative_gap"]
    out["relative_gap"] = gap.where(gap.notna(), (out["P_R"] - out["D"]) / out["P_R"].abs())
    return out[out["P_R"].notna() | out["relative_gap"].notna()].reset_index(drop=True)


@experiment(
    "E8",
    "E8 — rescaled problem: P_R vs dual D, operator vs Frobenius balls (THEORY §9)",
    section="§9",
    match=_has_metrics,
)
def rescaled_duality(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = _long(done)
    table = (
        data.groupby(["ball", "depth", "beta"], as_index=False).agg(
            trials=("run_id", "size"),
            median_P_R=("P_R", "median"),
            median_D=("D", "median"),
            min_gap=("relative_gap", "min"),
            max_gap=("relative_gap", "max"),
        )
        if len(data)
        else pd.DataFrame()
    )
    op = data[data["ball"] == "operator"]
    fro = data[data["ball"] == "frobenius"]
    op_gap = op["relative_gap"]
    checks = [
        count_check(
            "operator: P_R = D",
            claim="With operator-norm balls strong duality holds: P_R(t) = D(t) (THEORY §9).",
            measured="(P_R − D)/P_R at the optimal radius, P_R computed independently of D",
            expected=f"|gap| ≤ {DUALITY_TOL:g} in every trial",
            ok=(op_gap.abs() <= DUALITY_TOL).where(op_gap.notna()),
            worst=f"max |gap| {fmt(float(op_gap.abs().max()), 2)}" if op_gap.notna().any() else "",
        )
    ]
    rank2 = (fro["predicted_rank"] >= 2) & (fro["K"] > 1)
    fg = fro["relative_gap"]
    below = fg < -DUALITY_TOL  # weak duality violated: fails whatever the rank
    ok = (fg >= FRO_MIN_GAP).where(rank2 & fg.notna())
    ok[below] = False
    n_low = int((~rank2 & ~below & fg.notna()).sum())
    checks.append(
        count_check(
            "Frobenius: D < P_R",
            claim="With Frobenius balls, K > 1 and an optimum of rank ≥ 2, the dual bound is "
            "strictly below P_R (THEORY §9: 25–63%).",
            measured="(P_R − D)/P_R at the optimal radius",
            expected=f"≥ {FRO_MIN_GAP:g} in every trial with rank ≥ 2 (and ≥ −{DUALITY_TOL:g} in all)",
            ok=ok,
            worst=(
                f"gap {fmt(100 * float(fg[rank2].min()), 3)}–{fmt(100 * float(fg[rank2].max()), 3)}%"
                if rank2.any() and fg[rank2].notna().any()
                else ""
            ),
            skipped=f"{n_low} with optimum rank ≤ 1 not counted" if n_low else "",
        )
    )
    summary = (
        "; ".join(
            f"{b} ball: (P_R − D)/P_R {fmt(100 * h.vmin(g['relative_gap']), 3)}–"
            f"{fmt(100 * h.vmax(g['relative_gap']), 3)}% over {len(g)} trials"
            for b, g in data.groupby("ball")
        )
        or "no rescaled.* metrics logged"
    )
    fig, axes = h.make_figure(2, "E8 — rescaled problem: P_R vs dual D, operator vs Frobenius balls (THEORY §9)",
                              width=5.2, floor_note=False)  # fmt: skip
    ax = axes[0, 0]
    markers = ["o", "s", "^", "D"]
    betas = sorted(data["beta"].dropna().unique())
    balls = sorted(data["ball"].dropna().unique())
    for i, ball in enumerate(balls):
        for j, (d, gd) in enumerate(data[data["ball"] == ball].groupby("depth")):
            x = np.array([betas.index(b) for b in gd["beta"]], dtype=float)
            x += 0.2 * (i - (len(balls) - 1) / 2) + np.linspace(-0.04, 0.04, len(x))
            ax.scatter(x, 100 * gd["relative_gap"], color=f"C{i}", marker=markers[j % len(markers)],
                       s=30, label=f"{ball}, L={int(d)}")  # fmt: skip
    ax.set_xticks(range(len(betas)), [f"β={fmt(b)}" for b in betas])
    ax.axhline(0.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("(P_R − D) / P_R (percent)")
    ax.set_title("duality gap of the rescaled problem")
    h.legend(ax)
    ax = axes[0, 1]
    for i, (ball, g) in enumerate(data.groupby("ball")):
        ax.scatter(g["P_R"], g["D"], color=f"C{i}", s=28, label=f"{ball} ball")
    h.diagonal(ax, data, "P_R", "D", "D = P_R")
    ax.set_xlabel("P_R at the optimal radius t (objective units)")
    ax.set_ylabel("dual bound D (objective units)")
    ax.set_title("primal vs dual")
    h.legend(ax)
    return Result(data, table, checks, fig, summary)
