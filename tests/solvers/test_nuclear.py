"""The one nuclear-norm solver (THEORY §2, §7, §9) against cvxpy and against its own certificates.

Tolerances: cvxpy (Clarabel) agrees to ~1e-8, so values are compared at rtol 1e-6; the solver's
own certificate is exact arithmetic on an explicit feasible Λ (checked to 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers.nuclear import NuclearNorm, group_lasso_root
from tests.conftest import assert_close


def _dual_value(X: np.ndarray, Y: np.ndarray, Lam: np.ndarray, mu: float) -> float:
    """⟨Λ, Y⟩ − ½‖Λ‖² after checking ‖XᵀΛ‖₂ ≤ μ (an independent re-computation)."""
    assert np.linalg.norm(X.T @ Lam, 2) <= mu * (1 + 1e-12)
    return float(np.sum(Lam * Y)) - 0.5 * float(np.sum(Lam * Lam))


def _primal_value(X: np.ndarray, Y: np.ndarray, W: np.ndarray, mu: float) -> float:
    R = X @ W - Y
    return 0.5 * float(np.sum(R * R)) + mu * float(np.sum(np.linalg.svd(W, compute_uv=False)))


@pytest.mark.parametrize(
    ("n", "d", "K", "whiten", "method"),
    [
        (12, 6, 3, False, "fista"),
        (12, 6, 1, False, "root"),
        (8, 14, 3, True, "closed_form"),
        (15, 5, 2, True, "closed_form"),  # partial isometry with n > d
    ],
)
def test_paths_certify_themselves(
    rng: np.random.Generator, n: int, d: int, K: int, whiten: bool, method: str
) -> None:
    X = rng.standard_normal((n, d))
    if whiten:
        U, _, Vt = np.linalg.svd(X, full_matrices=False)
        X = U @ Vt
    Y = rng.standard_normal((n, K))
    nn = NuclearNorm(X, Y)
    for mu in (0.05 * nn.mu_max, 0.5 * nn.mu_max, 2.0 * nn.mu_max):
        sol = nn.solve(mu)
        assert sol.method == (method if mu < nn.mu_max else "zero")
        assert sol.converged and 0 <= sol.rel_gap <= 1e-10
        assert_close(_primal_value(X, Y, sol.W, mu), sol.primal, rtol=1e-12, atol=1e-14)
        assert_close(_dual_value(X, Y, sol.dual, mu), sol.lower_bound, rtol=1e-12, atol=1e-14)


@pytest.mark.reference
def test_against_cvxpy(rng: np.random.Generator) -> None:
    from solvers.reference import nuclear_primal

    for K in (1, 3):
        X = rng.standard_normal((14, 6))
        Y = rng.standard_normal((14, K))
        mu = 0.3 * float(np.linalg.norm(X.T @ Y, 2))
        sol = NuclearNorm(X, Y).solve(mu)
        ref, _ = nuclear_primal(X, Y, mu)
        assert_close(sol.primal, ref, rtol=1e-6)
        assert sol.lower_bound <= ref * (1 + 1e-8)


def test_warm_start_and_iteration_cap(rng: np.random.Generator) -> None:
    X, Y = rng.standard_normal((20, 8)), rng.standard_normal((20, 3))
    nn = NuclearNorm(X, Y)
    mu = 0.2 * nn.mu_max
    capped = nn.solve(mu, max_iter=2)
    assert not capped.converged and capped.rel_gap > 1e-10 and capped.iterations == 2
    assert capped.lower_bound <= capped.primal  # still a valid bracket
    cold = nn.solve(mu)
    G = nn.Vt @ cold.W  # reduced coordinates of the solution
    warm = nn.solve(mu, start=G)
    assert warm.converged and warm.iterations <= 10
    assert_close(warm.primal, cold.primal, rtol=1e-9)


def test_group_lasso_root(rng: np.random.Generator) -> None:
    lam, b = rng.uniform(0.5, 3.0, 6), rng.standard_normal(6)
    gamma = 0.4 * float(np.linalg.norm(b))
    nu = group_lasso_root(lam, b, gamma)
    assert_close(nu * float(np.linalg.norm(b / (lam + nu))), gamma, rtol=1e-13)
    assert group_lasso_root(lam, b, 1.01 * float(np.linalg.norm(b))) is None


def test_bad_mu(rng: np.random.Generator) -> None:
    nn = NuclearNorm(rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    with pytest.raises(ValueError, match="mu must be"):
        nn.solve(0.0)
