"""Dual bounds and certificates (THEORY §7): never above P*, tight where §7 says so.

P* comes from closed forms computed inline from THEORY's formulas with ``solvers.scalar``
(independent of ``solvers.dual`` and ``solve``), from cvxpy (L = 2 linear, general X), from a
1-D minimisation along the ridge path (deep linear, K = 1, general X) or — where no closed form
exists — from the best of ``tests.lbfgs`` multistart, an UPPER bound on P*.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from solvers import Network, Problem, objective
from solvers.dual import _inf_over_t, _relu_bias_1d_constant, certificate, certified_gap, dual_bound
from solvers.scalar import huber, path_minimiser, path_value
from tests.conftest import assert_close
from tests.lbfgs import lbfgs_multistart

ROUND = 1e-11  # relative round-off allowance for "bound <= P*"


# ------------------------------------------------------------------------------ helpers
def whitened(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T


def random_weights(
    rng: np.random.Generator, p: Problem, m: int, scale: float = 1.0
) -> list[np.ndarray]:
    dims = [p.d] + [m] * (p.L - 1) + [p.K]
    return [
        scale * rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i]) for i in range(p.L)
    ]


def perturb(rng: np.random.Generator, Ws: list[np.ndarray], eps: float) -> list[np.ndarray]:
    return [W + eps * rng.standard_normal(W.shape) for W in Ws]


def linear_iso_optimum(p: Problem) -> tuple[float, list[np.ndarray]]:
    """THEORY §1 for a partial isometry X: value and the balanced aligned layers."""
    U, sig, Vt = np.linalg.svd(p.X.T @ p.Y, full_matrices=False)
    P = 0.5 * np.sum(p.Y**2) - 0.5 * np.sum(sig**2) + float(np.sum(path_value(sig, p.beta, p.L)))
    r = np.asarray(path_minimiser(sig, p.beta, p.L)) ** (1.0 / p.L)
    Ws = [U * r] + [np.diag(r) for _ in range(p.L - 2)] + [r[:, None] * Vt]
    return P, Ws


def relu_whitened_optimum(p: Problem) -> tuple[float, list[np.ndarray]]:
    """THEORY §3, K = 1: two balanced paths along Xᵀy_±."""
    y = p.Y[:, 0]
    cols, outs, P = [], [], 0.0
    for sign, v in ((1.0, np.maximum(y, 0)), (-1.0, np.maximum(-y, 0))):
        nv = float(np.linalg.norm(v))
        P += float(path_value(nv, p.beta, p.L))
        t = float(path_minimiser(nv, p.beta, p.L)) ** (1.0 / p.L) if nv > 0 else 0.0
        cols.append(t * (p.X.T @ v) / nv if nv > 0 else np.zeros(p.d))
        outs.append(sign * t)
    t_vec = np.abs(np.array(outs))
    Ws = (
        [np.stack(cols, axis=1)]
        + [np.diag(t_vec) for _ in range(p.L - 2)]
        + [np.array(outs)[:, None]]
    )
    return P, Ws


def ridge_path_optimum(X: np.ndarray, y: np.ndarray, beta: float, L: int) -> float:
    """THEORY §2 (L ≥ 3, K = 1) as a primal value: stationary w ≠ 0 lie on the ridge path."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    b = U.T @ y

    def phi(log_nu: float) -> float:
        nu = np.exp(log_nu)
        g = s * b / (s**2 + nu)
        res2 = float(np.sum((s * g - b) ** 2)) + float(np.sum(y**2) - np.sum(b**2))
        return 0.5 * res2 + 0.5 * beta * L * float(np.linalg.norm(g)) ** (2.0 / L)

    grid = np.linspace(-25, 25, 801)
    vals = np.array([phi(v) for v in grid])
    i = int(np.argmin(vals))
    res = minimize_scalar(
        phi,
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]),
        method="bounded",
        options={"xatol": 1e-13},
    )
    return min(float(res.fun), float(vals[i]), 0.5 * float(np.sum(y**2)))


def check_below(bound: float, P: float, label: str) -> float:
    excess = bound - P
    assert excess <= ROUND * max(1.0, abs(P)), (
        f"{label}: bound {bound!r} exceeds P* {P!r} by {excess:.3e}"
    )
    return excess


