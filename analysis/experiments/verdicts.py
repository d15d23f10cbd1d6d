"""Verdicts: a claim, its threshold, what was seen, and PASS / FAIL / INCONCLUSIVE.

A :class:`Check` is one claim of THEORY.md tested on a set of trials. Its threshold comes from
the claim, never from the data at hand:

- **"the closed form is the optimum"** — no trained objective may lie below ``P*`` by more than
  ``BELOW_TOL`` (relative): a network beating ``P*`` refutes the closed form.
- **"(S)GD reaches P*"** — uses the SGD objective *alone* (``sgd_objective``; the L-BFGS polish,
  ``polished_objective``, is shown beside it, never counted as SGD's): full-batch GD within
  ``GD_TOL`` (THEORY §8: GD reached the closed form to 1e-10 by 5,000 steps), minibatch SGD
  within ``SGD_TOL`` (THEORY §8: the noise floor of minibatch SGD is 1e-4 – 1e-3). The polish
  only tells *why* SGD missed: when the polish from SGD's end point goes on to P* (or cuts the
  gap ≥ 100×), SGD had not converged — INCONCLUSIVE; when it cannot, SGD stopped short — FAIL.
- **structure at the optimum** (ranks, ‖W‖₂/‖W‖_F = 1, cosines = 1, neural collapse) — tested
  only on trials whose final network (polished where ``train.polish > 0``) is within
  ``AT_OPT = 1e-6`` of ``P*``: weights within relative objective gap δ of a (locally strongly
  convex) optimum are O(√δ) away from it, so a structure quantity that is exact at the optimum
  is within ``STRUCT_TOL = √AT_OPT = 1e-3`` there. A trial not at the optimum says nothing
  about the optimum's structure: it is not counted (the reason says how many).
- one counted trial that misses a threshold → FAIL (a counter-example refutes "in every
  trial"); otherwise fewer than ``MIN_TRIALS`` trials to count → INCONCLUSIVE ("too few
  trials"); trials whose optimum is the zero network are left out by the registry (see
  :mod:`.base`), which makes the experiment INCONCLUSIVE.

An experiment's verdict is FAIL if any of its checks fails, else INCONCLUSIVE if any is
inconclusive, else PASS (:func:`combine`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np
import pandas as pd

from analysis.tables import column, fmt

__all__ = [
    "AT_OPT",
    "BELOW_TOL",
    "GD_TOL",
    "MIN_TRIALS",
    "POLISH_PROGRESS",
    "SGD_TOL",
    "STRUCT_TOL",
    "Check",
    "Status",
    "at_optimum",
    "combine",
    "count_check",
    "final_rel_gap",
    "inconclusive",
    "minibatch",
    "reaches_optimum",
    "structure_check",
    "zero_optimum",
]

BELOW_TOL = 1e-9  # an objective below P*(1 − BELOW_TOL) refutes the closed form
GD_TOL = 1e-6  # full-batch GD "reaches P*": (SGD − P*)/P* ≤ GD_TOL
SGD_TOL = 1e-3  # minibatch SGD reaches P* up to its noise floor (THEORY §8)
AT_OPT = 1e-6  # a final network this close to P* (relative) is "at the optimum"
STRUCT_TOL = math.sqrt(AT_OPT)  # structure exact at the optimum is within this there
MIN_TRIALS = 3  # fewer trials than this cannot support "in every trial"
POLISH_PROGRESS = 1e-2  # a polish that cuts SGD's gap 100× shows SGD had not converged
ZERO_RTOL = 1e-12  # P* ≥ ½‖Y‖²(1 − ZERO_RTOL) means the zero network is optimal


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass
class Check:
    """One claim tested on trials.

    ``claim``: one sentence with its THEORY section; ``measured``: the quantity; ``expected``:
    the threshold; ``seen``: what the trials gave; ``reason``: why FAIL / INCONCLUSIVE; ``n``:
    trials counted, ``passed``: how many met the threshold."""

    name: str
    claim: str
    measured: str
    expected: str
    seen: str
    status: Status
    reason: str = ""
    n: int = 0
    passed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def combine(checks: list[Check]) -> Status:
    """FAIL if any check failed, else INCONCLUSIVE if any is (or there are none), else PASS."""
    states = {c.status for c in checks}
    if Status.FAIL in states:
        return Status.FAIL
    if Status.INCONCLUSIVE in states or not checks:
        return Status.INCONCLUSIVE
    return Status.PASS


def inconclusive(name: str, **kw) -> Check:
    return Check(name=name, status=Status.INCONCLUSIVE, **kw)


def _num(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(column(frame, name), errors="coerce").astype(float)


def zero_optimum(done: pd.DataFrame) -> pd.Series:
    """True where the exact optimum is the zero network: ``P* = ½‖Y‖²`` (the logged
    ``null_objective``), or — for stores without it — the closed-form W₁ has rank 0."""
    exact, null = _num(done, "exact_objective"), _num(done, "null_objective")
    by_value = (exact >= null * (1.0 - ZERO_RTOL)) & exact.notna() & null.notna()
    rank0 = (_num(done, "predicted_rank") == 0) & null.isna()
    return (by_value | rank0).fillna(False).astype(bool)


def final_rel_gap(done: pd.DataFrame) -> pd.Series:
    """(final − P*)/|P*| of the network the structure is measured on: the polished one where
    ``polished_rel_gap`` was logged, else the SGD one."""
    sgd, pol = _num(done, "rel_gap"), _num(done, "polished_rel_gap")
    return pol.where(pol.notna(), sgd)


def at_optimum(done: pd.DataFrame, tol: float = AT_OPT) -> pd.Series:
    """True where the final network is within ``tol`` (relative) of ``P*``; NaN without P*."""
    gap = final_rel_gap(done)
    return (gap.abs() <= tol).where(gap.notna())


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
            reason=f"{n - passed}/{n} trials miss the threshold", n=n, passed=passed,
        )  # fmt: skip
    if n < min_trials:
        reason = f"too few trials: {n} counted, need ≥ {min_trials}"
        if skipped:
            reason += f" ({skipped})"
        return inconclusive(
            name, claim=claim, measured=measured, expected=expected, seen=seen, reason=reason,
            n=n, passed=passed,
        )  # fmt: skip
    return Check(name, claim, measured, expected, seen, Status.PASS, n=n, passed=passed)


def minibatch(done: pd.DataFrame) -> pd.Series:
    """True where the trial trained by minibatch SGD (0 < batch_size < n)."""
    b, n = _num(done, "train.batch_size"), _num(done, "data.n")
    return ((b > 0) & (b < n)).fillna(False).astype(bool)


def reaches_optimum(
    done: pd.DataFrame, *, section: str, what: str = "P*", name: str = "reaches P*"
) -> Check:
    """ "(S)GD reaches P*", judged on the SGD objective alone, trial by trial:

    - within its tolerance of P* (``GD_TOL`` full batch, ``SGD_TOL`` minibatch): reached;
    - below P* by more than ``BELOW_TOL`` (SGD or polished): the closed form is refuted — FAIL;
    - above, but the L-BFGS polish *from SGD's end point* reaches P* within the same
      tolerance, or at least cuts the gap by ``1/POLISH_PROGRESS`` (100×; at a stationary point
      it could not): SGD was on its way and ran out of steps — "SGD did not converge", not
      counted against the claim (INCONCLUSIVE when there is any such trial);
    - above, and the polish does not reach P* either (or there is no polish): SGD stopped
      short — FAIL.
    """
    sgd = _num(done, "rel_gap")
    pol = _num(done, "polished_rel_gap")
    mb = minibatch(done)
    tol = pd.Series(np.where(mb, SGD_TOL, GD_TOL), index=done.index)
    below = (sgd < -BELOW_TOL) | (pol < -BELOW_TOL)
    reached = (sgd <= tol) & ~below
    slow = ~reached & ~below & ((pol <= tol) | (pol <= POLISH_PROGRESS * sgd))
    ok = reached.where(sgd.notna() & ~slow)
    n_slow = int((slow & sgd.notna()).sum())
    worst = f"worst {fmt(float(sgd.abs().max()), 2)}" if sgd.notna().any() else "no P* logged"
    if pol.notna().any():
        worst += (
            f"; polished: {int((pol.abs() <= tol).sum())}/{int(pol.notna().sum())} within, "
            f"worst {fmt(float(pol.abs().max()), 2)}"
        )
    skipped = []
    if n_slow:
        skipped.append(f"{n_slow} not converged (the polish from SGD's end goes on to P*)")
    if sgd.isna().any():
        skipped.append(f"{int(sgd.isna().sum())} without P*")
    if mb.all():
        who, limit = "minibatch SGD", f"{SGD_TOL:g} (SGD noise floor, THEORY §8)"
    elif not mb.any():
        who, limit = "full-batch GD", f"{GD_TOL:g}"
    else:
        who, limit = "GD / minibatch SGD", f"{GD_TOL:g} (GD) / {SGD_TOL:g} (minibatch SGD)"
    check = count_check(
        name,
        claim=f"{who} reaches the closed-form optimum {what} (THEORY {section}; §8).",
        measured="(SGD − P*)/|P*| of the SGD objective alone (before any polish)",
        expected=f"within [−{BELOW_TOL:g}, {limit}] in every trial",
        ok=ok,
        worst=worst,
        skipped="; ".join(skipped),
    )
    if below.any():
        check.status = Status.FAIL
        check.reason = (
            f"{int(below.sum())} trial(s) below P* by more than {BELOW_TOL:g}: the closed form "
            "is not the optimum"
        )
    elif check.status is Status.FAIL:
        check.reason = (
            f"{check.n - check.passed}/{check.n} trials stopped above P* (the polish, where "
            "there is one, does not reach it either): miss the threshold"
        )
    elif n_slow:
        check.status = Status.INCONCLUSIVE
        check.reason = (
            f"SGD did not converge in {n_slow}/{len(done)} trials: the polish from its end "
            "point goes on towards P* (≥ 100× closer), so SGD needs more steps to decide"
        )
    return check


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
    at = at_optimum(done) if at_opt is None else at_opt
    values = pd.Series(pd.to_numeric(values, errors="coerce").astype(float).values, done.index)
    if isinstance(target, pd.Series):
        target = pd.Series(pd.to_numeric(target, errors="coerce").astype(float).values, done.index)
        values = values.where(target.notna())
    dev = (values - target).abs()
    if target_text is None:
        target_text = fmt(target, 4) if not isinstance(target, pd.Series) else "the prediction"
    counted = at.fillna(False).astype(bool) & values.notna()
    ok = (dev <= tol).where(counted)
    n_not = int((~at.fillna(False).astype(bool)).sum())
    worst = f"worst |dev| {fmt(float(dev[counted].max()), 2)}" if counted.any() else ""
    skipped = f"{n_not} not at the optimum (final gap > {AT_OPT:g})" if n_not else ""
    check = count_check(
        name,
        claim=claim,
        measured=measured,
        expected=f"|value − {target_text}| ≤ {tol:g} where the final net is within {AT_OPT:g} of P*",
        ok=ok,
        worst=worst,
        skipped=skipped,
    )
    if check.status is Status.INCONCLUSIVE and n_not:
        check.reason = (
            f"SGD did not converge: {n_not}/{len(done)} final networks not at the optimum"
        )
    return check


def finite_max(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else float("nan")
