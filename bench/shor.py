"""How tight is the Shor SDP bound on ``s(λ)`` (solvers.shor), and at what cost, beside the MIP.

    python -m bench.shor --shapes 30x3,40x5,60x10,100x10 --limit 90
    python -m bench.shor --shapes 40x5 --products none,sd,all --limit 60
    python -m bench.shor --shapes 24x3,40x3,16x3b --optimum      # at the certified optimum

With ``--optimum`` λ is instead the residual of the CERTIFIED optimum (enumeration, so small
shapes; ``c(λ) = β`` attained at every active neuron): can the relaxation certify (bound ≈ β)?

For each shape (``bench.two_layer._frontier_problem``: Gaussian X and y, β = 0.1; ``b`` = with
bias) λ is the residual of an L-BFGS network from the zero network (as ``bench.frontier
--brackets`` makes it); for both signs: the MIP oracle (``max_relu_correlation``, SCIP, ``limit``
seconds: its value is a lower end, its bound an upper end, equal when solved), then the Shor bound
per ``products`` variant (``limit`` seconds each). Columns: ``ratio`` = rigorous Shor bound over
the best value found (1.0000: the relaxation is exact there), ``sdp`` = SCS's primal value over
it (not a bound), ``corr`` = the safety correction, ``rank`` = λ₂/λ₁ of SCS's ``M`` (≈ 0: rank
one), and the MIP's own ratio.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.frontier import _zero_network
from bench.two_layer import _frontier_problem
from solvers.problem import forward
from solvers.separation import max_relu_correlation
from solvers.shor import PRODUCTS, shor_bound
from solvers.two_layer import local_network


def _residual(p, optimum: bool) -> np.ndarray:  # noqa: ANN001
    if optimum:
        from solvers.relu_program import residual
        from solvers.two_layer import solve_two_layer

        opt = solve_two_layer(p)
        if opt.status.value != "certified":
            raise SystemExit(f"--optimum: n = {p.n}, d = {p.d} is not certified ({opt.status})")
        return residual(p, opt.network)
    net = local_network(p, _zero_network(p, 16))
    lam = p.Y[:, 0] - forward(p, net)[:, 0]
    return lam - lam.mean() if p.bias else lam


def run(  # noqa: PLR0913
    shapes: list[tuple[int, int, bool]],
    limit: float,
    products: list[str],
    data: str,
    optimum: bool = False,
) -> None:
    print(
        "| data | n | d | bias | sign | MIP value | MIP bound/value (s) | products | Shor "
        "bound/value | sdp/value | correction | rank | Shor s | size m |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, d, bias in shapes:
        p = _frontier_problem(data, n, d, bias, 0.1)
        lam = _residual(p, optimum)
        for sg in (1, -1):
            mip = max_relu_correlation(p.X, sg * lam, bias=bias, time_limit=limit)
            for prod in products:
                sb = shor_bound(p.X, sg * lam, bias=bias, time_limit=limit, products=prod)
                v = max(mip.value, 1e-300)
                print(
                    f"| {data} | {n} | {d} | {'yes' if bias else 'no'} | {sg:+d} | {mip.value:.5g} "
                    f"| {mip.upper / v:.4f} ({mip.seconds:.0f}) | {prod} | {sb.upper / v:.4f} | "
                    f"{sb.sdp / v:.4f} | {sb.correction:.1e} | {sb.rank_ratio:.1e} | "
                    f"{sb.seconds:.0f} | {sb.size} |",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="30x3,40x5,60x10", help="NxD[b],...")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per MIP / SDP call")
    ap.add_argument("--products", default="all", help=f"from {','.join(PRODUCTS)}")
    ap.add_argument("--data", default="gaussian", choices=["gaussian", "uniform", "digits"])
    ap.add_argument("--optimum", action="store_true", help="λ = the certified optimum's residual")
    args = ap.parse_args()
    products = args.products.split(",")
    if set(products) - set(PRODUCTS):
        ap.error(f"--products: unknown {sorted(set(products) - set(PRODUCTS))}; known {PRODUCTS}")
    shapes = [
        (*(int(v) for v in s.rstrip("b").split("x")), s.endswith("b"))
        for s in args.shapes.split(",")
    ]
    run(shapes, args.limit, products, args.data, args.optimum)


if __name__ == "__main__":
    main()
