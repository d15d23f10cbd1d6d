"""Data detection — the one home of the tests that decide which closed form of docs/theory.md applies.

Tolerances (the only definitions in the package):

- :data:`WHITENED_TOL` (1e-10): X is **whitened** iff ``‖XXᵀ − I_n‖_F ≤ WHITENED_TOL``
  (THEORY §0, §3; implies ``n ≤ d``); X is a **partial isometry** iff every singular value is
  within ``WHITENED_TOL`` of 0 or of 1 and at least one is 1 (THEORY §0/§1; whitened X is one).
- :data:`RANK_ONE_TOL` (1e-10): X is **rank one** iff ``σ_2(X) ≤ RANK_ONE_TOL·σ_1(X)`` and
  ``X ≠ 0`` (THEORY §4).
- :data:`RANK_TOL` (1e-12): the numerical **rank of X** counts the singular values
  ``> RANK_TOL·σ_1(X)`` (the row space kept by :mod:`solvers.nuclear` and :mod:`solvers.two_layer`).
- :data:`BN_RANK_TOL` (1e-8): the batch-norm input is **rich** iff
  ``σ_{n−1}(CX) > BN_RANK_TOL·σ_1(CX)``, ``C = I − 11ᵀ/n`` (THEORY §6).
- targets are **one-hot** iff every entry is ``≥ 0`` and every row has at most one non-zero
  (non-negative columns with disjoint supports, THEORY §3, §6).

**Cheap detection.** The exact whitening test needs the n×n Gram matrix (``O(n²d)``), far more
than a closed form costs (one SVD of the d×K matrix ``XᵀY``). :class:`DataFacts` therefore
screens first with ``k = PROBES`` fixed Gaussian probes ``Z`` (seed :data:`PROBE_SEED`) at a
cost of ``O(ndk)``, with ``A = XXᵀ − I`` (whitened) or ``A = XXᵀX − X`` (partial isometry):

- *certain negative*: ``‖A z_j‖ > 2·bound·‖z_j‖`` for a probe, where ``bound ≥ ‖A‖₂`` holds for
  every matrix that passes the exact test (``WHITENED_TOL``; ``(1+τ)τ(2+τ)`` for a partial
  isometry) — a proof (the factor 2 absorbs round-off), no error possible;
- *fast positive*: ``‖AZ‖_F²/k ≤ SCREEN_C·τ_A²`` with ``τ_A`` the smallest ``‖A‖_F`` of a matrix
  that FAILS the exact test (``WHITENED_TOL``; ``τ(1 − τ²)`` for a partial isometry, since
  ``s|s² − 1| ≥ τ(1 − τ²)`` whenever ``dist(s, {0, 1}) > τ``);
- otherwise the exact test decides.

False-pass probability. ``‖AZ‖_F²/k = (1/k) Σ_j Σ_i λ_i² g_ij²`` (``λ_i`` the singular values
of A, ``g`` i.i.d. N(0, 1)); with ``w_i = λ_i²/‖A‖_F²``, ``E exp(−s Σ_i w_i g_i²) =
Π_i (1 + 2sw_i)^{−1/2} ≤ (1 + 2s)^{−1/2}``, and the Chernoff bound gives, for any A that fails
the exact test (so ``c := SCREEN_C τ_A²/‖A‖_F² ≤ SCREEN_C``),

    P(fast positive) ≤ (c·e^{1−c})^{k/2} ≤ (SCREEN_C·e)^{k/2} = (1e-4·e)^4 ≈ 5.5e-15,

over the draw of Z, for any X chosen independently of the fixed probes. A false pass can
therefore only happen for a matrix within a factor ~1e-2 of the tolerance in a direction the
probes miss; the rigorous outcomes (negative, exact) are exact. Data made by
:mod:`solvers.data` has ``‖XXᵀ − I‖_F ≈ 1e-14`` and takes the fast path.
``exact=True`` on :func:`is_whitened` / :func:`is_partial_isometry` skips the screen.

:func:`facts` caches one :class:`DataFacts` per :class:`~solvers.problem.Problem` (its X and Y
are read-only), so ``solve`` and the solver it dispatches to detect once.
"""

from __future__ import annotations

import weakref
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from solvers.problem import Problem

__all__ = [
    "BN_RANK_TOL",
    "PROBES",
    "PROBE_SEED",
    "RANK_ONE_TOL",
    "RANK_TOL",
    "SCREEN_C",
    "WHITENED_TOL",
    "DataFacts",
    "facts",
    "false_pass_bound",
    "is_onehot",
    "is_partial_isometry",
    "is_whitened",
    "isometry_defect",
    "rank_one_factor",
    "whitening_error",
]

