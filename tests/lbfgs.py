"""Independent reference for non-convex closed forms: float64 L-BFGS of the network itself.

Trains the THEORY §0 objective (evaluated by ``solvers.objective`` at the end, so the number
compared is the project's one definition) from several random starts with scipy's L-BFGS-B and
torch autograd gradients. Deliberately shares no code with ``solvers.sgd``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from solvers import Network, Problem, objective

RESTARTS = 30  # nudged restarts of L-BFGS-B from a kink in lbfgs_from (see _minimise)


def _unpack(theta: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    out, i = [], 0
    for s in shapes:
        size = int(np.prod(s))
        out.append(theta[i : i + size].reshape(s))
        i += size
    return out


def _shapes(p: Problem, m: int) -> list[tuple[int, ...]]:
    dims = [p.d] + [m] * (p.depth - 1) + [p.K]
    shapes: list[tuple[int, ...]] = [(dims[i], dims[i + 1]) for i in range(p.depth)]
    if p.bias:
        shapes += [(m,)] * (p.depth - 1)
    if p.batchnorm:
        shapes += [(m,), (m,)]
    return shapes


def _to_network(p: Problem, parts: list[np.ndarray]) -> Network:
    L = p.depth
    Ws = tuple(parts[:L])
    rest = parts[L:]
    biases = tuple(rest[: L - 1]) if p.bias else None
    rest = rest[L - 1 :] if p.bias else rest
    gamma, alpha = (rest[0], rest[1]) if p.batchnorm else (None, None)
    return Network(weights=Ws, biases=biases, gamma=gamma, alpha=alpha)


def _torch_objective(p: Problem, parts: list[torch.Tensor]) -> torch.Tensor:
    L = p.depth
    X = torch.tensor(np.array(p.X))
    Y = torch.tensor(np.array(p.Y))
    Ws = parts[:L]
    biases = parts[L : 2 * L - 1] if p.bias else None
    bn = parts[-2:] if p.batchnorm else None
    H = X
    for l in range(L - 1):
        A = H @ Ws[l]
        if biases is not None:
            A = A + biases[l]
        if bn is not None and l == L - 2:
            A = A - A.mean(0, keepdim=True)
            A = A / torch.sqrt((A * A).mean(0, keepdim=True)) * bn[0] + bn[1]
        H = torch.relu(A) if p.activation == "relu" else A
    R = H @ Ws[-1] - Y
    if bn is not None:
        reg = (bn[0] ** 2).sum() + (bn[1] ** 2).sum() + (Ws[-1] ** 2).sum()
    else:
        reg = sum((W**2).sum() for W in Ws)
    return 0.5 * (R * R).sum() + 0.5 * p.beta * reg


def _minimise(
    p: Problem, theta0: np.ndarray, shapes: list, *, restarts: int = 0, **options: int
) -> Network:
    """L-BFGS-B of the §0 objective (torch autograd, float64) from the flat parameters ``theta0``.

    L-BFGS-B stops at ReLU kinks far from stationarity (a failed line search, or "no relative
    reduction" although ``ftol = 0``; scipy >= 1.15 stops there much earlier than its Fortran
    predecessor). With ``restarts`` it starts again from the best point nudged off the kink by
    1e-6 (relative), until ``restarts`` runs or 3 runs in a row that do not lower the objective.
    """

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        val = _torch_objective(p, _unpack(t, shapes))
        (g,) = torch.autograd.grad(val, t)
        return float(val.detach()), g.numpy().copy()

    opts = {"ftol": 0.0, "gtol": 1e-13, "maxcor": 50, **options}
    res = minimize(fg, theta0, jac=True, method="L-BFGS-B", options=opts)
    best_theta, best, stale = res.x, float(res.fun), 0
    nudge = np.random.default_rng(0)
    for _ in range(restarts):
        if res.status == 1 or stale >= 3:  # out of iterations, or the kinks hold
            break
        start = best_theta + 1e-6 * np.abs(best_theta).max() * nudge.standard_normal(theta0.shape)
        res = minimize(fg, start, jac=True, method="L-BFGS-B", options=opts)
        if res.fun < best * (1 - 1e-14):
            best_theta, best, stale = res.x, float(res.fun), 0
        else:
            stale += 1
    parts = [a.numpy().copy() for a in _unpack(torch.from_numpy(best_theta), shapes)]
    return _to_network(p, parts)


def lbfgs_from(p: Problem, net: Network, *, maxiter: int = 5000) -> float:
    """Objective (by ``solvers.objective``) after L-BFGS started from the two-layer ``net``."""
    shapes = _shapes(p, net.weights[0].shape[1])
    parts = [net.weights[0], net.weights[1]] + ([net.biases[0]] if p.bias else [])
    theta0 = np.concatenate([np.asarray(a, float).ravel() for a in parts])
    return objective(p, _minimise(p, theta0, shapes, restarts=RESTARTS, maxiter=maxiter))


def lbfgs_multistart(
    p: Problem,
    *,
    width: int,
    starts: int = 5,
    seed: int = 0,
    init_scale: float = 0.5,
    maxiter: int = 20000,
) -> list[tuple[float, Network]]:
    """Final objectives (by ``solvers.objective``) and networks of ``starts`` L-BFGS runs, best first."""
    shapes = _shapes(p, width)
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(starts):
        theta0 = np.concatenate(
            [rng.standard_normal(int(np.prod(s))) * init_scale / np.sqrt(s[0]) for s in shapes]
        )
        net = _minimise(p, theta0, shapes, maxiter=maxiter, maxfun=2 * maxiter)
        results.append((objective(p, net), net))
    results.sort(key=lambda r: r[0])
    return results
