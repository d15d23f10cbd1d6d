"""A rigorous upper bound on the separation ``s(λ) = max_{‖u‖≤1, b} λᵀ(Xu + b)_+`` from the Shor
(semidefinite) relaxation with RLT products (issue 17: brackets beyond the MIP's reach).

**The relaxation.** In the reduced coordinates of :mod:`solvers.separation` (``x̃_i = x_i`` in the
row space; with bias ``x̃_i = (x_i − x̄, 1)`` and ``|b| ≤ B = max‖x_i − x̄‖``, which loses
nothing when ``1ᵀλ ≤ 0``), with ``a_i = x̃_iᵀw`` (``w = u``, or ``(u, b)``) and one ``s_i`` per
point with ``λ_i ≠ 0``, ``s(λ) = max Σ λ_i s_i`` over

    ‖u‖ ≤ 1,  s_i ≥ 0,  s_i − a_i ≥ 0,  s_i(s_i − a_i) = 0          (s_i = (a_i)_+).

Lift ``z = (1, w, s)``, ``M = zzᵀ ⪰ 0``; every constraint below is linear in ``M`` and holds at
every lifted feasible ``z`` (so the relaxation's maximum bounds ``s(λ)``):

- ``M_00 = 1``, ``Σ_{j<r} M_{u_j u_j} ≤ 1`` (the ball), with bias ``M_bb ≤ B²``;
- the first row: ``s_i ≥ 0``, ``s_i − a_i ≥ 0``;
- complementarity: ``M_{s_i s_i} = Σ_j x̃_ij M_{w_j s_i}``;
- RLT products of the two linear constraints of each pair ``i ≠ j``: ``s_i s_j ≥ 0``,
  ``s_i(s_j − a_j) ≥ 0``, ``(s_i − a_i)(s_j − a_j) ≥ 0``; with bias ``(B ∓ b)s_i ≥ 0``;
- SOC-RLT (the ball times a non-negative factor ``f``: ``‖f·u‖ ≤ f``) for ``f = s_i`` and
  ``f = s_i − a_i``.

Measured (BENCHMARKS.md, ``bench/shor.py``): lifting every point (not only ``λ_i > 0``) and the
``s_i(s_j − a_j)`` products are what make it tight. At residuals of L-BFGS networks far from
optimal (``c(λ) ≫ β``) it is often exact (the optimal ``M`` numerically rank one) where SCS
converges (n ≤ 60 in seconds to a minute); at the residual of a CERTIFIED optimum (``c(λ) = β``
attained at every active neuron) it is NOT: 1.8–3.7× β at n = 16–40, d = 3 — it cannot certify.
At n = 200, d = 10 SCS does not converge in minutes and the rigorous bound is worse than the
MIP's.

**Solver.** SCS (first-order, splitting; Clarabel's interior point needs the dense Hessian of a
PSD cone of dimension ``m(m+1)/2``, ``m = 1 + r + n``: minutes at n = 60, hopeless at 200).

**The rigorous bound (why a float SDP solution proves something).** SCS solves
``min cᵀx s.t. Ax + s = b, s ∈ K`` with ``x`` the entries ``M_ab`` (``a ≥ b``) and ``K`` = zero ×
non-negative × second-order cones × the PSD cone (``s = svec(M)``). Let ``y_K`` be its dual for
the linear cones, projected onto ``K*`` (non-negative part clipped, SOC parts projected: any
point of ``K*`` will do), and ``v = A_Kᵀy_K + c``, ``Z`` the symmetric matrix with ``⟨Z, M⟩ =
vᵀx`` (``Z_aa = v_aa``, ``Z_ab = v_ab/2``). At any lifted feasible point (``A_K x + s_K = b_K``,
``s_K ∈ K``, ``M ⪰ 0``)::

    cᵀx = −y_Kᵀ(b_K − s_K) + ⟨Z, M⟩ ≥ −b_Kᵀy_K + min(0, λ_min(DZD))·tr(D⁻¹MD⁻¹)

(``y_Kᵀs_K ≥ 0``; ``D`` any positive diagonal), so ``s(λ) = max −cᵀx ≤ b_Kᵀy_K +
max(0, −λ_min(DZD))·T_D`` with the a-priori ``T_D ≥ tr(D⁻¹MD⁻¹)`` of a rank-one feasible ``M``:
``M_00 = 1``, ``Σ M_uu ≤ 1``, ``M_bb ≤ B²``, ``M_{s_i s_i} ≤ (‖x̃_i‖_u + B)²`` (``s_i ≤ |a_i|``).
Two choices of ``D`` are tried (``I``: ``T = 1 + r + B² + Σ(‖x_i‖ + B)²``, each ``M_uu ≤ 1``;
``D² = diag`` of those bounds: ``T = 1 + r + [bias] + k``) and the smaller bound kept. Nothing about SCS's accuracy is
assumed: an inaccurate dual only makes the bound looser. The floating-point evaluation of the
bound is padded by ``SAFE_RTOL`` (eigenvalue and summation round-off, ≪ it).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp

from solvers.separation import _reduced

__all__ = [
    "SHOR_EPS",
    "Program",
    "ShorBound",
    "program",
    "safe_upper",
    "shor_bound",
    "shor_dual_norm",
]

SHOR_EPS = 1e-7  # SCS's eps_abs = eps_rel (a looser solve only loosens the rigorous bound)
SHOR_MAX_ITERS = 20_000  # SCS iterations (besides the time limit)
SAFE_RTOL = 1e-12  # relative pad of the bound for its own floating-point evaluation
ALPHA = 1.5  # SCS's over-relaxation (its default)
PRODUCTS = ("all", "sd", "none")  # which pairwise RLT rows (shor_bound's products)
ALL_PRODUCTS_MAX = 60  # default products: "all" up to this many points, "none" beyond (measured:
# with the O(n²) rows SCS does not converge in minutes at n = 100, d = 10; without them it does)


@dataclasses.dataclass(frozen=True)
class ShorBound:
    """``upper`` ≥ ``s(λ)`` (rigorous, module doc); ``sdp`` SCS's primal value (not a bound);
    ``correction`` the eigenvalue term in ``upper``; ``rank_ratio`` = λ₂/λ₁ of SCS's ``M``
    (≈ 0: rank one, the relaxation exact there); ``status`` SCS's; ``seconds``; ``size`` = m."""

    upper: float
    sdp: float
    correction: float
    rank_ratio: float
    status: str
    seconds: float
    size: int


