"""Two-layer ReLU networks with K > 1 outputs on any data: a certified bracket on P*.

Problem (THEORY §0, L = 2, ReLU, no bias, ``Y ∈ R^{n×K}``)::

    P* = min ½‖Σ_j (X u_j)_+ a_jᵀ − Y‖_F² + (β/2) Σ_j (‖u_j‖² + ‖a_j‖²).

Rescaling each neuron (``‖u_j‖² = ‖a_j‖``) turns the regulariser into ``β Σ_j ‖a_j‖`` with unit
``u_j``: for a fixed set of unit directions the problem is the convex group lasso
``min_A ½‖HA − Y‖² + β Σ_j ‖a_j‖``, ``H = [(Xu_j)_+]`` (:func:`group_lasso`), and P* is its
infimum over all finite sets of directions.

**Dual (weak duality, exact).** For every network and every ``Λ ∈ R^{n×K}``,
``½‖F − Y‖² ≥ ⟨Λ, Y⟩ − ½‖Λ‖² − ⟨Λ, F⟩`` and ``⟨Λ, F⟩ = Σ_j a_jᵀ Λᵀ(Xu_j)_+ ≤ c_K(Λ) Σ_j ‖u_j‖‖a_j‖
≤ (c_K(Λ)/β) · (β/2)Σ_j(‖u_j‖² + ‖a_j‖²)`` with

    c_K(Λ) = max_{‖u‖≤1} ‖Λᵀ(Xu)_+‖.

So for ``α ≥ 0`` with ``α c̄ ≤ β`` (``c̄ ≥ c_K(Λ)``), ``P* ≥ α⟨Λ,Y⟩ − ½α²‖Λ‖²`` (the scaled dual
value, :func:`solvers.scalar.scaled_dual_value`). This is the dual of the group lasso over all
directions; at the optimal network the residual ``Λ = Y − F`` attains it (KKT), so the bracket
closes when the primal is optimal and ``c̄`` is exact (Sahiner, Ergen, Pauly & Pilanci,
ICLR 2021: no duality gap once the width reaches the optimal one).

**Exact ``c_K`` from a scalar oracle (:func:`vector_dual_norm`).** With
``c(λ) = max_{‖u‖≤1} |λᵀ(Xu)_+|`` (two-sided scalar norm), ``c_K(Λ) = max_{‖v‖=1} c(Λv)`` over the
half sphere ``v_K ≥ 0`` (``c(−λ)`` covers ``−v``). ``φ(v) = c(Λv)`` is convex (a max of linear
functions of λ) and positively homogeneous. On a spherical simplex with unit vertices
``v_1..v_K`` every point is ``w/‖w‖`` with ``w`` in the flat simplex, where ``φ(w) ≤ max_i φ(v_i)``
(convexity) and ``‖w‖ ≥ δ`` = the distance of the vertices' hyperplane from 0; hence

    max_{simplex} φ ≤ max_i c̄(Λv_i) / δ,   δ = 1/‖V⁻¹1‖  (V: the vertices as rows),

a bound that tightens quadratically with the simplex's diameter (1/cos(θ/2) for an arc of angle
θ). Branch and bound starts from the ``2^{K−1}`` facets of the cross-polytope with ``v_K ≥ 0``,
bisects the longest edge of the simplex with the largest bound, and stops when that bound is
within ``rtol`` of the best value actually attained, ``‖Λᵀ(Xu)_+‖`` at the oracle's maximisers.
The upper end is rigorous whenever the oracle's ``c̄`` is (:data:`ScalarOracle`); the lower end
is the value of an explicit ``u``.

**Whitened data, K ≤ 3 (:func:`whitened_vector_norm`).** With ``XXᵀ = I``,
``c_K(Λ) = max_{‖v‖=1} ‖(Λv)_+‖`` is computed exactly without branching, over the faces of the
arrangement ``{λ_iᵀv = 0}`` (a vertex ray or a face's top eigenvector); the whitened oracle
carries it as ``oracle.vector_norm``, which :func:`vector_dual_norm` uses when present.

**Scalar oracles.** :func:`whitened_oracle` (``XXᵀ = I``: closed form, exact);
:func:`enumeration_oracle`: the exact face enumeration of
:mod:`solvers.two_layer` (small instances; the maximiser of the best face's cone is its
projection ``Π_K(g)``, computed by NNLS); :func:`sampled_oracle`: beyond the enumeration cap,
``c̄`` is :func:`solvers.two_layer.relaxed_dual_norm` (valid, loose) and the maximisers come from
sampled directions (a BRACKET); :func:`mip_oracle`: raw data beyond the enumeration with
``n ≤ POLYTOPE_MAX_N`` and ``2 ≤ K ≤ 3`` — the exact MIP (:mod:`solvers.separation`) with
``c_K`` from an outer polytope of ``conv{(Xu)_+}`` (:mod:`solvers.polytope_norm`: every MIP
bound is a cut, shared per X; a few calls per ``c_K`` instead of the sphere branch and bound's
thousands). Any callable with the :data:`ScalarOracle` signature plugs in.

**A lower bound from the whitened problem (:func:`whitened_lower_bound`).** For every X,
``P*(X, Y, β) ≥ P*(I_n, Y, β/‖X‖₂)``, and the right-hand side is a whitened problem
(``I_n I_nᵀ = I``) that the exact whitened machinery certifies for ``K ≤ 3``; any valid lower
bound of it bounds ``P*`` from below. Where the scalar oracle is not exact, :func:`_solve`
takes it as one more candidate for the lower end.

**Solver (:func:`solve_vector_relu`).** Column generation on rank-one blocks. On raw data with
the MIP oracle the first rounds are priced by :func:`cell_walk` (local maxima of
``‖Λᵀ(Xu)_+‖``, each exact inside its cell: attained values, a heuristic, never a bound) until it
finds no violator — no MIP call; the exact rounds and the certificate then start from that
network (:func:`_walk_rounds`). Then: directions from
the oracle's maximisers at the residual join a working set, the group lasso on the working set
gives a network (an upper end: a real network's objective), full-network L-BFGS from it moves
the directions continuously (its directions join the working set; on whitened data L-BFGS-B in
``h_j = (Xu_j)_+ ≥ 0``, :func:`_lbfgs_whitened`, where the optimum sits on every inactive
point's kink and L-BFGS on the weights stalls; on raw data :func:`_face_lbfgs` after it, L-BFGS
with each neuron held on the kinks it sits on), and the residual of the
best network scaled by ``β/c̄_K`` gives the lower end. After the rounds, the best network's
certificate is computed with the oracle's final budget; its maximisers above β (violators) join
the network's directions for one more primal step, and again while the primal drops. With
``n < d`` (full row rank, not whitened) the solve runs on ``XV`` (:func:`row_space_basis`: the
same P* and ``c_K``) and maps the network back. CERTIFIED when
``(upper − lower)/upper ≤ tol`` (1e-6) with an exact oracle, else BRACKET.
``m_star`` is the width of the network found (neurons with a non-zero output row after merging
equal directions) after the Carathéodory step :func:`drop_dependent` (at most ``nK`` neurons,
the same objective; ``info["m_found"]`` the width before it), not a proven minimum
(:mod:`solvers.min_width` proves one where it can).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize, nnls

from solvers.detect import is_whitened
from solvers.problem import Network, NotCovered, Optimum, Problem, Status, forward, objective
from solvers.scalar import scaled_dual_value

__all__ = [
    "TOL",
    "ScalarOracle",
    "VectorNorm",
    "best_at_width",
    "enumeration_oracle",
    "group_lasso",
    "from_row_space",
    "mip_oracle",
    "row_space_basis",
    "sampled_oracle",
    "scalar_oracle_for",
    "solve_vector_relu",
    "vector_certificate",
    "vector_dual_norm",
    "whitened_lower_bound",
    "whitened_oracle",
]

FAMILY = "relu_two_layer_vector"
TOL = 1e-6  # certified relative gap (upper − lower)/upper
NORM_RTOL = 1e-9  # branch and bound on the sphere: stop when upper ≤ (1 + NORM_RTOL)·attained
SAFETY = 1e-12  # relative round-off allowance added to every simplex bound (keeps it valid)
MAX_EVALS = 4000  # scalar oracle calls per c_K
INEXACT_EVALS = 200  # the same with an inexact oracle (its c̄ cannot meet NORM_RTOL)
SAMPLED_DIRECTIONS = 20_000
MAX_ROUNDS = 40

# λ (n,) ↦ (c̄, Z): c̄ ≥ c(λ) = max_{‖u‖≤1} |λᵀ(Xu)_+| (rigorous for a certificate) and Z (m, d)
# candidate maximisers (rows, ‖u‖ ≤ 1, best first; may be empty).
ScalarOracle = Callable[[np.ndarray], tuple[float, np.ndarray]]


# ------------------------------------------------------------------ scalar oracles
def _cone_projection(A: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``Π_K(g)`` for ``K = {z : Az ≥ 0}`` (Moreau: ``g + Aᵀμ`` with ``μ = argmin_{μ≥0}‖g + Aᵀμ‖``)."""
    mu, _ = nnls(A.T, -g, maxiter=50 * A.shape[0])
    return g + A.T @ mu


