"""E9 (THEORY §7): certificates — a valid lower bound on P* for every trial.

Claim: every certificate (and every logged ``lower_bound``) is a lower bound on P*: never
above a feasible objective of the same problem (SGD alone, polished, ``upper_bound``) and
never above the exact P* where one is known (THEORY §7: "a lower bound must never exceed P*").
Tolerance ``CERT_TOL`` relative (round-off of the two float64 evaluations), or the optimum's
own certified gap (``optimum_rel_gap``) where P* is a numerical, certified value (§10).

Trials are split into **covered** (an exact or certified P* is known; there the certificate is
P* itself, so its gap is the gap to P*) and **not covered** (the certificate is the §7/§10 dual
bound of the trained weights): each part has its own medians — the certified gap where there
is no closed form is the number this experiment adds (no reference in THEORY).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.experiments import helpers as h
from analysis.experiments.base import Inputs, Result, experiment
from analysis.experiments.verdicts import count_check, recomputed
from analysis.tables import column, fmt

CERT_TOL = 1e-9  # relative slack for "lower bound ≤ objective" (float64 round-off)


@experiment(
    "E9",
    "E9 — certificates of every trial: covered vs not covered (THEORY §7)",
    section="§7",
    rows=lambda trials: trials,
    zero_optimum="keep",
)
def certificates(done: pd.DataFrame, inputs: Inputs) -> Result:
    sgd, pol = h.num(done, "sgd_objective"), h.num(done, "polished_objective")
    cert, lower = h.num(done, "certificate"), h.num(done, "lower_bound")
    exact, upper = h.num(done, "exact_objective"), h.num(done, "upper_bound")
    feasible = pd.concat([sgd, pol, upper], axis=1).min(axis=1, skipna=True)
    bound = pd.concat([cert, lower], axis=1).max(axis=1, skipna=True)
    scale = np.maximum(1.0, feasible.abs())
    above_feasible = (bound - feasible) > CERT_TOL * scale
    # a certified (numerical) P* is itself known only to its own relative gap
    slack = np.maximum(CERT_TOL, h.num(done, "optimum_rel_gap").fillna(0.0).abs())
    above_exact = (bound - exact) > slack * np.maximum(1.0, exact.abs())
    covered = exact.notna()
    r = recomputed(done)  # drawn gaps are recomputed from the objectives: a violation shows
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "experiment": column(done, "experiment", "").fillna("").values,
            "net": h.net_kind(done).values,
            "depth": column(done, "model.depth").values,
            "width": column(done, "model.width").values,
            "data": column(done, "data.kind", "").values,
            "K": column(done, "data.outputs").values,
            "covered": covered.values,
            "sgd_objective": sgd.values,
            "polished_objective": pol.values,
            "certificate": cert.values,
            "lower_bound": lower.values,
            "exact_objective": exact.values,
            "rel_gap": r["sgd_gap"].values,
            "rel_certified_gap": r["cert_gap"].values,
            "bound_above_objective": above_feasible.values,
            "bound_above_exact": above_exact.values,
        }
    )
    keys = ["covered", "net", "depth", "width", "data", "K"]
    table = data.groupby(keys, as_index=False).agg(
        trials=("run_id", "size"),
        certified=("certificate", lambda s: int(s.notna().sum())),
        median_rel_gap=("rel_gap", "median"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
        max_rel_certified_gap=("rel_certified_gap", "max"),
        bounds_above_objective=("bound_above_objective", "sum"),
        bounds_above_exact=("bound_above_exact", "sum"),
    )
    has_bound = bound.notna() & feasible.notna()
    checks = [
        count_check(
            "bound ≤ objective",
            claim="A certificate is a lower bound on P*, so never above a feasible objective of "
            "the same problem (THEORY §7).",
            measured="max(certificate, lower_bound) − min(SGD, polished, upper_bound)",
            expected=f"≤ {CERT_TOL:g}·max(1, |objective|) in every trial",
            ok=(~above_feasible).where(has_bound),
            worst=f"{int(above_feasible.sum())} above",
        ),
        count_check(
            "bound ≤ P*",
            claim="A lower bound must never exceed P* (THEORY §7).",
            measured="max(certificate, lower_bound) − P* where a closed form / certified P* exists",
            expected=f"≤ max({CERT_TOL:g}, P*'s own certified gap)·max(1, |P*|) in every covered trial",
            ok=(~above_exact).where(covered & bound.notna()),
            worst=f"{int(above_exact.sum())} above",
        ),
    ]
    cg = data["rel_certified_gap"]
    summary = (
        f"covered: {int(covered.sum())} trials, median certified gap "
        f"{fmt(h.vmedian(cg[data['covered']]), 2)}; not covered: {int((~covered).sum())} trials, "
        f"{int(cert[~covered].notna().sum())} certified, median certified gap "
        f"{fmt(h.vmedian(cg[~data['covered']]), 2)} (max {fmt(h.vmax(cg[~data['covered']]), 2)})"
    )
    parts = [("covered: closed form /\ncertified P* known", True),
             ("not covered: certificate\nfrom the trained weights", False)]  # fmt: skip
    n_groups = max(1, max(len(data[data["covered"] == c].groupby(keys[1:])) for _, c in parts))
    fig, axes = h.make_figure(2, "E9 — certified gaps of every trial (THEORY §7)", width=6.0,
                              height=1.6 + 0.32 * n_groups)  # fmt: skip
    for j, (sub, cov) in enumerate(parts):
        ax = axes[0, j]
        part = data[data["covered"] == cov]
        groups = list(part.groupby(keys[1:]))
        labels = [f"{a} L={int(d)} m={int(m)} {k} K={int(K)}" for (a, d, m, k, K), _ in groups]
        for i, (_, g) in enumerate(groups):
            for col, color, marker, lab, dy in (
                ("rel_certified_gap", "C3", "x", "(SGD − certificate)/SGD", 0.15),
                ("rel_gap", "C0", "o", "(SGD − P*)/P*", -0.15),
            ):
                v = g[col].dropna()
                if len(v):
                    y = i + dy + (np.linspace(-0.06, 0.06, len(v)) if len(v) > 1 else 0.0)
                    neg = v.to_numpy(float) < 0  # below P* / certificate above SGD: a violation
                    ax.scatter(h.pos(v[~neg]), np.asarray(y + np.zeros(len(v)))[~neg], s=18,
                               color=color, marker=marker, alpha=0.8, label=lab)  # fmt: skip
                    if neg.any():
                        ax.scatter(h.pos(v[neg]), np.asarray(y + np.zeros(len(v)))[neg], s=60,
                                   color="red", marker="*", label="negative gap (|gap| drawn): "
                                   "a violation")  # fmt: skip
        ax.set_yticks(range(len(groups)), labels, fontsize=8)
        ax.set_ylim(-0.6, max(len(groups), 1) - 0.4)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("relative gap (log)")
        ax.set_title(f"{sub} ({len(part)} trials)", fontsize=10)
        if not groups:
            ax.text(0.5, 0.5, "no trials", ha="center", transform=ax.transAxes)
        h.legend(ax)
    return Result(data, table, checks, fig, summary)
