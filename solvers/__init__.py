"""dualsweep's mathematical core: the problems of THEORY.md, their exact optima, duals and
certificates, batched SGD training and layer structure. numpy/scipy/torch only."""

from solvers import data, detect
from solvers.dual import certificate, certified_gap, dual_bound
from solvers.problem import Network, NotCovered, Optimum, Problem, Status, forward, objective
from solvers.rescaled import rescaled_both, rescaled_dual, rescaled_gap, rescaled_primal
from solvers.solve import solve

__all__ = [
    "Network",
    "NotCovered",
    "Optimum",
    "Problem",
    "Status",
    "certificate",
    "certified_gap",
    "data",
    "detect",
    "dual_bound",
    "forward",
    "objective",
    "rescaled_both",
    "rescaled_dual",
    "rescaled_gap",
    "rescaled_primal",
    "solve",
]
