"""The option names the batched trainer (:mod:`solvers.sgd`) and the §9 rescaled problems
(:mod:`solvers.rescaled`) accept, importable without torch or scipy.

``sweep.config`` validates grid files against these tuples, so the names live here only.
"""

from __future__ import annotations

__all__ = ["BALLS", "DTYPES", "INITS"]

INITS = ("he", "gaussian")  # "he": W_l ~ N(0, 2/fan_in); "gaussian": N(0, 1/fan_in) (solvers.sgd)
DTYPES = (
    "float64",
    "float32",
)  # SGD arithmetic; the polish and every reported objective are float64
BALLS = ("operator", "frobenius")  # §9 norm balls of solvers.rescaled
