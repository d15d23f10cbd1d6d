"""``solve(p)``: detect which closed form of docs/theory.md covers a problem and return its optimum.

Detection lives in :mod:`solvers.detect` (tolerances and tests, computed once per problem and
cached, so the solver ``solve`` dispatches to does not detect again):

- whitened: ``‖XXᵀ − I_n‖_F ≤ WHITENED_TOL`` (1e-10); partial isometry: every singular value
  of X within ``WHITENED_TOL`` of 0 or 1 (THEORY §0/§1);
- rank-one data: ``σ_2(X) ≤ RANK_ONE_TOL·σ_1(X)`` (1e-10), ``X ≈ c aᵀ`` with ``a`` the top
  right singular vector (THEORY §4);
- one-hot-like targets: every entry ``≥ 0`` and at most one non-zero per row (non-negative
  columns with disjoint supports, THEORY §3);
- depth, activation, bias, batch norm: read from the :class:`~solvers.problem.Problem`.

Dispatch order (first family that applies; each solver re-checks its own assumptions):

=====================  =====================================================  ==========================
problem                families tried                                         THEORY
=====================  =====================================================  ==========================
bias=True              none: no closed form except the 1-D spline limit        §5
batchnorm=True         ``bn_linear`` / ``bn_relu`` / ``bn_relu_onehot``        §6
linear                 ``linear_whitened`` (partial isometry, any L, K),       §1, §4, §2
                       ``linear_rank_one`` (K = 1), ``linear_l2_general``
                       (L = 2), ``linear_deep_k1`` (K = 1, L ≥ 3)
relu                   ``relu_whitened`` (K = 1) / ``relu_whitened_onehot``,   §3, §4
                       ``relu_rank_one`` (K = 1)
relu, L = 2, other     ``relu_two_layer`` (K = 1, any bias: the pattern        §10
                       program), ``relu_two_layer_vector`` (K > 1, no bias:
                       column generation with the exact c_K(Λ) bound,
                       :mod:`solvers.vector_relu`; CERTIFIED or BRACKET)
=====================  =====================================================  ==========================

When nothing applies :class:`~solvers.problem.NotCovered` names the failing assumption(s).
"""

from __future__ import annotations

import numpy as np

from solvers.detect import facts
from solvers.linear import solve_linear_deep_k1, solve_linear_l2_general, solve_linear_whitened
from solvers.problem import NotCovered, Optimum, Problem, require_problem

__all__ = [
    "closed_form",
    "p_star_kind",
    "pattern_program_applies",
    "solve",
    "vector_program_applies",
]


def _targets_word(Y: np.ndarray) -> str:
    if np.any(Y < 0):
        return "signed"
    return "non-negative overlapping"


def _solve_linear(p: Problem) -> Optimum:
    found = facts(p)
    if found.partial_isometry:
        return solve_linear_whitened(p)
    if p.K == 1 and found.rank_one is not None:
        from solvers.rank_one import solve_rank_one

        return solve_rank_one(p)
    if p.L == 2:
        return solve_linear_l2_general(p)
    if p.K == 1:
        return solve_linear_deep_k1(p)
    raise NotCovered(
        f"linear depth {p.L} with K={p.K} outputs on data that is not whitened (not a partial "
        f"isometry): a Schatten-2/{p.L} quasi-norm problem with no closed form (THEORY §2)"
    )


def _solve_relu(p: Problem) -> Optimum:
    found = facts(p)
    if found.whitened:
        if p.K > 1 and not found.onehot:
            raise NotCovered(
                f"relu with K={p.K} {_targets_word(p.Y)} targets: not covered (THEORY §3 needs "
                "K = 1 or one-hot targets)"
            )
        from solvers.relu import solve_relu_whitened

        return solve_relu_whitened(p)
    if found.rank_one is not None:
        if p.K > 1:
            raise NotCovered(
                f"relu on rank-one data with K={p.K} outputs: not covered (THEORY §4 needs K = 1)"
            )
        from solvers.rank_one import solve_rank_one

        return solve_rank_one(p)
    err = f"‖XXᵀ − I‖_F = {found.whitening_error:.3e}" if p.n <= p.d else f"n = {p.n} > d = {p.d}"
    raise NotCovered(
        f"relu on data that is neither whitened ({err}; THEORY §3) nor rank one "
        f"(σ_2/σ_1 = {found.rank_one_ratio:.3e}; THEORY §4): no closed form"
    )


