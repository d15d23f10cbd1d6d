"""The data-aware dual bound for deep ReLU nets (L ≥ 3, K = 1, no bias; solvers.dual._DeepReluDual).

References: the lemma ``|λᵀσ(H_{L−2}u)| ≤ Π_{l≤L−2}‖W_l‖_F · max(c(λ_+), c(λ_−))`` checked on random
deep networks (exact c by the face enumeration), and multistart float64 L-BFGS networks
(tests/lbfgs.py): the bound must never be above a network's objective (1e-12 relative round-off).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from solvers import Problem, objective
from solvers import dual as dual_mod
from solvers.dual import (
    DEEP_RTOL,
    _deep_bound,
    _DeepReluDual,
    _relu_dual_of_mu,
    _subset_norm,
    deep_relu_dual,
    dual_bound,
)
from solvers.problem import forward
from solvers.separation import max_relu_correlation
from solvers.vector_relu import enumeration_oracle
from tests.lbfgs import lbfgs_multistart
from tests.solvers.test_dual import relu_whitened_optimum, whitened

ROUND_OFF = 1e-12
QP_TOL = 1e-7  # the outer QP's value (the reported limit) is Clarabel's, to its tolerance


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    """deep_relu_dual remembers results: a tampered run must not read an honest one (or back)."""
    dual_mod._DEEP_MEMO.clear()
    yield
    dual_mod._DEEP_MEMO.clear()


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


def _against_multistart(p: Problem, starts: int, seed: int, label: str) -> tuple[float, ...]:
    """``(best, new, old)``: the best of ``starts`` L-BFGS networks (width 8), the optimised
    bound of the first (never above any of them: asserted) and the sign-split bound."""
    runs = lbfgs_multistart(p, width=8, starts=starts, seed=seed, init_scale=1.0, maxiter=3000)
    nets = [val for val, _ in runs]
    new = dual_bound(p, runs[0][1])
    assert_never_above(new, nets)
    D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
    old = _deep_bound(p, D_of_mu, Xn, Y2)[0]
    best = min(nets)
    print(f"{label}: width old {(best - old) / best:.3f}, new {(best - new) / best:.3f}")
    return best, new, old


@pytest.mark.slow  # 6 L-BFGS starts: ~30 s each on a loaded machine
@pytest.mark.parametrize(
    ("n", "d", "L", "beta", "seed"),
    [(10, 2, 3, 0.1, 0), (10, 2, 4, 0.05, 1), (12, 30, 3, 0.2, 2)],  # d > n: no enumeration
)
def test_deep_bound_never_above_multistart_and_tighter_than_sign_split(
    n: int, d: int, L: int, beta: float, seed: int
) -> None:
    best, new, old = _against_multistart(_instance(n, d, L, beta, seed), 6, seed, f"L={L}")
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


# ------------------------------------------------------------- the optimised dual point (h17d)
def test_subset_norm_equals_the_mip_and_the_enumeration() -> None:
    """``c(w)`` for ``w ≥ 0`` by the subsets of its support, against SCIP's MIP (its achieved
    value and its upper bound) and, for d ≤ 3, the face enumeration (1e-9 relative)."""
    rng = np.random.default_rng(7)
    worst = 0.0
    for n, d in [(12, 2), (15, 3), (20, 5), (20, 50)]:
        X = rng.standard_normal((n, d))
        enum = enumeration_oracle(X) if d <= 3 else None
        for _ in range(4):
            w = np.maximum(rng.standard_normal(n), 0.0) * rng.uniform(0.1, 3.0)
            c, u = _subset_norm(X, w)
            ref = max_relu_correlation(X, w, time_limit=30.0)
            assert ref.exact
            assert ref.value * (1 - ROUND_OFF) <= c <= ref.upper * (1 + ROUND_OFF)
            assert abs(float(w @ np.maximum(X @ u, 0.0)) - c) <= 1e-12 * c  # u attains it
            if enum is not None:
                assert abs(enum(w)[0] - c) <= 1e-9 * c
            worst = max(worst, abs(c - ref.value) / ref.value)
    assert _subset_norm(X, np.zeros(X.shape[0]))[0] == 0.0
    print(f"subset c(w) vs SCIP: worst relative difference {worst:.1e}")


def _residual_only(p: Problem, r: np.ndarray) -> float:
    """The bound before optimisation: the directions y and the residual, scaled by c̄."""
    deep = _DeepReluDual(p.X, p.Y[:, 0])
    deep.add(p.Y[:, 0])
    deep.add(r)
    D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
    return _deep_bound(p, lambda m: np.hstack([D_of_mu(m), deep.values(m)]), Xn, Y2)[0]


@pytest.mark.parametrize(
    ("n", "d", "L", "beta", "seed"),
    [
        (10, 2, 3, 0.1, 0),
        (12, 20, 3, 0.2, 1),
        pytest.param(10, 3, 4, 0.05, 2, marks=pytest.mark.slow),  # ~12 s each (L-BFGS)
        pytest.param(12, 4, 5, 0.05, 3, marks=pytest.mark.slow),
    ],
)
def test_optimised_bound_between_residual_bound_and_network(
    n: int, d: int, L: int, beta: float, seed: int
) -> None:
    """Starts at the residual, so never below its bound; never above the network it came from;
    the limit (outer QP) never below the bound; converged means within DEEP_RTOL of it."""
    p = _instance(n, d, L, beta, seed)
    ((val, net),) = lbfgs_multistart(p, width=6, starts=1, seed=seed, init_scale=1.0, maxiter=800)
    r = p.Y[:, 0] - forward(p, net)[:, 0]
    before = _residual_only(p, r)
    dd = deep_relu_dual(p, r)
    assert dd.oracle_exact and dd.converged, dd
    assert dd.lower >= before * (1 - ROUND_OFF)
    assert_never_above(dd.lower, [val])
    assert dd.limit >= dd.lower * (1 - QP_TOL)
    assert dd.limit - dd.lower <= 2 * DEEP_RTOL * dd.limit
    assert dual_bound(p, net) == dd.lower
    print(
        f"{n}x{d} L={L}: residual {before:.6g} -> optimised {dd.lower:.6g} (limit "
        f"{dd.limit:.6g}), network {val:.6g}"
    )


def test_same_bound_alone_fresh_and_remembered() -> None:
    """Deterministic: a fresh call, a second fresh call and the remembered one agree bit for bit."""
    p = _instance(12, 20, 3, 0.2, 4)
    r = np.random.default_rng(4).standard_normal(12)
    a = deep_relu_dual(p, r)
    assert deep_relu_dual(p, r) is a  # remembered
    dual_mod._DEEP_MEMO.clear()
    b = deep_relu_dual(p, r)
    assert b is not a
    assert dataclasses.replace(a, seconds=0.0) == dataclasses.replace(b, seconds=0.0)
    # K > 1 (column by column): the same, through dual_bound
    rng = np.random.default_rng(6)
    q = Problem(rng.standard_normal((10, 12)), rng.standard_normal((10, 2)), 3, 0.2, "relu")
    W = [rng.standard_normal((12, 4)), rng.standard_normal((4, 4)), rng.standard_normal((4, 2))]
    first = dual_bound(q, W)
    assert len(dual_mod._DEEP_MEMO) == 2 and dual_bound(q, W) == first
    dual_mod._DEEP_MEMO.clear()
    assert dual_bound(q, W) == first


def test_wrong_constant_puts_the_bound_above_a_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """c(w) under-reported by 10% (the subset oracle × 0.9) puts the 'bound' above a real network,
    so the never-above check can fail. Whitened X and y ≥ 0 (THEORY §3: the optimum is one
    balanced path, a real network), where the honest bound meets that network's objective."""
    rng = np.random.default_rng(3)
    for L in (3, 4):
        p = Problem(whitened(rng, 10, 16), np.abs(rng.standard_normal(10)), L, 0.3, "relu")
        P, Wopt = relu_whitened_optimum(p)
        nets = [objective(p, Wopt)]
        r = p.Y[:, 0] - forward(p, Wopt)[:, 0]
        honest = deep_relu_dual(p, r).lower
        assert_never_above(honest, nets)
        assert honest >= nets[0] * (1 - 1e-6)  # tight here: the tampering below is visible
    dual_mod._DEEP_MEMO.clear()
    real = dual_mod._subset_norm

    def low(X: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        c, u = real(X, w)
        return 0.9 * c, u

    monkeypatch.setattr(dual_mod, "_subset_norm", low)
    with pytest.raises(AssertionError):
        assert_never_above(deep_relu_dual(p, r).lower, nets)


def test_wrong_cut_puts_the_limit_below_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cuts g = (Xu)_+ inflated by 1/0.9 (c(λ) ≥ gᵀλ_±/0.9 claimed) shrink the outer set below
    the true feasible set: the reported limit drops below a valid bound, which the limit ≥ bound
    check catches; the bound stays valid (it never reads the cuts' values), the iteration stops
    early (the wrong outer value looks reached)."""
    p = _instance(12, 20, 3, 0.2, 1)
    r = np.random.default_rng(1).standard_normal(12)
    honest = deep_relu_dual(p, r)
    dual_mod._DEEP_MEMO.clear()
    real_outer = _DeepReluDual._outer_qp

    def inflated(self: _DeepReluDual, mu: float):  # noqa: ANN202
        saved = self.cuts
        self.cuts = [g / 0.9 for g in saved]
        try:
            return real_outer(self, mu)
        finally:
            self.cuts = saved

    monkeypatch.setattr(_DeepReluDual, "_outer_qp", inflated)
    wrong = deep_relu_dual(p, r)
    # still a valid bound of this relaxation (scaled by the real c̄), only a worse one
    assert wrong.lower <= honest.limit * (1 + QP_TOL)
    with pytest.raises(AssertionError):
        assert wrong.limit >= wrong.lower * (1 - QP_TOL), (wrong.limit, wrong.lower)


@pytest.mark.slow  # ~15 s loaded: one SCIP call per cutting-plane step
def test_mip_oracle_path_gives_the_subset_path_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the subset enumeration (forced here: SUBSET_MAX_SUPPORT = 0) SCIP's MIP gives c̄;
    on an instance both reach, the two bounds agree to the MIP's tolerance and the optimiser's."""
    p = _instance(10, 20, 3, 0.2, 5)  # d = 20 > n: no face enumeration, so the MIP
    r = np.random.default_rng(5).standard_normal(10)
    subset = deep_relu_dual(p, r)
    dual_mod._DEEP_MEMO.clear()
    monkeypatch.setattr(dual_mod, "SUBSET_MAX_SUPPORT", 0)
    mip = deep_relu_dual(p, r)
    assert mip.oracle_exact and mip.converged and subset.converged
    assert abs(mip.lower - subset.lower) <= 2 * DEEP_RTOL * subset.limit
    assert mip.lower <= subset.limit * (1 + QP_TOL)


# ------------------------------------------------------------------- K > 1, column by column
@pytest.mark.slow  # 4 L-BFGS starts of a K = 2 net: ~30 s loaded
def test_columnwise_bound_never_above_multistart_and_tighter_than_sign_split() -> None:
    rng = np.random.default_rng(11)
    p = Problem(rng.standard_normal((10, 3)), rng.standard_normal((10, 2)), 3, 0.1, "relu")
    best, new, old = _against_multistart(p, 4, 11, "K=2")
    assert best - new < 0.95 * (best - old)


def test_columnwise_wrong_split_puts_the_bound_above_a_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Y = [y, 0], y ≥ 0, whitened X: the K = 2 problem is the K = 1 one of THEORY §3, whose
    optimal network (with a zero output column) the honest column bound meets. Budget splits
    of norm 1.1 instead of 1 (Σ c_k² ≤ 1.21μ²) put the 'bound' above that network, so the
    never-above check can fail."""
    rng = np.random.default_rng(12)
    X, y = whitened(rng, 10, 16), np.abs(rng.standard_normal(10))
    P, W1 = relu_whitened_optimum(Problem(X, y, 3, 0.3, "relu"))
    p = Problem(X, np.stack([y, np.zeros(10)], axis=1), 3, 0.3, "relu")
    net = [*W1[:-1], np.hstack([W1[-1], np.zeros_like(W1[-1])])]
    nets = [objective(p, net)]
    assert abs(nets[0] - P) <= 1e-10 * P
    honest = dual_bound(p, net)
    assert_never_above(honest, nets)
    assert honest >= P * (1 - 1e-6)  # tight here: the tampering below is visible
    dual_mod._DEEP_MEMO.clear()  # else the honest bound is read back
    real = dual_mod._splits
    monkeypatch.setattr(dual_mod, "_splits", lambda K: 1.1 * real(K))
    with pytest.raises(AssertionError):
        assert_never_above(dual_bound(p, net), nets)
