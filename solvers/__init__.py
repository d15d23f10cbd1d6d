"""dualsweep's mathematical core: the problems of docs/theory.md, their exact optima, duals and
certificates, batched SGD training and layer structure. numpy/scipy/torch only."""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, imported on first use (PEP 562): `import solvers.options`
    # or `solvers.data` (sweep.config, a dry run) does not pay for scipy.optimize
    from solvers import data, detect
    from solvers.dual import certificate, certified_gap, dual_bound
    from solvers.problem import Network, NotCovered, Optimum, Problem, Status, forward, objective
    from solvers.rescaled import rescaled_both, rescaled_dual, rescaled_gap, rescaled_primal
    from solvers.solve import solve

_HOME = {
    "data": None,
    "detect": None,
    **dict.fromkeys(("certificate", "certified_gap", "dual_bound"), "dual"),
    **dict.fromkeys(
        ("Network", "NotCovered", "Optimum", "Problem", "Status", "forward", "objective"),
        "problem",
    ),
    **dict.fromkeys(
        ("rescaled_both", "rescaled_dual", "rescaled_gap", "rescaled_primal"), "rescaled"
    ),
    "solve": "solve",
}

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


def __getattr__(name: str) -> object:
    home = _HOME.get(name, ...)
    if home is ...:
        raise AttributeError(f"module 'solvers' has no attribute {name!r}")
    module = importlib.import_module(f"solvers.{home or name}")
    value = module if home is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``solvers.solve`` stays the function: importing the submodule ``solvers.solve`` sets
    the package's attribute of that name to the submodule, which the eager imports this
    file used to have rebound at once."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "solve" and isinstance(value, types.ModuleType):
            value = value.solve
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
