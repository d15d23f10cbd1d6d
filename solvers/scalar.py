"""Scalar helpers of THEORY §0: the Huber function and the depth-L path value.

    h_γ(r) = ½ r²            if r ≤ γ
             γ r − ½ γ²      otherwise        (= min_s ½(s − r)² + γ|s|, minimiser (r − γ)_+)

    g_L(r) = min_{s ≥ 0} ½(s − r)² + (βL/2) s^{2/L}

``g_2 = h_β``. For L ≥ 3 the stationarity condition ``φ(s) = s − r + β s^{2/L−1} = 0`` has
``φ`` convex on ``(0, ∞)`` with ``φ(0+) = +∞``: at most two roots, the larger one a local
minimiser. We bracket it between the minimiser of ``φ`` and ``r`` (never Newton from ``r``,
which can land on the wrong root) and compare with ``s = 0``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = ["huber", "path_minimiser", "path_value"]


def huber(r: float | np.ndarray, gamma: float) -> float | np.ndarray:
    """``h_γ(r)`` for ``r ≥ 0`` (elementwise)."""
    r = np.asarray(r, dtype=np.float64)
    out = np.where(r <= gamma, 0.5 * r * r, gamma * r - 0.5 * gamma * gamma)
    return float(out) if out.ndim == 0 else out


def _path_single(r: float, beta: float, L: int) -> tuple[float, float]:
    r = float(r)
    if r < 0:
        raise ValueError(f"r must be >= 0, got {r}")
    if L == 2:
        s = max(r - beta, 0.0)
        return float(huber(r, beta)), s
    zero_value = 0.5 * r * r
    if r == 0.0:
        return 0.0, 0.0
    p = 2.0 / L

    def phi(s: float) -> float:
        return s - r + beta * s ** (p - 1.0)

    s_min = (beta * (1.0 - p)) ** (1.0 / (2.0 - p))  # φ'(s_min) = 0
    if s_min >= r or phi(s_min) >= 0.0:
        return zero_value, 0.0
    s = brentq(phi, s_min, r, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    value = 0.5 * (s - r) ** 2 + 0.5 * beta * L * s**p
    if value < zero_value:
        return float(value), float(s)
    return zero_value, 0.0


def path_value(r: float | np.ndarray, beta: float, L: int) -> float | np.ndarray:
    """``g_L(r)`` of THEORY §0 (elementwise over ``r``)."""
    r_arr = np.asarray(r, dtype=np.float64)
    out = np.array([_path_single(v, beta, L)[0] for v in r_arr.ravel()]).reshape(r_arr.shape)
    return float(out) if out.ndim == 0 else out


def path_minimiser(r: float | np.ndarray, beta: float, L: int) -> float | np.ndarray:
    """The minimising ``s*`` in ``g_L(r)`` (0 below the threshold)."""
    r_arr = np.asarray(r, dtype=np.float64)
    out = np.array([_path_single(v, beta, L)[1] for v in r_arr.ravel()]).reshape(r_arr.shape)
    return float(out) if out.ndim == 0 else out