def solve(p: Problem) -> Optimum:
    """The exact optimum of ``p`` by the closed form that covers it (see the module table).

    Raises:
        ValueError: ``p`` is not a :class:`~solvers.problem.Problem`.
        NotCovered: no closed form applies; the message names the failing assumption.
    """
    require_problem(p)
    if p.bias:
        if p.L == 2 and p.K > 1 and p.activation == "relu" and not p.batchnorm:
            raise NotCovered(
                f"K={p.K} outputs with bias=True: two-layer ReLU nets with biases are covered for "
                "K = 1 (THEORY §10's pattern program); the vector-output program "
                "(solvers.vector_relu, K > 1) has no hidden biases"
            )
        if pattern_program_applies(p):  # THEORY §10: the convex program over patterns
            from solvers.two_layer import solve_two_layer

            return solve_two_layer(p)
        if p.L >= 3 and p.activation == "relu" and not p.batchnorm:
            outputs = f" and K={p.K} outputs" if p.K > 1 else ""
            raise NotCovered(
                f"relu depth {p.L}{outputs} with bias=True: THEORY §10's pattern program (biases "
                f"allowed) is for depth 2{' and K = 1' if p.K > 1 else ''}, and no finite exact "
                "program is known for L ≥ 3 on general data (THEORY §7 gives a certificate only)"
            )
        raise NotCovered("bias=True: no closed form except the 1-D spline limit β → 0 (THEORY §5)")
    if p.batchnorm:
        from solvers.batchnorm import solve_batchnorm

        return solve_batchnorm(p)
    if p.activation == "linear":
        return _solve_linear(p)
    try:
        return _solve_relu(p)  # the closed forms win where they apply
    except NotCovered as exc:
        if vector_program_applies(p):
            from solvers.vector_relu import solve_vector_relu

            return solve_vector_relu(p)
        if not pattern_program_applies(p):
            found = facts(p)
            if p.L >= 3 and p.K > 1 and (found.whitened or found.rank_one is not None):
                raise NotCovered(  # the data has a closed form for K = 1: K is what fails
                    f"relu depth {p.L} with K={p.K} outputs: {exc}; the vector-output program "
                    "(solvers.vector_relu, K > 1) is for depth 2"
                ) from exc
            if p.L >= 3:
                raise NotCovered(
                    f"relu depth {p.L} on general data: no finite exact program is known for "
                    f"L ≥ 3 (THEORY §7 gives a certificate only); {exc}"
                ) from exc
            raise
    from solvers.two_layer import solve_two_layer

    return solve_two_layer(p)


def pattern_program_applies(p: Problem) -> bool:
    """L = 2, ReLU, K = 1, no batch norm: THEORY §10's program (:mod:`solvers.two_layer`)."""
    return p.L == 2 and p.K == 1 and p.activation == "relu" and not p.batchnorm


def vector_program_applies(p: Problem) -> bool:
    """L = 2, ReLU, K > 1, no bias, no batch norm: :mod:`solvers.vector_relu`."""
    return p.L == 2 and p.K > 1 and p.activation == "relu" and not p.bias and not p.batchnorm


def closed_form(p: Problem) -> Optimum:
    """:func:`solve` restricted to the closed forms (NotCovered where only §10's program would
    apply): cheap, used by certificates."""
    require_problem(p)
    if vector_program_applies(p):
        return _solve_relu(p)
    if pattern_program_applies(p):
        if p.bias:
            raise NotCovered("bias=True: no closed form except the 1-D spline limit (THEORY §5)")
        return _solve_relu(p)
    return solve(p)


def p_star_kind(p: Problem, opt: Optimum) -> str:
    """Whether a finite network attains ``opt``'s P* (``"attained"``) or only approaches it
    (``"infimum"``).

    With unregularised hidden biases and no output bias (THEORY §0, §5), a constant offset of
    the targets is paid by a neuron with zero first layer, bias ``c/a`` and output ``a → 0``: its
    cost ``βa²/2`` vanishes only in the limit, so P* is an infimum no finite network attains
    whenever the optimum uses such a neuron (:mod:`solvers.two_layer` returns it with ``a`` so
    small that its cost is 1e-14·½‖y‖²). Read from :attr:`Optimum.p_star_kind` when the solver
    says; otherwise "infimum" exactly when ``opt.network`` has a bias-only neuron (zero
    first-layer column, non-zero bias and output), else "attained" (closed forms and bias-free
    networks realise P* with finitely many neurons).
    """
    if opt.p_star_kind is not None:
        return opt.p_star_kind
    net = opt.network
    if not p.bias or net is None or net.biases is None or len(net.weights) != 2:
        return "attained"
    W1 = np.asarray(net.weights[0], dtype=np.float64)
    W2 = np.asarray(net.weights[1], dtype=np.float64).reshape(W1.shape[1], -1)
    b = np.asarray(net.biases[0], dtype=np.float64)
    constant = (np.linalg.norm(W1, axis=0) == 0) & (b != 0) & (np.linalg.norm(W2, axis=1) > 0)
    return "infimum" if bool(np.any(constant)) else "attained"
