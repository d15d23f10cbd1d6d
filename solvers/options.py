"""The option names the batched trainer (:mod:`solvers.sgd`) accepts, importable without torch.

``sweep.config`` validates grid files against these tuples, so the names live here only.
"""

from __future__ import annotations

__all__ = ["DTYPES", "INITS"]

INITS = ("he", "gaussian")  # "he": W_l ~ N(0, 2/fan_in); "gaussian": N(0, 1/fan_in) (solvers.sgd)
DTYPES = (
    "float64",
    "float32",
)  # SGD arithmetic; the polish and every reported objective are float64