# -------------------------------------------------------------- L = 2 linear (tight, §7)
def test_linear_two_layer_whitened_tight_and_valid(rng: np.random.Generator) -> None:
    worst = -np.inf
    for i in range(120):
        n, d, K = 8, 12, 1 + i % 3
        p = Problem(whitened(rng, n, d), rng.standard_normal((n, K)), 2, rng.uniform(0.05, 2.0))
        P, Wopt = linear_iso_optimum(p)
        assert_close(objective(p, Wopt), P, rtol=1e-12, atol=1e-14)
        assert_close(dual_bound(p, Wopt), P, rtol=1e-10, atol=1e-14)
        for Ws in (random_weights(rng, p, 4), perturb(rng, Wopt, 1e-3), perturb(rng, Wopt, 0.3)):
            worst = max(worst, check_below(dual_bound(p, Ws), P, "linear L=2"))
    print(f"linear L=2 whitened: worst bound - P* = {worst:.2e}")


@pytest.mark.reference
def test_linear_two_layer_general_X_against_cvxpy(rng: np.random.Generator) -> None:
    cp = pytest.importorskip("cvxpy")
    worst = -np.inf
    for i in range(12):
        n, d, K = 10, 6, 1 + i % 3
        X = rng.standard_normal((n, d)) * rng.uniform(0.3, 2.0, size=d)
        p = Problem(X, rng.standard_normal((n, K)), 2, rng.uniform(0.1, 3.0))
        Z = cp.Variable((d, K))
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ Z - p.Y) + p.beta * cp.normNuc(Z)))
        prob.solve(solver=cp.CLARABEL)
        U, s, Vt = np.linalg.svd(Z.value, full_matrices=False)
        Wopt = [U * np.sqrt(s), np.sqrt(s)[:, None] * Vt]
        P_ub = objective(p, Wopt)  # a primal value: >= P*
        assert_close(P_ub, prob.value, rtol=1e-6)
        assert_close(dual_bound(p, Wopt), P_ub, rtol=1e-6)
        for Ws in (Wopt, random_weights(rng, p, 3), perturb(rng, Wopt, 0.1)):
            worst = max(worst, check_below(dual_bound(p, Ws), P_ub, "linear L=2 general X"))
        # the weight-free certified dual (FISTA direction) is within solver accuracy of cvxpy
        assert_close(dual_bound(p, random_weights(rng, p, 3)), prob.value, rtol=1e-6)
    print(f"linear L=2 general X: worst bound - primal(cvxpy) = {worst:.2e}")


# -------------------------------------------------------------- deep linear (§1, §2, §7)
def test_deep_linear_whitened_valid_tight_K1_gap_K3(rng: np.random.Generator) -> None:
    worst, gaps = -np.inf, {3: [], 4: []}
    for i in range(90):
        L = 3 + i % 2
        K = 1 if i % 3 == 0 else 3
        n, d = 8, 10
        p = Problem(whitened(rng, n, d), rng.standard_normal((n, K)), L, rng.uniform(0.05, 1.5))
        P, Wopt = linear_iso_optimum(p)
        assert_close(objective(p, Wopt), P, rtol=1e-11, atol=1e-14)
        lb = dual_bound(p, random_weights(rng, p, 3))
        worst = max(worst, check_below(lb, P, f"deep linear L={L} K={K}"))
        if K == 1:
            assert_close(lb, P, rtol=1e-9)  # §7: LB = P* for K = 1
        elif P - lb > 1e-9 * P:
            gaps[L].append((P - lb) / P)
    print(f"deep linear whitened: worst bound - P* = {worst:.2e}")
    for L, g in gaps.items():
        print(
            f"deep linear whitened K=3 L={L}: relative gap min {min(g):.3f} median {np.median(g):.3f} max {max(g):.3f}"
        )
        assert len(g) > 10 and 0.0 < np.median(g) < 1.0


def test_deep_linear_K1_general_X_exact(rng: np.random.Generator) -> None:
    worst = -np.inf
    for i in range(40):
        L = 3 + i % 3
        n, d = 12, 5
        X = rng.standard_normal((n, d)) * rng.uniform(0.2, 2.0, size=d)
        p = Problem(X, rng.standard_normal(n), L, rng.uniform(0.05, 3.0))
        P = ridge_path_optimum(p.X, p.Y[:, 0], p.beta, L)
        lb = dual_bound(p, random_weights(rng, p, 3))
        worst = max(worst, check_below(lb, P, f"deep linear K=1 L={L}"))
        assert_close(lb, P, rtol=1e-8)
    print(f"deep linear K=1 general X: worst bound - P* = {worst:.2e}")


