"""Closed forms vs their floor and vs cvxpy, side by side in one run (THEORY §1 and §2).

0. The floor (issue 13): ``solve`` on whitened data (n = d = 500, K = 5, L = 3) against a bare
   ``np.linalg.svd(X.T @ Y)`` — the one SVD the closed form cannot avoid. Interleaved
   repetitions, a fresh ``Problem`` for every ``solve`` (detection is cached per problem, so
   re-solving one problem would hide it); the table gives the median of each and their ratio.

1. L = 2 linear, whitened X (n × n orthogonal, so d = n), K outputs: ``solve_linear_whitened``
   (SVD of XᵀY + soft-thresholding) vs ``min ½‖XW − Y‖² + β‖W‖_*`` in cvxpy.
2. L = 2 linear, Gaussian X: ``solve_linear_l2_general`` (FISTA to a certified relative
   duality gap of 1e-10) vs the same cvxpy program.

cvxpy runs with its default solver (``solver=None``; SCS for this program); ``--solvers
default CLARABEL`` adds the interior-point solver (accurate, but minutes already at n = 200). A size is skipped when the previous size's time, scaled by
``(n/n_prev)^2`` (SCS measured ~n^1.4–2 here), predicts more than ``--budget`` seconds; the table says so.

    OMP_NUM_THREADS=1 python -m bench.solvers          # the tables in BENCHMARKS.md
    OMP_NUM_THREADS=1 python -m bench.solvers --floor-only   # table 0 only (seconds)
    python -m bench.solvers --sizes 200 500 --general 100x50

(Run as a module: ``python bench/solvers.py`` would shadow the ``solvers`` package.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from solvers import Problem, data, solve
from solvers.detect import facts
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
        if opt.family == "linear_l2_general":
            extra = f" ({opt.status.value}, gap {opt.rel_gap:.1e}, {opt.info['iterations']} it)"
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


def floor_table(n: int, K: int, L: int, repeats: int) -> list[str]:
    """``solve`` vs a bare ``np.linalg.svd(X.T @ Y)``, interleaved; medians in ms and the ratio,
    by wall clock and by this process's CPU time (the latter is robust to a loaded machine)."""
    X, Y = data.make_dataset("whitened", "gaussian", n=n, d=n, outputs=K, seed=n)
    beta = float(np.median(np.linalg.svd(X.T @ Y, compute_uv=False)))
    wall: dict[str, list[float]] = {"svd": [], "solve": []}
    cpu: dict[str, list[float]] = {"svd": [], "solve": []}
    exact_checks = 0
    opt = None
    for _ in range(repeats):
        p = Problem(X, Y, L, beta)  # fresh: nothing cached
        for name, fn in (("svd", lambda: np.linalg.svd(X.T @ Y)), ("solve", lambda p=p: solve(p))):
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if name == "solve":
                opt = out
        exact_checks += facts(p).exact_checks

    def med(xs: list[float]) -> float:
        return 1e3 * float(np.median(xs))

    a, b = med(wall["svd"]), med(wall["solve"])
    ca, cb = med(cpu["svd"]), med(cpu["solve"])
    return [
        "| case | bare svd(XᵀY) (ms) | solve (ms) | ratio | CPU: svd / solve (ms) | CPU ratio "
        "| family | exact O(n²d) checks |",
        "|---|---|---|---|---|---|---|---|",
        f"| whitened n=d={n}, K={K}, L={L} | {a:.3f} | {b:.3f} | {b / a:.2f}× | {ca:.3f} / "
        f"{cb:.3f} | {cb / ca:.2f}× | {opt.family} | {exact_checks}/{repeats} |",
    ]


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
    ap.add_argument("--floor-only", action="store_true", help="only table 0 (solve vs bare SVD)")
    ap.add_argument("--floor-repeats", type=int, default=200)
    args = ap.parse_args()
    print("## Closed form vs its floor (one SVD of XᵀY)", flush=True)
    table0 = floor_table(500, 5, 3, args.floor_repeats)
    print("\n".join(table0), flush=True)
    if args.floor_only:
        return
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
    print("\n" + "\n".join(table0 + [""] + table1 + [""] + table2))


if __name__ == "__main__":
    main()
