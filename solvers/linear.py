"""Deep linear networks: the exact optima of docs/theory.md §1 and §2.

Problem (THEORY §0, linear activation, no biases, no batch norm)::

    P* = min_{W_1..W_L}  ½‖X W_1⋯W_L − Y‖_F²  +  (β/2) Σ_l ‖W_l‖_F²

The cheapest layers realising an end-to-end map ``W`` with singular values ``s_k`` cost
``(βL/2) Σ_k s_k^{2/L}`` (balanced, aligned layers), so ``P*`` is a problem in ``W`` alone.

**§1 — partial-isometry data** (every non-zero singular value of X equals 1 within
``WHITENED_TOL``, detected once per problem by :mod:`solvers.detect`; ``XXᵀ = I`` is the special
case): with ``Xᵀ Y = U diag(σ) Vᵀ``::

    P* = ½‖Y − X XᵀY‖² + Σ_k g_L(σ_k)        (= ½‖Y‖² − ½‖XᵀY‖² + Σ_k g_L(σ_k))

``s*_k`` = the minimiser in ``g_L(σ_k)``; layers ``W_1 = U S^{1/L} Q_1ᵀ``,
``W_l = Q_{l−1} S^{1/L} Q_lᵀ``, ``W_L = Q_{L−1} S^{1/L} Vᵀ`` with ``S = diag(s*_k > 0)`` and
``Q_l`` the first coordinate vectors of ``R^m``. Any L ≥ 2, any K. For L = 2 the optimal dual
is the residual ``Λ = Y − X W*``. Cost: one product ``XᵀY``, one thin SVD of it, one product
``X(XᵀY)`` and K scalar root solves — the objective is the formula (the tests check that
``objective(p, weights)`` agrees to 1e-12).

**§2, L = 2, general X** — the convex problem ``min_W ½‖XW − Y‖² + β‖W‖_*`` with dual
``max_Λ ⟨Λ, Y⟩ − ½‖Λ‖²  s.t.  ‖XᵀΛ‖₂ ≤ β``, solved by :class:`solvers.nuclear.NuclearNorm`
(closed form for K = 1, FISTA otherwise) to a certified relative duality gap ``gap_tol``
(default 1e-10): the Optimum is ``CERTIFIED`` with ``lower_bound`` the dual value of the
returned ``dual``. **If the iteration cap is reached first we do not raise**: the Optimum is a
``BRACKET`` ``[lower_bound, objective]``, so a sweep records an honest bracket instead of
losing the trial (and never logs it as P*). Layers ``W_1 = U S^{1/2}``, ``W_2 = S^{1/2} Vᵀ``
for ``W = U S Vᵀ``.

**§2, L ≥ 3, K = 1, general X** — ``P* = min_w ½‖Xw − y‖² + (βL/2)‖w‖^{2/L}``, computed as
THEORY's rescaled form ``min( ½‖y‖², min_{t>0} [ GL(β/t^{L−2}) + (β/2)(L−2) t² ] )`` with
the group lasso ``GL(γ) = min_w ½‖Xw − y‖² + γ‖w‖`` solved exactly (:func:`group_lasso`):
``w = 0`` if ``‖Xᵀy‖ ≤ γ``, else ``w(μ) = (XᵀX + μI)^{-1}Xᵀy`` with the unique root of
``μ‖w(μ)‖ = γ`` (monotone in μ; O(r) per μ via the SVD of X). The outer minimum runs over a
log grid of ``t ∈ [(β/‖Xᵀy‖)^{1/(L−2)}, ‖y‖/√(βL)]`` (outside it the optimum is 0) and is
refined by bounded Brent; finally the end-to-end vector is polished on the ridge path by
solving the stationarity condition ``μ ‖w(μ)‖^{2−2/L} = β`` near the refined point. Layers:
balanced rank-one chain ``W_1 = ρ ŵ e_1ᵀ``, ``W_l = ρ e_1e_1ᵀ``, ``W_L = ρ e_1`` with
``ρ = ‖w*‖^{1/L}``, ``ŵ = w*/‖w*‖``.

**L ≥ 3, K > 1, general X** — a Schatten-2/L quasi-norm problem: :class:`NotCovered`.

Width: the smallest that realises the optimum (the rank, at least 1) unless ``p.width`` is
set, in which case the layers are padded with zeros; a width below the rank raises
:class:`NotCovered`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from solvers.detect import RANK_TOL, WHITENED_TOL, facts
from solvers.nuclear import NuclearNorm, group_lasso_root
from solvers.problem import (
    NotCovered,
    Optimum,
    Problem,
    Status,
    objective,
    optimal_width,
    require_problem,
)
from solvers.scalar import path_solution

__all__ = [
    "group_lasso",
    "solve_linear_deep_k1",
    "solve_linear_l2_general",
    "solve_linear_whitened",
]


# ----------------------------------------------------------------------------------------------
# helpers


def _check_linear(p: Problem) -> None:
    require_problem(p)
    if p.activation != "linear":
        raise NotCovered(f"activation is {p.activation!r}, not linear (THEORY §1–§2)")
    if p.bias:
        raise NotCovered("bias=True: no closed form for deep linear nets with biases")
    if p.batchnorm:
        raise NotCovered("batchnorm=True: see THEORY §6 (solvers.batchnorm)")


def _layers(U: np.ndarray, s: np.ndarray, Vt: np.ndarray, L: int, m: int) -> list[np.ndarray]:
    """Balanced aligned factors of ``U diag(s) Vt`` (s > 0, length R ≤ m), zero-padded to width m."""
    R = len(s)
    root = s ** (1.0 / L)
    d, K = U.shape[0], Vt.shape[1]
    W1 = np.zeros((d, m))
    W1[:, :R] = U * root
    Ws = [W1]
    for _ in range(L - 2):
        W = np.zeros((m, m))
        W[np.arange(R), np.arange(R)] = root
        Ws.append(W)
    WL = np.zeros((m, K))
    WL[:R] = root[:, None] * Vt
    Ws.append(WL)
    return Ws


def _optimum(p: Problem, Ws: list[np.ndarray], family: str, **kw: object) -> Optimum:
    return Optimum(objective=float(objective(p, Ws)), weights=Ws, family=family, **kw)


# ----------------------------------------------------------------------------------------------
# §1 partial isometry


def solve_linear_whitened(p: Problem) -> Optimum:
    """THEORY §1: deep linear net (any L ≥ 2, any K) on partial-isometry data.

    Returns:
        Optimum (``EXACT``) with family ``"linear_whitened"``; ``m_star`` = rank =
        ``#{s*_k > 0}``, ``directions`` the top-rank left singular vectors of ``XᵀY``; ``dual``
        (L = 2 only) the optimal dual variable ``Y − XW*``; for display ``info`` has ``sigma``
        (σ_k of XᵀY) and ``s`` (s*_k).
    """
    _check_linear(p)
    X, Y, L = p.X, p.Y, p.L
    found = facts(p)
    if not found.partial_isometry:
        bad = found.isometry_defect
        raise NotCovered(
            f"X is not a partial isometry: a singular value {bad:.6g} is neither 0 nor 1 "
            f"(tolerance {WHITENED_TOL:g})"
        )
    XtY = X.T @ Y
    U, sigma, Vt = np.linalg.svd(XtY, full_matrices=False)
    values, s = path_solution(sigma, p.beta, L)
    XXtY = X @ XtY
    outside = Y - XXtY
    value = 0.5 * float(np.sum(outside * outside)) + float(np.sum(values))
    active = s > 0
    rank = int(active.sum())
    m = optimal_width(p, rank)
    Ws = _layers(U[:, active], s[active], Vt[active], L, m)
    # f(X) = X U diag(s*) Vᵀ = (X XᵀY) V diag(s*/σ) Vᵀ on the active part (σ_k > s*_k > 0)
    dual = None
    if L == 2:
        XU = XXtY @ (Vt[active].T / sigma[active])
        dual = Y - (XU * s[active]) @ Vt[active]
    info = {"sigma": sigma, "s": s}
    return Optimum(
        objective=value,
        weights=Ws,
        family="linear_whitened",
        dual=dual,
        m_star=rank,
        directions=U[:, active],
        info=info,
    )


# ----------------------------------------------------------------------------------------------
# §2, L = 2: nuclear norm (solvers.nuclear)


def solve_linear_l2_general(
    p: Problem, *, gap_tol: float = 1e-10, max_iter: int = 200_000, rank_tol: float = 1e-9
) -> Optimum:
    """THEORY §2, L = 2, any X, any K: the nuclear-norm problem to a certified gap.

    Returns:
        Optimum with family ``"linear_l2_general"``: ``CERTIFIED`` when the certified relative
        gap ``(objective − lower_bound)/objective ≤ gap_tol``, else (iteration cap reached)
        ``BRACKET`` — never reported as P*; ``dual`` the feasible Λ whose dual value is
        ``lower_bound``; ``m_star`` the rank of W* (singular values above ``rank_tol·σ_1``),
        ``directions`` its left singular vectors. For display ``info`` has ``iterations``,
        ``method`` (root | fista | ...), ``rank_X`` and the ``singular_values`` of W*.
    """
    _check_linear(p)
    if p.L != 2:
        raise NotCovered(f"the nuclear-norm form needs depth 2, got depth {p.L}")
    sol = NuclearNorm(p.X, p.Y).solve(p.beta, gap_tol=gap_tol, max_iter=max_iter)
    U, s, Vt = np.linalg.svd(sol.W, full_matrices=False)
    keep = s > rank_tol * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    rank = int(keep.sum())
    m = optimal_width(p, rank)
    Ws = _layers(U[:, keep], s[keep], Vt[keep], 2, m)
    value = float(objective(p, Ws))
    lower = min(sol.lower_bound, value)
    rel = (value - lower) / max(abs(value), np.finfo(float).tiny)
    status = Status.CERTIFIED if sol.converged and rel <= gap_tol else Status.BRACKET
    info = {"iterations": sol.iterations, "method": sol.method, "rank_X": sol.rank_X}
    return Optimum(
        objective=value,
        weights=Ws,
        family="linear_l2_general",
        status=status,
        lower_bound=lower,
        dual=sol.dual,
        m_star=rank,
        directions=U[:, keep],
        info=info | {"singular_values": s},
    )


# ----------------------------------------------------------------------------------------------
# §2, L ≥ 3, K = 1: group lasso + 1-D minimisation over t


class _Ridge:
    """The ridge path ``w(μ) = (XᵀX + μI)^{-1}Xᵀy`` in X's SVD coordinates: O(r) per μ."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        r = int(np.sum(s > RANK_TOL * s[0])) if s.size and s[0] > 0 else 0
        self.Vt, self.s = Vt[:r], s[:r]
        self.lam = self.s**2
        c = U[:, :r].T @ y
        self.b = self.s * c  # Vᵀ Xᵀ y
        self.c = c
        self.yy = float(y @ y)
        self.out2 = self.yy - float(c @ c)  # ‖y outside X's range‖²
        self.xty = float(np.linalg.norm(self.b))

    def coef(self, mu: float) -> np.ndarray:
        return self.b / (self.lam + mu)

    def fit(self, q: np.ndarray) -> float:
        """½‖Xw − y‖² for ``w = Vᵀq`` coordinates ``q``."""
        res = self.s * q - self.c
        return 0.5 * (float(res @ res) + max(self.out2, 0.0))

    def w(self, q: np.ndarray) -> np.ndarray:
        return self.Vt.T @ q


