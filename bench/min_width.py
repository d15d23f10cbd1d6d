"""The smallest optimal width (``solvers.min_width``, issue 17 "m*"): what is proven, and its cost.

    python -m bench.min_width              # the 12 certified depth-2 problems of +grid=deep_relu
    python -m bench.min_width --random 12  # + random scalar (n 8-12, d 2-3) and whitened K = 3

One line per problem: the solver's m*, the proven width (or the proven lower bound, or why not),
the clusters, ε = sqrt(2 gap) and η, the width of a narrower network at the optimum's objective,
and the seconds ``min_width`` took (the solve not included; one call per problem: the trials of
one problem share it). The claims are theorems per instance (module docstring); which instances
the margins hold on, and the seconds, are measurements. Run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from solvers import Problem, solve
from solvers.min_width import min_width


def _grid_problems() -> list[tuple[str, Problem]]:
    """The depth-2 problems of ``+grid=deep_relu`` (one per data/β/seed; width is irrelevant)."""
    from sweep.config import load
    from sweep.grid import expand
    from sweep.trial import make_problem
    from tests.sweep.conftest import compose

    out: dict[str, Problem] = {}
    for s in expand(load(compose(["+grid=deep_relu", "model.depth=2", "model.width=50"]))):
        if s.data.outputs == 3 and s.data.whiten == "none":
            continue  # raw K = 3: a bracket (291-609 s a solve), nothing to prove from
        name = f"K={s.data.outputs} {s.data.whiten} beta={s.train.beta:g} seed={s.seed}"
        out[name] = dataclasses.replace(make_problem(s), width=None)
    return list(out.items())


def _random_problems(count: int) -> list[tuple[str, Problem]]:
    out = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        n, d = 8 + seed % 5, 2 + seed % 2
        X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        out.append((f"scalar {n}x{d} seed={seed}", Problem(X, y, 2, 0.1, "relu")))
    for seed in range(min(count, 8)):
        rng = np.random.default_rng(seed)
        X = np.linalg.qr(rng.standard_normal((12, 8)))[0].T
        Y = rng.standard_normal((8, 3))
        out.append((f"whitened 8x12 K=3 seed={seed}", Problem(X, Y, 2, 0.3, "relu")))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=0, help="random instances as well")
    args = ap.parse_args(argv)
    problems = _grid_problems() + _random_problems(args.random)
    print(f"load {os.getloadavg()[0]:.2f}")
    print("| problem | family | m* | proven width | lower | clusters | ε | η | narrower | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, p in problems:
        opt = solve(p)
        t = time.perf_counter()
        r = min_width(p, opt)
        dt = time.perf_counter() - t
        if r is None:
            print(f"| {name} | {opt.family} | {opt.m_star} | not covered | | | | | | {dt:.2f} |")
            continue
        narrow = "" if r.network is None else r.network.weights[0].shape[1]
        width = r.width if r.width is not None else f"— ({r.reason[:60]})"
        print(
            f"| {name} | {opt.family} | {opt.m_star} | {width} | {r.lower} | {r.clusters} | "
            f"{r.eps:.1e} | {r.eta:.3g} | {narrow} | {dt:.2f} |"
        )
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
