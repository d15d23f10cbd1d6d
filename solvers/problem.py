"""The training problem of docs/theory.md §0 and its one objective.

    P* = min_{W_1..W_L}  ½‖f(X) − Y‖_F²  +  (β/2) Σ_l ‖W_l‖_F²,
    f(X) = σ(⋯σ(σ(X W_1) W_2)⋯W_{L-1}) W_L,

a sum, not a mean. Variants (THEORY §5, §6):

- ``bias=True``: every hidden layer adds an unregularised bias, ``σ(H W_l + b_l)``;
- ``batchnorm=True``: the last hidden pre-activation ``A = H_{L-2} W_{L-1}`` is batch
  normalised per column (centre, divide by the biased std, scale ``γ_j``, shift ``α_j``)
  before its activation; then only ``γ``, ``α`` and ``W_L`` are regularised by β/2 (the
  earlier layers are scale invariant).

:func:`objective` is the single definition of this number: closed forms, SGD,
certificates and tests all evaluate it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "Network",
    "NotCovered",
    "Optimum",
    "Problem",
    "Status",
    "as_network",
    "forward",
    "last_hidden",
    "objective",
    "optimal_width",
    "regulariser",
    "require_problem",
]

ACTIVATIONS = ("linear", "relu")
BN_EPS = 0.0  # batch norm without an epsilon: THEORY §6 divides by the exact biased std


class NotCovered(Exception):  # noqa: N818 - the public name the API promises
    """docs/theory.md has no exact answer for this problem; the message names the failing assumption."""


def _as_float_matrix(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one sample")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


@dataclass(frozen=True, eq=False)
class Problem:
    """One instance of THEORY §0.

    Args:
        X: data, shape ``(n, d)``.
        Y: targets, shape ``(n, K)`` or ``(n,)``; stored as ``(n, K)`` (``y_1d`` remembers).
        depth: number of weight layers ``L >= 2``.
        beta: weight-decay strength ``β > 0``.
        activation: ``"linear"`` or ``"relu"``, after every hidden layer.
        width: hidden width ``m``; ``None`` lets a solver pick the smallest that works.
        bias: unregularised biases in every hidden layer (THEORY §5).
        batchnorm: batch norm before the last hidden activation (THEORY §6).
    """

    X: np.ndarray
    Y: np.ndarray
    depth: int
    beta: float
    activation: str = "linear"
    width: int | None = None
    bias: bool = False
    batchnorm: bool = False
    y_1d: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        y_1d = np.ndim(self.Y) == 1
        X = _as_float_matrix("X", self.X)
        Y = _as_float_matrix("Y", self.Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X and Y disagree on the number of samples: X has {X.shape[0]} rows, Y has {Y.shape[0]}"
            )
        if isinstance(self.depth, bool) or int(self.depth) != self.depth or self.depth < 2:
            raise ValueError(f"depth must be an integer >= 2, got {self.depth!r}")
        beta = float(self.beta)
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be a finite number > 0, got {self.beta!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.width is not None and (int(self.width) != self.width or self.width < 1):
            raise ValueError(f"width must be a positive integer or None, got {self.width!r}")
        X.setflags(write=False)
        Y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "y_1d", y_1d)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def K(self) -> int:  # noqa: N802 - THEORY's name
        return self.Y.shape[1]

    @property
    def L(self) -> int:  # noqa: N802 - THEORY's name
        return self.depth


@dataclass(frozen=True, eq=False)
class Network:
    """Weights of one network: ``weights[l]`` is ``W_{l+1}`` (``(d, m)``, ``(m, m)``…, ``(m, K)``).

    ``biases[l]`` (length ``L-1``, each ``(m_l,)``) when the problem has biases;
    ``gamma``/``alpha`` (each ``(m,)``) when it has batch norm.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None = None
    gamma: np.ndarray | None = None
    alpha: np.ndarray | None = None


def as_network(weights: Sequence[np.ndarray] | Network) -> Network:
    if isinstance(weights, Network):
        return weights
    return Network(weights=tuple(np.asarray(W, dtype=np.float64) for W in weights))


