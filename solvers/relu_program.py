"""THEORY §10's convex program on a set of (pattern, sign) blocks, its polish and read-out.

The program (:mod:`solvers.two_layer` states it) restricted to a working set of blocks is solved
by Clarabel (an interior-point conic solver, used directly without cvxpy:
:func:`solve_restricted`). Interior-point solutions are accurate to ~1e-9 only, so the caller
polishes: with the active blocks and the faces they lie on fixed (:func:`active_faces`), the
program's dual is the smooth concave ``max_{τ≥0} −½ỹᵀ(I + Σ τ_j C_jC_jᵀ)^{-1}ỹ − ½β²Στ``
(:func:`polish`: projected Newton, quadratic convergence; ``z_j = τ_j Q(QᵀEQ)^{-1}Qᵀ s_j X̃ᵀD_jλ``,
:func:`polished_blocks`). Blocks become neurons (:func:`network_from_blocks`: first layer
``u/√‖u‖``, bias ``b/√‖u‖``, output ``s√‖u‖``; same-direction blocks merged), optionally
reduced by Carathéodory (:func:`caratheodory`: same output and cost, ≤ n + 1 neurons).

Tolerances (module constants, each with its reason next to it): ``CARATHEODORY_RTOL``,
``MERGE_RTOL``, ``CONSTANT_COST`` (the read-out), ``ACTIVE_BLOCK_RTOL``, ``SAME_NEURON_RTOL``,
``ACTIVE_ROW_RTOL``, ``PURE_BIAS_RTOL`` (the faces the polish fixes), ``NEWTON_GRAD_RTOL``,
``NEWTON_RIDGE``, ``NEWTON_ARMIJO_RTOL`` (the polish), ``KTRATIO_TOL`` (Clarabel), and
``FACE_RTOL`` from :mod:`solvers.arrangement`; the conic solve's own tolerance is the caller's
``tol`` argument.
"""

from __future__ import annotations

import numpy as np

from solvers.arrangement import FACE_RTOL, Geometry
from solvers.problem import Network, NotCovered, Problem, forward

__all__ = [
    "CARATHEODORY_RTOL",
    "active_faces",
    "caratheodory",
    "clarabel_module",
    "network_from_blocks",
    "pad_width",
    "polish",
    "polished_blocks",
    "residual",
    "solve_restricted",
]

CARATHEODORY_RTOL = 1e-12  # singular values below this (relative) count as zero
KTRATIO_TOL = 1e-8  # Clarabel's KKT-ratio stop, set tighter with the caller's inner tolerance
MERGE_RTOL = 1e-12  # cos > 1 − this: two blocks of one sign are the same neuron (merged, exact)
CONSTANT_COST = 1e-14  # × ½‖y‖²: the cost of the zero-input neuron that carries a constant
ACTIVE_BLOCK_RTOL = 1e-6  # ‖u_j‖ > this × the largest: a block the polish keeps
SAME_NEURON_RTOL = 1e-7  # cos > 1 − this: one neuron split over adjacent patterns (polished once)
ACTIVE_ROW_RTOL = 1e-7  # a_iᵀz ≤ this × ‖x_i‖: row i is active at a block (the face it lies on)
PURE_BIAS_RTOL = 1e-12  # λ_min(QᵀEQ) ≤ this × λ_max: a bias-only direction (left to Clarabel)
NEWTON_GRAD_RTOL = 1e-15  # ‖projected gradient‖ ≤ this × β²: the polish has converged
NEWTON_RIDGE = 1e-14  # × mean diagonal: keeps the Newton system solvable on a flat direction
NEWTON_ARMIJO_RTOL = 1e-15  # a step may lose this × |ψ| (round-off) and still count as ascent


def clarabel_module():  # noqa: ANN202 - the module
    try:
        import clarabel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("solvers.relu_program needs clarabel: pip install clarabel") from exc
    return clarabel


