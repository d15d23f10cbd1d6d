"""Dual lower bounds and certificates for every problem of docs/theory.md (§7), never above P*.

Weak duality. For any residual-like ``Λ ∈ R^{n×K}`` and any network,
``½‖f − Y‖² ≥ ⟨Λ, Y − f⟩ − ½‖Λ‖²``, so ``objective ≥ ⟨Λ,Y⟩ − ½‖Λ‖²`` whenever
``⟨Λ, f(X)⟩ ≤ regulariser`` for every network; for the last two layers this is the constraint
``‖Λᵀ σ(H u)‖ ≤ β`` for all unit ``u`` (``H`` = input of the second-to-last layer). For a fixed
direction ``Λ`` the best feasible multiple is ``α = clip(⟨Λ,Y⟩/‖Λ‖², 0, β/C(Λ))`` where
``C(Λ) ≥ sup_u ‖Λᵀσ(Hu)‖`` is any valid constant; the bound is ``α⟨Λ,Y⟩ − ½α²‖Λ‖²``.

Constants ``C`` used (each a proof that ``αΛ`` is dual feasible; if several hold, the smallest):

- linear, L = 2: ``C = ‖XᵀΛ‖₂`` (exact; tight at the optimum, THEORY §2).
- ReLU, no bias: for ``g = σ(Xu) ≥ 0``, ``‖g‖ ≤ ‖X‖₂`` and
  (a) ``‖Λᵀg‖ ≤ ‖Λ‖₂‖g‖`` (spectral), (b) ``|λ_kᵀg| ≤ max(‖λ_k+‖, ‖λ_k−‖)‖g‖`` per column
  (sign split, THEORY §7 for K = 1), so ``C = ‖X‖₂ · min(‖Λ‖₂, (Σ_k max(‖λ_k+‖,‖λ_k−‖)²)^{1/2})``.
- unregularised hidden biases: a neuron ``σ(Xu + b)`` with ``b → ∞`` forces ``Λᵀ1 = 0``, so Λ is
  centred (``P = I − 11ᵀ/n``). Linear: the problem is the bias-free one on ``(PX, PY)``.
  ReLU, ``d = 1`` (THEORY §5): ``b ↦ ‖Λᵀσ(±x + b)‖`` is the norm of a piecewise-affine map with
  kinks at the data, hence convex between kinks, 0 below them and ``‖Λᵀx‖`` above: the exact
  ``C = max_{s=±1, j} ‖Λᵀ(s(x − x_j))_+‖``. ReLU, ``d > 1``: with ``Λᵀ1 = 0``,
  ``Λᵀσ(z + b) = Λᵀ(σ(z + b) − σ(z̄ + b)1)`` and ReLU is 1-Lipschitz, so ``C = ‖Λ‖₂‖PX‖₂``.
- batch norm (THEORY §6, any depth): the BN layer outputs ``γ ã + α 1`` with ``ã ⊥ 1``,
  ``‖ã‖ = √n`` (or 0), and only ``(γ, α)`` and ``W_L`` are regularised, so every BN neuron
  input lies in the ball of radius ``√n``: ``C = √n ‖Λ‖₂`` (linear) and the ReLU relaxations
  above with ``√n`` for ``‖X‖₂``. The resulting weight-free bound
  ``Σ_k h_{β/√n}(σ_k(Y))`` is §6's P* whenever §6's closed form applies.

Depth L ≥ 3 (weight independent). Let ``t = (Π_{l ≤ L−2} ‖W_l‖_F)^{1/(L−2)}``; by AM–GM
``(β/2)Σ_{l≤L−2}‖W_l‖² ≥ (β/2)(L−2)t²``. The input ``H`` of layer L−1 satisfies
``‖H‖₂ ≤ ‖X‖₂ t^{L−2}``: for linear layers since ``‖W‖₂ ≤ ‖W‖_F``; for ReLU layers because
``‖σ(AW)u‖ ≤ Σ_j |u_j| ‖A w_j‖ ≤ ‖A‖₂‖W‖_F`` (note: NOT ``‖A‖₂‖W‖₂`` — ReLU can increase
the operator norm, so Frobenius-bounded layers are what makes the bound valid; with hidden biases
the same holds for ``‖P H‖₂`` because ReLU is 1-Lipschitz). Hence
``P* ≥ LB = inf_{t>0} [D(t) + (β/2)(L−2)t²]`` where ``D(t)`` is the two-layer dual above with
``β`` replaced by ``β / t^{L−2}`` (linear, THEORY §7: ``D(t) = min_W ½‖XW − Y‖² + (β/t^{L−2})‖W‖_*``;
ReLU K = 1: ``h_γ(‖y_+‖) + h_γ(‖y_−‖)``, ``γ = β/(t^{L−2}‖X‖₂)``; ReLU K > 1: the max of the
spectral relaxation ``Σ_k h_γ(σ_k(Y))`` and the column sign split
``max_{Σ c_k² ≤ γ²} Σ_k h_{c_k}(‖y_k+‖) + h_{c_k}(‖y_k−‖)``). ReLU, no bias, also the
data-aware dual of :class:`_DeepReluDual` (K = 1: :func:`deep_relu_dual`; K > 1 column by
column: :func:`_deep_relu_columns`).

Making ``inf_t`` rigorous. Each ``D`` is evaluated as the dual value of an explicit feasible
``Λ`` (a valid lower bound ``D_lo(t) ≤ D(t)`` whatever the accuracy of the primal solve that
produced the direction), and the true ``D`` is non-increasing in ``t``. So on ``[a, b]``,
``D(t) + c t² ≥ D_lo(b) + c a²``; on ``(0, t_lo]`` it is ``≥ D_lo(t_lo)``; on ``[t_hi, ∞)``
``≥ c t_hi²``. We report the MINIMUM of these interval bounds over a cover of ``(0, ∞)``,
refined by branch and bound until it is within ~1e-13 (relative) of the best sampled value —
never the value at an approximate minimiser (which would sit above the infimum).

When no sufficient condition is available the bound falls back to 0 (valid: the objective is
non-negative) — this happens only for zero data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from solvers.arrangement import relaxed_dual_norm
from solvers.nuclear import NuclearNorm, opnorm
from solvers.problem import Network, NotCovered, Optimum, Problem, forward, objective
from solvers.scalar import huber, scaled_dual_value

__all__ = [
    "DeepDual",
    "certificate",
    "certified_gap",
    "deep_relu_dual",
    "deep_relu_dual_applies",
    "dual_bound",
    "two_layer_dual",
]


# --------------------------------------------------------------------------- small helpers
def _direction_value(Lam: np.ndarray, Y: np.ndarray, beta: float, C: float) -> float:
    """Dual value of the best feasible multiple of ``Lam`` given the constant ``C(Λ)``."""
    a = float(np.sum(Lam * Y))
    b = float(np.sum(Lam * Lam))
    alpha_max = np.inf if C <= 0 else beta / C
    return float(scaled_dual_value(a, b, alpha_max))


def _centre(A: np.ndarray) -> np.ndarray:
    return A - A.mean(axis=0, keepdims=True)


def _sign_split_norm(Lam: np.ndarray) -> float:
    """``(Σ_k max(‖λ_k+‖, ‖λ_k−‖)²)^{1/2}``."""
    pos = np.linalg.norm(np.maximum(Lam, 0.0), axis=0)
    neg = np.linalg.norm(np.maximum(-Lam, 0.0), axis=0)
    return float(np.sqrt(np.sum(np.maximum(pos, neg) ** 2)))


def _relu_constant(Lam: np.ndarray, Xnorm: float) -> float:
    return Xnorm * min(opnorm(Lam), _sign_split_norm(Lam))


def _relu_bias_1d_constant(Lam: np.ndarray, x: np.ndarray) -> float:
    """Exact ``sup_{s=±1, b} ‖Λᵀσ(s x + b)‖`` for centred Λ: attained at the data kinks."""
    best = 0.0
    for s in (1.0, -1.0):
        z = s * x
        G = np.maximum(z[None, :] - z[:, None], 0.0)  # row j: (z − z_j)_+
        best = max(best, float(np.max(np.linalg.norm(G @ Lam, axis=1))))
    return best


# --------------------------------------------------------------- ReLU / BN closed-form duals
def _spectral_dual(sig: np.ndarray, gammas: np.ndarray) -> np.ndarray:
    """``max_{‖Λ‖₂ ≤ γ} ⟨Λ,Y⟩ − ½‖Λ‖² = Σ_k h_γ(σ_k(Y))`` for each γ."""
    return np.sum(huber(sig[None, :], gammas[:, None]), axis=1)


def _sign_split_dual(Y: np.ndarray, gammas: np.ndarray) -> np.ndarray:
    """``max Σ_k h_{c_k}(a_k) + h_{c_k}(b_k)`` over ``Σ c_k² ≤ γ²`` (a feasible c ⇒ valid)."""
    a = np.linalg.norm(np.maximum(Y, 0.0), axis=0)
    b = np.linalg.norm(np.maximum(-Y, 0.0), axis=0)
    gammas = np.asarray(gammas, dtype=np.float64)
    if Y.shape[1] == 1:
        return huber(a[0], gammas) + huber(b[0], gammas)
    lo, hi = np.minimum(a, b), np.maximum(a, b)

    def c_of(nu: np.ndarray) -> np.ndarray:  # KKT: (a−c)_+ + (b−c)_+ = 2νc
        nu = nu[:, None]
        c2 = hi / (1.0 + 2.0 * nu)
        c1 = (a + b) / (2.0 + 2.0 * nu)
        return np.where(hi - lo - 2.0 * nu * lo >= 0.0, c2, c1)

    nu_lo = np.zeros_like(gammas)
    nu_hi = np.full_like(gammas, np.linalg.norm(hi)) / np.maximum(gammas, 1e-300)
    for _ in range(100):
        mid = 0.5 * (nu_lo + nu_hi)
        too_big = np.linalg.norm(c_of(mid), axis=1) > gammas
        nu_lo = np.where(too_big, mid, nu_lo)
        nu_hi = np.where(too_big, nu_hi, mid)
    c = c_of(nu_hi)
    norm = np.linalg.norm(c, axis=1)
    c = c * np.minimum(1.0, gammas / np.where(norm > 0, norm, 1.0))[:, None]  # feasible
    return np.sum(huber(a[None, :], c) + huber(b[None, :], c), axis=1)


def _relu_dual_fn(Y: np.ndarray, *, centred: bool) -> Callable[[np.ndarray], np.ndarray]:
    """γ ↦ ``(len(γ), J)`` lower bounds on ``max ⟨Λ,Y⟩ − ½‖Λ‖²`` over Λ with
    ``sup_{g≥0,‖g‖≤1}‖Λᵀg‖ ≤ γ``: one column per relaxation, each concave non-decreasing in γ.

    ``centred``: biases present, only the spectral relaxation of the centred problem is valid.
    """
    sig = np.linalg.svd(Y, compute_uv=False)
    if centred:
        return lambda g: _spectral_dual(sig, np.atleast_1d(g))[:, None]
    return lambda g: np.stack(
        [_spectral_dual(sig, np.atleast_1d(g)), _sign_split_dual(Y, np.atleast_1d(g))], axis=1
    )


# ------------------------------------------------------------------ linear: certified D(μ)
class _LinearDual:
    """Certified lower bounds on ``D(μ) = min_W ½‖XW − Y‖² + μ‖W‖_*`` (THEORY §2, §7).

    Every value is the dual value ``α⟨Λ,Y⟩ − ½α²‖Λ‖²`` of an explicit feasible ``αΛ``
    (``‖XᵀαΛ‖₂ ≤ μ``) with ``Λ = Y − XW`` for a primal candidate ``W`` from
    :class:`solvers.nuclear.NuclearNorm` (exact where a closed form exists, warm-started FISTA
    otherwise). Directions are stored as triples ``(⟨Λ,Y⟩, ‖Λ‖², ‖XᵀΛ‖₂)`` and re-used at
    every μ (each one is a valid bound for every μ).
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.nn = NuclearNorm(X, Y)
        self.K, self.iso, self.mu_max = self.nn.K, self.nn.iso, self.nn.mu_max
        yy = self.nn.yy
        self.triples: list[tuple[float, float, float]] = [(yy, yy, self.mu_max)]  # Λ = Y
        self._G: np.ndarray | None = None  # FISTA warm start

    @property
    def exact(self) -> bool:
        """Every μ has a closed-form primal (no FISTA)."""
        return self.nn.r == 0 or self.iso or self.K == 1

    def solve(self, mu: float, *, max_iter: int = 3000, rtol: float = 1e-12) -> None:
        """Add the direction of a (near-)optimal primal at ``mu``."""
        if self.nn.r == 0 or mu >= self.mu_max:
            return
        found = self.nn.exact(mu)
        if found is not None:
            self.triples.append(self.nn.direction(found[0]))
            return
        Gp, Gd, *_ = self.nn.fista(mu, gap_tol=rtol, max_iter=max_iter, start=self._G)
        self._G = Gp
        self.triples.append(self.nn.direction(Gp))
        self.triples.append(self.nn.direction(Gd))

    def values(self, mus: np.ndarray) -> np.ndarray:
        """``max`` over stored directions of the scaled dual value at each μ (valid for all μ)."""
        return _triple_values(self.triples, mus)