class _Lift:
    """Index bookkeeping of ``M`` (``m × m``) and its entries ``x`` (``a ≥ b``, SCS's order:
    the lower triangle column by column)."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.n = m * (m + 1) // 2

    def idx(self, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        a, b = np.maximum(a, b), np.minimum(a, b)
        return b * self.m - b * (b - 1) // 2 + (a - b)


class _Rows:
    """Sparse rows ``(coefficients on x, constant)`` of one cone kind: ``g0 + gᵀx``."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.g0: list[np.ndarray] = []
        self.count = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, g0: np.ndarray) -> None:
        """Rows ``count + rows`` (local, 0-based); ``g0`` one constant per new row."""
        self.r.append(np.asarray(rows, np.int64).ravel() + self.count)
        self.c.append(np.asarray(cols, np.int64).ravel())
        self.v.append(np.asarray(vals, np.float64).ravel())
        self.g0.append(np.asarray(g0, np.float64).ravel())
        self.count += len(self.g0[-1])

    def matrix(self, ncols: int) -> tuple[sp.csr_matrix, np.ndarray]:
        if not self.count:
            return sp.csr_matrix((0, ncols)), np.zeros(0)
        G = sp.csr_matrix(
            (np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
            shape=(self.count, ncols),
        )
        return G, np.concatenate(self.g0)


def _build(Xt: np.ndarray, lam: np.ndarray, r: int, B: float, products: str):
    """The program of the module doc: ``(L, c, zero, nonneg, socs, T-bounds)`` where each cone
    kind is ``(G, g0)`` with rows ``g0 + Gx`` (= 0, ≥ 0, in the SOC) and ``socs`` the cone
    sizes; ``diag_ub`` the a-priori bound on each ``M_aa`` of a rank-one feasible point."""
    k, p = Xt.shape  # p = r (+ 1 with bias)
    m = 1 + p + k
    L = _Lift(m)
    W = 1 + np.arange(p)  # w's indices in M
    S = 1 + p + np.arange(k)  # s's indices
    c = np.zeros(L.n)
    c[L.idx(S, 0)] = -lam
    zero, nonneg, soc = _Rows(), _Rows(), _Rows()
    zero.add([0], [L.idx(0, 0)], [1.0], [-1.0])  # M_00 − 1 = 0
    # complementarity: M_ss − Σ_j x̃_ij M_{w_j s} = 0
    ii = np.arange(k)
    rows = np.concatenate([ii, np.repeat(ii, p)])
    cols = np.concatenate([L.idx(S, S), L.idx(np.tile(W, k), np.repeat(S, p))])
    zero.add(rows, cols, np.concatenate([np.ones(k), -Xt.ravel()]), np.zeros(k))
    nonneg.add(np.zeros(r), L.idx(W[:r], W[:r]), -np.ones(r), [1.0])  # 1 − Σ M_uu ≥ 0
    if p > r:  # bias: B² − M_bb ≥ 0, (B ∓ b) s_i ≥ 0
        nonneg.add([0], [L.idx(W[r], W[r])], [-1.0], [B * B])
        for sg in (1.0, -1.0):
            nonneg.add(
                np.repeat(ii, 2),
                np.stack([L.idx(S, 0), L.idx(S, W[r])], 1),
                np.tile([B, -sg], k),
                np.zeros(k),
            )
            # (B ∓ b)(s_i − a_i) ≥ 0
            rows = np.concatenate([ii, np.repeat(ii, p), ii, np.repeat(ii, p)])
            cols = np.concatenate(
                [L.idx(S, 0), L.idx(np.tile(W, k), 0), L.idx(S, W[r]), L.idx(np.tile(W, k), W[r])]
            )
            vals = np.concatenate(
                [np.full(k, B), -B * Xt.ravel(), np.full(k, -sg), sg * Xt.ravel()]
            )
            nonneg.add(rows, cols, vals, np.zeros(k))
            # SOC-RLT: (B ∓ b)(1, u) ∈ SOC
            soc.add(
                np.concatenate([[0], np.arange(1, 1 + r), np.arange(1, 1 + r)]),
                np.concatenate([[L.idx(W[r], 0)], L.idx(W[:r], 0), L.idx(W[r], W[:r])]),
                np.concatenate([[-sg], np.full(r, B), np.full(r, -sg)]),
                np.concatenate([[B], np.zeros(r)]),
            )
    nonneg.add(ii, L.idx(S, 0), np.ones(k), np.zeros(k))  # s_i ≥ 0
    nonneg.add(  # s_i − a_i ≥ 0
        np.concatenate([ii, np.repeat(ii, p)]),
        np.concatenate([L.idx(S, 0), L.idx(np.tile(W, k), 0)]),
        np.concatenate([np.ones(k), -Xt.ravel()]),
        np.zeros(k),
    )
    if products not in PRODUCTS:
        raise ValueError(f"products must be one of {PRODUCTS}, got {products!r}")
    if products != "none":
        _products(L, Xt, W, S, nonneg, both=products == "all")
    # SOC-RLT: (f, f·u) ∈ SOC for f = s_i and f = s_i − a_i
    for i in range(k):
        # f = s_i: (M_{s_i 0}, M_{s_i u})
        soc.add(
            np.arange(1 + r),
            L.idx(S[i], np.concatenate([[0], W[:r]])),
            np.ones(1 + r),
            np.zeros(1 + r),
        )
    for i in range(k):
        # f = s_i − a_i: (M_{s_i 0} − Σ_l x̃_il M_{w_l 0}, M_{s_i u_j} − Σ_l x̃_il M_{w_l u_j})
        rows = np.concatenate(
            [[0], np.zeros(p, int), np.arange(1, 1 + r)] + [np.arange(1, 1 + r)] * p
        )
        cols = np.concatenate(
            [[L.idx(S[i], 0)], L.idx(W, 0), L.idx(S[i], W[:r])]
            + [L.idx(W[l_], W[:r]) for l_ in range(p)]
        )
        vals = np.concatenate(
            [[1.0], -Xt[i], np.ones(r)] + [np.full(r, -Xt[i, l_]) for l_ in range(p)]
        )
        soc.add(rows, cols, vals, np.zeros(1 + r))
    socs = [1 + r] * (2 * (p - r) + 2 * k)
    xn = np.linalg.norm(Xt[:, :r], axis=1) + B
    diag_ub = np.concatenate([[1.0], np.ones(r), [B * B] * (p - r), xn**2])
    return L, c, zero, nonneg, soc, socs, diag_ub


def _products(
    L: _Lift, Xt: np.ndarray, W: np.ndarray, S: np.ndarray, nonneg: _Rows, both: bool
) -> None:
    """RLT rows of every pair ``i ≠ j``: ``M_{s_i s_j} ≥ 0``, ``M_{s_i s_j} − x̃_jᵀM_{w s_i} ≥ 0``
    (ordered pairs), ``M_{s_i s_j} − x̃_jᵀM_{w s_i} − x̃_iᵀM_{w s_j} + x̃_iᵀM_{ww}x̃_j ≥ 0``."""
    k, p = Xt.shape
    I, J = np.triu_indices(k, 1)
    q = len(I)
    nonneg.add(np.arange(q), L.idx(S[I], S[J]), np.ones(q), np.zeros(q))
    for A, Bv in ((I, J), (J, I)):  # s_A (s_B − a_B) ≥ 0
        rows = np.concatenate([np.arange(q), np.repeat(np.arange(q), p)])
        cols = np.concatenate([L.idx(S[A], S[Bv]), L.idx(np.tile(W, q), np.repeat(S[A], p))])
        vals = np.concatenate([np.ones(q), -Xt[Bv].ravel()])
        nonneg.add(rows, cols, vals, np.zeros(q))
    if not both:
        return
    # (s_i − a_i)(s_j − a_j) ≥ 0; the ww part: Σ_{l,l'} x̃_il x̃_jl' M_{w_l w_l'}
    ll, lp = np.tril_indices(p)  # l ≥ l'
    coef = Xt[I][:, ll] * Xt[J][:, lp] + np.where(ll != lp, 1.0, 0.0) * Xt[I][:, lp] * Xt[J][:, ll]
    rows = np.concatenate(
        [
            np.arange(q),
            np.repeat(np.arange(q), p),
            np.repeat(np.arange(q), p),
            np.repeat(np.arange(q), len(ll)),
        ]
    )
    cols = np.concatenate(
        [
            L.idx(S[I], S[J]),
            L.idx(np.tile(W, q), np.repeat(S[I], p)),
            L.idx(np.tile(W, q), np.repeat(S[J], p)),
            np.tile(L.idx(W[ll], W[lp]), q),
        ]
    )
    vals = np.concatenate([np.ones(q), -Xt[J].ravel(), -Xt[I].ravel(), coef.ravel()])
    nonneg.add(rows, cols, vals, np.zeros(q))


def _soc_project(y: np.ndarray) -> np.ndarray:
    """Euclidean projection onto ``{(t, v): ‖v‖ ≤ t}``."""
    t, v = y[0], y[1:]
    nv = float(np.linalg.norm(v))
    if nv <= t:
        return y
    if nv <= -t:
        return np.zeros_like(y)
    a = 0.5 * (t + nv)
    return np.concatenate([[a], v * (a / nv)])


def _sym(L: _Lift, v: np.ndarray, off: float = 0.5) -> np.ndarray:
    """The symmetric matrix with diagonal ``v_aa`` and off-diagonal ``off·v_ab``: with ``off =
    ½``, ``Z`` with ``⟨Z, M⟩ = vᵀx``; with ``off = 1``, ``M`` itself from its entries ``x``."""
    a, b = np.tril_indices(L.m)
    Z = np.zeros((L.m, L.m))
    vals = v[L.idx(a, b)]
    Z[a, b] = np.where(a == b, vals, off * vals)
    Z[b, a] = Z[a, b]
    return Z


def safe_upper(
    L: _Lift,
    c: np.ndarray,
    cones: list[tuple[sp.csr_matrix, np.ndarray]],
    socs: list[int],
    y: np.ndarray,
    diag_ub: np.ndarray,
    *,
    correct: bool = True,
) -> tuple[float, float]:
    """``(upper, correction)``: the rigorous bound of the module doc from any dual vector ``y``
    (SCS's, for the zero, non-negative and SOC rows in that order; projected onto ``K*`` here).
    ``correct=False`` drops the eigenvalue term (``b_Kᵀy_K`` alone: NOT a bound; the tests show
    it failing)."""
    (Gz, gz), (Gl, gl), (Gq, gq) = cones
    nz, nl = Gz.shape[0], Gl.shape[0]
    yz, yl, yq = y[:nz], np.maximum(y[nz : nz + nl], 0.0), y[nz + nl : nz + nl + Gq.shape[0]].copy()
    off = 0
    for size in socs:
        yq[off : off + size] = _soc_project(yq[off : off + size])
        off += size
    # SCS's rows are  A x + s = b  with  A = −G, b = g0:  max −cᵀx ≤ bᵀy + max(0, −λ_min)·T
    by = float(gz @ yz + gl @ yl + gq @ yq)
    v = c - (Gz.T @ yz + Gl.T @ yl + Gq.T @ yq)
    Z = _sym(L, v)
    best, corr = np.inf, 0.0
    for d in (np.ones(L.m), np.sqrt(np.maximum(diag_ub, 1e-300))):
        T = float(np.sum(diag_ub / d**2))
        ev = float(np.linalg.eigvalsh(d[:, None] * Z * d[None, :])[0])
        cterm = max(0.0, -ev) * T if correct else 0.0
        if by + cterm < best:
            best, corr = by + cterm, cterm
    terms = np.abs(gz) @ np.abs(yz) + np.abs(gl) @ yl + np.abs(gq) @ np.abs(yq)
    pad = SAFE_RTOL * (float(terms) + L.m * float(np.linalg.norm(Z)) * float(np.sum(diag_ub)))
    return best + (pad if correct else 0.0), corr


@dataclasses.dataclass(frozen=True)
class Program:
    """The lifted program of one ``s(λ)`` (module doc) in SCS's form, and what
    :func:`safe_upper` needs: ``cones`` = (zero, non-negative, SOC) rows ``g0 + Gx``, ``socs``
    their sizes, ``diag_ub`` the a-priori bounds on ``M_aa``."""

    lift: _Lift
    c: np.ndarray
    cones: list
    socs: list
    diag_ub: np.ndarray

    def scs_data(self) -> tuple[dict, dict]:
        """SCS's ``(data, cone)``: ``A = −G``, ``b = g0``; the PSD rows ``s = svec(M)``."""
        L = self.lift
        a, b = np.tril_indices(L.m)
        order = np.argsort(L.idx(a, b))
        scale = np.where(a == b, 1.0, np.sqrt(2.0))[order]  # svec: √2 off the diagonal
        A = sp.vstack([-G for G, _ in self.cones] + [-sp.diags(scale)], format="csc")
        bvec = np.concatenate([g0 for _, g0 in self.cones] + [np.zeros(L.n)])
        nz, nl = (self.cones[k][0].shape[0] for k in (0, 1))
        return {"A": A, "b": bvec, "c": self.c}, {"z": nz, "l": nl, "q": self.socs, "s": [L.m]}

    def upper(self, y: np.ndarray, *, correct: bool = True) -> tuple[float, float]:
        """:func:`safe_upper` of a dual vector ``y``."""
        return safe_upper(
            self.lift, self.c, self.cones, self.socs, y, self.diag_ub, correct=correct
        )


def program(
    X: np.ndarray, lam: np.ndarray, *, bias: bool = False, products: str = "all"
) -> Program | float:
    """The relaxation of ``s(λ)`` (module doc), or the exact value where there is nothing to
    relax: ``inf`` (bias and ``1ᵀλ > 0``), ``0.0`` (no ``λ_i > 0`` or ``X = 0``)."""
    X = np.asarray(X, np.float64)
    X = X[:, None] if X.ndim == 1 else X
    lam = np.asarray(lam, np.float64).reshape(-1)
    if lam.shape[0] != X.shape[0]:
        raise ValueError(f"lam has {lam.shape[0]} entries, X has {X.shape[0]} rows")
    Xr, _, _ = _reduced(X, bias)
    n, r = Xr.shape
    if bias and float(lam.sum()) > 1e-12 * max(float(np.abs(lam).sum()), 1e-300):
        return np.inf
    if r == 0 or not np.any(lam > 0):
        return 0.0
    B = float(np.max(np.linalg.norm(Xr, axis=1))) if bias else 0.0
    Xt = np.hstack([Xr, np.ones((n, 1))]) if bias else Xr
    keep = lam != 0
    L, c, zero, nonneg, soc, socs, diag_ub = _build(Xt[keep], lam[keep], r, B, products)
    cones = [zero.matrix(L.n), nonneg.matrix(L.n), soc.matrix(L.n)]
    return Program(L, c, cones, socs, diag_ub)


def shor_bound(
    X: np.ndarray,
    lam: np.ndarray,
    *,
    bias: bool = False,
    time_limit: float = 60.0,
    eps: float = SHOR_EPS,
    products: str | None = None,
) -> ShorBound:
    """A rigorous ``upper ≥ s(λ) = max_{‖u‖≤1, b} λᵀ(Xu + b)_+`` (module doc), SCS stopped at
    ``eps`` or ``time_limit`` seconds (either way the bound is valid). ``products``: the pairwise
    RLT rows (``O(n²)``): ``"all"``, ``"sd"`` (``s_i s_j`` and ``s_i(s_j − a_j)`` only, about a
    third of the non-zeros at d = 10) or ``"none"`` (looser, O(n) rows; BENCHMARKS.md); default
    ``"all"`` up to ``ALL_PRODUCTS_MAX`` points, else ``"none"``."""
    import scs

    t0 = time.perf_counter()
    if products is None:
        products = "all" if np.shape(X)[0] <= ALL_PRODUCTS_MAX else "none"
    prog = program(X, lam, bias=bias, products=products)
    if not isinstance(prog, Program):
        return ShorBound(prog, prog, 0.0, np.nan, "no relaxation", time.perf_counter() - t0, 0)
    data, cone = prog.scs_data()
    left = float(time_limit) - (time.perf_counter() - t0)
    solver = scs.SCS(
        data,
        cone,
        eps_abs=eps,
        eps_rel=eps,
        max_iters=SHOR_MAX_ITERS,
        time_limit_secs=max(left, 0.01),
        alpha=ALPHA,
        verbose=False,
    )
    sol = solver.solve()
    y, x = (np.asarray(sol[k], np.float64) for k in ("y", "x"))
    # any y gives a bound (module doc): SCS stopped before its first iterate leaves NaN there
    upper, corr = prog.upper(np.where(np.isfinite(y), y, 0.0))
    ev = np.linalg.eigvalsh(_sym(prog.lift, np.nan_to_num(x), off=1.0))
    return ShorBound(
        upper=float(upper),
        sdp=float(-prog.c @ x),
        correction=float(corr),
        rank_ratio=float(ev[-2] / ev[-1]) if ev[-1] > 0 else np.nan,
        status=str(sol["info"]["status"]),
        seconds=time.perf_counter() - t0,
        size=prog.lift.m,
    )


def shor_dual_norm(
    X: np.ndarray,
    lam: np.ndarray,
    *,
    bias: bool = False,
    time_limit: float = 60.0,
    products: str | None = None,
) -> tuple[float, tuple[ShorBound, ShorBound]]:
    """``c̄ ≥ c(λ) = max(s(λ), s(−λ))`` from two Shor bounds (half the time each; ``products``
    as in :func:`shor_bound`)."""
    t0 = time.perf_counter()
    out = []
    for sg in (1.0, -1.0):
        left = float(time_limit) - (time.perf_counter() - t0)
        limit = 0.5 * float(time_limit) if sg > 0 else left
        lam_s = sg * np.asarray(lam, float)
        out.append(shor_bound(X, lam_s, bias=bias, time_limit=limit, products=products))
    return max(o.upper for o in out), (out[0], out[1])
