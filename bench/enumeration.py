"""The enumeration route of THEORY §10 (issue 17): how far exact ``c(λ)`` over all patterns gets.

    python -m bench.enumeration                       # frontier d = 5 and d = 10, 60 s each
    python -m bench.enumeration --dims 10 --start 11 --limit 60
    python -m bench.enumeration --memory 13x10        # one shape: time and peak memory

Frontier: Gaussian ``X`` and ``y`` (seed 0, no bias, β = 0.1); for each d, n grows from
``--start`` until :func:`solvers.two_layer.solve_two_layer` with the cap lifted (``cap=10**12``:
the enumeration decides, no MIP oracle) is not CERTIFIED within ``--limit`` seconds. Each solve
runs in its own process (killed at the limit; its peak RSS is read from the kernel), so one
slow shape neither blocks the scan nor inflates the next one's memory. Memory: the first exact
``c(λ)`` (:func:`solvers.two_layer.dual_norm`, which builds the cached geometry) and a second
one on the same X, with the process's peak RSS. The script uses the public API only, so the
same file runs against an older checkout for a before/after in one window (``PYTHONPATH``).
Times are wall clock on a shared machine: report ``uptime`` beside them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time

import numpy as np

CAP = 10**12  # "no cap": the enumeration decides


def _problem(n: int, d: int, beta: float = 0.1):  # noqa: ANN202 - solvers.Problem
    from solvers import Problem

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    return Problem(X, y, 2, beta, "relu")


def _solve(n: int, d: int, out: mp.Queue) -> None:
    from solvers.two_layer import solve_two_layer

    t = time.perf_counter()
    opt = solve_two_layer(_problem(n, d), cap=CAP)
    out.put(
        {
            "status": opt.status.value,
            "seconds": time.perf_counter() - t,
            "patterns": opt.info.get("patterns"),
            "rounds": opt.info.get("rounds"),
            "rel_gap": opt.rel_gap,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _run(n: int, d: int, limit: float) -> dict:
    q: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_solve, args=(n, d, q))
    t = time.perf_counter()
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"status": "timeout", "seconds": time.perf_counter() - t}
    return q.get() if not q.empty() else {"status": f"exit {proc.exitcode}", "seconds": 0.0}


def frontier(dims: list[int], start: dict[int, int], limit: float) -> None:
    print(f"load {os.getloadavg()[0]:.2f}; limit {limit:.0f} s; cap lifted")
    print("| d | n | patterns | status | rounds | s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for d in dims:
        n, best = start[d], None
        while True:
            r = _run(n, d, limit)
            print(
                f"| {d} | {n} | {r.get('patterns', '')} | {r['status']} | {r.get('rounds', '')} "
                f"| {r['seconds']:.1f} | {r.get('rss_mib', 0):.0f} |",
                flush=True,
            )
            if r["status"] != "certified":
                break
            best, n = n, n + 1
        print(f"d = {d}: largest n certified within {limit:.0f} s: {best}", flush=True)


def memory(n: int, d: int) -> None:
    from solvers.two_layer import dual_norm

    rng = np.random.default_rng(0)
    X, lam = rng.standard_normal((n, d)), rng.standard_normal(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    c1, exact = dual_norm(X, lam, cap=CAP)
    t1 = time.perf_counter()
    c2, _ = dual_norm(X, -0.5 * lam, cap=CAP)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "n": n,
                "d": d,
                "load": round(os.getloadavg()[0], 2),
                "exact": exact,
                "c": c1,
                "first_s": round(t1 - t, 3),
                "second_s": round(t2 - t1, 3),
                "rss_before_mib": round(before),
                "rss_peak_mib": round(peak),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="5,10")
    ap.add_argument("--start", default="5:18,10:10", help="first n per d, as d:n pairs")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--memory", default=None, help="one shape NxD: time and peak memory")
    a = ap.parse_args()
    if a.memory:
        n, d = (int(v) for v in a.memory.split("x"))
        memory(n, d)
        return
    start = {int(k): int(v) for k, v in (kv.split(":") for kv in a.start.split(","))}
    frontier([int(v) for v in a.dims.split(",")], start, a.limit)


if __name__ == "__main__":
    main()
