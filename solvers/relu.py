"""Deep ReLU networks on whitened data: the closed form of docs/theory.md §3.

Problem (THEORY §0, no biases, no batch norm, ReLU after every hidden layer)::

    P* = min_{W_1..W_L}  ½‖f(X) − Y‖_F²  +  (β/2) Σ_l ‖W_l‖_F²

**Assumption checked here — whitened data:** ``‖X Xᵀ − I_n‖_F ≤ WHITENED_TOL`` (1e-10,
:mod:`solvers.detect`; rows orthonormal, so ``n ≤ d``). Then ``X Xᵀ v = v`` for every ``v ∈ R^n``: a first-layer neuron ``w = Xᵀ v``
has pre-activation ``X w = v`` exactly, and any non-negative ``v`` passes the ReLU.

- ``K = 1``:  ``P* = g_L(‖y_+‖) + g_L(‖y_−‖)`` (``y_± = max(±y, 0)``, ``g_L`` the path value of
  THEORY §0, :func:`solvers.scalar.path_value`).
- ``K > 1`` one-hot targets (every column non-negative, columns with disjoint supports):
  ``P* = Σ_k g_L(‖y_k‖)``. Any other ``K > 1`` target raises :class:`NotCovered`.

**Optimal network (one path per active target vector ``v ∈ {y_+, y_−}`` or ``{y_k}``).**
With ``s* = path_minimiser(‖v‖)`` and ``t = (s*)^{1/L}`` the path uses one neuron per hidden
layer: first-layer weight ``t Xᵀ v/‖v‖`` (unit direction ``Xᵀ v/‖v‖``; its pre-activation
``t v/‖v‖ ≥ 0``), hidden weights ``t > 0`` on the diagonal (the ReLU passes the path),
output weight ``±t`` (``+`` for ``y_+``, ``−`` for ``y_−``, ``e_k`` for class ``k``). Every
layer of a path has Frobenius norm ``t`` (balanced), the path outputs ``± s* v/‖v‖`` and
costs ``(βL/2) (s*)^{2/L}``; paths act on disjoint supports so the residuals add up to
``Σ ½(‖v‖ − s*)²``. Width = number of active paths (at least 1) unless ``p.width`` is set
(extra neurons are zero; a width below the number of active paths raises NotCovered).

**Dual.** For ``L = 2`` the problem has the convex dual of THEORY §7, and the optimal dual
variable is the optimal residual ``Λ = Y − f*(X)`` (returned as ``Optimum.dual``); for
``L ≥ 3`` no dual is returned (``None``).
"""

from __future__ import annotations

import numpy as np

from solvers.detect import WHITENED_TOL, facts
from solvers.problem import (
    Network,
    NotCovered,
    Optimum,
    Problem,
    forward,
    optimal_width,
    require_problem,
)
from solvers.scalar import path_minimiser, path_value

__all__ = ["solve_relu_whitened"]


def _chain_network(
    first_layer: np.ndarray,
    out_rows: np.ndarray,
    scales: np.ndarray,
    *,
    depth: int,
    width: int,
) -> list[np.ndarray]:
    """Layers of disjoint balanced rank-one paths, one hidden neuron per path.

    ``first_layer`` (d, P): path ``j``'s first-layer weight column (already scaled by ``t_j``);
    ``scales`` (P,): ``t_j``, used on the hidden diagonal; ``out_rows`` (P, K): path ``j``'s
    output weights (already scaled). Neurons ``P..width-1`` are zero.
    """
    d, P = first_layer.shape
    K = out_rows.shape[1]
    W1 = np.zeros((d, width))
    W1[:, :P] = first_layer
    Ws = [W1]
    for _ in range(depth - 2):
        W = np.zeros((width, width))
        W[np.arange(P), np.arange(P)] = scales
        Ws.append(W)
    WL = np.zeros((width, K))
    WL[:P] = out_rows
    Ws.append(WL)
    return Ws


def _targets(p: Problem) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Target vectors v (n,) and their output-weight sign rows (K,) — one per candidate path."""
    Y = p.Y
    if p.K == 1:
        y = Y[:, 0]
        return (
            [np.maximum(y, 0.0), np.maximum(-y, 0.0)],
            [np.array([1.0]), np.array([-1.0])],
            "relu_whitened",
        )
    if np.any(Y < 0):
        raise NotCovered("K > 1 ReLU targets are not one-hot: Y has negative entries")
    if np.any(np.count_nonzero(Y, axis=1) > 1):
        raise NotCovered("K > 1 ReLU targets are not one-hot: columns of Y overlap in support")
    return [Y[:, k].copy() for k in range(p.K)], list(np.eye(p.K)), "relu_whitened_onehot"


def solve_relu_whitened(p: Problem) -> Optimum:
    """Exact optimum of a deep ReLU network on whitened data (THEORY §3).

    Args:
        p: a ReLU problem without biases or batch norm, whitened X; ``K = 1``
            or one-hot ``Y``.

    Returns:
        :class:`Optimum` (``EXACT``) with ``family`` ``"relu_whitened"`` (K = 1) or
        ``"relu_whitened_onehot"``; ``m_star`` the number of active paths, ``directions``
        (d, m_star) their unit first-layer directions ``Xᵀ v/‖v‖``; for display, ``info`` has
        ``path_norms`` (the ``‖v‖``) and ``path_values`` (the ``s*``) of the active paths.

    Raises:
        NotCovered: naming the failing assumption.
    """
    p = require_problem(p)
    if p.activation != "relu":
        raise NotCovered("activation is not relu")
    if p.bias:
        raise NotCovered("the network has biases (THEORY §3 has none)")
    if p.batchnorm:
        raise NotCovered("the network has batch norm (see THEORY §6)")
    if not facts(p).whitened:
        err = facts(p).whitening_error
        raise NotCovered(f"X is not whitened: ‖XXᵀ − I‖_F = {err:.3e} > {WHITENED_TOL:g}")
    vs, signs, family = _targets(p)
    L, beta = p.L, p.beta
    value = 0.0
    cols, outs, scales, norms, svals = [], [], [], [], []
    for v, sign in zip(vs, signs, strict=True):
        r = float(np.linalg.norm(v))
        value += float(path_value(r, beta, L))
        s = float(path_minimiser(r, beta, L)) if r > 0 else 0.0
        if s <= 0.0:
            continue
        t = s ** (1.0 / L)
        u = p.X.T @ (v / r)
        cols.append(t * u / np.linalg.norm(u))
        outs.append(t * sign)
        scales.append(t)
        norms.append(r)
        svals.append(s)
    P = len(cols)
    width = optimal_width(p, P)
    first = np.stack(cols, axis=1) if P else np.zeros((p.d, 0))
    out_rows = np.stack(outs, axis=0) if P else np.zeros((0, p.K))
    Ws = _chain_network(first, out_rows, np.asarray(scales), depth=L, width=width)
    net = Network(weights=tuple(Ws))
    dual = p.Y - forward(p, net) if L == 2 else None
    info = {"path_norms": np.asarray(norms), "path_values": np.asarray(svals)}
    return Optimum(
        objective=float(value),
        weights=Ws,
        family=family,
        dual=dual,
        network=net,
        m_star=P,
        directions=first / np.asarray(scales)[None, :] if P else first,
        info=info,
    )
