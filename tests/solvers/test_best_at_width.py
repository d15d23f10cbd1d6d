"""``solvers.vector_relu.best_at_width``: the best width-m network refit from a wider optimum's
neurons — the upper end of the bracket [P* of any width, ·] of a trial narrower than m*. It is
a feasible network (an upper bound, no certificate), so it must never go below a certified P*;
on seeded instances it is measured against L-BFGS from random width-m starts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from solvers import Network, Problem, objective, solve
from solvers.data import make_dataset
from solvers.vector_relu import _lbfgs, _lbfgs_whitened, best_at_width


def _wide(kind: str, n: int, d: int, K: int, beta: float, seed: int):
    X, Y = make_dataset(kind, "gaussian", n=n, d=d, outputs=K, seed=seed)
    p = Problem(X=X, Y=Y, depth=2, beta=beta, activation="relu")
    return p, solve(p)


@pytest.mark.parametrize(
    "kind,n,d,K,beta,seed",
    [
        ("whitened", 10, 20, 3, 0.2, 0),
        ("whitened", 10, 20, 3, 0.2, 1),
        ("gaussian", 7, 3, 2, 0.1, 2),
    ],
)
def test_a_width_m_network_never_below_p_star_and_no_worse_than_random_starts(
    kind, n, d, K, beta, seed
) -> None:
    p, opt = _wide(kind, n, d, K, beta, seed)
    assert opt.is_exact, opt.status  # P* certified: the reference every network stays above
    m = opt.m_star - 2
    assert m >= 1, f"m* = {opt.m_star}: the instance is too narrow for the test"
    narrow = dataclasses.replace(p, width=m)
    net = best_at_width(p, opt.network, m)
    W1, W2 = net.weights
    assert W1.shape == (p.d, m) and W2.shape == (m, p.K)
    value = objective(narrow, net)
    assert value >= opt.objective * (1 - 1e-9), (value, opt.objective)
    # by construction no worse than the m largest neurons without a refit
    W1o, W2o = opt.network.weights
    size = np.linalg.norm(W1o, axis=0) * np.linalg.norm(W2o, axis=1)
    top = np.argsort(-size)[:m]
    assert value <= objective(narrow, Network(weights=(W1o[:, top], W2o[top]))) + 1e-12
    # measured, not a theorem: 10 random width-m starts of the same local method do no better
    local = _lbfgs_whitened if kind == "whitened" else _lbfgs
    rng = np.random.default_rng(seed)
    random = min(
        objective(narrow, local(narrow, Network(weights=(
            0.3 * rng.standard_normal((p.d, m)), 0.3 * rng.standard_normal((m, p.K))))))
        for _ in range(10)
    )  # fmt: skip
    assert value <= random * (1 + 1e-9), (value, random)


def test_it_is_deterministic_and_declines_what_it_does_not_cover() -> None:
    p, opt = _wide("whitened", 10, 20, 3, 0.2, 0)
    m = opt.m_star - 2
    a, b = best_at_width(p, opt.network, m), best_at_width(p, opt.network, m)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert np.array_equal(wa, wb)  # a seeded generator: the same network, bit for bit
    assert best_at_width(p, opt.network, opt.m_star) is None  # nothing to choose
    assert best_at_width(dataclasses.replace(p, depth=3), opt.network, m) is None
    assert best_at_width(dataclasses.replace(p, bias=True), opt.network, m) is None
