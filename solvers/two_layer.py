"""Two-layer ReLU networks on ANY data: the convex program over activation patterns (THEORY §10).

Problem (THEORY §0, L = 2, ReLU, K = 1, optional unregularised hidden biases):

    P* = min  ½‖Σ_j a_j (X w_j + b_j)_+ − y‖² + (β/2) Σ_j (‖w_j‖² + a_j²).

**Convex program** (Pilanci & Ergen 2020). Over all activation patterns ``D = diag(1[X̃z ≥ 0])``
(``X̃ = X`` without bias, ``X̃ = [X, 1]`` and ``z = (u, b)`` with bias)

    P* = min_{z_j ∈ K_j}  ½‖Σ_j s_j D_j X̃ z_j − y‖² + β Σ_j ‖z_j,u‖,
    K_j = {z : (2D_j − I) X̃ z ≥ 0},  s_j ∈ {+1, −1} (both signs of every pattern),

(the norm is on the X-part ``u`` only: biases are unregularised). On ``K_j``,
``D_j X̃ z = (X̃ z)_+``, so every block is a neuron: first layer ``u/√‖u‖``, bias ``b/√‖u‖``,
output ``s√‖u‖`` (cost ``β‖u‖``). m* = number of non-zero blocks after merging blocks with
the same direction and sign (exact: ``(X̃(z+z'))_+ = (X̃z)_+ + (X̃z')_+`` for ``z' ∝ z``).
A block with ``u = 0`` and ``b > 0`` (bias only, pattern ``D = I``) is a free constant: it is
realised by one neuron with zero first layer, bias ``c/a`` and output ``a`` with ``a`` so small
that its cost ``βa²/2`` is 1e-14·½‖y‖² (the infimum is then not attained exactly).

**Dual and certificate.** ``P* ≥ ½‖y‖² − ½‖λ − y‖²`` for every ``λ`` (centred, ``1ᵀλ = 0``,
when there are biases) with ``c(λ) = max_{‖u‖≤1, b} |λᵀ(Xu + b)_+| ≤ β``. On the cone of pattern
``j`` the function is linear, ``c(λ) = max_j max_{z∈K_j, ‖z_u‖≤1} ±gᵀz`` with ``g = X̃ᵀD_jλ``.
Per pattern and sign, by Lagrange duality (weak duality suffices; :mod:`solvers.arrangement`
computes ``c(λ)`` exactly this way, one cone per cell),

    max_{z∈K, ‖z‖≤1} gᵀz  ≤  ‖g + Aᵀμ‖            for EVERY μ ≥ 0,   A = (2D − I)X̃  (no bias),

with equality at the optimal μ (Moreau: the left side is ``‖Π_K(g)‖``); with bias the free ``b``
adds the equality ``g_b + a_bᵀμ = 0`` and the bound ``‖g_u + A_uᵀμ‖ + M |g_b + a_bᵀμ|`` with
``M = max_i ‖x_i‖`` holds for every μ ≥ 0 (fix the equality by moving one μ_i, which changes the
norm by at most ``M`` per unit; ``|b| ≤ M`` on the cone). With any upper bound ``c̄ ≥ c(λ)`` the
certificate ``α λᵀy − ½α²‖λ‖²``, ``α = clip(λᵀy/‖λ‖², 0, β/c̄)`` is a valid lower bound on P*.

**Modules.** The arrangement (patterns, the exact ``c(λ)`` per pattern):
:mod:`solvers.arrangement`; the program on a set of blocks (conic solve, polish, read-out):
:mod:`solvers.relu_program`; the column generation that certifies it, and the bracket beyond
the cap: :mod:`solvers.column_generation`; the exact separation oracle beyond the cap (a MIP):
:mod:`solvers.separation`. This module is the public entry (:func:`solve_two_layer`,
:func:`two_layer_certificate`) and re-exports the public names the others define.

Bad input: ``n = 1``, a zero row of ``X`` without bias, ``K ≠ 1``, depth ≠ 2, linear activation,
batch norm → :class:`NotCovered` naming the reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from solvers.arrangement import (
    MAX_PATTERNS,
    Geometry,
    cached_geometry,
    dual_norm,
    dual_norm_exact,
    enumerate_patterns,
    geometry,
    pattern_count_bound,
    relaxed_dual_norm,
    sample_patterns,
    scaled_dual,
)
from solvers.column_generation import (
    FAMILY,
    TIME_LIMIT,
    TOL,
    TOL_BEYOND_CAP,
    State,
    local_network,
    make_optimum,
    solve_on,
)
from solvers.problem import Network, NotCovered, Optimum, Problem, as_network, forward, objective
from solvers.relu_program import CONSTANT_COST, caratheodory, pad_width

__all__ = [
    "FAMILY",
    "MAX_PATTERNS",
    "TIME_LIMIT",
    "TOL",
    "TOL_BEYOND_CAP",
    "cached_geometry",
    "caratheodory",
    "dual_norm",
    "dual_norm_exact",
    "enumerate_patterns",
    "geometry",
    "local_network",
    "pattern_count_bound",
    "relaxed_dual_norm",
    "sample_patterns",
    "solve_two_layer",
    "solve_two_layer_path",
    "two_layer_certificate",
    "warm_starts",
]


def _check_problem(p: object) -> Problem:
    if not isinstance(p, Problem):
        raise ValueError(f"p must be a solvers.Problem, got {type(p).__name__}")
    if p.depth != 2:
        raise NotCovered(f"depth {p.depth}: the pattern program covers two-layer networks only")
    if p.activation != "relu":
        raise NotCovered(f"activation {p.activation!r}: the pattern program is for relu")
    if p.K != 1:
        raise NotCovered(f"K = {p.K} outputs: the pattern program of THEORY §10 needs K = 1")
    if p.batchnorm:
        raise NotCovered("batchnorm=True: the pattern program has no batch norm")
    return p


_WARM: contextvars.ContextVar[tuple] = contextvars.ContextVar("two_layer_warm", default=())


@contextlib.contextmanager
def warm_starts(networks: Sequence[Network]) -> Iterator[None]:
    """Within the block, :func:`solve_two_layer` calls that pass no ``warm_start`` (e.g. through
    :func:`solvers.solve`) use ``networks`` (a sweep trial's SGD and polished networks). Only
    networks of the problem being solved may be given (their neurons become blocks)."""
    token = _WARM.set(tuple(networks))
    try:
        yield
    finally:
        _WARM.reset(token)


def solve_two_layer(
    p: Problem,
    *,
    tol: float = TOL,
    cap: int = MAX_PATTERNS,
    patterns: np.ndarray | None = None,
    seed: int = 0,
    warm_start: Sequence[Network] | None = None,
    time_limit: float = TIME_LIMIT,
    shor_time: float | None = None,
) -> Optimum:
    """P*, the optimal network and its certificate for a two-layer ReLU problem (THEORY §10).

    Args:
        p: depth 2, relu, K = 1, no batch norm; any X (no zero row without bias), n ≥ 2.
        tol: certified relative duality gap to reach (beyond the cap at least
            ``TOL_BEYOND_CAP`` = 1e-6: the MIP oracle and the conic solve stall near 1e-8).
        cap: largest a-priori pattern count to enumerate; beyond it patterns are sampled.
        patterns: (P, n) boolean patterns to use instead of the enumeration (BRACKET result).
        seed: for sampled patterns.
        warm_start: known networks of the problem (SGD's, a polish's; default: those of an
            enclosing :func:`warm_starts` block; networks of other shapes are ignored): their
            neurons join the
            first working set, and beyond the cap a bracket's upper end is at most the best of
            them after L-BFGS (:func:`local_network`).
        time_limit: seconds beyond the cap (column generation priced by the cone maxima of
            sampled and neighbouring cells and the local search, the exact check by the MIP
            oracle of :mod:`solvers.separation`); on expiry a BRACKET
            whose ends are both rigorous. Within the cap the enumeration decides (no limit).
        shor_time: seconds for the Shor SDP bound (:mod:`solvers.shor`) at a bracket's end,
            after ``time_limit`` (default ``min(SHOR_TIME, time_limit)``; 0: none).

    Returns:
        :class:`Optimum` (family ``"relu_two_layer"``): ``objective`` the §0 objective of
        ``network`` (a real network, so an upper bound on P*), ``lower_bound`` a certified lower
        bound, ``rel_gap`` their relative distance, ``status`` CERTIFIED when all patterns were
        enumerated (or, beyond the cap, the MIP oracle proved ``c(λ)``) and ``rel_gap ≤ tol``,
        else BRACKET (``info["not_covered"]`` says why);
        ``m_star`` active neurons, ``directions`` (d, m*) their unit first-layer weights.

    Raises:
        NotCovered: outside the family, n = 1, or a zero row without bias.
    """
    p = _check_problem(p)
    if patterns is None and seed == 0:
        geo = cached_geometry(p.X, p.bias, cap)  # shared with two_layer_certificate
    else:
        geo = geometry(p.X, p.bias, cap=cap, patterns=patterns, seed=seed)
    y = p.Y[:, 0]
    if not np.any(y != 0) or (p.bias and np.allclose(y, y.mean(), rtol=0, atol=0)):
        return _trivial(p, geo)
    warm = _WARM.get() if warm_start is None else warm_start
    warm = [w for w in warm if _fits(p, w)]
    if not geo.exact:  # the oracle's check and the conic solve reach ~1e-8, not 1e-8 certain
        tol = max(tol, TOL_BEYOND_CAP)
    return solve_on(
        p, State(geo), tol=tol, warm_start=warm, time_limit=time_limit, shor_time=shor_time
    )


def _fits(p: Problem, net: Network | Sequence[np.ndarray]) -> bool:
    """A two-layer network of ``p``'s shapes (``d`` inputs, one output, biases iff ``p.bias``)."""
    net = as_network(net)
    return (
        len(net.weights) == 2
        and net.weights[0].shape[0] == p.d
        and net.weights[1].shape == (net.weights[0].shape[1], 1)
        and (net.biases is not None) == bool(p.bias)
    )


def _trivial(p: Problem, geo: Geometry) -> Optimum:
    """y = 0 (or, with bias, y constant): the zero network (plus the constant neuron) is optimal;
    P* = 0 and the certificate is 0 as well."""
    c = float(p.Y[0, 0]) if geo.bias else 0.0
    W2 = np.zeros((1, 1))
    b1 = np.zeros(1)
    if c != 0.0:
        a = np.sqrt(2.0 * CONSTANT_COST * 0.5 * p.n * c * c / p.beta)
        W2[0, 0] = np.sign(c) * a
        b1[0] = abs(c) / a
    net = Network(weights=(np.zeros((p.d, 1)), W2), biases=(b1,) if geo.bias else None)
    net = pad_width(p, net, 1 if c != 0.0 else 0)
    val = objective(p, net)
    return make_optimum(p, geo, net, val, 0.0, 0, np.zeros((p.d, 0)), TOL, {"trivial": True})


def solve_two_layer_path(
    p: Problem, betas: Sequence[float], *, tol: float = TOL, cap: int = MAX_PATTERNS
) -> list[Optimum]:
    """:func:`solve_two_layer` for every β of ``betas`` on the same (X, y, bias): one pattern
    enumeration, and each solve starts from the working set of the previous β (warm start).
    Each result equals the single solve up to the certified tolerance (not bit for bit: the
    working sets differ)."""
    p = _check_problem(p)
    geo = geometry(p.X, p.bias, cap=cap)
    state = State(geo)
    out = []
    for beta in betas:
        pb = dataclasses.replace(p, beta=float(beta))
        y = pb.Y[:, 0]
        if not np.any(y != 0):
            out.append(_trivial(pb, geo))
        else:
            out.append(solve_on(pb, state, tol=tol))
    return out


def two_layer_certificate(
    p: Problem, weights: Sequence[np.ndarray] | Network, *, cap: int = MAX_PATTERNS
) -> float:
    """A lower bound on P* from any two-layer ReLU network (THEORY §7, §10): the residual
    ``λ = y − f(X)`` (centred with bias) scaled by the best ``α ∈ [0, β/c̄(λ)]``, value
    ``αλᵀy − ½α²‖λ‖²``. ``c̄`` is the exact ``c(λ)`` over every cell of the arrangement when
    it can be enumerated (tight at the optimal network: KKT), else :func:`relaxed_dual_norm`
    (valid, loose). Never above P*.

    Raises:
        NotCovered: not a two-layer ReLU problem with K = 1 (see :func:`solve_two_layer`).
    """
    p = _check_problem(p)
    net = as_network(weights)
    y = p.Y[:, 0]
    lam = y - forward(p, net)[:, 0]
    if p.bias:
        lam = lam - lam.mean()
    if p.n < 2 or (not p.bias and not np.all(np.any(p.X != 0, axis=1))):
        cbar = relaxed_dual_norm(p.X, lam, bias=p.bias)
    else:
        cbar, _ = dual_norm(p.X, lam, bias=p.bias, cap=cap)
    return scaled_dual(lam, y, p.beta, cbar)