class Status(str, Enum):
    """How much an :class:`Optimum`'s ``objective`` is worth.

    - ``EXACT``: a closed form of THEORY §1–§6; ``objective`` is P* to round-off and
      ``lower_bound == objective``.
    - ``CERTIFIED``: a numerical solution whose certified relative duality gap
      ``(objective − lower_bound)/|objective|`` is within the solver's tolerance (THEORY §2, §10);
      P* is reported as ``objective``.
    - ``BRACKET``: P* is only bracketed, ``lower_bound ≤ P* ≤ objective`` (an iteration cap was
      reached, or only a sample of the activation patterns was used). Never report it as P*.
    """

    EXACT = "exact"
    CERTIFIED = "certified"
    BRACKET = "bracket"


@dataclass(frozen=True, eq=False)
class Optimum:
    """The optimum of a problem, or a certified bracket on it (THEORY §1–§7, §10).

    Fields (typed; no module reads keys from ``info``):

    - ``objective``: P* (``EXACT``/``CERTIFIED``) or the upper end of the bracket (``BRACKET``);
      ``weights``/``network`` realise it (``objective(p, opt.network) == opt.objective``).
    - ``family``: the canonical name of the closed form / program used (the names ``solve``
      documents; ``"relu_two_layer"`` for THEORY §10).
    - ``status``: :class:`Status`.
    - ``lower_bound``: a certified lower bound on P* (``== objective`` for ``EXACT``; required
      otherwise). ``rel_gap = (objective − lower_bound)/|objective|`` is derived from it.
    - ``dual``: the optimal (or certifying) dual variable ``(n, K)`` where one exists.
    - ``m_star``: number of active first-layer neurons of the returned network — the width of
      the optimal network FOUND, minimal only where a closed form proves it (the rank of
      ``W_1`` for linear nets, the number of active paths for THEORY §3, non-zero blocks for §10)
      or :func:`solvers.min_width.min_width` does (two-layer ReLU without biases).
    - ``directions``: ``(d, m_star)`` unit first-layer directions of those neurons (linear nets:
      an orthonormal basis of ``W_1``'s column space), ``None`` where no prediction exists (BN).
    - ``p_star_kind``: ``"attained"`` (a finite network reaches P*), ``"infimum"`` (only
      approached, e.g. hidden biases paying a constant offset with a vanishing bias-only neuron)
      or ``None`` (the solver does not say; :func:`solvers.solve.p_star_kind` infers it).
    - ``info``: free-form extras for display only.
    """

    objective: float
    weights: list[np.ndarray]
    family: str
    status: Status = Status.EXACT
    lower_bound: float | None = None
    rel_gap: float = 0.0
    dual: np.ndarray | None = None
    network: Network | None = None
    m_star: int | None = None
    directions: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    p_star_kind: str | None = None

    def __post_init__(self) -> None:
        status = Status(self.status)  # accepts the string values too; ValueError otherwise
        obj = float(self.objective)
        if self.lower_bound is None:
            if status is not Status.EXACT:
                raise ValueError(
                    f"lower_bound: a {status.value} optimum needs a certified lower bound"
                )
            lower = obj
        else:
            lower = float(self.lower_bound)
        if status is Status.EXACT and lower != obj:
            raise ValueError(
                f"lower_bound: an exact optimum has lower_bound == objective, got {lower!r} != {obj!r}"
            )
        if lower - obj > 1e-12 * abs(obj):
            raise ValueError(f"lower_bound {lower!r} exceeds the objective {obj!r}")
        rel = (obj - lower) / max(abs(obj), np.finfo(float).tiny)
        if self.rel_gap not in (0.0, rel) and abs(self.rel_gap - rel) > 1e-12 * max(1.0, abs(rel)):
            raise ValueError(
                f"rel_gap {self.rel_gap!r} disagrees with (objective − lower_bound)/|objective| = {rel!r}"
            )
        if self.p_star_kind not in (None, "attained", "infimum"):
            raise ValueError(
                f"p_star_kind must be 'attained', 'infimum' or None, got {self.p_star_kind!r}"
            )
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "objective", obj)
        object.__setattr__(self, "lower_bound", lower)
        object.__setattr__(self, "rel_gap", float(rel))
        if self.network is None:
            object.__setattr__(self, "network", Network(weights=tuple(self.weights)))
        if self.m_star is not None:
            object.__setattr__(self, "m_star", int(self.m_star))
        if self.directions is not None:
            dirs = np.asarray(self.directions, dtype=np.float64)
            if dirs.ndim != 2:
                raise ValueError(f"directions must be a (d, m*) array, got shape {dirs.shape}")
            if self.m_star is not None and dirs.shape[1] != self.m_star:
                raise ValueError(
                    f"directions has {dirs.shape[1]} columns but m_star = {self.m_star}"
                )
            object.__setattr__(self, "directions", dirs)

    @property
    def is_exact(self) -> bool:
        """``objective`` may be reported as P* (``EXACT`` or ``CERTIFIED``)."""
        return self.status is not Status.BRACKET


