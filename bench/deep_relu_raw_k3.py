"""The raw-data K = 3 depth-2 trials of ``+grid=deep_relu`` solved directly (issue 17).

    python -m bench.deep_relu_raw_k3           # the 8 trials' problems (4 distinct solves)
    python -m bench.deep_relu_raw_k3 --only 0  # one problem (index into the distinct four)

The trials (``whiten=none``, ``outputs=3``, depth 2; seeds × β × width) are made by
:func:`sweep.trial.make_problem`; each trial solves its problem at ``width=None`` (memoised per
data, β: sweep/trial.py's ``_solve_any_width``), so the 8 trials are 4 distinct solves (widths
10 and 50 share one). Per solve: status, [lower, upper], relative gap, MIP calls, wall seconds
of ``solve_vector_relu`` (one process, one BLAS thread, fresh cut store per solve), and the
load average. Run with ``PYTHONPATH`` at another checkout to measure that code.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", type=int, default=None)
    args = ap.parse_args()
    from solvers import polytope_norm

    todo = problems()
    if args.only is not None:
        todo = [todo[args.only]]
    print("| problem | widths | status | lower | upper | rel gap | MIP calls | s | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, p, widths in todo:
        polytope_norm._CUTS.clear()  # each solve starts without stored cuts, as a fresh trial
        t0 = time.perf_counter()
        opt = solve_vector_relu(p)
        s = time.perf_counter() - t0
        print(
            f"| {label} | {', '.join(map(str, widths))} | {opt.status.name} | "
            f"{opt.lower_bound:.6f} | {opt.objective:.6f} | {opt.rel_gap:.2e} | "
            f"{opt.info['oracle_calls']} | {s:.0f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
