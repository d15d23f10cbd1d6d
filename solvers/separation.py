"""The separation oracle of THEORY §10: ``max_{‖u‖≤1, b} λᵀ(Xu + b)_+`` (one-signed).

The dual check of the two-layer ReLU program is ``c(λ) = max(s(λ), s(−λ)) ≤ β`` with

    s(λ) = max_{‖u‖ ≤ 1, b ∈ R}  λᵀ(Xu + b1)_+          (b = 0 without bias).

:func:`max_relu_correlation` computes ``s(λ)``: a value achieved by a returned ``(u, b)``
(``value``, a lower bound) and a bound ``upper ≥ s(λ)``; ``exact`` when they agree within ``tol``
(relative). Two stages:

1. **Local search** (cheap, no bound): ``SEARCH_DIRECTIONS`` random directions, the best bias for
   each (exact: ``b ↦ λᵀ(a + b)_+`` is piecewise linear, maximised over its breakpoints by a
   sort), then ascent ``u ← Xᵀ(D(u)λ)/‖·‖`` (the gradient on the current cell) from the best
   ``SEARCH_STARTS``.
2. **Mixed-integer program** (SCIP via ``pyscipopt``: branch and bound with outer approximation
   of the ball), one binary per point with ``λ_i > 0``::

       max Σ λ_i h_i   s.t.  ‖u‖² ≤ 1,  |b| ≤ M,
       λ_i > 0:  h_i ≤ a_i + M_i(1 − z_i),  0 ≤ h_i ≤ M_i z_i,  z_i ∈ {0, 1},
       λ_i < 0:  h_i ≥ a_i,  h_i ≥ 0,                a_i = x_iᵀu + b,

   (with ``cuts``: also ``k_i ≥ −a_i``, ``0 ≤ k_i ≤ M_i(1 − z_i)`` for ``λ_i > 0``, and the
   quadratic cut below)
   in reduced coordinates (X = X_r Vᵀ: u outside the row space only wastes norm) and, with bias,
   centred data (``x_iᵀu + b = (x_i − x̄)ᵀu + (b + x̄ᵀu)``). For ``λ_i < 0`` the two linear
   inequalities are exact when maximising (``h_i = (a_i)_+`` at an optimum). Big-M:
   ``|a_i| ≤ ‖x_i‖ + |b| = M_i``; with bias ``|b| ≤ M = max‖x_i‖`` loses nothing when
   ``1ᵀλ ≤ 0`` (``b > M`` makes every point active: the value moves by ``(b − M)1ᵀλ ≤ 0``;
   ``b < −M`` makes all inactive: value 0, also reached at ``b = −M``); ``1ᵀλ > 0`` gives
   ``s(λ) = ∞`` (``u = 0``, ``b → ∞``). SCIP's dual bound is ``upper``, valid when stopped
   early (time limit): an upper bound that tightens with time. SCIP solves up to
   ``SCIP_FEASTOL`` (1e-10) per row: ``upper`` adds ``SCIP_FEASTOL·Σ|λ_i|(1 + M_i)`` and a
   relative ``SCIP_SLACK`` for its LP tolerances. ``(u, b)`` is polished onto the exact
   maximiser of its face (:func:`_polish`). ``value`` is always evaluated by numpy at the returned
   ``(u, b)`` with ``‖u‖ ≤ 1``.

**The quadratic cut.** The big-M relaxation allows ``h_i = M_i/2`` at ``u = 0``: its root
bound ``Σ_{λ_i>0} λ_i M_i/2`` ignores that all ``a_i`` come from one ``u``. At the canonical
point of any ``(u, b)`` (``z_i = 1[a_i > 0]``, ``h_i = (a_i)_+``, ``k_i = (a_i)_−``, feasible)
``h_i² + k_i² = a_i²`` and, with ``v = u`` (bias: ``v = (u, b/M)``, ``x̃_i = (x_i, M)``),
``Q = Σ_{λ_i>0} λ_i x̃_i x̃_iᵀ``, ``μ ≥ λ_max(Q)``:
``Σ λ_i(h_i² + k_i²) = vᵀQv = μ‖v‖² − vᵀ(μI − Q)v ≤ μρ² − vᵀ(μI − Q)v`` (``ρ² = 1``, bias
2): a convex quadratic constraint that every canonical point satisfies, so the maximum is
unchanged and the relaxation tighter (BENCHMARKS.md). An earlier form with the equality
``a_i = h_i − k_i`` (the same integer points on paper) made SCIP return an "optimal" bound
4.8e-6 below the true value on a biased instance (n = 140, d = 2), with or without the cut;
with presolving off SCIP found the true value (the presolver at fault not found): the
inequalities above are what the tests check.

**Target.** Column generation only needs a violator or the proof ``s(λ) ≤ β(1 + ε)``:
``target`` sets SCIP's objective limit there (nodes whose bound is below it are cut off; with
``first_violator`` it also stops at the first solution above it). The objective is scaled so
that the target (else the local search's value) is 1: SCIP's absolute ``numerics/epsilon``
(``SCIP_EPS``) is then relative, and ``upper`` adds it.

Cost (measured, BENCHMARKS.md §10): exact in seconds up to about n = 60, d = 5; at n = 200,
d = 10 SCIP's bound after 45 s is still 2.9× the value with the cut (3.8× without) and at
n = 1,000, d = 20 5.6× (10.5×), so there the oracle returns a bracket.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

__all__ = [
    "SCIP_FEASTOL",
    "SEARCH_DIRECTIONS",
    "SepResult",
    "best_bias",
    "dual_norm_oracle",
    "local_search",
    "max_relu_correlation",
]

SEARCH_DIRECTIONS = 2000  # random directions of the local search
SEARCH_STARTS = 16  # best directions refined by ascent
SEARCH_STEPS = 30  # ascent steps per start
SCIP_FEASTOL = 1e-10  # SCIP's feasibility tolerance (its smallest without GMP)
SCIP_SLACK = 1e-10  # relative slack added to SCIP's dual bound (its LP tolerances)
SCIP_EPS = 1e-9  # SCIP's numerics/epsilon: its cut-off tests compare up to this (objective ≈ 1)
POOL_MAX = 40  # other violated cells returned from SCIP's pool per call (column generation adds
# up to ADD_BEYOND_CAP blocks a round)
CUT_MIN_POINTS = 100  # the quadratic cut by default from this many points with λ_i > 0
CUT_MARGIN = 1e-9  # relative margin on λ_max in the quadratic cut (eigenvalue round-off)
RANK_RTOL = 1e-12  # singular values below this (relative) drop from the reduced coordinates


@dataclasses.dataclass(frozen=True)
class SepResult:
    """One separation: ``value`` = λᵀ(Xu + b)_+ at ``(u, b)`` (``‖u‖ ≤ 1``; achieved, so a lower
    bound on the maximum), ``upper`` ≥ the maximum (``inf`` when unbounded), ``pattern`` =
    ``1[Xu + b > 0]``, ``exact`` when ``upper − value ≤ tol·max(|upper|, tiny)`` plus twice
    SCIP's tolerance (``SCIP_FEASTOL·Σ|λ_i|(1 + ‖x_i‖ + M)``, ~1e-9 relative); ``sign`` is
    +1 for ``λ`` and −1 for ``−λ`` (:func:`dual_norm_oracle`); ``seconds`` spent, ``nodes`` of
    the branch and bound (0: none ran); ``below_target`` when a ``target`` was given and
    ``upper`` is at most it plus SCIP's tolerances (proved ``s ≤ target``); ``others`` =
    ``(pattern, value)`` of up to ``POOL_MAX`` other points of SCIP's solution pool above the
    target (distinct patterns, best first; only with a ``target``): more violated cells from
    one branch and bound."""

    value: float
    upper: float
    u: np.ndarray
    b: float
    pattern: np.ndarray
    exact: bool
    sign: int = 1
    seconds: float = 0.0
    nodes: int = 0
    below_target: bool = False
    others: tuple[tuple[np.ndarray, float], ...] = ()


def _reduced(X: np.ndarray, bias: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Xr, V, x̄)``: ``X − 1x̄ᵀ = Xr Vᵀ`` (x̄ = 0 without bias), V orthonormal (d × r)."""
    xbar = X.mean(axis=0) if bias else np.zeros(X.shape[1])
    Xc = X - xbar
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    r = int(np.sum(s > RANK_RTOL * s[0])) if s.size and s[0] > 0 else 0
    V = Vt[:r].T
    return Xc @ V, V, xbar


