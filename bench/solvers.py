"""Closed forms vs cvxpy, side by side in one run (THEORY §1 and §2, L = 2).

1. L = 2 linear, whitened X (n × n orthogonal, so d = n), K outputs: ``solve_linear_whitened``
   (SVD of XᵀY + soft-thresholding) vs ``min ½‖XW − Y‖² + β‖W‖_*`` in cvxpy.
2. L = 2 linear, Gaussian X: ``solve_linear_l2_general`` (FISTA to a certified relative
   duality gap of 1e-10) vs the same cvxpy program.

cvxpy runs with its default solver (``solver=None``; SCS for this program); ``--solvers
default CLARABEL`` adds the interior-point solver (accurate, but minutes already at n = 200). A size is skipped when the previous size's time, scaled by
``(n/n_prev)^2`` (SCS measured ~n^1.4–2 here), predicts more than ``--budget`` seconds; the table says so.

    OMP_NUM_THREADS=1 python -m bench.solvers          # the table in BENCHMARKS.md
    python -m bench.solvers --sizes 200 500 --general 100x50

(Run as a module: ``python bench/solvers.py`` would shadow the ``solvers`` package.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from solvers import Problem, data
from solvers.linear import solve_linear_l2_general, solve_linear_whitened
from solvers.reference import nuclear_primal


def _best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _cvxpy(
    X: np.ndarray, Y: np.ndarray, beta: float, solver: str | None
) -> tuple[float, float, str]:
    stats: dict = {}
    t0 = time.perf_counter()
    value, _ = nuclear_primal(X, Y, beta, solver=solver, stats=stats)
    return time.perf_counter() - t0, value, f"{stats['solver']}"


def _rows(
    cases: list[tuple[str, Problem]],
    ours: Callable[[Problem], object],
    solvers: list[str | None],
    budget: float,
    repeats: int,
) -> list[str]:
    lines = [
        "| case | closed form (s) | cvxpy solver | cvxpy (s) | ratio | rel. diff |",
        "|---|---|---|---|---|---|",
    ]
    last: dict[str | None, tuple[int, float]] = {}
    for label, p in cases:
        t_ours, opt = _best_time(lambda p=p: ours(p), repeats)
        extra = ""
        if getattr(opt, "info", {}).get("rel_gap") is not None:
            extra = f" (gap {opt.info['rel_gap']:.1e}, {opt.info['iterations']} it)"
        for solver in solvers:
            name = solver or "default"
            size = max(p.n, p.d)
            if solver in last:
                n0, t0 = last[solver]
                predicted = t0 * (size / n0) ** 2
                if predicted > budget:
                    lines.append(
                        f"| {label} | {t_ours:.4f}{extra} | {name} | skipped: predicted {predicted:.0f} s "
                        f"> budget {budget:.0f} s | | |"
                    )
                    continue
            t_cvx, value, used = _cvxpy(p.X, p.Y, p.beta, solver)
            last[solver] = (size, t_cvx)
            rel = abs(opt.objective - value) / abs(value)
            lines.append(
                f"| {label} | {t_ours:.4f}{extra} | {used} ({name}) | {t_cvx:.2f} | "
                f"{t_cvx / t_ours:,.0f}× | {rel:.1e} |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000, 2000])
    ap.add_argument("--general", nargs="*", default=["100x50", "300x100", "1000x200"], help="n x d")
    ap.add_argument("--outputs", type=int, default=5)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds allowed per cvxpy solve")
    ap.add_argument(
        "--solvers", nargs="+", default=["default"], help="default and/or names, e.g. CLARABEL"
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    solvers = [None if s == "default" else s for s in args.solvers]
    K = args.outputs

    whitened = []
    for n in args.sizes:
        X, Y = data.make_dataset("whitened", "gaussian", n=n, d=n, outputs=K, seed=n)
        sigma = np.linalg.svd(X.T @ Y, compute_uv=False)
        beta = float(np.median(sigma))  # about half the singular values survive
        whitened.append((f"whitened n=d={n}, K={K}", Problem(X, Y, 2, beta)))
    general = []
    for spec in args.general:
        n, d = (int(v) for v in spec.split("x"))
        X, Y = data.make_dataset("gaussian", "gaussian", n=n, d=d, outputs=K, seed=n + d)
        sigma = np.linalg.svd(X.T @ Y, compute_uv=False)
        general.append((f"gaussian n={n}, d={d}, K={K}", Problem(X, Y, 2, float(np.median(sigma)))))

    print("## L = 2 linear, whitened data: closed form (THEORY §1) vs cvxpy", flush=True)
    table1 = _rows(whitened, solve_linear_whitened, solvers, args.budget, args.repeats)
    print("\n## L = 2 linear, Gaussian data: FISTA (THEORY §2) vs cvxpy", flush=True)
    table2 = _rows(general, solve_linear_l2_general, solvers, args.budget, args.repeats)
    print("\n" + "\n".join(table1) + "\n\n" + "\n".join(table2))


if __name__ == "__main__":
    main()
