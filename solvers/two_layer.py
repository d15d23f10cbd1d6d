"""Two-layer ReLU networks on ANY data: the convex program over activation patterns (THEORY §10).

Problem (THEORY §0, L = 2, ReLU, K = 1, optional unregularised hidden biases):

    P* = min  ½‖Σ_j a_j (X w_j + b_j)_+ − y‖² + (β/2) Σ_j (‖w_j‖² + a_j²).

**Convex program** (Pilanci & Ergen 2020). Over all activation patterns ``D = diag(1[X̃z ≥ 0])``
(``X̃ = X`` without bias, ``X̃ = [X, 1]`` and ``z = (u, b)`` with bias)

    P* = min_{z_j ∈ K_j}  ½‖Σ_j s_j D_j X̃ z_j − y‖² + β Σ_j ‖z_j,u‖,
    K_j = {z : (2D_j − I) X̃ z ≥ 0},  s_j ∈ {+1, −1} (both signs of every pattern),

(the norm is on the X-part ``u`` only: biases are unregularised). On ``K_j``,
``D_j X̃ z = (X̃ z)_+``, so every block is a neuron: first layer ``u/√‖u‖``, bias ``b/√‖u‖``,
output ``s√‖u‖`` (cost ``β‖u‖``). m* = number of non-zero blocks after merging blocks with
the same direction and sign (exact: ``(X̃(z+z'))_+ = (X̃z)_+ + (X̃z')_+`` for ``z' ∝ z``).
A block with ``u = 0`` and ``b > 0`` (bias only, pattern ``D = I``) is a free constant: it is
realised by one neuron with zero first layer, bias ``c/a`` and output ``a`` with ``a`` so small
that its cost ``βa²/2`` is 1e-14·½‖y‖² (the infimum is then not attained exactly).

**Dual and certificate.** ``P* ≥ ½‖y‖² − ½‖λ − y‖²`` for every ``λ`` (centred, ``1ᵀλ = 0``,
when there are biases) with ``c(λ) = max_{‖u‖≤1, b} |λᵀ(Xu + b)_+| ≤ β``. On the cone of pattern
``j`` the function is linear, ``c(λ) = max_j max_{z∈K_j, ‖z_u‖≤1} ±gᵀz`` with ``g = X̃ᵀD_jλ``.
Per pattern and sign, by Lagrange duality (weak duality suffices; the solver uses the exact
face enumeration below, this bound is the cross-check and the way to think about it),

    max_{z∈K, ‖z‖≤1} gᵀz  ≤  ‖g + Aᵀμ‖            for EVERY μ ≥ 0,   A = (2D − I)X̃  (no bias),

with equality at the optimal μ (Moreau: the left side is ``‖Π_K(g)‖``); with bias the free ``b``
adds the equality ``g_b + a_bᵀμ = 0`` and the bound ``‖g_u + A_uᵀμ‖ + M |g_b + a_bᵀμ|`` with
``M = max_i ‖x_i‖`` holds for every μ ≥ 0 (fix the equality by moving one μ_i, which changes the
norm by at most ``M`` per unit; ``|b| ≤ M`` on the cone). With any upper bound ``c̄ ≥ c(λ)`` the
certificate ``α λᵀy − ½α²‖λ‖²``, ``α = clip(λᵀy/‖λ‖², 0, β/c̄)`` is a valid lower bound on P*.

**Pattern enumeration (exact).** Reduce ``X̃`` to its row-space rank ``r`` (SVD; patterns depend
on ``X̃z`` only). Every full-dimensional cell of the central arrangement ``{x̃_iᵀz = 0}`` is a
pointed cone (rank r) whose closure has an extreme ray cut out by ``r − 1`` linearly independent
hyperplanes. For every ``(r−1)``-subset of rows of rank ``r − 1`` the ray ``±v`` spans its null
space; the cells touching ``v`` carry the sign of every point off the ray, and on the points ON
the ray (``|x̃_iᵀv| ≤ 1e-9‖x̃_i‖``: the subset itself, plus duplicates / collinear rows in
non-general position) the sign patterns of the local arrangement, which is the arrangement of
those points in ``v^⊥`` (rank ``r − 1``): all ``2^{r−1}`` choices when exactly ``r − 1`` points
lie on the ray, otherwise enumerated recursively by the same method (rank 1: the two half
lines). A point treated as on the ray that is not exactly on it only adds patterns (a pattern
whose cone is lower dimensional is still a valid, harmless block). The number of cells is at
most ``2 Σ_{k<r} C(n−1, k) ≤ 2r(e(n−1)/r)^r`` (equality in general position): O(n) for r = 2,
O(n²) for r = 3; the work is ``C(n, r−1)·2^{r−1}``. ``MAX_PATTERNS`` (20,000) caps the
a-priori count — n = 40 is covered up to d = 4 without bias (19,840 cells) and d = 3 with bias
(19,840), n = 12 up to d = 5 with bias — because the exact ``c(λ)`` needs every FACE of the
arrangement, about 4× the cells (60k + 60k + 20k faces for n = 40, d = 4; a few seconds to
enumerate, cached per X). Beyond the cap :func:`enumerate_patterns` raises :class:`NotCovered`
naming the count, and :func:`solve_two_layer` solves on 20,000 sampled directions (status
BRACKET: a feasible network above P*, below it the provable bound of
:func:`relaxed_dual_norm`, ``info["not_covered"]`` naming the count).

**Exact c(λ) over faces.** The maximiser of the linear piece of a cell over the ball lies in
the relative interior of some face of the cell; on its flat ``L = S^⊥`` (S: q independent rows)
it is ``Q(QᵀEQ)^{-1}Qᵀg`` normalised (Q an orthonormal basis of L, E the u-part of the norm).
So ``c(λ)`` is the largest such value over all (flat, cell of the arrangement restricted to the
flat) pairs whose maximiser lies in its cell — vectorised matrix products, no inner solver
(:func:`dual_norm`). A feasibility test that errs towards accepting keeps it an upper bound.

**Solver.** Column generation: Clarabel (an interior-point conic solver, used directly without
cvxpy) solves the program on a working set of (pattern, sign) blocks (those in use plus up to
max(8, n) new ones per round); the exact ``c(λ)`` at the residual ``λ = y − f`` of the read-out
network gives the certificate and the violated faces (a face's cell pattern is a valid block:
its cone holds the maximiser); they join the working set until the relative gap
``(objective(network) − certificate)/objective ≤ 1e-8``. Interior-point solutions are accurate
to ~1e-9 only, so each round is polished: with the active blocks and the faces they lie on fixed,
the program's dual is the smooth concave ``max_{τ≥0} −½ỹᵀ(I + Σ τ_j C_jC_jᵀ)^{-1}ỹ − ½β²Στ``
(projected Newton, quadratic convergence; ``z_j = τ_j Q(QᵀEQ)^{-1}Qᵀ s_j X̃ᵀD_jλ``). Both ends
are rigorous: the upper end is the §0 objective of an actual network, the lower end a
dual-feasible point. The returned network is the candidate with the smallest gap to its OWN
certificate (so ``two_layer_certificate(p, opt.network)`` is tight), reduced by Carathéodory
(same output and cost, ≤ n + 1 neurons). A β path (:func:`solve_two_layer_path`) enumerates once
and warm-starts each working set from the previous β.

**Beyond the cap (issue 17).** The a-priori count is taken over DISTINCT hyperplanes
(:func:`_hyperplanes`: duplicated rows and, without bias, ``x``/``−x`` cut the same one). Past
it the working set starts from sampled cells and the warm-start networks' neurons; each round
is priced by the sampled cells and the local search of :mod:`solvers.separation` (no bound:
pricing only); when they find no new violated block, the exact check ``c(λ)`` is the MIP oracle
(:func:`solvers.separation.dual_norm_oracle`, SCIP) with the time left. Its bound (valid when
stopped early) gives the lower end; CERTIFIED when it proved ``c(λ)`` and the relative gap is
``≤ TOL_BEYOND_CAP`` (1e-6), else BRACKET at ``time_limit`` (default ``TIME_LIMIT`` = 300 s; a
round in progress finishes first). A bracket's upper end is the best of the program's network
and L-BFGS (:func:`local_network`) from it and from every warm start (a network with no active
neuron is replaced by small neurons on the local search's directions). m* is the width of the
optimal network FOUND (after Carathéodory, ``≤ n + 1``): minimal only where proven, which this
module does not do.

Bad input: ``n = 1``, a zero row of ``X`` without bias, ``K ≠ 1``, depth ≠ 2, linear activation,
batch norm → :class:`NotCovered` naming the reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import math
import time
from collections.abc import Iterator, Sequence

import numpy as np

from solvers.detect import RANK_TOL
from solvers.problem import (
    Network,
    NotCovered,
    Optimum,
    Problem,
    as_network,
    forward,
    objective,
)
from solvers.scalar import scaled_dual_value
from solvers.separation import SepResult, dual_norm_oracle, local_search

__all__ = [
    "MAX_PATTERNS",
    "TOL",
    "dual_norm",
    "enumerate_patterns",
    "pattern_count_bound",
    "relaxed_dual_norm",
    "sample_patterns",
    "solve_two_layer",
    "solve_two_layer_path",
    "two_layer_certificate",
    "warm_starts",
]

MAX_PATTERNS = 20_000  # cap on the a-priori pattern count 2 Σ_{k<r} C(n−1, k)
TOL = 1e-8  # certified relative duality gap
ON_RAY_RTOL = 1e-9  # |x̃_iᵀv| ≤ ON_RAY_RTOL ‖x̃_i‖: point i lies on the ray v
FACE_RTOL = 1e-10  # σ_min ≤ FACE_RTOL·σ_1: rows of a face (or lifted X) rank deficient
SAMPLED_PATTERNS = 20_000  # directions sampled beyond the cap
FAMILY = "relu_two_layer"
CARATHEODORY_RTOL = 1e-12  # singular values below this (relative) count as zero
TOL_BEYOND_CAP = 1e-6  # certified relative gap beyond the cap (MIP oracle; issue 17's bar)
TIME_LIMIT = 300.0  # seconds for a solve beyond the cap (column generation with the MIP oracle)
LOCAL_MAXITER = 2000  # L-BFGS iterations of the bracket's local search
ADD_BEYOND_CAP = 40  # blocks added per round beyond the cap (conic solves over n rows each)
ALL_BLOCKS = 400  # up to this many (pattern, sign) blocks the first round takes them all


# ------------------------------------------------------------------ patterns
def pattern_count_bound(n: int, r: int) -> int:
    """``2 Σ_{k<r} C(n−1, k)``: the most cells a central arrangement of n hyperplanes of rank r has."""
    if r <= 0:
        return 1
    return 2 * sum(math.comb(n - 1, k) for k in range(min(r, n)))


def _reduce(Z: np.ndarray) -> np.ndarray:
    """``Z V_r`` (n × r): the same patterns, full column rank."""
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((Z.shape[0], 0))
    r = int(np.sum(s > RANK_TOL * s[0]))
    return U[:, :r] * s[:r]


def _unique_rows(K: np.ndarray) -> np.ndarray:
    """Unique rows of an integer array (lexsort: much faster than ``np.unique(axis=0)``)."""
    if K.shape[0] <= 1:
        return K
    order = np.lexsort(K.T[::-1])
    K = K[order]
    keep = np.concatenate([[True], np.any(K[1:] != K[:-1], axis=1)])
    return K[keep]


def _pack(P: np.ndarray) -> np.ndarray:
    """Boolean patterns (C, n) → unique packed rows (uint64 words, big-endian bit order)."""
    B = np.packbits(P, axis=1)
    pad = (-B.shape[1]) % 8
    if pad:
        B = np.hstack([B, np.zeros((B.shape[0], pad), np.uint8)])
    return _unique_rows(np.ascontiguousarray(B).view(np.uint64))


def _unpack(K: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(np.ascontiguousarray(K).view(np.uint8), axis=1, count=n).astype(bool)


def _hyperplanes(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct hyperplanes ``{z_iᵀu = 0}`` among the rows of ``Z`` (no zero rows): rows that
    are positive or negative multiples of each other (duplicated samples; ``x`` and ``−x``
    without bias) cut the same hyperplane. Returns ``(first, rep, sign)``: indices of one row
    per hyperplane, and for every row its hyperplane (index into ``first``) and ``±1`` (row =
    sign·positive multiple of the representative). Rows equal after normalisation and rounding
    to ``1e-12`` are merged; near-duplicates beyond that stay apart (harmless: the enumeration
    treats them as distinct, only slower)."""
    U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    lead = np.argmax(np.abs(U) > 1e-12, axis=1)
    sign = np.sign(U[np.arange(U.shape[0]), lead])
    key = np.round(U * sign[:, None], 12) + 0.0  # + 0.0: no negative zeros
    _, first, rep = np.unique(key, axis=0, return_index=True, return_inverse=True)
    rep = rep.reshape(-1)
    return first, rep, sign * sign[first][rep]


