"""The paper's rescaled problem (THEORY §9): which hidden-layer ball makes duality exact.

The first ``q = L − 2`` layers are constrained to a ball of radius ``t`` and only the last two
carry weight decay::

    P_R(t) = min  ½‖f(X) − Y‖²  +  (β/2)(‖W_{L−1}‖_F² + ‖W_L‖_F²)
             s.t. ‖W_l‖ ≤ t  (l ≤ L − 2),   ‖·‖ = operator norm ("operator") or Frobenius ("frobenius").

Its dual (THEORY §7) is ``D(t)``, the two-layer dual with ``μ = β/t^{L−2}``:
``D(t) = min_W ½‖XW − Y‖² + μ‖W‖_*`` for linear nets (any K, any X) and the ReLU relaxation of
:mod:`solvers.dual` (``h_γ(‖y_+‖) + h_γ(‖y_−‖)``, ``γ = μ/‖X‖₂`` for K = 1).

Values (linear nets; ``σ_k`` = singular values of ``XᵀY`` for a partial isometry X, plus the
constant ``½‖Y‖² − ½‖XᵀY‖²``):

- operator balls: the product ``M = W_1⋯W_{L−2}`` ranges over ``‖M‖₂ ≤ t^{L−2}`` and
  ``β‖N‖_* ≥ β‖MN‖_*/‖M‖₂`` for ``N = W_{L−1}W_L``, with equality for ``M = t^{L−2}`` × a
  partial isometry: strong duality, ``P_R(t) = D(t) = Σ_k h_μ(σ_k)`` (any X: D(t) itself).
- Frobenius balls: a product of ``q`` Frobenius-bounded factors has singular values
  ``m_k = t^q ω_k`` with ``Σ_k ω_k^{2/q} ≤ 1`` (Schatten–Hölder, attained by balanced aligned
  factors), and the cheapest ``N`` costs ``μ Σ_k z_k/ω_k`` for end-to-end singular values
  ``z_k`` aligned with ``σ_k`` (von Neumann). Minimising over ``z`` first (separable Huber)::

      P_R^F(t) = const + min_{π ∈ simplex}  Σ_k h_{μ / π_k^{q/2}}(σ_k)        (π_k = ω_k^{2/q})

  (equivalently ``min_z ½‖z − σ‖² + μ (Σ_k z_k^{2/L})^{L/2}``, a Schatten-2/L problem). For
  K = 1 it equals the operator value; for K > 1 the budget must be split across directions and
  ``P_R^F(t) > D(t)``: the duality gap of THEORY §9. We minimise over the simplex by multistart
  L-BFGS in softmax coordinates (the objective is C¹) plus the vertices; for K = 2 a dense 1-D
  grid refined by a bounded scalar search. ``min_t [P_R^F(t) + (β/2)(L−2)t²] = P*`` (THEORY §1),
  which the tests use as an independent check.
- ReLU, whitened X, K = 1: the two-path construction of THEORY §3 (paths ``y_±``, orthogonal
  first-layer directions) gives the operator value ``h_μ(‖y_+‖) + h_μ(‖y_−‖) = D(t)`` and, with
  both paths sharing the Frobenius budget, the Frobenius value of a linear net with
  ``σ = (‖y_+‖, ‖y_−‖)`` (an upper bound on ``P_R^F``; the tests compare it with multistart
  L-BFGS of the constrained ReLU network).

Anything else raises :class:`NotCovered` (the Frobenius value needs the singular-value reduction).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from solvers.dual import _huber, _linear_dual_of_mu, _relu_dual_of_mu
from solvers.problem import NotCovered, Problem
from solvers.scalar import path_minimiser

__all__ = ["BALLS", "rescaled_dual", "rescaled_gap", "rescaled_primal"]

BALLS = ("operator", "frobenius")
_ISO_TOL = 1e-10  # non-zero singular values of X within this of 1: partial isometry


def _check(p: Problem, t: float, ball: str | None) -> float:
    if ball is not None and ball not in BALLS:
        raise ValueError(f"ball must be one of {BALLS}, got {ball!r}")
    t = float(t)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"t must be a finite number > 0, got {t!r}")
    if p.batchnorm or p.bias:
        raise NotCovered("the rescaled problem of THEORY §9 has no biases and no batch norm")
    return t


def rescaled_dual(p: Problem, t: float) -> float:
    """``D(t)``: a certified lower bound on the rescaled problem (exact up to solver tolerance)."""
    t = _check(p, t, None)
    mu = p.beta / t ** (p.L - 2)
    if p.activation == "linear":
        lin, _, _ = _linear_dual_of_mu(p, path=False)
        lin.solve(mu, max_iter=20000, rtol=1e-13)
        return float(np.max(lin.values(np.array([mu]))))
    D_of_mu, _, _ = _relu_dual_of_mu(p)
    return float(np.max(D_of_mu(np.array([mu]))))


def _spectrum(p: Problem) -> tuple[np.ndarray, float]:
    """``σ`` and the constant term of the singular-value reduction (THEORY §1, §3)."""
    s = np.linalg.svd(p.X, compute_uv=False)
    nz = s[s > 1e-8]
    if nz.size == 0 or np.max(np.abs(nz - 1.0)) > _ISO_TOL:
        raise NotCovered(
            "the closed-form rescaled value needs X to be a partial isometry (e.g. whitened)"
        )
    if p.activation == "linear":
        XtY = p.X.T @ p.Y
        sig = np.linalg.svd(XtY, compute_uv=False)
        return sig, 0.5 * float(np.sum(p.Y**2) - np.sum(XtY**2))
    if p.K != 1 or np.linalg.norm(p.X @ p.X.T - np.eye(p.n)) > _ISO_TOL:
        raise NotCovered("ReLU rescaled values are covered for whitened X and K = 1 only")
    y = p.Y[:, 0]
    return np.array([np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.maximum(-y, 0))]), 0.0


def _frobenius_split(
    sig: np.ndarray, mu: float, q: int, *, samples: int = 2000, seed: int = 0
) -> float:
    """``min_{π ∈ simplex} Σ_k h_{μ/π_k^{q/2}}(σ_k)`` (see the module docstring).

    K = 2: a 2001-point grid on the segment refined by a bounded scalar search. K ≥ 3: the best
    of ``samples`` Dirichlet points, the vertices and ``π ∝ σ²`` seed L-BFGS in softmax
    coordinates (three starts).
    """
    sig = sig[sig > 0]
    if sig.size == 0:
        return 0.0
    if sig.size == 1 or q == 0:
        return float(np.sum(_huber(sig, mu)))

    def psi(Pi: np.ndarray) -> np.ndarray:  # rows of Pi on the simplex
        g = np.minimum(mu / np.maximum(Pi, 1e-300) ** (q / 2), 1e150)
        return np.sum(_huber(sig, g), axis=-1)

    K = sig.size
    if K == 2:
        grid = np.linspace(0.0, 1.0, 2001)
        vals = psi(np.stack([grid, 1 - grid], axis=1))
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        res = minimize_scalar(
            lambda s: float(psi(np.array([s, 1 - s]))),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-14},
        )
        return float(min(vals[i], res.fun))

    def f_and_g(theta: np.ndarray) -> tuple[float, np.ndarray]:
        e = np.exp(theta - theta.max())
        pi = e / e.sum()
        g = np.minimum(mu / np.maximum(pi, 1e-300) ** (q / 2), 1e150)
        val = float(np.sum(_huber(sig, g)))
        active = sig > g  # elsewhere h is flat in π (and g may be huge)
        with np.errstate(over="ignore", invalid="ignore"):
            dval_dpi = np.where(active, (sig - g) * (-(q / 2) * g / np.maximum(pi, 1e-300)), 0.0)
        grad = pi * (dval_dpi - np.dot(pi, dval_dpi))  # softmax Jacobianᵀ
        return val, grad

    rng = np.random.default_rng(seed)
    sig = np.sort(sig)[::-1]
    starts = []  # π ∝ σ^e on each leading support (flat regions stall local search: start inside)
    for j in range(1, K + 1):
        for e in (0.0, 1.0, 2.0, 4.0):
            w = np.zeros(K)
            w[:j] = sig[:j] ** e
            starts.append(w / w.sum())
    cands = np.concatenate([np.array(starts), rng.dirichlet(np.full(K, 0.7), samples)])
    vals = psi(cands)
    best = float(np.min(vals))
    order = sorted(
        set(np.argsort(vals)[:4].tolist()) | {4 * K - 2}
    )  # 4 best + π ∝ σ² (full support)
    for k in order:
        th0 = np.log(np.maximum(cands[k], 1e-12))
        res = minimize(
            f_and_g,
            th0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 300, "gtol": 1e-13, "ftol": 1e-15},
        )
        best = min(best, float(res.fun))
    return best


def rescaled_primal(p: Problem, t: float, *, ball: str) -> float:
    """``P_R(t)`` for the given hidden-layer ``ball`` (``"operator"`` or ``"frobenius"``)."""
    t = _check(p, t, ball)
    q = p.L - 2
    mu = p.beta / t**q
    if ball == "operator" and p.activation == "linear":
        return rescaled_dual(p, t)  # strong duality (module docstring)
    sig, const = _spectrum(p)
    if ball == "operator":
        return const + float(np.sum(_huber(sig, mu)))
    return const + _frobenius_split(sig, mu, q)


def rescaled_gap(p: Problem, *, ball: str, ts: np.ndarray | None = None) -> dict:
    """P_R, D and their relative gap at the ``t`` minimising ``P_R(t) + (β/2)(L−2)t²``.

    ``ts``: the grid searched (default: 31 log-spaced radii, the three lowest local minima refined
    by bounded scalar searches, plus — Frobenius — the balanced layer norm of THEORY §1/§3's
    optimum, and the limit t → 0 where P_R = D = ½‖Y‖²). Returns ``t``, ``primal`` (P_R(t)), ``dual`` (D(t)),
    ``relative_gap`` ((P_R − D)/P_R), ``objective`` (min_t P_R + (β/2)(L−2)t², which is P* for
    Frobenius balls), ``dual_objective`` (D(t) + (β/2)(L−2)t² at that t) and ``ball``.
    """
    if ball not in BALLS:
        raise ValueError(f"ball must be one of {BALLS}, got {ball!r}")
    if p.L < 3:
        raise ValueError(
            f"the rescaled problem needs depth >= 3 (hidden layers to constrain), got {p.L}"
        )
    c = 0.5 * p.beta * (p.L - 2)

    def total(t: float) -> float:
        return rescaled_primal(p, t, ball=ball) + c * t * t

    refine = ts is None
    if ts is None:
        scale = (float(np.linalg.norm(p.Y)) ** 2 / max(c, 1e-300)) ** 0.5
        ts = np.geomspace(scale * 1e-3, scale * 2.0, 31)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or np.any(ts <= 0):
        raise ValueError("ts must be a non-empty 1-D array of radii > 0")
    vals = np.array([total(float(t)) for t in ts])
    i = int(np.argmin(vals))
    t_best, v_best = float(ts[i]), float(vals[i])
    if refine:  # refine the three lowest interior local minima of the grid
        local = [
            k for k in range(1, ts.size - 1) if vals[k] <= vals[k - 1] and vals[k] <= vals[k + 1]
        ]
        for k in sorted(local, key=lambda k: vals[k])[:3]:
            res = minimize_scalar(
                lambda lt: total(float(np.exp(lt))),
                bounds=(np.log(ts[k - 1]), np.log(ts[k + 1])),
                method="bounded",
                options={"xatol": 1e-10},
            )
            if res.fun < v_best:
                t_best, v_best = float(np.exp(res.x)), float(res.fun)
        if ball == "frobenius":  # the balanced layer norm of THEORY §1/§3's optimum is a candidate
            sig, _ = _spectrum(p)
            z = np.asarray(path_minimiser(sig, p.beta, p.L))
            if np.any(z > 0):
                t_c = float(np.sum(z ** (2.0 / p.L))) ** 0.5
                v_c = total(t_c)
                if v_c < v_best:
                    t_best, v_best = t_c, v_c
    half = 0.5 * float(np.sum(p.Y**2))  # t → 0: every network is 0, P_R = D = ½‖Y‖²
    if half <= v_best:
        return {
            "ball": ball,
            "t": 0.0,
            "primal": half,
            "dual": half,
            "relative_gap": 0.0,
            "objective": half,
            "dual_objective": half,
        }
    primal = rescaled_primal(p, t_best, ball=ball)
    dual = rescaled_dual(p, t_best)
    return {
        "ball": ball,
        "t": t_best,
        "primal": primal,
        "dual": dual,
        "relative_gap": (primal - dual) / primal if primal > 0 else 0.0,
        "objective": v_best,
        "dual_objective": dual + c * t_best * t_best,
    }
