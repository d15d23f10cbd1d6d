"""The smallest width of an optimal network, proven where it can be (issue 17, "m*").

``Optimum.m_star`` is the width of the optimal network FOUND. This module proves, for two-layer
ReLU networks without biases, either that every optimal network has exactly ``M`` neurons (after
merging neurons of equal direction; then ``M`` is the smallest optimal width, and every
narrower width has ``P*_m > P*`` strictly), or a lower bound ``L`` on the width of every optimal
network (``P*_m > P*`` for ``m < L``), or it builds a narrower network from dependent neurons
and returns it. Where a margin below fails it says so and claims nothing.

**The convex program (THEORY §10, K ≥ 1).** Rescaling each neuron, ``P* = min_Z ½‖Z − Y‖² +
βγ(Z)`` with ``γ`` the gauge of the atoms ``a = h αᵀ``, ``h ∈ F = {(Xu)_+ : ‖u‖ ≤ 1}``,
``‖α‖ ≤ 1`` (K = 1: ``α = ±1``); a network with unit directions ``u_j`` and outputs ``a_j`` is
``Z = Σ_j t_j (Xu_j)_+ α_jᵀ``, ``t_j = ‖u_j‖‖a_j‖`` after balancing, with regulariser ``βΣt_j``.
The objective is 1-strongly convex in Z, so ``Z*`` and ``Λ* = Y − Z*`` are unique; optimality is
``⟨Λ*, Z*⟩ = βγ(Z*)`` and ``c(Λ*) = max_a ⟨Λ*, a⟩ ≤ β``. A network is optimal iff its output is
``Z*`` and ``Σt_j = γ(Z*)``, so ``Σ t_j⟨Λ*, a_j⟩ = βΣt_j`` with every term ``≤ β t_j``: EVERY
neuron of EVERY optimal network is an atom of the exposed face ``A* = {a : ⟨Λ*, a⟩ = β}``
(and has no component in X's null space). Conversely every ``t ≥ 0`` with ``Σ t_j a_j = Z*``,
``a_j ∈ A*``, is an optimal network (``Σt_j = ⟨Λ*, Z*⟩/β = γ(Z*)``). For fixed width m the
objective is coercive, so ``P*_m`` is attained: ``P*_m = P*`` iff some width-m network is
optimal. Hence the smallest optimal width is the smallest support of such a ``t``.

**Where the atoms are.** Both cases below give finitely many "clusters" ``k`` with a
representative atom ``â_k`` and a radius ``R_k`` such that every atom of ``A*`` lies within
``R_k`` of the ``â_k`` of exactly one cluster, and (where ``unique``) the cluster holds at most
one direction of ``A*``. The inputs: a network with objective ``U ≥ P*`` and output ``Ẑ``; its
residual scaled by ``β/c̄`` is dual feasible, ``Λ_f``, with value ``D_f ≤ P*``. The dual is
1-strongly concave and the primal 1-strongly convex in Z, so
``‖Λ_f − Λ*‖ ≤ ε`` and ``‖Ẑ − Z*‖ ≤ ε`` with ``ε = sqrt(2(U − D_f))``.

- **Scalar (K = 1), raw data within the enumeration cap** (:func:`_scalar_clusters`). In each
  cell D of the arrangement (and sign s) ``sλᵀ(Xu)_+ = gᵀu``, ``g = sXᵀDλ``, is linear; its
  maximum over the cell's cone ∩ ball is at the unique point ``p/‖p‖``, ``p = Π_cone(g)``
  (the ball is strictly convex). Projection onto a convex cone is 1-Lipschitz, so the exact
  maximiser of a cell whose exact value is β is within ``ρ = 2‖X‖₂ε/β`` of the one computed at
  ``Λ_f`` (``‖p/‖p‖ − q/‖q‖‖ ≤ 2‖p − q‖/‖p‖``), and only cells whose value at ``Λ_f`` is at least
  ``β − ‖X‖₂ε`` can hold one. Cells whose maximisers lie within ``2ρ`` are one cluster (ball of
  radius ``r`` around the best one). Uniqueness: on that ball every row whose hyperplane
  misses the ball contributes a linear term; if every row whose hyperplane meets it has
  ``sλ*_i < 0`` (checked as ``sλ_f,i < −ε``), ``sλ*ᵀ(Xu)_+`` is concave there, its
  maximisers of value β within ``‖u‖ ≤ 1`` form a convex set on the unit sphere
  (``sλ*ᵀ(Xu)_+ ≤ β‖u‖``): one point. ``R = ‖X‖₂ r``. No biases: with a bias P* may be an
  infimum no finite network attains (THEORY §5), and the argument above needs attainment.
- **Whitened data (XXᵀ = I), any K ≤ 3** (:func:`_whitened_clusters`). Then ``F`` is the
  non-negative part of the unit ball, ``⟨Λ, hαᵀ⟩ ≤ ‖(Λα)_+‖`` with equality at
  ``h = (Λα)_+/‖(Λα)_+‖``, so ``A*`` is the unit ``α`` with ``ψ*(α) = ‖(Λ*α)_+‖ = β`` (and their
  ``h``). ``|ψ* − ψ_f| ≤ ε``, so every such α has ``ψ_f(α) ≥ β − ε``; branch and bound on the
  sphere (``ψ_f`` convex: on a spherical simplex ``ψ_f ≤ max_vertex ψ_f / dist(0, flat)``) covers
  that set by small simplices, and their connected pieces are the clusters. In a cluster whose
  ball no plane ``λ_iᵀα = 0`` can meet (``|λ_f,iᵀα̂| > ‖λ_f,i‖r + ε``), ``ψ*² = αᵀQ*α`` with
  ``Q* = Λ*_SᵀΛ*_S``, and a maximiser of ψ* there is a local maximum of that Rayleigh quotient:
  a top eigenvector of ``Q*``. With ``‖Q* − Q_f‖ ≤ ΔQ = ε(2‖Λ_f,S‖ + ε)`` and the eigengap of
  ``Q_f`` above ``2ΔQ`` the top eigenvalue of ``Q*`` is simple (one direction: unique) and
  within ``ρ_α = 2√2·ΔQ/gap`` of ``Q_f``'s (Davis–Kahan, Yu–Wang–Samworth form);
  ``R = 2(ε + ‖Λ_f‖₂ρ_α)/β + ρ_α``. K = 1 is the same with ``α = ±1`` (no branching).

**The count (:func:`_count`).** For any optimal network let ``T_k`` be the sum of the ``t_j``
of its neurons in cluster k. Then ``Z* = Σ_k T_k â_k + E`` with ``‖E‖ ≤ G·max R_k``,
``G = γ(Z*) = ⟨Λ*, Z*⟩/β`` (bounded from ``Λ_f, Ẑ, ε``). With ``C = [â_k]`` of smallest singular
value ``σ > 0`` and ``T̂`` the least-squares fit of ``Ẑ`` (residual ρ_LS),
``‖T − T̂‖ ≤ η = (ε + G·max R_k + ρ_LS)/σ``, or (when ``σ > ‖R‖``, using
``Σ_k T_kR_k ≤ Σ_k T̂_k⁺R_k + ‖R‖‖T − T̂‖``) ``η = (ε + Σ_k T̂_k⁺R_k + ρ_LS)/(σ − ‖R‖)``,
whichever is smaller. Every cluster with ``T̂_k > η`` is used by every
optimal network: ``L = #{T̂_k > η}`` is a proven lower bound on every optimal width. If every
cluster has ``T̂_k > η`` and is ``unique``, every optimal network has exactly one direction in
each cluster: the smallest optimal width is ``M`` = the number of clusters, proven. Otherwise
(a cluster with ``|T̂_k| ≤ η``, a non-unique cluster, ``σ`` not above 0): not proven.

**An arc of optimal atoms (:func:`_degenerate_subspace`, :func:`_count_degenerate`).** Where a
whitened cluster's top eigenvalue is double, its optimal atoms fill an arc (the optimal network
is not unique there); every one lies within R of ``L(ccᵀ) = Λ_f,S E_f ccᵀ E_fᵀ/β`` (unit ``c``),
a 3-dimensional space V. One such cluster is allowed: the count runs on everything projected
off V (the arc's error: R times its mass, itself bounded by ``G − Σ_k T_k``), the arc adds one
neuron if the fit leaves it mass and two if that mass ``M = Σ t_j c_jc_jᵀ`` is robustly of rank
2. A lower bound only, never a width.

**Dependent neurons (:func:`_caratheodory_narrower`).** When the found network's own atoms are
linearly dependent, moving along a null vector in the direction that does not raise the
regulariser keeps the output and zeroes a neuron (Carathéodory,
:func:`solvers.vector_relu.drop_dependent`, which the vector solver also applies to the network
it reports; a basic solution with at most rank-many atoms, not a minimum-support search); the
narrower network is polished locally and returned when its objective is at most the optimum's
(to ``NARROW_RTOL``): then the narrower trial gets P*, CERTIFIED by the optimum's own lower
bound.

Before the proof the network is refined so that ``ε`` is small: on whitened data Newton's
method on ``(H, A)`` restricted to the support of ``H = (XW₁)_+`` (an active set; kept only if
the certified gap drops), :func:`_refine_whitened`. Every other problem: None.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from solvers.detect import is_whitened
from solvers.problem import Network, Optimum, Problem, forward, objective
from solvers.scalar import scaled_dual_value
from solvers.vector_relu import (
    DEPENDENT_RTOL,
    SAFETY,
    _lbfgs,
    _lbfgs_whitened,
    best_at_width,
    drop_dependent,
    whitened_vector_norm,
)

__all__ = ["MinWidth", "min_width"]

GAP_ROUNDOFF = 1e-14  # × |U|: added to U − D_f before ε = sqrt(2 gap) (both sums are round-off)
CK_ROUNDOFF = 1e-14  # relative allowance on the whitened c_K (eigh of K×K forms: ~K·u·‖Q‖)
# added to every radius: a cell maximiser / eigenvector is computed, not exact (cell membership
# is accepted within solvers.arrangement.FEAS_RTOL = 1e-9, so a maximiser may be off by ~that)
PROJ_ROUNDOFF = 1e-8
THETA_MIN = 1e-3  # radians: sphere branch and bound refines simplices down to this diameter
MAX_SIMPLICES = 100_000  # ... and gives up (not proven) when more than this many survive a level
SUPPORT_RTOL = 1e-6  # an entry of h_j above this × max_i h_ij is on the support Newton keeps
KKT_RTOL = 1e-12  # × ‖Y‖: an inactive entry with gradient below −this joins the support
NEWTON_ROUNDOFF = 1e-15  # × |f|: a Newton step may raise f by this (round-off) and be taken
NEWTON_ITERS = 50  # Newton steps per active set (quadratic convergence needs a handful)
ACTIVE_SETS = 8  # active-set rounds of the refinement
NARROW_RTOL = 1e-9  # a narrower network is kept if its objective ≤ the optimum's (1 + this)
NO_ATOM = "no atom comes within the dual ball's reach of β: the zero network is the only optimum"
MAX_CLUSTERS = 256
DEGENERATE_ROUNDS = 4  # alternations of η and the arc's mass bound (each one valid)  # more clusters than this: not proven (the count would be meaningless anyway)


@dataclasses.dataclass(frozen=True)
class MinWidth:
    """What is proven about the smallest optimal width.

    - ``width``: the smallest optimal width (every optimal network has exactly this many
      neurons after merging equal directions), proven; None when not proven.
    - ``lower``: a proven lower bound on the width of every optimal network (0: none); for a
      width ``m < lower``, ``P*_m > P*`` strictly.
    - ``network``: a network narrower than the optimum's m* whose objective is within the
      optimum's certified tolerance of its lower bound (None when none was built).
    - ``clusters``, ``eps``, ``eta``: the proof's sizes (number of atom clusters, ``‖Λ_f − Λ*‖``
      bound, coefficient uncertainty); ``reason``: why not proven, or what was proven.
    """

    width: int | None
    lower: int
    network: Network | None
    clusters: int
    eps: float
    eta: float
    reason: str


def min_width(p: Problem, opt: Optimum) -> MinWidth | None:
    """The smallest optimal width of ``p`` from its certified optimum ``opt`` (module doc).

    Covered: depth 2, ReLU, no bias, no batch norm, and either K = 1 on data whose arrangement
    is enumerated (``solvers.arrangement.MAX_PATTERNS``) or whitened data with K ≤ 3; ``opt``
    EXACT or CERTIFIED. None for everything else.
    """
    if p.depth != 2 or p.activation != "relu" or p.bias or p.batchnorm or not opt.is_exact:
        return None
    if opt.network is None:
        return None
    net = _live(p, opt.network)
    whitened = is_whitened(p.X, exact=True)
    if whitened and p.K <= 3:
        net = _refine_whitened(p, net)
    elif p.K != 1:
        return None
    lam_f, eps, Zhat, U = _dual_ball(p, net, whitened)
    if lam_f is None:
        return None
    narrow = _caratheodory_narrower(p, net, opt, whitened)
    if whitened:
        found = _whitened_clusters(lam_f, p.beta, eps)
    else:
        found = _scalar_clusters(p.X, lam_f[:, 0], p.beta, eps)
    if found == NO_ATOM:  # A* is empty: Z* = 0 is the only optimal output, the zero network
        zero = Network(weights=(np.zeros((p.d, 1)), np.zeros((1, p.K))))
        zero = _at_optimum(dataclasses.replace(p, width=1), zero, opt) if opt.m_star else None
        return MinWidth(0, 0, zero, 0, eps, 0.0, "proven: " + NO_ATOM)
    if isinstance(found, str):
        return MinWidth(None, 0, narrow, 0, eps, np.inf, found)
    if len(found) == 4:
        C, R, _, deg = found
        return _count_degenerate(C, R, deg, Zhat.ravel(), lam_f, eps, p.beta, narrow)
    C, R, unique = found
    out = _count(C, R, unique, Zhat.ravel(), lam_f, eps, p.beta, narrow)
    if out.width is not None and out.width < (opt.m_star or 0):  # the found net repeats atoms
        out = dataclasses.replace(out, network=_refit_narrower(p, net, opt, out.width))
    return out


# ------------------------------------------------------------------ the dual point
def _live(p: Problem, net: Network) -> Network:
    """The network's neurons with non-zero input and output weights; ``W2`` as ``(m, K)``."""
    W1 = np.asarray(net.weights[0], dtype=np.float64).reshape(p.d, -1)
    W2 = np.asarray(net.weights[1], dtype=np.float64).reshape(W1.shape[1], -1)
    keep = (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)
    return Network(weights=(W1[:, keep], W2[keep]))


