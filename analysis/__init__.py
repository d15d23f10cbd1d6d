"""Read sweeps back from MLflow into pandas; one function per experiment; a report.

``load`` gives one typed row per trial, ``load_curves`` the training curves in long form,
``load_results`` the full ``trial.json`` of chosen runs; :mod:`analysis.experiments` has one
pure function per experiment of THEORY.md §Experiments; ``report`` writes them all
(``python -m analysis --experiment paper --out report/``).
"""

from analysis.experiments import (
    EXPERIMENTS,
    Outcome,
    batchnorm_collapse,
    certificates,
    deep_linear,
    deep_relu,
    digits,
    norm_ratio_curves,
    rank_one,
    rank_vs_beta,
    relu_alignment,
    rescaled_duality,
    spline,
)
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
    "Outcome",
    "batchnorm_collapse",
    "certificates",
    "curves_from_results",
    "deep_linear",
    "deep_relu",
    "default_tracking_uri",
    "digits",
    "frame_from_results",
    "load",
    "load_curves",
    "load_parents",
    "load_results",
    "load_tracebacks",
    "norm_ratio_curves",
    "rank_one",
    "rank_vs_beta",
    "relu_alignment",
    "report",
    "rescaled_duality",
    "run_experiments",
    "spline",
    "write_report",
]
