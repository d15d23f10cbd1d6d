"""cvxpy reference programs for the convex problems of docs/theory.md (tests and benchmarks only).

cvxpy is the optional extra ``reference`` and is imported inside each function. Every function
returns ``(value, argument)`` as solved by ``solver`` (default :data:`PREFERRED_SOLVER`,
Clarabel, an interior-point method: ~1e-8 relative; ``solver=None`` lets cvxpy pick its
default, which for the dual's ``sigma_max`` constraint is SCS at only ~1e-5). Pass a dict as
``stats`` to receive the solver's name and status.

- :func:`nuclear_primal`: ``min_W ½‖XW − Y‖² + β‖W‖_*`` (THEORY §2, L = 2).
- :func:`nuclear_dual`: ``max_Λ ⟨Λ, Y⟩ − ½‖Λ‖²  s.t.  ‖XᵀΛ‖₂ ≤ β`` (its dual).
- :func:`group_lasso`: ``GL(γ) = min_w ½‖Xw − y‖² + γ‖w‖₂`` (THEORY §2, L ≥ 3, K = 1).
- :func:`bn_linear`: ``min_F ½‖F − Y‖² + (β/√n)‖F‖_*`` (THEORY §6 BN-linear, any Y).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PREFERRED_SOLVER",
    "bn_linear",
    "group_lasso",
    "nuclear_dual",
    "nuclear_primal",
    "relu_two_layer",
]

PREFERRED_SOLVER = "CLARABEL"


def _cvxpy():  # noqa: ANN202 - the module
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "solvers.reference needs cvxpy: pip install 'dualsweep[reference]'"
        ) from exc
    return cp


def _solve(problem: object, solver: str | None, stats: dict | None) -> float:
    if solver is None:
        problem.solve()
    else:
        problem.solve(solver=solver)
    if stats is not None:
        stats["solver"] = problem.solver_stats.solver_name
        stats["status"] = problem.status
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy did not solve the problem: status {problem.status}")
    return float(problem.value)


def nuclear_primal(
    X: np.ndarray,
    Y: np.ndarray,
    beta: float,
    *,
    solver: str | None = PREFERRED_SOLVER,
    stats: dict | None = None,
) -> tuple[float, np.ndarray]:
    """``min_W ½‖XW − Y‖_F² + β‖W‖_*``; returns (value, W)."""
    cp = _cvxpy()
    X, Y = np.asarray(X, float), np.asarray(Y, float).reshape(len(X), -1)
    W = cp.Variable((X.shape[1], Y.shape[1]))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ W - Y) + beta * cp.normNuc(W)))
    return _solve(prob, solver, stats), np.asarray(W.value)


def nuclear_dual(
    X: np.ndarray,
    Y: np.ndarray,
    beta: float,
    *,
    solver: str | None = PREFERRED_SOLVER,
    stats: dict | None = None,
) -> tuple[float, np.ndarray]:
    """``max_Λ ⟨Λ, Y⟩ − ½‖Λ‖_F²  s.t.  ‖XᵀΛ‖₂ ≤ β``; returns (value, Λ)."""
    cp = _cvxpy()
    X, Y = np.asarray(X, float), np.asarray(Y, float).reshape(len(X), -1)
    Lam = cp.Variable(Y.shape)
    prob = cp.Problem(
        cp.Maximize(cp.sum(cp.multiply(Lam, Y)) - 0.5 * cp.sum_squares(Lam)),
        [cp.sigma_max(X.T @ Lam) <= beta],
    )
    return _solve(prob, solver, stats), np.asarray(Lam.value)


def group_lasso(
    X: np.ndarray,
    y: np.ndarray,
    gamma: float,
    *,
    solver: str | None = PREFERRED_SOLVER,
    stats: dict | None = None,
) -> tuple[float, np.ndarray]:
    """``GL(γ) = min_w ½‖Xw − y‖² + γ‖w‖₂``; returns (value, w)."""
    cp = _cvxpy()
    X, y = np.asarray(X, float), np.asarray(y, float).reshape(-1)
    w = cp.Variable(X.shape[1])
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ w - y) + gamma * cp.norm(w, 2)))
    return _solve(prob, solver, stats), np.asarray(w.value)


def bn_linear(
    Y: np.ndarray, beta: float, *, solver: str | None = PREFERRED_SOLVER, stats: dict | None = None
) -> tuple[float, np.ndarray]:
    """BN-linear (THEORY §6): ``min_F ½‖F − Y‖² + (β/√n)‖F‖_*``; returns (value, F)."""
    cp = _cvxpy()
    Y = np.asarray(Y, float)
    Y = Y[:, None] if Y.ndim == 1 else Y
    F = cp.Variable(Y.shape)
    gamma = beta / np.sqrt(Y.shape[0])
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(F - Y) + gamma * cp.normNuc(F)))
    return _solve(prob, solver, stats), np.asarray(F.value)


def relu_two_layer(
    X: np.ndarray,
    y: np.ndarray,
    beta: float,
    patterns: np.ndarray,
    *,
    bias: bool = False,
    solver: str | None = PREFERRED_SOLVER,
    stats: dict | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """THEORY §10's convex program over the given patterns (rows of ``patterns``, (P, n) bool):
    ``min ½‖Σ_i D_i X̃(v_i − w_i) − y‖² + β Σ (‖v_i,X‖ + ‖w_i,X‖)`` s.t.
    ``(2D_i − I)X̃v_i ≥ 0``, ``(2D_i − I)X̃w_i ≥ 0``, ``X̃ = [X, 1]`` with bias (the penalty on
    the X-part only); returns (value, V, W) with V, W of shape (P, d or d+1)."""
    cp = _cvxpy()
    X = np.asarray(X, float)
    y = np.asarray(y, float).reshape(-1)
    Xt = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    D = np.asarray(patterns, float)  # (P, n)
    P, k = D.shape[0], Xt.shape[1]
    d = X.shape[1]
    V = cp.Variable((k, P))
    W = cp.Variable((k, P))
    fit = cp.sum(cp.multiply(D.T, Xt @ (V - W)), axis=1)  # Σ_i D_i X̃ (v_i − w_i)
    S = 2.0 * D.T - 1.0
    cons = [cp.multiply(S, Xt @ V) >= 0, cp.multiply(S, Xt @ W) >= 0]
    pen = cp.sum(cp.norm(V[:d], 2, axis=0)) + cp.sum(cp.norm(W[:d], 2, axis=0))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(fit - y) + beta * pen), cons)
    return _solve(prob, solver, stats), np.asarray(V.value).T, np.asarray(W.value).T
