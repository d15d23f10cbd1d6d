"""The Shor (SDP + RLT) bound of solvers.shor: never below the exact ``c(λ)`` of the face
enumeration (solvers.two_layer.dual_norm) on random instances with and without bias; the safety
correction is what makes a perturbed dual a bound (dropped, the same dual falls below the exact
value); a bracket built from it at an L-BFGS residual contains the certified P* and the best
multistart network's objective."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scs")

from solvers import Problem, objective  # noqa: E402
from solvers.problem import forward  # noqa: E402
from solvers.scalar import scaled_dual_value  # noqa: E402
from solvers.shor import Program, program, shor_bound, shor_dual_norm  # noqa: E402
from solvers.two_layer import dual_norm, local_network, solve_two_layer  # noqa: E402
from tests.lbfgs import lbfgs_multistart  # noqa: E402


def _instance(n: int, d: int, bias: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    return X, (lam - lam.mean() if bias else lam)


# 20 instances: n 8–14, d 1–4, half with bias
CASES = [(8 + s % 7, 1 + s % 4, s % 2 == 1, s) for s in range(20)]


@pytest.mark.slow
@pytest.mark.parametrize(("n", "d", "bias", "seed"), CASES)
def test_shor_bound_is_never_below_the_exact_value(n: int, d: int, bias: bool, seed: int) -> None:
    X, lam = _instance(n, d, bias, seed)
    exact, covered = dual_norm(X, lam, bias=bias)
    assert covered
    upper, _ = shor_dual_norm(X, lam, bias=bias, time_limit=60.0)
    assert upper >= exact


@pytest.mark.parametrize(("n", "d", "bias", "seed"), CASES[:4])
def test_shor_bound_fast_subset(n: int, d: int, bias: bool, seed: int) -> None:
    X, lam = _instance(n, d, bias, seed)
    exact, _ = dual_norm(X, lam, bias=bias)
    assert shor_dual_norm(X, lam, bias=bias)[0] >= exact


def _scs_dual(prog: Program) -> np.ndarray:
    import scs

    data, cone = prog.scs_data()
    sol = scs.SCS(data, cone, eps_abs=1e-8, eps_rel=1e-8, verbose=False).solve()
    return np.asarray(sol["y"])


@pytest.mark.parametrize("bias", [False, True])
def test_dropping_the_correction_fails_on_a_perturbed_dual(bias: bool) -> None:
    """SCS's dual gives a bound above ``s(λ)`` (the MIP oracle's exact value); scaled by 0.1
    (or zero) it is no dual solution: without the eigenvalue correction its value falls below
    ``s(λ)`` (the check fails), with it the bound holds."""
    from solvers.separation import max_relu_correlation

    X, lam = _instance(12, 2, bias, 3)
    res = max_relu_correlation(X, lam, bias=bias, time_limit=60.0)
    assert res.exact
    prog = program(X, lam, bias=bias)
    assert isinstance(prog, Program)
    y = _scs_dual(prog)
    assert prog.upper(y)[0] >= res.upper
    for bad in (0.1 * y, np.zeros_like(y)):
        unsafe, _ = prog.upper(bad, correct=False)
        safe, corr = prog.upper(bad)
        assert unsafe < res.value  # the uncorrected number is not a bound
        assert safe >= res.upper and corr > 0


def test_trivial_and_unbounded() -> None:
    X, lam = _instance(10, 2, False, 0)
    assert shor_bound(X, -np.abs(lam)).upper == 0.0
    assert shor_bound(X, np.abs(lam), bias=True).upper == np.inf
    with pytest.raises(ValueError, match="lam has 9 entries"):
        shor_bound(X, lam[:9])
    with pytest.raises(ValueError, match="products must be one of"):
        shor_bound(X, lam, products="nope")


@pytest.mark.slow
@pytest.mark.parametrize("bias", [False, True])
def test_bracket_from_the_shor_bound_contains_p_star_and_multistart(bias: bool) -> None:
    """At an L-BFGS network's residual λ: ``D(αλ)`` with ``α = β/c̄`` (c̄ the Shor bound) is
    below the certified P* (enumeration) and the best of 5 L-BFGS multistarts (width 12)."""
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    p = Problem(X, y, 2, 0.1, "relu", bias=bias)
    opt = solve_two_layer(p)
    assert opt.status.value == "certified"
    W1 = rng.standard_normal((3, 6)) * 0.3
    W2 = rng.standard_normal((6, 1)) * 0.3
    from solvers.problem import Network

    net = local_network(p, Network((W1, W2), biases=(np.zeros(6),) if bias else None))
    lam = y - forward(p, net)[:, 0]
    lam = lam - lam.mean() if bias else lam
    cbar, _ = shor_dual_norm(X, lam, bias=bias)
    exact, _ = dual_norm(X, lam, bias=bias)
    assert cbar >= exact
    low = scaled_dual_value(float(lam @ y), float(lam @ lam), p.beta / cbar)
    best = lbfgs_multistart(p, width=12, starts=5, maxiter=3000)[0][0]
    assert low <= opt.lower_bound * (1 + 1e-9)
    assert low <= best
    assert objective(p, net) >= low


def test_column_generation_bracket_uses_the_shor_bound() -> None:
    """Beyond a forced cap with no time for the MIP (time_limit = 0) the bracket's lower end
    comes from the Shor bound at its network's residual: at least the MIP-less lower end, never
    above the enumeration's certified P*."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    p = Problem(X, y, 2, 0.1, "relu")
    exact = solve_two_layer(p)
    br = solve_two_layer(p, cap=50, time_limit=0.0, shor_time=30.0)
    assert br.status.value == "bracket"
    shor = br.info["shor"]
    assert br.lower_bound == max(shor["lower"], shor["lower_before"])
    assert br.lower_bound <= exact.objective * (1 + 1e-9)
    none = solve_two_layer(p, cap=50, time_limit=0.0)
    assert "shor" not in none.info and none.lower_bound == shor["lower_before"]