def best_bias(A: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row ``a`` of ``A`` (m × n): ``(max_b λᵀ(a + b)_+, argmax b)``. The function of
    ``b`` is piecewise linear with breakpoints ``−a_i``; with ``1ᵀλ ≤ 0`` its maximum is at a
    breakpoint (or ``b → −∞``: value 0). Exact, vectorised (a sort per row)."""
    order = np.argsort(-A, axis=1)  # largest a first: active first as b grows
    As = np.take_along_axis(A, order, axis=1)
    Ls = lam[order]
    # at b = −As[:, k] the points 0..k−1 are active (a_i + b ≥ 0), point k at its kink
    cl = np.cumsum(Ls, axis=1)
    ca = np.cumsum(Ls * As, axis=1)
    vals = ca - cl * As  # Σ_{i≤k} λ_i(a_i − a_k) (point k contributes 0)
    k = np.argmax(vals, axis=1)
    best = vals[np.arange(A.shape[0]), k]
    b = -As[np.arange(A.shape[0]), k]
    neg = best <= 0
    b = np.where(neg, -np.max(A, axis=1) - 1.0, b)
    return np.maximum(best, 0.0), b


def _values(Xr: np.ndarray, lam: np.ndarray, U: np.ndarray, bias: bool):
    """Values and biases of the directions ``U`` (r × m, columns ‖u‖ ≤ 1)."""
    A = (Xr @ U).T  # (m, n)
    if bias:
        return best_bias(A, lam)
    return np.maximum(A, 0.0) @ lam, np.zeros(A.shape[0])


def local_search(
    X: np.ndarray,
    lam: np.ndarray,
    *,
    bias: bool = False,
    directions: int = SEARCH_DIRECTIONS,
    seed: int = 0,
    starts: np.ndarray | None = None,
) -> SepResult:
    """A good ``(u, b)`` for ``max λᵀ(Xu + b)_+`` without a bound (``upper = inf``): random
    directions (plus ``starts``, d × m, if given), best bias each, ascent from the best."""
    t0 = time.perf_counter()
    X = np.asarray(X, np.float64)
    lam = np.asarray(lam, np.float64).reshape(-1)
    Xr, V, xbar = _reduced(X, bias)
    r = Xr.shape[1]
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((r, directions))
    if starts is not None and np.size(starts):
        U = np.hstack([V.T @ np.asarray(starts, np.float64).reshape(X.shape[1], -1), U])
    U = U / np.maximum(np.linalg.norm(U, axis=0), 1e-300)
    vals, bs = _values(Xr, lam, U, bias)
    top = np.argsort(-vals)[:SEARCH_STARTS]
    best_v, best_u, best_b = -np.inf, np.zeros(r), 0.0
    for j in top:
        u, b, v = U[:, j], bs[j], vals[j]
        for _ in range(SEARCH_STEPS):
            if v > best_v:
                best_v, best_u, best_b = float(v), u.copy(), float(b)
            act = (Xr @ u + b) > 0
            g = Xr[act].T @ lam[act]
            gn = np.linalg.norm(g)
            if gn == 0:
                break
            u2 = g / gn
            v2, b2 = _values(Xr, lam, u2[:, None], bias)
            if v2[0] <= v * (1 + 1e-15):
                break
            u, b, v = u2, b2[0], v2[0]
        if v > best_v:
            best_v, best_u, best_b = float(v), u.copy(), float(b)
    return _result(X, lam, Xr, V, xbar, best_u, best_b, np.inf, 1e-9, t0, 0)


POLISH_RTOL = (1e-9, 1e-7, 1e-5)  # |a_i| below this (relative) counts as on the maximiser's face


def _polish(Xr: np.ndarray, lam: np.ndarray, u: np.ndarray, b: float, bias: bool):
    """Exact maximiser on the face of ``(u, b)`` (a MIP solution is accurate only to SCIP's
    feasibility tolerance): with the points ``|a_i| ≤ τ(‖x_i‖ + |b|)`` on the face and the others
    on their side, the maximum of the linear piece ``gᵀz`` over the flat ``L`` and the ball is
    ``Q(QᵀEQ)^{-1}Qᵀg`` normalised (THEORY §10, ``E`` the u-part). Tried for each τ of
    ``POLISH_RTOL``; returns the candidates (the caller keeps the best exact value)."""
    n, r = Xr.shape
    Xt = np.hstack([Xr, np.ones((n, 1))]) if bias else Xr
    a = Xr @ u + b
    scale = np.linalg.norm(Xr, axis=1) + abs(b)
    E = np.ones(Xt.shape[1])
    if bias:
        E[-1] = 0.0
    out = []
    for tau in POLISH_RTOL:
        on = np.abs(a) <= tau * scale
        g = Xt[(a > 0) & ~on].T @ lam[(a > 0) & ~on]
        if np.any(on):
            _, sv, Vt = np.linalg.svd(Xt[on], full_matrices=True)
            rank = int(np.sum(sv > 1e-12 * sv[0]))
            Q = Vt[rank:].T
        else:
            Q = np.eye(Xt.shape[1])
        if Q.shape[1] == 0:
            continue
        Mq = (Q.T * E) @ Q
        h = Q.T @ g
        try:
            w = np.linalg.solve(Mq, h)
        except np.linalg.LinAlgError:
            continue
        q = float(h @ w)
        if not np.isfinite(q) or q <= 0:
            continue
        z = Q @ w / np.sqrt(q)
        out.append((z[:r], float(z[r]) if bias else 0.0))
    return out


def _result(  # noqa: PLR0913 - one place maps every exit
    X, lam, Xr, V, xbar, u_r, b_c, upper, tol, t0, nodes, tol_abs=0.0, target=None
) -> SepResult:
    """Map reduced ``(u_r, b_c)`` back to X's coordinates and evaluate the value by numpy."""
    nu = float(np.linalg.norm(u_r))
    if nu > 1.0:
        u_r, b_c = u_r / nu, b_c / nu
    u = V @ u_r
    b = float(b_c - xbar @ u)
    a = X @ u + b
    value = max(float(lam @ np.maximum(a, 0.0)), 0.0)
    if value == 0.0:  # the zero network: every point inactive
        u, b = np.zeros(X.shape[1]), 0.0
        a = np.zeros(X.shape[0])
    exact = bool(np.isfinite(upper) and upper - value <= tol * max(abs(upper), 1e-300) + tol_abs)
    below = target is not None and upper <= target * (
        1.0 + SCIP_SLACK
    ) + tol_abs + 2 * SCIP_EPS * abs(target)
    return SepResult(
        value=value,
        upper=float(upper),
        u=u,
        b=b,
        pattern=a > 0,
        exact=exact,
        seconds=time.perf_counter() - t0,
        nodes=nodes,
        below_target=bool(below),
    )


def _norm_cut(Xr: np.ndarray, w: np.ndarray, M: float) -> tuple[np.ndarray, float]:
    """The quadratic cut of :func:`max_relu_correlation` (module doc): with ``x̃_i = (x_i, M)``
    (bias) or ``x_i``, ``Q = Σ w_i x̃_i x̃_iᵀ`` and ``μ ≥ λ_max(Q)``, ``Σ w_i a_i² ≤ μ‖v‖² −
    vᵀ(μI − Q)v`` for ``v = (u, b/M)``. Returns ``(L, μρ²)``: ``R = μI − Q = L Lᵀ`` and the
    right-hand side (``ρ² = 1`` without bias, 2 with: ``‖u‖ ≤ 1, |b| ≤ M``)."""
    Xt = np.hstack([Xr, np.full((Xr.shape[0], 1), M)]) if M > 0 else Xr
    Q = (Xt * w[:, None]).T @ Xt
    mu = float(np.linalg.eigvalsh(Q)[-1])
    mu = mu * (1.0 + CUT_MARGIN) + CUT_MARGIN * float(np.trace(Q)) + 1e-300
    L = np.linalg.cholesky(mu * np.eye(Q.shape[0]) - Q)
    return L, mu * (2.0 if M > 0 else 1.0)


def max_relu_correlation(
    X: np.ndarray,
    lam: np.ndarray,
    *,
    bias: bool = False,
    time_limit: float = 60.0,
    tol: float = 1e-9,
    start: SepResult | None = None,
    threads: int = 1,
    target: float | None = None,
    first_violator: bool = False,
    cuts: bool | None = None,
    stall_nodes: int | None = None,
) -> SepResult:
    """``max_{‖u‖≤1, b} λᵀ(Xu + b)_+`` (``b = 0`` without bias): local search, then SCIP's
    branch and bound (module doc) until the relative gap is ``tol`` or ``time_limit`` seconds.

    Args:
        X: (n, d) data. lam: (n,) weights (with bias, ``1ᵀλ > 0`` gives ``upper = inf``).
        bias: free (unregularised) ``b``.
        time_limit: seconds for SCIP; the result is then a bracket ``[value, upper]``.
        tol: relative gap at which the result is ``exact``.
        start: a known good ``(u, b)`` (e.g. the last round's maximiser) to seed SCIP with.
        target: SCIP's objective limit: nodes whose bound is ``≤ target`` are cut off, so when
            ``s(λ) ≤ target`` SCIP stops once every node is (``below_target``, ``upper`` =
            ``target`` plus SCIP's tolerances), and when ``s(λ) > target`` it solves as
            without a target. Column generation needs exactly this: ``c(λ) ≤ β(1 + ε)``.
        first_violator: with ``target``, stop at the first point above it (``value >
            target``, ``upper`` SCIP's bound so far): fast, but a weaker violator and bound
            (measured in column generation: more rounds, BENCHMARKS.md).
        cuts: add the quadratic cut (module doc); default (``None``): without bias, when at
            least ``CUT_MIN_POINTS`` points have ``λ_i > 0`` (measured: the bound after 45 s
            1.3× tighter at n = 200, d = 10 and 1.9× at n = 1,000, d = 20 on Gaussian data;
            each node costs more, and at n ≤ 60 the proofs are slower; with bias, uniform
            200 × 10, the bound was 1.1× looser).

        stall_nodes: with ``target``, stop once SCIP holds a point above the target and this
            many nodes passed without a better one (``limits/stallnodes``): a violator sooner,
            with SCIP's bound so far (valid, loose); with no point above the target the stall
            is ignored and the solve goes on (else the proof ``≤ target`` would be lost).
            Column generation does not use it (bench/frontier.py's ``stall`` oracle: looser
            brackets, measured in BENCHMARKS.md).

    Returns:
        :class:`SepResult`; ``upper ≥`` the true maximum always (up to SCIP's LP tolerances,
        absorbed by ``SCIP_SLACK``), ``value ≤`` it always (evaluated in float64).
    """
    t0 = time.perf_counter()
    X = np.asarray(X, np.float64)
    X = X[:, None] if X.ndim == 1 else X
    lam = np.asarray(lam, np.float64).reshape(-1)
    if lam.shape[0] != X.shape[0]:
        raise ValueError(f"lam has {lam.shape[0]} entries, X has {X.shape[0]} rows")
    if target is not None and not np.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    Xr, V, xbar = _reduced(X, bias)
    n, r = Xr.shape
    if bias and float(lam.sum()) > 1e-12 * max(float(np.abs(lam).sum()), 1e-300):
        return _result(X, lam, Xr, V, xbar, np.zeros(r), 0.0, np.inf, tol, t0, 0)
    if r == 0 or not np.any(lam > 0):
        return _result(X, lam, Xr, V, xbar, np.zeros(r), 0.0, 0.0, tol, t0, 0, target=target)
    seed = local_search(X, lam, bias=bias)
    if start is not None and start.value > seed.value:
        seed = start
    if first_violator and target is not None and seed.value > target:  # a violator already
        return dataclasses.replace(seed, seconds=time.perf_counter() - t0)
    if cuts is None:  # measured: helps from ~200 points, never with bias (BENCHMARKS.md)
        cuts = not bias and int(np.sum(lam > 0)) >= CUT_MIN_POINTS
    u0 = V.T @ seed.u
    b0 = seed.b + float(xbar @ seed.u)
    nx = np.linalg.norm(Xr, axis=1)
    M = float(np.max(nx)) if bias else 0.0
    # objective in units of the target (else of the seed's value): SCIP's absolute epsilon
    # (SCIP_EPS) is then relative
    scale = float(target) if target is not None and target > 0 else seed.value
    scale = scale if scale > 0 else float(np.abs(lam) @ (nx + M))
    from pyscipopt import Model, quicksum

    m = Model()
    m.hideOutput()
    m.setParam("limits/time", max(float(time_limit), 0.01))
    m.setParam("numerics/feastol", SCIP_FEASTOL)
    m.setParam("limits/gap", 0.5 * tol)
    m.setParam("parallel/maxnthreads", threads)
    if target is not None:
        m.setObjlimit(float(target) / scale)
        if first_violator:
            m.setParam("limits/solutions", 1)  # every solution SCIP accepts is above the target
    u = [m.addVar(lb=-1.0, ub=1.0, name=f"u{j}") for j in range(r)]
    b = m.addVar(lb=-M, ub=M, name="b") if bias else 0.0
    hs, terms = [], []
    for i in range(n):
        if lam[i] == 0:
            continue
        a = quicksum(float(Xr[i, j]) * u[j] for j in range(r)) + b
        Mi = float(nx[i] + M)
        h = m.addVar(lb=0.0, ub=Mi, name=f"h{i}")
        if lam[i] > 0:
            z = m.addVar(vtype="B", name=f"z{i}")
            m.addCons(h <= Mi * z)
            m.addCons(h <= a + Mi * (1 - z))
            k = None
            if cuts:  # k_i ≥ (a_i)_−, 0 when z_i = 1: the negative part at a canonical point
                k = m.addVar(lb=0.0, ub=Mi, name=f"k{i}")
                m.addCons(k >= -a)
                m.addCons(k <= Mi * (1 - z))
            hs.append((i, h, z, k))
        else:
            m.addCons(h >= a)
            hs.append((i, h, None, None))
        terms.append(float(lam[i] / scale) * h)
    m.addCons(quicksum(v * v for v in u) <= 1.0)
    if cuts:
        pos = [(i, h, k) for i, h, z, k in hs if z is not None]
        w = lam[[i for i, _, _ in pos]]
        L, rhs = _norm_cut(Xr[[i for i, _, _ in pos]], w, M)
        v = [*u, b * (1.0 / M)] if bias else u
        Lv = [quicksum(float(L[j, c]) * v[j] for j in range(len(v))) for c in range(len(v))]
        sq = quicksum(float(wi) * (h * h + k * k) for wi, (_, h, k) in zip(w, pos, strict=True))
        m.addCons(sq + quicksum(e * e for e in Lv) <= rhs)
    m.setObjective(quicksum(terms), "maximize")
    if target is None or seed.value > target:  # seed: the local search's point (SCIP rejects
        # points below its objective limit)
        sol = m.createSol()
        a0 = Xr @ u0 + b0
        for j in range(r):
            m.setSolVal(sol, u[j], float(u0[j]))
        if bias:
            m.setSolVal(sol, b, float(b0))
        for i, h, z, k in hs:
            m.setSolVal(sol, h, float(max(a0[i], 0.0)))
            if z is not None:
                m.setSolVal(sol, z, 1.0 if a0[i] > 0 else 0.0)
            if k is not None:
                m.setSolVal(sol, k, float(max(-a0[i], 0.0)))
        m.addSol(sol, free=True)
    try:
        if stall_nodes is not None and target is not None:
            m.setParam("limits/stallnodes", int(stall_nodes))
        m.optimize()
        if m.getStatus() == "stallnodelimit" and not m.getPrimalbound() > m.getObjlimit():
            m.setParam("limits/stallnodes", -1)  # no point above the target yet: go on
            m.optimize()
    except Exception:  # noqa: BLE001 - SCIP: "error in LP solver" (unresolved numerical trouble)
        if not cuts:  # no bound: the local search's point and upper = inf
            return _result(X, lam, Xr, V, xbar, u0, b0, np.inf, tol, t0, 0, target=target)
        left = max(float(time_limit) - (time.perf_counter() - t0), 0.01)
        res = max_relu_correlation(
            X,
            lam,
            bias=bias,
            time_limit=left,
            tol=tol,
            start=seed,
            threads=threads,
            target=target,
            first_violator=first_violator,
            cuts=False,
            stall_nodes=stall_nodes,
        )
        return dataclasses.replace(res, seconds=time.perf_counter() - t0)
    # SCIP solves the program up to SCIP_FEASTOL per row: each h_i may gain that much (times
    # M_i through the ball), so the bound and the tolerance of `exact` carry it
    feas = SCIP_FEASTOL * float(np.abs(lam) @ (1.0 + nx + M))
    dual = float(m.getDualbound())
    if target is not None:  # nodes cut off by the objective limit had bounds ≤ target (+ ε)
        dual = max(dual, float(target) / scale + SCIP_EPS)
    upper = np.inf if dual >= 1e19 else dual * scale * (1.0 + SCIP_SLACK) + feas
    nodes = int(m.getNNodes())
    best_u, best_b = u0, b0
    if m.getNSols() > 0:
        s = m.getBestSol()
        cu = np.array([m.getSolVal(s, v) for v in u])
        cb = float(m.getSolVal(s, b)) if bias else 0.0
        cand = _result(X, lam, Xr, V, xbar, cu, cb, upper, tol, t0, nodes)
        if cand.value > seed.value:
            best_u, best_b = cu, cb
    tol_abs = 2.0 * feas
    best = _result(X, lam, Xr, V, xbar, best_u, best_b, upper, tol, t0, nodes, tol_abs, target)
    cands = _polish(Xr, lam, V.T @ best.u, best.b + float(xbar @ best.u), bias)
    if first_violator and best.value > seed.value:  # a violator: ascend from it
        up = local_search(X, lam, bias=bias, directions=0, starts=best.u[:, None])
        cands.append((V.T @ up.u, up.b + float(xbar @ up.u)))
    for pu, pb in cands:
        cand = _result(X, lam, Xr, V, xbar, pu, pb, upper, tol, t0, nodes, tol_abs, target)
        if cand.value > best.value:
            best = cand
    if target is not None:
        best = dataclasses.replace(
            best, others=_pool(m, u, b, bias, X, lam, Xr, V, xbar, best, target)
        )
    return best


def _pool(m, u, b, bias, X, lam, Xr, V, xbar, best: SepResult, target: float) -> tuple:
    """The solution pool's other points above ``target``: ``(pattern, value)`` with distinct
    patterns (not ``best``'s), evaluated in float64, best first, at most ``POOL_MAX``."""
    seen = {best.pattern.tobytes()}
    out = []
    for s in m.getSols():
        cu = np.array([m.getSolVal(s, v) for v in u])
        cb = float(m.getSolVal(s, b)) if bias else 0.0
        r = _result(X, lam, Xr, V, xbar, cu, cb, np.inf, 0.0, 0.0, 0)
        key = r.pattern.tobytes()
        if r.value > target and key not in seen:
            seen.add(key)
            out.append((r.pattern, r.value))
    out.sort(key=lambda o: -o[1])
    return tuple(out[:POOL_MAX])


def dual_norm_oracle(
    X: np.ndarray,
    lam: np.ndarray,
    *,
    bias: bool = False,
    time_limit: float = 60.0,
    tol: float = 1e-9,
    target: float | None = None,
    first_violator: bool = False,
    cuts: bool | None = None,
    stall_nodes: int | None = None,
    signs: tuple[int, ...] = (1, -1),
) -> tuple[SepResult, ...]:
    """``c(λ) = max(s(λ), s(−λ))``: both one-signed oracles (the first gets half the time, the
    second what is left), the larger-valued first; ``c(λ) ≤ max(upper)`` and ``≥ max(value)``.
    ``target``, ``first_violator``, ``cuts``, ``stall_nodes``: as in
    :func:`max_relu_correlation`; ``signs``: the one-signed oracles to run (one sign gets all
    the time)."""
    t0 = time.perf_counter()
    out = []
    for sg in signs:
        left = float(time_limit) - (time.perf_counter() - t0)
        limit = 0.5 * float(time_limit) if sg == signs[0] and len(signs) > 1 else left
        res = max_relu_correlation(
            X,
            sg * np.asarray(lam, float),
            bias=bias,
            time_limit=limit,
            tol=tol,
            target=target,
            first_violator=first_violator,
            cuts=cuts,
            stall_nodes=stall_nodes,
        )
        out.append(dataclasses.replace(res, sign=sg))
    out.sort(key=lambda s: -s.value)
    return tuple(out)
