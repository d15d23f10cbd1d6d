"""Deep linear networks: the exact optima of THEORY.md §1 and §2.

Problem (THEORY §0, linear activation, no biases, no batch norm)::

    P* = min_{W_1..W_L}  ½‖X W_1⋯W_L − Y‖_F²  +  (β/2) Σ_l ‖W_l‖_F²

The cheapest layers realising an end-to-end map ``W`` with singular values ``s_k`` cost
``(βL/2) Σ_k s_k^{2/L}`` (balanced, aligned layers), so ``P*`` is a problem in ``W`` alone.

**§1 — partial-isometry data** (every non-zero singular value of X equals 1 within
:data:`ISOMETRY_TOL`; ``XXᵀ = I`` is the special case): with ``Xᵀ Y = U diag(σ) Vᵀ``::

    P* = ½‖Y − X XᵀY‖² + Σ_k g_L(σ_k)        (= ½‖Y‖² − ½‖XᵀY‖² + Σ_k g_L(σ_k))

``s*_k`` = the minimiser in ``g_L(σ_k)``; layers ``W_1 = U S^{1/L} Q_1ᵀ``,
``W_l = Q_{l−1} S^{1/L} Q_lᵀ``, ``W_L = Q_{L−1} S^{1/L} Vᵀ`` with ``S = diag(s*_k > 0)`` and
``Q_l`` the first coordinate vectors of ``R^m``. Any L ≥ 2, any K. For L = 2 the optimal dual
is the residual ``Λ = Y − X W*``.

**§2, L = 2, general X** — the convex problem ``min_W ½‖XW − Y‖² + β‖W‖_*`` with dual
``max_Λ ⟨Λ, Y⟩ − ½‖Λ‖²  s.t.  ‖XᵀΛ‖₂ ≤ β``. With the thin SVD ``X = U_x S_x V_xᵀ`` (rank r)
the optimum lies in ``W = V_x M`` (projecting onto X's row space never raises ``‖W‖_*``), so
we solve the r-dimensional problem ``min_M ½‖S_x M − B‖² + β‖M‖_*`` (``B = U_xᵀY``) by FISTA
with step ``1/σ_1(X)²``, prox = singular-value soft-thresholding, and adaptive (function-value)
restart. Each iterate's residual ``R`` is scaled into the dual feasible set
(``Λ = αR``, ``α = clip(⟨R,Y⟩/‖R‖², 0, β/‖XᵀR‖₂)``), which certifies the gap
``P(W) − D(Λ)``. We stop when it is ``≤ gap_tol · P`` (default 1e-10). **If the iteration cap
is reached first we do not raise**: the returned Optimum has ``info["converged"] = False``,
``info["rel_gap"]`` the certified relative gap and ``info["lower_bound"]`` the dual value, so
a sweep records an honest bracket ``[lower_bound, objective]`` instead of losing the trial.
Layers ``W_1 = A = U S^{1/2}``, ``W_2 = S^{1/2} Vᵀ`` for ``W = U S Vᵀ``.

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

from solvers.problem import NotCovered, Optimum, Problem, Status, forward, objective, optimal_width
from solvers.scalar import path_minimiser, path_value

__all__ = [
    "ISOMETRY_TOL",
    "group_lasso",
    "is_partial_isometry",
    "is_whitened",
    "nuclear_norm_l2",
    "solve_linear",
    "solve_linear_deep_k1",
    "solve_linear_l2_general",
    "solve_linear_whitened",
]

ISOMETRY_TOL = (
    1e-10  # |σ_i(X) − 1| (or σ_i(X)) allowed for a partial isometry; ‖XXᵀ − I‖_F for whitened
)
RANK_TOL = 1e-12  # relative singular-value cutoff for rank(X) in §2


def is_whitened(X: np.ndarray, *, tol: float = ISOMETRY_TOL) -> bool:
    """``‖X Xᵀ − I_n‖_F ≤ tol`` (rows orthonormal; implies ``n ≤ d``)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n > X.shape[1]:
        return False
    return bool(np.linalg.norm(X @ X.T - np.eye(n)) <= tol)