def test_linear_bias_is_centred_problem(rng: np.random.Generator) -> None:
    """Hidden biases ⇒ free intercept: the bound equals the bias-free one on centred data (whitened)."""
    for i in range(20):
        n, d, K, L = 8, 12, 1 + i % 2, 2 + i % 3
        Xc = whitened(rng, n - 1, d).T  # (d, n-1) orthonormal columns
        basis = np.linalg.svd(np.eye(n) - 1.0 / n, full_matrices=False)[0][:, : n - 1]  # ⊥ 1
        X = basis @ Xc.T + rng.standard_normal(d)[None, :]  # centred part a partial isometry
        Y = rng.standard_normal((n, K))
        p = Problem(X, Y, L, rng.uniform(0.1, 1.0), bias=True)
        q = Problem(X - X.mean(0), Y - Y.mean(0), L, p.beta)
        P, _ = linear_iso_optimum(q)
        net = Network(
            weights=tuple(random_weights(rng, p, 3)),
            biases=tuple(rng.standard_normal(3) for _ in range(L - 1)),
        )
        check_below(dual_bound(p, net), P, "linear bias")
        if K == 1 or L == 2:
            P_net, Wq = linear_iso_optimum(q)
            if L == 2:
                b = np.zeros(Wq[0].shape[1])
                b = np.linalg.lstsq(Wq[1].T, (Y.mean(0) - X.mean(0) @ Wq[0] @ Wq[1]), rcond=None)[0]
                opt = Network(weights=tuple(Wq), biases=(b,))
                assert_close(objective(p, opt), P_net, rtol=1e-10)
                assert_close(dual_bound(p, opt), P, rtol=1e-9)
            else:
                assert_close(dual_bound(p, net), P, rtol=1e-9)


# --------------------------------------------------------------------- ReLU (§3, §7)
def test_relu_whitened_K1(rng: np.random.Generator) -> None:
    worst, gaps = -np.inf, []
    for i in range(120):
        L = 2 + i % 3
        n, d = 10, 16
        y = rng.standard_normal(n)
        if i % 5 == 0:
            y = np.abs(y)  # one-signed target
        p = Problem(whitened(rng, n, d), y, L, rng.uniform(0.05, 1.5), activation="relu")
        P, Wopt = relu_whitened_optimum(p)
        assert_close(objective(p, Wopt), P, rtol=1e-11, atol=1e-14)
        for Ws in (Wopt, random_weights(rng, p, 4), perturb(rng, Wopt, 1e-2)):
            worst = max(worst, check_below(dual_bound(p, Ws), P, f"relu whitened L={L}"))
        lb = dual_bound(p, Wopt)
        if L == 2 or i % 5 == 0:
            assert_close(lb, P, rtol=1e-9, atol=1e-13)  # tight: L = 2, or one path only
        elif P - lb > 1e-9 * P:
            gaps.append((P - lb) / P)
    print(f"relu whitened K=1: worst bound - P* = {worst:.2e}")
    print(
        f"deep relu signed y: relative gap min {min(gaps):.3f} median {np.median(gaps):.3f} max {max(gaps):.3f}"
    )
    assert len(gaps) > 20 and 0.0 < np.median(gaps) < 1.0


def test_relu_one_hot_whitened(rng: np.random.Generator) -> None:
    worst = -np.inf
    for i in range(60):
        L, K, n, d = 2 + i % 3, 3, 9, 12
        labels = rng.integers(0, K, size=n)
        Y = np.eye(K)[labels] * rng.uniform(0.5, 2.0, size=(n, 1))
        p = Problem(whitened(rng, n, d), Y, L, rng.uniform(0.05, 1.0), activation="relu")
        P = float(np.sum(path_value(np.linalg.norm(Y, axis=0), p.beta, L)))
        lb = dual_bound(p, random_weights(rng, p, 5))
        worst = max(worst, check_below(lb, P, f"relu one-hot L={L}"))
        if L == 2:
            assert_close(lb, P, rtol=1e-10)  # the spectral relaxation is exact here
    print(f"relu one-hot: worst bound - P* = {worst:.2e}")


