"""Two-layer ReLU pattern program (THEORY §10): our solver vs cvxpy/Clarabel on all patterns vs
pyscnn 0.0.10 — time and accuracy against the certified value.

    python -m bench.two_layer            # the table of BENCHMARKS.md §10
    python -m bench.two_layer --quick    # two small shapes

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


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-pyscnn", action="store_true", help="skip pyscnn (30–250 s per solve)")
    args = ap.parse_args()
    main(args.quick, pyscnn=not args.no_pyscnn)
