"""The registry: an experiment is one decorated function ``fn(done, inputs) -> Result``.

:func:`experiment` registers a function under an id (``"E1"`` …) with its title, the THEORY
section it tests and how its trials are picked; :func:`run` does everything around it that is
the same for every experiment — pick the rows, split finished / diverged / failed, leave out
trials whose optimum is the zero network (THEORY §0: then ``P* = ½‖Y‖²`` and nothing is
tested), call the function on the finished rows that remain, combine its checks into one
verdict, and write its figure and tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.experiments.verdicts import (
    Check,
    Reach,
    Status,
    combine,
    combine_optimizer,
    expectation_check,
    inconclusive,
    zero_optimum,
)
from analysis.tables import select, split_status, write_table

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "Inputs",
    "Outcome",
    "Result",
    "experiment",
    "run",
    "run_all",
    "screen_line",
]


@dataclass(frozen=True)
class Inputs:
    """What an experiment may read: the trial frame of :func:`analysis.load` (every trial of the
    store, one row each), the long-form training curves of :func:`analysis.load_curves`
    (``run_id, curve, step, value``; loaded only for experiments that declare ``needs=("curves",)``)
    and the ``trial.json`` results by run id (``needs=("results",)``)."""

    trials: pd.DataFrame
    curves: pd.DataFrame | None = None
    results: Mapping[str, object] | None = None


@dataclass
class Result:
    """What an experiment function returns.

    - ``data``: tidy per-trial (or per trial × layer) DataFrame (written as ``<id>_trials.csv``);
    - ``table``: the summary shown in the report (``<id>.csv`` / ``<id>.md``);
    - ``checks``: the claims tested, each with its threshold and PASS / FAIL / INCONCLUSIVE;
    - ``figure``: a matplotlib Figure (``<id>.png``) or None;
    - ``summary``: one line of measured numbers beyond the checks (may be empty);
    - ``reach``: the optimizer measurement (:func:`~analysis.experiments.verdicts.reach`: SGD
      alone vs P*), or None where the experiment has no P* to reach.
    """

    data: pd.DataFrame
    table: pd.DataFrame
    checks: list[Check]
    figure: Figure | None = None
    summary: str = ""
    reach: Reach | None = None


@dataclass
class Outcome:
    """An experiment's result as the report and ``--check`` use it."""

    id: str
    title: str
    section: str
    data: pd.DataFrame
    table: pd.DataFrame
    checks: list[Check]
    summary: str = ""
    figure: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    n_trials: int = 0
    diverged: int = 0
    failed: int = 0
    running: int = 0  # claimed by a sweep still running (or killed before it recorded them)
    reach: Reach | None = None

    @property
    def status(self) -> Status:
        """The theory verdict: FAIL if any theory check failed, else INCONCLUSIVE if any is,
        else PASS (optimizer expectations are apart: :attr:`optimizer_status`)."""
        return combine(self.checks)

    @property
    def optimizer_status(self) -> Status | None:
        """PASS / FAIL of the optimizer expectations the user set; None when none was set."""
        return combine_optimizer(self.checks)

    def screen_line(self) -> str:
        """``theory PASS (3 checks: …); SGD reached P* within 1e-4 in 9/10 (1e-6: 4/10)``."""
        return screen_line(self.to_dict())

    @property
    def verdict(self) -> str:
        """One line: every check's name, what was seen and its status, then the counts."""
        parts = [f"{c.name}: {c.seen} ({c.status.value})" for c in self.checks]
        if self.reach is not None:
            parts.append(self.reach.line())
        tail = []
        if self.diverged:
            tail.append(f"{self.diverged} diverged")
        if self.failed:
            tail.append(f"{self.failed} failed")
        if self.running:
            tail.append(f"{self.running} not recorded yet (running)")
        line = f"{self.status.value} — " + "; ".join(parts)
        return line + (f" ({', '.join(tail)})" if tail else "")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "section": self.section,
            "status": self.status.value,
            "optimizer_status": None
            if self.optimizer_status is None
            else self.optimizer_status.value,
            "trials": self.n_trials,
            "diverged": self.diverged,
            "failed": self.failed,
            "running": self.running,
            "summary": self.summary,
            "checks": [c.to_dict() for c in self.checks],
            "reach": None if self.reach is None else self.reach.to_dict(),
        }


