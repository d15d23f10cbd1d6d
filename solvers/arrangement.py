"""The hyperplane arrangement of THEORY §10: activation patterns and the exact ``c(λ)`` per pattern.

Data ``X̃ = X`` (no bias) or ``X̃ = [X, 1]`` (bias), patterns ``D = diag(1[X̃z ≥ 0])``; the
program of :mod:`solvers.relu_program` runs over them and :mod:`solvers.column_generation`
prices with :func:`dual_norm_exact` (:mod:`solvers.two_layer` has the overview).

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
(19,840), n = 12 up to d = 5 with bias; every pricing call visits the cells (vectorised, then
one small NNLS per cell its bounds do not settle). Beyond the cap :func:`enumerate_patterns`
raises :class:`NotCovered` naming the count, and :func:`solvers.two_layer.solve_two_layer`
works on 20,000 sampled directions and the separation oracle (:mod:`solvers.column_generation`).

**Exact c(λ) per pattern (issue 17).** On the closed cone ``K = {z : Az ≥ 0}``,
``A = (2D − I)X̃``, of a cell the function is linear, ``±gᵀz`` with ``g = X̃ᵀDλ``, and by Lagrange
duality (weak duality suffices for validity)

    max_{z∈K, ‖z_u‖≤1} gᵀz  ≤  ‖g_u + A_uᵀμ‖ + M|g_b + a_bᵀμ|   for EVERY μ ≥ 0

(second term with bias only: ``|b| ≤ M = max_i ‖x_i‖`` on every cone but the all-on one, where
``g_b = 1ᵀλ = 0``), with equality at the optimal μ; without bias it is Moreau's
``‖Π_K(g)‖ = min_{μ≥0} ‖g + Aᵀμ‖``, an NNLS (:func:`_cone_max`). Most cells never need it:
one vectorised pass gives, per cell and sign, the unconstrained maximiser (exact when it lies
in the cell) and a few steps of an active-set method on the cone's dual (a valid bound for every
cell; the maximum when its point lies in the cell): :func:`_cell_values`,
:func:`_active_set_values` (with bias :func:`_bias_bound`: the KKT point whose active row
fixes ``b``). The remaining cells are solved in decreasing order of that bound and
skipped once it is at most the best value found (or the ``top``-th best candidate): exact, and
nothing but the cells is stored — at n = 13, d = 10 the face enumeration it replaces held
1,250,418 faces for 8,034 cells. Every value returned is a dual value (or a KKT point accepted
by a test that errs towards accepting), so ``c̄ ≥ c(λ)`` always; a violated cell's pattern is a
valid block (its cone holds the maximiser).

Tolerances (module constants, each with its reason next to it): ``ON_RAY_RTOL`` (a point on a
ray), ``FACE_RTOL`` (rank of a subset of rows), ``FEAS_RTOL`` (a candidate maximiser in its
cell; errs towards accepting, so ``c̄ ≥ c(λ)``), ``BIAS_WEIGHT`` and ``NNLS_MAXITER`` (the cone
NNLS), ``ACTIVE_STEPS``, ``VIOLATION_RTOL`` (a block is violated), ``HYPERPLANE_ATOL``,
``CENTRED_RTOL``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from scipy.optimize import nnls

from solvers.detect import RANK_TOL
from solvers.problem import NotCovered
from solvers.scalar import scaled_dual_value

__all__ = [
    "MAX_PATTERNS",
    "Geometry",
    "cached_geometry",
    "dual_norm",
    "dual_norm_exact",
    "enumerate_patterns",
    "geometry",
    "pattern_count_bound",
    "price",
    "relaxed_dual_norm",
    "sample_patterns",
    "scaled_dual",
]

MAX_PATTERNS = 20_000  # cap on the a-priori pattern count 2 Σ_{k<r} C(n−1, k)
ON_RAY_RTOL = 1e-9  # |x̃_iᵀv| ≤ ON_RAY_RTOL ‖x̃_i‖: point i lies on the ray v
FACE_RTOL = 1e-10  # σ_min ≤ FACE_RTOL·σ_1: a subset of rows (or lifted X) is rank deficient
SAMPLED_PATTERNS = 20_000  # directions sampled beyond the cap
FEAS_RTOL = 1e-9  # a candidate maximiser counts as inside its cell up to this (errs high: valid)
NNLS_MAXITER = 50  # × n: Lawson–Hanson iterations (it needs about n; 50n only against cycling)
BIAS_WEIGHT = 1e6  # × max(M, 1): weight of the bias equality in the NNLS (then solved exactly)
ACTIVE_STEPS = 3  # rows the vectorised active set adds per cell before NNLS (fastest at d = 5)
PRICE_CONE_SOLVES = 256  # sampled cells: cone maxima (NNLS) per pricing call, best bounds first
CANDIDATES = 32  # distinct candidate maximisers a pricing call returns by default (best first)
VIOLATION_RTOL = 1e-10  # value > β(1 + VIOLATION_RTOL): violated (round-off of β is no news)
HYPERPLANE_ATOL = (
    1e-12  # a unit row's leading entry (its sign orients the hyperplane) is above this
)
CENTRED_RTOL = 1e-12  # |Σλ| (or g_b) ≤ this × Σ|λ|: centred (with bias c(λ) is finite only then)


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
    lead = np.argmax(np.abs(U) > HYPERPLANE_ATOL, axis=1)
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
@dataclasses.dataclass
class Geometry:
    """Reduced coordinates: ``X = Xr Vᵀ`` (``V`` orthonormal, d × r), lifted ``Xt = [Xr, 1]``
    with bias; ``patterns`` (P, n) the full-dimensional cells and whether they are all of them
    (``exact``); ``M = max_i ‖x_i‖`` bounds ``|b|`` on every cell's cone (bias)."""

    bias: bool
    V: np.ndarray
    Xt: np.ndarray
    r: int
    M: float
    patterns: np.ndarray
    exact: bool
    reason: str = ""

    @property
    def k(self) -> int:
        return self.Xt.shape[1]


