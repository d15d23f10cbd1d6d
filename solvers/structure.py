"""Structure of trained layers, compared with THEORY's predictions (pure numpy).

Per layer ``W_l = U diag(σ) Vᵀ`` (σ_1 ≥ σ_2 ≥ …), :func:`layer_stats` reports

- ``rank``: ``#{i : σ_i > rank_tol · max(1, σ_1)}`` (relative to σ_1, absolute below 1);
- ``stable_rank`` ``‖W‖_F²/‖W‖₂²`` and ``norm_ratio`` ``‖W‖₂/‖W‖_F`` (1 iff rank one: THEORY §1
  predicts 1 for deep linear nets with K = 1), ``fro_norm``, ``top_sv`` (up to 5 values);
- ``align_next``: ``|⟨v_1(W_l), u_1(W_{l+1})⟩|``, the cosine between this layer's top right
  singular vector and the next layer's top left one (THEORY §1: consecutive layers align);
- ``subspace_align_next``: the mean cosine of the principal angles between the top-r right
  singular subspace of ``W_l`` and the top-r left singular subspace of ``W_{l+1}``,
  ``r = max(1, min(rank_l, rank_{l+1}))`` (equals ``align_next`` for r = 1).

:func:`direction_alignment` compares the first layer with predicted unit directions
(THEORY §2–§4); :func:`spline_stats` measures how close a 1-D fit is to a linear spline with
kinks at the data points (THEORY §5); :func:`fitted_function` evaluates a 1-D network on a
grid through :func:`solvers.problem.forward`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from solvers.problem import Network, Problem, forward

__all__ = [
    "LAYER_RANK_TOL",
    "direction_alignment",
    "fitted_function",
    "layer_stats",
    "spline_stats",
]

LAYER_RANK_TOL = 1e-6  # layer rank: #{σ_i > LAYER_RANK_TOL·max(1, σ_1)}


def _as_matrix(name: str, W: object) -> np.ndarray:
    A = np.asarray(W, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or inf")
    return A


def _rank(s: np.ndarray, rank_tol: float) -> int:
    if s.size == 0:
        return 0
    return int(np.sum(s > rank_tol * max(1.0, float(s[0]))))


def _subspace_cosine(A: np.ndarray, B: np.ndarray) -> float:
    """Mean cosine of the principal angles between span(A) and span(B) (orthonormal columns)."""
    c = np.linalg.svd(A.T @ B, compute_uv=False)
    return float(np.mean(np.clip(c, 0.0, 1.0)))


def layer_stats(weights: Sequence[np.ndarray], *, rank_tol: float = LAYER_RANK_TOL) -> list[dict]:
    """One dict per layer: rank, stable_rank, norm_ratio, fro_norm, top_sv, align_next,
    subspace_align_next (the last two ``None`` for the last layer). See the module docstring."""
    if rank_tol <= 0 or not np.isfinite(rank_tol):
        raise ValueError(f"rank_tol must be a finite number > 0, got {rank_tol!r}")
    mats = [_as_matrix(f"weights[{i}]", W) for i, W in enumerate(weights)]
    if not mats:
        raise ValueError("weights is empty")
    for i in range(len(mats) - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise ValueError(
                f"weights[{i}] has {mats[i].shape[1]} columns but weights[{i + 1}] has {mats[i + 1].shape[0]} rows"
            )
    svds = [np.linalg.svd(W, full_matrices=False) for W in mats]
    out = []
    for i, (_U, s, Vt) in enumerate(svds):
        spec = float(s[0]) if s.size else 0.0
        # scaled so that tiny weights (trained towards W = 0) do not underflow in s²
        fro = spec * float(np.linalg.norm(s / spec)) if spec > 0 else 0.0
        rank = _rank(s, rank_tol)
        stats = {
            "rank": rank,
            "stable_rank": (fro / spec) ** 2 if spec > 0 else 0.0,
            "norm_ratio": spec / fro if fro > 0 else 0.0,
            "fro_norm": fro,
            "top_sv": [float(v) for v in s[:5]],
            "align_next": None,
            "subspace_align_next": None,
        }
        if i + 1 < len(svds):
            U_next, s_next, _ = svds[i + 1]
            stats["align_next"] = float(abs(Vt[0] @ U_next[:, 0]))
            r = max(1, min(rank, _rank(s_next, rank_tol)))
            stats["subspace_align_next"] = _subspace_cosine(Vt[:r].T, U_next[:, :r])
        out.append(stats)
    return out


def direction_alignment(
    W1: np.ndarray,
    directions: np.ndarray,
    *,
    tol: float = 1e-6,
    subspace: bool = False,
    signed: bool = False,
) -> float:
    """How well the first layer's active neurons match predicted directions.

    Args:
        W1: first layer, ``(d, m)``; neuron j is column j, active if
            ``‖W1[:, j]‖ > tol · max_j ‖W1[:, j]‖``.
        directions: predicted directions, ``(d,)`` or ``(d, r)`` (normalised here).
        subspace: linear nets (only the span is determined): the mean cosine of the principal
            angles between span(directions) and the top-r left singular subspace of ``W1``.
        signed: ReLU nets: use the signed cosine (a neuron ``−w`` is not ``w``).
    Returns:
        ``min_k max_j |cos(directions_k, W1[:, j])|`` over active j (or the signed
        cosine), or the subspace cosine; 0.0 when no neuron is active.
    """
    W = _as_matrix("W1", W1)
    D = _as_matrix("directions", directions)
    if D.shape[0] != W.shape[0]:
        raise ValueError(f"directions has {D.shape[0]} rows, W1 has {W.shape[0]}: both must be d")
    dnorm = np.linalg.norm(D, axis=0)
    if np.any(dnorm == 0):
        raise ValueError("directions contains a zero vector")
    D = D / dnorm
    if subspace:
        Q, _ = np.linalg.qr(D)
        r = np.linalg.matrix_rank(D)
        U, s, _ = np.linalg.svd(W, full_matrices=False)
        if s[0] == 0:
            return 0.0
        return _subspace_cosine(Q[:, :r], U[:, :r])
    norms = np.linalg.norm(W, axis=0)
    if norms.max() == 0:
        return 0.0
    active = norms > tol * norms.max()
    cos = D.T @ (W[:, active] / norms[active])  # [r, active]
    if not signed:
        cos = np.abs(cos)
    return float(np.min(np.max(cos, axis=1)))


def _slopes(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.diff(f) / np.diff(x)


def spline_stats(
    x: np.ndarray,
    y: np.ndarray,
    f_values_on_grid: np.ndarray,
    grid: np.ndarray,
    *,
    f_at_data: np.ndarray | None = None,
    near: float = 0.02,
    kink_tol: float = 0.01,
) -> dict:
    """THEORY §5 metrics of a fitted 1-D function f given on a sorted grid over [x_min, x_max].

    With ``s_j`` the slopes of f between grid points and ``Δs_j`` their jumps (at interior
    grid points): ``tv = Σ|Δs_j|`` (TV of f′); ``share_near_data`` = the part of it at grid
    points within ``near`` of a data point; ``kinks`` = locations of runs of jumps with
    ``|Δs_j| > kink_tol · tv`` (|Δs|-weighted mean per run); ``max_deviation`` =
    ``max_grid |f − I| / (max y − min y)`` with ``I`` the piecewise-linear interpolant of
    ``(x_i, f(x_i))`` (``f(x_i)`` from ``f_at_data`` or linear interpolation on the grid);
    ``tv_interpolant`` = TV of I′; ``tv_ratio = tv / tv_interpolant``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    g = np.asarray(grid, dtype=np.float64).ravel()
    f = np.asarray(f_values_on_grid, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise ValueError(f"x and y must have the same length >= 2, got {x.size} and {y.size}")
    if g.size != f.size or g.size < 3:
        raise ValueError(
            f"grid and f_values_on_grid must have the same length >= 3, got {g.size} and {f.size}"
        )
    if np.any(np.diff(g) <= 0):
        raise ValueError("grid must be strictly increasing")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x, y and f_values_on_grid must be finite")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if f_at_data is None:
        fx = np.interp(xs, g, f)
    else:
        fx = np.asarray(f_at_data, dtype=np.float64).ravel()[order]
        if fx.size != x.size:
            raise ValueError(
                f"f_at_data must have one value per data point ({x.size}), got {fx.size}"
            )
    xu, first = np.unique(xs, return_index=True)
    fu = fx[first]
    inside = (g >= xu[0]) & (g <= xu[-1])
    y_range = float(np.ptp(y))
    deviation = float(np.max(np.abs(f[inside] - np.interp(g[inside], xu, fu))))
    max_deviation = deviation / y_range if y_range > 0 else deviation

    jumps = np.abs(np.diff(_slopes(g, f)))  # at g[1:-1]
    where = g[1:-1]
    tv = float(np.sum(jumps))
    dist = np.min(np.abs(where[:, None] - xu[None, :]), axis=1)
    share = float(np.sum(jumps[dist <= near]) / tv) if tv > 0 else 1.0

    kinks: list[float] = []
    big = np.flatnonzero(jumps > kink_tol * tv) if tv > 0 else np.array([], dtype=int)
    if big.size:
        runs = np.split(big, np.flatnonzero(np.diff(big) > 1) + 1)
        kinks = [float(np.average(where[r], weights=jumps[r])) for r in runs]
    tv_interp = float(np.sum(np.abs(np.diff(_slopes(xu, fu))))) if xu.size >= 3 else 0.0
    return {
        "max_deviation": max_deviation,
        "tv": tv,
        "share_near_data": share,
        "tv_interpolant": tv_interp,
        "tv_ratio": tv / tv_interp if tv_interp > 0 else float("nan"),
        "n_kinks": len(kinks),
        "kinks": kinks,
    }


def fitted_function(problem: Problem, network: Network, grid: np.ndarray) -> np.ndarray:
    """f of a 1-D network (``problem.d == 1``) at the grid points: ``(G,)`` for K = 1, else ``(G, K)``.

    Evaluated by :func:`solvers.problem.forward` on a Problem whose inputs are the grid.
    Batch-norm networks are refused: their f depends on the batch it is evaluated on.
    """
    if problem.d != 1:
        raise ValueError(f"problem must have 1-D inputs (d = 1), got d = {problem.d}")
    if problem.batchnorm:
        raise ValueError(
            "problem: batchnorm networks have no pointwise f (BN statistics depend on the batch)"
        )
    g = np.asarray(grid, dtype=np.float64).ravel()
    if g.size == 0:
        raise ValueError("grid is empty")
    on_grid = Problem(
        g[:, None],
        np.zeros((g.size, problem.K)),
        problem.depth,
        problem.beta,
        activation=problem.activation,
        width=problem.width,
        bias=problem.bias,
    )
    f = forward(on_grid, network)
    return f[:, 0] if problem.K == 1 else f
