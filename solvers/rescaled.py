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
  partial isometry: strong duality, ``P_R(t) = D(t)`` (THEORY §9's claim). Because that is the
  claim under test, :func:`rescaled_primal` does NOT use it: the operator value is measured
  by minimising the constrained network directly (:func:`rescaled_network`: float64 L-BFGS
  from several random starts, each constrained layer ``t × Q(V)`` with ``Q(V)`` the
  orthonormal factor of a free matrix V — the extreme points of the operator ball, where
  THEORY's optimum lies — the last two layers free), and its value is the objective of the
  explicit feasible network it returns. So ``P_R(t) ≥ D(t)`` holds by weak duality whatever
  the optimiser does, and a zero gap is a measurement, not an identity.
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
  first-layer directions) ATTAINS ``h_μ(‖y_+‖) + h_μ(‖y_−‖) = D(t)`` in the operator ball, and,
  with both paths sharing the Frobenius budget, gives the Frobenius value of a linear net with
  ``σ = (‖y_+‖, ‖y_−‖)`` (an upper bound on ``P_R^F``; the tests compare it with multistart
  L-BFGS of the constrained ReLU network). **Measured, against THEORY §9:** for operator balls
  D(t) is not a lower bound on the ReLU problem — the relaxation needs Frobenius-bounded layers
  (:mod:`solvers.dual`: ``‖relu(A)‖₂`` can exceed ``‖A‖₂``) — and :func:`rescaled_network` finds
  feasible networks 5–32% BELOW D(t) (whitened n = 6, d = 8, K = 1, width 4–8). So the ReLU
  operator "gap" is negative: :func:`strong_duality` reports False there, as it should.

:func:`rescaled_both` measures both balls for one problem (the quantities of THEORY §9/E8:
``op_primal``, ``op_dual``, ``op_gap``, ``fro_primal``, ``fro_dual``, ``fro_gap``, each at the
radius that minimises its own objective). :func:`strong_duality` is the gap check
(``OPERATOR_GAP_TOL``: the network optimiser's stated accuracy).

The Frobenius value needs the singular-value reduction (partial-isometry X, or whitened X for
ReLU): anything else raises :class:`NotCovered` for that ball.
"""

from __future__ import annotations

import contextlib

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from solvers.detect import facts
from solvers.dual import two_layer_dual
from solvers.options import BALLS
from solvers.problem import NotCovered, Problem
from solvers.scalar import huber, path_minimiser

__all__ = [
    "BALLS",
    "OPERATOR_GAP_TOL",
    "constrained_value",
    "rescaled_both",
    "rescaled_dual",
    "rescaled_gap",
    "rescaled_network",
    "rescaled_primal",
    "strong_duality",
]

OPERATOR_GAP_TOL = 1e-6  # relative accuracy of rescaled_network (float64 L-BFGS, several starts)


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
    return two_layer_dual(p, p.beta / t ** (p.L - 2))


def _spectrum(p: Problem) -> tuple[np.ndarray, float]:
    """``σ`` and the constant term of the singular-value reduction (THEORY §1, §3)."""
    if not facts(p).partial_isometry:
        raise NotCovered(
            "the closed-form rescaled value needs X to be a partial isometry (e.g. whitened)"
        )
    if p.activation == "linear":
        XtY = p.X.T @ p.Y
        sig = np.linalg.svd(XtY, compute_uv=False)
        return sig, 0.5 * float(np.sum(p.Y**2) - np.sum(XtY**2))
    if p.K != 1 or not facts(p).whitened:
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
        return float(np.sum(huber(sig, mu)))

    def psi(Pi: np.ndarray) -> np.ndarray:  # rows of Pi on the simplex
        g = np.minimum(mu / np.maximum(Pi, 1e-300) ** (q / 2), 1e150)
        return np.sum(huber(sig, g), axis=-1)

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
        val = float(np.sum(huber(sig, g)))
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


def constrained_value(p: Problem, t: float, weights: list[np.ndarray], *, ball: str) -> float:
    """The rescaled objective of explicit layers, ``½‖f(X) − Y‖² + (β/2)(‖W_{L−1}‖² + ‖W_L‖²)``
    (f by :func:`solvers.problem.forward`), after checking ``‖W_l‖ ≤ t`` for ``l ≤ L − 2``
    (relative slack 1e-12; ``ValueError`` naming the layer otherwise)."""
    from solvers.problem import forward

    t = _check(p, t, ball)
    Ws = [np.asarray(W, dtype=np.float64) for W in weights]
    for i, W in enumerate(Ws[: p.L - 2]):
        norm = np.linalg.norm(W, 2) if ball == "operator" else np.linalg.norm(W)
        if norm > t * (1 + 1e-12):
            raise ValueError(f"weights[{i}] has {ball} norm {norm:.6g} > t = {t:.6g}")
    R = forward(p, Ws) - p.Y
    return 0.5 * float(np.sum(R * R)) + 0.5 * p.beta * float(
        np.sum(Ws[-2] ** 2) + np.sum(Ws[-1] ** 2)
    )


def rescaled_network(
    p: Problem,
    t: float,
    *,
    ball: str,
    width: int | None = None,
    starts: int = 4,
    seed: int = 0,
    maxiter: int = 4000,
) -> tuple[float, list[np.ndarray]]:
    """Minimise the constrained network directly: ``(value, layers)`` of the best start.

    Float64 L-BFGS (scipy, torch gradients through :func:`solvers.sgd.forward_torch`) over
    free matrices ``V_l`` for the constrained layers — ``W_l = t·Q(V_l)`` with ``Q`` the
    orthonormal QR factor (operator ball; all singular values t) or ``W_l = t·V_l/‖V_l‖_F``
    (Frobenius) — and the last two layers as they are. ``width``: hidden width (default
    ``K + 1``: THEORY's optimum needs rank ≤ K, one spare neuron eases the search). The value is :func:`constrained_value` of the returned layers
    (an explicit feasible network: an upper bound on ``P_R(t)``).
    """
    import torch
    from scipy.optimize import minimize as scipy_minimize

    from solvers.sgd import forward_torch

    t = _check(p, t, ball)
    if p.L < 3:
        raise ValueError(f"the rescaled problem needs depth >= 3, got {p.L}")
    m = int(width or p.K + 1)
    dims = [p.d] + [m] * (p.L - 1) + [p.K]
    shapes = [(dims[i], dims[i + 1]) for i in range(p.L)]
    sizes = [a * b for a, b in shapes]
    q = p.L - 2
    Y = torch.tensor(np.array(p.Y))
    beta = p.beta

    def orthonormal(V: torch.Tensor) -> torch.Tensor:
        tall = V.shape[0] >= V.shape[1]
        Q, R = torch.linalg.qr(V if tall else V.T)
        Q = Q * torch.where(torch.diagonal(R) < 0, -1.0, 1.0)
        return Q if tall else Q.T

    def layers(theta: torch.Tensor) -> list[torch.Tensor]:
        Ws, i = [], 0
        for k, (shape, size) in enumerate(zip(shapes, sizes, strict=True)):
            V = theta[i : i + size].reshape(shape)
            i += size
            if k < q:
                V = t * (orthonormal(V) if ball == "operator" else V / torch.linalg.norm(V))
            Ws.append(V)
        return Ws

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        th = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        Ws = layers(th)
        R = forward_torch(p, Ws) - Y
        v = 0.5 * (R * R).sum() + 0.5 * beta * ((Ws[-2] ** 2).sum() + (Ws[-1] ** 2).sum())
        (g,) = torch.autograd.grad(v, th)
        return float(v.detach()), g.numpy().copy()

    rng = np.random.default_rng(seed)
    best: tuple[float, list[np.ndarray]] = (np.inf, [])
    threads = torch.get_num_threads()
    try:  # tiny matrices: threads only add overhead (10-50× on a loaded machine)
        torch.set_num_threads(1)
        with _one_blas_thread():
            for _ in range(starts):
                theta0 = np.concatenate(
                    [rng.standard_normal(a * b) / np.sqrt(a) for a, b in shapes]
                )
                res = scipy_minimize(
                    fg,
                    theta0,
                    jac=True,
                    method="L-BFGS-B",
                    options={
                        "maxiter": maxiter,
                        "maxfun": 2 * maxiter,
                        "gtol": 1e-12,
                        "ftol": 1e-15,
                    },
                )
                with torch.no_grad():
                    th = torch.tensor(res.x, dtype=torch.float64)
                    Ws = [W.numpy().copy() for W in layers(th)]
                value = constrained_value(p, t, Ws, ball=ball)
                if value < best[0]:
                    best = (value, Ws)
    finally:
        torch.set_num_threads(threads)
    return best


def _one_blas_thread() -> contextlib.AbstractContextManager:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1)


def rescaled_primal(p: Problem, t: float, *, ball: str) -> float:
    """``P_R(t)`` for the given hidden-layer ``ball`` (``"operator"`` or ``"frobenius"``).

    Operator: measured by :func:`rescaled_network` (independent of ``D(t)``; an upper bound
    within ``OPERATOR_GAP_TOL`` of the minimum). Frobenius: the singular-value reduction of the
    module docstring (``NotCovered`` where it does not apply).
    """
    t = _check(p, t, ball)
    if ball == "operator":
        return rescaled_network(p, t, ball="operator")[0]
    q = p.L - 2
    mu = p.beta / t**q
    sig, const = _spectrum(p)
    return const + _frobenius_split(sig, mu, q)


def strong_duality(primal: float, dual: float, *, tol: float = OPERATOR_GAP_TOL) -> bool:
    """THEORY §9's claim for one radius: ``D ≤ P_R`` (weak duality, to ``tol``) and
    ``(P_R − D)/|P_R| ≤ tol``. False for a primal below the dual (it cannot be a primal value)
    or a gap above ``tol``."""
    scale = max(abs(primal), np.finfo(float).tiny)
    return bool(dual <= primal + tol * scale and (primal - dual) / scale <= tol)


def rescaled_gap(p: Problem, *, ball: str, ts: np.ndarray | None = None) -> dict:
    """P_R, D and their relative gap at the ``t`` minimising ``P_R(t) + (β/2)(L−2)t²``
    (operator ball: minimising ``D(t) + (β/2)(L−2)t²``, whose P_R is then measured there).

    ``ts``: the grid searched (default: 31 log-spaced radii, the three lowest local minima refined
    by bounded scalar searches, plus — Frobenius — the balanced layer norm of THEORY §1/§3's
    optimum, and the limit t → 0 where P_R = D = ½‖Y‖²). Returns ``t``, ``primal`` (P_R(t)), ``dual`` (D(t)),
    ``relative_gap`` ((P_R − D)/P_R), ``objective`` (P_R(t) + (β/2)(L−2)t² at that t: P* for
    Frobenius balls), ``dual_objective`` (D(t) + (β/2)(L−2)t² at that t) and ``ball``.
    """
    if ball not in BALLS:
        raise ValueError(f"ball must be one of {BALLS}, got {ball!r}")
    if p.L < 3:
        raise ValueError(
            f"the rescaled problem needs depth >= 3 (hidden layers to constrain), got {p.L}"
        )
    with _one_blas_thread():  # many tiny solves: BLAS threads only add overhead
        return _rescaled_gap(p, ball, ts)


def _rescaled_gap(p: Problem, ball: str, ts: np.ndarray | None) -> dict:
    c = 0.5 * p.beta * (p.L - 2)

    def total(
        t: float,
    ) -> float:  # operator: the radius comes from D (cheap), P_R is measured there
        value = rescaled_dual(p, t) if ball == "operator" else rescaled_primal(p, t, ball=ball)
        return value + c * t * t

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
        "objective": primal + c * t_best * t_best,
        "dual_objective": dual + c * t_best * t_best,
    }


def rescaled_both(p: Problem) -> dict[str, float]:
    """Both balls of THEORY §9 for one problem (one trial logs E8's whole comparison).

    Returns ``op_primal``, ``op_dual``, ``op_gap``, ``op_t`` (operator ball, primal measured by
    :func:`rescaled_network`) and ``fro_primal``, ``fro_dual``, ``fro_gap``, ``fro_t``
    (Frobenius ball) — each from :func:`rescaled_gap` at its own optimal radius; the ``fro_*``
    entries are absent where the Frobenius value is not covered (``NotCovered``).
    """
    out: dict[str, float] = {}
    for ball, tag in (("operator", "op"), ("frobenius", "fro")):
        try:
            g = rescaled_gap(p, ball=ball)
        except NotCovered:
            if ball == "operator":
                raise
            continue
        out |= {
            f"{tag}_primal": float(g["primal"]),
            f"{tag}_dual": float(g["dual"]),
            f"{tag}_gap": float(g["relative_gap"]),
            f"{tag}_t": float(g["t"]),
        }
    return out