def solve_restricted(
    geo: Geometry, y: np.ndarray, beta: float, Dw: np.ndarray, s: np.ndarray, *, tol: float
) -> tuple[np.ndarray, float]:
    """Clarabel on the working set: returns ``Z`` (N, k), one row ``z_j`` per block."""
    import scipy.sparse as sp

    clarabel = clarabel_module()
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
    st.tol_ktratio = KTRATIO_TOL
    st.max_iter = 300
    sol = clarabel.DefaultSolver(sp.triu(Pq).tocsc(), q, A, b, cones, st).solve()
    x = np.asarray(sol.x, dtype=np.float64)
    if x.size != nx or not np.all(np.isfinite(x)):
        raise RuntimeError(f"clarabel returned no solution (status {sol.status})")
    return x[n : n + nz].reshape(N, k), (float(x[-1]) if nc else 0.0)


def network_from_blocks(
    p: Problem,
    geo: Geometry,
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
            if sm == s[i] and float(zi @ zm) / np.linalg.norm(zm) > 1.0 - MERGE_RTOL:
                merged[m_] = (sm, zm + Z[i])
                break
        else:
            merged.append((float(s[i]), Z[i].copy()))
    if reduce:
        merged = caratheodory(geo, merged)
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
        a = np.sqrt(2.0 * CONSTANT_COST * scale / p.beta)
        W2[m_star, 0] = np.sign(const) * a
        b1[m_star] = abs(const) / a
    net = Network(weights=(W1, W2), biases=(b1,) if geo.bias else None)
    return net, m_star, dirs, keep


def caratheodory(geo: Geometry, merged: list[tuple[float, np.ndarray]]) -> list:
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


def pad_width(p: Problem, net: Network, m_needed: int) -> Network:
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


def residual(p: Problem, net: Network) -> np.ndarray:
    lam = p.Y[:, 0] - forward(p, net)[:, 0]
    return lam - lam.mean() if p.bias else lam


# ------------------------------------------------------------------ Newton polish
def active_faces(
    geo: Geometry, Dw: np.ndarray, s: np.ndarray, Z: np.ndarray
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
    for i in np.flatnonzero(nu > ACTIVE_BLOCK_RTOL * top):
        z = Z[i]
        zn = z / np.linalg.norm(z)
        if any(sd == s[i] and float(zn @ dd) > 1.0 - SAME_NEURON_RTOL for sd, dd in dirs):
            continue  # the same neuron split over adjacent patterns: one copy
        dirs.append((float(s[i]), zn))
        A = (2.0 * Dw[i] - 1.0)[:, None] * geo.Xt
        act = (A @ zn) <= ACTIVE_ROW_RTOL * xn
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
        if w[0] <= PURE_BIAS_RTOL * max(w[-1], 1e-300):
            return None  # a pure-bias direction in the face: leave it to the conic solve
        C = (Dw[i][:, None] * geo.Xt) @ (Q @ (U / np.sqrt(w)))
        R = (Q @ (U / w)) @ (U.T @ Q.T)  # Q (QᵀEQ)^{-1} Qᵀ
        out.append((int(i), int(s[i]), C, R))
    return out


def polish(
    p: Problem,
    geo: Geometry,
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
            if np.max(np.abs(pg)) <= NEWTON_GRAD_RTOL * beta * beta:
                break
            F = np.flatnonzero(free)
            hF = hess[np.ix_(F, F)]
            step = np.zeros(m)
            step[F] = np.linalg.lstsq(
                hF + NEWTON_RIDGE * np.trace(hF) / len(F) * np.eye(len(F)), grad[F], rcond=None
            )[0]
            t, improved = 1.0, False
            for _ls in range(12):
                cand = np.maximum(tau + t * step, 0.0)
                c_psi, c_lam, c_grad, c_hess = evaluate(cand)
                if c_psi >= psi - NEWTON_ARMIJO_RTOL * abs(psi):
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


def polished_blocks(
    p: Problem,
    geo: Geometry,
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
