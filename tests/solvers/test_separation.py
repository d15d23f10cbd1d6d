"""The separation oracle (solvers.separation) against the exact c(λ) of the face enumeration
(solvers.two_layer.dual_norm): equal to 1e-9 (relative) wherever the enumeration reaches, and an
early-stopped oracle's bound never below the exact value."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyscipopt")

from solvers.separation import (  # noqa: E402
    best_bias,
    dual_norm_oracle,
    local_search,
    max_relu_correlation,
)
from solvers.two_layer import dual_norm  # noqa: E402


def _instance(n: int, d: int, bias: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    return X, (lam - lam.mean() if bias else lam)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("n", "d", "seed"), [(8, 1, 0), (10, 2, 1), (14, 3, 2), (9, 4, 3)])
def test_oracle_equals_enumeration(n: int, d: int, seed: int, bias: bool) -> None:
    X, lam = _instance(n, d, bias, seed)
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    top, other = dual_norm_oracle(X, lam, bias=bias, time_limit=60.0)
    assert top.exact and other.exact
    assert top.value == pytest.approx(exact, rel=1e-9)
    assert max(top.upper, other.upper) >= exact * (1 - 1e-12)
    # the returned point achieves the value, with ‖u‖ ≤ 1
    assert np.linalg.norm(top.u) <= 1 + 1e-12
    achieved = float(top.sign * lam @ np.maximum(X @ top.u + top.b, 0.0))
    assert achieved == pytest.approx(top.value, rel=1e-12)
    assert np.array_equal(top.pattern, X @ top.u + top.b > 0)


def test_early_stopped_bound_is_above_the_exact_value() -> None:
    X, lam = _instance(30, 4, False, 7)
    exact, covered = dual_norm(X, lam)
    assert covered
    for sg in (1, -1):
        res = max_relu_correlation(X, sg * lam, time_limit=0.05)
        assert res.value <= exact * (1 + 1e-12)
    stopped = dual_norm_oracle(X, lam, time_limit=0.1)
    assert max(r.upper for r in stopped) >= exact * (1 - 1e-12)
    assert stopped[0].value <= exact * (1 + 1e-12)


def test_unbounded_and_trivial() -> None:
    X, lam = _instance(6, 2, True, 0)
    res = max_relu_correlation(X, lam + 0.1, bias=True)  # 1ᵀλ > 0: b → ∞
    assert res.upper == np.inf and not res.exact
    res = max_relu_correlation(X, -np.abs(lam))  # λ ≤ 0 without bias: 0 at u = 0
    assert res.value == 0.0 and res.upper == 0.0 and res.exact
    with pytest.raises(ValueError, match="lam has 5 entries"):
        max_relu_correlation(X, lam[:5])


def test_best_bias_is_the_maximum_over_a_grid() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 9))
    lam = rng.standard_normal(9)
    lam -= lam.mean()
    val, b = best_bias(A, lam)
    grid = np.linspace(-6, 6, 24001)
    for k in range(4):
        brute = np.max(np.maximum(A[k][None, :] + grid[:, None], 0.0) @ lam)
        assert val[k] >= brute - 1e-12
        assert val[k] == pytest.approx(max(float(np.maximum(A[k] + b[k], 0) @ lam), 0.0))
    assert val.max() <= np.max(np.maximum(A[:, None, :] + grid[None, :, None], 0) @ lam) + 1e-3


def test_local_search_value_is_achieved_and_below_exact() -> None:
    X, lam = _instance(12, 3, False, 5)
    exact, _ = dual_norm(X, lam)
    res = local_search(X, lam)
    assert res.upper == np.inf
    assert res.value <= exact * (1 + 1e-12)
    assert res.value == pytest.approx(float(lam @ np.maximum(X @ res.u, 0.0)), rel=1e-12)