def test_relu_bias_1d_constant_is_exact(rng: np.random.Generator) -> None:
    """The breakpoint formula equals a brute-force max over a fine bias grid (and never less)."""
    for _ in range(20):
        n, K = 7, 1 + int(rng.integers(0, 2))
        x = np.sort(rng.uniform(-1, 1, n))
        Lam = rng.standard_normal((n, K))
        Lam -= Lam.mean(0)
        C = _relu_bias_1d_constant(Lam, x)
        bs = np.concatenate([np.linspace(-3, 3, 4001), x, -x])
        brute = max(
            float(np.max(np.linalg.norm(np.maximum(s * x[None, :] + bs[:, None], 0) @ Lam, axis=1)))
            for s in (1, -1)
        )
        assert brute <= C * (1 + 1e-12)
        assert_close(C, brute, rtol=1e-12)


# --------------------------------------------------------------------- rank-one data (§4)
def test_rank_one_data(rng: np.random.Generator) -> None:
    """X = c aᵀ: §4's closed forms (linear any L; ReLU L = 2) bound every certificate from above."""
    worst, relu_gaps = -np.inf, []
    for i in range(100):
        n, d = 9, 5
        a = rng.standard_normal(d)
        a /= np.linalg.norm(a)
        c, y = rng.standard_normal(n), rng.standard_normal(n)
        beta = rng.uniform(0.05, 2.0)
        if i % 2 == 0:
            L = 2 + i % 3
            r = float(np.dot(c, y)) / np.linalg.norm(c)
            P = (
                0.5 * float(y @ y)
                - 0.5 * r * r
                + float(path_value(abs(r), beta * np.linalg.norm(c) ** (-2.0 / L), L))
            )
            p = Problem(np.outer(c, a), y, L, beta)
        else:
            P = 0.5 * float(y @ y)
            for cs in (np.maximum(c, 0), np.maximum(-c, 0)):
                if np.linalg.norm(cs) > 0:
                    rs = float(np.dot(cs, y)) / np.linalg.norm(cs)
                    P -= 0.5 * max(abs(rs) - beta / np.linalg.norm(cs), 0.0) ** 2
            p = Problem(np.outer(c, a), y, 2, beta, activation="relu")
        lb = dual_bound(p, random_weights(rng, p, 4))
        worst = max(worst, check_below(lb, P, f"rank-one {p.activation} L={p.L}"))
        if p.activation == "linear":
            assert_close(lb, P, rtol=1e-9, atol=1e-13)  # one singular value: exact (§7)
        else:
            relu_gaps.append((P - lb) / P)
    print(
        f"rank-one: worst bound - P* = {worst:.2e}; relu L=2 weight-free gap median {np.median(relu_gaps):.3f}"
    )


