"""Verdicts: two kinds of statement, never mixed.

**Theory checks** (:class:`Check` with ``kind="theory"``) — PASS / FAIL / INCONCLUSIVE about
the optimum, judged where it is known. A FAIL says a theorem (or the solver that implements
it) is contradicted by a trial; nothing an optimizer does can make one fail except by beating
P*:

- **no network below P*** (:func:`optimum_checks`): no objective — SGD alone, polished — lies
  below ``P*`` by more than ``BELOW_TOL`` (relative; or ``P*``'s own certified gap where P* is a
  numerical §10 value). One that does is a counterexample to the closed form / §10's program.
- **the routes to P* agree** (:func:`optimum_checks`): every lower route (the certificate, the
  §7 dual bound of the trained weights, a bracket's lower bound) is ``≤ P*`` and every network
  ``≥ P*``; where only a bracket is known, every lower bound ``≤`` every network. At least one
  network within ``AT_OPT`` of ``P*`` (the primal route meeting the closed form) makes it PASS;
  none: INCONCLUSIVE (bounded, not attained).
- **the logged record is consistent** (:func:`records_check`): the gaps the trial logged are
  recomputed from the logged objectives and ``P*`` (``rel_gap``, ``polished_rel_gap``,
  ``rel_certified_gap``); a mismatch beyond ``LOG_TOL`` means the numbers cannot be trusted: FAIL.
  Every verdict uses the recomputed gaps, never the logged ones.
- **structure at the optimum** (:func:`structure_check`): ranks, ‖W‖₂/‖W‖_F = 1, cosines = 1,
  neural collapse, kinks — counted only on networks AT the optimum: final objective (polished
  where there is a polish) within ``AT_OPT = 1e-9`` of ``P*``, or certified there by the network's
  own certificate. A structure quantity exact at the optimum is within ``STRUCT_TOL = 1e-3``
  there (weights within relative objective gap δ of a locally strongly convex optimum are
  O(√δ) away; 1e-3 = √1e-6 leaves a factor 30 for the curvature at δ = 1e-9). A trial not at
  the optimum says nothing about the optimum's structure: not counted; none counted →
  INCONCLUSIVE with the count ("0/N networks reached the optimum").

One counted trial that misses a threshold → FAIL. A theorem is checked trial by trial, so one
counted trial suffices for PASS (``MIN_TRIALS = 1``; ``seen`` gives the count).

**Optimizer measurements** (:class:`Reach`, :func:`reach`) — never PASS / FAIL about theory:
how often SGD *alone* (before any polish) ends within ``1e-4`` and ``1e-6`` (relative) of P*,
the gap distribution by grid axis, the worst trials named, and every miss classified
(:func:`classify_misses`): the zero network, not converged (the polish from SGD's end point
goes on to P*), a stationary point §3 predicts (a path of the chain on where the optimum has it
off, or the reverse), the step budget (the objective still falling when SGD stopped), the
infimum not attained, or stuck (the polish cannot improve either). A user who wants a gate
sets an expectation (``python -m analysis --expect-reach 0.9``): the rate within 1e-4 must be
at least that; its failure is an **optimizer** FAIL (``kind="optimizer"``), reported as such.

An experiment's theory verdict is FAIL if any theory check fails, else INCONCLUSIVE if any is
inconclusive, else PASS (:func:`combine`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np
import pandas as pd

from analysis.tables import column, fmt, metric
from solvers.detect import WHITENED_TOL

__all__ = [
    "AT_OPT",
    "BELOW_TOL",
    "LOG_TOL",
    "MIN_TRIALS",
    "POLISH_PROGRESS",
    "REACH_TOLS",
    "STRUCT_TOL",
    "Check",
    "Reach",
    "Status",
    "at_optimum",
    "classify_misses",
    "combine",
    "count_check",
    "final_rel_gap",
    "inconclusive",
    "minibatch",
    "optimum_checks",
    "reach",
    "recomputed",
    "records_check",
    "structure_check",
    "theory_checks",
    "whitened",
    "zero_optimum",
]

BELOW_TOL = 1e-9  # an objective below P*(1 − BELOW_TOL) refutes the closed form
AT_OPT = 1e-9  # a final network this close to P* (relative) is "at the optimum"
STRUCT_TOL = 1e-3  # structure exact at the optimum is within this there (see above)
LOG_TOL = 1e-9  # |logged gap − gap recomputed from the logged objectives|
MIN_TRIALS = 1  # a theorem is checked per trial: one counted trial is one confirmation
REACH_TOLS = (1e-4, 1e-6)  # SGD "reached P*" within these (optimizer measurement)
POLISH_PROGRESS = 1e-2  # a polish that cuts SGD's gap 100× shows SGD had not converged
ZERO_RTOL = 1e-12  # P* ≥ ½‖Y‖²(1 − ZERO_RTOL) means the zero network is optimal
ZERO_NET_RTOL = 1e-6  # an SGD objective this close to ½‖Y‖² is the zero network
THEORY, OPTIMIZER = "theory", "optimizer"


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass
class Check:
    """One claim tested on trials.

    ``kind``: ``"theory"`` (about the optimum; gates ``--check``) or ``"optimizer"`` (an
    expectation the user set on SGD; gates only when set). ``claim``: one sentence with its
    THEORY section; ``measured``: the quantity; ``expected``: the threshold; ``seen``: what
    the trials gave; ``reason``: why FAIL / INCONCLUSIVE; ``n``: trials counted, ``passed``:
    how many met the threshold."""

    name: str
    claim: str
    measured: str
    expected: str
    seen: str
    status: Status
    reason: str = ""
    n: int = 0
    passed: int = 0
    kind: str = THEORY

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def combine(checks: list[Check]) -> Status:
    """The theory verdict: FAIL if any theory check failed, else INCONCLUSIVE if any is (or
    there are none), else PASS. Optimizer checks are left out (see :func:`combine_optimizer`)."""
    states = {c.status for c in checks if c.kind == THEORY}
    if Status.FAIL in states:
        return Status.FAIL
    if Status.INCONCLUSIVE in states or not states:
        return Status.INCONCLUSIVE
    return Status.PASS


def combine_optimizer(checks: list[Check]) -> Status | None:
    """FAIL / PASS of the optimizer expectations; None when none was set."""
    states = {c.status for c in checks if c.kind == OPTIMIZER}
    if not states:
        return None
    return Status.FAIL if Status.FAIL in states else Status.PASS


def inconclusive(name: str, **kw) -> Check:
    return Check(name=name, status=Status.INCONCLUSIVE, **kw)


def whitened(frame: pd.DataFrame) -> pd.Series:
    """True where the data IS whitened, however it was made: the logged
    ``whitening_error = ‖XXᵀ − I_n‖_F`` ≤ ``solvers.detect.WHITENED_TOL``. Stores without that
    measurement: the solver family (``*_whitened*``: the solver's own detection), else
    ``data.kind == whitened``."""
    err = metric(frame, "whitening_error")
    family = column(frame, "family", "").fillna("").astype(str)
    kind = column(frame, "data.kind", "").fillna("").astype(str)
    guess = family.str.contains("whitened") | (kind == "whitened")
    return (err <= WHITENED_TOL).where(err.notna(), guess).fillna(False).astype(bool)


def zero_optimum(done: pd.DataFrame) -> pd.Series:
    """True where the exact optimum is the zero network: ``P* = ½‖Y‖²`` (the logged
    ``null_objective``), or — for stores without it — the closed-form W₁ has rank 0."""
    exact, null = metric(done, "exact_objective"), metric(done, "null_objective")
    by_value = (exact >= null * (1.0 - ZERO_RTOL)) & exact.notna() & null.notna()
    rank0 = (metric(done, "predicted_rank") == 0) & null.isna()
    return (by_value | rank0).fillna(False).astype(bool)


def recomputed(done: pd.DataFrame) -> pd.DataFrame:
    """Gaps recomputed from the logged objectives (never the logged gaps): ``p_star``,
    ``sgd_gap`` = (SGD − P*)/|P*| (SGD alone), ``polished_gap``, ``final_gap`` (polished where
    there is a polish, else SGD), ``best`` = the lowest network objective, ``lower`` = the best
    lower route (certificate, dual bound, a bracket's lower bound), ``tol`` = the slack of P*
    (``BELOW_TOL``, or P*'s own certified gap for a numerical §10 value) and ``cert_gap`` =
    (SGD − certificate)/SGD."""
    p = metric(done, "exact_objective")
    sgd, pol = metric(done, "sgd_objective"), metric(done, "polished_objective")
    scale = p.abs().clip(lower=1e-300)
    sgd_gap, pol_gap = (sgd - p) / scale, (pol - p) / scale
    cert = metric(done, "certificate")
    lower = pd.concat([cert, metric(done, "dual_bound"), metric(done, "lower_bound")], axis=1).max(
        axis=1, skipna=True
    )
    return pd.DataFrame(
        {
            "p_star": p,
            "sgd_gap": sgd_gap,
            "polished_gap": pol_gap,
            "final_gap": pol_gap.where(pol.notna(), sgd_gap),
            "best": pd.concat([sgd, pol], axis=1).min(axis=1, skipna=True),
            "lower": lower,
            "tol": np.maximum(BELOW_TOL, metric(done, "optimum_rel_gap").fillna(0.0).abs()),
            "cert_gap": (sgd - cert) / sgd.abs().clip(lower=1e-300),
        },
        index=done.index,
    )


def final_rel_gap(done: pd.DataFrame) -> pd.Series:
    """(final − P*)/|P*| of the network the structure is measured on (recomputed): the polished
    one where there is a polish, else the SGD one."""
    return recomputed(done)["final_gap"]


def at_optimum(done: pd.DataFrame, tol: float = AT_OPT) -> pd.Series:
    """True where the final network is at the optimum: within ``tol`` (relative) of ``P*``, or
    — without P* — certified there by its own certificate ((SGD − certificate)/SGD ≤ ``tol``;
    the final network is no worse than SGD's). False otherwise."""
    r = recomputed(done)
    by_p = r["final_gap"].abs() <= tol
    by_cert = r["p_star"].isna() & (r["cert_gap"].abs() <= tol)
    return (by_p | by_cert).fillna(False).astype(bool)


def count_check(
    name: str,
    *,
    claim: str,
    measured: str,
    expected: str,
    ok: pd.Series,
    worst: str = "",
    skipped: str = "",
    min_trials: int = MIN_TRIALS,
    kind: str = THEORY,
) -> Check:
    """FAIL when any counted trial is not ``ok`` (False); else INCONCLUSIVE with fewer than
    ``min_trials`` counted; else PASS (NaN = not counted; ``skipped`` says why)."""
    ok = ok.astype(object).where(ok.notna())
    counted = ok.dropna().astype(bool)
    n, passed = int(len(counted)), int(counted.sum())
    seen = f"{passed}/{n}" + (f", {worst}" if worst else "")
    if skipped:
        seen += f"; {skipped}"
    if passed < n:  # one counter-example refutes "in every trial", however few were counted
        return Check(
            name, claim, measured, expected, seen, Status.FAIL,
            reason=f"{n - passed}/{n} trials miss the threshold", n=n, passed=passed, kind=kind,
        )  # fmt: skip
    if n < min_trials:
        reason = f"too few trials: {n} counted, need ≥ {min_trials}"
        if skipped:
            reason += f" ({skipped})"
        return inconclusive(
            name, claim=claim, measured=measured, expected=expected, seen=seen, reason=reason,
            n=n, passed=passed, kind=kind,
        )  # fmt: skip
    return Check(name, claim, measured, expected, seen, Status.PASS, n=n, passed=passed, kind=kind)


def minibatch(done: pd.DataFrame) -> pd.Series:
    """True where the trial trained by minibatch SGD (0 < batch_size < n)."""
    b, n = column(done, "train.batch_size"), column(done, "data.n")
    return ((b > 0) & (b < n)).fillna(False).astype(bool)


def records_check(done: pd.DataFrame) -> Check:
    """The logged gaps agree with the logged objectives and P* (each recomputed here)."""
    r = recomputed(done)
    pairs = [
        ("rel_gap", r["sgd_gap"]),
        ("polished_rel_gap", r["polished_gap"]),
        ("rel_certified_gap", r["cert_gap"]),
    ]
    bad = pd.Series(False, index=done.index)
    has = pd.Series(False, index=done.index)
    names: list[str] = []
    for name, mine in pairs:
        logged = metric(done, name)
        both = logged.notna() & mine.notna()
        off = both & ((logged - mine).abs() > LOG_TOL * np.maximum(1.0, mine.abs()))
        # a gap logged where its objective is missing (or the reverse) is inconsistent too
        off |= logged.notna() != mine.notna()
        has |= logged.notna() | mine.notna()
        if off.any():
            names.append(f"{name} in {int(off.sum())}")
        bad |= off
    return count_check(
        "record consistent",
        claim="The gaps a trial logged are those of its logged objectives and P* (so the "
        "checks, which recompute every gap, judge the numbers the trial measured).",
        measured="|logged gap − gap recomputed from sgd/polished objective, P*, certificate|",
        expected=f"≤ {LOG_TOL:g}·max(1, |gap|) in every trial",
        ok=(~bad).where(has),
        worst="mismatch: " + ", ".join(names) if names else "",
    )


def optimum_checks(done: pd.DataFrame, *, section: str, what: str = "P*") -> list[Check]:
    """(a) no network below P*; (b) the routes to P* agree (see the module docstring)."""
    r = recomputed(done)
    has = r["p_star"].notna()
    below = has & ((r["sgd_gap"] < -r["tol"]) | (r["polished_gap"] < -r["tol"]))
    worst = float(r.loc[has, ["sgd_gap", "polished_gap"]].min(axis=None)) if has.any() else 0.0
    a = count_check(
        "no network below P*",
        claim=f"P* = {what} is the minimum (THEORY {section}): no trained network — SGD or "
        "polished — has a lower objective.",
        measured="(objective − P*)/|P*|, recomputed from the logged objectives",
        expected=f"≥ −{BELOW_TOL:g} (or −P*'s own certified gap) in every trial with P*",
        ok=(~below).where(has),
        worst=f"lowest {fmt(worst, 2)}" if has.any() else "",
        skipped=f"{int((~has).sum())} without P*" if (~has).any() else "",
    )
    if below.any():
        a.reason = (
            f"{int(below.sum())} network(s) below P* beyond round-off: a counterexample to "
            f"{what} as the optimum"
        )
    scale = np.maximum(1.0, r["p_star"].abs())
    lower_above_p = has & ((r["lower"] - r["p_star"]) > r["tol"] * scale)
    bracket = ~has & r["lower"].notna() & r["best"].notna()
    lower_above_net = bracket & (
        (r["lower"] - r["best"]) > BELOW_TOL * np.maximum(1.0, r["best"].abs())
    )
    bad = lower_above_p | below | lower_above_net
    attained = has & (r[["sgd_gap", "polished_gap"]].abs().min(axis=1) <= AT_OPT)
    counted = has | bracket
    b = count_check(
        "routes to P* agree",
        claim=f"Every lower route (certificate, §7 dual bound, bracket) is ≤ P* ≤ every network "
        f"(THEORY {section}, §7); without P*, every lower bound ≤ every network.",
        measured="max(certificate, dual bound, lower bound) − P*; networks within "
        f"{AT_OPT:g} of P* (the primal route meets P*)",
        expected=f"lower ≤ P*(1 + {BELOW_TOL:g}) ≤ networks in every trial; ≥ 1 network at P*",
        ok=(~bad).where(counted),
        worst=f"P* attained (within {AT_OPT:g}) in {int(attained.sum())}/{int(has.sum())}"
        + (f"; {int(bracket.sum())} bracketed only" if bracket.any() else ""),
    )
    if b.status is Status.FAIL:
        parts = []
        if lower_above_p.any():
            parts.append(f"{int(lower_above_p.sum())} lower bound(s) above P*")
        if below.any():
            parts.append(f"{int(below.sum())} network(s) below P*")
        if lower_above_net.any():
            parts.append(f"{int(lower_above_net.sum())} lower bound(s) above a network")
        b.reason = "the routes disagree: " + ", ".join(parts)
    elif has.any() and not attained.any() and b.status is Status.PASS:
        b.status = Status.INCONCLUSIVE
        b.reason = (
            f"P* bounded but not attained: 0/{int(has.sum())} networks within {AT_OPT:g} of it "
            "(no polish, or the optimizer stopped short — see the optimizer line)"
        )
    return [a, b]


def theory_checks(done: pd.DataFrame, *, section: str, what: str = "P*") -> list[Check]:
    """The checks every experiment with a P* or a bracket runs: the record, (a) and (b)."""
    return [records_check(done), *optimum_checks(done, section=section, what=what)]


def structure_check(
    name: str,
    done: pd.DataFrame,
    values: pd.Series,
    *,
    claim: str,
    measured: str,
    target: float | pd.Series,
    tol: float = STRUCT_TOL,
    at_opt: pd.Series | None = None,
    target_text: str | None = None,
) -> Check:
    """``|value − target| ≤ tol`` in every trial whose final network is at the optimum
    (``target`` per trial, NaN = no prediction: not counted)."""
    at = at_optimum(done) if at_opt is None else at_opt.fillna(False).astype(bool)
    values = pd.Series(pd.to_numeric(values, errors="coerce").astype(float).values, done.index)
    if isinstance(target, pd.Series):
        target = pd.Series(pd.to_numeric(target, errors="coerce").astype(float).values, done.index)
        values = values.where(target.notna())
    dev = (values - target).abs()
    if target_text is None:
        target_text = fmt(target, 4) if not isinstance(target, pd.Series) else "the prediction"
    counted = at & values.notna()
    ok = (dev <= tol).where(counted)
    n_not = int((~at).sum())
    worst = f"worst |dev| {fmt(float(dev[counted].max()), 2)}" if counted.any() else ""
    skipped = f"{n_not}/{len(done)} not at the optimum" if n_not else ""
    check = count_check(
        name,
        claim=claim,
        measured=measured,
        expected=f"|value − {target_text}| ≤ {tol:g} on every network within {AT_OPT:g} of P*",
        ok=ok,
        worst=worst,
        skipped=skipped,
    )
    if check.status is Status.INCONCLUSIVE and n_not:
        check.reason = (
            f"no network at the optimum: {n_not}/{len(done)} final networks more than "
            f"{AT_OPT:g} above P* (nothing to say about the optimum's structure)"
        )
    return check


# ----------------------------------------------------------------------------- optimizer


def _path_branches(r: float, beta: float, depth: int) -> list[float]:
    """Values of THEORY §3's path ``min_s≥0 ½(s − r)² + (βL/2) s^{2/L}`` at its stationary
    points: s = 0 (½r²) and, for L ≥ 3, the largest root of ``s − r + β s^{2/L−1} = 0`` on
    (0, r] when there is one (a local minimum); for L = 2 the soft threshold ``h_β(r)``."""
    from scipy.optimize import brentq

    off = 0.5 * r * r
    if depth <= 2:
        return [off] if r <= beta else [off, beta * r - 0.5 * beta * beta]
    e = 2.0 / depth - 1.0  # < 0
    f = lambda s: s - r + beta * s**e  # noqa: E731
    s_c = (beta * -e) ** (1.0 / (1.0 - e))  # f'(s_c) = 0: f's minimum on (0, ∞)
    if not (0 < s_c < r) or f(s_c) >= 0:
        return [off]
    s = brentq(f, s_c, r, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return [off, 0.5 * (s - r) ** 2 + 0.5 * beta * depth * s ** (2.0 / depth)]


def stationary_values(done: pd.DataFrame) -> pd.Series:
    """Per trial (K = 1, whitened ReLU, ‖y₊‖ and ‖y₋‖ logged): the objective values of every
    stationary point of §3's reduced problem — each of the two paths on or off — as a tuple;
    NaN elsewhere (no prediction)."""
    rp, rm = metric(done, "y_plus_norm"), metric(done, "y_minus_norm")
    beta, depth = column(done, "train.beta"), column(done, "model.depth")
    ok = (
        whitened(done)
        & (column(done, "model.activation", "").fillna("") == "relu")
        & (column(done, "data.outputs") == 1)
        & rp.notna() & rm.notna() & beta.notna()
    )  # fmt: skip
    out = pd.Series([np.nan] * len(done), index=done.index, dtype=object)
    for i in done.index[ok]:
        a = _path_branches(float(rp[i]), float(beta[i]), int(depth[i]))
        b = _path_branches(float(rm[i]), float(beta[i]), int(depth[i]))
        out[i] = tuple(x + y for x in a for y in b)
    return out


MISS_KINDS = (
    "zero network",
    "not converged",
    "predicted stationary point",
    "step budget",
    "infimum not attained",
    "stuck",
    "unexplained",
)


def tol_text(t: float) -> str:
    """``1e-4`` for 1e-4 (Python's ``:g`` writes 0.0001)."""
    e = math.log10(t)
    return f"1e{int(round(e))}" if abs(e - round(e)) < 1e-9 else f"{t:g}"


def classify_misses(done: pd.DataFrame, curves: pd.DataFrame | None = None) -> pd.Series:
    """Why SGD ended more than ``REACH_TOLS[0]`` above P* (None where it did not miss):

    - ``zero network``: its objective is ½‖Y‖² (within ``ZERO_NET_RTOL``): all weights decayed;
    - ``not converged``: the polish from SGD's end point goes on to P* (within 1e-6) or cuts
      the gap ≥ 100×;
    - ``predicted stationary point``: within 1e-4 of the value of a stationary point of §3's
      reduced problem other than P* (a path on where the optimum has it off, or the reverse);
    - ``step budget``: no polish, and the logged objective still fell by more than 1e-6
      (relative) over the last tenth of the steps;
    - ``infimum not attained``: the solver says P* is an infimum (``not_covered`` / family);
    - ``stuck``: none of these, and the polish from SGD's end point cannot improve either;
    - ``unexplained``: none of these, and no polish or curve to tell.
    """
    r = recomputed(done)
    miss = r["sgd_gap"] > REACH_TOLS[0]
    out = pd.Series([None] * len(done), index=done.index, dtype=object)
    if not miss.any():
        return out
    sgd, null = metric(done, "sgd_objective"), metric(done, "null_objective")
    zero = (sgd - null).abs() <= ZERO_NET_RTOL * null.abs()
    pg = r["polished_gap"]
    slow = (pg <= REACH_TOLS[1]) | (pg <= POLISH_PROGRESS * r["sgd_gap"])
    stat = stationary_values(done)
    near = pd.Series(False, index=done.index)
    for i in done.index[miss]:
        vals = stat[i]
        if isinstance(vals, tuple):
            p = r.at[i, "p_star"]
            others = [v for v in vals if abs(v - p) > REACH_TOLS[0] * abs(p)]
            near[i] = any(abs(sgd[i] - v) <= REACH_TOLS[0] * abs(v) for v in others)
    falling = pd.Series(False, index=done.index)
    if curves is not None and len(curves):
        obj = curves[curves["curve"] == "objective"]
        for rid, g in obj[obj["run_id"].isin(set(done.loc[miss, "run_id"]))].groupby("run_id"):
            g = g.sort_values("step")
            steps, vals = g["step"].to_numpy(float), g["value"].to_numpy(float)
            if len(steps) < 2:
                continue
            tail = steps >= min(0.9 * steps[-1], steps[-2])  # the last tenth, ≥ 2 points
            if np.isfinite(vals[tail]).all():
                drop = (vals[tail][0] - vals[tail][-1]) / max(abs(vals[tail][-1]), 1e-300)
                falling[done.index[done["run_id"] == rid]] = drop > 1e-6
    text = column(done, "not_covered", "").fillna("").astype(str) + column(
        done, "family", ""
    ).fillna("").astype(str)
    infimum = text.str.contains("not attained|infimum", regex=True)
    order = [
        ("zero network", zero),
        ("not converged", slow.fillna(False)),
        ("predicted stationary point", near),
        ("step budget", falling & pg.isna()),
        ("infimum not attained", infimum),
    ]
    for i in done.index[miss]:
        out[i] = next(
            (k for k, m in order if bool(m[i])), "stuck" if pd.notna(pg[i]) else "unexplained"
        )
    return out


AXES = (
    ("depth", "model.depth"),
    ("width", "model.width"),
    ("width/m*", None),
    ("whitened", None),
    ("K", "data.outputs"),
    ("β", "train.beta"),
    ("lr", "train.lr"),
    ("batch", "train.batch_size"),
    ("data", "data.kind"),
    ("activation", "model.activation"),
)


@dataclass
class Reach:
    """An optimizer measurement: how close SGD alone got to P* (never a verdict on theory)."""

    n: int  # trials with P*
    within: dict[float, int]  # tolerance → trials with (SGD − P*)/|P*| ≤ it
    misses: dict[str, int]  # kind → trials more than REACH_TOLS[0] above P*
    worst: list[str]  # the worst trials, named
    by_axis: pd.DataFrame = field(default_factory=pd.DataFrame)
    without: int = 0  # trials without P* (bracket only)
    median_gap: float = math.nan

    def line(self) -> str:
        """``SGD reached P* within 1e-4 in 9/10 (1e-6: 4/10); misses: 1 predicted …``."""
        if self.n == 0:
            return "SGD vs P*: no trial with P*" + (
                f" ({self.without} bracketed only)" if self.without else ""
            )
        t0, t1 = REACH_TOLS
        s = (
            f"SGD reached P* within {tol_text(t0)} in {self.within[t0]}/{self.n} "
            f"({tol_text(t1)}: {self.within[t1]}/{self.n})"
        )
        if self.misses:
            s += "; misses: " + ", ".join(f"{v} {k}" for k, v in self.misses.items())
        if self.without:
            s += f"; {self.without} without P* (bracket)"
        return s

    def rate(self) -> float:
        return self.within[REACH_TOLS[0]] / self.n if self.n else math.nan

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "within": {tol_text(k): v for k, v in self.within.items()},
            "misses": self.misses,
            "worst": self.worst,
            "without_p_star": self.without,
            "median_gap": self.median_gap,
            "line": self.line(),
        }


def _label(done: pd.DataFrame, i) -> str:
    parts = []
    for short, name in (("L", "model.depth"), ("m", "model.width"), ("K", "data.outputs"),
                        ("β", "train.beta"), ("seed ", "seed")):  # fmt: skip
        v = column(done, name).get(i, np.nan)
        if pd.notna(v):
            parts.append(f"{short}={fmt(v)}" if short != "seed " else f"seed {fmt(v)}")
    if whitened(done).get(i, False):
        parts.append("whitened")
    name = column(done, "run_name", "").get(i, "")
    return (f"{name} " if isinstance(name, str) and name else "") + " ".join(parts)


def reach(done: pd.DataFrame, curves: pd.DataFrame | None = None, *, worst: int = 3) -> Reach:
    """The optimizer measurement of ``done`` (SGD alone; gaps recomputed)."""
    r = recomputed(done)
    has = r["p_star"].notna() & r["sgd_gap"].notna()
    gap = r["sgd_gap"][has]
    within = {t: int((gap <= t).sum()) for t in REACH_TOLS}
    kinds = classify_misses(done, curves)
    misses = {k: int((kinds == k).sum()) for k in MISS_KINDS if (kinds == k).any()}
    top = gap.sort_values(ascending=False).head(worst)
    named = [
        f"{_label(done, i)}: {fmt(float(g), 2)} above"
        + (f" ({kinds[i]})" if kinds[i] is not None else "")
        for i, g in top.items()
        if g > REACH_TOLS[1]
    ]
    rows = []
    mstar = metric(done, "m_star")
    for axis, name in AXES:
        if axis == "width/m*":
            vals = (column(done, "model.width") >= mstar).map({True: "≥ m*", False: "< m*"})
            vals = vals.where(mstar.notna())
        elif axis == "whitened":
            vals = whitened(done)
        else:
            vals = column(done, name)
        vals = vals[has]
        if vals.dropna().nunique() < 2:
            continue
        for v, g in gap.groupby(vals.astype(str)):
            rows.append({
                "axis": axis, "value": v, "trials": len(g),
                f"within {tol_text(REACH_TOLS[0])}": int((g <= REACH_TOLS[0]).sum()),
                f"within {tol_text(REACH_TOLS[1])}": int((g <= REACH_TOLS[1]).sum()),
                "median_gap": float(g.median()), "worst_gap": float(g.max()),
            })  # fmt: skip
    return Reach(
        n=int(has.sum()),
        within=within,
        misses=misses,
        worst=named,
        by_axis=pd.DataFrame(rows),
        without=int((~has).sum()),
        median_gap=float(gap.median()) if len(gap) else math.nan,
    )


def expectation_check(measured: Reach, expect: float) -> Check:
    """The user's gate on the optimizer: SGD within ``REACH_TOLS[0]`` of P* in at least the
    fraction ``expect`` of the trials with P*. Its FAIL says **optimizer**, not theory."""
    t = REACH_TOLS[0]
    rate = measured.rate()
    seen = f"{measured.within[t]}/{measured.n} within {t:g}" if measured.n else "no trial with P*"
    if not measured.n:
        status, reason = Status.INCONCLUSIVE, "no trial with P* to measure"
    elif rate >= expect:
        status, reason = Status.PASS, ""
    else:
        status = Status.FAIL
        reason = (
            f"optimizer: SGD reached P* in {fmt(100 * rate, 3)}% of the trials, below the "
            f"expected {fmt(100 * expect, 3)}% (not a statement about the theorem)"
        )
    return Check(
        "optimizer expectation",
        claim=f"(set by the user) SGD alone ends within {t:g} of P* in ≥ {fmt(100 * expect, 3)}% "
        "of the trials.",
        measured="(SGD − P*)/|P*| per trial, recomputed",
        expected=f"rate ≥ {fmt(expect, 3)}",
        seen=seen,
        status=status,
        reason=reason,
        n=measured.n,
        passed=measured.within.get(t, 0),
        kind=OPTIMIZER,
    )


def finite_max(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else float("nan")
