"""The conic-hull dual bound (issue 17, helper h19c), measured OFFLINE beside today's lower ends.

    python -m bench.conic_hull --small            # raw K = 3, n = 7, d = 10, the MIP path forced
    python -m bench.conic_hull --raw-k3 0         # one deep_relu raw K = 3 problem (3-12 min)
    python -m bench.conic_hull --scalar 50x10,60x10,100x10 --limit 60   # column generation brackets
    python -m bench.conic_hull --scalar 50x10 --limit 60 --bias    # with hidden biases

**The idea.** Every lower bound of the two-layer ReLU solvers is a dual point ``Λ`` (n×K; K = 1:
``λ``) with a certified ``c̄ ≥ c(Λ)``, ``c(Λ) = sup_{h ∈ H} ‖Λᵀh‖``,
``H = {(Xu + b)_+ : ‖u‖ ≤ 1}`` (``b = 0`` without hidden biases; K = 1: ``|λᵀh|``); weak
duality gives ``P* ≥ D(Λ) = ⟨Λ,Y⟩ − ½‖Λ‖²`` whenever ``c(Λ) ≤ β`` (with hidden biases ``Λ`` is
centred, ``1ᵀΛ = 0``). Each solve keeps the best single scaled point ``max_{t ≤ β/c̄_i} D(tΛ_i)``.

**Sublinearity (the argument).** For each fixed ``h``, ``Λ ↦ ‖Λᵀh‖`` is a seminorm (a norm of a
linear map of ``Λ``): convex and positively homogeneous; a supremum of such is again sublinear,
``c(Σ μ_iΛ_i) ≤ Σ μ_i c(Λ_i)`` for ``μ ≥ 0``. This holds for K = 1 (``|λᵀh|``) and K ≥ 2, with
and without hidden biases (with them on the subspace ``1ᵀΛ = 0``, where the supremum is finite
and which conic combinations of centred points never leave). Hence for certified pairs
``(Λ_i, c̄_i)``, every ``Λ = Σ μ_iΛ_i`` with ``μ ≥ 0``, ``Σ μ_i c̄_i ≤ β`` is dual feasible and
``D(Λ)`` bounds P* from below (a theorem, given valid ``c̄_i``). With ``P_i = (β/c̄_i)Λ_i`` the
feasible set is ``conv{0, P_i}`` and ``D = ½‖Y‖² − ½‖Y − Λ‖²``: the best combination is the point
of that hull nearest ``Y`` (:func:`conic_hull_bound`: NNLS with ``Σν ≤ 1`` as a weighted row, the
exact KKT solve on its support, then rescaled to be feasible; each single scaled point is a
candidate, so the value is ``≥`` today's by construction — not a measurement). The deep dual
(:mod:`solvers.dual`, L ≥ 3) is ``inf_t`` of such two-layer duals, each a max of seminorms for
fixed ``t``; not measured here.

**How it is measured.** The solvers are run unchanged; :func:`recording` wraps the functions they
turn ``(Λ, c̄)`` into a scaled value with (:func:`solvers.vector_relu._scaled`,
``solvers.column_generation.scaled_dual``) and keeps every pair of the problem's own ``(Y, β)``
(the whitened sub-problem of :func:`solvers.vector_relu.whitened_lower_bound` has another β and
is left out). ``lower (single)`` is the solver's own lower end; ``lower (conic hull)`` the max of
it and the hull over the recorded pairs; widths are ``(upper − lower)/upper``.

**Measured** (h19c, 2 shared cores, load = 1-minute average at the line; ``SLSQP − hull``: the same
QP solved by SLSQP minus this module's value, an independent check of the QP's optimum):

| problem | upper | width single | width hull | SLSQP − hull | points | s | load |
|---|---|---|---|---|---|---|---|
| 7 × 10, K = 3, β 0.2, MIP path forced (P* = 1.94681964) | 1.94681968 | 2.1271e-3 | 2.1271e-3 | −4.4e-16 | 18 | 20 | 1.4 |
| deep_relu raw K = 3, seed 0, β 0.2 | 2.19329588 | 2.9775e-2 | 2.9775e-2 | −1.2e-14 | 20 | 199 | 2.2 |
| deep_relu raw K = 3, seed 1, β 0.2 | 2.55026595 | 3.0108e-2 | 3.0108e-2 | 0.0 | 18 | 306 | 1.1 |
| 50 × 10 gaussian, β 0.1, limit 60 s | 1.08090546 | 0.34363 | 0.34363 | −2.9e-15 | 116 | 70 | 2.0 |
| 60 × 10 gaussian, β 0.1, limit 60 s | 1.04612817 | 0.36593 | 0.36593 | −1.1e-14 | 131 | 86 | 2.1 |
| 100 × 10 gaussian, β 0.1, limit 60 s | 1.6823139 | 0.69591 | 0.69591 | −6.0e-15 | 139 | 109 | 1.3 |
| 50 × 10 gaussian, bias, β 0.1, limit 60 s | 0.998536517 | 0.48930 | 0.48930 | −2.6e-15 | 125 | 86 | 3.6 |
| 30 × 5 gaussian, bias, β 0.1, limit 60 s | 1.07734176 | 3.6474e-3 | 3.6474e-3 | −5.3e-15 | 129 | 64 | 2.6 |

The hull gains nothing on any of them: the widths agree to every printed digit. Why (looked at with
the points dumped, in the same runs' set-ups): in the vector solves the points are residuals
converging along one ray to the optimal dual point (the last ones are the SAME ``Λ`` with a
tightening ``c̄``): at 7 × 10 the QP's optimum (SLSQP too) is the last vertex alone. With the exact
``c`` of the recorded points (the enumeration oracle) the 7 × 10 bound would be 1.9456085 for both
the single best and the hull: the gap left is ``c̄``'s looseness (1.0024β vs 1.00076β) and the
point's distance from the optimum, not the lack of combinations. In the scalar brackets one point
has a tight ``c̄`` (the Shor bound at the bracket network, ``c̄/‖λ‖`` = 0.88 at 60 × 10, 1.03 at 100
× 10) and the next tightest have the relaxed bound (``c̄/‖λ‖`` 3.9–4.3): scaled by ``β/c̄`` they sit
near 0 and no combination beats the Shor point.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator

import numpy as np
from scipy.optimize import nnls

from solvers import Problem
from solvers.problem import Status

SUM_WEIGHT = 1e4  # the Σν = 1 row's weight in NNLS, × the data's scale (then the exact KKT)


def _dual_value(Lam: np.ndarray, y: np.ndarray) -> float:
    return float(Lam @ y) - 0.5 * float(Lam @ Lam)


def _kkt(M: np.ndarray, e: np.ndarray, y: np.ndarray, active: bool) -> np.ndarray | None:
    """``argmin ‖y − Mν‖`` (``eᵀν = 1`` when ``active``) on the given columns, or None."""
    G = M.T @ M
    g = M.T @ y
    if active:
        k = G.shape[0]
        A = np.zeros((k + 1, k + 1))
        A[:k, :k], A[:k, k], A[k, :k] = G, e, e
        rhs = np.concatenate([g, [1.0]])
        sol = np.linalg.lstsq(A, rhs, rcond=None)[0]
        return sol[:k]
    return np.linalg.lstsq(M, y, rcond=None)[0]


def conic_hull_bound(
    points: list[np.ndarray], cbars: list[float], Y: np.ndarray, beta: float
) -> tuple[float, np.ndarray]:
    """``(D(Λ), Λ)``: the best dual value over the conic combinations ``Λ = Σ μ_iΛ_i`` with
    ``μ ≥ 0`` and ``Σ μ_i c̄_i ≤ β`` (module docstring: dual feasible when each ``c̄_i ≥ c(Λ_i)``).

    Args:
        points: dual points, each shaped like ``Y`` (centred when the model has hidden biases).
        cbars: certified upper bounds ``c̄_i ≥ c(Λ_i)`` (``≥ 0``; a non-finite one drops its
            point).
        Y: the targets (n×K or n).
        beta: the regularisation strength (> 0).

    Returns:
        The value (``≥`` every single scaled point's ``max_t D(tΛ_i)``, ``0`` with no point: the
        zero point) and the ``Λ`` attaining it (shaped like ``Y``).
    """
    Y = np.asarray(Y, dtype=np.float64)
    y = Y.reshape(-1)
    best_val, best = 0.0, np.zeros_like(y)
    cols, sums = [], []
    for Lam, cb in zip(points, cbars, strict=True):
        lam = np.asarray(Lam, dtype=np.float64).reshape(-1)
        cb = float(cb)
        if not np.isfinite(cb) or cb < 0 or not np.all(np.isfinite(lam)) or lam.shape != y.shape:
            continue
        ll = float(lam @ lam)
        if ll == 0.0:
            continue
        amax = np.inf if cb == 0 else beta / cb
        t = float(np.clip(float(lam @ y) / ll, 0.0, amax))  # the single scaled point
        v = _dual_value(t * lam, y)
        if v > best_val:
            best_val, best = v, t * lam
        cols.append(lam if cb == 0 else (beta / cb) * lam)
        sums.append(0.0 if cb == 0 else 1.0)
    if len(cols) >= 2:
        M = np.column_stack(cols)
        e = np.array(sums)
        scale = max(float(np.linalg.norm(y)), float(np.max(np.linalg.norm(M, axis=0))), 1e-300)
        w = SUM_WEIGHT * scale
        # the zero point's slack column (0, w): Σν + ν_0 = 1, ν_0 ≥ 0
        A = np.vstack([np.column_stack([M, np.zeros(y.size)]), np.append(w * e, w)])
        nu0, _ = nnls(A, np.append(y, w), maxiter=50 * A.shape[1])
        nu0 = nu0[:-1]
        cands = [nu0]
        supp = np.flatnonzero(nu0 > 0)
        if supp.size:
            for active in (False, True):
                if active and not np.any(e[supp] > 0):
                    continue
                sub = _kkt(M[:, supp], e[supp], y, active)
                if sub is not None and np.all(np.isfinite(sub)):
                    nu = np.zeros(len(cols))
                    nu[supp] = sub
                    cands.append(nu)
        for nu in cands:
            nu = np.maximum(nu, 0.0)
            s = float(e @ nu)
            if s > 1.0:
                nu = nu / s  # feasible: Σν ≤ 1 (the rays scale too: still feasible)
                if float(e @ nu) > 1.0:
                    nu = nu * (1.0 - 4 * np.finfo(float).eps)
            Lam = M @ nu
            v = _dual_value(Lam, y)
            if v > best_val:
                best_val, best = v, Lam
    return best_val, best.reshape(Y.shape)


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[np.ndarray, np.ndarray, float, float]]]:
    """Every ``(Λ, Y, β, c̄)`` the two solvers scale into a lower bound while inside."""
    import solvers.column_generation as cg
    import solvers.vector_relu as vr

    seen: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    saved = vr._scaled, cg.scaled_dual

    def wrap(fn):  # noqa: ANN001, ANN202
        def inner(Lam, Y, beta, cbar):  # noqa: ANN001, ANN202
            seen.append((np.array(Lam, float), np.asarray(Y), float(beta), float(cbar)))
            return fn(Lam, Y, beta, cbar)

        return inner

    vr._scaled, cg.scaled_dual = wrap(saved[0]), wrap(saved[1])
    try:
        yield seen
    finally:
        vr._scaled, cg.scaled_dual = saved


def _slsqp(points: list, cbars: list, Y: np.ndarray, beta: float) -> float:
    """The same QP by SLSQP (an independent check of :func:`conic_hull_bound`'s optimum)."""
    from scipy.optimize import minimize

    y = np.asarray(Y, float).reshape(-1)
    pairs = zip(points, cbars, strict=True)
    P = np.column_stack([np.reshape(L, -1) * (beta / c) for L, c in pairs if c > 0])
    k = P.shape[1]
    res = minimize(
        lambda nu: -(float((P @ nu) @ y) - 0.5 * float((P @ nu) @ (P @ nu))),
        np.full(k, 0.5 / k),
        jac=lambda nu: -(P.T @ y - P.T @ (P @ nu)),
        method="SLSQP",
        bounds=[(0.0, None)] * k,
        constraints=[{"type": "ineq", "fun": lambda nu: 1.0 - nu.sum()}],
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    nu = np.maximum(res.x, 0.0)
    nu = nu / max(1.0, float(nu.sum()))
    return float((P @ nu) @ y) - 0.5 * float((P @ nu) @ (P @ nu))


def hull_of(seen: list, Y: np.ndarray, beta: float) -> tuple[float, float, int]:
    """The conic-hull bound over the recorded pairs of the problem ``(Y, β)`` (the latest 200),
    SLSQP's value of the same QP, and the count."""
    Y = np.asarray(Y, float)
    mine = [
        (L, c)
        for L, Yr, b, c in seen
        if b == beta and Yr.size == Y.size and np.array_equal(Yr.reshape(Y.shape), Y)
    ][-200:]
    pts, cbs = [L for L, _ in mine], [c for _, c in mine]
    val, _ = conic_hull_bound(pts, cbs, Y, beta)
    return val, _slsqp(pts, cbs, Y, beta), len(mine)


def _row(label: str, opt, seen: list, p: Problem, seconds: float, ref: float | None = None) -> None:
    up, single = opt.objective, opt.lower_bound
    hull, check, k = hull_of(seen, p.Y[:, 0] if opt.family == "relu_two_layer" else p.Y, p.beta)
    low = max(single, hull)
    refs = "" if ref is None else f"{ref:.9g}"
    print(
        f"| {label} | {opt.status.name} | {refs} | {up:.9g} | {single:.9g} | {low:.9g} | "
        f"{(up - single) / up:.4e} | {(up - low) / up:.4e} | {check - hull:.1e} | {k} | "
        f"{seconds:.0f} | {os.getloadavg()[0]:.1f} |",
        flush=True,
    )


def _header() -> None:
    print(
        "| problem | status | P* (enumeration) | upper | lower (single) | lower (conic hull) "
        "| width single | width hull | SLSQP − hull | points | s | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")


def small() -> None:
    import solvers.vector_relu as vr

    rng = np.random.default_rng(8)
    X = rng.standard_normal((7, 10)) / np.sqrt(10)
    p = Problem(X, rng.standard_normal((7, 3)), 2, 0.2, "relu")
    ref = vr.solve_vector_relu(p, oracle=vr.enumeration_oracle(p.X), exact=True)
    assert ref.status is Status.CERTIFIED
    saved = vr.scalar_oracle_for
    vr.scalar_oracle_for = lambda X, K=1, **_: (vr.mip_oracle(X), True)
    try:
        with recording() as seen:
            t = time.perf_counter()
            opt = vr.solve_vector_relu(p)
            dt = time.perf_counter() - t
        _row("7 × 10, K = 3, β 0.2, seed 8 (MIP path)", opt, seen, p, dt, ref.objective)
    finally:
        vr.scalar_oracle_for = saved


def raw_k3(index: int) -> None:
    from bench.deep_relu_raw_k3 import problems
    from solvers import polytope_norm
    from solvers.vector_relu import solve_vector_relu

    label, p, _ = problems()[index]
    polytope_norm._CUTS.clear()
    with recording() as seen:
        t = time.perf_counter()
        opt = solve_vector_relu(p)
        dt = time.perf_counter() - t
    _row(f"deep_relu raw K = 3, {label}", opt, seen, p, dt)


def scalar(shapes: list[tuple[int, int]], limit: float, bias: bool = False) -> None:
    from bench.two_layer import _frontier_problem
    from solvers.two_layer import solve_two_layer

    for n, d in shapes:
        p = _frontier_problem("gaussian", n, d, bias, 0.1)
        with recording() as seen:
            t = time.perf_counter()
            opt = solve_two_layer(p, time_limit=limit)
            dt = time.perf_counter() - t
        tag = ", bias" if bias else ""
        _row(f"{n} × {d} gaussian{tag}, β 0.1 (limit {limit:g} s)", opt, seen, p, dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--raw-k3", type=int, default=None)
    ap.add_argument("--scalar", default="")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--bias", action="store_true", help="--scalar: hidden biases")
    args = ap.parse_args()
    _header()
    if args.small:
        small()
    if args.raw_k3 is not None:
        raw_k3(args.raw_k3)
    if args.scalar:
        scalar(
            [tuple(int(v) for v in s.split("x")) for s in args.scalar.split(",")],
            args.limit,
            args.bias,
        )


if __name__ == "__main__":
    main()