def require_problem(p: object) -> Problem:
    """``p`` itself if it is a :class:`Problem`; ``ValueError`` naming the type otherwise."""
    if not isinstance(p, Problem):
        raise ValueError(f"p must be a solvers.Problem, got {type(p).__name__}")
    return p


def optimal_width(p: Problem, needed: int) -> int:
    """Width of a closed-form network: the smallest that works (``needed``, at least 1) unless
    ``p.width`` is set; ``NotCovered`` when ``p.width`` is too small for the optimum."""
    needed = max(int(needed), 1)
    if p.width is None:
        return needed
    if p.width < needed:
        raise NotCovered(f"width {p.width} is below the rank {needed} the optimum needs")
    return int(p.width)


def _activate(problem: Problem, A: np.ndarray) -> np.ndarray:
    return np.maximum(A, 0.0) if problem.activation == "relu" else A


def _check_shapes(problem: Problem, net: Network) -> None:
    Ws = net.weights
    if len(Ws) != problem.depth:
        raise ValueError(f"weights must hold depth={problem.depth} matrices, got {len(Ws)}")
    rows = problem.d
    for i, W in enumerate(Ws):
        W2 = W if W.ndim == 2 else W.reshape(-1, 1)
        if W2.shape[0] != rows:
            raise ValueError(f"weights[{i}] has {W2.shape[0]} rows, expected {rows}")
        rows = W2.shape[1]
    if rows != problem.K:
        raise ValueError(f"weights[-1] has {rows} columns, expected K={problem.K}")
    if problem.bias and (net.biases is None or len(net.biases) != problem.depth - 1):
        raise ValueError(
            "biases: the problem has bias=True, give depth-1 hidden-layer bias vectors"
        )
    if problem.batchnorm and (net.gamma is None or net.alpha is None):
        raise ValueError(
            "gamma/alpha: the problem has batchnorm=True, give both BN parameter vectors"
        )


def last_hidden(problem: Problem, weights: Sequence[np.ndarray] | Network) -> np.ndarray:
    """Features after the last hidden activation, shape ``(n, m)`` (``f(X) = H W_L``)."""
    net = as_network(weights)
    _check_shapes(problem, net)
    H = problem.X
    L = problem.depth
    for l in range(L - 1):
        A = H @ net.weights[l]
        if problem.bias:
            A = A + np.asarray(net.biases[l], dtype=np.float64)
        if problem.batchnorm and l == L - 2:
            A = A - A.mean(axis=0, keepdims=True)
            std = np.sqrt((A * A).mean(axis=0, keepdims=True) + BN_EPS)
            A = np.divide(A, std, out=np.zeros_like(A), where=std > 0) * net.gamma + net.alpha
        H = _activate(problem, A)
    return H


def forward(problem: Problem, weights: Sequence[np.ndarray] | Network) -> np.ndarray:
    """``f(X)`` of THEORY §0, shape ``(n, K)``, in float64."""
    net = as_network(weights)
    out = last_hidden(problem, net) @ net.weights[-1]
    return out if out.ndim == 2 else out[:, None]


def regulariser(problem: Problem, weights: Sequence[np.ndarray] | Network) -> float:
    """``(β/2) Σ ‖W_l‖²`` (with batch norm: ``(β/2)(‖γ‖² + ‖α‖² + ‖W_L‖²)``)."""
    net = as_network(weights)
    if problem.batchnorm:
        sq = float(np.sum(net.gamma**2) + np.sum(net.alpha**2) + np.sum(net.weights[-1] ** 2))
    else:
        sq = float(sum(np.sum(np.asarray(W) ** 2) for W in net.weights))
    return 0.5 * problem.beta * sq


def objective(problem: Problem, weights: Sequence[np.ndarray] | Network) -> float:
    """THEORY §0: ``½‖f(X) − Y‖_F² + (β/2) Σ_l ‖W_l‖_F²`` — the one definition, in float64."""
    R = forward(problem, weights) - problem.Y
    return 0.5 * float(np.sum(R * R)) + regulariser(problem, weights)
