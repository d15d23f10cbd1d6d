"""Bracket widths before/after issue 17 for K > 1 two-layer ReLU nets and deep (L ≥ 3) ReLU nets.

    python -m bench.vector_relu            # the tables of BENCHMARKS.md
    python -m bench.vector_relu --quick    # one instance of each

Width = (best network − lower bound)/best network, where "best network" is the smallest §0
objective known: the solver's network (K > 1) or 4-start float64 L-BFGS (tests/lbfgs.py, deep).
- K > 1, before: ``dual_bound`` of the best network as on main (residual direction with the
  relaxed constant ``‖X‖₂·min(‖Λ‖₂, sign split)`` and the weight-free relaxations); after:
  ``solve_vector_relu``'s certified lower bound (exact c_K by the sphere branch and bound over
  §10's enumeration).
- L ≥ 3, before: the sign-split bound ``inf_t h_γ(‖y_+‖) + h_γ(‖y_−‖) + (β/2)(L−2)t²``; after:
  ``dual_bound`` with the data-aware dual (``solvers.dual._DeepReluDual``).
Times are wall seconds of the "after" computation, in one process, one BLAS thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from solvers import Problem, objective
from solvers.dual import _deep_bound, _relu_constant, _relu_dual_of_mu, _weight_free_bound
from solvers.nuclear import opnorm
from solvers.problem import forward
from solvers.rescaled import _one_blas_thread
from solvers.scalar import scaled_dual_value
from solvers.vector_relu import solve_vector_relu

VECTOR = [(12, 2, 2, 0.1), (16, 2, 3, 0.1), (16, 3, 2, 0.1), (12, 2, 3, 1.0), (16, 2, 2, 0.01)]
DEEP = [(12, 2, 3, 0.1), (20, 5, 3, 0.1), (20, 50, 3, 0.1), (15, 3, 4, 0.05), (20, 3, 5, 0.05)]


def _old_vector_bound(p: Problem, net: object) -> float:
    """``dual_bound`` for K > 1 as it was before issue 17 (relaxed constant only)."""
    Lam = p.Y - forward(p, net)
    C = _relu_constant(Lam, opnorm(p.X))
    amax = np.inf if C <= 0 else p.beta / C
    direction = float(scaled_dual_value(float(np.sum(Lam * p.Y)), float(np.sum(Lam * Lam)), amax))
    return max(direction, _weight_free_bound(p), 0.0)


def vector_rows(shapes: list) -> None:
    print("| n | d | K | β | status | P* bracket | width before | width after | m* | rounds | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, (n, d, K, beta) in enumerate(shapes):
        rng = np.random.default_rng(100 + i)
        p = Problem(rng.standard_normal((n, d)), rng.standard_normal((n, K)), 2, beta, "relu")
        t = time.perf_counter()
        opt = solve_vector_relu(p)
        dt = time.perf_counter() - t
        best = objective(p, opt.network)
        before = _old_vector_bound(p, opt.network)
        print(
            f"| {n} | {d} | {K} | {beta:g} | {opt.status.value} | [{opt.lower_bound:.7g}, "
            f"{opt.objective:.7g}] | {(best - before) / best:.3f} | {opt.rel_gap:.1e} | "
            f"{opt.m_star} | {opt.info['rounds']} | {dt:.1f} |"
        )


def deep_rows(shapes: list) -> None:
    from solvers.dual import dual_bound
    from tests.lbfgs import lbfgs_multistart

    print("| n | d | L | β | best network | width before | width after | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, (n, d, L, beta) in enumerate(shapes):
        rng = np.random.default_rng(200 + i)
        p = Problem(rng.standard_normal((n, d)), rng.standard_normal(n), L, beta, "relu")
        runs = lbfgs_multistart(p, width=16, starts=4, seed=i, init_scale=1.0, maxiter=3000)
        best, net = runs[0]
        D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
        before = _deep_bound(p, D_of_mu, Xn, Y2)[0]
        t = time.perf_counter()
        after = dual_bound(p, net)
        dt = time.perf_counter() - t
        print(
            f"| {n} | {d} | {L} | {beta:g} | {best:.6g} | {(best - before) / best:.3f} | "
            f"{(best - after) / best:.3f} | {dt:.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with _one_blas_thread():
        vector_rows(VECTOR[:1] if args.quick else VECTOR)
        print()
        deep_rows(DEEP[:1] if args.quick else DEEP)


if __name__ == "__main__":
    main()