def screen_line(e: Mapping) -> str:
    """The first-screen line of one experiment of ``verdicts.json``: the theory verdict with
    its checks' counts, then the optimizer measurement (and expectation, where set)."""
    if not e.get("trials"):
        return "no trials in this store"
    theory = [c for c in e["checks"] if c.get("kind", "theory") == "theory"]
    parts = [f"{c['name']} {c['passed']}/{c['n']}" + ("" if c["status"] == "PASS" else
             f" {c['status']}") for c in theory]  # fmt: skip
    line = f"theory {e['status']} ({'; '.join(parts)})"
    if e.get("reach"):
        line += "; " + e["reach"]["line"]
    if e.get("optimizer_status"):
        line += f"; optimizer expectation {e['optimizer_status']}"
    tail = [f"{e[k]} {k}" for k in ("diverged", "failed", "running") if e.get(k)]
    return line + (f" ({', '.join(tail)})" if tail else "")


@dataclass(frozen=True)
class Experiment:
    """A registered experiment (see :func:`experiment`)."""

    id: str
    title: str
    section: str
    fn: Callable[[pd.DataFrame, Inputs], Result]
    match: Callable[[pd.DataFrame], pd.Series] | None
    rows_fn: Callable[[pd.DataFrame], pd.DataFrame] | None
    needs: frozenset[str]
    zero_optimum: str
    order: float

    def rows(self, trials: pd.DataFrame) -> pd.DataFrame:
        """This experiment's trials: the rows whose ``experiment`` param is its id (a store
        without ids is matched structurally by ``match``; ``rows_fn`` overrides both)."""
        if self.rows_fn is not None:
            return self.rows_fn(trials)
        if self.match is None:
            ids = trials["experiment"] if "experiment" in trials else pd.Series("", trials.index)
            return trials[ids.fillna("").astype(str) == self.id]
        return select(trials, self.id, self.match)


EXPERIMENTS: dict[str, Experiment] = {}


def _default_order(eid: str) -> float:
    m = re.search(r"\d+", eid)
    return float(m.group()) if m else 1e6


def experiment(
    id: str,  # noqa: A002 - the experiment id is what the paper tables call it
    title: str,
    *,
    section: str,
    match: Callable[[pd.DataFrame], pd.Series] | None = None,
    rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    needs: Sequence[str] = (),
    zero_optimum: str = "exclude",
    order: float | None = None,
) -> Callable:
    """Register ``fn(done: DataFrame, inputs: Inputs) -> Result`` as experiment ``id``.

    Args:
        id: the experiment id, also the ``experiment`` param of its trials (``E1`` …).
        title: the report heading.
        section: the THEORY section(s) it tests (``"§1"``).
        match: a structural mask for stores without experiment ids (``+grid=smoke``).
        rows: picks the rows itself instead (E9 takes every trial, R1 every rank-one trial).
        needs: ``"curves"`` and/or ``"results"``: what the report loads for its rows.
        zero_optimum: ``"exclude"`` (default) leaves out trials whose optimum is the zero
            network (``P* = ½‖Y‖²``) and makes the verdict INCONCLUSIVE when there were any;
            ``"keep"`` passes them on (E1's rank 0 above σ₁, E9's certificates).
        order: position in the report (default: the number in the id; R1 sits after E5).
    """
    if zero_optimum not in ("exclude", "keep"):
        raise ValueError(f"zero_optimum must be 'exclude' or 'keep', got {zero_optimum!r}")
    unknown = set(needs) - {"curves", "results"}
    if unknown:
        raise ValueError(f"needs: unknown inputs {sorted(unknown)} (curves, results)")

    def register(fn: Callable[[pd.DataFrame, Inputs], Result]) -> Callable:
        if id in EXPERIMENTS:
            raise ValueError(f"experiment {id!r} is registered twice")
        EXPERIMENTS[id] = Experiment(
            id=id,
            title=title,
            section=section,
            fn=fn,
            match=match,
            rows_fn=rows,
            needs=frozenset(needs),
            zero_optimum=zero_optimum,
            order=_default_order(id) if order is None else float(order),
        )
        ordered = sorted(EXPERIMENTS.values(), key=lambda e: (e.order, e.id))
        EXPERIMENTS.clear()
        EXPERIMENTS.update({e.id: e for e in ordered})
        return fn

    return register