def _triple_values(triples: list[tuple[float, float, float]], mus: np.ndarray) -> np.ndarray:
    """``max`` over directions ``(⟨Λ,Y⟩, ‖Λ‖², C(Λ))`` of the scaled dual value at each μ,
    shape ``(len(mus), 1)``; each direction is a valid bound for every μ."""
    T = np.asarray(triples)
    a, b, c = T[:, 0][None, :], T[:, 1][None, :], T[:, 2][None, :]
    mus = np.atleast_1d(mus)[:, None]
    with np.errstate(divide="ignore"):
        amax = np.where(c > 0, mus / np.where(c > 0, c, 1.0), np.inf)
    return np.max(scaled_dual_value(a, b, amax), axis=1)[:, None]


DEEP_ORACLE_SECONDS = 2.0  # SCIP time limit per one-signed oracle call beyond the enumeration
DEEP_EVALUATIONS = 400  # cutting-plane steps (each: one outer QP, c̄ at λ₊ and λ₋, one inner QP)
DEEP_SECONDS = 15.0  # wall-clock cap of one deep bound's optimiser (checked between steps)
DEEP_RTOL = 1e-4  # stop at μ once the best valid value is within this of the outer QP's value
DEEP_T_ROUNDS = 30  # re-optimisations at the minimising t of ``_inf_over_t`` (at most)
DEEP_CACHE = 8  # deep bounds remembered (a trial asks for the same one twice)
SUBSET_MAX_SUPPORT = 18  # c(w) by the 2^k subsets of w's support up to this k (else the oracle)
_SUBSET_CHUNK = 1 << 14  # subsets per block of the enumeration


