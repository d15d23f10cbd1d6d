"""Batch normalisation before the last hidden activation: docs/theory.md §6, and neural collapse.

Network (``solvers.problem.forward`` is the definition): ``A = H_{L−2} W_{L−1}`` is batch
normalised per column, ``Z_j = γ_j (A_j − mean A_j)/std(A_j) + α_j``, then ``σ`` and ``W_L``;
only ``γ, α, W_L`` are regularised by β/2. With ``e = 1/√n`` (unit) and ``C = I − 11ᵀ/n``, the
normalised column is ``√n û_j`` for a unit centred ``û_j``, so the BN output column is
``√n g_j`` with ``g_j = γ_j û_j + α_j e`` and ``‖g_j‖² = γ_j² + α_j²``.

**Assumption checked here (rich BN input):** ``rank(C X) = n − 1`` (numerically
``σ_{n−1}(C X) > BN_RANK_TOL·σ_1(C X)``, 1e-8, detected by :mod:`solvers.detect`; needs
``d ≥ n − 1``, holds for whitened or generic X with ``d ≥ n − 1``). Then every centred direction is ``C X b`` for some b and the unregularised
earlier layers can carry ``X b`` to the BN input (identity layers for linear nets; for ReLU
with ``L ≥ 3`` the first layer holds ``[X B, −X B]`` and ``relu(P) − relu(−P) = P`` rebuilds
it, which doubles the width). So ``g_j`` ranges over all of ``R^n`` — **including the
direction 1**, through the regularised shift α — and:

- BN-linear, any Y: ``f = √n G Vᵀ`` with cost ``(β/2)(‖G‖² + ‖V‖²)``, so
  ``P* = min_F ½‖F − Y‖² + (β/√n)‖F‖_* = Σ_k h_{β/√n}(σ_k(Y))``. Y need not be centred
  (the shift α pays for the column means at the same rate as γ: checked against L-BFGS).
- BN-ReLU: features ``relu(√n g_j)`` are any non-negative vectors — the same feature set as a
  2-layer ReLU net on whitened data with β/√n in place of β (THEORY §3, L = 2). Hence
  ``P* = Σ_k h_{β/√n}(‖y_k‖)`` for one-hot Y (non-negative columns, disjoint supports), and
  ``P* = h_{β/√n}(‖y_+‖) + h_{β/√n}(‖y_−‖)`` for K = 1 with signed y.

Optimal weights. BN-linear: ``Y = Σ σ_k u_k v_kᵀ``, ``s_k = (σ_k − β/√n)_+``; neuron k has
``g = √(s_k/√n) u_k`` (so ``γ = √(s_k/√n)‖C u_k‖``, ``α = √(s_k/√n)⟨e, u_k⟩``, BN input
direction ``C u_k``) and ``W_L`` row ``√(s_k/√n) v_k``. BN-ReLU: the same with ``u = y_k/‖y_k‖``
(non-negative, so the ReLU passes it) and output row ``±√(s/√n)`` on column k.
Dual: the optimal residual ``Λ = Y − f*(X)`` (the problem is the convex problem above).

:func:`neural_collapse` measures NC1–NC3 of last-hidden-layer features.
"""

from __future__ import annotations

import numpy as np

from solvers.detect import BN_RANK_TOL, facts
from solvers.problem import (
    Network,
    NotCovered,
    Optimum,
    Problem,
    forward,
    optimal_width,
    require_problem,
)

__all__ = ["neural_collapse", "solve_batchnorm"]


def _bn_rank_check(p: Problem) -> float:
    n = p.n
    if n < 2:
        raise NotCovered("batch norm needs n >= 2 samples")
    if n - 1 > min(n, p.d):
        raise NotCovered(f"rank((I − 11ᵀ/n) X) < n − 1 = {n - 1}: d = {p.d} is too small")
    found = facts(p)
    if not found.bn_rich:
        raise NotCovered(
            f"rank((I − 11ᵀ/n) X) < n − 1: σ_(n−1)/σ_1 = {found.centred_rank_ratio:.3e} "
            f"<= {BN_RANK_TOL:g}"
        )
    return found.centred_rank_ratio


