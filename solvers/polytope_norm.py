"""Exact ``c_K(Λ) = max_{‖u‖≤1} ‖Λᵀ(Xu)_+‖`` on raw data (K ≤ 3) from an outer polytope of
``conv F``, ``F = {(Xu)_+ : ‖u‖ ≤ 1} ⊂ R^n``, with few calls of an exact scalar oracle.

**Cuts.** ``‖Λᵀh‖`` is convex in ``h``, so ``c_K(Λ) = max_{h ∈ conv F} ‖Λᵀh‖``. Every scalar call
on a vector ``g ∈ R^n`` returns ``ĉ(g) ≥ max_{h∈F} gᵀh`` (the MIP's ``upper`` of
:func:`solvers.separation.max_relu_correlation`, one-signed, valid when stopped early — never its
``value``): the halfspace ``gᵀh ≤ ĉ(g)`` contains ``conv F``. So do ``0 ≤ h_i ≤ ‖x_i‖``
(``(x_iᵀu)_+ ≤ ‖x_i‖``) and, free of any oracle, ``gᵀh ≤ ‖X‖₂‖g_+‖`` (``h ≥ 0``, ``‖h‖ ≤ ‖X‖₂``:
the *ball cuts*). ``P_out`` (all cuts so far) ⊇ ``conv F``, hence

    c̄_K = max_{h ∈ P_out} ‖Λᵀh‖ ≥ c_K(Λ).

The cuts depend on X only, not on Λ: :class:`FeatureCuts` keeps them per X (:func:`cuts_for`
caches one per data matrix), so every call of a solve — and every trial on the same data — shares
them.

**c̄_K (an outer polytope of the projection, in q-space).** With ``Λ = U S Vᵀ`` of rank
``r ≤ 3`` and ``L = U_r S_r``, ``‖Λᵀh‖ = ‖Lᵀh‖`` (dropped singular values ``σ`` add
``σ‖ub‖`` to ``c̄``). ``Q = LᵀP_out ⊂ R^r`` is kept from outside as ``O = {q : N q ≤ B}``: every
row is a valid halfspace of ``Lᵀ conv F``, and the convex norm attains its maximum over O at a
vertex (``scipy.spatial.HalfspaceIntersection`` from a Chebyshev centre; ``c̄_K`` = the
largest vertex norm plus ``SAFETY`` relative for round-off). Rows: the support LPs of
``P_out`` in ``±e_k`` (bounded start) and, lazily, in the directions the refinement asks for
(HiGHS with tight tolerances; validity does not rest on them: each LP's duals ``y``, clipped to
``y ≥ 0``, give ``yᵀr + Σ_i (c − Gᵀy)_i^+ ub_i ≥ max cᵀh`` over ``{Gh ≤ r, 0 ≤ h ≤ ub}``, weak
duality with the box); the ball's support ``wᵀq ≤ ‖X‖₂‖(Lw)_+‖``; and each oracle cut with
normal ``g = Lw``, which is the halfspace ``wᵀq ≤ ĉ(g)``.

**Refinement.** At the max-norm vertex ``q*`` of O (``w = q*/‖q*‖``), the cheapest row
that cuts it by more than ``FREE_CUT``: the ball's support, else the support LP over the
stored cuts (cuts of earlier Λ on the same X work here), else the exact scalar oracle on
``g = Lw``: its value is attained by a real ``u`` with ``‖Λᵀ(Xu)_+‖ ≥ wᵀLᵀ(Xu)_+``, a lower
bound on ``c_K``; its upper is the new cut (in O, and in the per-X store). Stop when ``lower ≥
c̄_K/(1 + rtol)``, when ``lower ≥ stop_above`` (a violator), when ``c̄_K ≤ stop_below``
(feasibility proven), when the oracle's bound does not move the vertex, or when only an oracle
call would cut and ``max_evals`` are spent (``max_evals = 0``: the stored cuts alone) —
``c̄_K`` is valid in every case.
Measured (tests/solvers/test_polytope_norm.py, BENCHMARKS.md): 11–17 MIP calls to 1e-9 on
n ≤ 10; 49 calls (98 s, load 7) at a residual of the raw ``deep_relu`` shape n = 20, d = 50.

The scalar oracle is a parameter (:data:`OneSided`); :func:`mip_one_sided` is SCIP's MIP. Where
it applies (raw data beyond §10's enumeration, small n) is :func:`solvers.vector_relu.
scalar_oracle_for`'s choice (``POLYTOPE_MAX_N``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

__all__ = [
    "CUT_CACHE",
    "FeatureCuts",
    "OneSided",
    "cuts_for",
    "mip_one_sided",
    "polytope_vector_norm",
]

SAFETY = 1e-12  # relative round-off allowance on the vertex norms and LP bounds
FREE_CUT = 1e-3  # a ball or stored-cut halfspace instead of an oracle call when it cuts this deep
MIP_TOL = 1e-10  # relative gap of each scalar MIP call
MIP_TIME = 60.0  # seconds per scalar MIP call (its upper stays valid when stopped)
MAX_CALLS = 400  # scalar oracle calls per c_K
MAX_ROWS = 5000  # halfspaces of the outer polytope per c_K (free rows included)
CUT_CACHE = 16  # data matrices whose cuts are kept (per process)
TRACE: list | None = None  # set to a list to record (calls, ball cuts, c̄, lower) per step
RANK_RTOL = 1e-13  # singular values of Λ below this (relative) are dropped (and paid for in c̄)

# g (n,) ↦ (value, upper, u): value = gᵀ(Xu)_+ at the returned u (‖u‖ ≤ 1), upper ≥ max_{h∈F} gᵀh
OneSided = Callable[[np.ndarray], tuple[float, float, np.ndarray]]


def mip_one_sided(X: np.ndarray) -> OneSided:
    """SCIP's exact one-signed ``max_{‖u‖≤1} gᵀ(Xu)_+`` (:func:`solvers.separation.
    max_relu_correlation`, no bias, relative gap ``MIP_TOL``, ``MIP_TIME`` seconds). When SCIP
    reports numerical trouble (no bound) it is asked again with the quadratic cut; the upper
    returned is never above the ball bound ``‖X‖₂‖g_+‖``."""
    from solvers.separation import max_relu_correlation

    X = np.asarray(X, dtype=np.float64)

    radius = float(np.linalg.norm(X, 2))

    def oracle(g: np.ndarray) -> tuple[float, float, np.ndarray]:
        res = max_relu_correlation(X, g, tol=MIP_TOL, time_limit=MIP_TIME)
        if not np.isfinite(res.upper):  # SCIP's numerical trouble: the other formulation
            again = max_relu_correlation(X, g, tol=MIP_TOL, time_limit=MIP_TIME, cuts=True)
            res = again if again.upper < res.upper or again.value > res.value else res
        ball = radius * float(np.linalg.norm(np.maximum(g, 0.0))) * (1.0 + SAFETY)
        return float(res.value), min(float(res.upper), ball), res.u

    return oracle


@dataclasses.dataclass
class FeatureCuts:
    """Valid halfspaces ``G h ≤ r`` of ``conv{(Xu)_+ : ‖u‖ ≤ 1}`` for one X, with the box
    ``0 ≤ h ≤ ub`` (``ub_i = ‖x_i‖``) and ``radius = ‖X‖₂`` (module docstring)."""

    X: np.ndarray
    ub: np.ndarray
    radius: float
    G: np.ndarray
    r: np.ndarray
    calls: int = 0  # scalar oracle calls that produced cuts

    @classmethod
    def of(cls, X: np.ndarray) -> FeatureCuts:
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        return cls(
            X, np.linalg.norm(X, axis=1), float(np.linalg.norm(X, 2)), np.zeros((0, n)), np.zeros(0)
        )

    def add(self, g: np.ndarray, upper: float) -> None:
        """The halfspace ``gᵀh ≤ upper`` (``upper`` must bound ``gᵀh`` on ``F``)."""
        if np.isfinite(upper):
            self.G = np.vstack([self.G, np.asarray(g, dtype=np.float64)[None, :]])
            self.r = np.append(self.r, float(upper))


_CUTS: OrderedDict[str, FeatureCuts] = OrderedDict()


def cuts_for(X: np.ndarray) -> FeatureCuts:
    """The cut store of X (shared by every Λ, per process; the last ``CUT_CACHE`` matrices)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    key = hashlib.sha256(X.tobytes() + repr(X.shape).encode()).hexdigest()
    if key not in _CUTS:
        _CUTS[key] = FeatureCuts.of(X)
        while len(_CUTS) > CUT_CACHE:
            _CUTS.popitem(last=False)
    _CUTS.move_to_end(key)
    return _CUTS[key]


def _support(cuts: FeatureCuts, c: np.ndarray) -> tuple[np.ndarray, float]:
    """``(h, bound)``: an LP maximiser of ``cᵀh`` over ``P_out`` (HiGHS, approximate) and a
    rigorous upper bound on the maximum from its duals (module docstring)."""
    from scipy.optimize import linprog

    m = cuts.G.shape[0]
    res = linprog(
        -c,
        A_ub=cuts.G if m else None,
        b_ub=cuts.r if m else None,
        bounds=np.column_stack([np.zeros_like(cuts.ub), cuts.ub]),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:  # no LP answer: the box alone bounds it
        return np.clip(np.sign(c), 0.0, None) * cuts.ub, float(np.maximum(c, 0.0) @ cuts.ub)
    y = np.maximum(-np.asarray(res.ineqlin.marginals), 0.0) if m else np.zeros(0)
    red = c - cuts.G.T @ y if m else c
    bound = float(y @ cuts.r + np.maximum(red, 0.0) @ cuts.ub)
    bound += SAFETY * float(np.abs(y) @ np.abs(cuts.r) + np.abs(c) @ cuts.ub)
    return np.asarray(res.x, dtype=np.float64), bound


def _box(cuts: FeatureCuts, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, B)``: the support bounds of ``Q = LᵀP_out`` in ``±e_k`` (a bounded start)."""
    r = L.shape[1]
    N = np.vstack([np.eye(r), -np.eye(r)])
    return N, np.array([_support(cuts, L @ nu)[1] for nu in N])


def _vertices(N: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The vertices of the bounded polytope ``{q : N q ≤ B}`` (r ≤ 3)."""
    from scipy.optimize import linprog
    from scipy.spatial import HalfspaceIntersection

    r = N.shape[1]
    if r == 1:
        lo = -np.min(B[N[:, 0] < 0] / -N[N[:, 0] < 0, 0])
        hi = np.min(B[N[:, 0] > 0] / N[N[:, 0] > 0, 0])
        return np.array([[lo], [hi]])
    nn = np.linalg.norm(N, axis=1)
    # Chebyshev centre: a strictly interior point
    c = linprog(
        np.append(np.zeros(r), -1.0),
        A_ub=np.column_stack([N, nn]),
        b_ub=B,
        bounds=[(None, None)] * r + [(0.0, None)],
        method="highs",
    )
    if c.status != 0 or c.x[-1] <= 0:
        raise ValueError("the outer polytope has no interior")
    return HalfspaceIntersection(np.column_stack([N, -B]), c.x[:r]).intersections


def polytope_vector_norm(
    X: np.ndarray,
    Lam: np.ndarray,
    oracle: OneSided,
    *,
    cuts: FeatureCuts | None = None,
    rtol: float = 1e-9,
    stop_above: float = np.inf,
    stop_below: float = 0.0,
    max_evals: int = MAX_CALLS,
):
    """Bounds on ``c_K(Λ)`` (module docstring) as a :class:`solvers.vector_relu.VectorNorm`;
    None when ``rank Λ > 3`` or the hull degenerates (the caller then falls back to the sphere
    branch and bound). ``cuts``: the store to use and extend (default :func:`cuts_for`)."""
    from scipy.spatial import QhullError

    from solvers.vector_relu import VectorNorm

    X = np.asarray(X, dtype=np.float64)
    Lam = np.asarray(Lam, dtype=np.float64)
    Lam = Lam[:, None] if Lam.ndim == 1 else Lam
    cuts = cuts if cuts is not None else cuts_for(X)
    Uq, S, _ = np.linalg.svd(Lam, full_matrices=False)
    if S.size == 0 or S[0] == 0:
        return VectorNorm(0.0, 0.0, np.zeros((0, X.shape[1])), np.zeros(0), 0)
    rank = int(np.sum(S > RANK_RTOL * S[0]))
    if rank > 3:
        return None
    L = Uq[:, :rank] * S[:rank]
    dropped = float(S[rank]) * float(np.linalg.norm(cuts.ub)) if rank < S.size else 0.0
    found: dict[bytes, tuple[float, np.ndarray]] = {}
    evals = 0
    N, B = _box(cuts, L)
    upper = np.inf
    tried: set[bytes] = set()
    while True:
        try:
            V = _vertices(N, B)
        except (QhullError, ValueError):
            return None
        norms = np.linalg.norm(V, axis=1)
        i = int(np.argmax(norms))
        upper = min(upper, float(norms[i]) * (1.0 + SAFETY) + dropped)
        lower = max((f[0] for f in found.values()), default=0.0)
        if TRACE is not None:
            TRACE.append((evals, N.shape[0], upper, lower))
        if upper <= (1.0 + rtol) * lower or lower >= stop_above or upper <= stop_below:
            break
        if N.shape[0] > MAX_ROWS:
            break
        w = V[i] / float(norms[i])
        g = L @ w
        top = float(w @ V[i])
        ball = cuts.radius * float(np.linalg.norm(np.maximum(g, 0.0))) * (1.0 + SAFETY)
        if ball < top * (1.0 - FREE_CUT):  # Lᵀ{h ≥ 0, ‖h‖ ≤ ‖X‖₂} cuts this vertex off
            N, B = np.vstack([N, w]), np.append(B, ball)
            continue
        if (key := np.round(w, 9).tobytes()) not in tried:  # the stored cuts, in direction w
            tried.add(key)
            sup = _support(cuts, g)[1]
            if sup < top * (1.0 - FREE_CUT):
                N, B = np.vstack([N, w]), np.append(B, sup)
                continue
        if evals >= max_evals:  # free rows exhausted (none cuts by FREE_CUT): no calls left
            break
        value, cap, u = oracle(g)
        evals += 1
        cuts.calls += 1
        cuts.add(g, cap)  # for every later Λ
        nu = float(np.linalg.norm(u))
        if nu > 0:
            u = u / nu
            found[np.round(u, 12).tobytes()] = (
                float(np.linalg.norm(Lam.T @ np.maximum(X @ u, 0.0))),
                u,
            )
        if cap >= top * (1.0 - 1e-12):  # the cut does not move this vertex: c̄ is final
            break
        N, B = np.vstack([N, w]), np.append(B, cap)  # wᵀLᵀh = gᵀh ≤ cap on F
    ranked = sorted(found.values(), key=lambda f: -f[0])
    U = np.array([u for _, u in ranked]).reshape(-1, X.shape[1])
    vals = np.array([v for v, _ in ranked])
    lower = float(vals[0]) if vals.size else 0.0
    return VectorNorm(float(max(upper, lower)), lower, U, vals, evals)