def _gl_mu(ridge: _Ridge, gamma: float) -> float | None:
    """The μ > 0 with ``μ‖w(μ)‖ = γ``, or None when ``w = 0`` (``‖Xᵀy‖ ≤ γ``)."""
    return group_lasso_root(ridge.lam, ridge.b, gamma)


def group_lasso(X: np.ndarray, y: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """``GL(γ) = min_w ½‖Xw − y‖² + γ‖w‖₂`` exactly (THEORY §2); returns (value, w)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    return _group_lasso(_Ridge(X, y), float(gamma))


def _group_lasso(ridge: _Ridge, gamma: float) -> tuple[float, np.ndarray]:
    mu = _gl_mu(ridge, gamma)
    if mu is None:
        return 0.5 * ridge.yy, np.zeros(ridge.Vt.shape[1])
    q = ridge.coef(mu)
    return ridge.fit(q) + gamma * float(np.linalg.norm(q)), ridge.w(q)


def _polish(ridge: _Ridge, mu: float, beta: float, L: int) -> float | None:
    """The root of the stationarity condition ``μ‖w(μ)‖^{2−2/L} = β`` nearest ``mu``, if bracketed."""

    def stat(log_mu: float) -> float:
        mu_ = np.exp(log_mu)
        return mu_ * float(np.linalg.norm(ridge.coef(mu_))) ** (2.0 - 2.0 / L) - beta

    centre = np.log(mu)
    for half in (0.05, 0.5, 2.0):
        lo, hi = centre - half, centre + half
        if stat(lo) * stat(hi) < 0:
            root = brentq(stat, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
            return float(np.exp(root))
    return None


def solve_linear_deep_k1(p: Problem, *, grid: int = 200) -> Optimum:
    """THEORY §2, L ≥ 3, K = 1, any X: ``min_w ½‖Xw − y‖² + (βL/2)‖w‖^{2/L}``.

    Returns:
        Optimum with family ``"linear_deep_k1"``; ``info``: ``w`` (the end-to-end vector),
        ``t`` (the optimal hidden-layer norm of the rescaled form), ``rescaled_value``
        (``GL(β/t^{L−2}) + (β/2)(L−2)t²`` at that t), ``mu`` (ridge parameter). No dual.
    """
    _check_linear(p)
    if p.K != 1:
        raise NotCovered(f"the group-lasso form needs K = 1, got K = {p.K}")
    L, beta = p.L, p.beta
    if L < 3:
        raise NotCovered("the deep K = 1 form is for depth >= 3 (depth 2 is the nuclear-norm form)")
    ridge = _Ridge(p.X, p.Y[:, 0])
    zero = 0.5 * ridge.yy

    def chain_value(q: np.ndarray) -> float:
        return ridge.fit(q) + 0.5 * beta * L * float(np.linalg.norm(q)) ** (2.0 / L)

    def rescaled(log_t: float) -> float:
        t = np.exp(log_t)
        return _group_lasso(ridge, beta / t ** (L - 2))[0] + 0.5 * beta * (L - 2) * t * t

    q_best, val_best = np.zeros(ridge.lam.size), zero
    info: dict = {"t": 0.0, "rescaled_value": zero, "mu": None}
    t_lo = (beta / ridge.xty) ** (1.0 / (L - 2)) if ridge.xty > 0 else np.inf
    t_hi = np.sqrt(ridge.yy / (beta * L)) * (1.0 + 1e-9)
    if t_lo < t_hi:
        logs = np.linspace(np.log(t_lo), np.log(t_hi), grid)
        vals = np.array([rescaled(v) for v in logs])
        i = int(np.argmin(vals))
        bounds = (logs[max(i - 1, 0)], logs[min(i + 1, grid - 1)])
        res = minimize_scalar(rescaled, bounds=bounds, method="bounded", options={"xatol": 1e-12})
        log_t, resc = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (logs[i], vals[i])
        t = float(np.exp(log_t))
        mu = _gl_mu(ridge, beta / t ** (L - 2))
        if mu is not None:
            q, val = ridge.coef(mu), chain_value(ridge.coef(mu))
            mu2 = _polish(ridge, mu, beta, L)
            if mu2 is not None and chain_value(ridge.coef(mu2)) <= val:
                mu, q, val = mu2, ridge.coef(mu2), chain_value(ridge.coef(mu2))
            if val < val_best:
                q_best, val_best = q, val
                info = {"t": t, "rescaled_value": resc, "mu": mu}
    w = ridge.w(q_best)
    norm_w = float(np.linalg.norm(w))
    rank = int(norm_w > 0)
    m = optimal_width(p, rank)
    if rank:
        Ws = _layers((w / norm_w)[:, None], np.array([norm_w]), np.ones((1, 1)), L, m)
    else:
        Ws = _layers(np.zeros((p.d, 0)), np.zeros(0), np.zeros((0, 1)), L, m)
    dirs = (w / norm_w)[:, None] if rank else np.zeros((p.d, 0))
    return _optimum(p, Ws, "linear_deep_k1", m_star=rank, directions=dirs, info={**info, "w": w})
