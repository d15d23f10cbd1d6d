"""Two-layer ReLU pattern program (THEORY §10): our solver vs cvxpy/Clarabel on all patterns vs
pyscnn 0.0.10 — time and accuracy against the certified value.

    python -m bench.two_layer            # the table of BENCHMARKS.md §10
    python -m bench.two_layer --quick    # two small shapes
    python -m bench.two_layer --frontier [--limit 60] [--shapes 30x5,200x10,...]
                                         # beyond the cap: MIP-oracle column generation
    python -m bench.two_layer --oracle   # the separation oracle: SCIP vs HiGHS (outer ball)

Per shape (random Gaussian X, y; seed fixed) and β:
- ours: ``solve_two_layer`` (enumeration + column generation + polish, certified gap ≤ 1e-8),
  plus ``two_layer_certificate`` of the returned network (timed separately);
- cvxpy: ``solvers.reference.relu_two_layer`` on ALL enumerated patterns (Clarabel), skipped
  above ``CVXPY_MAX_PATTERNS`` patterns (minutes);
- pyscnn 0.0.10 (optional; ``pip install pyscnn``, not a project dependency; only β = 0.1 and
  ≤ ``PYSCNN_MAX_PATTERNS`` patterns — it takes 30–100 s per solve): ``optimize("relu",
  …, NeuronGL1(β/n), unitize_data=False, dtype="float64")`` — its λ is β/n because it scales the
  loss by 1/n; its network (balanced neuron by neuron) evaluated by ``solvers.objective``.
Accuracy = (value − certified lower bound)/lower bound: negative would mean below P*.
The three alternatives run one after the other per shape, so machine load hits all of them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from solvers import Problem, objective
from solvers.problem import Network
from solvers.two_layer import (
    enumerate_patterns,
    solve_two_layer,
    solve_two_layer_path,
    two_layer_certificate,
)

CVXPY_MAX_PATTERNS = 1600
PYSCNN_MAX_PATTERNS = 400  # pyscnn takes 30–100 s per solve on the loaded machine: small shapes
PYSCNN_BETAS = (0.1,)
SHAPES = [  # (n, d, bias)
    (12, 2, False),
    (20, 2, False),
    (20, 3, False),
    (40, 2, False),
    (40, 3, False),
    (12, 5, False),
    (12, 2, True),
    (40, 2, True),
    (20, 3, True),
    (40, 4, False),  # the largest shapes the cap (20,000 patterns) allows
    (40, 3, True),
]
BETAS = [0.1, 0.01]


def _problem(n: int, d: int, bias: bool, beta: float, seed: int = 0) -> Problem:
    rng = np.random.default_rng(1000 * n + 10 * d + int(bias) + seed)
    return Problem(rng.standard_normal((n, d)), rng.standard_normal(n), 2, beta, "relu", bias=bias)


def _balanced(p: Problem, W1: np.ndarray, b: np.ndarray | None, a: np.ndarray) -> Network:
    """Rescale each neuron so ‖(u, b)‖ scale and |a| balance: cost β|a|‖u‖ (the §0 minimum)."""
    nu = np.linalg.norm(W1, axis=0)
    c = np.sqrt(np.abs(a) / np.where(nu > 0, nu, 1.0))
    c = np.where((nu > 0) & (np.abs(a) > 0), c, 0.0)
    W1b = W1 * c[None, :]
    ab = np.where(c > 0, a / np.where(c > 0, c, 1.0), 0.0)
    return Network(
        weights=(W1b, ab[:, None]), biases=((b * c),) if p.bias and b is not None else None
    )


def _pyscnn(p: Problem, patterns: int) -> tuple[float, float] | None:
    try:
        from scnn.optimize import optimize
        from scnn.regularizers import NeuronGL1
    except ImportError:
        return None
    t = time.perf_counter()
    model, _ = optimize(
        "relu",
        min(2 * patterns, 1000),
        p.X,
        p.Y[:, 0],
        regularizer=NeuronGL1(p.beta / p.n),
        bias=p.bias,
        unitize_data=False,
        dtype="float64",
    )
    dt = time.perf_counter() - t
    params = [np.asarray(a, dtype=np.float64) for a in model.parameters]
    W1 = params[0].T
    b = params[1] if p.bias else None
    a = params[-1].reshape(-1)
    return objective(p, _balanced(p, W1, b, a)), dt


def _cvxpy(p: Problem, D: np.ndarray) -> tuple[float, float] | None:
    if D.shape[0] > CVXPY_MAX_PATTERNS:
        return None
    from solvers.reference import relu_two_layer

    t = time.perf_counter()
    val, _, _ = relu_two_layer(p.X, p.Y[:, 0], p.beta, D, bias=p.bias)
    return val, time.perf_counter() - t


def main(quick: bool = False, pyscnn: bool = True) -> None:
    shapes = SHAPES[:2] if quick else SHAPES
    print(
        "| n | d | bias | β | patterns | ours s (+cert s) | gap | m* | cvxpy s | cvxpy err "
        "| pyscnn s | pyscnn err |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, d, bias in shapes:
        for beta in BETAS:
            p = _problem(n, d, bias, beta)
            D = enumerate_patterns(p.X, bias=bias)
            t = time.perf_counter()
            opt = solve_two_layer(p)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            cert = two_layer_certificate(p, opt.network)
            t_cert = time.perf_counter() - t
            lb = opt.lower_bound
            cv = _cvxpy(p, D) if (beta == BETAS[0] or D.shape[0] <= 400) else None
            run_py = pyscnn and D.shape[0] <= PYSCNN_MAX_PATTERNS and beta in PYSCNN_BETAS
            run_py = run_py and not quick
            py = _pyscnn(p, D.shape[0]) if run_py else None
            cv_s = f"{cv[1]:.2f} | {(cv[0] - lb) / lb:+.1e}" if cv else "— | (skipped)"
            py_s = f"{py[1]:.2f} | {(py[0] - lb) / lb:+.1e}" if py else "— | (not run)"
            print(
                f"| {n} | {d} | {'yes' if bias else 'no'} | {beta} | {D.shape[0]} | "
                f"{t_ours:.2f} (+{t_cert:.2f}) | {opt.rel_gap:.1e} | {opt.m_star} | {cv_s} | {py_s} |",
                flush=True,
            )
            assert cert <= opt.objective * (1 + 1e-12)
    # a β path on one shape: warm-started working sets vs independent solves
    p = _problem(40, 3, False, 0.1)
    betas = [1.0, 0.3, 0.1, 0.03, 0.01]
    t = time.perf_counter()
    path = solve_two_layer_path(p, betas)
    t_path = time.perf_counter() - t
    t = time.perf_counter()
    singles = [solve_two_layer(Problem(p.X, p.Y, 2, b, "relu")) for b in betas]
    t_single = time.perf_counter() - t
    worst = max(
        abs(a.objective - s.objective) / s.objective for a, s in zip(path, singles, strict=True)
    )
    print(
        f"\nβ path n=40 d=3, {len(betas)} β: path {t_path:.2f} s, independent {t_single:.2f} s "
        f"(ratio {t_single / t_path:.2f}×), worst relative difference {worst:.1e}"
    )


FRONTIER = [  # (kind, n, d, bias) beyond the enumeration cap
    ("gaussian", 30, 5, False),
    ("gaussian", 60, 5, False),
    ("gaussian", 15, 10, False),
    ("gaussian", 30, 10, False),
    ("gaussian", 200, 10, False),
    ("uniform", 200, 10, True),
    ("digits", 200, 10, False),
]


def _frontier_problem(kind: str, n: int, d: int, bias: bool, beta: float) -> Problem:
    rng = np.random.default_rng(7 * n + d)
    if kind == "digits":  # scikit-learn digits, PCA to d dims, two classes, signed ±1 targets
        from sklearn.datasets import load_digits
        from sklearn.decomposition import PCA

        Xa, ya = load_digits(return_X_y=True)
        keep = np.flatnonzero((ya == 3) | (ya == 8))[:n]
        X = PCA(d, random_state=0).fit_transform(Xa[keep]) / 10.0
        y = np.where(ya[keep] == 3, 1.0, -1.0)
    elif kind == "uniform":
        X, y = rng.uniform(-1, 1, (n, d)), rng.standard_normal(n)
    else:
        X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    return Problem(X, y, 2, beta, "relu", bias=bias)


def frontier(limit: float, shapes: list | None = None, beta: float = 0.1) -> None:
    """Beyond the cap: status, bracket width and time of ``solve_two_layer`` within ``limit``."""
    print(
        f"| data | n | d | bias | β | status | rel. width | objective | lower | m* | rounds "
        f"| oracle calls (s) | wall s |  (limit {limit:.0f} s)"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, n, d, bias in shapes or FRONTIER:
        p = _frontier_problem(kind, n, d, bias, beta)
        t = time.perf_counter()
        opt = solve_two_layer(p, time_limit=limit)
        dt = time.perf_counter() - t
        orc = opt.info.get("oracle", {})
        print(
            f"| {kind} | {n} | {d} | {'yes' if bias else 'no'} | {beta} | {opt.status.value} | "
            f"{opt.rel_gap:.1e} | {opt.objective:.6g} | {opt.lower_bound:.6g} | {opt.m_star} | "
            f"{opt.info.get('rounds')} | {orc.get('calls', 0)} ({orc.get('seconds', 0.0):.0f}) | "
            f"{dt:.0f} |",
            flush=True,
        )


def oracle_compare(limit: float) -> None:
    """The two MIP formulations of the separation oracle on random λ (one sign, no bias):
    SCIP with the exact ball (solvers.separation) vs HiGHS (scipy.optimize.milp) with the ball
    replaced by the box and 400 random tangent planes (an outer approximation: its bound is
    valid, its point may lie outside the ball). Dual bound and time at ``limit`` seconds."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    from solvers.separation import max_relu_correlation

    def highs(X: np.ndarray, lam: np.ndarray) -> tuple[float, float]:
        _, _, Vt = np.linalg.svd(X, full_matrices=False)
        Xr = X @ Vt.T
        n, r = Xr.shape
        nx = np.linalg.norm(Xr, axis=1)
        P, N = np.flatnonzero(lam > 0), np.flatnonzero(lam < 0)
        cuts = np.random.default_rng(0).standard_normal((400, r))
        cuts /= np.linalg.norm(cuts, axis=1, keepdims=True)
        A = lil_matrix((2 * P.size + N.size + len(cuts), r + n + P.size))
        lo, hi, k = [], [], 0
        for j, i in enumerate(P):  # h ≤ xᵀu + M(1 − z), h ≤ Mz
            A[k, :r], A[k, r + i], A[k, r + n + j] = -Xr[i], 1.0, nx[i]
            lo.append(-np.inf), hi.append(nx[i])
            A[k + 1, r + i], A[k + 1, r + n + j] = 1.0, -nx[i]
            lo.append(-np.inf), hi.append(0.0)
            k += 2
        for i in N:  # h ≥ xᵀu
            A[k, :r], A[k, r + i] = -Xr[i], 1.0
            lo.append(0.0), hi.append(np.inf)
            k += 1
        for v in cuts:
            A[k, :r] = v
            lo.append(-np.inf), hi.append(1.0)
            k += 1
        c = np.concatenate([np.zeros(r), -lam, np.zeros(P.size)])
        lb = np.concatenate([-np.ones(r), np.zeros(n + P.size)])
        ub = np.concatenate([np.ones(r), nx, np.ones(P.size)])
        t = time.perf_counter()
        res = milp(
            c,
            constraints=LinearConstraint(A.tocsr(), lo, hi),
            integrality=np.concatenate([np.zeros(r + n), np.ones(P.size)]),
            bounds=Bounds(lb, ub),
            options={"time_limit": limit, "mip_rel_gap": 1e-9},
        )
        return -float(res.mip_dual_bound), time.perf_counter() - t

    print(
        f"| n | d | sign | SCIP value | SCIP bound | SCIP s | HiGHS bound | HiGHS s | (limit {limit:.0f} s)"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n, d in [(30, 3), (60, 5), (200, 10)]:
        rng = np.random.default_rng(0)
        X, lam = rng.standard_normal((n, d)), rng.standard_normal(n)
        for sg in (1, -1):
            sc = max_relu_correlation(X, sg * lam, time_limit=limit)
            hb, ht = highs(X, sg * lam)
            print(
                f"| {n} | {d} | {sg:+d} | {sc.value:.6g} | {sc.upper:.6g} | {sc.seconds:.1f} | "
                f"{hb:.6g} | {ht:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-pyscnn", action="store_true", help="skip pyscnn (30–250 s per solve)")
    ap.add_argument("--frontier", action="store_true", help="beyond the cap (time-limited)")
    ap.add_argument("--oracle", action="store_true", help="SCIP vs HiGHS separation")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per solve / oracle")
    ap.add_argument("--shapes", default="", help="kind:n:d:bias,... for --frontier")
    args = ap.parse_args()
    if args.frontier:
        picked = [
            (k, int(n), int(d), b == "1")
            for k, n, d, b in (s.split(":") for s in args.shapes.split(",") if s)
        ]
        frontier(args.limit, picked or None)
    elif args.oracle:
        oracle_compare(args.limit)
    else:
        main(args.quick, pyscnn=not args.no_pyscnn)
