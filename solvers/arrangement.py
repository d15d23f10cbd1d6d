"""The hyperplane arrangement of THEORY §10: activation patterns, faces, and the exact ``c(λ)``.

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

Tolerances (module constants, each with its reason next to it): ``ON_RAY_RTOL`` (a point on a
ray or flat), ``FACE_RTOL`` (rank of a face's rows), ``FEAS_RTOL`` (a candidate maximiser in its
cell; errs towards accepting, so ``c̄ ≥ c(λ)``), ``VIOLATION_RTOL`` (a block is violated).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

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
FACE_RTOL = 1e-10  # σ_min ≤ FACE_RTOL·σ_1: rows of a face (or lifted X) rank deficient
SAMPLED_PATTERNS = 20_000  # directions sampled beyond the cap
FEAS_RTOL = 1e-9  # a candidate maximiser counts as inside its cell up to this (errs high: valid)
VIOLATION_RTOL = 1e-10  # value > β(1 + VIOLATION_RTOL): violated (round-off of β is no news)


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
class Geometry:
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
    geo = Geometry(bias, V, Xt, r, M, np.asarray(patterns, bool), exact, reason)
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
    geo: Geometry, f: _Faces, lam: np.ndarray
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


def dual_norm_exact(geo: Geometry, lam: np.ndarray) -> tuple[float, list]:
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


def price(
    geo: Geometry, lam: np.ndarray, *, beta: float | None = None
) -> tuple[float, list[tuple[np.ndarray, int, float]]]:
    """``(c̄, violators)``: ``c̄ ≥ c(λ)`` and new blocks ``(pattern, sign, value)`` whose cone
    holds a maximiser with value > β (largest first)."""
    if geo.exact:
        cbar, cands = dual_norm_exact(geo, lam)
    else:  # sampled patterns: only the cells we have (NOT a bound on c(λ))
        cbar, cands = _best([(geo.patterns, _cell_values(geo, lam))])
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
    """Geometry (patterns and faces) of one data matrix, cached by content (a sweep certifies
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
    equal to it (``exact``) when the faces of the arrangement can be enumerated (a-priori pattern
    count ≤ ``cap``), else :func:`relaxed_dual_norm`. With bias, λ must be centred (else
    ``c(λ) = ∞``; returned as ``inf``)."""
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    if bias and abs(float(lam.sum())) > 1e-12 * max(float(np.abs(lam).sum()), 1e-300):
        return np.inf, True
    try:
        geo = cached_geometry(X, bias, cap)
    except NotCovered:
        return relaxed_dual_norm(X, lam, bias=bias), False
    if not geo.exact:
        return relaxed_dual_norm(X, lam, bias=bias), False
    return dual_norm_exact(geo, lam)[0], True