def _components(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Directions u (n, P) (unit), output rows v (P, K) (unit), target singular values σ (P,)."""
    Y = p.Y
    if p.activation == "linear":
        U, S, Vt = np.linalg.svd(Y, full_matrices=False)
        return U, Vt, S, "bn_linear"
    if p.K == 1:
        y = Y[:, 0]
        vs, rows = [np.maximum(y, 0.0), np.maximum(-y, 0.0)], [[1.0], [-1.0]]
    else:
        if np.any(Y < 0):
            raise NotCovered("K > 1 BN-ReLU targets are not one-hot: Y has negative entries")
        if np.any(np.count_nonzero(Y, axis=1) > 1):
            raise NotCovered("K > 1 BN-ReLU targets are not one-hot: columns of Y overlap")
        vs, rows = [Y[:, k] for k in range(p.K)], list(np.eye(p.K))
    norms = np.array([np.linalg.norm(v) for v in vs])
    U = np.stack(
        [v / nv if nv > 0 else np.zeros_like(v) for v, nv in zip(vs, norms, strict=True)], 1
    )
    family = "bn_relu" if p.K == 1 else "bn_relu_onehot"
    return U, np.asarray(rows, dtype=np.float64), norms, family


def solve_batchnorm(p: Problem) -> Optimum:
    """Exact optimum with batch norm before the last hidden activation (THEORY §6).

    Args:
        p: ``batchnorm=True``, no biases, ``rank((I − 11ᵀ/n) X) = n − 1``; linear with any Y, or
            ReLU with K = 1 or one-hot Y.

    Returns:
        :class:`Optimum` (``EXACT``) with ``family`` ``"bn_linear"``, ``"bn_relu"`` (K = 1) or
        ``"bn_relu_onehot"``; ``network`` carries ``gamma``/``alpha``; ``m_star`` the active
        first-layer neurons (2 per BN neuron for deep ReLU); ``directions`` None (the earlier
        layers are scale-invariant: no prediction). For display ``info`` has ``threshold``
        (β/√n), ``sigma`` (the target values thresholded) and ``s`` (the fitted ones).

    Raises:
        NotCovered: naming the failing assumption.
    """
    p = require_problem(p)
    if not p.batchnorm:
        raise NotCovered("the problem has no batch norm")
    if p.bias:
        raise NotCovered("the network has biases (THEORY §6 has none)")
    ratio = _bn_rank_check(p)
    n, L = p.n, p.L
    U, V, sig, family = _components(p)
    thr = p.beta / np.sqrt(n)
    s = np.maximum(sig - thr, 0.0)
    value = float(np.sum(np.where(sig <= thr, 0.5 * sig**2, thr * sig - 0.5 * thr**2)))
    active = np.flatnonzero(s > 0)
    P = active.size
    relu_deep = p.activation == "relu" and L >= 3
    m_star = 2 * P if relu_deep else P
    width = optimal_width(p, m_star)
    e = np.full(n, 1.0 / np.sqrt(n))
    gamma, alpha = np.zeros(width), np.zeros(width)
    WL = np.zeros((width, p.K))
    B = np.zeros((p.d, P))  # BN-input directions X b_j with C X b_j ∝ C u_j
    CX = p.X - p.X.mean(axis=0, keepdims=True)
    for j, k in enumerate(active):
        scale = np.sqrt(s[k] / np.sqrt(n))
        u = U[:, k]
        cu = u - (e @ u) * e
        gamma[j] = scale * np.linalg.norm(cu)
        alpha[j] = scale * float(e @ u)
        WL[j] = scale * V[k]
        if gamma[j] > 0:
            B[:, j] = np.linalg.lstsq(CX, cu / np.linalg.norm(cu), rcond=None)[0]
    Ws = _carry_to_bn(B, depth=L, width=width, relu=relu_deep)
    Ws.append(WL)
    net = Network(weights=tuple(Ws), gamma=gamma, alpha=alpha)
    F = forward(p, net)
    info = {"threshold": thr, "sigma": sig, "s": s, "rank_ratio": ratio}
    return Optimum(
        objective=value,
        weights=Ws,
        family=family,
        dual=p.Y - F,
        network=net,
        m_star=m_star,
        info=info,
    )


def _carry_to_bn(B: np.ndarray, *, depth: int, width: int, relu: bool) -> list[np.ndarray]:
    """Layers W_1..W_{L−1} whose output (the BN input) has columns ``X B`` (then zeros)."""
    d, P = B.shape
    if depth == 2:
        W1 = np.zeros((d, width))
        W1[:, :P] = B
        return [W1]
    W1 = np.zeros((d, width))
    if not relu:
        W1[:, :P] = B
        Ws = [W1]
        for _ in range(depth - 2):
            W = np.zeros((width, width))
            W[np.arange(P), np.arange(P)] = 1.0
            Ws.append(W)
        return Ws
    W1[:, :P], W1[:, P : 2 * P] = B, -B  # relu(XB), relu(−XB)
    Ws = [W1]
    eye = np.eye(P)
    for _ in range(depth - 3):  # [P, N] -> relu([P−N, N−P]) = [P, N]
        W = np.zeros((width, width))
        W[:P, :P], W[P : 2 * P, :P] = eye, -eye
        W[:P, P : 2 * P], W[P : 2 * P, P : 2 * P] = -eye, eye
        Ws.append(W)
    W = np.zeros((width, width))  # BN input: P − N = X B
    W[:P, :P], W[P : 2 * P, :P] = eye, -eye
    Ws.append(W)
    return Ws


def neural_collapse(
    H: np.ndarray, labels: np.ndarray, *, W: np.ndarray | None = None
) -> dict[str, float]:
    """Neural-collapse metrics of features ``H`` (n, m) with integer ``labels`` (n,) in 0..K−1.

    With class means ``μ_k``, global mean ``μ_G`` (of the class means weighted by counts, i.e.
    the feature mean), ``M_k = μ_k − μ_G``, ``Σ_W = (1/n) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ``
    and ``Σ_B = (1/K) Σ_k M_k M_kᵀ``:

    - ``nc1 = trace(Σ_W Σ_B^+)/K`` (0 at collapse);
    - ``nc2_cosine_mean``/``nc2_cosine_max_dev``: mean of the pairwise cosines of the ``M_k``
      and their largest deviation from ``nc2_cosine_target = −1/(K−1)``; ``nc2_norm_cv``:
      std/mean of ``‖M_k‖`` (0 for equinorm means);
    - with ``W`` (m, K) the last layer: ``nc3_cosine_mean``/``nc3_cosine_min`` — cosines of
      the centred classifier columns ``w_k − w̄`` with ``M_k``; ``nc3_cosine_uncentred_mean``
      — cosines of ``w_k`` with ``μ_k`` (the network has no output bias, so both are shown).
    """
    H = np.asarray(H, dtype=np.float64)
    labels = np.asarray(labels)
    if H.ndim != 2:
        raise ValueError(f"H must be a 2-D (n, m) array, got shape {H.shape}")
    if labels.shape != (H.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({H.shape[0]},), got {labels.shape}")
    classes = np.unique(labels)
    K = classes.size
    if K < 2:
        raise ValueError("labels must contain at least 2 classes")
    n = H.shape[0]
    mu = np.stack([H[labels == k].mean(axis=0) for k in classes])  # (K, m)
    mu_g = H.mean(axis=0)
    M = mu - mu_g
    D = H - mu[np.searchsorted(classes, labels)]
    sigma_w = D.T @ D / n
    sigma_b = M.T @ M / K
    nc1 = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / K)
    norms = np.linalg.norm(M, axis=1)
    Mn = M / np.where(norms > 0, norms, 1.0)[:, None]
    cos = (Mn @ Mn.T)[np.triu_indices(K, 1)]
    target = -1.0 / (K - 1)
    out = {
        "nc1": nc1,
        "nc2_cosine_mean": float(cos.mean()),
        "nc2_cosine_target": target,
        "nc2_cosine_max_dev": float(np.max(np.abs(cos - target))),
        "nc2_norm_cv": float(norms.std() / norms.mean()) if norms.mean() > 0 else float("nan"),
    }
    if W is not None:
        W = np.asarray(W, dtype=np.float64)
        if W.shape != (H.shape[1], K):
            raise ValueError(f"W must have shape ({H.shape[1]}, {K}), got {W.shape}")
        Wc = W - W.mean(axis=1, keepdims=True)

        def cosines(A: np.ndarray, Bm: np.ndarray) -> np.ndarray:
            na = np.linalg.norm(A, axis=0)
            nb = np.linalg.norm(Bm, axis=1)
            return np.sum(A.T * Bm, axis=1) / np.where(na * nb > 0, na * nb, 1.0)

        c3 = cosines(Wc, M)
        out |= {
            "nc3_cosine_mean": float(c3.mean()),
            "nc3_cosine_min": float(c3.min()),
            "nc3_cosine_uncentred_mean": float(cosines(W, mu).mean()),
        }
    return out
