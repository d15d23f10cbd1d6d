"""One module per experiment of docs/theory.md §Experiments (E1–E10, R1), each with its verdict.

Every module registers one function with :func:`experiment`; this package imports every
module in it, so **adding an experiment is one new file** here (plus its grid block)::

    # analysis/experiments/e11_two_layer.py
    from analysis.experiments import helpers as h
    from analysis.experiments.base import Inputs, Result, experiment
    from analysis.experiments.verdicts import reach, structure_check, theory_checks

    @experiment("E11", "E11 — two-layer ReLU, general data (THEORY §10)", section="§10",
                match=lambda f: h.is_(f, "model.activation", "relu") & h.is_(f, "model.depth", 2))
    def two_layer(done: pd.DataFrame, inputs: Inputs) -> Result:
        data = pd.DataFrame({"run_id": done["run_id"].values, **h.gaps(done)})
        checks = theory_checks(done, section="§10")  # records, no network below P*, routes
        return Result(data, table=data, checks=checks, figure=None, summary="",
                      reach=reach(done))  # the optimizer measurement, never a verdict

The contract:

- ``fn(done, inputs) -> Result``: ``done`` are the experiment's *finished* trials (rows of
  :func:`analysis.load`: params typed, metrics float); the registry has already picked them
  (``experiment`` param == id, else ``match`` for stores without ids, or ``rows=`` to pick
  them yourself), counted the diverged / failed ones, and left out the trials whose optimum
  is the zero network (``zero_optimum="keep"`` to keep them). ``inputs`` carries the whole
  frame plus curves / ``trial.json`` results when declared with ``needs=("curves",)`` /
  ``needs=("results",)`` (the report loads them for the experiment's rows only).
- :class:`Result`: ``data`` (tidy, per trial), ``table`` (summary), ``checks`` (a list of
  :class:`Check`: claim, measured quantity, threshold, seen, PASS / FAIL / INCONCLUSIVE),
  ``figure`` (a matplotlib ``Figure`` or None), ``summary`` (one line of numbers).
- Two kinds of statement, never mixed (see :mod:`.verdicts`): **theory checks** (thresholds
  from THEORY, never from today's data: ``BELOW_TOL``, ``AT_OPT``, ``STRUCT_TOL``, ``LOG_TOL``)
  built by :func:`theory_checks` (the record, no network below P*, the routes to P* agree),
  :func:`structure_check` (a quantity exact at the optimum, counted on networks AT the
  optimum) and :func:`count_check` (any per-trial yes/no); and the **optimizer measurement**
  ``Result.reach`` = :func:`reach` (SGD alone within 1e-4 / 1e-6 of P*, by grid axis, misses
  classified), which is never a verdict unless the user sets ``--expect-reach``.
- :func:`run` (one experiment) / :func:`run_all` (all, in order) return :class:`Outcome`
  (``status``, a one-line ``verdict``, ``to_dict()`` for ``verdicts.json``) and write
  ``<id>.png``, ``<id>.csv``, ``<id>.md``, ``<id>_trials.csv`` when given ``out_dir``.

Relative gaps are ``(SGD − P*)/|P*|`` (``rel_gap``; SGD alone), ``polished_rel_gap`` after the
L-BFGS polish, and ``(SGD − certificate)/SGD`` (``rel_certified_gap``).
"""

from __future__ import annotations

import importlib
import pkgutil

from analysis.experiments.base import (
    EXPERIMENTS,
    Experiment,
    Inputs,
    Outcome,
    Result,
    experiment,
    run,
    run_all,
    screen_line,
)
from analysis.experiments.verdicts import Check, Reach, Status, combine

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in ("base", "helpers", "verdicts"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = [
    "EXPERIMENTS",
    "Check",
    "Experiment",
    "Inputs",
    "Outcome",
    "Reach",
    "Result",
    "Status",
    "combine",
    "experiment",
    "run",
    "run_all",
    "screen_line",
]
