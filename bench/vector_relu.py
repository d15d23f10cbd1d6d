"""Bracket widths before/after issue 17 for K > 1 two-layer ReLU nets and deep (L ≥ 3) ReLU nets.

    python -m bench.vector_relu            # the tables of BENCHMARKS.md
    python -m bench.vector_relu --quick    # one instance of each

Width = (best network − lower bound)/best network, where "best network" is the smallest §0
objective known: the solver's network (K > 1) or 4-start float64 L-BFGS (tests/lbfgs.py, deep).
- K > 1, before: ``dual_bound`` of the best network as on main (residual direction with the
  relaxed constant ``‖X‖₂·min(‖Λ‖₂, sign split)`` and the weight-free relaxations); after:
  ``solve_vector_relu``'s certified lower bound (exact c_K by the sphere branch and bound over
  §10's enumeration).
- L ≥ 3: the sign-split bound ``inf_t h_γ(‖y_+‖) + h_γ(‖y_−‖) + (β/2)(L−2)t²``; the data-aware
  constant at the best network's residual alone (and y), no optimisation ("residual"); the
  optimised dual point (``solvers.dual.deep_relu_dual``, "optimised") and the most this
  relaxation can give, an upper estimate from the outer cutting-plane QP ("limit": the width
  left at it is the relaxation's looseness plus the network's distance from P*).
- ``--trials [--outputs 3]``: the same widths on the raw depth-3/4 points of ``+grid=deep_relu``
  (K = 3: the spectral / sign-split bound against ``dual_bound``, column by column)
  (the Problem and the SGD network as sweep/trial.py makes them; upper end = the better of SGD
  and its polish, as the trial's bracket).
Times are wall seconds of the "after" computation, in one process, one BLAS thread.
"""

from __future__ import annotations

import argparse
import itertools
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


DEEP_HEADER = (
    "| best network | sign split | residual | optimised | limit | steps | converged | s |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _deep_cells(p: Problem, net: object, best: float) -> str:
    """Widths (best − bound)/best of the four deep bounds (module doc) and the optimiser's run."""
    from solvers.dual import _DeepReluDual, deep_relu_dual

    r = p.Y[:, 0] - forward(p, net)[:, 0]
    D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
    sign_split = _deep_bound(p, D_of_mu, Xn, Y2)[0]
    plain = _DeepReluDual(p.X, p.Y[:, 0])
    plain.add(p.Y[:, 0])
    plain.add(r)
    residual = _deep_bound(p, lambda m: np.hstack([D_of_mu(m), plain.values(m)]), Xn, Y2)[0]
    t = time.perf_counter()
    dd = deep_relu_dual(p, r)
    dt = time.perf_counter() - t
    w = [(best - b) / best for b in (sign_split, residual, dd.lower, dd.limit)]
    return (
        f"{best:.6g} | {w[0]:.3f} | {w[1]:.3f} | {w[2]:.3f} | {w[3]:.3f} | {dd.steps} | "
        f"{'yes' if dd.converged else 'no'} | {dt:.1f} |"
    )


def deep_rows(shapes: list) -> None:
    from tests.lbfgs import lbfgs_multistart

    head, rule = DEEP_HEADER.split("\n")
    print("| n | d | L | β " + head)
    print("| --- | --- | --- | --- " + rule)
    for i, (n, d, L, beta) in enumerate(shapes):
        rng = np.random.default_rng(200 + i)
        p = Problem(rng.standard_normal((n, d)), rng.standard_normal(n), L, beta, "relu")
        runs = lbfgs_multistart(p, width=16, starts=4, seed=i, init_scale=1.0, maxiter=3000)
        best, net = runs[0]
        print(f"| {n} | {d} | {L} | {beta:g} | " + _deep_cells(p, net, best))


def _columns_cells(p: Problem, net: object, best: float) -> str:
    """K > 1: widths of the spectral / sign-split bound and of ``dual_bound`` (column by column)."""
    from solvers.dual import dual_bound

    D_of_mu, Xn, Y2 = _relu_dual_of_mu(p)
    before = _deep_bound(p, D_of_mu, Xn, Y2)[0]
    t = time.perf_counter()
    after = dual_bound(p, net)
    dt = time.perf_counter() - t
    return f"{best:.6g} | {(best - before) / best:.3f} | {(best - after) / best:.3f} | {dt:.1f} |"


def trial_rows(quick: bool, outputs: int = 1) -> None:
    """The raw depth-3/4 points of ``conf/grid/deep_relu.yaml`` with ``outputs`` (trained as a
    trial); K = 1: :func:`_deep_cells`, K > 1: :func:`_columns_cells`."""
    from solvers.sgd import train
    from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec
    from sweep.trial import _per_network, _train_config, make_problem

    head, rule = DEEP_HEADER.split("\n")
    if outputs > 1:
        head = "| best network | spectral / sign split | column by column | s |"
        rule = "| --- | --- | --- | --- |"
    print("| depth | width | β | seed " + head)
    print("| --- | --- | --- | --- " + rule)
    cells = _deep_cells if outputs == 1 else _columns_cells
    points = [(3, 10, 0.2, 0)] if quick else itertools.product((3, 4), (10, 50), (0.2, 1.0), (0, 1))
    for depth, width, beta, seed in points:
        spec = TrialSpec(
            data=DataSpec(
                kind="gaussian", targets="gaussian", n=20, d=50, outputs=outputs, whiten="none"
            ),
            model=ModelSpec(depth=depth, width=width, activation="relu"),
            train=TrainSpec(
                beta=beta, steps=10000, lr=0.005, batch_size=5, lr_decay=0.3, lr_decay_every=3000
            ),
            seed=seed,
        )
        p = make_problem(spec)
        out = train([p], _train_config(spec), **_per_network([spec]))
        sgd = out.sgd_networks[0] if out.sgd_networks is not None else out.networks[0]
        best = min(objective(p, sgd), objective(p, out.networks[0]))
        print(f"| {depth} | {width} | {beta:g} | {seed} | " + cells(p, sgd, best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--deep", action="store_true", help="the deep table only")
    ap.add_argument("--trials", action="store_true", help="the deep_relu grid's raw points")
    ap.add_argument("--outputs", type=int, default=1, help="K of --trials (1 or 3)")
    args = ap.parse_args()
    with _one_blas_thread():
        if args.trials:
            trial_rows(args.quick, args.outputs)
            return
        if not args.deep:
            vector_rows(VECTOR[:1] if args.quick else VECTOR)
            print()
        deep_rows(DEEP[:1] if args.quick else DEEP)


if __name__ == "__main__":
    main()
