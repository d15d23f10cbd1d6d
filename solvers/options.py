"""The options the batched trainer (:mod:`solvers.sgd`) and the §9 rescaled problems
(:mod:`solvers.rescaled`) accept, importable without torch, scipy or numpy.

``sweep.config`` validates grid files against these tuples, and ``sweep.schema.TrainSpec``
takes its trainer defaults from :class:`TrainConfig`, so the names and defaults live here only.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = ["BALLS", "DTYPES", "INITS", "TrainConfig"]

INITS = ("he", "gaussian")  # "he": W_l ~ N(0, 2/fan_in); "gaussian": N(0, 1/fan_in) (solvers.sgd)
DTYPES = (
    "float64",
    "float32",
)  # SGD arithmetic; the polish and every reported objective are float64
BALLS = ("operator", "frobenius")  # §9 norm balls of solvers.rescaled


@dataclass(frozen=True)
class TrainConfig:
    """Options of :func:`solvers.sgd.train` shared by every network of a batch.

    Their defaults are the sweep's too: ``sweep.schema.TrainSpec`` takes each trainer
    option's default from here (written once).

    steps: SGD steps; lr: step size η; momentum: heavy-ball μ; batch_size: b (0 or n = full batch,
    no sampling);
    lr_decay, lr_decay_every: η ← η·lr_decay every lr_decay_every steps (0 = never);
    init: "he" | "gaussian"; init_scale: multiplies the init standard deviation;
    polish: L-BFGS iterations after SGD (run in float64); dtype: "float32" | "float64" for SGD;
    log_every: steps between curve points; track_layers: record ‖W_l‖₂/‖W_l‖_F on the curve.
    """

    steps: int
    lr: float = 1e-2
    momentum: float = 0.9
    batch_size: int = 0
    lr_decay: float = 1.0
    lr_decay_every: int = 0
    init: str = "he"
    init_scale: float = 1.0
    polish: int = 0
    dtype: str = "float64"
    log_every: int = 100
    track_layers: bool = True

    def __post_init__(self) -> None:
        def is_int(v: object) -> bool:  # numpy integers are numbers.Integral too
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if not is_int(self.steps) or self.steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}")
        for name in ("lr", "momentum", "lr_decay", "init_scale"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr_decay <= 0:
            raise ValueError(f"lr_decay must be > 0, got {self.lr_decay!r}")
        for name in ("batch_size", "lr_decay_every", "polish"):
            v = getattr(self, name)
            if not is_int(v) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not is_int(self.log_every) or self.log_every < 1:
            raise ValueError(f"log_every must be an integer >= 1, got {self.log_every!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