def run(
    exp: Experiment | str,
    trials: pd.DataFrame | Inputs,
    *,
    out_dir: str | Path | None = None,
    expect_reach: float | None = None,
) -> Outcome:
    """Apply one experiment to a store's trials; write its files under ``out_dir`` if given.
    ``expect_reach``: the user's optimizer expectation (a fraction of trials whose SGD ends
    within 1e-4 of P*), added as an optimizer check where the experiment measures reach."""
    exp = EXPERIMENTS[exp] if isinstance(exp, str) else exp
    inputs = trials if isinstance(trials, Inputs) else Inputs(trials)
    rows = exp.rows(inputs.trials) if len(inputs.trials) else inputs.trials
    done, diverged, failed = split_status(rows)
    status = rows["status"].fillna("").astype(str) if "status" in rows else pd.Series(dtype=str)
    running = int((status == "running").sum())
    failed -= running
    outcome = Outcome(
        exp.id,
        exp.title,
        exp.section,
        pd.DataFrame(),
        pd.DataFrame(),
        [],
        n_trials=len(rows),
        diverged=diverged,
        failed=failed,
        running=running,
    )
    guard = None
    if exp.zero_optimum == "exclude" and len(done):
        zero = zero_optimum(done)
        if zero.any():
            guard = inconclusive(
                "non-zero optimum",
                claim="The grid tests a non-trivial optimum: P* < ½‖Y‖², so the zero network "
                "is not optimal (THEORY §0).",
                measured="trials whose exact P* equals ½‖Y‖² (or whose optimal W₁ has rank 0)",
                expected="none",
                seen=f"{int(zero.sum())}/{len(done)} trials have P* = ½‖Y‖²",
                reason="optimum is zero (P* = ½‖Y‖²): those trials test nothing and are left out",
                n=len(done),
                passed=int((~zero).sum()),
            )
            done = done[~zero]
    if done.empty:
        why = "no trials" if len(rows) == 0 else "no finished trials"
        if guard is not None:
            why = "no trial with a non-zero optimum"
        outcome.checks = [
            inconclusive(
                "trials",
                claim=f"{exp.id} needs finished trials to test its claim.",
                measured="finished trials of this experiment",
                expected="at least one",
                seen=why,
                reason=why,
                n=len(rows),
                passed=0,
            )
        ]
        if guard is not None:
            outcome.checks.insert(0, guard)
        return outcome
    result = exp.fn(done, inputs)
    outcome.data, outcome.table, outcome.summary = result.data, result.table, result.summary
    outcome.checks = ([guard] if guard is not None else []) + list(result.checks)
    outcome.reach = result.reach
    if expect_reach is not None and result.reach is not None and result.reach.n:
        outcome.checks.append(expectation_check(result.reach, expect_reach))
    if out_dir is not None:
        _write(outcome, result.figure, Path(out_dir))
        if result.reach is not None and not result.reach.by_axis.empty:
            outcome.files.update(
                {f"reach_{k}": v for k, v in
                 write_table(result.reach.by_axis, Path(out_dir), f"{outcome.id}_reach").items()}
            )  # fmt: skip
    return outcome


def _write(outcome: Outcome, fig: Figure | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if fig is not None:
        path = out / f"{outcome.id}.png"
        fig.savefig(path, dpi=110)
        outcome.figure = path
    if not outcome.table.empty:
        outcome.files.update(write_table(outcome.table, out, outcome.id))
    if not outcome.data.empty:
        outcome.files["trials_csv"] = out / f"{outcome.id}_trials.csv"
        outcome.data.to_csv(outcome.files["trials_csv"], index=False)


def run_all(
    trials: pd.DataFrame,
    *,
    curves: pd.DataFrame | None = None,
    results: Mapping[str, object] | None = None,
    out_dir: str | Path | None = None,
    expect_reach: float | None = None,
) -> list[Outcome]:
    """Every registered experiment, in report order."""
    inputs = Inputs(trials, curves, results)
    return [
        run(e, inputs, out_dir=out_dir, expect_reach=expect_reach) for e in EXPERIMENTS.values()
    ]