def _expand_patterns(P: np.ndarray, rep: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Cell patterns of the distinct hyperplanes → patterns of every row (a negative multiple
    lies on the other side inside every cell)."""
    out = P[:, rep]
    return np.where(sign[None, :] > 0, out, ~out)


def _patterns_reduced(Z: np.ndarray) -> np.ndarray:
    """All cell sign patterns (``1[z_iᵀu > 0]`` in the interior) of full-column-rank ``Z``, as
    packed rows; ``Z`` has no zero rows."""
    n, r = Z.shape
    if r == 1:
        pos = Z[:, 0] > 0
        return _pack(np.stack([pos, ~pos]))
    norms = np.linalg.norm(Z, axis=1)
    out: list[np.ndarray] = []
    combos = np.array(list(itertools.product([False, True], repeat=r - 1)), dtype=bool)
    subsets = itertools.combinations(range(n), r - 1)
    chunk = 20_000
    while True:
        S = np.array(list(itertools.islice(subsets, chunk)), dtype=np.intp)
        if S.size == 0:
            break
        S = S.reshape(-1, r - 1)
        M = Z[S]  # (C, r−1, r)
        _, sv, Vt = np.linalg.svd(M, full_matrices=True)
        ok = sv[:, -1] > FACE_RTOL * sv[:, 0]  # rank r − 1
        S, v = S[ok], Vt[ok, -1, :]  # null vectors (C, r)
        proj = v @ Z.T  # (C, n)
        on = np.abs(proj) <= ON_RAY_RTOL * norms[None, :]
        base = proj > 0
        general = on.sum(axis=1) == r - 1
        # general position: the r−1 points of S take every sign
        Sg, bg = S[general], base[general]
        if Sg.size:
            pats = np.repeat(bg[:, None, :], combos.shape[0], axis=1)  # (C, 2^{r−1}, n)
            idx = np.arange(Sg.shape[0])[:, None, None]
            pats[idx, np.arange(combos.shape[0])[None, :, None], Sg[:, None, :]] = combos[None]
            pats = pats.reshape(-1, n)
            out.append(_pack(pats))
            out.append(_pack(~pats))  # the ray −v
        # degenerate rays: recurse on the points of the ray, projected into v^⊥
        deg = np.flatnonzero(~general)
        if deg.size:
            keys = np.packbits(np.concatenate([on[deg], base[deg]], axis=1), axis=1)
            _, first = np.unique(keys, axis=0, return_index=True)
            for c in deg[first]:
                idx_on = np.flatnonzero(on[c])
                Zon = Z[idx_on] - np.outer(proj[c, idx_on], v[c])
                local = _unpack(_patterns_reduced(_reduce(Zon)), idx_on.size)
                pats = np.repeat(base[c][None, :], local.shape[0], axis=0)
                pats[:, idx_on] = local
                out.append(_pack(pats))
                out.append(_pack(~pats))
    if not out:
        raise AssertionError("no ray found: Z is not of full column rank")
    return _unique_rows(np.concatenate(out))


def _lifted(X: np.ndarray, bias: bool) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X


def _check_rows(X: np.ndarray, bias: bool) -> None:
    n = X.shape[0]
    if n < 2:
        raise NotCovered(f"n = {n} sample: the pattern program needs at least 2 samples")
    if not bias:
        zero = np.flatnonzero(~np.any(X != 0, axis=1))
        if zero.size:
            raise NotCovered(
                f"X has {zero.size} zero row(s) (first: row {int(zero[0])}) and no bias: a zero "
                "row has no activation pattern; drop it (its prediction is always 0)"
            )


def enumerate_patterns(X: np.ndarray, *, bias: bool = False, cap: int = MAX_PATTERNS) -> np.ndarray:
    """All activation patterns ``1[X̃u ≥ 0]`` of the cells of the arrangement (module doc).

    Returns:
        ``(P, n)`` boolean array, one row per pattern (unique; includes all-ones and all-zeros).

    Raises:
        NotCovered: n = 1, a zero row without bias, or the a-priori count
            ``2 Σ_{k<r} C(n−1, k)`` above ``cap`` (named in the message).
    """
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    _check_rows(X, bias)
    Z = _reduce(_lifted(X, bias))
    n, r = Z.shape
    first, rep, sign = _hyperplanes(Z)
    h = first.size
    bound = pattern_count_bound(h, r)
    if bound > cap:
        raise NotCovered(
            f"{bound:,} activation patterns (a-priori count 2Σ_(k<{r}) C({h - 1},k) for "
            f"{h} distinct hyperplanes among n = {n} points, rank {r}) exceed the cap {cap:,}"
        )
    return _expand_patterns(_unpack(_patterns_reduced(Z[first]), h), rep, sign)


def sample_patterns(
    X: np.ndarray, *, bias: bool = False, samples: int = SAMPLED_PATTERNS, seed: int = 0
) -> np.ndarray:
    """Patterns of ``samples`` Gaussian directions (a subset of all patterns), unique rows."""
    Z = _reduce(_lifted(np.asarray(X, dtype=np.float64), bias))
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((Z.shape[1], samples))
    P = (Z @ U >= 0).T
    P = np.concatenate([P, np.ones((1, Z.shape[0]), bool), np.zeros((1, Z.shape[0]), bool)])
    return _unpack(_pack(P), Z.shape[0])


# ------------------------------------------------------------------ geometry and pricing
FEAS_RTOL = 1e-9  # a candidate maximiser counts as inside its cell up to this (errs high: valid)


@dataclasses.dataclass
class _Faces:
    """One codimension ``q`` of the arrangement's faces: ``D`` (C, n) restricted cell patterns
    (points on the flat set to 0), ``flat`` (C,) index into ``Q`` (F, k, k−q) orthonormal flat
    bases and ``Mi`` (F, k−q, k−q) = ``(QᵀEQ)^{-1}`` (E: the u-part of the norm)."""

    D: np.ndarray
    flat: np.ndarray
    Q: np.ndarray
    Mi: np.ndarray


@dataclasses.dataclass
class _Geometry:
    """Reduced coordinates: ``X = Xr Vᵀ`` (``V`` orthonormal, d × r), lifted ``Xt = [Xr, 1]``
    with bias; ``patterns`` (P, n) the full-dimensional cells and whether they are all of them
    (``exact``); ``faces`` every face of the arrangement (for the exact ``c(λ)``)."""

    bias: bool
    V: np.ndarray
    Xt: np.ndarray
    r: int
    M: float
    patterns: np.ndarray
    exact: bool
    reason: str = ""
    faces: list = dataclasses.field(default_factory=list)

    @property
    def k(self) -> int:
        return self.Xt.shape[1]


def _flat_faces(Xt: np.ndarray, q: int, E: np.ndarray) -> _Faces | None:
    """All faces on flats ``L = S^⊥`` spanned by q independent rows S (deduplicated by the set
    of rows in span(S)); on each flat the cells of the arrangement of the other rows projected
    into L (:func:`_patterns_reduced`)."""
    n, k = Xt.shape
    norms = np.linalg.norm(Xt, axis=1)
    if q == k - 1:
        return _line_faces(Xt, E)
    Ds, flats, Qs, Mis = [], [], [], []
    seen: set[bytes] = set()
    for S in itertools.combinations(range(n), q):
        S = list(S)
        _, sv, Vt = np.linalg.svd(Xt[S], full_matrices=True)
        if sv[-1] <= FACE_RTOL * sv[0]:
            continue
        Q = Vt[q:].T  # (k, k−q)
        Y = Xt @ Q
        on = np.linalg.norm(Y, axis=1) <= ON_RAY_RTOL * norms
        key = np.packbits(on).tobytes()
        if key in seen:
            continue
        seen.add(key)
        off = np.flatnonzero(~on)
        if off.size == 0:
            continue
        if k - q == 1:
            pos = Y[off, 0] > 0
            local = np.stack([pos, ~pos])
        else:
            local = _unpack(_patterns_reduced(_reduce(Y[off])), off.size)
        D = np.zeros((local.shape[0], n), dtype=bool)
        D[:, off] = local
        Ds.append(D)
        flats.append(np.full(local.shape[0], len(Qs)))
        Qs.append(Q)
        Mis.append(np.linalg.inv(Q.T @ E @ Q))
    if not Ds:
        return None
    return _Faces(np.concatenate(Ds), np.concatenate(flats), np.stack(Qs), np.stack(Mis))


def _line_faces(Xt: np.ndarray, E: np.ndarray) -> _Faces | None:
    """Codimension k − 1 (rays), vectorised: every (k−1)-subset of independent rows spans a line
    ``v``; its two faces are the rays ±v (patterns ``1[x̃ᵀv > 0]``, ``1[x̃ᵀv < 0]``)."""
    n, k = Xt.shape
    norms = np.linalg.norm(Xt, axis=1)
    Ds, Vs = [], []
    seen: set[bytes] = set()
    subsets = itertools.combinations(range(n), k - 1)
    while True:
        S = np.array(list(itertools.islice(subsets, 20_000)), dtype=np.intp)
        if S.size == 0:
            break
        S = S.reshape(-1, k - 1)
        _, sv, Vt = np.linalg.svd(Xt[S], full_matrices=True)
        ok = sv[:, -1] > FACE_RTOL * sv[:, 0]
        v = Vt[ok, -1, :]
        proj = v @ Xt.T
        on = np.abs(proj) <= ON_RAY_RTOL * norms[None, :]
        keys = np.packbits(on, axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)
        for c in first:
            key = keys[c].tobytes()
            if key in seen:
                continue
            seen.add(key)
            Ds.append(proj[c] > 0)
            Ds.append(proj[c] < 0)
            Vs.append(v[c])
    if not Ds:
        return None
    V = np.array(Vs)
    Q = V[:, :, None]
    Mi = 1.0 / np.einsum("ck,kl,cl->c", V, E, V)
    return _Faces(np.array(Ds), np.repeat(np.arange(len(Vs)), 2), Q, Mi[:, None, None])


def _geometry(
    X: np.ndarray,
    bias: bool,
    *,
    cap: int = MAX_PATTERNS,
    patterns: np.ndarray | None = None,
    seed: int = 0,
) -> _Geometry:
    _check_rows(X, bias)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(s > RANK_TOL * s[0])) if s.size and s[0] > 0 else 0
    V = Vt[:r].T
    Xr = X @ V
    Xt = _lifted(Xr, bias)
    if bias:
        st = np.linalg.svd(Xt, compute_uv=False)
        if st[-1] <= FACE_RTOL * st[0]:
            raise NotCovered(
                "bias=True and the constant vector lies in the column space of X (X has a "
                "constant column or is rank deficient with an affine dependency): the bias is "
                "redundant; not covered by the pattern program"
            )
    M = float(np.max(np.linalg.norm(Xr, axis=1))) if r else 0.0
    reason = ""
    if patterns is not None:
        exact = False
        reason = "patterns given by the caller (not checked for completeness)"
    else:
        try:
            patterns, exact = enumerate_patterns(X, bias=bias, cap=cap), True
        except NotCovered as exc:
            if "cap" not in str(exc):
                raise
            patterns, exact = sample_patterns(X, bias=bias, seed=seed), False
            reason = f"{exc}; solved on {SAMPLED_PATTERNS:,} sampled directions"
    geo = _Geometry(bias, V, Xt, r, M, np.asarray(patterns, bool), exact, reason)
    if exact:
        E = np.eye(geo.k)
        if bias:
            E[r, r] = 0.0
        first, rep, sign = _hyperplanes(Xt)  # faces of the distinct hyperplanes only
        Xu = Xt[first]
        xn = np.linalg.norm(Xu, axis=1)
        for q in range(1, geo.k):
            f = _flat_faces(Xu, q, E)
            if f is None:
                continue
            D = f.D[:, rep]
            if np.any(sign < 0):  # a negative multiple: the other side, 0 where on the flat
                off = np.linalg.norm(np.einsum("nk,fkj->fnj", Xu, f.Q), axis=2)
                off = off > ON_RAY_RTOL * xn[None, :]
                flip = ~f.D & off[f.flat]
                D = np.where(sign[None, :] > 0, D, flip[:, rep])
            geo.faces.append(_Faces(D, f.flat, f.Q, f.Mi))
    return geo


def _cell_values(geo: _Geometry, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-dimensional cells: candidate values (P, 2) for signs (+, −), validity mask, and the
    maximisers (P, k) for sign + (sign −: the other cell's job is the same formula with −g)."""
    D = geo.patterns
    G = D.astype(np.float64) @ (lam[:, None] * geo.Xt)
    xn = np.linalg.norm(geo.Xt, axis=1)
    S = 2.0 * D - 1.0
    if not geo.bias:
        val = np.linalg.norm(G, axis=1)
        Z = G / np.where(val > 0, val, 1.0)[:, None]
        H = S * (Z @ geo.Xt.T)
        ok_p = np.all(H >= -FEAS_RTOL * xn, axis=1)
        ok_m = np.all(H <= FEAS_RTOL * xn, axis=1)
        return np.stack([val, val], 1), np.stack([ok_p, ok_m], 1), Z
    r = geo.r
    gu = G[:, :r]
    gb = G[:, r]
    val = np.linalg.norm(gu, axis=1)
    u = gu / np.where(val > 0, val, 1.0)[:, None]
    on_all = np.all(D, axis=1)
    off_all = ~np.any(D, axis=1)
    small = np.abs(gb) <= 1e-12 * (np.abs(lam) @ np.ones_like(lam) + 1e-300)
    val = val + geo.M * np.abs(gb)  # exact when g_b = 0; an upper bound otherwise
    a = u @ geo.Xt[:, :r].T  # (P, n): x_iᵀu
    big = np.inf
    lo = np.max(np.where(D, -a, -big), axis=1)  # active: b ≥ −x_iᵀu
    hi = np.min(np.where(D, big, -a), axis=1)  # inactive: b ≤ −x_iᵀu
    ok_p = small & (lo <= hi + FEAS_RTOL * geo.M)
    lo_m = np.max(np.where(D, a, -big), axis=1)
    hi_m = np.min(np.where(D, big, a), axis=1)
    ok_m = small & (lo_m <= hi_m + FEAS_RTOL * geo.M)
    ok_p |= on_all
    ok_m |= on_all
    val = np.where(off_all, 0.0, val)
    b = np.where(on_all, np.maximum(np.max(-a, axis=1), 0.0), np.clip(0.0, lo, hi))
    Z = np.hstack([u, b[:, None]])
    return np.stack([val, val], 1), np.stack([ok_p, ok_m], 1), Z


def _face_values(
    geo: _Geometry, f: _Faces, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    G = f.D.astype(np.float64) @ (lam[:, None] * geo.Xt)  # (C, k)
    Q = f.Q[f.flat]  # (C, k, k−q)
    h = np.einsum("ckj,ck->cj", Q, G)
    mh = np.einsum("cij,cj->ci", f.Mi[f.flat], h)
    val = np.sqrt(np.maximum(np.einsum("ci,ci->c", h, mh), 0.0))
    Z = np.einsum("ckj,cj->ck", Q, mh) / np.where(val > 0, val, 1.0)[:, None]
    xn = np.linalg.norm(geo.Xt, axis=1)
    H = (2.0 * f.D - 1.0) * (Z @ geo.Xt.T)
    H = np.where(f.D | (np.abs(Z @ geo.Xt.T) > ON_RAY_RTOL * xn), H, np.abs(H))  # on-flat: free
    ok_p = np.all(H >= -FEAS_RTOL * xn, axis=1)
    H2 = (2.0 * f.D - 1.0) * (-(Z @ geo.Xt.T))
    H2 = np.where(f.D | (np.abs(Z @ geo.Xt.T) > ON_RAY_RTOL * xn), H2, np.abs(H2))
    ok_m = np.all(H2 >= -FEAS_RTOL * xn, axis=1)
    return np.stack([val, val], 1), np.stack([ok_p, ok_m], 1), Z


def dual_norm_exact(geo: _Geometry, lam: np.ndarray) -> tuple[float, list]:
    """``c(λ) = max_{‖u‖≤1, b} |λᵀ(X̃z)_+|`` over every face of the arrangement (module doc):
    the maximiser of the linear piece over the ball lies in the relative interior of some face,
    where it is ``Q(QᵀEQ)^{-1}Qᵀg`` normalised; a face whose candidate is outside it is skipped
    (its maximum sits on a smaller face, also enumerated). Feasibility is tested with a tolerance
    that errs towards accepting, so the value is never below ``c(λ)``. Returns the value and the
    candidates ``(value, sign, z)`` sorted by value (largest first)."""
    levels = [(geo.patterns, _cell_values(geo, lam))]
    for f in geo.faces:
        for lo in range(0, f.D.shape[0], 20_000):
            part = _Faces(f.D[lo : lo + 20_000], f.flat[lo : lo + 20_000], f.Q, f.Mi)
            levels.append((part.D, _face_values(geo, part, lam)))
    return _best(levels)


def _best(levels: list) -> tuple[float, list]:
    best = 0.0
    cands: list[tuple[float, int, np.ndarray]] = []
    for D, (val, ok, _Z) in levels:
        v = np.where(ok, val, -np.inf)
        if v.size:
            best = max(best, float(np.max(v)))
        idx = np.argwhere(np.isfinite(v))
        top = idx[np.argsort(-v[idx[:, 0], idx[:, 1]])[:256]]
        for i, si in top:
            cands.append((float(val[i, si]), 1 - 2 * int(si), D[i]))
    cands.sort(key=lambda c: -c[0])
    return best, cands


def _price(
    geo: _Geometry, lam: np.ndarray, *, beta: float | None = None
) -> tuple[float, list[tuple[np.ndarray, int, float]]]:
    """``(c̄, violators)``: ``c̄ ≥ c(λ)`` and new blocks ``(pattern, sign, value)`` whose cone
    holds a maximiser with value > β (largest first)."""
    if geo.exact:
        cbar, cands = dual_norm_exact(geo, lam)
    else:  # sampled patterns: only the cells we have (NOT a bound on c(λ))
        cbar, cands = _best([(geo.patterns, _cell_values(geo, lam))])
    viol = []
    if beta is not None:
        viol = [(D, s, v) for v, s, D in cands if v > beta * (1.0 + 1e-10)]
    return cbar, viol


def _scaled_dual(lam: np.ndarray, y: np.ndarray, beta: float, cbar: float) -> float:
    """``max_{0 ≤ α ≤ β/c̄} αλᵀy − ½α²‖λ‖²`` (THEORY §7): :func:`solvers.scalar.scaled_dual_value`
    with ``a = λᵀy``, ``b = ‖λ‖²`` and ``α_max = β/c̄`` (∞ when ``c̄ = 0``)."""
    amax = np.inf if cbar <= 0 else beta / cbar
    return scaled_dual_value(float(lam @ y), float(lam @ lam), amax)


# ------------------------------------------------------------------ restricted program
def _clarabel():  # noqa: ANN202 - the module
    try:
        import clarabel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("solvers.two_layer needs clarabel: pip install clarabel") from exc
    return clarabel


def _solve_restricted(
    geo: _Geometry, y: np.ndarray, beta: float, Dw: np.ndarray, s: np.ndarray, *, tol: float
) -> tuple[np.ndarray, float]:
    """Clarabel on the working set: returns ``Z`` (N, k), one row ``z_j`` per block."""
    import scipy.sparse as sp

    clarabel = _clarabel()
    n, k, r = geo.Xt.shape[0], geo.k, geo.r
    N = Dw.shape[0]
    PF = Dw.astype(np.float64)
    SS = 2.0 * PF - 1.0
    nz, nt = N * k, N
    nc = 1 if geo.bias else 0  # a free constant output (unregularised biases)
    nx = n + nz + nt + nc
    Pq = sp.csc_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(nx, nx))
    q = np.concatenate([np.zeros(n + nz), np.full(nt, beta), np.zeros(nc)])
    # zero cone: e − Σ_j s_j D_j Xt z_j = −y
    Mblk = s[:, None, None] * PF[:, :, None] * geo.Xt[None, :, :]  # (N, n, k)
    rows_e = np.arange(n)
    rz = np.broadcast_to(np.arange(n)[None, :, None], (N, n, k)).ravel()
    cz = n + np.arange(N)[:, None, None] * k + np.arange(k)[None, None, :]
    cz = np.broadcast_to(cz, (N, n, k)).ravel()
    A1 = sp.coo_matrix(
        (
            np.concatenate([np.ones(n), -Mblk.ravel(), -np.ones(n * nc)]),
            (
                np.concatenate([rows_e, rz, rows_e[: n * nc]]),
                np.concatenate([rows_e, cz, np.full(n * nc, nx - 1)]),
            ),
        ),
        shape=(n, nx),
    )
    # nonnegative cone: (2D_j − I) Xt z_j ≥ 0  →  rows −(2D_j − I)Xt z_j + s = 0
    Ablk = SS[:, :, None] * geo.Xt[None, :, :]  # (N, n, k)
    rn = np.arange(N)[:, None, None] * n + np.arange(n)[None, :, None]
    rn = np.broadcast_to(rn, (N, n, k)).ravel()
    A2 = sp.coo_matrix((-Ablk.ravel(), (rn, cz)), shape=(N * n, nx))
    # second-order cones (t_j, z_j,u)
    ro = np.arange(N)[:, None] * (r + 1)
    rows_t = ro[:, 0]
    cols_t = n + nz + np.arange(N)
    rows_u = (ro + 1 + np.arange(r)[None, :]).ravel()
    cols_u = (n + np.arange(N)[:, None] * k + np.arange(r)[None, :]).ravel()
    A3 = sp.coo_matrix(
        (-np.ones(N + N * r), (np.concatenate([rows_t, rows_u]), np.concatenate([cols_t, cols_u]))),
        shape=(N * (r + 1), nx),
    )
    A = sp.vstack([A1, A2, A3]).tocsc()
    b = np.concatenate([-y, np.zeros(N * n + N * (r + 1))])
    cones = [clarabel.ZeroConeT(n), clarabel.NonnegativeConeT(N * n)]
    cones += [clarabel.SecondOrderConeT(r + 1)] * N
    st = clarabel.DefaultSettings()
    st.verbose = False
    st.tol_gap_abs = st.tol_gap_rel = st.tol_feas = tol
    st.tol_ktratio = 1e-8
    st.max_iter = 300
    sol = clarabel.DefaultSolver(sp.triu(Pq).tocsc(), q, A, b, cones, st).solve()
    x = np.asarray(sol.x, dtype=np.float64)
    if x.size != nx or not np.all(np.isfinite(x)):
        raise RuntimeError(f"clarabel returned no solution (status {sol.status})")
    return x[n : n + nz].reshape(N, k), (float(x[-1]) if nc else 0.0)


def _project_blocks(geo: _Geometry, J: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Clip tiny cone violations: nothing to do for the network (it evaluates ``(Xt z)_+``)."""
    return Z


def _network_from_blocks(
    p: Problem,
    geo: _Geometry,
    s: np.ndarray,
    Z: np.ndarray,
    *,
    rel_drop: float,
    const: float = 0.0,
    reduce: bool = False,
) -> tuple[Network, int, np.ndarray, np.ndarray]:
    """Neurons from blocks (module doc): ``(network, m*, directions (d, m*), block mask)``."""
    r = geo.r
    U = Z[:, :r]
    nrm = np.linalg.norm(U, axis=1)
    top = float(np.max(nrm)) if nrm.size else 0.0
    keep = nrm > rel_drop * top if top > 0 else np.zeros(len(nrm), bool)
    # merge same-sign blocks with the same direction (exact)
    idx = np.flatnonzero(keep)
    merged: list[tuple[float, np.ndarray]] = []
    for i in idx[np.argsort(-nrm[idx])]:
        zi = Z[i] / np.linalg.norm(Z[i])
        for m_, (sm, zm) in enumerate(merged):
            if sm == s[i] and float(zi @ zm) / np.linalg.norm(zm) > 1.0 - 1e-12:
                merged[m_] = (sm, zm + Z[i])
                break
        else:
            merged.append((float(s[i]), Z[i].copy()))
    if reduce:
        merged = _caratheodory(geo, merged)
    m_star = len(merged)
    if geo.bias:  # bias-only blocks (u ≈ 0): a constant s·(b)_+
        drop = ~keep
        const += float(np.sum(s[drop] * np.maximum(Z[drop, r], 0.0)))
    d = geo.V.shape[0]
    width_needed = m_star + (1 if geo.bias and const != 0.0 else 0)
    W1 = np.zeros((d, max(width_needed, 1)))
    W2 = np.zeros((max(width_needed, 1), 1))
    b1 = np.zeros(max(width_needed, 1))
    dirs = np.zeros((d, m_star))
    for i, (sm, z) in enumerate(merged):
        u = z[:r]
        nu = float(np.linalg.norm(u))
        w = geo.V @ u
        W1[:, i] = w / np.sqrt(nu)
        W2[i, 0] = sm * np.sqrt(nu)
        dirs[:, i] = w / nu
        if geo.bias:
            b1[i] = z[r] / np.sqrt(nu)
    if geo.bias and const != 0.0:
        # a zero-input neuron with output a, bias c/a: cost βa²/2, negligible
        scale = max(0.5 * float(p.Y[:, 0] @ p.Y[:, 0]), 1e-300)
        a = np.sqrt(2.0 * 1e-14 * scale / p.beta)
        W2[m_star, 0] = np.sign(const) * a
        b1[m_star] = abs(const) / a
    net = Network(weights=(W1, W2), biases=(b1,) if geo.bias else None)
    return net, m_star, dirs, keep


def _caratheodory(geo: _Geometry, merged: list[tuple[float, np.ndarray]]) -> list:
    """Fewer neurons, same network output and cost: outputs ``f_j = s_j(X̃z_j)_+`` and costs
    ``‖z_j,u‖`` are linear in a common scaling ``θ_j z_j``; along a null vector of the
    ``(n+1) × m`` matrix of ``[f_j; cost_j]`` the objective is unchanged, and stepping until a
    ``θ_j`` hits 0 removes a neuron (Carathéodory: at most n + 1 remain, always — beyond n + 1
    columns a null vector exists whatever the round-off). Columns are scaled to unit norm
    first, so neurons of ‖u‖ ≈ 1e-15 (left by the polish) neither break the rank test nor leave
    an empty step; a column that is exactly zero (no output, no cost) is dropped."""
    r = geo.r
    n = geo.Xt.shape[0]
    while len(merged) > 1:
        F = np.stack([sm * np.maximum(geo.Xt @ z, 0.0) for sm, z in merged], axis=1)
        cost = np.array([np.linalg.norm(z[:r]) for _, z in merged])
        Phi = np.vstack([F, cost[None, :]])
        scale = np.linalg.norm(Phi, axis=0)
        if np.any(scale == 0):  # a neuron with neither output nor cost
            merged = [mz for mz, sc in zip(merged, scale, strict=False) if sc > 0]
            continue
        _, sv, Vt = np.linalg.svd(Phi / scale, full_matrices=True)
        rank = int(np.sum(sv > CARATHEODORY_RTOL * sv[0]))
        if rank >= len(merged) and len(merged) <= n + 1:
            break
        nu = Vt[-1] / scale  # a null vector of Phi itself
        if not np.all(np.isfinite(nu)):
            break
        if np.max(nu) <= 0:
            nu = -nu
        pos = nu > CARATHEODORY_RTOL * np.max(np.abs(nu))
        if not np.any(pos):
            break
        ratios = 1.0 / nu[pos]
        t = float(np.min(ratios))
        theta = np.maximum(1.0 - t * nu, 0.0)
        j_out = int(np.flatnonzero(pos)[np.argmin(ratios)])
        merged = [
            (sm, th * z)
            for i, ((sm, z), th) in enumerate(zip(merged, theta, strict=False))
            if i != j_out
        ]
    return merged


def _pad(p: Problem, net: Network, m_needed: int) -> Network:
    width = net.weights[0].shape[1]
    if p.width is None or p.width == width:
        return net
    if p.width < m_needed:
        raise NotCovered(f"width {p.width} is below the {m_needed} neurons the optimum needs")
    if p.width < width:  # only padding neurons can be removed
        W1, W2 = net.weights[0][:, : p.width], net.weights[1][: p.width]
        b = (net.biases[0][: p.width],) if net.biases is not None else None
        return Network(weights=(W1, W2), biases=b)
    extra = p.width - width
    W1 = np.hstack([net.weights[0], np.zeros((net.weights[0].shape[0], extra))])
    W2 = np.vstack([net.weights[1], np.zeros((extra, 1))])
    b = (np.concatenate([net.biases[0], np.zeros(extra)]),) if net.biases is not None else None
    return Network(weights=(W1, W2), biases=b)


# ------------------------------------------------------------------ solve
def _check_problem(p: object) -> Problem:
    if not isinstance(p, Problem):
        raise ValueError(f"p must be a solvers.Problem, got {type(p).__name__}")
    if p.depth != 2:
        raise NotCovered(f"depth {p.depth}: the pattern program covers two-layer networks only")
    if p.activation != "relu":
        raise NotCovered(f"activation {p.activation!r}: the pattern program is for relu")
    if p.K != 1:
        raise NotCovered(f"K = {p.K} outputs: the pattern program of THEORY §10 needs K = 1")
    if p.batchnorm:
        raise NotCovered("batchnorm=True: the pattern program has no batch norm")
    return p


def _residual(p: Problem, net: Network) -> np.ndarray:
    lam = p.Y[:, 0] - forward(p, net)[:, 0]
    return lam - lam.mean() if p.bias else lam


def _make_optimum(
    p: Problem,
    geo: _Geometry,
    net: Network,
    upper: float,
    lower: float,
    m_star: int,
    dirs: np.ndarray,
    tol: float,
    info: dict,
    *,
    certified: bool | None = None,
) -> Optimum:
    from solvers.problem import Status

    certified = geo.exact if certified is None else certified
    rel = (upper - lower) / abs(upper) if upper != 0 else 0.0
    rel = max(rel, 0.0)
    status = Status.CERTIFIED if (certified and rel <= tol) else Status.BRACKET
    if status is Status.BRACKET and not geo.exact:
        info = {**info, "not_covered": geo.reason}
    return Optimum(
        objective=upper,
        weights=list(net.weights),
        family=FAMILY,
        status=status,
        lower_bound=lower,
        rel_gap=rel,
        dual=None,
        network=net,
        m_star=m_star,
        directions=dirs,
        info=info,
    )


class _State:
    """Working set of blocks (pattern, sign) shared by the solves of one problem (a β path)."""

    def __init__(self, geo: _Geometry) -> None:
        self.geo = geo
        self.D: list[np.ndarray] = []
        self.s: list[int] = []
        self.seen: set[tuple[bytes, int]] = set()

    def add(self, items: Sequence[tuple[np.ndarray, int]]) -> int:
        added = 0
        for D, s in items:
            key = (np.packbits(D).tobytes(), int(s))
            if key not in self.seen:
                self.seen.add(key)
                self.D.append(np.asarray(D, bool))
                self.s.append(int(s))
                added += 1
        return added

    def is_new(self, D: np.ndarray, s: int) -> bool:
        return (np.packbits(D).tobytes(), int(s)) not in self.seen

    def keep(self, mask: np.ndarray) -> None:
        """Drop the blocks not in ``mask`` (they may come back when priced again)."""
        self.D = [D for D, k in zip(self.D, mask, strict=False) if k]
        self.s = [s for s, k in zip(self.s, mask, strict=False) if k]
        self.seen = {(np.packbits(D).tobytes(), s) for D, s in zip(self.D, self.s, strict=False)}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.D, dtype=bool).reshape(-1, self.geo.Xt.shape[0]), np.array(
            self.s, dtype=np.float64
        )


def _solve_on(
    p: Problem,
    state: _State,
    *,
    tol: float,
    max_rounds: int = 60,
    add_per_round: int | None = None,
    warm_start: Sequence[Network] = (),
    time_limit: float = TIME_LIMIT,
) -> Optimum:
    t_start = time.perf_counter()
    geo = state.geo
    y = p.Y[:, 0]
    beta = p.beta
    n = p.n
    add_per_round = add_per_round or (max(8, n) if geo.exact else max(8, min(n, ADD_BEYOND_CAP)))
    if not state.D and 2 * geo.patterns.shape[0] <= ALL_BLOCKS:  # small: every cell at once
        state.add([(D, s) for D in geo.patterns for s in (1, -1)])
    else:
        lam0 = y - y.mean() if p.bias else y
        _, viol = _price(geo, lam0, beta=0.0)
        state.add([(D, s) for D, s, _ in viol[: 2 * add_per_round]])
    warm = [as_network(w) for w in warm_start]
    for w in warm:  # the neurons of a known network are blocks: its cone holds each of them
        state.add(_network_blocks(geo, w))
    lower, best, best_own = 0.0, None, 0.0
    inner_tol = 1e-10
    rounds = 0
    oracle: dict = {"calls": 0, "exact": False, "seconds": 0.0}
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - reported
        Dw, s = state.arrays()
        Z, const = _solve_restricted(geo, y, beta, Dw, s, tol=inner_tol)
        cands = []
        for rel_drop in (1e-6, 1e-9):
            net, m_star, dirs, _ = _network_from_blocks(
                p, geo, s, Z, rel_drop=rel_drop, const=const
            )
            cands.append((objective(p, net), net, m_star, dirs, (s, Z, const, rel_drop)))
        faces = _faces(geo, Dw, s, Z)
        if faces:
            tau0 = np.array([np.linalg.norm(Z[f[0], : geo.r]) for f in faces])
            pol = _polish(p, geo, faces, tau0 / beta)
            if pol is not None:
                Sp, Zp, cp_ = _polished_blocks(p, geo, Dw, faces, pol[0], pol[1])
                if Zp.shape[0]:
                    net, m_star, dirs, _ = _network_from_blocks(
                        p, geo, Sp, Zp, rel_drop=0.0, const=cp_
                    )
                    cands.append((objective(p, net), net, m_star, dirs, (Sp, Zp, cp_, 0.0)))
        cands.sort(key=lambda c: c[0])
        viol = []
        for c in cands:  # each network certifies itself: keep the one with the smallest own gap
            lam = _residual(p, c[1])
            cbar, v = _price(geo, lam, beta=beta)
            if not geo.exact:  # sampled cells bound nothing: the provable relaxation instead,
                cbar = relaxed_dual_norm(p.X, lam, bias=p.bias)  # and the local search prices
                v = _searched(p, lam, beta) + v
            own = _scaled_dual(lam, y, beta, cbar)
            lower = max(lower, own)
            viol = viol or v
            if best is None or c[0] - own < best[0] - best_own:
                best, best_own = c, own
        left = time_limit - (time.perf_counter() - t_start)
        if not geo.exact:  # violators already in the working set are round-off, not news
            viol = [v for v in viol if state.is_new(v[0], v[1])]
        if not geo.exact and not viol and left > 0:  # the exact check: the MIP oracle
            cur = cands[0]  # this round's best network (own gaps above used the loose bound)
            lam = _residual(p, cur[1])
            res = dual_norm_oracle(p.X, lam, bias=p.bias, time_limit=left, tol=0.1 * tol)
            oracle["calls"] += 1
            oracle["seconds"] += sum(r.seconds for r in res)
            cbar = min(max(r.upper for r in res), relaxed_dual_norm(p.X, lam, bias=p.bias))
            own = _scaled_dual(lam, y, beta, cbar)
            lower = max(lower, own)
            if cur[0] - own < best[0] - best_own:
                best, best_own = cur, own
                oracle["exact"] = all(r.exact for r in res)
            viol = [_sep_block(geo, r) for r in res if r.value > beta * (1.0 + 1e-10)]
        if best[0] - lower <= tol * abs(best[0]) and best[0] - best_own <= tol * abs(best[0]):
            break
        if not geo.exact and time.perf_counter() - t_start > time_limit:
            break  # within the cap the enumeration decides: no time limit there
        # keep the blocks in use, add the most violated new ones
        nu = np.linalg.norm(Z[:, : geo.r], axis=1)
        used = nu > 1e-9 * max(float(np.max(nu, initial=0.0)), 1e-300)
        state.keep(used)
        if state.add([(D, sg) for D, sg, _ in viol[:add_per_round]]) == 0:
            if inner_tol <= 1e-13:
                break
            inner_tol *= 0.1  # no new block: the restricted solve was not accurate enough
    upper, net, m_star, dirs, (sb, Zb, cb, dropb) = best
    net2, m2, dirs2, _ = _network_from_blocks(p, geo, sb, Zb, rel_drop=dropb, const=cb, reduce=True)
    up2 = objective(p, net2)
    # fewer neurons, the same output and objective up to round-off: keep it if still certified,
    # and always when the unreduced one has more than n + 1 neurons (Carathéodory's bound)
    if up2 - lower <= tol * abs(up2) or up2 <= upper * (1.0 + 1e-12) or m_star > n + 1:
        upper, net, m_star, dirs = up2, net2, m2, dirs2
    upper = min(upper, best[0]) if net is best[1] else upper
    info = {
        "patterns": int(geo.patterns.shape[0]),
        "blocks": len(state.D),
        "rounds": rounds,
    }
    if not geo.exact:
        info["oracle"] = oracle
        if upper - lower > tol * abs(upper):  # a bracket: its upper end is the best network known
            for start in [net, *warm]:
                w = local_network(p, start)
                vw = objective(p, w)
                if vw < upper:
                    upper, net = vw, w
                    m_star = int(np.sum(np.abs(w.weights[1][:, 0]) > 0))
                    dirs = _directions(w)
                    info["upper_from"] = "local search"
    net = _pad(p, net, net.weights[0].shape[1])
    certified = geo.exact or oracle["exact"]
    return _make_optimum(p, geo, net, upper, lower, m_star, dirs, tol, info, certified=certified)


_WARM: contextvars.ContextVar[tuple] = contextvars.ContextVar("two_layer_warm", default=())


@contextlib.contextmanager
def warm_starts(networks: Sequence[Network]) -> Iterator[None]:
    """Within the block, :func:`solve_two_layer` calls that pass no ``warm_start`` (e.g. through
    :func:`solvers.solve`) use ``networks`` (a sweep trial's SGD and polished networks). Only
    networks of the problem being solved may be given (their neurons become blocks)."""
    token = _WARM.set(tuple(networks))
    try:
        yield
    finally:
        _WARM.reset(token)


def solve_two_layer(
    p: Problem,
    *,
    tol: float = TOL,
    cap: int = MAX_PATTERNS,
    patterns: np.ndarray | None = None,
    seed: int = 0,
    warm_start: Sequence[Network] | None = None,
    time_limit: float = TIME_LIMIT,
) -> Optimum:
    """P*, the optimal network and its certificate for a two-layer ReLU problem (THEORY §10).

    Args:
        p: depth 2, relu, K = 1, no batch norm; any X (no zero row without bias), n ≥ 2.
        tol: certified relative duality gap to reach (beyond the cap at least
            ``TOL_BEYOND_CAP`` = 1e-6: the MIP oracle and the conic solve stall near 1e-8).
        cap: largest a-priori pattern count to enumerate; beyond it patterns are sampled.
        patterns: (P, n) boolean patterns to use instead of the enumeration (BRACKET result).
        seed: for sampled patterns.
        warm_start: known networks of the problem (SGD's, a polish's; default: those of an
            enclosing :func:`warm_starts` block; networks of other shapes are ignored): their
            neurons join the
            first working set, and beyond the cap a bracket's upper end is at most the best of
            them after L-BFGS (:func:`local_network`).
        time_limit: seconds beyond the cap (column generation priced by the local search, the
            exact check by the MIP oracle of :mod:`solvers.separation`); on expiry a BRACKET
            whose ends are both rigorous. Within the cap the enumeration decides (no limit).

    Returns:
        :class:`Optimum` (family ``"relu_two_layer"``): ``objective`` the §0 objective of
        ``network`` (a real network, so an upper bound on P*), ``lower_bound`` a certified lower
        bound, ``rel_gap`` their relative distance, ``status`` CERTIFIED when all patterns were
        enumerated (or, beyond the cap, the MIP oracle proved ``c(λ)``) and ``rel_gap ≤ tol``,
        else BRACKET (``info["not_covered"]`` says why);
        ``m_star`` active neurons, ``directions`` (d, m*) their unit first-layer weights.

    Raises:
        NotCovered: outside the family, n = 1, or a zero row without bias.
    """
    p = _check_problem(p)
    if patterns is None and seed == 0:
        geo = _cached_geometry(p.X, p.bias, cap)  # shared with two_layer_certificate
    else:
        geo = _geometry(p.X, p.bias, cap=cap, patterns=patterns, seed=seed)
    y = p.Y[:, 0]
    if not np.any(y != 0) or (p.bias and np.allclose(y, y.mean(), rtol=0, atol=0)):
        return _trivial(p, geo)
    warm = _WARM.get() if warm_start is None else warm_start
    warm = [w for w in warm if _fits(p, w)]
    if not geo.exact:  # the oracle's check and the conic solve reach ~1e-8, not 1e-8 certain
        tol = max(tol, TOL_BEYOND_CAP)
    return _solve_on(p, _State(geo), tol=tol, warm_start=warm, time_limit=time_limit)


def _fits(p: Problem, net: Network | Sequence[np.ndarray]) -> bool:
    """A two-layer network of ``p``'s shapes (``d`` inputs, one output, biases iff ``p.bias``)."""
    net = as_network(net)
    return (
        len(net.weights) == 2
        and net.weights[0].shape[0] == p.d
        and net.weights[1].shape == (net.weights[0].shape[1], 1)
        and (net.biases is not None) == bool(p.bias)
    )


def _trivial(p: Problem, geo: _Geometry) -> Optimum:
    """y = 0 (or, with bias, y constant): the zero network (plus the constant neuron) is optimal;
    P* = 0 and the certificate is 0 as well."""
    c = float(p.Y[0, 0]) if geo.bias else 0.0
    W2 = np.zeros((1, 1))
    b1 = np.zeros(1)
    if c != 0.0:
        a = np.sqrt(2.0 * 1e-14 * 0.5 * p.n * c * c / p.beta)
        W2[0, 0] = np.sign(c) * a
        b1[0] = abs(c) / a
    net = Network(weights=(np.zeros((p.d, 1)), W2), biases=(b1,) if geo.bias else None)
    net = _pad(p, net, 1 if c != 0.0 else 0)
    val = objective(p, net)
    return _make_optimum(p, geo, net, val, 0.0, 0, np.zeros((p.d, 0)), TOL, {"trivial": True})


def solve_two_layer_path(
    p: Problem, betas: Sequence[float], *, tol: float = TOL, cap: int = MAX_PATTERNS
) -> list[Optimum]:
    """:func:`solve_two_layer` for every β of ``betas`` on the same (X, y, bias): one pattern
    enumeration, and each solve starts from the working set of the previous β (warm start).
    Each result equals the single solve up to the certified tolerance (not bit for bit: the
    working sets differ)."""
    p = _check_problem(p)
    geo = _geometry(p.X, p.bias, cap=cap)
    state = _State(geo)
    out = []
    for beta in betas:
        pb = dataclasses.replace(p, beta=float(beta))
        y = pb.Y[:, 0]
        if not np.any(y != 0):
            out.append(_trivial(pb, geo))
        else:
            out.append(_solve_on(pb, state, tol=tol))
    return out


# ------------------------------------------------------------------ beyond the cap
def _sep_block(geo: _Geometry, res: SepResult) -> tuple[np.ndarray, int, float]:
    """A separation maximiser as a block (its pattern ``1[Xu + b > 0]`` holds it: a cone of the
    program) with its sign and value."""
    return np.asarray(res.pattern, bool), int(res.sign), float(res.value)


def _searched(p: Problem, lam: np.ndarray, beta: float) -> list[tuple[np.ndarray, int, float]]:
    """Violated blocks found by the oracle's local search at ``±λ`` (no bound: pricing only)."""
    out = []
    for sg in (1, -1):
        res = local_search(p.X, sg * lam, bias=p.bias)
        if res.value > beta * (1.0 + 1e-10):
            out.append((np.asarray(res.pattern, bool), sg, float(res.value)))
    return sorted(out, key=lambda v: -v[2])


def _network_blocks(geo: _Geometry, net: Network) -> list[tuple[np.ndarray, int]]:
    """The (pattern, sign) blocks of a network's neurons (neurons with zero output skipped)."""
    W1, W2 = net.weights[0], net.weights[1][:, 0]
    b = net.biases[0] if (geo.bias and net.biases is not None) else np.zeros(W1.shape[1])
    out = []
    for j in np.flatnonzero((W2 != 0) & np.any(W1 != 0, axis=0)):
        z = geo.V.T @ W1[:, j]
        a = geo.Xt[:, : geo.r] @ z + (b[j] if geo.bias else 0.0)
        out.append((a > 0, int(np.sign(W2[j]))))
    return out


def _directions(net: Network) -> np.ndarray:
    """Unit first-layer weights of the neurons with non-zero output and input."""
    W1, W2 = net.weights[0], net.weights[1][:, 0]
    nrm = np.linalg.norm(W1, axis=0)
    keep = (W2 != 0) & (nrm > 0)
    return W1[:, keep] / nrm[keep]


def _seed_network(p: Problem, lam: np.ndarray, width: int = 8) -> Network:
    """Small neurons on the local search's best directions at ``±λ`` (L-BFGS cannot leave the
    zero network: its gradient vanishes there)."""
    cols, bs, outs = [], [], []
    for k in range(width // 2):
        for sg in (1, -1):
            res = local_search(p.X, sg * lam, bias=p.bias, directions=500, seed=k + 1)
            if res.value > 0:
                cols.append(res.u)
                bs.append(res.b)
                outs.append(sg)
    if not cols:
        cols, bs, outs = [np.zeros(p.d)], [0.0], [0.0]
    scale = 0.1 * math.sqrt(max(float(np.abs(lam).max()), 1e-12))
    W1 = np.array(cols).T * scale
    W2 = np.array(outs, float)[:, None] * scale
    return Network(weights=(W1, W2), biases=(np.array(bs) * scale,) if p.bias else None)


def local_network(p: Problem, net: Network, *, maxiter: int = LOCAL_MAXITER) -> Network:
    """L-BFGS (scipy, float64, analytic gradient) of the §0 objective from a two-layer network
    (its width; hidden biases unregularised). Used for the upper end of a bracket: the result is
    an actual network, so its objective bounds P* from above whatever the local minimum. A
    network with no active neuron is replaced by :func:`_seed_network` first."""
    from scipy.optimize import minimize

    X, y, beta = p.X, p.Y[:, 0], p.beta
    net = as_network(net)
    if not np.any(_directions(net).size):
        net = _seed_network(p, _residual(p, net))
    d, m = net.weights[0].shape
    bias = p.bias

    def split(th: np.ndarray):
        W1 = th[: d * m].reshape(d, m)
        a = th[d * m : d * m + m]
        b = th[d * m + m :] if bias else np.zeros(m)
        return W1, a, b

    def fg(th: np.ndarray):
        W1, a, b = split(th)
        H = X @ W1 + b
        A = H > 0
        R = np.where(A, H, 0.0)
        r = R @ a - y
        f = 0.5 * float(r @ r) + 0.5 * beta * (float(np.sum(W1 * W1)) + float(a @ a))
        dH = np.outer(r, a) * A
        g = [(X.T @ dH + beta * W1).ravel(), R.T @ r + beta * a]
        if bias:
            g.append(dH.sum(axis=0))
        return f, np.concatenate(g)

    b0 = net.biases[0] if (bias and net.biases is not None) else np.zeros(m)
    th0 = np.concatenate([net.weights[0].ravel(), net.weights[1][:, 0]] + ([b0] if bias else []))
    res = minimize(
        fg, th0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter, "gtol": 1e-12}
    )
    W1, a, b = split(res.x)
    out = Network(weights=(W1.copy(), a[:, None].copy()), biases=(b.copy(),) if bias else None)
    return out if objective(p, out) <= objective(p, net) else net


# ------------------------------------------------------------------ Newton polish
def _faces(
    geo: _Geometry, Dw: np.ndarray, s: np.ndarray, Z: np.ndarray
) -> list[tuple[int, int, np.ndarray, np.ndarray]] | None:
    """Active blocks of a (near-)optimal restricted solution and their face maps ``C_j``
    (n × q, ``B_j = C_j C_jᵀ``): the face of ``K_j`` holding ``z_j`` is
    ``N_j = {z : a_iᵀz = 0, i ∈ F_j}`` (constraints active at ``z_j``), ``E`` = the u-part norm,
    ``C_j = D_j Xt Q (QᵀEQ)^{-1/2}`` with ``Q`` a basis of ``N_j``."""
    r, k = geo.r, geo.k
    nu = np.linalg.norm(Z[:, :r], axis=1)
    top = float(np.max(nu)) if nu.size else 0.0
    if top == 0.0:
        return []
    out: list[tuple[int, int, np.ndarray, np.ndarray]] = []
    dirs: list[tuple[float, np.ndarray]] = []
    xn = np.linalg.norm(geo.Xt, axis=1)
    for i in np.flatnonzero(nu > 1e-6 * top):
        z = Z[i]
        zn = z / np.linalg.norm(z)
        if any(sd == s[i] and float(zn @ dd) > 1.0 - 1e-7 for sd, dd in dirs):
            continue  # the same neuron split over adjacent patterns: one copy
        dirs.append((float(s[i]), zn))
        A = (2.0 * Dw[i] - 1.0)[:, None] * geo.Xt
        act = (A @ zn) <= 1e-7 * xn
        if np.any(act):
            _, sv, Vt = np.linalg.svd(A[act], full_matrices=True)
            rank = int(np.sum(sv > FACE_RTOL * sv[0]))
            Q = Vt[rank:].T
        else:
            Q = np.eye(k)
        if Q.shape[1] == 0:
            return None
        EQ = Q[:r].T @ Q[:r]
        w, U = np.linalg.eigh(EQ)
        if w[0] <= 1e-12 * max(w[-1], 1e-300):
            return None  # a pure-bias direction in the face: leave it to the conic solve
        C = (Dw[i][:, None] * geo.Xt) @ (Q @ (U / np.sqrt(w)))
        R = (Q @ (U / w)) @ (U.T @ Q.T)  # Q (QᵀEQ)^{-1} Qᵀ
        out.append((int(i), int(s[i]), C, R))
    return out


def _polish(
    p: Problem,
    geo: _Geometry,
    faces: list,
    tau0: np.ndarray,
    *,
    iters: int = 30,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Maximise the concave ``ψ(τ) = −½ỹᵀH(τ)^{-1}ỹ − ½β²Στ``, ``H = I + Σ τ_j C̃_jC̃_jᵀ``
    over ``τ ≥ 0`` by projected Newton (the face-restricted program's dual; ``C̃ = PC``, ``ỹ = Py``
    centred with bias). Returns ``(λ, τ, ‖projected gradient‖)``."""
    n = p.n
    y = p.Y[:, 0]
    beta = p.beta
    Pc = (lambda v: v - v.mean(axis=0, keepdims=True)) if geo.bias else (lambda v: v)
    yt = Pc(y)
    Cs = [Pc(f[2]) for f in faces]
    m = len(Cs)
    if m == 0:
        return None
    tau = np.maximum(np.asarray(tau0, float), 0.0)

    sizes = np.array([C.shape[1] for C in Cs])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    Cst = np.hstack(Cs)  # (n, Σq)

    def evaluate(t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        Cw = Cst * np.sqrt(np.repeat(t, sizes))[None, :]
        H = np.eye(n) + Cw @ Cw.T
        cf = np.linalg.cholesky(H)
        lam = np.linalg.solve(cf.T, np.linalg.solve(cf, yt))
        proj = Cst.T @ lam
        grad = 0.5 * (np.add.reduceat(proj * proj, starts) - beta * beta)
        psi = -0.5 * float(yt @ lam) - 0.5 * beta * beta * float(np.sum(t))
        W = np.add.reduceat(Cst * proj[None, :], starts, axis=1)  # (n, m): B_j λ
        HinvW = np.linalg.solve(cf.T, np.linalg.solve(cf, W))
        hess = W.T @ HinvW  # −∇²ψ
        return psi, lam, grad, hess

    try:
        psi, lam, grad, hess = evaluate(tau)
        for _ in range(iters):
            free = (tau > 0) | (grad > 0)
            pg = np.where(free, grad, 0.0)
            if np.max(np.abs(pg)) <= 1e-15 * beta * beta:
                break
            F = np.flatnonzero(free)
            hF = hess[np.ix_(F, F)]
            step = np.zeros(m)
            step[F] = np.linalg.lstsq(
                hF + 1e-14 * np.trace(hF) / len(F) * np.eye(len(F)), grad[F], rcond=None
            )[0]
            t, improved = 1.0, False
            for _ls in range(12):
                cand = np.maximum(tau + t * step, 0.0)
                c_psi, c_lam, c_grad, c_hess = evaluate(cand)
                if c_psi >= psi - 1e-15 * abs(psi):
                    improved = True
                    break
                t *= 0.5
            if not improved:
                break
            tau, psi, lam, grad, hess = cand, c_psi, c_lam, c_grad, c_hess
        free = (tau > 0) | (grad > 0)
        return lam, tau, float(np.max(np.abs(np.where(free, grad, 0.0))))
    except np.linalg.LinAlgError:
        return None


def _polished_blocks(
    p: Problem,
    geo: _Geometry,
    Dw: np.ndarray,
    faces: list,
    lam: np.ndarray,
    tau: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Blocks ``z_j = τ_j Q(QᵀEQ)^{-1}Qᵀ g_j`` of the polished solution, as (J, s, Z, const)."""
    y = p.Y[:, 0]
    S, Zs = [], []
    f = np.zeros(p.n)
    for (j, sj, _C, R), tj in zip(faces, tau, strict=False):
        if tj <= 0:
            continue
        A = Dw[j][:, None] * geo.Xt
        z = tj * (R @ (sj * (A.T @ lam)))
        S.append(sj)
        Zs.append(z)
        f += sj * (A @ z)
    const = float(np.mean(y - f)) if geo.bias else 0.0
    k = geo.k
    return np.array(S, float), np.array(Zs).reshape(-1, k), const


# ------------------------------------------------------------------ certificate
_GEO_CACHE: dict[tuple, _Geometry] = {}
_GEO_CACHE_SIZE = 8


def _cached_geometry(X: np.ndarray, bias: bool, cap: int) -> _Geometry:
    """Geometry (patterns and faces) of one data matrix, cached by content (a sweep certifies
    many networks on the same X)."""
    key = (X.shape, np.ascontiguousarray(X).tobytes(), bool(bias), int(cap))
    geo = _GEO_CACHE.get(key)
    if geo is None:
        geo = _geometry(X, bias, cap=cap)
        if len(_GEO_CACHE) >= _GEO_CACHE_SIZE:
            _GEO_CACHE.pop(next(iter(_GEO_CACHE)))
        _GEO_CACHE[key] = geo
    return geo


def relaxed_dual_norm(X: np.ndarray, lam: np.ndarray, *, bias: bool = False) -> float:
    """A provable upper bound on ``c(λ)`` without patterns (used beyond the cap).

    No bias: ``λᵀ(Xu)_+ ≤ λ_+ᵀ(Xu)_+ ≤ Σ_i λ_i^+ |x_iᵀu|`` and likewise for ``−λ``, and for
    ``w ≥ 0``, ``Σ w_i|x_iᵀu| ≤ min(‖w‖‖X‖₂, Σ w_i‖x_i‖, √(1ᵀw)‖diag(√w)X‖₂)`` (Cauchy–Schwarz,
    triangle, weighted Cauchy–Schwarz); THEORY §7's relaxation is the first term.
    Bias (``1ᵀλ = 0``): ``λᵀσ(Xu + b) = λᵀ(σ(Xu + b) − σ(x̄ᵀu + b)1)`` and ReLU is 1-Lipschitz, so
    ``≤ Σ|λ_i||(x_i − x̄)ᵀu| ≤ min(‖λ‖‖X − 1x̄ᵀ‖₂, Σ|λ_i|‖x_i − x̄‖)``.
    """
    X = np.asarray(X, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)

    def weighted(w: np.ndarray, A: np.ndarray) -> float:
        return min(
            float(np.linalg.norm(w)) * float(np.linalg.norm(A, 2)),
            float(w @ np.linalg.norm(A, axis=1)),
            float(np.sqrt(np.sum(w))) * float(np.linalg.norm(np.sqrt(w)[:, None] * A, 2)),
        )

    if bias:
        Xc = X - X.mean(axis=0, keepdims=True)
        return weighted(np.abs(lam), Xc)
    return max(weighted(np.maximum(lam, 0.0), X), weighted(np.maximum(-lam, 0.0), X))


def dual_norm(
    X: np.ndarray, lam: np.ndarray, *, bias: bool = False, cap: int = MAX_PATTERNS
) -> tuple[float, bool]:
    """``(c̄, exact)``: ``c̄ ≥ c(λ) = max_{‖u‖≤1, b} |λᵀ(Xu + b)_+|`` (``b = 0`` without bias),
    equal to it (``exact``) when the faces of the arrangement can be enumerated (a-priori pattern
    count ≤ ``cap``), else :func:`relaxed_dual_norm`. With bias, λ must be centred (else
    ``c(λ) = ∞``; returned as ``inf``)."""
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    if bias and abs(float(lam.sum())) > 1e-12 * max(float(np.abs(lam).sum()), 1e-300):
        return np.inf, True
    try:
        geo = _cached_geometry(X, bias, cap)
    except NotCovered:
        return relaxed_dual_norm(X, lam, bias=bias), False
    if not geo.exact:
        return relaxed_dual_norm(X, lam, bias=bias), False
    return dual_norm_exact(geo, lam)[0], True


def two_layer_certificate(
    p: Problem, weights: Sequence[np.ndarray] | Network, *, cap: int = MAX_PATTERNS
) -> float:
    """A lower bound on P* from any two-layer ReLU network (THEORY §7, §10): the residual
    ``λ = y − f(X)`` (centred with bias) scaled by the best ``α ∈ [0, β/c̄(λ)]``, value
    ``αλᵀy − ½α²‖λ‖²``. ``c̄`` is the exact ``c(λ)`` over every face of the arrangement when
    it can be enumerated (tight at the optimal network: KKT), else :func:`relaxed_dual_norm`
    (valid, loose). Never above P*.

    Raises:
        NotCovered: not a two-layer ReLU problem with K = 1 (see :func:`solve_two_layer`).
    """
    p = _check_problem(p)
    net = as_network(weights)
    y = p.Y[:, 0]
    lam = y - forward(p, net)[:, 0]
    if p.bias:
        lam = lam - lam.mean()
    if p.n < 2 or (not p.bias and not np.all(np.any(p.X != 0, axis=1))):
        cbar = relaxed_dual_norm(p.X, lam, bias=p.bias)
    else:
        cbar, _ = dual_norm(p.X, lam, bias=p.bias, cap=cap)
    return _scaled_dual(lam, y, p.beta, cbar)
