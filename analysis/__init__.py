"""Read sweeps back from MLflow into pandas; one function per experiment; a report.

``load`` gives one typed row per trial, ``load_curves`` the training curves in long form,
``load_results`` the full ``trial.json`` of chosen runs; :mod:`analysis.experiments` has one
module per experiment of docs/theory.md §Experiments, each with a verdict that can fail; ``report`` writes them all
(``python -m analysis --experiment paper --out report/``).
"""

from analysis.experiments import EXPERIMENTS, Check, Outcome, Status, run, run_all
from analysis.load import (
    curves_from_results,
    default_tracking_uri,
    frame_from_results,
    load,
    load_curves,
    load_parents,
    load_results,
    load_tracebacks,
)
from analysis.report import report, run_experiments, write_report

__all__ = [
    "EXPERIMENTS",
    "Check",
    "Outcome",
    "Status",
    "curves_from_results",
    "default_tracking_uri",
    "frame_from_results",
    "load",
    "load_curves",
    "load_parents",
    "load_results",
    "load_tracebacks",
    "report",
    "run",
    "run_all",
    "run_experiments",
    "write_report",
]