WHITENED_TOL = 1e-10  # ‖XXᵀ − I‖_F for whitened; |σ_i − 1| or σ_i for a partial isometry
RANK_ONE_TOL = 1e-10  # σ_2/σ_1 for rank one
RANK_TOL = 1e-12  # σ_i ≤ RANK_TOL·σ_1 counts as zero in the numerical rank of X (row space)
BN_RANK_TOL = 1e-8  # σ_{n−1}(CX)/σ_1(CX) for the rich batch-norm input of THEORY §6
PROBES = 8  # k: Gaussian probes of the screen
SCREEN_C = 1e-4  # fast positive when the probe estimate of ‖A‖_F² is ≤ SCREEN_C · τ_A²
PROBE_SEED = 0x5EED


def false_pass_bound(probes: int = PROBES, c: float = SCREEN_C) -> float:
    """``(c·e^{1−c})^{k/2}``: the largest probability that the screen passes a matrix that
    fails the exact test (module docstring)."""
    return float((c * np.exp(1.0 - c)) ** (probes / 2.0))


@lru_cache(maxsize=32)
def _probes(rows: int, k: int, seed: int) -> np.ndarray:
    Z = np.random.default_rng(seed).standard_normal((rows, k))
    Z.setflags(write=False)
    return Z


def _screen(AZ: np.ndarray, Z: np.ndarray, bound: float, tau_fail: float, c: float) -> bool | None:
    """True (fast positive), False (certain negative) or None (run the exact test)."""
    ratios = np.linalg.norm(AZ, axis=0) / np.linalg.norm(Z, axis=0)
    if not np.all(np.isfinite(ratios)) or np.any(ratios > 2.0 * bound):
        return False
    if float(np.sum(AZ * AZ)) / Z.shape[1] <= c * tau_fail * tau_fail:
        return True
    return None


# ------------------------------------------------------------------------- exact tests
def whitening_error(X: np.ndarray) -> float:
    """``‖X Xᵀ − I_n‖_F`` (``inf`` when ``n > d``: rows cannot be orthonormal)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n > X.shape[1]:
        return float("inf")
    return float(np.linalg.norm(X @ X.T - np.eye(n)))


def isometry_defect(X: np.ndarray, *, tol: float = WHITENED_TOL) -> float | None:
    """None if X is a partial isometry within ``tol``, else a singular value that is neither
    within ``tol`` of 0 nor of 1 (or σ_1 when every singular value is ~0). Exact (an SVD)."""
    s = np.linalg.svd(np.asarray(X, dtype=np.float64), compute_uv=False)
    return _defect_of(s, tol)


def _defect_of(s: np.ndarray, tol: float) -> float | None:
    one = np.abs(s - 1.0) <= tol
    good = one | (s <= tol)
    if one.any() and np.all(good):
        return None
    return float(s[~good][0]) if not np.all(good) else float(s[0])


def is_whitened(X: np.ndarray, *, tol: float = WHITENED_TOL, exact: bool = False) -> bool:
    """``‖X Xᵀ − I_n‖_F ≤ tol`` (screened unless ``exact``; see the module docstring)."""
    return DataFacts(X, None, tol=tol, exact=exact).whitened


def is_partial_isometry(X: np.ndarray, *, tol: float = WHITENED_TOL, exact: bool = False) -> bool:
    """Every singular value within ``tol`` of 0 or 1, at least one 1 (screened unless ``exact``)."""
    return DataFacts(X, None, tol=tol, exact=exact).partial_isometry


def rank_one_factor(
    X: np.ndarray, *, tol: float = RANK_ONE_TOL
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(c, a)`` with ``X ≈ c aᵀ``, ``‖a‖ = 1``, if ``σ_2(X) ≤ tol·σ_1(X)`` and ``X ≠ 0``, else None."""
    return DataFacts(X, None, rank_one_tol=tol).rank_one


def is_onehot(Y: np.ndarray) -> bool:
    """Columns non-negative with disjoint supports (at most one non-zero entry per row)."""
    Y = np.asarray(Y, dtype=np.float64)
    return bool(np.all(Y >= 0) and np.all(np.count_nonzero(Y, axis=1) <= 1))