def _dual_norm(p: Problem, Lam: np.ndarray, whitened: bool) -> float | None:
    """An upper bound ``c̄ ≥ c(Λ)``, exact up to round-off, or None where not computable."""
    if whitened:
        c = whitened_vector_norm(p.X, Lam)  # its upper end carries SAFETY; ours CK_ROUNDOFF
        return None if c is None else float(c.upper) / (1.0 + SAFETY) * (1.0 + CK_ROUNDOFF)
    from solvers.arrangement import dual_norm

    cbar, exact = dual_norm(p.X, Lam[:, 0])
    return float(cbar) if exact else None


def _dual_ball(
    p: Problem, net: Network, whitened: bool
) -> tuple[np.ndarray | None, float, np.ndarray, float]:
    """``(Λ_f, ε, Ẑ, U)``: the residual scaled into the dual feasible set, the radius of the ball
    around it that holds ``Λ*`` (and around ``Ẑ`` that holds ``Z*``), the output, the objective."""
    Zhat = forward(p, net)
    U = float(objective(p, net))
    Lam = p.Y - Zhat
    cbar = _dual_norm(p, Lam, whitened)
    if cbar is None:
        return None, np.inf, Zhat, U
    a, b = float(np.sum(Lam * p.Y)), float(np.sum(Lam * Lam))
    amax = np.inf if cbar <= 0 else p.beta / cbar
    alpha = float(np.clip(a / b, 0.0, amax)) if b > 0 else 0.0
    D = float(scaled_dual_value(a, b, amax))
    gap = max(U - D, 0.0) + GAP_ROUNDOFF * abs(U)
    return alpha * Lam, float(np.sqrt(2.0 * gap)), Zhat, U


