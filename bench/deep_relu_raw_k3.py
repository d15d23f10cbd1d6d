"""The raw-data K = 3 depth-2 trials of ``+grid=deep_relu`` solved directly (issue 17).

    python -m bench.deep_relu_raw_k3           # the 8 trials' problems (4 distinct solves)
    python -m bench.deep_relu_raw_k3 --only 0  # one problem (index into the distinct four)
    python -m bench.deep_relu_raw_k3 --only 3 --ladder 100,200,300,400
        # the walk rounds' network, then its certificate's c̄_K after each number of MIP calls

The trials (``whiten=none``, ``outputs=3``, depth 2; seeds × β × width) are made by
:func:`sweep.trial.make_problem`; each trial solves its problem at ``width=None`` (memoised per
data, β: sweep/trial.py's ``_solve_any_width``), so the 8 trials are 4 distinct solves (widths
10 and 50 share one). Per solve: status, [lower, upper], relative gap, MIP calls, wall seconds
of ``solve_vector_relu`` (one process, one BLAS thread, fresh cut store per solve), and the
load average. Run with ``PYTHONPATH`` at another checkout to measure that code.

``--ladder``: the primal of :func:`solvers.vector_relu._walk_rounds` (cell-walk pricing, no MIP
call) on the row space, then the exact ``c̄_K`` of the outer polytope at its residual, the cuts
kept between steps, after each number of MIP calls: ``c̄_K/β``, the best ``c_K`` attained, and
the bracket ``[scaled dual, network]`` — how the certificate's width falls with the call budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from solvers.vector_relu import solve_vector_relu
from sweep.config import load
from sweep.grid import expand
from sweep.trial import make_problem
from tests.sweep.conftest import compose


def problems() -> list[tuple[str, object, list[int]]]:
    """``(label, problem at width None, widths of the trials sharing it)`` per distinct solve."""
    cfg = load(compose(["+grid=deep_relu", "model.depth=2"]))
    out: dict[tuple, tuple[str, object, list[int]]] = {}
    for s in expand(cfg):
        if s.data.outputs != 3 or s.data.whiten != "none":
            continue
        key = (s.seed, s.train.beta)
        if key not in out:
            p = dataclasses.replace(make_problem(s), width=None)
            out[key] = (f"seed {s.seed}, beta {s.train.beta:g}", p, [])
        out[key][2].append(s.model.width)
    return list(out.values())


def ladder(label: str, p, steps: list[int]) -> None:
    """Walk rounds, then the certificate's ``c̄_K`` after each cumulative call count."""
    from solvers import polytope_norm
    from solvers import vector_relu as vr
    from solvers.problem import forward
    from solvers.rescaled import _one_blas_thread

    V = vr.row_space_basis(p.X)
    q = p if V is None else dataclasses.replace(p, X=p.X @ V)
    oracle, _ = vr.scalar_oracle_for(q.X, q.K)
    polytope_norm._CUTS.clear()
    t0 = time.perf_counter()
    with _one_blas_thread():
        first = vr.vector_dual_norm(q.X, q.Y, oracle, rtol=1e-3, max_evals=vr.POLYTOPE_ROUND_CALLS)
        net, upper, _, rounds = vr._walk_rounds(q, vr._merge(first.U[:8]), vr._polish_raw)
        print(
            f"{label}: walk rounds {rounds}, network {upper:.8f}, "
            f"{time.perf_counter() - t0:.0f} s (plus {first.evals} MIP calls for the start)"
        )
        print("| MIP calls | c̄_K/β | best c_K/β attained | lower | upper | rel gap | s | load |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        Lam = q.Y - forward(q, net)
        done = 0
        for total in steps:
            t1 = time.perf_counter()
            c = vr.vector_dual_norm(q.X, Lam, oracle, rtol=vr.NORM_RTOL, max_evals=total - done)
            done += c.evals
            low = vr._scaled(Lam, q.Y, q.beta, c.upper)
            print(
                f"| {done} | {c.upper / q.beta:.6f} | {c.lower / q.beta:.8f} | {low:.6f} | "
                f"{upper:.6f} | {(upper - low) / upper:.2e} | {time.perf_counter() - t1:.0f} | "
                f"{os.getloadavg()[0]:.1f} |",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", type=int, default=None)
    ap.add_argument("--ladder", default=None, help="cumulative MIP call counts, e.g. 100,200,400")
    args = ap.parse_args()
    from solvers import polytope_norm

    todo = problems()
    if args.only is not None:
        todo = [todo[args.only]]
    if args.ladder:
        steps = [int(s) for s in args.ladder.split(",")]
        for label, p, _ in todo:
            ladder(label, p, steps)
        return
    print(
        "| problem | widths | status | lower | upper | rel gap | MIP calls | neurons found | m* "
        "(Carathéodory) | s | load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, p, widths in todo:
        polytope_norm._CUTS.clear()  # each solve starts without stored cuts, as a fresh trial
        t0 = time.perf_counter()
        opt = solve_vector_relu(p)
        s = time.perf_counter() - t0
        print(
            f"| {label} | {', '.join(map(str, widths))} | {opt.status.name} | "
            f"{opt.lower_bound:.6f} | {opt.objective:.6f} | {opt.rel_gap:.2e} | "
            f"{opt.info['oracle_calls']} | {opt.info['m_found']} | {opt.m_star} | {s:.0f} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