def _isometry_defect(X: np.ndarray, tol: float) -> float | None:
    """None if X is a partial isometry within ``tol``, else a singular value that is neither 0 nor 1.

    Fast path: orthonormal rows (``‖XXᵀ − I‖_F ≤ tol``) or columns (``‖XᵀX − I‖_F ≤ tol``) cost
    one Gram matrix; otherwise the singular values are computed.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    G = X @ X.T if n <= d else X.T @ X
    if np.linalg.norm(G - np.eye(min(n, d))) <= tol:
        return None
    s = np.linalg.svd(X, compute_uv=False)
    one = np.abs(s - 1.0) <= tol
    good = one | (s <= tol)
    if one.any() and np.all(good):
        return None
    return float(s[~good][0]) if not np.all(good) else float(s[0])


def is_partial_isometry(X: np.ndarray, *, tol: float = ISOMETRY_TOL) -> bool:
    """Every singular value of X is within ``tol`` of 0 or of 1 (and at least one is 1)."""
    return _isometry_defect(X, tol) is None


# ----------------------------------------------------------------------------------------------
# helpers


def _check_linear(p: Problem) -> None:
    if not isinstance(p, Problem):
        raise ValueError(f"p must be a solvers.Problem, got {type(p).__name__}")
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


def solve_linear_whitened(p: Problem, *, tol: float = ISOMETRY_TOL) -> Optimum:
    """THEORY §1: deep linear net (any L ≥ 2, any K) on partial-isometry data.

    Returns:
        Optimum with family ``"linear_whitened"``; ``info``: ``sigma`` (σ_k of XᵀY),
        ``s`` (s*_k), ``rank``, ``closed_form`` (the formula's value); ``dual`` (L = 2 only)
        the optimal dual variable ``Y − XW*``.
    """
    _check_linear(p)
    X, Y, L = p.X, p.Y, p.L
    bad = _isometry_defect(X, tol)
    if bad is not None:
        raise NotCovered(
            f"X is not a partial isometry: a singular value {bad:.6g} is neither 0 nor 1 "
            f"(tolerance {tol:g})"
        )
    XtY = X.T @ Y
    U, sigma, Vt = np.linalg.svd(XtY, full_matrices=False)
    s = np.atleast_1d(path_minimiser(sigma, p.beta, L))
    values = np.atleast_1d(path_value(sigma, p.beta, L))
    outside = Y - X @ XtY
    closed_form = 0.5 * float(np.sum(outside * outside)) + float(np.sum(values))
    active = s > 0
    rank = int(active.sum())
    m = optimal_width(p, rank)
    Ws = _layers(U[:, active], s[active], Vt[active], L, m)
    dual = Y - forward(p, Ws) if L == 2 else None
    info = {"sigma": sigma, "s": s, "closed_form": closed_form}
    return _optimum(
        p, Ws, "linear_whitened", dual=dual, m_star=rank, directions=U[:, active], info=info
    )


# ----------------------------------------------------------------------------------------------
# §2, L = 2: nuclear norm by FISTA


def _svt(Z: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s = np.maximum(s - tau, 0.0)
    k = s > 0
    return (U[:, k] * s[k]) @ Vt[k], float(s.sum())


def nuclear_norm_l2(
    X: np.ndarray,
    Y: np.ndarray,
    beta: float,
    *,
    gap_tol: float = 1e-10,
    max_iter: int = 200_000,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``min_W ½‖XW − Y‖² + β‖W‖_*`` to a certified relative duality gap ``gap_tol``.

    Returns:
        ``W`` (d, K), the dual-feasible ``Λ`` (n, K) of the last certificate, and ``info``
        (``primal``, ``lower_bound``, ``rel_gap``, ``iterations``, ``converged``).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Ux, sx, Vxt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(sx > RANK_TOL * sx[0])) if sx.size and sx[0] > 0 else 0
    Ux, sx, Vxt = Ux[:, :r], sx[:r], Vxt[:r]
    B = Ux.T @ Y  # (r, K)
    Y_out = Y - Ux @ B  # part of Y outside X's column space
    out2 = float(np.sum(Y_out * Y_out))
    yy = float(np.sum(Y * Y))
    K = Y.shape[1]
    if r == 0:
        info = {
            "primal": 0.5 * yy,
            "lower_bound": 0.5 * yy,
            "rel_gap": 0.0,
            "iterations": 0,
            "converged": True,
        }
        return np.zeros((X.shape[1], K)), Y.copy(), info
    step = 1.0 / sx[0] ** 2
    tau = beta * step
    S = sx[:, None]

    def certify(M: np.ndarray, nuc: float) -> tuple[float, float, float]:
        Rr = B - S * M  # reduced residual (coordinates in U_x)
        rr = float(np.sum(Rr * Rr))
        primal = 0.5 * (rr + out2) + beta * nuc
        rnorm2 = rr + out2
        if rnorm2 == 0.0:
            return primal, 0.0, 0.0
        inner = float(np.sum(Rr * B)) + out2  # ⟨R, Y⟩
        op = np.linalg.norm(S * Rr, 2)  # ‖XᵀR‖₂ = ‖S_x Rr‖₂
        a_max = beta / op if op > 0 else np.inf
        alpha = min(max(inner / rnorm2, 0.0), a_max)
        dual = alpha * inner - 0.5 * alpha * alpha * rnorm2
        return primal, dual, alpha

    M = np.zeros((r, K))
    Z = M.copy()
    t = 1.0
    best = (np.inf, -np.inf, M, 0.0)  # primal, lower bound, M, alpha of the best certificate
    it = 0
    converged = False
    check_every = 10
    for it in range(1, max_iter + 1):
        G = S * (S * Z - B)
        M_new, nuc = _svt(Z - step * G, tau)
        if float(np.sum((Z - M_new) * (M_new - M))) > 0:  # gradient restart (O'Donoghue & Candès)
            Z, M, t = M_new, M_new, 1.0
        else:
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            Z = M_new + ((t - 1.0) / t_new) * (M_new - M)
            M, t = M_new, t_new
        if it % check_every == 0 or it == 1:
            primal, lower, alpha = certify(M, nuc)
            if primal < best[0]:
                best = (primal, best[1], M, best[3])
            if lower > best[1]:
                best = (best[0], lower, best[2], alpha)
                best_dual_M = M
            if best[0] - best[1] <= gap_tol * max(best[0], np.finfo(float).tiny):
                converged = True
                break
    primal, lower, M_best, alpha = best
    W = Vxt.T @ M_best
    Mr = best_dual_M
    Lam = alpha * (Ux @ (B - S * Mr) + Y_out)
    info = {
        "primal": primal,
        "lower_bound": lower,
        "rel_gap": (primal - lower) / max(primal, np.finfo(float).tiny),
        "iterations": it,
        "converged": converged,
        "rank_X": r,
    }
    return W, Lam, info


def solve_linear_l2_general(
    p: Problem, *, gap_tol: float = 1e-10, max_iter: int = 200_000, rank_tol: float = 1e-9
) -> Optimum:
    """THEORY §2, L = 2, any X, any K: nuclear-norm problem by FISTA with a certified gap.

    Returns:
        Optimum with family ``"linear_l2_general"``; ``dual`` the dual-feasible Λ certifying
        ``info["lower_bound"]``; ``info`` also has ``rel_gap``, ``converged``, ``iterations``,
        ``singular_values`` of W* and ``rank`` (singular values above ``rank_tol·σ_1``).
        Not converged within ``max_iter`` → ``info["converged"] = False`` (see module doc).
    """
    _check_linear(p)
    if p.L != 2:
        raise NotCovered(f"the nuclear-norm form needs depth 2, got depth {p.L}")
    W, Lam, info = nuclear_norm_l2(p.X, p.Y, p.beta, gap_tol=gap_tol, max_iter=max_iter)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    keep = s > rank_tol * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    rank = int(keep.sum())
    m = optimal_width(p, rank)
    Ws = _layers(U[:, keep], s[keep], Vt[keep], 2, m)
    value = float(objective(p, Ws))
    lower = min(float(info["lower_bound"]), value)
    rel = (value - lower) / max(abs(value), np.finfo(float).tiny)
    status = Status.CERTIFIED if info["converged"] and rel <= gap_tol else Status.BRACKET
    extras = {k: info[k] for k in ("iterations", "rank_X")} | {"singular_values": s}
    return Optimum(
        objective=value,
        weights=Ws,
        family="linear_l2_general",
        status=status,
        lower_bound=lower,
        dual=Lam,
        m_star=rank,
        directions=U[:, keep],
        info=extras,
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
    if ridge.xty <= gamma or ridge.lam.size == 0:
        return None

    def h(log_mu: float) -> float:
        mu = np.exp(log_mu)
        return mu * float(np.linalg.norm(ridge.coef(mu))) - gamma

    # μ/(λ_i + μ) ≤ γ/‖Xᵀy‖ for all i at μ = γλ_min/‖Xᵀy‖, ≥ γ/‖Xᵀy‖ at μ = γλ_max/(‖Xᵀy‖ − γ)
    lo = np.log(gamma * ridge.lam.min() / ridge.xty)
    hi = np.log(gamma * ridge.lam.max() / (ridge.xty - gamma))
    while h(lo) > 0:  # rounding only
        lo -= 1.0
    while h(hi) < 0:
        hi += 1.0
    return float(np.exp(brentq(h, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)))


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


# ----------------------------------------------------------------------------------------------


def solve_linear(p: Problem) -> Optimum:
    """The linear families in order: §1 partial isometry, §2 L = 2, §2 L ≥ 3 with K = 1.

    Raises:
        NotCovered: L ≥ 3, K > 1 and X not a partial isometry (Schatten-2/L, no closed form),
            or the problem is not a plain linear net.
    """
    _check_linear(p)
    if is_partial_isometry(p.X):
        return solve_linear_whitened(p)
    if p.L == 2:
        return solve_linear_l2_general(p)
    if p.K == 1:
        return solve_linear_deep_k1(p)
    raise NotCovered(
        f"linear depth {p.L} with K={p.K} on data that is not a partial isometry: a Schatten-2/{p.L} "
        "quasi-norm problem with no closed form (THEORY §2)"
    )