# ------------------------------------------------------------------------- cached facts
class DataFacts:
    """Detection results for one ``(X, Y)``, each computed on first use and kept.

    Args:
        X: inputs (n, d); must not change while the object lives (a Problem's X is read-only).
        Y: targets (n, K) or None.
        tol: the whitening / partial-isometry tolerance; ``rank_one_tol``: the rank-one one.
        exact: skip the probe screen (always the exact tests).
        probes, screen_c, probe_seed: the screen's k, c and probe seed (module docstring).
    """

    def __init__(
        self,
        X: np.ndarray,
        Y: np.ndarray | None,
        *,
        tol: float = WHITENED_TOL,
        rank_one_tol: float = RANK_ONE_TOL,
        exact: bool = False,
        probes: int = PROBES,
        screen_c: float = SCREEN_C,
        probe_seed: int = PROBE_SEED,
    ) -> None:
        self.X = np.asarray(X, dtype=np.float64)
        if self.X.ndim != 2:
            raise ValueError(f"X must be a 2-D array, got shape {self.X.shape}")
        self.Y = None if Y is None else np.asarray(Y, dtype=np.float64)
        self.tol, self.rank_one_tol, self.exact = float(tol), float(rank_one_tol), bool(exact)
        self.probes, self.screen_c, self.probe_seed = int(probes), float(screen_c), int(probe_seed)
        self.exact_checks = 0  # how often an exact O(n²d) / SVD test ran (for tests and benches)
        self.screens = 0  # how often a probe screen ran

    # --- whitened ---------------------------------------------------------------------------
    @cached_property
    def whitening_error(self) -> float:
        """Exact ``‖XXᵀ − I_n‖_F`` (``inf`` for ``n > d``)."""
        self.exact_checks += 1
        return whitening_error(self.X)

    @cached_property
    def whitened(self) -> bool:
        """``‖XXᵀ − I_n‖_F ≤ tol`` (THEORY §0, §3)."""
        n, d = self.X.shape
        if n > d:
            return False
        if not self.exact:
            self.screens += 1
            Z = _probes(n, self.probes, self.probe_seed)
            verdict = _screen(self.X @ (self.X.T @ Z) - Z, Z, self.tol, self.tol, self.screen_c)
            if verdict is not None:
                return verdict
        return self.whitening_error <= self.tol

    # --- partial isometry --------------------------------------------------------------------
    @cached_property
    def singular_values(self) -> np.ndarray:
        return self.svd[1]

    @cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD of X (computed once)."""
        self.exact_checks += 1
        return np.linalg.svd(self.X, full_matrices=False)

    @cached_property
    def isometry_defect(self) -> float | None:
        """Exact: None for a partial isometry, else an offending singular value."""
        return _defect_of(self.singular_values, self.tol)

    @cached_property
    def partial_isometry(self) -> bool:
        """Every singular value within ``tol`` of 0 or 1, at least one 1 (THEORY §0/§1)."""
        n, d = self.X.shape
        if n <= d and self.whitened:  # |σ_i² − 1| ≤ ‖XXᵀ − I‖_F ≤ tol ⇒ |σ_i − 1| ≤ tol
            return True
        if not self.exact:
            # A = XXᵀX − X has singular values σ|σ² − 1|: ≤ (1+τ)τ(2+τ) when every σ is good,
            # some ≥ τ(1 − τ²) when one is not (module docstring)
            tau = self.tol
            self.screens += 1
            Z = _probes(d, self.probes, self.probe_seed)
            XZ = self.X @ Z
            AZ = self.X @ (self.X.T @ XZ) - XZ
            good, fail = (1 + tau) * tau * (2 + tau), tau * (1 - tau * tau)
            verdict = _screen(AZ, Z, good, fail, self.screen_c)
            if verdict is False:
                return False
            if verdict:  # every σ within τ of 0 or 1: some σ ≈ 1 iff ‖X‖_F is not ~0
                return bool(np.linalg.norm(self.X) >= 0.5)
        return self.isometry_defect is None

    # --- rank one, batch norm, targets ---------------------------------------------------------
    @cached_property
    def rank_one(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(c, a)`` with ``X ≈ c aᵀ`` if ``σ_2 ≤ rank_one_tol·σ_1`` and ``X ≠ 0`` (THEORY §4)."""
        U, s, Vt = self.svd
        if s.size == 0 or s[0] == 0 or (s.size > 1 and s[1] > self.rank_one_tol * s[0]):
            return None
        return U[:, 0] * s[0], Vt[0].copy()

    @cached_property
    def rank_one_ratio(self) -> float:
        """``σ_2/σ_1`` (0 for one column or X = 0)."""
        s = self.singular_values
        return float(s[1] / s[0]) if s.size > 1 and s[0] > 0 else 0.0

    @cached_property
    def centred_rank_ratio(self) -> float:
        """``σ_{n−1}(CX)/σ_1(CX)`` with ``C = I − 11ᵀ/n`` (0 when rank(CX) < n − 1 is certain)."""
        n = self.X.shape[0]
        if n < 2:
            return 0.0
        S = np.linalg.svd(self.X - self.X.mean(axis=0, keepdims=True), compute_uv=False)
        if S.size < n - 1 or S[0] == 0.0:
            return 0.0
        return float(S[n - 2] / S[0])

    @cached_property
    def bn_rich(self) -> bool:
        """``rank((I − 11ᵀ/n) X) = n − 1`` numerically (THEORY §6)."""
        return self.centred_rank_ratio > BN_RANK_TOL

    @cached_property
    def onehot(self) -> bool:
        """Targets non-negative with disjoint column supports."""
        if self.Y is None:
            raise ValueError("Y: these facts were made without targets")
        return is_onehot(self.Y)

    @cached_property
    def opnorm(self) -> float:
        """``‖X‖₂``."""
        s = self.singular_values
        return float(s[0]) if s.size else 0.0


_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def facts(p: Problem) -> DataFacts:
    """The cached :class:`DataFacts` of a problem (computed once per Problem object)."""
    found = _FACTS.get(p)
    if found is None:
        found = DataFacts(p.X, p.Y)
        _FACTS[p] = found
    return found