def _subset_norm(X: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact ``c(w) = max_{‖u‖≤1} wᵀ(Xu)_+`` for ``w ≥ 0`` with at most ``SUBSET_MAX_SUPPORT``
    positive entries, and a maximiser ``u`` (unit).

    For ``w ≥ 0``, ``wᵀ(Xu)_+ = max_S Σ_{i∈S} w_i x_iᵀu`` over subsets ``S`` of the support
    (``S`` = the points with ``x_iᵀu > 0`` attains it, every other ``S`` is below it), so
    ``c(w) = max_S ‖Xᵀ(w∘1_S)‖``: the largest of ``2^k`` quadratic forms ``sᵀGs``, ``G =
    A Aᵀ``, ``A`` = the rows ``w_i x_i``. Round-off: the returned value is the largest of the
    Gram and the direct norm at the best ``S``, times ``1 + 8k·eps`` (every form is computed to
    a relative ``~k·eps``)."""
    idx = np.flatnonzero(w > 0)
    k = idx.size
    if k == 0:
        return 0.0, np.zeros(X.shape[1])
    A = w[idx, None] * X[idx]
    G = A @ A.T
    best, best_s = -1.0, np.zeros(k)
    bits = 1 << np.arange(k)
    for lo in range(0, 1 << k, _SUBSET_CHUNK):
        codes = np.arange(lo, min(lo + _SUBSET_CHUNK, 1 << k))
        S = ((codes[:, None] & bits[None, :]) > 0).astype(np.float64)
        vals = np.einsum("ij,jk,ik->i", S, G, S)
        j = int(np.argmax(vals))
        if vals[j] > best:
            best, best_s = float(vals[j]), S[j]
    g = A.T @ best_s
    ng = float(np.linalg.norm(g))
    value = max(np.sqrt(max(best, 0.0)), ng) * (1.0 + 8.0 * k * np.finfo(float).eps)
    return value, (g / ng if ng > 0 else np.zeros(X.shape[1]))


@dataclasses.dataclass(frozen=True)
class DeepDual:
    """The data-aware deep ReLU bound of :class:`_DeepReluDual` (L ≥ 3, K = 1, no bias).

    ``lower``: the certified lower bound on P* (every direction scaled to feasibility with the
    oracle's ``c̄``). ``limit``: an upper estimate of the best bound this relaxation can give with
    the exact ``c`` (``inf_t [D(β/t^{L−2}) + (β/2)(L−2)t²] ≤ V(μ_t) + (β/2)(L−2)t²`` for the
    outer cutting-plane QP's value ``V ≥ D``, minimised over the ``t`` where it was solved;
    to Clarabel's tolerance, a reported number, not a certificate): ``limit − lower`` is what
    more optimisation of the dual point could still gain, ``objective − limit`` is the
    relaxation's own looseness plus the network's distance from P*. ``t``: the minimising t.
    ``steps``: cutting-plane steps; ``oracle_exact``: every ``c̄`` matched a maximiser found
    (to 1e-6 relative); ``converged``: stopped by ``DEEP_RTOL`` rather than a budget.
    """

    lower: float
    limit: float
    t: float
    steps: int
    oracle_exact: bool
    converged: bool
    seconds: float


_DEEP_MEMO: dict[tuple, DeepDual | float] = {}


def _memo_key(p: Problem, residual: np.ndarray | None) -> tuple:
    r = None if residual is None else np.asarray(residual, dtype=np.float64).tobytes()
    return (p.X.tobytes(), p.Y.tobytes(), p.Y.shape, p.L, p.beta, r)


def _remember(key: tuple, value: DeepDual | float) -> None:
    if len(_DEEP_MEMO) >= DEEP_CACHE:
        _DEEP_MEMO.pop(next(iter(_DEEP_MEMO)))
    _DEEP_MEMO[key] = value


class _DeepReluDual:
    """The data-aware dual of the last two layers of a deep ReLU net (L ≥ 3, K = 1, no bias).

    **Claim.** Let ``c(w) = max_{‖u‖≤1} wᵀ(Xu)_+`` for ``w ≥ 0`` (the scalar two-layer norm at
    a non-negative vector) and ``C(λ) = max(c(λ_+), c(λ_−))``. For every network with
    ``t^{L−2} = Π_{l≤L−2}‖W_l‖_F`` and every unit ``u``, ``|λᵀσ(H_{L−2}u)| ≤ t^{L−2} C(λ)``.

    **Proof.** Write ``H_0 = X``, ``H_l = σ(H_{l−1}W_l)``; ``H_l ≥ 0`` for l ≥ 1. For l ≥ 2,
    ``σ(H_{l−1}w) ≤ |H_{l−1}w| ≤ Σ_j |w_j| h_{l−1,j}`` entrywise, and ``h_{1,j} =
    ‖w_{1,j}‖σ(Xŵ_j)`` (ŵ unit). Unrolling, ``|H_{L−2}u| ≤ Σ_j ρ_j σ(Xŵ_j)`` (for L = 3
    directly: ``|σ(XW_1)u| ≤ Σ_j |u_j|‖w_{1,j}‖σ(Xŵ_j)``) with ``ρ_j = ‖w_{1,j}‖ v_j``,
    ``v = |W_2|⋯|W_{L−2}||u|``, so ``Σ_j ρ_j ≤ ‖W_1‖_F‖v‖ ≤ Π_l‖W_l‖_F‖u‖`` (Cauchy–Schwarz and
    ``‖|W|‖₂ ≤ ‖W‖_F``). With ``g = σ(H_{L−2}u) ≥ 0``: ``λᵀg ≤ λ_+ᵀg ≤ λ_+ᵀ|H_{L−2}u| ≤
    Σ_j ρ_j λ_+ᵀσ(Xŵ_j) ≤ t^{L−2} c(λ_+)``, and ``−λᵀg ≤ t^{L−2} c(λ_−)`` alike. ∎

    Hence, as in the module docstring, ``P* ≥ inf_t D(β/t^{L−2}) + (β/2)(L−2)t²`` with
    ``D(μ) = max{λᵀy − ½‖λ‖² : C(λ) ≤ μ}`` — concave and non-decreasing in μ, so
    ``_inf_over_t`` applies. ``C(λ) ≤ ‖X‖₂ max(‖λ_+‖, ‖λ_−‖)``: this ``D`` is never below the
    sign-split bound ``h_γ(‖y_+‖) + h_γ(‖y_−‖)``.

    **C is a support function** (convex and positively homogeneous): for ``g ≥ 0``,
    ``λ_+ᵀg = max_{0≤s≤1} λᵀ(s∘g)``, so ``C(λ) = max{±λᵀ(s∘(Xu)_+) : ‖u‖ ≤ 1, s ∈ [0,1]ⁿ}``.
    Two consequences drive the optimiser. (1) Outer: each maximiser ``u`` found by the oracle
    gives ``g = (Xu)_+`` with ``C(λ) ≥ max(gᵀλ_+, gᵀλ_−)`` for EVERY λ, so ``{C ≤ μ}`` lies in
    ``O = {λ : gᵀλ_± ≤ μ for every cut g}`` and ``V(μ) = max_O λᵀy − ½‖λ‖² ≥ D(μ)`` (QP:
    ``p ≥ λ_+``, ``q ≥ λ_−``, ``p, q ≥ 0``, ``gᵀp ≤ μ``, ``gᵀq ≤ μ``; Clarabel). (2) Inner:
    for evaluated points with ``C̄_i ≥ C(λ_i)``, sublinearity gives ``C(Σν_iλ_i) ≤ Σν_iC̄_i``
    (ν ≥ 0), so ``max{(Σν_iλ_i)ᵀy − ½‖Σν_iλ_i‖² : ν ≥ 0, Σν_iC̄_i ≤ μ}`` is ``≤ D(μ)`` (a QP in
    ν). At a μ (:meth:`optimise`): solve the outer QP, evaluate ``c̄`` at its maximiser ``λ_k``
    (a new direction and new cuts), solve the inner QP (its combination is stored as a direction
    with the constant ``Σν_iC̄_i``, inflated for round-off), until the best valid value at μ is
    within ``DEEP_RTOL`` of ``V(μ)`` or a budget ends. Whatever the QPs return, every stored
    direction λ carries ``C̄ ≥ C(λ)`` from the oracle (or from sublinearity), so its scaled value
    is a valid lower bound on ``D`` at every μ. Directions start from ``y`` and the trained
    network's residual.

    Oracles for ``c(w)``, ``w ≥ 0``: :func:`_subset_norm` (exact) up to ``SUBSET_MAX_SUPPORT``
    positive entries, else exact enumeration, else (``mip_seconds``) SCIP's MIP of
    :func:`solvers.separation.max_relu_correlation` (``c̄`` its upper bound, exact when it
    finishes), else the sampled directions with the relaxed ``c̄``; past ``deadline`` the
    relaxed ``c̄`` (:func:`solvers.arrangement.relaxed_dual_norm`, valid, no cuts), so a step
    overruns the deadline by at most two oracle calls.
    """

    def __init__(
        self, X: np.ndarray, y: np.ndarray, *, mip_seconds: float | None = DEEP_ORACLE_SECONDS
    ) -> None:
        from solvers.vector_relu import scalar_oracle_for

        self.X, self.y = X, y
        self.Xnorm = opnorm(X)
        self.oracle, self.exact = scalar_oracle_for(X, mip_seconds=mip_seconds)
        self.triples: list[tuple[float, float, float]] = []
        self.points: list[tuple[np.ndarray, float]] = []  # (λ, C̄) evaluated by the oracle
        self.cuts: list[np.ndarray] = []
        self.outer: list[tuple[float, float]] = []  # (μ, V(μ)) of every outer QP
        self.steps = 0
        self.oracle_exact = True
        self.converged = False  # the last outer QP was within DEEP_RTOL of the best value
        self.deadline = np.inf

    def constant(self, lam: np.ndarray) -> float:
        """``C̄(λ) ≥ max(c(λ_+), c(λ_−))``; the maximisers join the cuts."""
        out = 0.0
        for w in (np.maximum(lam, 0.0), np.maximum(-lam, 0.0)):
            if not np.any(w):
                continue
            if np.count_nonzero(w) <= SUBSET_MAX_SUPPORT:
                cbar, z = _subset_norm(self.X, w)
                Z = z[None, :]
            elif time.perf_counter() > self.deadline:  # out of time: the relaxed c̄, no cuts
                cbar, Z = relaxed_dual_norm(self.X, w), np.zeros((0, self.X.shape[1]))
            else:
                cbar, Z = self.oracle(w)
            out = max(out, float(cbar))
            found = 0.0
            for z in Z:
                nz = float(np.linalg.norm(z))
                if nz > 0:
                    g = np.maximum(self.X @ (z / nz), 0.0)
                    self.cuts.append(g)
                    found = max(found, float(w @ g))
            if cbar > found * (1.0 + 1e-6):
                self.oracle_exact = False
        return out

    def add(self, lam: np.ndarray) -> float:
        C = self.constant(lam)
        self._store(lam, C)
        if C > 0:
            self.points.append((lam, C))
        return C

    def _store(self, lam: np.ndarray, C: float) -> None:
        self.triples.append((float(lam @ self.y), float(lam @ lam), C))

    def values(self, mus: np.ndarray) -> np.ndarray:
        return _triple_values(self.triples, mus)

    def optimise(self, mu: float, steps: int = DEEP_EVALUATIONS) -> bool:
        """Cutting planes on ``D(μ)`` (class docstring); True when the best valid value at μ was
        already within ``DEEP_RTOL`` of the outer QP's (nothing left to gain there), or when a
        budget is spent."""
        for step in range(steps):
            if self.steps >= DEEP_EVALUATIONS or time.perf_counter() > self.deadline:
                return True
            found = self._outer_qp(mu)
            if found is None:
                return True
            lam, V = found
            self.outer.append((mu, V))
            lo = float(self.values(np.array([mu]))[0, 0])
            self.converged = lo >= V - DEEP_RTOL * max(abs(V), 1e-300)
            if self.converged:
                return step == 0
            self.steps += 1
            before = len(self.cuts)
            self.add(lam)
            self._inner_qp(mu)
            if len(self.cuts) == before:
                return True  # no new cut: the next outer QP would repeat this one
        return False

    def _outer_qp(self, mu: float) -> tuple[np.ndarray, float] | None:
        """The maximiser and value ``V(μ) ≥ D(μ)`` over the outer set ``O`` (class docstring)."""
        if not self.cuts:
            return None
        n = self.y.size
        eye = sp.identity(n, format="csc")
        zero = sp.csc_matrix((n, n))
        G = sp.csc_matrix(np.array(self.cuts))
        m = G.shape[0]
        Zm = sp.csc_matrix((m, n))
        # x = [λ, p, q]; rows give A x + s = b with s ≥ 0
        A = sp.vstack(
            [
                sp.hstack([eye, -eye, zero]),  # p − λ ≥ 0
                sp.hstack([zero, -eye, zero]),  # p ≥ 0
                sp.hstack([-eye, zero, -eye]),  # q + λ ≥ 0
                sp.hstack([zero, zero, -eye]),  # q ≥ 0
                sp.hstack([Zm, G, Zm]),  # gᵀp ≤ μ
                sp.hstack([Zm, Zm, G]),  # gᵀq ≤ μ
            ]
        ).tocsc()
        b = np.concatenate([np.zeros(4 * n), np.full(2 * m, mu)])
        P = sp.block_diag([eye, zero, zero]).tocsc()
        q = np.concatenate([-self.y, np.zeros(2 * n)])
        x = _clarabel(P, q, A, b, nonneg=4 * n + 2 * m)
        if x is None or x.size != 3 * n:
            return None
        lam = x[:n]
        return lam, float(lam @ self.y - 0.5 * lam @ lam)

    def _inner_qp(self, mu: float) -> None:
        """Store the best valid combination ``Σν_iλ_i`` at μ (class docstring) as a direction."""
        if len(self.points) < 2:
            return
        Lam = np.array([lam for lam, _ in self.points]).T  # (n, k)
        C = np.array([c for _, c in self.points])
        n, k = Lam.shape
        # x = [ν, λ]: λ − Λν = 0, ν ≥ 0, Cᵀν ≤ μ; min ½‖λ‖² − yᵀλ
        A = sp.vstack(
            [
                sp.hstack([-sp.csc_matrix(Lam), sp.identity(n)]),
                sp.hstack([-sp.identity(k), sp.csc_matrix((k, n))]),
                sp.hstack([sp.csc_matrix(C[None, :]), sp.csc_matrix((1, n))]),
            ]
        ).tocsc()
        b = np.concatenate([np.zeros(n + k), [mu]])
        P = sp.block_diag([sp.csc_matrix((k, k)), sp.identity(n)]).tocsc()
        q = np.concatenate([np.zeros(k), -self.y])
        x = _clarabel(P, q, A, b, zero=n, nonneg=k + 1)
        if x is None:
            return
        nu = np.maximum(x[:k], 0.0)
        lam = Lam @ nu
        # C(Λν) ≤ Σν_iC̄_i in exact arithmetic; the float Λν and the sum each err by ≤ k·eps
        # times the sums of absolute terms (C is ‖X‖₂-Lipschitz)
        eps = k * np.finfo(float).eps
        bound = float(C @ nu) * (1.0 + eps) + eps * self.Xnorm * float(
            np.abs(Lam) @ nu @ np.ones(n)
        )
        if bound > 0 and np.any(lam):
            self._store(lam, bound)


def _clarabel(P, q, A, b, *, zero: int = 0, nonneg: int) -> np.ndarray | None:  # noqa: ANN001
    """Clarabel's solution of ``min ½xᵀPx + qᵀx`` s.t. ``Ax + s = b`` with the first ``zero``
    rows of ``s`` zero and the next ``nonneg`` non-negative, or None. Clarabel is imported here,
    not with this module (:func:`solvers.relu_program.clarabel_module`)."""
    from solvers.relu_program import clarabel_module

    clarabel = clarabel_module()
    cones = ([clarabel.ZeroConeT(zero)] if zero else []) + [clarabel.NonnegativeConeT(nonneg)]
    st = clarabel.DefaultSettings()
    st.verbose = False
    sol = clarabel.DefaultSolver(sp.triu(P).tocsc(), q, A, b, cones, st).solve()
    x = np.asarray(sol.x, dtype=np.float64)
    return x if np.all(np.isfinite(x)) else None


SPLIT_SAMPLES = 200  # budget splits c/μ on the unit sphere's positive orthant tried per μ (K > 1)


def _splits(K: int) -> np.ndarray:
    """Deterministic unit vectors ``s ≥ 0`` in ``R^K`` (the axes, the equal split, and
    ``SPLIT_SAMPLES`` normalised ``|N(0, I)|`` draws of a fixed generator)."""
    S = np.abs(np.random.default_rng(0).standard_normal((SPLIT_SAMPLES, K)))
    S = np.vstack([np.eye(K), np.ones((1, K)), S])
    return S / np.linalg.norm(S, axis=1, keepdims=True)


def _deep_relu_columns(p: Problem, residual: np.ndarray | None) -> float:
    """ReLU, L ≥ 3, K > 1, no bias: the data-aware dual column by column.

    For ``g = σ(H_{L−2}u) ≥ 0``, ``‖Λᵀg‖² = Σ_k (λ_kᵀg)² ≤ t^{2(L−2)} Σ_k C(λ_k)²`` by the
    K = 1 lemma (:class:`_DeepReluDual`) on each column, so ``Λ`` is feasible at ``μ`` when
    ``Σ_k C(λ_k)² ≤ μ²`` and ``D(μ) ≥ Σ_k D_k(c_k)`` for every split ``‖c‖ ≤ μ``, ``D_k`` the
    K = 1 dual of column k. Each ``D_k`` is lower-estimated by its own optimised directions
    (valid at every c); the split is the best of :func:`_splits` (any split is valid). Cutting
    planes run on each column at its share ``μ s_k`` of the minimising t's μ. Compared with
    the spectral and column sign-split bounds, and the largest kept (all valid).
    """
    key = _memo_key(p, residual)
    if key in _DEEP_MEMO:
        return _DEEP_MEMO[key]
    D_of_mu, Xnorm, Y2 = _relu_dual_of_mu(p)
    deadline = time.perf_counter() + DEEP_SECONDS
    cols = []
    R = None if residual is None else np.asarray(residual, dtype=np.float64).reshape(p.n, p.K)
    for k in range(p.K):
        col = _DeepReluDual(p.X, p.Y[:, k])
        col.deadline = deadline
        col.add(p.Y[:, k])
        if R is not None and np.any(R[:, k]):
            col.add(R[:, k])
        cols.append(col)
    S = _splits(p.K)

    def split_values(mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mus = np.atleast_1d(np.asarray(mus, dtype=np.float64))
        total = np.zeros((mus.size, S.shape[0]))
        for k, col in enumerate(cols):
            c = (mus[:, None] * S[None, :, k]).reshape(-1)
            total += col.values(c).reshape(mus.size, S.shape[0])
        best = np.argmax(total, axis=1)
        return total[np.arange(mus.size), best], S[best]

    def both(mus: np.ndarray) -> np.ndarray:
        return np.hstack([D_of_mu(mus), split_values(mus)[0][:, None]])

    def refine(mu: float) -> bool:
        share = split_values(np.array([mu]))[1][0]
        done = [
            sk <= 0 or col.optimise(mu * float(sk)) for col, sk in zip(cols, share, strict=True)
        ]
        return all(done)

    out = _deep_bound(p, both, Xnorm, Y2, refine=refine, refine_rounds=DEEP_T_ROUNDS)[0]
    _remember(key, out)
    return out


def deep_relu_dual_applies(p: Problem) -> bool:
    """ReLU, L ≥ 3, K = 1, no bias, no batch norm: :func:`deep_relu_dual`'s family."""
    return p.activation == "relu" and p.L >= 3 and p.K == 1 and not p.bias and not p.batchnorm


def deep_relu_dual(p: Problem, residual: np.ndarray | None = None) -> DeepDual:
    """The optimised data-aware bound for ReLU, L ≥ 3, K = 1, no bias (:class:`DeepDual`).

    Starts from ``y`` and ``residual`` (the trained network's ``y − f(X)``); cutting planes at the
    minimising t of ``_inf_over_t`` (:meth:`_DeepReluDual.optimise`) until the bound is within
    ``DEEP_RTOL`` of the relaxation's limit there, or ``DEEP_EVALUATIONS`` steps, or
    ``DEEP_SECONDS``. Deterministic unless an oracle call or the wall-clock cap runs out of time
    (then still valid). Results are remembered (``DEEP_CACHE``) for repeated calls.
    """
    if not deep_relu_dual_applies(p):
        raise NotCovered(
            "the optimised deep bound is for ReLU nets of depth >= 3 with K = 1, no bias and no "
            "batch norm"
        )
    y = p.Y[:, 0]
    r = None if residual is None else np.asarray(residual, dtype=np.float64).reshape(-1)
    key = _memo_key(p, r)
    if key in _DEEP_MEMO:
        return _DEEP_MEMO[key]
    t0 = time.perf_counter()
    D_of_mu, Xnorm, Y2 = _relu_dual_of_mu(p)
    deep = _DeepReluDual(p.X, y)
    deep.deadline = t0 + DEEP_SECONDS
    deep.add(y)
    if r is not None and np.any(r):
        deep.add(r)

    def both(mus: np.ndarray) -> np.ndarray:
        return np.hstack([D_of_mu(mus), deep.values(mus)])

    lower, t = _deep_bound(p, both, Xnorm, Y2, refine=deep.optimise, refine_rounds=DEEP_T_ROUNDS)
    c, q = 0.5 * p.beta * (p.L - 2), p.L - 2
    limit = min([V + c * (p.beta / mu) ** (2.0 / q) for mu, V in deep.outer], default=0.5 * Y2)
    out = DeepDual(
        lower=lower,
        limit=limit,
        t=t,
        steps=deep.steps,
        oracle_exact=deep.oracle_exact,
        converged=deep.converged,
        seconds=time.perf_counter() - t0,
    )
    _remember(key, out)
    return out


# -------------------------------------------------------------- rigorous inf over t > 0
def _interval_bounds(
    a: np.ndarray, b: np.ndarray, Da: np.ndarray, Db: np.ndarray, c: float, beta: float, q: int
) -> np.ndarray:
    """Lower bounds on ``min_{t∈[a,b]} D(β/t^q) + c t²`` for each interval (rows).

    ``Da``/``Db`` (intervals × components) are lower estimates of components ``D_j`` that are
    each concave and non-decreasing in ``μ = β/t^q``; ``D ≥ max_j D_j``. Two valid bounds per
    component, the larger kept: monotonicity, ``D_j(b) + c a²``; concavity, the chord through the
    end values is below ``D_j`` on the interval and ``Db + s(β t^{−q} − μ_b) + c t²`` is convex in
    ``t`` for slope ``s ≥ 0`` with its minimiser in closed form (clipped to ``[a, b]``).
    """
    a2, b2 = a[:, None], b[:, None]
    crude = Db + c * a2 * a2
    mu_a, mu_b = beta * a2 ** (-q), beta * b2 ** (-q)
    dmu = mu_a - mu_b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(dmu > 0, (Da - Db) / np.where(dmu > 0, dmu, 1.0), 0.0)
        ts = np.clip((q * np.maximum(s, 0.0) * beta / (2.0 * c)) ** (1.0 / (q + 2)), a2, b2)
    chord = np.where(s > 0, Db + s * (beta * ts ** (-q) - mu_b) + c * ts * ts, Da + c * a2 * a2)
    return np.max(np.maximum(crude, chord), axis=1)


def _inf_over_t(
    D_lo: Callable[[np.ndarray], np.ndarray],
    c: float,
    beta: float,
    q: int,
    t_lo: float,
    t_hi: float,
    *,
    rtol: float = 1e-13,
    grid: int = 48,
    max_rounds: int = 100,
    max_active: int = 16,
) -> tuple[float, float]:
    """A rigorous lower bound on ``inf_{t>0} D(β/t^q) + c t²`` (see ``_interval_bounds``).

    ``D_lo(ts)`` returns ``(len(ts), J)`` lower estimates of the concave components.
    Returns ``(bound, t_best)``; ``t_best`` minimises the sampled ``max_j D_lo + c t²``.
    """
    ts = np.geomspace(t_lo, t_hi, grid)
    Ds = np.asarray(D_lo(ts), dtype=np.float64)
    F = np.max(Ds, axis=1) + c * ts * ts
    i = int(np.argmin(F))
    U, t_best = float(F[i]), float(ts[i])
    a, b, Da, Db = ts[:-1].copy(), ts[1:].copy(), Ds[:-1].copy(), Ds[1:].copy()
    tails = min(float(np.max(Ds[0])), c * t_hi * t_hi)  # (0, t_lo] and [t_hi, ∞)
    lb = _interval_bounds(a, b, Da, Db, c, beta, q)
    for _ in range(max_rounds):
        tol = rtol * max(abs(U), 1e-300)
        active = np.flatnonzero(lb < U - tol)
        if active.size == 0:
            break
        active = active[np.argsort(lb[active])[:max_active]]
        mid = np.sqrt(a[active] * b[active])
        Dm = np.asarray(D_lo(mid), dtype=np.float64)
        Fm = np.max(Dm, axis=1) + c * mid * mid
        j = int(np.argmin(Fm))
        if Fm[j] < U:
            U, t_best = float(Fm[j]), float(mid[j])
        # left halves replace the active intervals, right halves are appended
        a_r, b_r, Da_r, Db_r = mid, b[active], Dm, Db[active]
        b[active], Db[active] = mid, Dm
        lb[active] = _interval_bounds(a[active], b[active], Da[active], Db[active], c, beta, q)
        lb_r = _interval_bounds(a_r, b_r, Da_r, Db_r, c, beta, q)
        a, b = np.concatenate([a, a_r]), np.concatenate([b, b_r])
        Da, Db = np.concatenate([Da, Da_r]), np.concatenate([Db, Db_r])
        lb = np.concatenate([lb, lb_r])
    return min(float(np.min(lb)), tails), t_best


def _deep_bound(
    p: Problem,
    D_of_mu: Callable[[np.ndarray], np.ndarray],
    Xnorm: float,
    Ynorm2: float,
    *,
    refine: Callable[[float], bool | None] | None = None,
    refine_rounds: int = 2,
) -> tuple[float, float]:
    """``inf_t [D(β/t^{L−2}) + (β/2)(L−2)t²]`` with ``D`` given as a function of ``μ = β/t^{L−2}``."""
    q = p.L - 2
    c = 0.5 * p.beta * q
    half = 0.5 * Ynorm2
    if half == 0.0:
        return 0.0, 1.0
    if Xnorm == 0.0:
        return half, 0.0
    # μ ≥ ‖X‖₂‖Y‖ makes W = 0 optimal (D = ½‖Y‖²); c t_lo² negligible; c t_hi² ≥ ‖Y‖².
    t_lo = min((p.beta / (Xnorm * np.sqrt(Ynorm2) * 1.01)) ** (1.0 / q), np.sqrt(1e-15 * half / c))
    t_hi = max(np.sqrt(2.0 * half / c) * 1.01, 2.0 * t_lo)

    def D_lo(ts: np.ndarray) -> np.ndarray:
        return D_of_mu(p.beta / np.asarray(ts) ** q)

    bound, t_best = _inf_over_t(D_lo, c, p.beta, q, t_lo, t_hi)
    if refine is not None:  # ``refine(μ)`` True: nothing left to gain at μ
        for _ in range(refine_rounds):
            done = refine(p.beta / t_best**q)
            bound, t_best = _inf_over_t(D_lo, c, p.beta, q, t_lo, t_hi)
            if done:
                break
    return bound, t_best


def _linear_data(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    return (_centre(p.X), _centre(p.Y)) if p.bias else (p.X, p.Y)


def _linear_dual_of_mu(
    p: Problem, *, path: bool = True
) -> tuple[_LinearDual, Callable[[np.ndarray], np.ndarray], bool]:
    """The certified linear ``D(μ)``; the bool says whether fresh solves happen at every μ."""
    X, Y = _linear_data(p)
    lin = _LinearDual(X, Y)
    fresh = lin.exact

    def D_of_mu(mus: np.ndarray) -> np.ndarray:
        mus = np.atleast_1d(mus)
        if fresh:
            for mu in mus:
                lin.solve(float(mu))
        return lin.values(mus)

    if path and not fresh:  # FISTA path on a grid of μ (warm starts, large μ first)
        for mu in np.geomspace(max(lin.mu_max, 1e-300), max(lin.mu_max, 1e-300) * 1e-4, 24):
            lin.solve(float(mu), max_iter=400, rtol=1e-9)
    return lin, D_of_mu, fresh


def _relu_dual_of_mu(p: Problem) -> tuple[Callable[[np.ndarray], np.ndarray], float, float]:
    """ReLU ``D`` as a function of ``μ`` (the effective β of the last two layers), ‖X‖₂, ‖Y‖²."""
    if p.bias:
        X, Y = _centre(p.X), _centre(p.Y)
    else:
        X, Y = p.X, p.Y
    Xnorm = opnorm(X)
    fn = _relu_dual_fn(Y, centred=p.bias)
    if Xnorm == 0.0:
        return (
            (lambda mus: np.full((np.atleast_1d(mus).size, 1), 0.5 * float(np.sum(Y * Y)))),
            0.0,
            float(np.sum(Y * Y)),
        )
    return (lambda mus: fn(np.atleast_1d(mus) / Xnorm)), Xnorm, float(np.sum(Y * Y))


# ----------------------------------------------------------------------------- public API
def _weight_free_bound(p: Problem, residual: np.ndarray | None = None) -> float:
    """The bound that depends on the problem only (BN, L ≥ 3, and L = 2 closed-form duals);
    ReLU, L ≥ 3, no bias: also the data-aware dual (:class:`_DeepReluDual`; K > 1 column by
    column, :func:`_deep_relu_columns`), with the trained network's ``residual`` as one of its
    directions when given."""
    if p.batchnorm:
        g = np.array([p.beta / np.sqrt(p.n)])
        if p.activation == "linear":
            return float(_spectral_dual(np.linalg.svd(p.Y, compute_uv=False), g)[0])
        return float(np.max(_relu_dual_fn(p.Y, centred=False)(g)))
    if p.activation == "linear":
        lin, D_of_mu, fresh = _linear_dual_of_mu(p, path=p.L > 2)
        if p.L == 2:
            lin.solve(p.beta, max_iter=2000, rtol=1e-12)
            return float(np.max(lin.values(np.array([p.beta]))))
        X, Y = _linear_data(p)

        def refine(mu: float) -> None:
            lin.solve(mu, max_iter=5000, rtol=1e-13)

        return _deep_bound(
            p, D_of_mu, opnorm(X), float(np.sum(Y * Y)), refine=None if fresh else refine
        )[0]
    D_of_mu, Xnorm, Y2 = _relu_dual_of_mu(p)
    if p.L == 2:
        if p.bias and p.d == 1:
            return (
                0.0  # the exact 1-D constraint has no closed-form maximiser; weights give the bound
            )
        return float(np.max(D_of_mu(np.array([p.beta]))))
    if deep_relu_dual_applies(p):
        return deep_relu_dual(p, residual).lower
    if not p.bias:  # K > 1 (batch norm returned above)
        return _deep_relu_columns(p, residual)
    return _deep_bound(p, D_of_mu, Xnorm, Y2)[0]


def two_layer_dual(p: Problem, mu: float) -> float:
    """A certified lower bound on the two-layer dual ``D`` with β replaced by ``mu`` (THEORY §7,
    §9's ``D(t)`` at ``μ = β/t^{L−2}``), independent of the depth and of any weights.

    Linear: the dual value of the (near-)optimal residual of ``min_W ½‖XW − Y‖² + μ‖W‖_*``
    (exact to round-off where :class:`~solvers.nuclear.NuclearNorm` has a closed form, FISTA to
    1e-13 otherwise); ReLU: the relaxations of the module docstring (``h_γ(‖y_+‖) + h_γ(‖y_−‖)``,
    ``γ = μ/‖X‖₂`` for K = 1). With biases the centred problem (module docstring).
    """
    mu = float(mu)
    if not np.isfinite(mu) or mu <= 0:
        raise ValueError(f"mu must be a finite number > 0, got {mu!r}")
    if p.activation == "linear":
        lin, _, _ = _linear_dual_of_mu(p, path=False)
        lin.solve(mu, max_iter=20000, rtol=1e-13)
        return float(np.max(lin.values(np.array([mu]))))
    D_of_mu, _, _ = _relu_dual_of_mu(p)
    return float(np.max(D_of_mu(np.array([mu]))))


def _two_layer_direction_bound(p: Problem, Lam: np.ndarray) -> float:
    """Scaled dual value of the direction ``Lam`` for an L = 2 problem without batch norm."""
    X = p.X
    if p.bias:
        Lam = _centre(Lam)
        X = _centre(X)
    if p.activation == "linear":
        C = opnorm(X.T @ Lam)
    elif p.bias:
        C = _relu_bias_1d_constant(Lam, p.X[:, 0]) if p.d == 1 else opnorm(X) * opnorm(Lam)
    else:
        C = _relu_constant(Lam, opnorm(X))
    return _direction_value(Lam, p.Y, p.beta, C)


def dual_bound(p: Problem, weights: Sequence[np.ndarray] | Network) -> float:
    """A valid lower bound on P* from weak duality alone (module docstring; THEORY §7).

    L = 2 (no batch norm): the best of the residual direction ``Λ = Y − f(X)`` scaled into the
    dual feasible set and the weight-free relaxed dual. L ≥ 3 or batch norm: the weight-free
    bound (``weights`` are validated only). Raises ``ValueError`` if ``weights`` do not fit ``p``.
    """
    f = forward(p, weights)  # validates shapes
    deep_relu = p.L >= 3 and p.activation == "relu" and not p.batchnorm
    best = _weight_free_bound(p, p.Y - f if deep_relu else None)
    if p.L == 2 and not p.batchnorm:
        best = max(best, _two_layer_direction_bound(p, p.Y - f))
    return max(best, 0.0)


def certificate(
    p: Problem, weights: Sequence[np.ndarray] | Network, *, optimum: Optimum | None = None
) -> float:
    """The best lower bound available: ``max(dual_bound, P*)`` (THEORY §7).

    Two-layer ReLU, K = 1 (THEORY §10): also the residual scaled by the exact ``c(λ)`` over the
    activation patterns (:func:`solvers.two_layer.two_layer_certificate`; tight at the optimal
    network, moves with the weights); the pattern program itself is not run here (pass its
    result as ``optimum`` to add its certified ``lower_bound``).

    The optimum contributes its certified ``Optimum.lower_bound``: P* itself for the closed
    forms (``Status.EXACT``), the dual value of a numerical solve (``CERTIFIED``/``BRACKET``,
    e.g. FISTA for L = 2 linear on general data) whose primal value sits above P*. If
    ``solve`` returns an optimal dual variable for an L = 2 problem its scaled dual value is
    added as a certified bound. Families ``solve`` does not cover (``NotCovered``) get the
    duality bound alone. ``optimum``: a ``solve(p)`` result the caller already has.
    """
    best = dual_bound(p, weights)
    from solvers.solve import (  # lazy: imports every family
        closed_form,
        pattern_program_applies,
        vector_program_applies,
    )

    if pattern_program_applies(p):  # THEORY §10: exact c(λ) over the activation patterns
        from solvers.two_layer import two_layer_certificate

        try:
            best = max(best, two_layer_certificate(p, weights))
        except NotCovered:
            pass
    if vector_program_applies(p):  # K > 1: exact c_K(Λ) where an exact scalar oracle exists
        from solvers.vector_relu import scalar_oracle_for, vector_certificate

        oracle, exact = scalar_oracle_for(p.X)
        if exact:  # (whitened closed form or the enumeration; a sampled oracle would be loose)
            best = max(best, vector_certificate(p, weights, oracle=oracle))
    opt = optimum
    if opt is None:
        try:  # closed forms only: §10's program is not run inside a certificate
            opt = closed_form(p)
        except NotCovered:
            return best
    best = max(best, float(opt.lower_bound))
    if opt.dual is not None and p.L == 2 and not p.batchnorm:
        dual = np.asarray(opt.dual, dtype=np.float64).reshape(p.n, -1)
        if dual.shape == p.Y.shape:
            best = max(best, _two_layer_direction_bound(p, dual))
    return best


def certified_gap(p: Problem, weights: Sequence[np.ndarray] | Network) -> float:
    """``objective(p, weights) − certificate(p, weights)`` (≥ 0 up to round-off)."""
    return objective(p, weights) - certificate(p, weights)