def enumeration_oracle(X: np.ndarray) -> ScalarOracle:
    """Exact ``c(λ)`` by :mod:`solvers.two_layer`'s face enumeration (no bias).

    Raises:
        NotCovered: the arrangement is too large to enumerate (the message gives the count).
    """
    from solvers.arrangement import MAX_PATTERNS, dual_norm_exact
    from solvers.arrangement import cached_geometry as _cached_geometry

    X = np.asarray(X, dtype=np.float64)
    geo = _cached_geometry(X, False, MAX_PATTERNS)
    if not geo.exact:
        raise NotCovered(geo.reason)

    def oracle(lam: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.asarray(lam, dtype=np.float64).reshape(-1)
        cbar, cands = dual_norm_exact(geo, lam)
        Z = []
        for _val, s, D in cands[:3]:
            A = (2.0 * D - 1.0)[:, None] * geo.Xt
            z = _cone_projection(A, s * (geo.Xt.T @ (D * lam)))
            nz = float(np.linalg.norm(z))
            if nz > 0:
                Z.append(geo.V @ (z / nz))
        return float(cbar), np.array(Z).reshape(-1, X.shape[1])

    return oracle


def sampled_oracle(
    X: np.ndarray, *, samples: int = SAMPLED_DIRECTIONS, seed: int = 0
) -> ScalarOracle:
    """Beyond enumeration: ``c̄`` = :func:`solvers.two_layer.relaxed_dual_norm` (a valid upper
    bound, loose) and the best of ``samples`` random unit directions as maximisers."""
    from solvers.arrangement import relaxed_dual_norm

    X = np.asarray(X, dtype=np.float64)
    U = np.random.default_rng(seed).standard_normal((X.shape[1], samples))
    U /= np.linalg.norm(U, axis=0, keepdims=True)
    G = np.maximum(X @ U, 0.0)  # (n, S)

    def oracle(lam: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.asarray(lam, dtype=np.float64).reshape(-1)
        vals = np.abs(lam @ G)
        top = np.argsort(-vals)[:3]
        return relaxed_dual_norm(X, lam), U[:, top].T.copy()

    return oracle


def mip_oracle(X: np.ndarray, *, time_limit: float | None = None) -> ScalarOracle:
    """The exact MIP beyond the enumeration: ``c̄`` = the larger of SCIP's two upper bounds of
    :func:`solvers.separation.dual_norm_oracle` (``≥ c(λ)`` always; equal to it to ~1e-9 when
    SCIP finishes within ``time_limit`` seconds a call, default
    :data:`solvers.polytope_norm.MIP_TIME`), and the maximisers found. It carries
    ``vector_norm`` = the outer polytope of :mod:`solvers.polytope_norm` (``c_K`` for
    ``rank Λ ≤ 3``, cuts shared per X)."""
    from solvers.polytope_norm import MIP_TIME, MIP_TOL, mip_one_sided, polytope_vector_norm
    from solvers.separation import dual_norm_oracle

    X = np.asarray(X, dtype=np.float64)
    seconds = MIP_TIME if time_limit is None else float(time_limit)
    one = mip_one_sided(X)

    def oracle(lam: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.asarray(lam, dtype=np.float64).reshape(-1)
        found = dual_norm_oracle(X, lam, time_limit=seconds, tol=MIP_TOL)
        Z = [r.u / np.linalg.norm(r.u) for r in found if r.value > 0]
        return max(r.upper for r in found), np.array(Z).reshape(-1, X.shape[1])

    def vector_norm(Lam: np.ndarray, *, max_evals: int = POLYTOPE_CALLS, **kw) -> VectorNorm | None:
        cap = min(max_evals, POLYTOPE_FINAL_CALLS)
        return polytope_vector_norm(X, Lam, one, max_evals=cap, **kw)

    oracle.vector_norm = vector_norm
    oracle.walk = True  # the primal rounds price by cell_walk before any MIP call
    oracle.round_evals = POLYTOPE_ROUND_CALLS
    oracle.solve_evals = POLYTOPE_SOLVE_CALLS
    oracle.final_evals = POLYTOPE_FINAL_CALLS
    return oracle


def whitened_oracle(X: np.ndarray) -> ScalarOracle:
    """Whitened data (``XXᵀ = I``, THEORY §3): ``c(λ) = max(‖λ_+‖, ‖λ_−‖)``, attained at
    ``u = Xᵀλ_±/‖λ_±‖`` (then ``(Xu)_+ = λ_±/‖λ_±‖``). Returned ``c̄ = ‖X‖₂ max(‖λ_+‖, ‖λ_−‖)``,
    valid for every X (``λᵀ(Xu)_+ ≤ λ_+ᵀ|Xu| ≤ ‖λ_+‖‖X‖₂``) and exact when X is whitened."""
    X = np.asarray(X, dtype=np.float64)
    Xn = float(np.linalg.norm(X, 2))

    def oracle(lam: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.asarray(lam, dtype=np.float64).reshape(-1)
        Z = []
        for w in (np.maximum(lam, 0.0), np.maximum(-lam, 0.0)):
            g = X.T @ w
            ng = float(np.linalg.norm(g))
            if ng > 0:
                Z.append(g / ng)
        cbar = Xn * max(
            float(np.linalg.norm(np.maximum(lam, 0.0))), float(np.linalg.norm(np.minimum(lam, 0.0)))
        )
        return cbar, np.array(Z).reshape(-1, X.shape[1])

    oracle.vector_norm = lambda Lam, **_: whitened_vector_norm(X, Lam)  # c_K exactly (K ≤ 3)
    return oracle


POLYTOPE_MAX_N = 24  # raw data beyond the enumeration: the MIP + outer polytope up to this n
POLYTOPE_CALLS = 40  # MIP calls per c_K there (~0.5–4 s each at n = 20, d = 50)
POLYTOPE_ROUND_CALLS = 3  # ... per c_K of a column-generation round (the last c_K gets them all)
POLYTOPE_SOLVE_CALLS = 40  # ... per solve: rounds stop when spent (a call count: deterministic)
# ... for the best network's certificate after the rounds, with the primal steps its violators
# give. At a near-optimal residual c_K is attained around every neuron and c̄_K falls about as
# 1/calls²: measured on a raw deep_relu problem after the walk rounds (seed 1, β = 1), c̄_K/β
# 1.031 / 1.0092 / 1.0040 / 1.0022 after 100 / 200 / 300 / 400 calls, brackets 2.6e-2 / 7.8e-3 /
# 3.4e-3 / 1.9e-3; seed 1, β = 0.2: 1.2e-2 / 7.5e-3 after 200 / 250 (BENCHMARKS.md, round 10):
# 250 calls for brackets under 1% on the four
POLYTOPE_FINAL_CALLS = 250


def scalar_oracle_for(
    X: np.ndarray, K: int = 1, *, mip_seconds: float | None = None
) -> tuple[ScalarOracle, bool]:
    """``(oracle, exact)``: the closed form on whitened data (:func:`whitened_oracle`), else the
    enumeration where it reaches, else — for ``2 ≤ K ≤ 3`` outputs and ``n ≤ POLYTOPE_MAX_N`` —
    the MIP with the outer polytope (:func:`mip_oracle`; exact, every bound valid when its call
    cap stops it; beyond that n each MIP call and the cuts needed grow past a solve's budget:
    measured at n = 20, d = 50 only), else, given ``mip_seconds``, :func:`mip_oracle` with that
    time limit a call (``exact`` False: exact only when SCIP finishes in time; the deep dual's
    scalar use), else the sampled one (not exact)."""
    X = np.asarray(X, dtype=np.float64)
    if is_whitened(X, exact=True):
        return whitened_oracle(X), True
    try:
        return enumeration_oracle(X), True
    except NotCovered:
        if 2 <= K <= 3 and X.shape[0] <= POLYTOPE_MAX_N:
            return mip_oracle(X), True
        if mip_seconds is not None:
            return mip_oracle(X, time_limit=mip_seconds), False
        return sampled_oracle(X), False


# ------------------------------------------------------------------ cheap pricing: the cell walk
WALK_STARTS = 150  # random unit starts of a cell walk (besides the network's own directions)
WALK_JITTER = 0.05  # ... and each direction perturbed by this much (one more start each)
WALK_ROUNDS = 60  # primal rounds priced by the walk before any exact oracle call
WALK_CELL_ITERS = 200  # conditional-gradient steps inside one cell
WALK_ACTIVE = 1e-9  # |x_iᵀz| ≤ this·‖x_i‖ puts z on point i's hyperplane (a neighbour to try)


def _cell_max(
    X: np.ndarray, Lam: np.ndarray, D: np.ndarray, z: np.ndarray
) -> tuple[float, np.ndarray]:
    """``max ‖ΛᵀD X z‖`` over the cell ``{z : (2D − 1)∘Xz ≥ 0, ‖z‖ ≤ 1}`` from ``z`` (in it):
    conditional gradient, each step the exact maximiser of the linearisation over the cell,
    ``Π_C(g)/‖Π_C(g)‖`` (:func:`_cone_projection`); the objective is convex, so the values never
    decrease. A local maximum: a heuristic, not a bound."""
    A = (2.0 * D - 1.0)[:, None] * X
    best = -1.0
    for _ in range(WALK_CELL_ITERS):
        g = X.T @ (D * (Lam @ (Lam.T @ (D * (X @ z)))))
        if not np.any(g):
            break
        pz = _cone_projection(A, g)
        npz = float(np.linalg.norm(pz))
        if npz == 0.0:
            break
        z = pz / npz
        v = float(np.linalg.norm(Lam.T @ (D * (X @ z))))
        if v <= best * (1.0 + 1e-12):
            break
        best = v
    return max(best, 0.0), z


def _walk(X: np.ndarray, Lam: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray]:
    """From ``u``'s cell, :func:`_cell_max`, then into a neighbouring cell (one flipped pattern
    bit of a hyperplane the maximiser lies on) while that raises the value."""
    D = (X @ u > 0).astype(np.float64)
    v, z = _cell_max(X, Lam, D, u)
    xn = np.linalg.norm(X, axis=1)
    while True:
        for i in np.flatnonzero(np.abs(X @ z) <= WALK_ACTIVE * xn):
            D2 = D.copy()
            D2[i] = 1.0 - D2[i]
            v2, z2 = _cell_max(X, Lam, D2, z)
            if v2 > v * (1.0 + 1e-12):
                D, v, z = D2, v2, z2
                break
        else:
            return v, z


def cell_walk(
    X: np.ndarray,
    Lam: np.ndarray,
    warm: np.ndarray | None = None,
    *,
    starts: int = WALK_STARTS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``‖Λᵀ(Xu)_+‖`` over ``‖u‖ ≤ 1`` by walking the arrangement's cells
    (:func:`_walk`) from ``warm`` (rows), each of them perturbed by ``WALK_JITTER``, and ``starts``
    random unit directions (a generator seeded with ``seed``: deterministic).

    Returns ``(values, U)`` best first: every value is attained by its unit row of U (a lower
    bound on ``c_K(Λ)``, never an upper one). The pricing of the primal rounds on raw data: at a
    raw ``deep_relu`` residual (n = 20, K = 3) 300 walks found 1.0254 β in 2 s where 100 exact
    MIP calls of the outer polytope had found 1.0250 β (BENCHMARKS.md, round 10)."""
    X = np.asarray(X, dtype=np.float64)
    Lam = np.asarray(Lam, dtype=np.float64).reshape(X.shape[0], -1)
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((starts, X.shape[1]))
    if warm is not None and warm.size:
        P = warm + WALK_JITTER * rng.standard_normal(warm.shape)
        S = np.vstack([warm, P, S])
    S = S[np.linalg.norm(S, axis=1) > 0]
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    found = [_walk(X, Lam, u) for u in S]
    vals = np.array([v for v, _ in found])
    U = np.array([z for _, z in found]).reshape(-1, X.shape[1])
    order = np.argsort(-vals, kind="stable")
    return vals[order], U[order]


# ------------------------------------------------------------------ c_K by branch and bound
@dataclasses.dataclass(frozen=True)
class VectorNorm:
    """``lower ≤ c_K(Λ) ≤ upper``; ``U`` (m, d) unit directions attaining the largest values
    ``values`` (``‖Λᵀ(Xu)_+‖``, best first; ``values[0] == lower``); ``evals`` oracle calls."""

    upper: float
    lower: float
    U: np.ndarray
    values: np.ndarray
    evals: int


def _hemisphere_simplices(K: int) -> list[np.ndarray]:
    """The ``2^{K−1}`` facets ``{s_1e_1, …, s_Ke_K}`` of the cross-polytope with ``s_K = +1``."""
    out = []
    for signs in itertools.product((1.0, -1.0), repeat=K - 1):
        out.append(np.diag(np.array([*signs, 1.0])))
    return out


def _flat_distance(V: np.ndarray) -> float:
    """Distance from 0 of the hyperplane through the rows of ``V`` (K unit vectors); ≤ the
    norm of every point of their convex hull. 0 when they are dependent."""
    try:
        nvec = np.linalg.solve(V, np.ones(V.shape[0]))
    except np.linalg.LinAlgError:
        return 0.0
    nn = float(np.linalg.norm(nvec))
    return 1.0 / nn if np.isfinite(nn) and nn > 0 else 0.0


# ------------------------------------------------------------------ c_K on whitened data, exact
FACE_TOL = 1e-9  # relative slack of the face-membership test (a wider test only loosens the bound)


def _top_eig(Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest eigenvalue, its gap to the next one, and its unit eigenvector, of each (k×k)."""
    w, V = np.linalg.eigh(Q)
    gap = w[:, -1] - (w[:, -2] if w.shape[1] > 1 else -np.inf)
    return np.maximum(w[:, -1], 0.0), gap, V[:, :, -1]


def _plane_faces(L: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The faces of dimension ≥ 1 of the arrangement ``{v : λ_iᵀv = 0}`` on the sphere of
    ``R^K`` (K = 2, 3) as ``(B, S)``: ``B`` (K×k) an orthonormal basis of the face's span,
    ``S`` (n,) the rows with ``λ_iᵀv > 0`` inside it. Cells (k = K) come from both sides of
    every (K−1)-face (every cell has one on its boundary); for K = 3 the 2-faces are the
    sectors of each plane between the lines where the other planes cut it."""
    n, K = L.shape
    scale = np.linalg.norm(L, axis=1)
    faces: list[tuple[np.ndarray, np.ndarray]] = []
    for a in range(n):
        B = np.linalg.svd(L[a : a + 1], full_matrices=True)[2][1:].T  # (K, K−1): λ_a^⊥
        if K == 2:
            mids = np.hstack([B, -B])  # the two rays of the line λ_a^⊥
        else:
            G = L @ B  # (n, 2): the other planes meet λ_a^⊥ on the lines G_jᵀw = 0
            cut = np.linalg.norm(G, axis=1) > 1e-12 * scale
            th = np.arctan2(G[cut, 0], -G[cut, 1])  # direction (−G_j1, G_j0)... its angle
            th = np.sort(np.mod(np.concatenate([th, th + np.pi, [0.0]]), 2 * np.pi))
            th = np.unique(th)
            nxt = np.append(th[1:], th[0] + 2 * np.pi)
            mid = 0.5 * (th + nxt)
            mids = B @ np.vstack([np.cos(mid), np.sin(mid)])  # (K, sectors)
        P = L @ mids  # (n, faces on this plane)
        on = np.abs(P) <= 1e-12 * scale[:, None] * np.linalg.norm(mids, axis=0)[None, :]
        if K == 3:
            for f in range(mids.shape[1]):
                faces.append((B, (P[:, f] > 0) & ~on[:, f]))
        side = L @ L[a]  # crossing the plane: rows on it take the sign of λ_jᵀλ_a
        for s in (1.0, -1.0):
            S = np.where(on, (s * side)[:, None] > 0, P > 0)
            for f in range(mids.shape[1]):
                faces.append((np.eye(K), S[:, f]))
    return faces


def whitened_vector_norm(X: np.ndarray, Lam: np.ndarray) -> VectorNorm | None:
    """Exact ``c_K(Λ)`` on whitened data for ``K ≤ 3`` (None for larger K).

    With ``XXᵀ = I``, ``{(Xu)_+ : ‖u‖ ≤ 1}`` is the non-negative part of the unit ball, so
    ``c_K(Λ) = max_{‖v‖=1} ‖(Λv)_+‖``. On the relative interior of each face of the central
    arrangement ``{λ_iᵀv = 0}`` the active set ``S`` is fixed and ``‖(Λv)_+‖² = vᵀΛ_SᵀΛ_Sv``,
    so a maximiser is a vertex ray (``λ_i × λ_j``) or a top eigenvector of that form on the
    face's span lying in the face. ``upper`` = ‖X‖₂ · the largest of: the rays' values and the
    top eigenvalues of the faces whose top eigenvector lies in the face (within ``FACE_TOL``)
    or whose top eigenvalue is degenerate; ``lower`` = the value of an explicit ``u``."""
    X = np.asarray(X, dtype=np.float64)
    Lam = np.asarray(Lam, dtype=np.float64)
    Lam = Lam[:, None] if Lam.ndim == 1 else Lam
    n, K = Lam.shape
    if K > 3:
        return None
    keep = np.linalg.norm(Lam, axis=1) > 0
    L = Lam[keep]
    if L.shape[0] == 0:
        return VectorNorm(0.0, 0.0, np.zeros((0, X.shape[1])), np.zeros(0), 0)
    scale = np.linalg.norm(L, axis=1)
    cands = [np.eye(K), -np.eye(K)]
    bound = 0.0
    if K == 1:
        cands.append(np.ones((1, 1)))
    else:
        if K == 3:  # vertex rays: every pair of planes
            i, j = np.triu_indices(L.shape[0], 1)
            C = np.cross(L[i], L[j])
            nc = np.linalg.norm(C, axis=1)
            ok = nc > 1e-12 * scale[i] * scale[j]
            R = C[ok] / nc[ok, None]
            cands += [R, -R]
        if K == 2:  # vertex rays: both directions of every line λ_i^⊥
            R = np.stack([-L[:, 1], L[:, 0]], axis=1) / scale[:, None]
            cands += [R, -R]
        faces = _plane_faces(L)
        for k in sorted({B.shape[1] for B, _ in faces}):
            sub = [(B, S) for B, S in faces if B.shape[1] == k]
            Bs = np.stack([B for B, _ in sub])  # (F, K, k)
            Ss = np.stack([S for _, S in sub]).astype(np.float64)  # (F, n)
            LB = np.einsum("ik,fkl->fil", L, Bs) * Ss[:, :, None]  # (F, n, k): Λ_S B
            val, gap, w = _top_eig(np.einsum("fik,fil->fkl", LB, LB))
            for sg in (1.0, -1.0):
                V = np.einsum("fkl,fl->fk", Bs, sg * w)  # (F, K)
                P = np.einsum("ik,fk->fi", L, V)
                tol = FACE_TOL * scale[None, :]
                inside = np.all(np.where(Ss > 0, P >= -tol, P <= tol), axis=1)
                inside |= gap <= FACE_TOL * np.maximum(val, 1e-300)
                if np.any(inside):
                    bound = max(bound, float(np.sqrt(np.max(val[inside]))))
                cands.append(V)
    V = np.vstack(cands)
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    H = np.maximum(Lam @ V.T, 0.0)  # (n, m): h = (Λv)_+ for each candidate
    G = X.T @ H  # u ∝ Xᵀh
    ng = np.linalg.norm(G, axis=0)
    ok = ng > 0
    U = (G[:, ok] / ng[ok]).T
    vals = np.linalg.norm(Lam.T @ np.maximum(X @ U.T, 0.0), axis=0)
    order = np.argsort(-vals)[:16]
    phi = float(np.max(np.linalg.norm(H, axis=0)))
    lower = float(vals[order[0]]) if order.size else 0.0
    upper = max(bound, phi) * float(np.linalg.norm(X, 2)) * (1.0 + SAFETY)
    return VectorNorm(max(upper, lower), lower, U[order], vals[order], 1)


def vector_dual_norm(
    X: np.ndarray,
    Lam: np.ndarray,
    oracle: ScalarOracle,
    *,
    rtol: float = NORM_RTOL,
    stop_above: float = np.inf,
    stop_below: float = 0.0,
    max_evals: int = MAX_EVALS,
) -> VectorNorm:
    """Bounds on ``c_K(Λ) = max_{‖u‖≤1} ‖Λᵀ(Xu)_+‖`` by branch and bound on the half sphere
    (module docstring). Stops when ``upper ≤ (1 + rtol)·lower``, when ``lower ≥ stop_above``
    (a violation is found), when ``upper ≤ stop_below`` (feasibility is proven) or after
    ``max_evals`` oracle calls; ``upper`` is valid in every case (as valid as the oracle's c̄)."""
    X = np.asarray(X, dtype=np.float64)
    Lam = np.asarray(Lam, dtype=np.float64)
    Lam = Lam[:, None] if Lam.ndim == 1 else Lam
    K = Lam.shape[1]
    if not np.any(Lam):
        return VectorNorm(0.0, 0.0, np.zeros((0, X.shape[1])), np.zeros(0), 0)
    direct = getattr(oracle, "vector_norm", None)  # an oracle that knows c_K itself
    if direct is not None:
        out = direct(
            Lam, rtol=rtol, stop_above=stop_above, stop_below=stop_below, max_evals=max_evals
        )
        if out is not None:
            return out
    found: dict[bytes, tuple[float, np.ndarray]] = {}
    cache: dict[bytes, float] = {}
    evals = 0

    def value(v: np.ndarray) -> float:
        nonlocal evals
        key = np.round(v, 15).tobytes()
        if key not in cache:
            cbar, Z = oracle(Lam @ v)
            evals += 1
            cache[key] = float(cbar)
            for z in Z:
                nz = float(np.linalg.norm(z))
                if nz == 0:
                    continue
                u = z / nz
                val = float(np.linalg.norm(Lam.T @ np.maximum(X @ u, 0.0)))
                found[np.round(u, 12).tobytes()] = (val, u)
        return cache[key]

    def bound(V: np.ndarray, vals: list[float]) -> float:
        delta = _flat_distance(V)
        top = max(vals)
        return np.inf if delta <= 0 else top / delta * (1.0 + SAFETY)

    heap: list[tuple[float, int, np.ndarray, list[float]]] = []
    counter = itertools.count()
    for V in _hemisphere_simplices(K):
        vals = [value(v) for v in V]
        heapq.heappush(heap, (-bound(V, vals), next(counter), V, vals))

    def lower() -> float:
        return max((f[0] for f in found.values()), default=0.0)

    steps = 0
    while True:
        upper = -heap[0][0]
        lo = lower()
        if upper <= (1.0 + rtol) * lo or lo >= stop_above or upper <= stop_below:
            break
        steps += 1
        if evals >= max_evals or steps >= max_evals:  # steps: cached midpoints cost no call
            break
        _, _, V, vals = heapq.heappop(heap)
        # longest edge (largest angle = smallest inner product)
        i, j = min(itertools.combinations(range(K), 2), key=lambda e: float(V[e[0]] @ V[e[1]]))
        mvec = V[i] + V[j]
        mvec /= np.linalg.norm(mvec)
        vm = value(mvec)
        for k in (i, j):
            V2 = V.copy()
            V2[k] = mvec
            vals2 = list(vals)
            vals2[k] = vm
            heapq.heappush(heap, (-bound(V2, vals2), next(counter), V2, vals2))
    upper = max(-heap[0][0], lower())
    ranked = sorted(found.values(), key=lambda f: -f[0])
    U = np.array([u for _, u in ranked]).reshape(-1, X.shape[1])
    vals = np.array([v for v, _ in ranked])
    return VectorNorm(float(upper), float(lower()), U, vals, evals)


# ------------------------------------------------------------------ lower bound via the whitened problem
def whitened_lower_bound(Y: np.ndarray, beta: float, scale: float) -> float | None:
    """A certified lower bound on ``P*(I_n, Y, β/scale)`` (two-layer ReLU, no bias), which is
    ``≤ P*(X, Y, β)`` for every ``X`` (n × d) with ``‖X‖₂ ≤ scale``; None for ``K > 3`` (no
    exact whitened ``c_K`` there) or ``scale ≤ 0``.

    **Proof.** By rescaling each neuron (module docstring), ``P*(X, Y, β) = inf ½‖Σ_j
    (Xu_j)_+ a_jᵀ − Y‖² + β Σ_j ‖u_j‖‖a_j‖`` over finite networks. Given one, set
    ``z_j = Xu_j/s`` (``s`` = ``scale``) and ``a'_j = s a_j``. Then ``(z_j)_+ a'_jᵀ =
    (Xu_j)_+ a_jᵀ`` (the ReLU is positively homogeneous, ``s > 0``): the network
    ``I_n z ↦ Σ_j (z_j)_+ a'_jᵀ`` of the problem with data ``I_n`` fits ``Y`` exactly as well,
    and ``‖z_j‖ ≤ ‖X‖₂‖u_j‖/s ≤ ‖u_j‖``, so its regulariser at ``β' = β/s`` is
    ``β' Σ_j ‖z_j‖‖a'_j‖ ≤ (β/s) Σ_j ‖u_j‖ s‖a_j‖ = β Σ_j ‖u_j‖‖a_j‖``. Every objective value of
    the X-problem is thus ≥ one of the ``I_n``-problem, hence ``P*(I_n, Y, β/s) ≤ P*(X, Y, β)``.
    (In the dual: ``{(Xu)_+ : ‖u‖ ≤ 1} ⊆ s·{h ≥ 0 : ‖h‖ ≤ 1}``.) ∎

    The ``I_n`` problem is whitened: :func:`solve_vector_relu` certifies it with the exact
    :func:`whitened_vector_norm`, and its ``lower_bound`` (a rigorous dual value whatever its
    status) is returned. A scale below ``‖X‖₂`` breaks the proof (``‖z_j‖`` may exceed
    ``‖u_j‖``) and the value may then exceed ``P*(X, Y, β)``."""
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.shape[1] > 3 or not scale > 0:
        return None
    n = Y.shape[0]
    q = Problem(np.eye(n), Y, 2, float(beta) / float(scale), "relu")
    return float(solve_vector_relu(q, oracle=whitened_oracle(q.X), exact=True).lower_bound)


# ------------------------------------------------------------------ group lasso (restricted primal)
def _group_lasso_value(H: np.ndarray, A: np.ndarray, Y: np.ndarray, beta: float) -> float:
    R = H @ A - Y
    return 0.5 * float(np.sum(R * R)) + beta * float(np.sum(np.linalg.norm(A, axis=1)))


def group_lasso(
    H: np.ndarray, Y: np.ndarray, beta: float, *, A0: np.ndarray | None = None, sweeps: int = 2000
) -> np.ndarray:
    """``argmin_A ½‖HA − Y‖² + β Σ_j ‖a_j‖`` (rows ``a_j``): Clarabel's interior point (SOCP),
    then exact block coordinate descent sweeps (each block in closed form:
    ``a_j = (1 − β/‖g‖)_+ g/‖h_j‖²``, ``g = r_jᵀh_j``) until the objective stops decreasing
    (relative 1e-15) — the polish an interior point needs for a 1e-9 certificate."""
    import scipy.sparse as sp

    from solvers.relu_program import clarabel_module as _clarabel

    n, m = H.shape
    K = Y.shape[1]
    if A0 is None:
        clarabel = _clarabel()
        # x = [e (nK), A (mK), t (m)]; e = HA − Y; (t_j, a_j) ∈ SOC
        ne, na = n * K, m * K
        nx = ne + na + m
        P = sp.csc_matrix((np.ones(ne), (np.arange(ne), np.arange(ne))), shape=(nx, nx))
        q = np.concatenate([np.zeros(ne + na), np.full(m, beta)])
        # e − (H ⊗ I_K) vec(A) = −vec(Y)  (row-major vec: e[i*K + k], A[j*K + k])
        HK = sp.kron(sp.csr_matrix(H), sp.identity(K))
        A1 = sp.hstack([sp.identity(ne), -HK, sp.csr_matrix((ne, m))])
        rows = []
        for j in range(m):
            rows.append(sp.coo_matrix(([-1.0], ([0], [ne + na + j])), shape=(1, nx)))
            rows.append(
                sp.coo_matrix(
                    (-np.ones(K), (np.arange(K), ne + j * K + np.arange(K))), shape=(K, nx)
                )
            )
        Acon = sp.vstack([A1, *rows]).tocsc()
        b = np.concatenate([-Y.ravel(), np.zeros(m * (K + 1))])
        cones = [clarabel.ZeroConeT(ne)] + [clarabel.SecondOrderConeT(K + 1)] * m
        st = clarabel.DefaultSettings()
        st.verbose = False
        st.tol_gap_abs = st.tol_gap_rel = st.tol_feas = 1e-10
        st.max_iter = 200
        sol = clarabel.DefaultSolver(sp.triu(P).tocsc(), q, Acon, b, cones, st).solve()
        x = np.asarray(sol.x, dtype=np.float64)
        A = x[ne : ne + na].reshape(m, K) if x.size == nx and np.all(np.isfinite(x)) else None
        if A is None:
            A = np.zeros((m, K))
    else:
        A = np.array(A0, dtype=np.float64)
    hn2 = np.sum(H * H, axis=0)
    R = Y - H @ A
    prev = _group_lasso_value(H, A, Y, beta)
    for _ in range(sweeps):
        for j in range(m):
            if hn2[j] == 0:
                A[j] = 0.0
                continue
            g = R.T @ H[:, j] + hn2[j] * A[j]
            ng = float(np.linalg.norm(g))
            new = (max(0.0, 1.0 - beta / ng) / hn2[j]) * g if ng > 0 else np.zeros(K)
            R -= np.outer(H[:, j], new - A[j])
            A[j] = new
        cur = _group_lasso_value(H, A, Y, beta)
        if prev - cur <= 1e-15 * abs(prev):
            break
        prev = cur
    return A


# ------------------------------------------------------------------ networks
def _network(U: np.ndarray, A: np.ndarray) -> Network:
    """Balanced neurons: ``W1[:, j] = √‖a_j‖ u_j``, ``W2[j] = a_j/√‖a_j‖`` (unit ``u_j``)."""
    na = np.linalg.norm(A, axis=1)
    keep = na > 0
    s = np.sqrt(na[keep])
    W1 = U[keep].T * s[None, :]
    W2 = A[keep] / s[:, None]
    if W1.shape[1] == 0:
        W1, W2 = np.zeros((U.shape[1], 1)), np.zeros((1, A.shape[1]))
    return Network(weights=(W1, W2))


def _lbfgs(p: Problem, net: Network, *, maxiter: int = 10_000) -> Network:
    """Local L-BFGS of the §0 objective of the full two-layer network (analytic gradient)."""
    W1, W2 = (np.asarray(w, dtype=np.float64) for w in net.weights)
    d, m = W1.shape
    X, Y, beta = p.X, p.Y, p.beta

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        A1 = theta[: d * m].reshape(d, m)
        A2 = theta[d * m :].reshape(m, -1)
        Z = X @ A1
        Hh = np.maximum(Z, 0.0)
        R = Hh @ A2 - Y
        val = 0.5 * float(np.sum(R * R)) + 0.5 * beta * float(np.sum(A1 * A1) + np.sum(A2 * A2))
        G2 = Hh.T @ R + beta * A2
        G1 = X.T @ ((R @ A2.T) * (Z > 0)) + beta * A1
        return val, np.concatenate([G1.ravel(), G2.ravel()])

    theta0 = np.concatenate([W1.ravel(), W2.ravel()])
    res = minimize(
        fg, theta0, jac=True, method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": 0.0, "gtol": 1e-14, "maxcor": 30},
    )  # fmt: skip
    out = Network(weights=(res.x[: d * m].reshape(d, m), res.x[d * m :].reshape(m, -1)))
    return out if objective(p, out) <= objective(p, net) else net


def _lbfgs_whitened(p: Problem, net: Network, *, maxiter: int = 10_000) -> Network:
    """Whitened data (``XXᵀ = I``): the same objective in ``h_j = (Xu_j)_+`` with bounds.

    ``‖u‖ ≥ ‖Xu‖ ≥ ‖(Xu)_+‖`` with equality at ``u = Xᵀh``, so the network's problem is
    ``min ½‖HA − Y‖² + (β/2)(‖H‖² + ‖A‖²)`` over ``H ≥ 0`` (n×m) — smooth with bounds, where
    the network's form is not: at its optimum every inactive point sits on the ReLU's kink
    (``(Xu_j)_i = 0``), which stalls L-BFGS on the weights. L-BFGS-B on ``(H, A)``; the
    network returned is ``W1 = XᵀH``, ``W2 = A`` (kept only if its §0 objective is lower)."""
    W1, W2 = (np.asarray(w, dtype=np.float64) for w in net.weights)
    n, m = p.n, W1.shape[1]
    Y, beta = p.Y, p.beta

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        H = theta[: n * m].reshape(n, m)
        A = theta[n * m :].reshape(m, -1)
        R = H @ A - Y
        val = 0.5 * float(np.sum(R * R)) + 0.5 * beta * float(np.sum(H * H) + np.sum(A * A))
        return val, np.concatenate([(R @ A.T + beta * H).ravel(), (H.T @ R + beta * A).ravel()])

    theta0 = np.concatenate([np.maximum(p.X @ W1, 0.0).ravel(), W2.ravel()])
    bounds = [(0.0, None)] * (n * m) + [(None, None)] * W2.size
    res = minimize(
        fg, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": maxiter, "ftol": 0.0, "gtol": 1e-14, "maxcor": 30},
    )  # fmt: skip
    H = res.x[: n * m].reshape(n, m)
    out = Network(weights=(p.X.T @ H, res.x[n * m :].reshape(m, -1)))
    return out if objective(p, out) <= objective(p, net) else net


FACE_ZTOLS = (1e-3, 1e-5)  # relative |x_iᵀu_j| below which a point is held on neuron j's kink


def _face_lbfgs(p: Problem, net: Network, *, ztol: float, maxiter: int = 20_000) -> Network:
    """L-BFGS of the §0 objective on the faces of the arrangement the neurons sit on.

    At an optimum of raw data most neurons have points exactly on their kink
    (``x_iᵀu_j = 0``: the dual maximiser lies on a face of the arrangement), where L-BFGS on the
    weights stalls (:func:`_lbfgs` moves 2.199942 → 2.199941 on a raw ``deep_relu`` problem
    where one pass of this at ztol 1e-3 reaches 2.196232, and alternated with the group lasso
    2.196099). Each neuron whose ``|x_iᵀu_j| ≤ ztol‖x_i‖‖u_j‖`` for ``i ∈ Z_j``
    is held on those kinks: ``u_j = B_j t_j`` with ``B_j`` an orthonormal basis of
    ``{u : X_{Z_j} u = 0}``, and L-BFGS runs on ``(t, W2)``, where those points stay exactly
    inactive (no kink left near them). Every iterate is a real network (the same objective on a
    subspace): the result is kept only if its §0 objective is lower."""
    W1, W2 = (np.asarray(w, dtype=np.float64) for w in net.weights)
    X, Y, beta = p.X, p.Y, p.beta
    live = (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)
    W1, W2 = W1[:, live], W2[live]
    m, K = W2.shape
    if m == 0:
        return net
    xn = np.linalg.norm(X, axis=1)
    bases, t0 = [], []
    for j in range(m):
        u = W1[:, j]
        held = np.abs(X @ u) <= ztol * xn * float(np.linalg.norm(u))
        B = np.eye(p.d)
        if np.any(held):
            _, sv, Vt = np.linalg.svd(X[held], full_matrices=True)
            B = Vt[int(np.sum(sv > 1e-12 * sv[0])) :].T
        bases.append(B)
        t0.append(B.T @ u)
    off = np.cumsum([0] + [t.size for t in t0])
    XB = [X @ B for B in bases]

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        T = [theta[off[j] : off[j + 1]] for j in range(m)]
        A = theta[off[-1] :].reshape(m, K)
        Z = np.column_stack([XB[j] @ T[j] for j in range(m)])
        H = np.maximum(Z, 0.0)
        R = H @ A - Y
        val = 0.5 * float(np.sum(R * R)) + 0.5 * beta * (
            sum(float(t @ t) for t in T) + np.sum(A * A)
        )
        GH = (R @ A.T) * (Z > 0)
        gT = [XB[j].T @ GH[:, j] + beta * T[j] for j in range(m)]
        return val, np.concatenate([*gT, (H.T @ R + beta * A).ravel()])

    res = minimize(
        fg, np.concatenate([*t0, W2.ravel()]), jac=True, method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": 0.0, "gtol": 1e-14, "maxcor": 30},
    )  # fmt: skip
    W1n = np.column_stack([bases[j] @ res.x[off[j] : off[j + 1]] for j in range(m)])
    out = Network(weights=(W1n, res.x[off[-1] :].reshape(m, K)))
    return out if objective(p, out) <= objective(p, net) else net


def _polish_raw(p: Problem, net: Network) -> Network:
    """The local step of a round on raw data: :func:`_lbfgs`, then :func:`_face_lbfgs` at each
    of ``FACE_ZTOLS`` (coarse first: it frees the most kinks)."""
    net = _lbfgs(p, net)
    for ztol in FACE_ZTOLS:
        net = _face_lbfgs(p, net, ztol=ztol)
    return net


WIDTH_STARTS = 32  # m-subsets of a wider network's neurons refit by :func:`best_at_width`


def best_at_width(
    p: Problem, net: Network, m: int, *, starts: int = WIDTH_STARTS, seed: int = 0
) -> Network | None:
    """The best width-``m`` network found from a wider one (a feasible network: an UPPER bound
    on P* at width m, never a certificate).

    Starts: ``net``'s m largest neurons (‖w₁‖‖w₂‖), then ``starts − 1`` random m-subsets of its
    active neurons (a generator seeded with ``seed``: deterministic); each is refit at width m by
    L-BFGS (the bounded form in ``H = (XW₁)_+`` on whitened data, :func:`_lbfgs_whitened`;
    the weights otherwise, :func:`_lbfgs`). For a trial narrower than the m* of the optimum
    found, this is the upper end of its bracket [P* of any width, ·]: on the 4 ZCA K = 3 width-10
    trials of ``deep_relu`` it is 4e-6–2e-4 above P* where the trained networks were 3e-4–2e-2
    (issue 17; random starts did no better than the subsets). Two-layer ReLU without biases
    only (None otherwise, or when ``net`` has at most m active neurons: nothing to choose)."""
    if p.depth != 2 or p.activation != "relu" or p.bias or p.batchnorm or m < 1:
        return None
    W1, W2 = (np.asarray(w, dtype=np.float64) for w in net.weights)
    size = np.linalg.norm(W1, axis=0) * np.linalg.norm(W2, axis=1)
    active = np.argsort(-size, kind="stable")[: int(np.sum(size > 0))]
    if active.size <= m:
        return None
    rng = np.random.default_rng(seed)
    subsets = [active[:m]] + [rng.choice(active, m, replace=False) for _ in range(starts - 1)]
    narrow = dataclasses.replace(p, width=m)
    local = _lbfgs_whitened if is_whitened(p.X, exact=True) else _lbfgs
    best, value = None, np.inf
    for S in subsets:
        cand = local(narrow, Network(weights=(W1[:, S], W2[S])))
        val = objective(narrow, cand)
        if val < value:
            best, value = cand, val
    return best


def _directions(net: Network) -> np.ndarray:
    """Unit first-layer directions (rows) of the neurons with a non-zero output row."""
    W1, W2 = net.weights
    nw = np.linalg.norm(W1, axis=0)
    keep = (nw > 0) & (np.linalg.norm(W2, axis=1) > 0)
    return (W1[:, keep] / nw[keep]).T


def _merge(U: np.ndarray, cos_tol: float = 1e-12) -> np.ndarray:
    out: list[np.ndarray] = []
    for u in U:
        if not any(float(u @ w) > 1.0 - cos_tol for w in out):
            out.append(u)
    return np.array(out).reshape(-1, U.shape[1])


BASIC_RTOL = 1e-12  # the Carathéodory step's network is kept if its objective ≤ upper (1 + this)
DEPENDENT_RTOL = 1e-9  # σ_min ≤ this × σ_max: a network's atoms are linearly dependent


def drop_dependent(X: np.ndarray, net: Network, rtol: float = DEPENDENT_RTOL) -> Network | None:
    """Carathéodory on a two-layer network's atoms ``vec((Xw₁ⱼ)_+ w₂ⱼᵀ)`` (``nK``-vectors): while
    they are linearly dependent (smallest singular value ≤ ``rtol`` × largest; always when there
    are more than ``nK``), move the neurons' scales ``sⱼ ≥ 0`` (``w₁ⱼ, w₂ⱼ ← √sⱼ w₁ⱼ, √sⱼ w₂ⱼ``,
    which scales atom j by ``sⱼ`` and its regulariser ``½(‖w₁ⱼ‖² + ‖w₂ⱼ‖²)`` by ``sⱼ``) along
    a null vector, in the sign that does not raise the regulariser, until a neuron reaches 0.
    The output is kept (exactly for an exact null vector, to ``rtol`` relative otherwise) and
    the regulariser does not rise, so the objective does not rise beyond round-off; at most
    ``rank ≤ nK`` neurons remain (a basic solution, not a minimum-support search). The live
    neurons of the result, or None when no neuron was dropped."""
    W1, W2 = (np.asarray(w, dtype=np.float64) for w in net.weights)
    live = (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)
    W1, W2 = W1[:, live], W2[live]
    dropped = not np.all(live)
    while W1.shape[1] > 1:
        H = np.maximum(X @ W1, 0.0)
        atoms = np.einsum("ij,jk->jik", H, W2).reshape(W1.shape[1], -1).T  # (nK, m)
        _, sv, Vt = np.linalg.svd(atoms, full_matrices=True)
        full = np.zeros(W1.shape[1])
        full[: sv.size] = sv
        if full[-1] > rtol * max(float(full[0]), 1e-300):
            break
        v = Vt[-1]
        reg = 0.5 * (np.sum(W1 * W1, axis=0) + np.sum(W2 * W2, axis=1))
        if float(reg @ v) > 0:
            v = -v
        if not np.any(v < 0):
            break
        tau = float(np.min(-1.0 / v[v < 0]))
        scale = 1.0 + tau * v
        keep = scale > 1e-12
        W1 = W1[:, keep] * np.sqrt(scale[keep])
        W2 = W2[keep] * np.sqrt(scale[keep])[:, None]
        dropped = True
    return Network(weights=(W1, W2)) if dropped and W1.shape[1] else None


def _check(p: object) -> Problem:
    if not isinstance(p, Problem):
        raise ValueError(f"p must be a solvers.Problem, got {type(p).__name__}")
    if p.depth != 2 or p.activation != "relu" or p.batchnorm:
        raise NotCovered(
            "the vector-output program covers two-layer ReLU networks without batch norm only"
        )
    if p.bias:
        raise NotCovered(
            f"bias=True with K={p.K} outputs: the vector-output program (THEORY §10, K > 1) has "
            "no hidden biases"
        )
    return p


def vector_certificate(
    p: Problem, weights: Network, *, oracle: ScalarOracle | None = None, rtol: float = NORM_RTOL
) -> float:
    """A lower bound on P* from any two-layer ReLU network (any K): its residual ``Λ = Y − F``
    scaled by ``β/c̄_K(Λ)`` (module docstring). Never above P* when the oracle's c̄ is valid."""
    p = _check(p)
    oracle = oracle or scalar_oracle_for(p.X, p.K)[0]
    Lam = p.Y - forward(p, weights)
    c = vector_dual_norm(p.X, Lam, oracle, rtol=rtol)
    return _scaled(Lam, p.Y, p.beta, c.upper)


def _scaled(Lam: np.ndarray, Y: np.ndarray, beta: float, cbar: float) -> float:
    amax = np.inf if cbar <= 0 else beta / cbar
    return float(scaled_dual_value(float(np.sum(Lam * Y)), float(np.sum(Lam * Lam)), amax))


def solve_vector_relu(
    p: Problem,
    *,
    oracle: ScalarOracle | None = None,
    exact: bool | None = None,
    tol: float = TOL,
    max_rounds: int = MAX_ROUNDS,
) -> Optimum:
    """P* bracketed (or certified) for a two-layer ReLU problem with any K (module docstring).

    Args:
        p: depth 2, relu, no bias, no batch norm.
        oracle: the scalar oracle; default :func:`scalar_oracle_for` (enumeration where it
            reaches, else sampled directions with the relaxed bound).
        exact: whether ``oracle``'s c̄ equals c(λ) (CERTIFIED is only claimed then); default:
            True for the enumeration, False for a caller's oracle.
        tol: relative gap for CERTIFIED.

    Returns:
        :class:`Optimum` (family ``"relu_two_layer_vector"``): ``objective`` a real network's
        §0 objective (upper end), ``lower_bound`` the scaled-dual certificate, ``status``
        CERTIFIED or BRACKET, ``m_star`` the width of the network found (not proven minimal),
        ``info`` rounds, working-set size, oracle calls; ``p_star_kind`` "attained".
    """
    p = _check(p)
    V = None
    if oracle is None:
        V = row_space_basis(p.X)
        q = p if V is None else dataclasses.replace(p, X=p.X @ V)
        oracle, exact0 = scalar_oracle_for(q.X, p.K)
        exact = exact0 if exact is None else exact
    from solvers.rescaled import _one_blas_thread  # tiny BLAS calls: threads only contend

    with _one_blas_thread():
        if V is None:
            return _solve(p, oracle, bool(exact), tol, max_rounds)
        return from_row_space(_solve(q, oracle, bool(exact), tol, max_rounds), V)


def row_space_basis(X: np.ndarray) -> np.ndarray | None:
    """``V`` (d × n, orthonormal columns, ``X = X V Vᵀ``) when ``n < d``, ``X`` has full row
    rank and is not whitened; else None.

    Then the problem on ``X̃ = XV`` (n × n) is the same problem: every ``u`` gives ``z = Vᵀu``
    with ``X̃z = Xu`` and ``‖z‖ ≤ ‖u‖``, and every ``z`` gives ``u = Vz`` with ``Xu = X̃z`` and
    ``‖u‖ = ‖z‖`` — so P*, every ``c(λ)`` and ``c_K(Λ)`` are equal, and a network ``(Z, W2)`` on
    ``X̃`` maps back to ``(VZ, W2)`` with the same §0 objective (:func:`from_row_space`). The
    MIP of :mod:`solvers.separation` already works in these coordinates; what gains is
    everything else (L-BFGS on n instead of d weights a neuron, the ``d − n`` null directions
    that weight decay only shrinks). Whitened data keeps its closed form on X."""
    n, d = X.shape
    if n >= d or is_whitened(X, exact=True):
        return None
    _, sv, Vt = np.linalg.svd(X, full_matrices=False)
    if sv[-1] <= 1e-10 * sv[0]:
        return None
    return Vt.T.copy()


def from_row_space(opt: Optimum, V: np.ndarray) -> Optimum:
    """``opt`` of the problem on ``XV`` as one of the problem on ``X`` (:func:`row_space_basis`):
    first-layer weights and directions ``Z ↦ VZ``; values, status and widths unchanged."""
    W1, W2 = opt.network.weights
    net = Network(weights=(V @ W1, W2))
    dirs = None if opt.directions is None else V @ opt.directions
    return dataclasses.replace(opt, weights=list(net.weights), network=net, directions=dirs)


def _solve(p: Problem, oracle: ScalarOracle, exact: bool, tol: float, max_rounds: int) -> Optimum:
    X, Y, beta = p.X, p.Y, p.beta
    half = 0.5 * float(np.sum(Y * Y))
    zero = Network(weights=(np.zeros((p.d, 1)), np.zeros((1, p.K))))
    cap = MAX_EVALS if exact else INEXACT_EVALS  # a loose c̄ never meets rtol: cap the work
    per_round = getattr(oracle, "round_evals", cap)  # an oracle's own budget per round
    first = vector_dual_norm(X, Y, oracle, rtol=1e-3, max_evals=per_round)
    best_net, upper = zero, half
    lower = _scaled(Y, Y, beta, first.upper)
    W = _merge(first.U[:8]) if first.U.size else np.zeros((0, p.d))
    evals = first.evals
    rounds = 0
    trace = []
    local = _lbfgs_whitened if is_whitened(X, exact=True) else _polish_raw
    budget = getattr(oracle, "solve_evals", np.inf)  # an oracle's own budget per solve
    walked = 0
    if getattr(oracle, "walk", False) and W.shape[0]:  # cheap pricing first (cell_walk)
        best_net, upper, W, walked = _walk_rounds(p, W, local)
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - reported
        if W.shape[0] == 0 or evals >= budget:
            break
        H = np.maximum(X @ W.T, 0.0)
        A = group_lasso(H, Y, beta)
        cands = [_network(W, A)]
        cands.append(local(p, cands[0]))
        for net in cands:
            val = objective(p, net)
            if val < upper:
                best_net, upper = net, val
        # price at the restricted optimum's residual (the master's dual) and at the best network
        new = [_directions(best_net)]
        gap = (upper - lower) / abs(upper)
        for net, stop in ((cands[0], beta * (1.0 + 1e-3)), (best_net, np.inf)):
            Lam = Y - forward(p, net)
            c = vector_dual_norm(
                X, Lam, oracle, rtol=min(1e-4, 0.1 * gap), stop_above=stop, max_evals=per_round
            )
            evals += c.evals
            lower = max(lower, _scaled(Lam, Y, beta, c.upper))
            new.append(c.U[c.values > beta * (1.0 + 1e-10)][:8])
        trace.append((upper, lower))
        if upper - lower <= tol * abs(upper):
            break
        used = W[np.linalg.norm(A, axis=1) > 0]
        W2 = _merge(np.vstack([used, *new]))
        if W2.shape[0] == used.shape[0]:
            break  # nothing new to add: the oracle found no violator
        W = W2
    # the tight certificate of the best network; its maximisers above β are violators: a
    # primal step with them, and again (the cuts so far stay), within the final call budget
    final = getattr(oracle, "final_evals", cap)
    spent = 0
    while upper - lower > tol * abs(upper) and spent < final:
        Lam = Y - forward(p, best_net)
        c = vector_dual_norm(X, Lam, oracle, rtol=NORM_RTOL, max_evals=final - spent)
        evals += c.evals
        spent += max(c.evals, 1)
        lower = max(lower, _scaled(Lam, Y, beta, c.upper))
        viol = c.U[c.values > beta * (1.0 + 1e-10)][:8]
        if upper - lower <= tol * abs(upper) or viol.shape[0] == 0:
            break
        W = _merge(np.vstack([_directions(best_net), viol]))
        A = group_lasso(np.maximum(X @ W.T, 0.0), Y, beta)
        net = local(p, _network(W, A))
        if objective(p, net) >= upper:
            break  # the violators did not lower the primal: c̄ stands as computed
        best_net, upper = net, objective(p, net)
    if upper - lower > tol * abs(upper):  # P*(I_n, Y, β/‖X‖₂) ≤ P*
        white = whitened_lower_bound(Y, beta, float(np.linalg.norm(X, 2)))
        lower = lower if white is None else max(lower, white)
    m_found = int(_directions(best_net).shape[0])
    basic = drop_dependent(X, best_net)  # at most nK neurons, the same objective (round-off)
    if basic is not None:
        val = objective(p, basic)
        if val <= upper + BASIC_RTOL * abs(upper):
            best_net, upper = basic, val  # the upper end is the network reported
    dirs = _directions(best_net).T
    m_star = int(dirs.shape[1])  # the live neurons
    if p.width is not None and p.width != best_net.weights[0].shape[1]:
        best_net = _pad(p, best_net, m_star)  # zero neurons: the same objective
        upper = objective(p, best_net)
    lower = min(lower, upper)
    rel = max((upper - lower) / abs(upper), 0.0) if upper != 0 else 0.0
    status = Status.CERTIFIED if exact and rel <= tol else Status.BRACKET
    info = {
        "rounds": rounds,
        "walk_rounds": walked,
        "m_found": m_found,  # neurons before the Carathéodory step (drop_dependent)
        "blocks": int(W.shape[0]),
        "oracle_calls": evals,
        "trace": trace,
    }
    if not exact:
        info["not_covered"] = (
            "the scalar oracle is not exact here (pattern enumeration beyond its cap): sampled "
            "directions and the relaxed bound"
        )
    return Optimum(
        objective=upper,
        weights=list(best_net.weights),
        family=FAMILY,
        status=status,
        lower_bound=lower,
        rel_gap=rel,
        network=best_net,
        m_star=m_star,
        directions=dirs,
        info=info,
        p_star_kind="attained",  # no bias: every network is finite
    )


def _walk_rounds(
    p: Problem, W: np.ndarray, local: Callable[[Problem, Network], Network]
) -> tuple[Network, float, np.ndarray, int]:
    """Primal rounds priced by :func:`cell_walk` instead of the exact oracle: group lasso on the
    working set ``W``, the local polish, then the walk at the best network's residual; its values
    above β join ``W`` (at most 8 a round). Stops when the walk finds no violator, when the best
    objective stops falling (relative 1e-12, twice), or after ``WALK_ROUNDS``. Returns
    ``(best network, its objective, W, rounds)``: a network (an upper end) and a working set
    for the exact rounds; nothing here is a bound on P* from below."""
    X, Y, beta = p.X, p.Y, p.beta
    best, upper = None, np.inf
    keep = np.zeros((0, p.d))
    flat = 0
    rounds = 0
    for rounds in range(1, WALK_ROUNDS + 1):  # noqa: B007 - returned
        W = _merge(W)
        A = group_lasso(np.maximum(X @ W.T, 0.0), Y, beta)
        before = upper
        for net in (_network(W, A), local(p, _network(W, A))):
            val = objective(p, net)
            if val < upper:
                best, upper = net, val
        flat = flat + 1 if upper >= before * (1.0 - 1e-12) else 0
        if flat >= 2:
            break
        dirs = _directions(best)
        vals, Z = cell_walk(X, Y - forward(p, best), np.vstack([dirs, keep]), seed=rounds)
        viol = _merge(Z[vals > beta * (1.0 + 1e-9)])[:8]
        if viol.shape[0] == 0:
            break
        keep = viol
        W = np.vstack([W[np.linalg.norm(A, axis=1) > 0], dirs, viol])
    return best, upper, _merge(np.vstack([_directions(best), keep])), rounds


def _pad(p: Problem, net: Network, m_needed: int) -> Network:
    """The network at ``p.width`` neurons (zero padding, or dropping zero neurons)."""
    W1, W2 = net.weights
    live = (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)
    W1, W2 = W1[:, live], W2[live]
    if p.width < W1.shape[1]:
        raise NotCovered(f"width {p.width} is below the {m_needed} neurons of the network found")
    extra = p.width - W1.shape[1]
    return Network(
        weights=(np.hstack([W1, np.zeros((p.d, extra))]), np.vstack([W2, np.zeros((extra, p.K))]))
    )