# ------------------------------------------------------------------ refinement (whitened)
def _refine_whitened(p: Problem, net: Network) -> Network:
    """Newton's method on ``½‖HA − Y‖² + (β/2)(‖H‖² + ‖A‖²)`` over the entries of ``H`` on an
    active set (``H = (XW₁)_+``, whitened: ``W₁ = XᵀH`` has the same objective), entries whose
    gradient is negative joining it; the result is kept only if its certified gap is smaller."""
    W1, A = net.weights
    H = np.maximum(p.X @ W1, 0.0)
    if H.shape[1] == 0:
        return net
    Y, beta = p.Y, p.beta
    S = H > SUPPORT_RTOL * np.max(H, axis=0, keepdims=True)
    H = np.where(S, H, 0.0)
    scale = max(float(np.linalg.norm(Y)), 1e-300)
    for _ in range(ACTIVE_SETS):
        H, A = _newton(H, A, S, Y, beta)
        GH = (H @ A - Y) @ A.T + beta * H
        add = ~S & (GH < -KKT_RTOL * scale)
        if not add.any():
            break
        S = S | add
    out = Network(weights=(p.X.T @ H, A))
    if not np.all(np.isfinite(out.weights[0])) or not np.all(np.isfinite(A)):
        return net
    before = _dual_ball(p, net, True)[1]
    after = _dual_ball(p, out, True)[1]
    return out if after < before else net