# ------------------------------------------------------------------------- batch norm (§6)
def test_batchnorm_bound_equals_closed_form(rng: np.random.Generator) -> None:
    for i in range(40):
        n, d, K, L = 8, 10, 1 + i % 3, 2 + i % 2
        act = "linear" if i % 2 == 0 else "relu"
        if act == "relu":
            Y = np.eye(K)[rng.integers(0, K, size=n)] * rng.uniform(0.5, 2, size=(n, 1))
            P = float(np.sum(huber(np.linalg.norm(Y, axis=0), 0.7 / np.sqrt(n))))
        else:
            Y = rng.standard_normal((n, K))
            P = float(np.sum(huber(np.linalg.svd(Y, compute_uv=False), 0.7 / np.sqrt(n))))
        p = Problem(rng.standard_normal((n, d)), Y, L, 0.7, activation=act, batchnorm=True)
        m = 12
        net = Network(
            weights=tuple(random_weights(rng, p, m)),
            gamma=rng.standard_normal(m),
            alpha=rng.standard_normal(m),
        )
        assert_close(dual_bound(p, net), P, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------- families without a closed form
def _no_closed_form_cases(rng: np.random.Generator, count: int) -> list[Problem]:
    cases = []
    for i in range(count):
        kind = i % 6
        n = 8
        if kind == 0:  # deep ReLU, general X, K = 1
            cases.append(
                Problem(
                    rng.standard_normal((n, 4)), rng.standard_normal(n), 3, 0.3, activation="relu"
                )
            )
        elif kind == 1:  # ReLU K = 2 signed, L = 2
            cases.append(
                Problem(
                    rng.standard_normal((n, 4)),
                    rng.standard_normal((n, 2)),
                    2,
                    0.3,
                    activation="relu",
                )
            )
        elif kind == 2:  # 1-D spline, L = 2
            x = np.sort(rng.uniform(-1, 1, n))
            cases.append(
                Problem(x[:, None], rng.standard_normal(n), 2, 0.05, activation="relu", bias=True)
            )
        elif kind == 3:  # 1-D spline, L = 3
            x = np.sort(rng.uniform(-1, 1, n))
            cases.append(
                Problem(x[:, None], rng.standard_normal(n), 3, 0.05, activation="relu", bias=True)
            )
        elif kind == 4:  # deep linear K = 2, general X
            cases.append(Problem(rng.standard_normal((n, 4)), rng.standard_normal((n, 2)), 3, 0.5))
        else:  # deep ReLU K = 2 signed
            cases.append(
                Problem(
                    rng.standard_normal((n, 4)),
                    rng.standard_normal((n, 2)),
                    3,
                    0.3,
                    activation="relu",
                )
            )
    return cases


def _check_against_lbfgs(rng: np.random.Generator, count: int, starts: int) -> None:
    worst = -np.inf
    for j, p in enumerate(_no_closed_form_cases(rng, count)):
        runs = lbfgs_multistart(p, width=6, starts=starts, seed=j, init_scale=1.0, maxiter=1500)
        best, net = runs[0]
        for cand in (net, runs[-1][1]):
            lb = dual_bound(p, cand)
            assert lb >= 0.0
            worst = max(
                worst,
                check_below(
                    lb, best, f"case {j} ({p.activation}, L={p.L}, K={p.K}, bias={p.bias})"
                ),
            )
            assert certified_gap(p, cand) >= -ROUND * max(1.0, best)
    print(f"no-closed-form families: worst bound - best L-BFGS = {worst:.2e}")


@pytest.mark.reference
def test_no_closed_form_families_below_lbfgs(rng: np.random.Generator) -> None:
    _check_against_lbfgs(rng, 6, starts=2)


@pytest.mark.slow
@pytest.mark.reference
def test_no_closed_form_families_below_lbfgs_sweep(rng: np.random.Generator) -> None:
    _check_against_lbfgs(rng, 12, starts=2)


# ---------------------------------------------------------------- machinery and API
def test_inf_over_t_never_above_dense_minimum(rng: np.random.Generator) -> None:
    """The branch-and-bound value is below the dense-grid minimum and within 1e-12 of it."""
    for _ in range(50):
        q, beta = int(rng.integers(1, 4)), rng.uniform(0.05, 2)
        sig = np.sort(rng.uniform(0.1, 3, size=3))[::-1]
        c = 0.5 * beta * q

        def D(ts: np.ndarray, sig: np.ndarray = sig, beta: float = beta, q: int = q) -> np.ndarray:
            gam = (beta / np.asarray(ts) ** q)[:, None]
            return np.sum(huber(sig[None, :], gam), axis=1)[:, None]

        bound, _ = _inf_over_t(D, c, beta, q, 1e-4, 50.0)
        ts = np.geomspace(1e-4, 50.0, 200001)
        dense = float(np.min(D(ts)[:, 0] + c * ts * ts))
        assert bound <= dense + 1e-15
        assert_close(bound, dense, rtol=1e-7)  # dense grid: ~1e-8 off at a Huber kink


def test_certificate_valid_and_at_least_dual_bound(rng: np.random.Generator) -> None:
    for i in range(30):
        L, K = 2 + i % 3, 1 + i % 2
        act = "relu" if (i % 4 == 0 and K == 1) else "linear"
        p = Problem(
            whitened(rng, 8, 12),
            rng.standard_normal((8, K)),
            L,
            rng.uniform(0.1, 1.0),
            activation=act,
        )
        P = relu_whitened_optimum(p)[0] if act == "relu" else linear_iso_optimum(p)[0]
        Ws = random_weights(rng, p, 4)
        cert = certificate(p, Ws)
        assert cert >= dual_bound(p, Ws)
        check_below(cert, P, "certificate")
        assert_close(certified_gap(p, Ws), objective(p, Ws) - cert, rtol=1e-14, atol=1e-14)


def test_bad_weight_shapes_raise(rng: np.random.Generator) -> None:
    p = Problem(rng.standard_normal((6, 4)), rng.standard_normal(6), 3, 0.5)
    with pytest.raises(ValueError, match="weights"):
        dual_bound(p, [np.ones((4, 3)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="weights"):
        dual_bound(p, [np.ones((5, 3)), np.ones((3, 3)), np.ones((3, 1))])
    with pytest.raises(ValueError, match="weights"):
        certificate(p, [np.ones((4, 3)), np.ones((3, 3)), np.ones((3, 2))])
