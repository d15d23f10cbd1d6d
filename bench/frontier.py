"""Beyond the enumeration cap (issue 17): how far the separation oracle certifies P*, old vs new.

    python -m bench.frontier --d 5 --ns 30,40,60 --limit 60      # status per n, both oracles
    python -m bench.frontier --d 5 --bisect 24:80 --limit 60     # largest n certified (bisection)
    python -m bench.frontier --brackets --shapes 200x10,1000x20 --limit 60
    python -m bench.frontier --profile 60x3b,40x5,30x10 --limit 60   # where the time goes
    python -m bench.frontier --compare 40x3,20x3b --cap 50 --limit 60  # vs cvxpy and pyscnn

Two oracles run on the same instances, one after the other in one process (the machine's load
hits both). Every kind but ``module`` replaces only the MIP call; the loop around it is this
checkout's (since round 9: the time limit ends it, carried bounds, SCIP's pool, the module's stall
setting ignored: the kind decides):

- **old**: ``solvers.separation.dual_norm_oracle(cuts=False)`` as column generation calls it on
  main (big-M program only, solved to the gap ``0.1·tol``);
- **cut**: ``cuts=True`` (the quadratic cut), solved to the same gap;
- **target**: ``cuts=False``, ``target = β(1 + 0.1·tol)`` (SCIP's objective limit: nodes
  below it are cut off; the proof ``c(λ) ≤ target`` counts as exact for certification,
  ``r.exact or r.below_target``: the change proposed for ``solvers.column_generation.solve_on``,
  applied here by wrapping the oracle it imports);
- **first**: as target, and SCIP stops at the first violator (``first_violator=True``);
- **new**: the module's defaults (cut from ``CUT_MIN_POINTS`` points with λ_i > 0) and target;
- **stall**: as target, and SCIP stops ``STALL_NODES`` nodes after its last better point above
  the target (``stall_nodes``): a violator in ~40% less time per call, but SCIP's bound at that
  point is loose (measured: a violator 1.2e-7 above β already in the working set stopped the
  proof that would have certified 27 × 5, and brackets' lower ends came out 10× wider);
- **module**: nothing wrapped: the oracle exactly as :mod:`solvers.column_generation` calls it
  (what a checkout's own code does: the before/after frontier of two checkouts).

Frontier mode: ``solve_two_layer(p, time_limit=limit)`` on Gaussian X, y (``bench.two_layer``'s
``_frontier_problem``, β = 0.1), CERTIFIED = relative gap ≤ 1e-6 with ``c(λ)`` proved.
Profile mode: one ``solve_two_layer`` per shape (``NxD``, ``b`` = with bias) with the module's
own oracle, wall time split between the loop's parts (:data:`PROFILED`, timed where
:mod:`solvers.column_generation` calls them; the rest is the loop's own bookkeeping).
Compare mode: ``solve_two_layer(p, cap=CAP, time_limit=limit)`` (a small ``--cap`` forces
column generation with the MIP oracle where the enumeration would still run) beside cvxpy on
ALL enumerated patterns (``solvers.reference.relu_two_layer``, up to ``CVXPY_PATTERNS``) and
pyscnn (``bench.two_layer._pyscnn``, if importable): time and (value − our certified lower
end)/lower end.
Brackets mode (n too large for column generation within minutes): a network from L-BFGS
(``local_network`` from the zero network, or with ``--width w`` from a random network of w neurons,
20,000 iterations), its certificate
``D(αλ)`` (THEORY §7, λ its residual, ``α ≤ β/c̄`` with ``c̄`` the oracle's bound after ``limit``
seconds, both signs); width = (objective − certificate)/objective, ``c̄/c`` = bound over the best
value found (the local search's and the MIP's), ``c/β`` = how far λ is from dual feasible (a
bracket cannot be narrow when it is ≫ 1, whatever c̄). Oracle ``shor``: c̄ from
:func:`solvers.shor.shor_dual_norm` (the SDP + RLT relaxation, rigorous from its dual, ``limit``
seconds for both signs) instead of the MIP.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

import numpy as np

import solvers.column_generation as cg
import solvers.two_layer as tl
from bench.two_layer import _frontier_problem
from solvers import Problem, objective
from solvers.problem import Network, forward
from solvers.scalar import scaled_dual_value
from solvers.separation import dual_norm_oracle, local_search
from solvers.shor import shor_dual_norm

ORACLES = (
    "old",
    "cut",
    "target",
    "first",
    "new",
    "stall",
    "module",
    "shor",
)  # --oracles picks (default: old,new); shor (solvers.shor's SDP bound): --brackets only


STALL_NODES = 200  # the "stall" oracle: nodes without a better violator before SCIP stops


@contextlib.contextmanager
def oracle(kind: str, beta: float) -> Iterator[None]:
    """Column generation (:mod:`solvers.column_generation`, where the loop calls the oracle)
    with the ``kind`` oracle (module doc)."""

    if kind == "module":
        yield
        return
    cuts = {"old": False, "cut": True, "target": False, "first": False}.get(kind)
    use_target = kind in ("target", "first", "new", "stall")

    def call(X, lam, *, bias=False, time_limit=60.0, tol=1e-9, target=None, stall_nodes=None,  # noqa: ANN001, ANN202
             signs=(1, -1)):  # fmt: skip
        target = beta * (1 + tol) if use_target else None  # the kind decides, not the caller
        res = dual_norm_oracle(
            X,
            lam,
            bias=bias,
            time_limit=time_limit,
            tol=tol,
            target=target,
            first_violator=kind == "first",
            cuts=cuts,
            stall_nodes=STALL_NODES if kind == "stall" else None,
            signs=signs,
        )
        return tuple(r if r.exact or not r.below_target else _proved(r) for r in res)

    saved = cg.dual_norm_oracle
    cg.dual_norm_oracle = call
    try:
        yield
    finally:
        cg.dual_norm_oracle = saved


def _proved(r):  # noqa: ANN001, ANN202
    import dataclasses

    return dataclasses.replace(r, exact=True)


def _solve(kind: str, n: int, d: int, bias: bool, limit: float, data: str = "gaussian"):
    p = _frontier_problem(data, n, d, bias, 0.1)
    with oracle(kind, p.beta):
        t = time.perf_counter()
        opt = tl.solve_two_layer(p, time_limit=limit)
        dt = time.perf_counter() - t
    orc = opt.info.get("oracle", {})
    shor = opt.info.get("shor")
    before = "—"
    if shor is not None:  # the gap the MIP's bound left, before the Shor bound (solvers.shor)
        before = f"{(opt.objective - shor['lower_before']) / abs(opt.objective):.1e}"
        before += f" ({shor['seconds']:.0f} s)"
    # within the cap the enumeration has no time limit: certified counts within 1.1 × limit
    certified = opt.status.value == "certified" and dt <= 1.1 * limit
    print(
        f"| {data} | {n} | {d} | {'yes' if bias else 'no'} | {kind} | {opt.status.value} | "
        f"{opt.rel_gap:.1e} | {before} | {opt.info.get('patterns')} | {opt.info.get('rounds')} | "
        f"{orc.get('calls', 0)} ({orc.get('seconds', 0.0):.0f}) | {dt:.0f} |",
        flush=True,
    )
    return certified


HEADER = (
    "| data | n | d | bias | oracle | status | rel. gap | gap before Shor (Shor s) | patterns "
    "| rounds | oracle calls (s) | wall s |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def frontier(d: int, ns: list[int], limit: float, bias: bool, data: str, kinds: list) -> None:
    print(HEADER)
    for n in ns:
        for kind in kinds:
            _solve(kind, n, d, bias, limit, data)


def bisect(d: int, lo: int, hi: int, limit: float, bias: bool, data: str, kinds: list) -> None:
    """Largest n in [lo, hi] certified within ``limit`` (assumes monotone in n), per oracle."""
    print(HEADER)
    for kind in kinds:
        a, b = lo, hi  # invariant: a certified (assumed), b not (assumed)
        while b - a > max(2, a // 8):
            mid = (a + b) // 2
            if _solve(kind, mid, d, bias, limit, data):
                a = mid
            else:
                b = mid
        print(f"\n{kind}: largest n certified in {limit:.0f} s, d = {d}: ≥ {a}, < {b}\n")


PROFILED = {  # part → the names column generation calls (timed in its namespace)
    "geometry (sampled cells)": (tl, "cached_geometry"),
    "master (Clarabel)": (cg, "solve_restricted"),
    "faces + polish": (cg, "active_faces", "polish", "polished_blocks"),
    "read-out": (cg, "network_from_blocks"),
    "pricing (sampled cells)": (cg, "price"),
    "relaxed bound": (cg, "relaxed_dual_norm"),
    "local search": (cg, "_searched"),
    "MIP oracle (SCIP)": (cg, "dual_norm_oracle"),
    "bracket L-BFGS": (cg, "local_network"),
}


@contextlib.contextmanager
def timed(parts: dict) -> Iterator[dict]:
    """Wrap every name of :data:`PROFILED` (``parts``) so that its seconds and calls add up."""
    spent = {k: [0.0, 0] for k in parts}
    saved = []

    def wrap(key: str, f):  # noqa: ANN001, ANN202
        def g(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return f(*a, **kw)
            finally:
                spent[key][0] += time.perf_counter() - t
                spent[key][1] += 1

        return g

    for key, (mod, *names) in parts.items():
        for name in names:
            saved.append((mod, name, getattr(mod, name)))
            setattr(mod, name, wrap(key, getattr(mod, name)))
    try:
        yield spent
    finally:
        for mod, name, f in reversed(saved):
            setattr(mod, name, f)


def profile(shapes: list[tuple[int, int, bool]], limit: float, data: str) -> None:
    names = list(PROFILED)
    print(
        "| data | n | d | bias | status | rel. gap | rounds | blocks | wall s | "
        + " | ".join(names)
        + " | other |"
    )
    print("|" + "---|" * (10 + len(names)))
    for n, d, bias in shapes:
        p = _frontier_problem(data, n, d, bias, 0.1)
        with timed(PROFILED) as spent:
            t = time.perf_counter()
            opt = tl.solve_two_layer(p, time_limit=limit)
            dt = time.perf_counter() - t
        cells = [f"{s:.1f} ({c})" for s, c in spent.values()]
        other = dt - sum(s for s, _ in spent.values())
        print(
            f"| {data} | {n} | {d} | {'yes' if bias else 'no'} | {opt.status.value} | "
            f"{opt.rel_gap:.1e} | {opt.info.get('rounds')} | {opt.info.get('blocks')} | {dt:.0f} | "
            + " | ".join(cells)
            + f" | {other:.1f} |",
            flush=True,
        )


CVXPY_PATTERNS = 3000  # cvxpy over all patterns takes minutes beyond this (BENCHMARKS.md)


def compare(shapes: list[tuple[int, int, bool]], limit: float, data: str, cap: int) -> None:
    from bench.two_layer import _pyscnn
    from solvers.arrangement import enumerate_patterns
    from solvers.reference import relu_two_layer

    print(
        "| data | n | d | bias | patterns | ours status | ours s | ours gap | cvxpy s | cvxpy err "
        "| pyscnn s | pyscnn err |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for n, d, bias in shapes:
        p = _frontier_problem(data, n, d, bias, 0.1)
        t = time.perf_counter()
        opt = tl.solve_two_layer(p, cap=cap, time_limit=limit)
        dt = time.perf_counter() - t
        low = opt.lower_bound
        D = enumerate_patterns(p.X, bias=bias, cap=10**9)
        cv = py = "—"
        if D.shape[0] <= CVXPY_PATTERNS:
            t = time.perf_counter()
            val, _, _ = relu_two_layer(p.X, p.Y[:, 0], p.beta, D, bias=bias)
            cv = f"{time.perf_counter() - t:.1f} | {(val - low) / low:+.1e}"
        else:
            cv = "— | —"
        res = _pyscnn(p, D.shape[0])
        py = "— | —" if res is None else f"{res[1]:.1f} | {(res[0] - low) / low:+.1e}"
        print(
            f"| {data} | {n} | {d} | {'yes' if bias else 'no'} | {D.shape[0]} | "
            f"{opt.status.value} | {dt:.1f} | {opt.rel_gap:.1e} | {cv} | {py} |",
            flush=True,
        )


def _zero_network(p: Problem, width: int) -> Network:
    W1, W2 = np.zeros((p.d, width)), np.zeros((width, 1))
    return Network(weights=(W1, W2), biases=(np.zeros(width),) if p.bias else None)


def _start_network(p: Problem, width: int) -> Network:
    """The zero network (``width = 0``: L-BFGS then starts from 8 small neurons on the local
    search's directions) or a random one of ``width`` neurons (seed 0, scale 0.5/√fan-in)."""
    if not width:
        return _zero_network(p, 16)
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((p.d, width)) * 0.5 / np.sqrt(p.d)
    W2 = rng.standard_normal((width, 1)) * 0.5 / np.sqrt(width)
    return Network(weights=(W1, W2), biases=(np.zeros(width),) if p.bias else None)


def brackets(
    shapes: list[tuple[int, int]],
    limit: float,
    bias: bool,
    data: str,
    kinds: list,
    width: int = 0,
) -> None:
    print(
        f"| data | n | d | bias | width | P* upper (L-BFGS) | c/β | oracle | c value | c bound "
        f"| c̄/c | P* lower | width | s |  (limit {limit:.0f} s per oracle call, both signs)"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, d in shapes:
        p = _frontier_problem(data, n, d, bias, 0.1)
        net = tl.local_network(p, _start_network(p, width), maxiter=20_000 if width else 2000)
        up = objective(p, net)
        y = p.Y[:, 0]
        lam = y - forward(p, net)[:, 0]
        lam = lam - lam.mean() if bias else lam
        found = max(local_search(p.X, sg * lam, bias=bias).value for sg in (1, -1))
        rows = []
        for kind in kinds:  # a bound is needed here: no target
            t = time.perf_counter()
            if kind == "shor":
                cbar, _ = shor_dual_norm(p.X, lam, bias=bias, time_limit=limit)
            else:
                cuts = {"old": False, "cut": True}.get(kind)
                res = dual_norm_oracle(p.X, lam, bias=bias, time_limit=limit, cuts=cuts)
                found = max(found, *(r.value for r in res))
                cbar = max(r.upper for r in res)
            rows.append((kind, cbar, time.perf_counter() - t))
        for kind, cbar, dt in rows:
            amax = np.inf if cbar <= 0 else p.beta / cbar
            low = scaled_dual_value(float(lam @ y), float(lam @ lam), amax)
            print(
                f"| {data} | {n} | {d} | {'yes' if bias else 'no'} | {width} | {up:.6g} | "
                f"{found / p.beta:.3g} | {kind} | {found:.4g} | {cbar:.4g} | {cbar / found:.4f} | "
                f"{low:.6g} | {(up - low) / up:.2e} | {dt:.0f} |",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=5)
    ap.add_argument("--ns", default="", help="comma-separated n (frontier mode)")
    ap.add_argument("--bisect", default="", help="lo:hi, largest n certified (bisection)")
    ap.add_argument("--profile", default="", help="NxD[b],... time split per shape")
    ap.add_argument("--compare", default="", help="NxD[b],... vs cvxpy (all patterns), pyscnn")
    ap.add_argument("--cap", type=int, default=20_000, help="pattern cap (--compare)")
    ap.add_argument("--brackets", action="store_true", help="oracle brackets at large n")
    ap.add_argument("--shapes", default="200x10,200x20", help="NxD,... for --brackets")
    ap.add_argument(
        "--width",
        type=int,
        default=0,
        help="--brackets: L-BFGS from a random net this wide (0: zero)",
    )
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per solve / oracle")
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--data", default="gaussian", choices=["gaussian", "uniform", "digits"])
    ap.add_argument("--oracles", default="old,new", help=f"from {','.join(ORACLES)}")
    args = ap.parse_args()
    kinds = args.oracles.split(",")
    if set(kinds) - set(ORACLES):
        ap.error(f"--oracles: unknown {sorted(set(kinds) - set(ORACLES))}; known {ORACLES}")
    if "shor" in kinds and not args.brackets:
        ap.error("--oracles: shor (a bound only, no violator) runs in --brackets mode only")
    if args.profile or args.compare:
        shapes = [
            (*(int(v) for v in s.rstrip("b").split("x")), s.endswith("b"))
            for s in (args.profile or args.compare).split(",")
        ]
        if args.profile:
            profile(shapes, args.limit, args.data)
        else:
            compare(shapes, args.limit, args.data, args.cap)
    elif args.brackets:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        brackets(shapes, args.limit, args.bias, args.data, kinds, args.width)
    elif args.bisect:
        lo, hi = (int(v) for v in args.bisect.split(":"))
        bisect(args.d, lo, hi, args.limit, args.bias, args.data, kinds)
    else:
        ns = [int(v) for v in args.ns.split(",")]
        frontier(args.d, ns, args.limit, args.bias, args.data, kinds)


if __name__ == "__main__":
    main()
