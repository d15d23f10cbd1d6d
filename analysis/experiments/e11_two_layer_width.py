"""E11 (THEORY §10): does (S)GD reach P* on general data, as a function of width / m*?

Two-layer ReLU networks on general data have an exact P* (the convex program over activation
patterns of §10, family ``relu_two_layer``; §3's closed form where whitening makes X Xᵀ = I),
attained by a network of m* neurons (``m_star``). The trial engine logs, per trial:

- width m ≥ m*: ``exact_objective`` = P* and ``rel_gap`` = (SGD − P*)/|P*| (SGD alone);
- width m < m*: P* of this width is unknown; ``p_star_any_width`` = P* (width ≥ m*) is a
  certified lower bound on it, and the gap is measured against it here;
- no P* at all (patterns beyond the cap, e.g. raw digits): a certified bracket
  (``bracket_rel_width``) — shown in the table, not counted by the checks.

Claims (thresholds from THEORY, never from the data):

- **P* is a lower bound** — no trained objective (SGD or polished) below P* by more than
  ``BELOW_TOL`` (relative), and no certificate above it: either refutes the solver.
- **width < m*: a measurement, not a check** — m* is the width of the optimal network the
  solver *found* (≤ n + 1 by Carathéodory), not a proven minimum (a width-2 network came within
  1.1e-6 of P* on an instance with m* = 3): a narrow trial at P* shows a smaller optimal network,
  it refutes nothing. The summary counts them, and those whose width is below the proven
  smallest optimal width (``min_width_lower``, :mod:`solvers.min_width`: their P*_m > P*
  strictly, a theorem per instance); ``min_width`` (proven) is a column.
- **width ≥ m*: does (S)GD reach P*?** — an optimizer measurement, never a theory verdict:
  the rate within 1e-4 / 1e-6 by width / m*, the misses classified
  (:func:`~analysis.experiments.verdicts.reach`); a gate only where the user sets one
  (``--expect-reach``).
"""

from __future__ import annotations

import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import (
    AT_OPT,
    BELOW_TOL,
    REACH_TOLS,
    count_check,
    minibatch,
    reach,
    records_check,
    tol_text,
)
from analysis.tables import column, fmt

NARROW, WIDE, NO_P = "width < m*", "width ≥ m*", "no P* (bracket)"
GENERAL = ("gaussian", "digits")  # data kinds without a closed form on raw inputs


def _match(f: pd.DataFrame) -> pd.Series:
    """Stores without experiment ids: 2-layer ReLU nets (biases allowed) on general data."""
    kind = column(f, "data.kind", "").fillna("").astype(str)
    ball = column(f, "model.ball", "none").fillna("none")
    return (
        h.is_(f, "model.activation", "relu")
        & h.is_(f, "model.depth", 2)
        & ~h.flag(f, "model.batchnorm")
        & (ball == "none")
        & kind.isin(GENERAL)
    )


def _data_label(f: pd.DataFrame) -> pd.Series:
    kind = column(f, "data.kind", "").fillna("").astype(str)
    whiten = column(f, "data.whiten", "auto").fillna("auto").astype(str)
    label = kind.where(whiten == "auto", kind + "+" + whiten)
    return label.where(~h.flag(f, "model.bias"), label + "+bias")


