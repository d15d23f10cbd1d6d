"""The data-aware dual bound for deep ReLU nets (L ≥ 3, K = 1, no bias; solvers.dual._DeepReluDual).

References: the lemma ``|λᵀσ(H_{L−2}u)| ≤ Π_{l≤L−2}‖W_l‖_F · max(c(λ_+), c(λ_−))`` checked on random
deep networks (exact c by the face enumeration), and multistart float64 L-BFGS networks
(tests/lbfgs.py): the bound must never be above a network's objective (1e-12 relative round-off).
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Problem, objective
from solvers import dual as dual_mod
from solvers.dual import _deep_bound, _DeepReluDual, _relu_dual_of_mu, dual_bound
from tests.lbfgs import lbfgs_multistart

ROUND_OFF = 1e-12


def assert_never_above(bound: float, objectives: list[float]) -> None:
    worst = min(objectives)
    assert bound <= worst + ROUND_OFF * abs(worst), f"bound {bound!r} above a network {worst!r}"


def _instance(n: int, d: int, L: int, beta: float, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    return Problem(rng.standard_normal((n, d)), rng.standard_normal(n), L, beta, "relu")


@pytest.mark.parametrize("L", [3, 4, 5])
def test_lemma_on_random_deep_networks(L: int) -> None:
    rng = np.random.default_rng(L)
    n, d, m = 10, 2, 5
    X = rng.standard_normal((n, d))
    deep = _DeepReluDual(X, rng.standard_normal(n))
    worst = 0.0
    for _ in range(40):
        lam = rng.standard_normal(n)
        C = deep.constant(lam)
        # the first L − 2 layers; H_{L−2} is the input of layer L − 1
        Ws = [rng.standard_normal((d, m))] + [rng.standard_normal((m, m)) for _ in range(L - 3)]
        H = _hidden(X, Ws)
        scale = float(np.prod([np.linalg.norm(W) for W in Ws]))
        U = rng.standard_normal((m, 200))
        U /= np.linalg.norm(U, axis=0)
        vals = np.abs(lam @ np.maximum(H @ U, 0.0))
        worst = max(worst, float(np.max(vals)) / (scale * C))
    assert worst <= 1.0 + ROUND_OFF
    assert worst > 0.05  # the check is not vacuous


def _hidden(X: np.ndarray, Ws: list[np.ndarray]) -> np.ndarray:
    H = X
    for W in Ws:
        H = np.maximum(H @ W, 0.0)
    return H


@pytest.mark.slow  # 6 L-BFGS starts: ~30 s each on a loaded machine
@pytest.mark.parametrize(("n", "d", "L", "beta", "seed"), [(10, 2, 3, 0.1, 0), (10, 2, 4, 0.05, 1)])
def test_deep_bound_never_above_multistart_and_tighter_than_sign_split(
    n: int, d: int, L: int, beta: float, seed: int
) -> None:
    p = _instance(n, d, L, beta, seed)
    runs = lbfgs_multistart(p, width=8, starts=6, seed=seed, init_scale=1.0, maxiter=3000)
    nets = [val for val, _ in runs]
    new = dual_bound(p, runs[0][1])
    assert_never_above(new, nets)
    D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
    old = _deep_bound(p, D_of_mu, Xn, Y2)[0]
    best = min(nets)
    print(f"L={L}: width old {(best - old) / best:.3f}, new {(best - new) / best:.3f}")
    assert best - new < 0.9 * (best - old)  # measured: 0.90 -> 0.57 (L = 3), 0.86 -> 0.74 (L = 4)


def test_tampered_constant_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under-reporting C(λ) (a tenth of it) pushes the 'bound' above a real network."""
    p = _instance(10, 2, 3, 0.1, 0)
    runs = lbfgs_multistart(p, width=8, starts=2, seed=0, init_scale=1.0, maxiter=3000)
    honest = _DeepReluDual.constant
    monkeypatch.setattr(
        dual_mod._DeepReluDual, "constant", lambda self, lam: 0.1 * honest(self, lam)
    )
    fake = dual_bound(p, runs[0][1])
    with pytest.raises(AssertionError):
        assert_never_above(fake, [objective(p, net) for _, net in runs])