def _newton(
    H: np.ndarray, A: np.ndarray, S: np.ndarray, Y: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton steps on the entries ``H[S]`` and ``A`` (Levenberg shift, backtracking,
    a ratio test keeping ``H ≥ 0``: an entry the step drives to 0 leaves ``S``)."""
    n, m = H.shape
    K = A.shape[1]
    rows, cols = np.nonzero(S)
    nh = rows.size
    npar = nh + m * K

    def value(H: np.ndarray, A: np.ndarray) -> float:
        R = H @ A - Y
        return 0.5 * float(np.sum(R * R)) + 0.5 * beta * float(np.sum(H * H) + np.sum(A * A))

    for _ in range(NEWTON_ITERS):
        R = H @ A - Y
        g = np.concatenate([(R @ A.T + beta * H)[rows, cols], (H.T @ R + beta * A).ravel()])
        if not np.all(np.isfinite(g)) or float(np.linalg.norm(g)) <= 1e-15 * max(1.0, beta):
            break
        J = np.zeros((n * K, npar))  # Jacobian of vec(HA) (row-major)
        for e, (i, j) in enumerate(zip(rows, cols, strict=True)):
            J[i * K : (i + 1) * K, e] = A[j]
        for j in range(m):
            for k in range(K):
                J[np.arange(n) * K + k, nh + j * K + k] = H[:, j]
        Hs = J.T @ J + beta * np.eye(npar)
        for e, (i, j) in enumerate(zip(rows, cols, strict=True)):  # ∂²/∂H_ij∂A_jk = R_ik
            Hs[e, nh + j * K : nh + (j + 1) * K] += R[i]
            Hs[nh + j * K : nh + (j + 1) * K, e] += R[i]
        mu = 0.0
        while True:  # Levenberg shift until positive definite
            try:
                np.linalg.cholesky(Hs + mu * np.eye(npar))
                break
            except np.linalg.LinAlgError:
                mu = max(2.0 * mu, 1e-8 * float(np.trace(Hs)) / npar)
        step = np.linalg.solve(Hs + mu * np.eye(npar), -g)
        down = step[:nh] < 0
        ratio = -H[rows, cols][down] / step[:nh][down]
        t_wall = float(np.min(ratio)) if ratio.size else np.inf
        f0, t = value(H, A), min(1.0, t_wall)
        while t > 1e-12:  # a round-off-sized rise is accepted: near the optimum f is flat
            H2 = H.copy()
            H2[rows, cols] = np.maximum(H2[rows, cols] + t * step[:nh], 0.0)
            A2 = A + t * step[nh:].reshape(m, K)
            if value(H2, A2) <= f0 + NEWTON_ROUNDOFF * abs(f0):
                break
            t *= 0.5
        else:
            break
        H, A = H2, A2
        if t == t_wall:  # the blocking entry reached 0: it leaves the support (active set)
            e = int(np.flatnonzero(down)[np.argmin(ratio)])
            S = S.copy()
            S[rows[e], cols[e]] = False
            H[rows[e], cols[e]] = 0.0
            return _newton(H, A, S, Y, beta)
    return H, A


# ------------------------------------------------------------------ clusters: scalar, raw data
def _scalar_clusters(
    X: np.ndarray, lam: np.ndarray, beta: float, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(C, R, unique)`` for K = 1 without bias (module doc), or why not."""
    from solvers.arrangement import (
        MAX_PATTERNS,
        _active_set_values,
        _cell_values,
        _cone_max,
        cached_geometry,
    )
    from solvers.problem import NotCovered

    try:
        geo = cached_geometry(np.asarray(X, dtype=np.float64), False, MAX_PATTERNS)
    except NotCovered as exc:
        return f"not proven: {exc}"
    if not geo.exact:
        return "not proven: the arrangement is beyond the enumeration cap (cells not all known)"
    Xr = geo.Xt
    xnorm = float(np.linalg.norm(Xr, 2))
    thr = beta - xnorm * eps
    rho = 2.0 * xnorm * eps / beta + PROJ_ROUNDOFF
    D = geo.patterns
    G = D.astype(np.float64) @ (lam[:, None] * Xr)
    val, ok, _ = _cell_values(geo, lam)
    fval, fok, Wx = _active_set_values(geo, D, G)
    ub = np.where(ok, val, fval)
    dirs, signs, values = [], [], []
    for i, si in np.argwhere(ub >= thr):
        sg = 1.0 - 2.0 * si
        if ok[i, si]:
            w = sg * G[i]
        elif fok[i, si]:
            w = Wx[i, si]
        else:
            v, w = _cone_max(geo, D[i], sg * G[i])
            w = w * v  # the projection Π_cone(g): its norm is the cell's value
        v = float(np.linalg.norm(w))
        if v >= thr and v > 0:
            dirs.append(w / np.linalg.norm(w))
            signs.append(sg)
            values.append(v)
    if not dirs:
        return NO_ATOM
    Zd, sg, vals = np.array(dirs), np.array(signs), np.array(values)
    labels = _link(Zd, sg, 2.0 * rho)
    cols, radii, unique = [], [], []
    xn = np.linalg.norm(Xr, axis=1)
    for k in range(int(labels.max()) + 1):
        mem = np.flatnonzero(labels == k)
        c = mem[np.argmax(vals[mem])]
        z, s = Zd[c], sg[c]
        r = float(np.max(np.linalg.norm(Zd[mem] - z, axis=1))) + rho
        hit = np.abs(Xr @ z) <= xn * r  # hyperplanes that may cross the ball
        unique.append(bool(np.all(s * lam[hit] < -eps)))
        cols.append(s * np.maximum(Xr @ z, 0.0))
        radii.append(xnorm * r)
    return np.array(cols).T, np.array(radii), np.array(unique)


def _link(P: np.ndarray, group: np.ndarray, tol: float) -> np.ndarray:
    """Single-linkage labels of the rows of ``P`` within ``tol`` of each other (same group)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(P).query_pairs(tol, output_type="ndarray")
    if pairs.size:
        pairs = pairs[group[pairs[:, 0]] == group[pairs[:, 1]]]
    n = P.shape[0]
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(adj, directed=False)[1]


# ------------------------------------------------------------------ clusters: whitened, K ≤ 3
def _psi(Lam: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``‖(Λα)_+‖`` for each row α of ``V`` (any leading shape)."""
    return np.linalg.norm(np.maximum(V @ Lam.T, 0.0), axis=-1)


def _near_max(Lam: np.ndarray, thr: float) -> np.ndarray | str:
    """Vertices (rows) of small spherical simplices covering ``{α : ‖α‖ = 1, ψ(α) ≥ thr}``
    (branch and bound, module doc), or why not."""
    K = Lam.shape[1]
    if K == 1:
        V = np.array([[1.0], [-1.0]])
        return V[_psi(Lam, V) >= thr]
    simp = []
    for signs in np.array(np.meshgrid(*[[1.0, -1.0]] * K)).T.reshape(-1, K):
        simp.append(np.diag(signs))
    S = np.array(simp)  # (N, K, K): rows are vertices
    done = []
    while S.shape[0]:
        if S.shape[0] > MAX_SIMPLICES:
            return f"not proven: more than {MAX_SIMPLICES} simplices near the maximum"
        vals = _psi(Lam, S).max(axis=1)
        try:
            nvec = np.linalg.solve(S, np.ones((*S.shape[:2], 1)))[..., 0]
            dist = 1.0 / np.linalg.norm(nvec, axis=1)
        except np.linalg.LinAlgError:
            return "not proven: a degenerate simplex in the branch and bound"
        S = S[vals / dist * (1.0 + 1e-12) >= thr]
        i, j = np.triu_indices(K, 1)
        edges = np.linalg.norm(S[:, i] - S[:, j], axis=2)  # (N, E)
        small = edges.max(axis=1) <= THETA_MIN
        done.append(S[small])
        S = S[~small]
        e = np.argmax(edges[~small], axis=1)
        a, b = i[e], j[e]
        rows = np.arange(S.shape[0])
        mid = S[rows, a] + S[rows, b]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        S1, S2 = S.copy(), S.copy()
        S1[rows, a] = mid
        S2[rows, b] = mid
        S = np.concatenate([S1, S2])
    return np.concatenate([s.reshape(-1, K) for s in done]) if done else np.zeros((0, K))


MAX_AMBIGUOUS = 6  # rows whose plane may cross a cluster: 2^this active sets are examined


def _eigen_candidates(
    Lam: np.ndarray, mem: np.ndarray, a0: np.ndarray, beta: float, eps: float
) -> tuple[np.ndarray | None, float, bool]:
    """``(v, r, unique)``: every α of ``A*`` in the cluster covered by the unit vectors ``mem``
    lies within ``r`` of ``v``; ``unique``: at most one does. None when no bound holds.

    ``ψ*²(α) = Σ_i (λ*_iᵀα)_+²`` is C¹ with gradient ``2Q*_{S(α)}α``, ``S(α) = {λ*_iᵀα > 0}``,
    so at a maximiser on the sphere ``Q*_{S}α* = β²α*`` (Lagrange). In the cluster's ball
    (radius ``r0`` around ``a0``) rows with ``|λ_f,iᵀa0| > ‖λ_f,i‖r0 + ε`` keep their sign for
    Λ*; the others (at most ``MAX_AMBIGUOUS``) give the candidate sets ``S = S0 ∪ B'``. For each,
    an eigenvalue of ``Q_f,S`` within ``ΔQ`` of β² (Weyl) whose eigenvalue is isolated by more
    than ``2ΔQ`` localises the eigenvector of ``Q*_S`` within ``2√2ΔQ/gap`` (Davis–Kahan);
    a non-isolated one fails. The candidates whose exact eigenvector can lie in the ball (within
    ``r0`` + that radius of ``a0``) give ``v`` (the one of largest ``ψ_f``) and ``r``;
    ``unique`` when exactly one candidate exists."""
    import itertools

    rn = np.linalg.norm(Lam, axis=1)
    r0 = float(np.max(np.linalg.norm(mem - a0, axis=1))) + THETA_MIN
    side = Lam @ a0
    amb = np.flatnonzero(np.abs(side) <= rn * r0 + eps)
    if amb.size > MAX_AMBIGUOUS or r0 >= 1.0:
        return None, np.inf, False
    base = side > 0
    base[amb] = False
    cands: list[tuple[np.ndarray, float]] = []
    for k in range(amb.size + 1):
        for extra in itertools.combinations(amb, k):
            S = base.copy()
            S[list(extra)] = True
            LS = Lam[S]
            if LS.shape[0] == 0:
                continue
            w, E = np.linalg.eigh(LS.T @ LS)
            dQ = eps * (2.0 * float(np.linalg.norm(LS, 2)) + eps) + PROJ_ROUNDOFF * beta**2
            for j in np.flatnonzero(np.abs(w - beta**2) <= dQ):
                others = np.delete(w, j)
                gap = float(np.min(np.abs(others - w[j]))) if others.size else np.inf
                rho = 2.0 * np.sqrt(2.0) * dQ / gap + PROJ_ROUNDOFF if gap > 0 else np.inf
                for sg in (1.0, -1.0):
                    e = sg * E[:, j]
                    if np.linalg.norm(e - a0) > r0 + rho:
                        continue  # its exact eigenvector cannot lie in the cluster's ball
                    if gap <= 2.0 * dQ:
                        return None, np.inf, False
                    cands.append((e, rho))
    if not cands:
        return None, np.inf, False
    v = max(cands, key=lambda c: float(_psi(Lam, c[0][None])[0]))[0]  # the network's neuron
    r = max(float(np.linalg.norm(e - v)) + rho for e, rho in cands)
    return v, r, len(cands) == 1


def _whitened_clusters(
    Lam: np.ndarray, beta: float, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(C, R, unique)`` on whitened data (module doc), or why not."""
    n, K = Lam.shape
    V = _near_max(Lam, beta - eps)
    if isinstance(V, str):
        return V
    if V.shape[0] == 0:
        return NO_ATOM
    labels = _link(V, np.zeros(V.shape[0]), 2.0 * THETA_MIN)
    if labels.max() + 1 > MAX_CLUSTERS:
        return f"not proven: {labels.max() + 1} clusters of near-optimal atoms"
    lam_norm = float(np.linalg.norm(Lam, 2))
    cols, radii, unique = [], [], []
    deg: list | None = []
    for k in range(int(labels.max()) + 1):
        mem = V[labels == k]
        a0 = mem[np.argmax(_psi(Lam, mem))]
        if K == 1:
            h = np.maximum(Lam @ a0, 0.0)
            cols.append(np.outer(h / np.linalg.norm(h), a0).ravel())
            radii.append(2.0 * eps / beta + PROJ_ROUNDOFF)
            unique.append(True)
            continue
        v, r_a, one = _eigen_candidates(Lam, mem, a0, beta, eps)
        if v is None and deg is not None and not deg:
            deg = _degenerate_subspace(Lam, mem, beta, eps)  # one arc of optimal atoms, at most
            if deg:
                continue
        if v is None:
            cols.append(np.zeros(n * K))
            radii.append(np.inf)
            unique.append(False)
            continue
        h = np.maximum(Lam @ v, 0.0)
        cols.append(np.outer(h / np.linalg.norm(h), v).ravel())
        radii.append(2.0 * (eps + lam_norm * r_a) / beta + r_a)
        unique.append(one)
    if deg:
        return np.array(cols).reshape(-1, n * K).T, np.array(radii), np.array(unique), deg
    return np.array(cols).T, np.array(radii), np.array(unique)


def _degenerate_subspace(
    Lam: np.ndarray, mem: np.ndarray, beta: float, eps: float
) -> list[tuple[np.ndarray, float]] | None:
    """``[(B, R)]`` for a cluster whose near-maximal set is an arc: every optimal atom in it
    lies within ``R`` of the 3-dimensional space spanned by the columns of ``B``; None if not.

    Every row's sign at each cover vertex is settled for Λ* (``|λ_f,iᵀv| > ‖λ_f,i‖θ + ε``) and
    the same at all of them: S is constant on the cluster, so an optimal ``α*`` there has
    ``Q*_Sα* = β²α*`` (Lagrange). If the two top eigenvalues of ``Q_f,S`` are within ``ΔQ`` of β²
    and the rest more than ``2ΔQ`` below, ``α*`` lies in the top-2 eigenspace ``E*`` of ``Q*``,
    within ``δ = 2ΔQ/gap`` (sin Θ, Davis–Kahan) of ``E_f``'s; with ``α_f`` its unit projection
    (``‖α* − α_f‖ ≤ √2δ``) the atom ``Λ*_Sα*α*ᵀ/β`` is within ``R = (ε + 2√2‖Λ_f‖δ)/β`` of
    ``Λ_f,Sα_fα_fᵀ/β ∈ V = {Λ_f,S E_f M E_fᵀ : M symmetric 2×2}``. Rows whose sign the cover
    does not settle (near the arc's ends, at most ``MAX_AMBIGUOUS``) are in S; each smaller set
    ``S'`` is examined like :func:`_eigen_candidates`: an isolated eigenvalue of ``Q_f,S'`` near
    β² gives one possible atom whose distance from the arc-form atom ``L(ccᵀ)`` nearest in form
    (``c`` its normalised ``E_f`` coordinates; plus its Davis–Kahan radius) enlarges R: every
    optimal atom of the cluster is within R of some ``L(ccᵀ)``, ``c`` unit (so in V, and of
    rank one in M). A second double eigenvalue fails."""
    n, K = Lam.shape
    if K < 2:
        return None
    import itertools

    rn = np.linalg.norm(Lam, axis=1)
    side = mem @ Lam.T
    margin = rn * THETA_MIN + eps
    pos, neg = side > margin, side < -margin
    amb = np.flatnonzero(~(pos.all(axis=0) | neg.all(axis=0)))
    if amb.size > MAX_AMBIGUOUS:
        return None
    S = pos.all(axis=0) | np.isin(np.arange(n), amb)  # the largest active set the arc allows
    LS = Lam[S]
    w, E = np.linalg.eigh(LS.T @ LS)
    dQ = eps * (2.0 * float(np.linalg.norm(LS, 2)) + eps) + PROJ_ROUNDOFF * beta**2
    if abs(w[-1] - beta**2) > dQ or abs(w[-2] - beta**2) > dQ:
        return None
    gap = float(w[-2] - w[-3]) if K > 2 else np.inf
    if gap <= 2.0 * dQ:
        return None
    delta = 2.0 * dQ / gap + PROJ_ROUNDOFF
    Ef = E[:, -2:]
    Lpad = Lam * S[:, None]
    sym = [np.outer(Ef[:, 0], Ef[:, 0]), np.outer(Ef[:, 1], Ef[:, 1])]
    sym.append((np.outer(Ef[:, 0], Ef[:, 1]) + np.outer(Ef[:, 1], Ef[:, 0])) / np.sqrt(2.0))
    Lmat = np.stack([(Lpad @ M).ravel() / beta for M in sym], axis=1)  # sym 2×2 ↦ V (nK × 3)
    B = np.linalg.qr(Lmat)[0]
    lam_norm = float(np.linalg.norm(Lam, 2))
    R = (eps + 2.0 * np.sqrt(2.0) * lam_norm * delta) / beta
    for k in range(1, amb.size + 1):  # smaller active sets (rows off near the arc's ends)
        for off in itertools.combinations(amb, k):
            S2 = S.copy()
            S2[list(off)] = False
            L2 = Lam[S2]
            w2, E2 = np.linalg.eigh(L2.T @ L2)
            d2 = eps * (2.0 * float(np.linalg.norm(L2, 2)) + eps) + PROJ_ROUNDOFF * beta**2
            for j in np.flatnonzero(np.abs(w2 - beta**2) <= d2):
                others = np.delete(w2, j)
                g2 = float(np.min(np.abs(others - w2[j]))) if others.size else np.inf
                if g2 <= 2.0 * d2:
                    return None  # a second plane of optimal atoms: not handled
                rho = np.sqrt(2.0) * 2.0 * d2 / g2 + PROJ_ROUNDOFF  # ‖α* − ±e‖ (Davis–Kahan)
                for sg in (1.0, -1.0):
                    e = sg * E2[:, j]
                    if np.min(np.linalg.norm(mem - e, axis=1)) > THETA_MIN + rho:
                        continue  # not in this cluster
                    a = (Lam * S2[:, None] @ np.outer(e, e)).ravel() / beta
                    c = Ef.T @ e
                    if np.linalg.norm(c) == 0:
                        return None
                    c = c / np.linalg.norm(c)  # the nearest arc-form atom L(ccᵀ) (rank one)
                    near = Lmat @ np.array([c[0] ** 2, c[1] ** 2, np.sqrt(2.0) * c[0] * c[1]])
                    off_v = float(np.linalg.norm(a - near))
                    R = max(R, off_v + (eps + 2.0 * lam_norm * rho) / beta)
    return [(B, R, Lmat)]


def _count_degenerate(
    C: np.ndarray,
    R: np.ndarray,
    deg: list[tuple[np.ndarray, float]],
    zhat: np.ndarray,
    Lam: np.ndarray,
    eps: float,
    beta: float,
    narrow: Network | None,
) -> MinWidth:
    """A lower bound with one arc cluster (:func:`_degenerate_subspace`): the count of
    :func:`_count` on everything projected off its space ``V`` (its atoms' error ``R_d`` times
    its mass, at most ``G`` less the other clusters' proven mass), plus one if the arc must carry mass (the fit of ``Ẑ`` by the other clusters
    leaves more than every error allows), plus one more if what it carries is robustly of rank
    2 (each neuron on the arc adds a rank-one ``t cᵀc``). Never a width: the arc may hold
    several directions."""
    ((B, Rd, Lmat),) = deg
    M = C.shape[1] + 1
    Cp = C - B @ (B.T @ C)
    zp = zhat - B @ (B.T @ zhat)
    lam = Lam.ravel()
    G = float(lam @ zhat) + eps * (float(np.linalg.norm(zhat)) + eps) + eps * np.linalg.norm(lam)
    G /= beta
    fail = MinWidth(
        None,
        0,
        narrow,
        M,
        eps,
        np.inf,
        "not proven: an arc of optimal atoms (a "
        "double eigenvalue) and the other clusters do not separate from it",
    )
    if C.shape[1] == 0 or not np.all(np.isfinite(R)) or C.shape[1] > Cp.shape[0]:
        return fail
    sv = np.linalg.svd(Cp, compute_uv=False)
    sigma, rn = float(sv[-1]), float(np.linalg.norm(R))
    if sigma <= DEPENDENT_RTOL * float(sv[0]) or sigma <= rn:
        return fail
    T, *_ = np.linalg.lstsq(Cp, zp, rcond=None)
    rho_ls = float(np.linalg.norm(Cp @ T - zp))
    # the arc's mass T_d = γ(Z*) − Σ_k T_k ≤ G − Σ_k T̂_k + √M·η: each valid η gives a valid
    # bound on T_d, and that a smaller valid η (a few rounds)
    mass = G
    for _ in range(DEGENERATE_ROUNDS):
        eta = (eps + float(np.maximum(T, 0.0) @ R) + mass * Rd + rho_ls) / (sigma - rn)
        mass = min(mass, G - float(np.sum(T)) + np.sqrt(T.size) * eta)
    lower = int(np.sum(T > eta))
    res = zhat - C @ T  # what the arc carries, D*, up to err
    err = eps + float(np.linalg.norm(C, 2)) * eta + float(np.maximum(T, 0.0) @ R) + rn * eta
    if float(np.linalg.norm(res)) > err:  # D* ≠ 0: at least one neuron on the arc
        lower += 1
        # D* is within G·R_d of L(M'), M' = Σ t_j c_jc_jᵀ (c_j unit in E_f's coordinates): one
        # neuron per rank of M'; ‖M̂ − M'‖ ≤ 2(err + G·R_d)/σ_min(L) for the least-squares M̂
        m, *_ = np.linalg.lstsq(Lmat, res, rcond=None)
        Mhat = np.array([[m[0], m[2] / np.sqrt(2.0)], [m[2] / np.sqrt(2.0), m[1]]])
        s_l = float(np.linalg.svd(Lmat, compute_uv=False)[-1])
        if s_l > 0 and np.linalg.eigvalsh(Mhat)[0] > 2.0 * (err + mass * Rd) / s_l:
            lower += 1
    return MinWidth(
        None, lower, narrow, M, eps, eta,
        f"lower bound {lower} proven; one cluster is an arc of optimal atoms (a double "
        "eigenvalue: the optimal network is not unique there)",
    )  # fmt: skip


# ------------------------------------------------------------------ the count
def _count(
    C: np.ndarray,
    R: np.ndarray,
    unique: np.ndarray,
    zhat: np.ndarray,
    Lam: np.ndarray,
    eps: float,
    beta: float,
    narrow: Network | None,
) -> MinWidth:
    """The lower bound and, where every margin holds, the smallest width (module doc)."""
    M = C.shape[1]
    if not np.all(np.isfinite(R)):
        return MinWidth(
            None, 0, narrow, M, eps, np.inf,
            "not proven: a cluster of near-optimal atoms meets a kink of the dual or its "
            "eigengap is below the perturbation (more than one optimal direction possible)",
        )  # fmt: skip
    sv = np.linalg.svd(C, compute_uv=False)
    sigma = float(sv[-1]) if M <= C.shape[0] else 0.0
    if sigma <= DEPENDENT_RTOL * float(sv[0]):
        return MinWidth(
            None, 0, narrow, M, eps, np.inf,
            f"not proven: the {M} clusters of optimal atoms are linearly dependent "
            "(the optimal network need not be unique)",
        )  # fmt: skip
    T, *_ = np.linalg.lstsq(C, zhat, rcond=None)
    rho_ls = float(np.linalg.norm(C @ T - zhat))
    lam = Lam.ravel()
    G = float(lam @ zhat) + eps * (float(np.linalg.norm(zhat)) + eps) + eps * np.linalg.norm(lam)
    G /= beta
    eta = (eps + G * float(np.max(R)) + rho_ls) / sigma
    rn = float(np.linalg.norm(R))
    if sigma > rn:  # Σ T_k R_k ≤ Σ T̂_k⁺R_k + ‖R‖·‖T − T̂‖, solved for ‖T − T̂‖
        eta = min(eta, (eps + float(np.maximum(T, 0.0) @ R) + rho_ls) / (sigma - rn))
    lower = int(np.sum(T > eta))
    if np.any(T < -eta):
        return MinWidth(None, lower, narrow, M, eps, eta, "not proven: a negative cluster weight")
    if lower == M and np.all(unique):
        return MinWidth(M, M, None, M, eps, eta, f"proven: every optimal network has {M} neurons")
    why = (
        f"{M - lower} of {M} clusters have weight within η = {eta:.3g} of 0"
        if lower < M
        else "a cluster may hold more than one optimal direction"
    )
    return MinWidth(None, lower, narrow, M, eps, eta, f"lower bound {lower} proven; {why}")


# ------------------------------------------------------------------ narrower from dependent atoms
def _caratheodory_narrower(
    p: Problem, net: Network, opt: Optimum, whitened: bool
) -> Network | None:
    """A narrower network from dependent neurons of ``net`` (module doc) whose objective is at
    most the optimum's (within ``NARROW_RTOL``): its certified gap is then the optimum's; None
    if none."""
    basic = drop_dependent(p.X, net)
    if basic is None:
        return None
    W1, W2 = basic.weights
    narrow = dataclasses.replace(p, width=W1.shape[1])
    local = _lbfgs_whitened if whitened else _lbfgs
    return _at_optimum(narrow, local(narrow, Network(weights=(W1, W2))), opt)


def _at_optimum(narrow: Problem, net: Network | None, opt: Optimum) -> Network | None:
    """``net`` if its objective is at most the optimum's (to ``NARROW_RTOL``), else None."""
    if net is None:
        return None
    val = float(objective(narrow, net))
    return net if val <= opt.objective + NARROW_RTOL * abs(opt.objective) else None


def _refit_narrower(p: Problem, net: Network, opt: Optimum, width: int) -> Network | None:
    """A proven width below the optimum's m* (its network repeats atoms up to the solver's
    tolerance, not exactly): :func:`solvers.vector_relu.best_at_width` at that width, kept
    when it reaches the optimum's objective (to ``NARROW_RTOL``)."""
    return _at_optimum(dataclasses.replace(p, width=width), best_at_width(p, net, width), opt)
