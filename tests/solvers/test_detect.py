"""Data detection (solvers.detect): the screened tests agree with the exact ones, the screen's
false-pass probability obeys its bound, and detection runs once per problem.

The exact tests are re-computed here independently (Gram matrix / singular values).
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Problem, data, solve
from solvers.detect import (
    PROBES,
    SCREEN_C,
    WHITENED_TOL,
    DataFacts,
    facts,
    false_pass_bound,
    is_partial_isometry,
    is_whitened,
)


def _orthonormal_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T


def _exact_whitened(X: np.ndarray) -> bool:
    n = X.shape[0]
    return n <= X.shape[1] and np.linalg.norm(X @ X.T - np.eye(n)) <= WHITENED_TOL


def _exact_partial_isometry(X: np.ndarray) -> bool:
    s = np.linalg.svd(X, compute_uv=False)
    one = np.abs(s - 1) <= WHITENED_TOL
    return bool(one.any() and np.all(one | (s <= WHITENED_TOL)))


@pytest.mark.parametrize("scale", [0.0, 1e-13, 0.3e-10, 0.9e-10, 1.1e-10, 3e-10, 1e-6, 0.5])
def test_screened_equals_exact_around_the_tolerance(rng: np.random.Generator, scale: float) -> None:
    """Perturbations below, near and above the tolerance: the screened verdicts equal the exact
    ones (a false pass would need a 5.5e-15 event), with the exact test run only near it."""
    for trial in range(6):
        n, d = (6, 10) if trial % 2 else (12, 5)
        Q = _orthonormal_rows(rng, n, d) if n <= d else _orthonormal_rows(rng, d, n).T
        E = rng.standard_normal((n, d))
        if trial % 3 == 0:  # rank one: the hardest case for a random screen
            E = np.outer(rng.standard_normal(n), rng.standard_normal(d))
        # scale E so that the exact defect ‖XXᵀ − I‖_F (or the σ's distance) is ~ scale
        X = Q + scale * E / np.linalg.norm(E) / 2
        fresh = DataFacts(X, None)
        assert fresh.whitened == _exact_whitened(X)
        assert fresh.partial_isometry == _exact_partial_isometry(X)
        if scale <= 1e-13 or scale >= 1e-6:  # far from the threshold: the screen decides alone
            assert fresh.exact_checks == 0
        assert is_whitened(X, exact=True) == _exact_whitened(X)
        assert is_partial_isometry(X, exact=True) == _exact_partial_isometry(X)


def test_zero_and_tiny_matrices_are_not_partial_isometries() -> None:
    for X in (np.zeros((3, 5)), 1e-12 * np.eye(3, 5)):
        assert not DataFacts(X, None).partial_isometry and not _exact_partial_isometry(X)
        assert not DataFacts(X, None).whitened


def test_false_pass_rate_obeys_its_bound(rng: np.random.Generator) -> None:
    """The bound (c·e^{1−c})^{k/2} at a (k, c) where failures are observable: X whitened up to a
    rank-one defect with ‖XXᵀ − I‖_F = 1.05·tol (it fails the exact test) is screened with 4000
    independent probe draws; the fast-positive rate stays below the bound."""
    k, c = 2, 0.05
    bound = false_pass_bound(k, c)
    n, d = 10, 16
    Q = _orthonormal_rows(rng, n, d)
    u = rng.standard_normal(n)
    u /= np.linalg.norm(u)
    target = 1.05 * WHITENED_TOL  # XXᵀ − I ≈ ε(u uᵀ Q... ) : set ε so that the defect is target
    X = Q + (target / 2) * np.outer(u, u) @ Q
    assert not _exact_whitened(X)
    passes = 0
    draws = 4000
    for seed in range(draws):
        f = DataFacts(X, None, probes=k, screen_c=c, probe_seed=seed)
        if f.whitened:  # only a fast positive can say True here
            passes += 1
            assert f.exact_checks == 0
    rate = passes / draws
    print(f"false-pass rate {rate:.4f} vs bound {bound:.4f} (k={k}, c={c})")
    assert 0 < rate <= bound  # observable, and below the bound
    # the default screen's bound is what the module states
    assert false_pass_bound() == pytest.approx((SCREEN_C * np.e ** (1 - SCREEN_C)) ** (PROBES / 2))
    assert false_pass_bound() < 1e-14


def test_detection_runs_once_per_problem() -> None:
    """solve() on whitened data: one screen, no exact O(n²d) test, cached for the next caller."""
    X, Y = data.make_dataset("whitened", "gaussian", n=40, d=60, outputs=3, seed=0)
    p = Problem(X, Y, 3, 0.5)
    solve(p)
    found = facts(p)
    assert found.screens == 1 and found.exact_checks == 0
    solve(p)
    assert facts(p) is found and found.screens == 1
    q = Problem(X, Y, 3, 0.5)  # a new problem has its own facts
    assert facts(q) is not found


def test_certain_negatives_need_no_exact_test(rng: np.random.Generator) -> None:
    X = rng.standard_normal((8, 20)) / np.sqrt(8)
    f = DataFacts(X, None)
    assert not f.whitened and f.exact_checks == 0
    assert not f.partial_isometry and f.exact_checks == 0
