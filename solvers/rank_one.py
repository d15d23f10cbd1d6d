"""Rank-one data ``X = c aᵀ`` (``‖a‖ = 1``): closed forms of docs/theory.md §4, K = 1, any L ≥ 2.

**Assumption checked here:** the singular values of X satisfy ``σ_2 ≤ RANK_ONE_TOL·σ_1``
(1e-10, :mod:`solvers.detect`) and ``σ_1 > 0``; then ``a`` is the top right singular vector
and ``c = σ_1 u_1 ≈ X a``. (Weights are built
for ``c aᵀ``; the objective on the given X differs by at most ``O(σ_2)``.)

Write ``ĉ = c/‖c‖``, ``c_± = max(±c, 0)``, ``ĉ_± = c_±/‖c_±‖``, ``r = ⟨ĉ, y⟩``,
``r_± = ⟨ĉ_±, y⟩``, and ``g_L(r; β')`` the path value of THEORY §0 with β replaced by β'.

**Linear, K = 1.** ``f(X) = c (aᵀ w)`` with ``w = W_1⋯W_L``; the cheapest layers realising an
end-to-end vector ``w`` cost ``(βL/2)‖w‖^{2/L}`` (balanced rank-one chain), and only
``q = ‖c‖ aᵀw`` matters, so::

    P* = ½‖y‖² − ½ r² + g_L(|r|; β ‖c‖^{−2/L}).

**ReLU, K = 1.** Every hidden layer's features have the form ``c_+ uᵀ + c_− vᵀ`` with
``u, v ≥ 0`` (c_+ and c_− are non-negative with disjoint supports, so the ReLU acts on each
separately); the network is a depth-L ReLU net on the two "points" ``x = ±1``, and
``f(X) = ‖c_+‖ A ĉ_+ + ‖c_−‖ B ĉ_−`` with ``A = f(+1)``, ``B = f(−1)``. Its cheapest cost
``C(A, B) = min Σ_l ‖W_l‖²`` is

- ``L (|A|^{2/L} + |B|^{2/L})`` if ``AB < 0`` — two separate paths (first-layer neurons
  ``+a`` and ``−a``), output weights of opposite signs;
- ``L (|A| + |B|)^{2/L}`` if ``AB ≥ 0`` — **one shared path**: neurons ``+a`` and ``−a`` in
  the first layer both feed one neuron of layer 2, which carries both channels through the
  rest of the chain. Lower bound: ``|f(1)| + |f(−1)| ≤ |z|ᵀ|W_2|⋯|W_L| ≤ Π_l ‖W_l‖_F``
  (``z = W_1ᵀ a``; the two points use disjoint first-layer neurons), then AM–GM.

So with ``ρ_± = |r_±|`` and ``w_± = 1/‖c_±‖``::

    P* = ½‖y‖² − ½(r_+² + r_−²) + min_{α, b ≥ 0} ½(α − ρ_+)² + ½(b − ρ_−)² + (β/2) C,

    C = L((w_+ α)^{2/L} + (w_− b)^{2/L})  if r_+ r_− < 0,   L(w_+ α + w_− b)^{2/L}  otherwise.

For ``L = 2`` both are ``2(w_+ α + w_− b)`` and this is THEORY §4's
``½‖y‖² − ½ Σ_s (|r_s| − β/‖c_s‖)_+²``. For ``r_+ r_− < 0`` it is THEORY §4's formula
``Σ_s g_L(|r_s|; β‖c_s‖^{−2/L})``. **Correction to THEORY §4:** for ``L ≥ 3`` and
``r_+ r_− > 0`` THEORY's separable formula is too high — the shared path is cheaper
(``x^{2/L}`` is strictly subadditive) and multistart L-BFGS reaches the value above. That
2-D problem is solved exactly: the minimum lies at ``(0, 0)``, on an axis (a 1-D ``g_L``
problem) or at an interior stationary point, which — writing ``x = ρ_⊥ + t ŵ`` along
``ŵ = w/‖w‖`` — is the larger root of ``t − ⟨ŵ, ρ⟩ + β‖w‖^{2/L} t^{2/L−1} = 0``; all
candidates are compared.

Width: the number of first-layer neurons used (1 or 2, at least 1) unless ``p.width`` is set.
Dual (``L = 2`` only, where the problem is convex in disguise): ``Λ = Y − f*(X)``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from solvers.detect import RANK_ONE_TOL, facts
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

__all__ = ["solve_rank_one"]


def _rank_one_factors(p: Problem) -> tuple[np.ndarray, np.ndarray, float]:
    found = facts(p)
    if found.opnorm == 0.0:
        raise NotCovered("X is zero, not rank one")
    if found.rank_one is None:
        raise NotCovered(
            f"X is not rank one: σ_2/σ_1 = {found.rank_one_ratio:.3e} > {RANK_ONE_TOL:g}"
        )
    c, a = found.rank_one
    return c, a, found.rank_one_ratio


def _larger_root(r: float, beta: float, L: int) -> float | None:
    """Larger root of ``t − r + β t^{2/L−1} = 0`` on ``(0, r]`` (the positive local minimiser)."""
    if r <= 0.0:
        return None
    p = 2.0 / L
    t_min = (beta * (1.0 - p)) ** (1.0 / (2.0 - p))

    def phi(t: float) -> float:
        return t - r + beta * t ** (p - 1.0)

    if t_min >= r or phi(t_min) >= 0.0:
        return None
    return float(brentq(phi, t_min, r, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


def _shared_pair(rho: np.ndarray, w: np.ndarray, beta: float, L: int) -> tuple[float, np.ndarray]:
    """``min_{x ≥ 0} ½‖x − ρ‖² + (βL/2)⟨w, x⟩^{2/L}`` (ρ ≥ 0, w > 0, 2-vectors): value, minimiser."""

    def J(x: np.ndarray) -> float:
        return float(0.5 * np.sum((x - rho) ** 2) + 0.5 * beta * L * float(w @ x) ** (2.0 / L))

    cands = [np.zeros(2)]
    for i in range(2):
        x = np.zeros(2)
        x[i] = float(path_minimiser(rho[i], beta * w[i] ** (2.0 / L), L))
        cands.append(x)
    wn = float(np.linalg.norm(w))
    w_hat = w / wn
    rho_hat = float(w_hat @ rho)
    t = _larger_root(rho_hat, beta * wn ** (2.0 / L), L)
    if t is not None:
        x = rho - rho_hat * w_hat + t * w_hat
        if np.all(x > 0):
            cands.append(x)
    vals = [J(x) for x in cands]
    i = int(np.argmin(vals))
    return vals[i], cands[i]


def _linear(p: Problem, c: np.ndarray, a: np.ndarray) -> tuple[float, list[np.ndarray], dict]:
    y = p.Y[:, 0]
    L, beta = p.L, p.beta
    cn = float(np.linalg.norm(c))
    r = float(c @ y) / cn
    beta_eff = beta * cn ** (-2.0 / L)
    value = 0.5 * float(y @ y) - 0.5 * r * r + float(path_value(abs(r), beta_eff, L))
    s = float(path_minimiser(abs(r), beta_eff, L))
    P = 1 if s > 0 else 0
    width = optimal_width(p, P)
    Ws = [np.zeros((p.d, width))] + [np.zeros((width, width)) for _ in range(L - 2)]
    Ws.append(np.zeros((width, 1)))
    dirs = np.zeros((p.d, 0))
    if P:
        t = (s / cn) ** (1.0 / L)
        Ws[0][:, 0] = t * a
        for W in Ws[1:-1]:
            W[0, 0] = t
        Ws[-1][0, 0] = np.sign(r) * t
        dirs = a[:, None].copy()
    return value, Ws, {"r": r, "path_values": np.array([s] if P else []), "directions": dirs}


def _relu(p: Problem, c: np.ndarray, a: np.ndarray) -> tuple[float, list[np.ndarray], dict]:
    y = p.Y[:, 0]
    L, beta = p.L, p.beta
    value = 0.5 * float(y @ y)
    chans = []  # (input sign, ‖c_s‖, r_s)
    for sgn in (1.0, -1.0):
        cs = np.maximum(sgn * c, 0.0)
        cn = float(np.linalg.norm(cs))
        if cn > 0:
            r = float(cs @ y) / cn
            value -= 0.5 * r * r
            chans.append((sgn, cn, r))
    rs = np.array([ch[2] for ch in chans])
    shared_case = L >= 3 and len(chans) == 2 and rs[0] * rs[1] > 0
    if shared_case:
        w = np.array([1.0 / ch[1] for ch in chans])
        v, x = _shared_pair(np.abs(rs), w, beta, L)
        value += v
        q = np.sign(rs) * x
    else:
        q = np.zeros(len(chans))
        for i, (_, cn, r) in enumerate(chans):
            beta_eff = beta * cn ** (-2.0 / L)
            value += float(path_value(abs(r), beta_eff, L))
            q[i] = np.sign(r) * float(path_minimiser(abs(r), beta_eff, L))
    active = [i for i in range(len(chans)) if q[i] != 0.0]
    mags = {i: abs(q[i]) / chans[i][1] for i in active}  # |f(±1)| on the two points
    width = optimal_width(p, len(active))
    Ws = [np.zeros((p.d, width))] + [np.zeros((width, width)) for _ in range(L - 2)]
    Ws.append(np.zeros((width, 1)))
    shared = shared_case and len(active) == 2
    if shared:  # one chain from layer 2 on, carrying both channels
        t = (mags[0] + mags[1]) ** (1.0 / L)
        for j in range(2):
            pj = np.sqrt(mags[j] / t ** (L - 2))
            Ws[0][:, j] = chans[j][0] * pj * a
            Ws[1][j, 0] = pj
        for W in Ws[2:-1]:
            W[0, 0] = t
        Ws[-1][0, 0] = np.sign(q[0]) * t
    else:
        for j, i in enumerate(active):
            t = mags[i] ** (1.0 / L)
            Ws[0][:, j] = chans[i][0] * t * a
            for W in Ws[1:-1]:
                W[j, j] = t
            Ws[-1][j, 0] = np.sign(q[i]) * t
    dirs = np.stack([chans[i][0] * a for i in active], axis=1) if active else np.zeros((p.d, 0))
    info = {"r_channels": rs, "q_channels": q, "shared_path": shared, "directions": dirs}
    return value, Ws, info


def solve_rank_one(p: Problem) -> Optimum:
    """Exact optimum for rank-one data ``X = c aᵀ`` and K = 1 (THEORY §4, corrected; see module).

    Args:
        p: a linear or ReLU problem, K = 1, no biases or batch norm, rank-one X.

    Returns:
        :class:`Optimum` (``EXACT``) with ``family`` ``"linear_rank_one"`` or
        ``"relu_rank_one"``; ``m_star`` active first-layer neurons with unit ``directions``
        ``±a`` (d, m_star); for display ``info`` has the factors ``a``, ``c`` and, for ReLU,
        ``shared_path`` (one chain carries both channels, L ≥ 3).

    Raises:
        NotCovered: naming the failing assumption.
    """
    p = require_problem(p)
    if p.bias:
        raise NotCovered("the network has biases (THEORY §4 has none)")
    if p.batchnorm:
        raise NotCovered("the network has batch norm (see THEORY §6)")
    if p.K != 1:
        raise NotCovered(f"rank-one closed form needs K = 1, got K = {p.K}")
    c, a, ratio = _rank_one_factors(p)
    if p.activation == "linear":
        value, Ws, info = _linear(p, c, a)
        family = "linear_rank_one"
    else:
        value, Ws, info = _relu(p, c, a)
        family = "relu_rank_one"
    net = Network(weights=tuple(Ws))
    dual = p.Y - forward(p, net) if p.L == 2 else None
    dirs = info.pop("directions")
    info |= {"a": a, "c": c, "sigma_ratio": ratio}
    return Optimum(
        objective=float(value),
        weights=Ws,
        family=family,
        dual=dual,
        network=net,
        m_star=dirs.shape[1],
        directions=dirs,
        info=info,
    )