def e11_rows(done: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: width, m*, the P* it is compared with, SGD / polished gaps, regime."""
    exact, wide = h.num(done, "exact_objective"), h.num(done, "p_star_any_width")
    p_star = exact.where(exact.notna(), wide)
    sgd, pol = h.num(done, "sgd_objective"), h.num(done, "polished_objective")
    scale = p_star.abs().clip(lower=1e-300)
    width, m_star = column(done, "model.width"), h.num(done, "m_star")
    regime = pd.Series(NO_P, index=done.index)
    regime[exact.notna()] = WIDE
    regime[exact.isna() & wide.notna() & (width < m_star)] = NARROW
    return pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "data": _data_label(done).values,
            "n": column(done, "data.n").values,
            "d": column(done, "data.d").values,
            "beta": column(done, "train.beta").values,
            "width": width.values,
            "m_star": m_star.values,
            "min_width": h.num(done, "min_width").values,
            "min_width_lower": h.num(done, "min_width_lower").values,
            "width_over_m_star": (width / m_star).values,
            "regime": regime.values,
            "p_star": p_star.values,
            "sgd_objective": sgd.values,
            "polished_objective": pol.values,
            "sgd_rel_gap": ((sgd - p_star) / scale).values,
            "polished_rel_gap": ((pol - p_star) / scale).values,
            "certificate": h.num(done, "certificate").values,
            "w1_alignment": h.num(done, "w1_alignment").values,
            "bracket_rel_width": h.num(done, "bracket_rel_width").values,
            "minibatch": minibatch(done).values,
        },
        index=done.index,
    )


def _lower_bound_check(data: pd.DataFrame) -> object:
    has = data["p_star"].notna()
    below = (data["sgd_rel_gap"] < -BELOW_TOL) | (data["polished_rel_gap"] < -BELOW_TOL)
    cert_above = data["certificate"] > data["p_star"] + BELOW_TOL * data["p_star"].abs()
    ok = (~below & ~cert_above).where(has)
    worst = data.loc[has, ["sgd_rel_gap", "polished_rel_gap"]].min(axis=None)
    return count_check(
        "P* is a lower bound",
        claim="No network beats P* and no certificate exceeds it (THEORY §10: P* is the "
        "minimum over every width; the certificate is a dual bound).",
        measured="min over trials of (objective − P*)/|P*| (SGD and polished); certificate − P*",
        expected=f"objective ≥ P*(1 − {BELOW_TOL:g}) and certificate ≤ P*(1 + {BELOW_TOL:g})",
        ok=ok,
        worst=f"lowest gap {fmt(float(worst), 2)}" if has.any() else "",
        skipped=f"{int((~has).sum())} without P*" if (~has).any() else "",
    )


def narrow_at_optimum(data: pd.DataFrame) -> tuple[int, int]:
    """(narrow trials, those whose final objective is within ``AT_OPT`` of P* of any width)."""
    narrow = data["regime"] == NARROW
    final = data["polished_rel_gap"].where(data["polished_rel_gap"].notna(), data["sgd_rel_gap"])
    return int(narrow.sum()), int((final[narrow] <= AT_OPT).sum())


@experiment(
    "E11",
    "E11 — 2-layer ReLU, general data: does SGD reach P* as a function of width / m*? (THEORY §10)",
    section="§10",
    needs=("curves",),
    match=_match,
)
def two_layer_width(done: pd.DataFrame, inputs: Inputs) -> Result:
    data = e11_rows(done)
    checks = [records_check(done), _lower_bound_check(data)]
    data["reached"] = (data["sgd_rel_gap"].abs() <= REACH_TOLS[0]).where(data["p_star"].notna())
    table = (
        data.groupby(["data", "regime"], as_index=False)
        .agg(
            trials=("run_id", "size"),
            reached=("reached", lambda s: int(s.fillna(False).astype(bool).sum())),
            median_m_star=("m_star", "median"),
            median_sgd_rel_gap=("sgd_rel_gap", "median"),
            median_polished_rel_gap=("polished_rel_gap", "median"),
            median_w1_alignment=("w1_alignment", "median"),
            median_bracket=("bracket_rel_width", "median"),
        )
        .sort_values(["data", "regime"], kind="stable")
        .reset_index(drop=True)
    )
    counts = data["regime"].value_counts()
    summary = (
        f"{int(counts.get(WIDE, 0))} trials with width ≥ m*, {int(counts.get(NARROW, 0))} below "
        f"m*, {int(counts.get(NO_P, 0))} without P* (median bracket "
        f"{fmt(h.vmedian(data.loc[data['regime'] == NO_P, 'bracket_rel_width']), 2)})"
    )
    n_narrow, at_opt = narrow_at_optimum(data)
    if n_narrow:
        proven = int(((data["regime"] == NARROW) & (data["width"] < data["min_width_lower"])).sum())
        summary += (
            f"; {at_opt}/{n_narrow} below m* came within {AT_OPT:g} of P* (a smaller optimal "
            f"network than the one found: m* is not proven minimal); {proven}/{n_narrow} below "
            "the proven smallest optimal width (P* of their width strictly above P*)"
        )
    wide = done[(data["regime"] == WIDE).values]
    return Result(data, table, checks, _figure(data), summary, reach=reach(wide, inputs.curves))


def _figure(data: pd.DataFrame):
    fig, axes = h.make_figure(
        3, "E11 — 2-layer ReLU on general data: gap to P* vs width / m* (THEORY §10)"
    )
    groups = sorted(data["data"].unique())
    has = data["p_star"].notna() & data["width_over_m_star"].notna()
    for ax, col, title in (
        (axes[0, 0], "sgd_rel_gap", "SGD alone"),
        (axes[0, 1], "polished_rel_gap", "after the L-BFGS polish"),
    ):
        drawn = False
        for i, g in enumerate(groups):
            rows = data[has & (data["data"] == g) & data[col].notna()]
            if len(rows):
                ax.scatter(rows["width_over_m_star"], h.pos(rows[col]), s=22, alpha=0.8,
                           color=f"C{i % 10}", label=g)  # fmt: skip
                drawn = True
        ax.axvline(1.0, color="k", lw=1, ls="--", label="width = m*")
        ax.axhline(
            REACH_TOLS[0], color="0.5", lw=1, ls=":", label=f"reach {tol_text(REACH_TOLS[0])}"
        )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width / m* (log₂)")
        ax.set_ylabel("(objective − P*) / |P*| (relative, log)")
        ax.set_title(title if drawn else f"{title}: no trial with P*")
        h.legend(ax)
    ax = axes[0, 2]
    rows = data[data["width_over_m_star"].notna() & data["w1_alignment"].notna()]
    for i, g in enumerate(groups):
        sel = rows[rows["data"] == g]
        if len(sel):
            ax.scatter(sel["width_over_m_star"], sel["w1_alignment"], s=22, alpha=0.8,
                       color=f"C{i % 10}", label=g)  # fmt: skip
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("width / m* (log₂)")
    ax.set_ylabel("w1_alignment (1 = every optimal neuron found)")
    ax.set_title("trained neurons vs the optimal ones" if len(rows) else "no alignment logged")
    h.legend(ax)
    return fig
