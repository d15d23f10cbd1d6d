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

__all__ = ["huber", "path_minimiser", "path_solution", "path_value", "scaled_dual_value"]


def huber(r: float | np.ndarray, gamma: float | np.ndarray) -> float | np.ndarray:
    """``h_γ(r)`` for ``r ≥ 0``, ``γ ≥ 0`` (elementwise, broadcasting ``r`` against ``γ``)."""
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)
    out = np.where(r <= g, 0.5 * r * r, g * r - 0.5 * g * g)
    return float(out) if out.ndim == 0 else out


def scaled_dual_value(
    a: float | np.ndarray, b: float | np.ndarray, alpha_max: float | np.ndarray
) -> float | np.ndarray:
    """THEORY §7: ``max_{0 ≤ α ≤ α_max} α a − ½ α² b`` for a direction Λ with ``a = ⟨Λ, Y⟩``,
    ``b = ‖Λ‖²`` (elementwise; ``α = clip(a/b, 0, α_max)``, 0 when ``b = 0``)."""
    a, b, alpha_max = np.broadcast_arrays(
        np.asarray(a, float), np.asarray(b, float), np.asarray(alpha_max, float)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(b > 0, np.clip(a / np.where(b > 0, b, 1.0), 0.0, alpha_max), 0.0)
    out = alpha * a - 0.5 * alpha * alpha * b
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


def path_solution(r: np.ndarray, beta: float, L: int) -> tuple[np.ndarray, np.ndarray]:
    """``(g_L(r), s*(r))`` elementwise over a 1-D ``r`` in one root solve per entry."""
    pairs = [_path_single(v, beta, L) for v in np.asarray(r, dtype=np.float64).ravel()]
    return np.array([v for v, _ in pairs]), np.array([s for _, s in pairs])


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
