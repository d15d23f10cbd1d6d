"""dualsweep's mathematical core: the problems of THEORY.md, their exact optima, duals and
certificates, batched SGD training and layer structure. numpy/scipy/torch only."""

from solvers import data
from solvers.problem import Network, NotCovered, Optimum, Problem, forward, objective
from solvers.solve import solve

__all__ = ["Network", "NotCovered", "Optimum", "Problem", "data", "forward", "objective", "solve"]