def geometry(
    X: np.ndarray,
    bias: bool,
    *,
    cap: int = MAX_PATTERNS,
    patterns: np.ndarray | None = None,
    seed: int = 0,
) -> Geometry:
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
    return Geometry(bias, V, Xt, r, M, np.asarray(patterns, bool), exact, reason)


def _cell_values(geo: Geometry, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    small = np.abs(gb) <= CENTRED_RTOL * (np.abs(lam) @ np.ones_like(lam) + 1e-300)
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


def _cone_max(geo: Geometry, D: np.ndarray, g: np.ndarray) -> tuple[float, np.ndarray]:
    """``max {gᵀz : z ∈ K_D, ‖z_u‖ ≤ 1}`` for the cone ``K_D = {z : Az ≥ 0}``, ``A = (2D − I)X̃``,
    and a maximiser ``z`` (module doc). The value is ``‖g_u + A_uᵀμ‖ + M|g_b + a_bᵀμ|`` at the
    ``μ ≥ 0`` found (second term: bias only): an upper bound on the maximum for EVERY ``μ ≥ 0``
    (weak duality), equal to it at the optimal μ — NNLS (Lawson–Hanson) finds it to round-off
    without bias; with bias the equality ``g_b + a_bᵀμ = 0`` is imposed by weighting, then solved
    exactly on the support the weighted NNLS found."""
    A = (2.0 * D - 1.0)[:, None] * geo.Xt
    n, r = A.shape[0], geo.r
    if not geo.bias:
        mu, _ = nnls(A.T, -g, maxiter=NNLS_MAXITER * n)
        w = g + A.T @ mu
        val = float(np.linalg.norm(w))
        return val, (w / val if val > 0 else w)
    Au, ab = A[:, :r], A[:, r]
    wgt = BIAS_WEIGHT * max(geo.M, 1.0)

    def bound(mu: np.ndarray) -> tuple[float, np.ndarray]:
        w = g[:r] + Au.T @ mu
        return float(np.linalg.norm(w)) + geo.M * abs(float(g[r] + ab @ mu)), w

    mu, _ = nnls(
        np.vstack([Au.T, wgt * ab[None, :]]),
        -np.concatenate([g[:r], [wgt * g[r]]]),
        maxiter=NNLS_MAXITER * n,
    )
    val, w = bound(mu)
    S = np.flatnonzero(mu > 0)
    if S.size:  # the equality-constrained least squares on the support (KKT), if still ≥ 0
        B, m = Au[S].T, S.size
        K = np.zeros((m + 1, m + 1))
        K[:m, :m] = B.T @ B
        K[:m, m] = K[m, :m] = ab[S]
        rhs = np.append(-B.T @ g[:r], -g[r])
        try:
            sol = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:  # dependent rows on the support
            sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
        if np.all(sol[:-1] >= 0):
            mu2 = np.zeros(n)
            mu2[S] = sol[:-1]
            val2, w2 = bound(mu2)
            if val2 < val:
                val, w = val2, w2
    nw = float(np.linalg.norm(w))
    u = w / nw if nw > 0 else w
    a = geo.Xt[:, :r] @ u
    lo = float(np.max(-a[D], initial=-np.inf))  # active: b ≥ −x_iᵀu
    hi = float(np.min(-a[~D], initial=np.inf))  # inactive: b ≤ −x_iᵀu
    b = hi if g[r] > 0 else lo if g[r] < 0 else float(np.clip(0.0, lo, hi))
    return val, np.concatenate([u, [b if np.isfinite(b) else 0.0]])


def _bias_bound(
    geo: Geometry, D: np.ndarray, G: np.ndarray, val: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """With bias, per cell and sign (P, 2): the KKT point with ONE active constraint, the one
    that fixes the bias. At ``μ = |g_b| e_i`` (``i`` inactive when ``s·g_b > 0``, active when
    ``< 0``: then ``g_b + a_bᵀμ = 0``) :func:`_cone_max`'s bound is ``‖g_u − g_b x_i‖``, so
    ``min_i`` of it is a valid upper bound (at most ``‖g_u‖ + M|g_b|``, ``val``, kept where it is
    smaller: the all-on / all-off cells), and it is the maximum when ``u = s(g_u − g_b x_i)``
    normalised with ``b = −x_iᵀu`` lies in the cone (KKT; feasibility errs towards accepting).
    Returns the bound and the mask of the exact ones."""
    r = geo.r
    gu, gb = G[:, :r], G[:, r]
    Xr = geo.Xt[:, :r]
    sq = (
        np.sum(gu * gu, axis=1)[:, None]
        - 2.0 * gb[:, None] * (gu @ Xr.T)
        + (gb * gb)[:, None] * np.sum(Xr * Xr, axis=1)[None, :]
    )
    nrm = np.sqrt(np.maximum(sq, 0.0))
    xn = np.linalg.norm(geo.Xt, axis=1)
    S = 2.0 * D - 1.0
    rows = np.arange(D.shape[0])
    out, exact = np.empty_like(val), np.zeros(val.shape, bool)
    for si, sg in enumerate((1.0, -1.0)):
        carrier = np.where((sg * gb > 0)[:, None], ~D, D)
        masked = np.where(carrier, nrm, np.inf)
        i = np.argmin(masked, axis=1)
        out[:, si] = np.minimum(masked[rows, i], val[:, si])
        W = sg * (gu - gb[:, None] * Xr[i])
        nw = np.linalg.norm(W, axis=1)
        U = W / np.where(nw > 0, nw, 1.0)[:, None]
        H = U @ Xr.T
        H = S * (H - H[rows, i][:, None])  # b = −x_iᵀu
        feas = np.all(H >= -FEAS_RTOL * xn[None, :], axis=1)
        exact[:, si] = feas & (nw > 0) & (masked[rows, i] <= val[:, si])
    return out, exact


def _active_set_values(
    geo: Geometry, D: np.ndarray, G: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """No bias, per cell and sign (P, 2): all cells at once, an active-set method on the cone's
    dual (Lawson–Hanson without its removal step). The active set starts empty; each step adds
    the most violated row ``a_j`` of ``A = (2D − I)X`` (at most ``ACTIVE_STEPS``) at the current
    ``w = g + A_Sᵀμ`` (``μ`` the least-squares multipliers of the active rows, so ``A_Sw = 0``).
    While ``μ ≥ 0``, ``‖w‖``
    bounds the cell's maximum (weak duality, as in :func:`_cone_max`); when ``w`` is also in the
    cone it is the maximum (KKT; feasibility errs towards accepting, so never below). A cell whose
    ``μ`` turns negative keeps its last bound and is left to :func:`_cone_max`. Returns the bounds,
    the mask of the exact ones and their maximisers (P, 2, k; unnormalised)."""
    X = geo.Xt
    P, k = G.shape
    xn = np.linalg.norm(X, axis=1)
    S = 2.0 * D - 1.0
    vals, exact = np.empty((P, 2)), np.zeros((P, 2), bool)
    Wx = np.zeros((P, 2, k))
    for si, sg in enumerate((1.0, -1.0)):
        g = sg * G
        vals[:, si] = np.linalg.norm(g, axis=1)
        live = np.arange(P)  # cells still being refined
        w = g.copy()
        act = np.zeros((P, 0), dtype=np.intp)
        for _ in range(min(k, ACTIVE_STEPS) + 1):
            H = S[live] * (w @ X.T) / xn[None, :]  # (L, n): a_jᵀw / ‖a_j‖
            nw = np.linalg.norm(w, axis=1)
            inside = np.all(H >= -FEAS_RTOL * nw[:, None], axis=1)
            exact[live[inside], si] = True
            Wx[live[inside], si] = w[inside]
            keep = ~inside
            live, w, act, H = live[keep], w[keep], act[keep], H[keep]
            if live.size == 0 or act.shape[1] == min(k, ACTIVE_STEPS):
                break
            act = np.hstack([act, np.argmin(H, axis=1)[:, None]])
            A_S = S[live[:, None], act][:, :, None] * X[act]  # (L, m, k)
            gl = g[live]
            gram = A_S @ np.swapaxes(A_S, 1, 2)
            rhs = -(A_S @ gl[:, :, None])
            try:
                mu = np.linalg.solve(gram, rhs)[:, :, 0]
            except np.linalg.LinAlgError:  # dependent active rows: least squares
                mu = (np.linalg.pinv(gram) @ rhs)[:, :, 0]
            ok = np.all(mu >= 0, axis=1) & np.all(np.isfinite(mu), axis=1)
            w = gl + (np.swapaxes(A_S, 1, 2) @ mu[:, :, None])[:, :, 0]
            live, w, act = live[ok], w[ok], act[ok]
            vals[live, si] = np.minimum(vals[live, si], np.linalg.norm(w, axis=1))
    return vals, exact, Wx


def dual_norm_exact(
    geo: Geometry,
    lam: np.ndarray,
    *,
    top: int = CANDIDATES,
    floor: float = 0.0,
    max_solves: int | None = None,
) -> tuple[float, list]:
    """``c(λ) = max_{‖u‖≤1, b} |λᵀ(X̃z)_+|`` per pattern (module doc). Vectorised first: every
    cell (and sign) whose unconstrained maximiser lies in it, or whose maximiser the first
    ``ACTIVE_STEPS`` steps of :func:`_active_set_values` reach (with bias :func:`_bias_bound`:
    the row that fixes ``b``), is exact at once; the others are solved by :func:`_cone_max` in
    decreasing order of the same functions' upper bound until that bound is at most the
    ``top``-th best distinct value found (``c(λ)`` alone: ``top = 0``, until it is at most the
    best; candidates at most ``floor`` are not wanted: a pricing call's β). Feasibility errs
    towards accepting and every value is a dual value, so the result is never below ``c(λ)``.
    Returns the value and up to ``max(top, 1)`` candidates ``(value, sign, D)`` sorted by value
    (largest first; ``D`` a cell whose cone holds the maximiser, one per maximiser).
    ``max_solves``: at most this many :func:`_cone_max` calls (pricing only: the value is then
    no longer ``c(λ)``)."""
    import heapq

    val, ok, _ = _cell_values(geo, lam)
    D = geo.patterns
    G = D.astype(np.float64) @ (lam[:, None] * geo.Xt)
    if geo.bias:
        fval, fok = _bias_bound(geo, D, G, val)
        Wx = None
    else:
        fval, fok, Wx = _active_set_values(geo, D, G)
        Wx[ok] = (G[:, None, :] * np.array([1.0, -1.0])[None, :, None])[ok]
    ub = np.where(ok, val, fval)
    ok = ok | fok
    exact = np.where(ok, ub, -np.inf)
    best = max(0.0, float(np.max(exact, initial=0.0)))
    keep = max(top, 1)
    idx = np.argwhere(np.isfinite(exact))
    idx = idx[np.argsort(-exact[idx[:, 0], idx[:, 1]], kind="stable")]
    cands: list[tuple[float, int, np.ndarray]] = []
    heap: list[float] = []
    seen: dict[tuple[bytes, int], float] = {}

    def offer(v: float, sg: int, Di: np.ndarray, key: bytes) -> None:
        if v <= 0 or v <= seen.get((key, sg), -np.inf):
            return  # the same maximiser on the boundary of another cell
        seen[(key, sg)] = v
        if len(heap) < keep:
            heapq.heappush(heap, v)
        elif v > heap[0]:
            heapq.heapreplace(heap, v)
        else:
            return
        cands.append((v, sg, Di))

    xn = np.linalg.norm(geo.Xt, axis=1)

    def face(z: np.ndarray) -> bytes:
        """The face holding a maximiser: the sign vector of ``X̃z``."""
        h = geo.Xt @ z
        tol = ON_RAY_RTOL * xn * float(np.linalg.norm(z))
        return np.packbits(np.concatenate([h > tol, h < -tol])).tobytes()

    for i, si in idx:
        if len(heap) >= keep and exact[i, si] <= heap[0]:
            break
        key = b"cell" + np.packbits(D[i]).tobytes() if Wx is None else face(Wx[i, si])
        offer(float(exact[i, si]), 1 - 2 * int(si), D[i], key)
    ub = np.where(ok, -np.inf, ub)
    rest = np.argwhere(ub > 0)
    rest = rest[np.argsort(-ub[rest[:, 0], rest[:, 1]], kind="stable")]
    if max_solves is not None:
        rest = rest[:max_solves]
    for i, si in rest:
        wanted = max(heap[0] if len(heap) >= keep else 0.0, floor) if top > 0 else best
        cut_at = min(best, wanted)  # c(λ) needs ub > best, the candidates ub > wanted
        if ub[i, si] <= cut_at:
            break
        sg = 1 - 2 * int(si)
        v, z = _cone_max(geo, D[i], sg * G[i])
        best = max(best, v)
        offer(v, sg, D[i], face(z))
    cands.sort(key=lambda c: -c[0])
    return best, cands[:keep]


def price(
    geo: Geometry, lam: np.ndarray, *, beta: float | None = None, top: int = CANDIDATES
) -> tuple[float, list[tuple[np.ndarray, int, float]]]:
    """``(c̄, violators)``: ``c̄ ≥ c(λ)`` and new blocks ``(pattern, sign, value)`` whose cone
    holds a maximiser with value > β (largest first). With sampled patterns (not
    ``geo.exact``) the same exact maximum over each sampled cell's cone (:func:`dual_norm_exact`):
    every violator is a valid block, but ``c̄`` is the best SAMPLED cell, not a bound on
    ``c(λ)``, and at most ``PRICE_CONE_SOLVES`` cells that need an NNLS are solved (before
    issue 17's profiling only cells whose unconstrained maximiser lies inside were priced; in
    d = 5 almost none does, so the MIP oracle had to find every violator)."""
    floor = 0.0 if beta is None else beta * (1.0 + VIOLATION_RTOL)
    solves = None if geo.exact else PRICE_CONE_SOLVES
    cbar, cands = dual_norm_exact(geo, lam, top=top, floor=floor, max_solves=solves)
    viol = []
    if beta is not None:
        viol = [(D, s, v) for v, s, D in cands if v > beta * (1.0 + VIOLATION_RTOL)]
    return cbar, viol


def scaled_dual(lam: np.ndarray, y: np.ndarray, beta: float, cbar: float) -> float:
    """``max_{0 ≤ α ≤ β/c̄} αλᵀy − ½α²‖λ‖²`` (THEORY §7): :func:`solvers.scalar.scaled_dual_value`
    with ``a = λᵀy``, ``b = ‖λ‖²`` and ``α_max = β/c̄`` (∞ when ``c̄ = 0``)."""
    amax = np.inf if cbar <= 0 else beta / cbar
    return scaled_dual_value(float(lam @ y), float(lam @ lam), amax)


# ------------------------------------------------------------------ c(λ) for callers
_GEO_CACHE: dict[tuple, Geometry] = {}
_GEO_CACHE_SIZE = 8


def cached_geometry(X: np.ndarray, bias: bool, cap: int) -> Geometry:
    """Geometry (reduced data and patterns) of one data matrix, cached by content (a sweep certifies
    many networks on the same X)."""
    key = (X.shape, np.ascontiguousarray(X).tobytes(), bool(bias), int(cap))
    geo = _GEO_CACHE.get(key)
    if geo is None:
        geo = geometry(X, bias, cap=cap)
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
    equal to it (``exact``) when the cells of the arrangement can be enumerated (a-priori pattern
    count ≤ ``cap``), else :func:`relaxed_dual_norm`. With bias, λ must be centred (else
    ``c(λ) = ∞``; returned as ``inf``)."""
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    if bias and abs(float(lam.sum())) > CENTRED_RTOL * max(float(np.abs(lam).sum()), 1e-300):
        return np.inf, True
    try:
        geo = cached_geometry(X, bias, cap)
    except NotCovered:
        return relaxed_dual_norm(X, lam, bias=bias), False
    if not geo.exact:
        return relaxed_dual_norm(X, lam, bias=bias), False
    return dual_norm_exact(geo, lam, top=0)[0], True
