"""The one nuclear-norm solver of the package (THEORY §2 L = 2, §7's ``D(t)``, §9's operator ball).

    N(μ) = min_W ½‖XW − Y‖_F² + μ‖W‖_*,       dual  max_Λ ⟨Λ, Y⟩ − ½‖Λ‖²  s.t.  ‖XᵀΛ‖₂ ≤ μ.

Reduced coordinates. With the thin SVD ``X = U S Vᵀ`` (singular values ``≤ RANK_TOL·σ_1``
dropped, rank r) the optimum lies in ``W = V G`` (projecting W onto X's row space never raises
``‖W‖_*``), so the problem is ``½‖S G − B‖² + ½‖Y_⊥‖² + μ‖G‖_*`` with ``B = UᵀY`` (r × K) and
``Y_⊥ = Y − U B`` the part of Y outside X's range.

Certificates (THEORY §7). For any G the residual ``Λ = Y − XW`` is scaled into the dual feasible
set: ``⟨Λ, Y⟩ = ⟨R, B⟩ + ‖Y_⊥‖²``, ``‖Λ‖² = ‖R‖² + ‖Y_⊥‖²`` and ``‖XᵀΛ‖₂ = ‖S R‖₂`` with
``R = B − S G``, and the best multiple gives the dual value
:func:`~solvers.scalar.scaled_dual_value` — a valid lower bound on ``N(μ)`` whatever G is.

Primal solutions, in order:

- ``μ ≥ ‖XᵀY‖₂``: ``W = 0`` (``Λ = Y`` is feasible; primal = dual = ½‖Y‖²);
- every kept singular value of X equal (``ISO_RTOL``; whitened data, partial isometries):
  ``G = SVT_{μ/s}(B)/s``, exact;
- K = 1: a group lasso, ``g = (S² + ν)^{-1} S b`` with the unique root ``ν‖g‖ = μ``
  (:func:`group_lasso_root`), exact;
- otherwise FISTA with step ``1/σ_1²``, prox = singular-value soft-thresholding and gradient
  restart (O'Donoghue & Candès), warm-startable; every ``check_every`` iterations the iterate is
  certified and the best primal and best dual are kept; it stops when the certified relative
  gap is ``≤ gap_tol`` or at ``max_iter`` (then ``converged = False``: report a bracket).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from solvers.detect import RANK_TOL
from solvers.scalar import scaled_dual_value

__all__ = ["ISO_RTOL", "NuclearNorm", "NuclearSolution", "group_lasso_root", "opnorm"]

ISO_RTOL = 1e-12  # "all kept singular values of X equal": the SVT closed form applies


def opnorm(A: np.ndarray) -> float:
    """``‖A‖₂`` (0 for an empty matrix)."""
    return float(np.linalg.norm(A, 2)) if A.size else 0.0


def group_lasso_root(lam: np.ndarray, b: np.ndarray, gamma: float) -> float | None:
    """The ``ν > 0`` with ``ν ‖b/(λ + ν)‖ = γ`` (``λ = s²`` the squared singular values, ``b = Sc``
    the coordinates of ``Xᵀy``), or None when ``‖b‖ ≤ γ`` (then ``w = 0`` is optimal).

    ``ν ↦ ν‖b/(λ + ν)‖`` increases from 0 to ``‖b‖``; the root is bracketed by
    ``γλ_min/‖b‖ ≤ ν ≤ γλ_max/(‖b‖ − γ)`` and found in log space by Brent's method.
    """
    nb = float(np.linalg.norm(b))
    if nb <= gamma or lam.size == 0:
        return None

    def h(log_nu: float) -> float:
        nu = np.exp(log_nu)
        return nu * float(np.linalg.norm(b / (lam + nu))) - gamma

    lo = np.log(max(gamma * float(lam.min()) / nb, 1e-300))
    hi = np.log(gamma * float(lam.max()) / (nb - gamma))
    while h(lo) > 0:  # rounding only
        lo -= 1.0
    while h(hi) < 0:
        hi += 1.0
    return float(np.exp(brentq(h, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)))


@dataclass(frozen=True)
class NuclearSolution:
    """``W`` (d, K) with value ``primal`` and a feasible ``dual`` Λ (n, K) whose dual value is
    ``lower_bound`` (``lower_bound ≤ N(μ) ≤ primal``); ``method`` says which solution path ran."""

    W: np.ndarray
    primal: float
    lower_bound: float
    dual: np.ndarray
    converged: bool
    iterations: int
    method: str  # zero | closed_form | root | fista
    rank_X: int

    @property
    def rel_gap(self) -> float:
        return (self.primal - self.lower_bound) / max(abs(self.primal), np.finfo(float).tiny)


class NuclearNorm:
    """``N(μ)`` for one ``(X, Y)`` at any μ (X's SVD computed once); see the module docstring."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        r = int(np.sum(s > RANK_TOL * s[0])) if s.size and s[0] > 0 else 0
        self.U, self.s, self.Vt = U[:, :r], s[:r], Vt[:r]
        self.B = self.U.T @ Y  # (r, K)
        self.Y_out = Y - self.U @ self.B
        self.out2 = float(np.sum(self.Y_out * self.Y_out))
        self.yy = float(np.sum(Y * Y))
        self.d, self.K, self.r = X.shape[1], Y.shape[1], r
        self.iso = r > 0 and bool(np.all(np.abs(self.s - self.s[0]) <= ISO_RTOL * self.s[0]))
        self.mu_max = opnorm(self.s[:, None] * self.B)  # ‖XᵀY‖₂

    # ----------------------------------------------------------------- values of an iterate G
    def residual(self, G: np.ndarray) -> np.ndarray:
        """Reduced residual ``R = B − S G`` (Λ = U R + Y_⊥)."""
        return self.B - self.s[:, None] * G

    def direction(self, G: np.ndarray) -> tuple[float, float, float]:
        """``(⟨Λ, Y⟩, ‖Λ‖², ‖XᵀΛ‖₂)`` of ``Λ = Y − X V G``: a dual direction valid at every μ."""
        R = self.residual(G)
        return (
            self.out2 + float(np.sum(R * self.B)),
            self.out2 + float(np.sum(R * R)),
            opnorm(self.s[:, None] * R),
        )

    def primal(self, G: np.ndarray, mu: float, nuclear: float | None = None) -> float:
        R = self.residual(G)
        if nuclear is None:
            nuclear = float(np.sum(np.linalg.svd(G, compute_uv=False))) if G.size else 0.0
        return 0.5 * (float(np.sum(R * R)) + self.out2) + mu * nuclear

    def lower(self, G: np.ndarray, mu: float) -> tuple[float, float]:
        """Certified dual value of G's residual direction at μ, and its multiple α."""
        a, b, c = self.direction(G)
        if b == 0.0:
            return 0.0, 0.0
        alpha = min(max(a / b, 0.0), mu / c if c > 0 else np.inf)
        return float(scaled_dual_value(a, b, mu / c if c > 0 else np.inf)), float(alpha)

    def dual_variable(self, G: np.ndarray, alpha: float) -> np.ndarray:
        """``αΛ`` in data coordinates (n, K)."""
        return alpha * (self.U @ self.residual(G) + self.Y_out)

    def W(self, G: np.ndarray) -> np.ndarray:  # noqa: N802 - the matrix's name
        return self.Vt.T @ G

    # ----------------------------------------------------------------- solution paths
    def exact(self, mu: float) -> tuple[np.ndarray, str] | None:
        """The exact minimiser in reduced coordinates where a closed form exists, else None."""
        if self.r == 0 or mu >= self.mu_max:
            return np.zeros((self.r, self.K)), "zero"
        if self.iso:
            s0 = float(self.s[0])
            Ub, sb, Vbt = np.linalg.svd(self.B, full_matrices=False)
            return (Ub * (np.maximum(sb - mu / s0, 0.0) / s0)) @ Vbt, "closed_form"
        if self.K == 1:
            b = self.s * self.B[:, 0]
            nu = group_lasso_root(self.s**2, b, mu)
            g = np.zeros(self.r) if nu is None else b / (self.s**2 + nu)
            return g[:, None], "root"
        return None

    def fista(
        self,
        mu: float,
        *,
        gap_tol: float,
        max_iter: int,
        start: np.ndarray | None = None,
        check_every: int = 10,
    ) -> tuple[np.ndarray, np.ndarray, float, float, bool, int]:
        """FISTA from ``start`` (default 0): ``(G_primal, G_dual, primal, lower, converged, its)``
        with the best certified primal and dual iterates seen."""
        S = self.s[:, None]
        step = 1.0 / float(self.s[0]) ** 2
        tau = mu * step
        M = np.zeros_like(self.B) if start is None else np.array(start, dtype=np.float64)
        Z, t = M.copy(), 1.0
        best_p, best_l = (np.inf, M), (-np.inf, M)
        converged, it = False, 0
        for it in range(1, max_iter + 1):
            U, sv, Vt = np.linalg.svd(Z - step * (S * (S * Z - self.B)), full_matrices=False)
            sv = np.maximum(sv - tau, 0.0)
            keep = sv > 0
            M_new = (U[:, keep] * sv[keep]) @ Vt[keep]
            if float(np.sum((Z - M_new) * (M_new - M))) > 0:  # gradient restart
                Z, M, t = M_new, M_new, 1.0
            else:
                t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                Z = M_new + ((t - 1.0) / t_new) * (M_new - M)
                M, t = M_new, t_new
            if it % check_every == 0 or it == 1:
                primal = self.primal(M, mu, float(sv.sum()))
                lower, _ = self.lower(M, mu)
                if primal < best_p[0]:
                    best_p = (primal, M)
                if lower > best_l[0]:
                    best_l = (lower, M)
                if best_p[0] - best_l[0] <= gap_tol * max(abs(best_p[0]), np.finfo(float).tiny):
                    converged = True
                    break
        return best_p[1], best_l[1], best_p[0], best_l[0], converged, it

    def solve(
        self,
        mu: float,
        *,
        gap_tol: float = 1e-10,
        max_iter: int = 200_000,
        start: np.ndarray | None = None,
    ) -> NuclearSolution:
        """``N(μ)`` to a certified relative gap ``gap_tol`` (see the module docstring)."""
        mu = float(mu)
        if not np.isfinite(mu) or mu <= 0:
            raise ValueError(f"mu must be a finite number > 0, got {mu!r}")
        found = self.exact(mu)
        if found is not None:
            G, method = found
            primal = self.primal(G, mu)
            lower, alpha = self.lower(G, mu)
            lower = min(lower, primal)
            gap = (primal - lower) / max(abs(primal), np.finfo(float).tiny)
            return NuclearSolution(
                W=self.W(G),
                primal=primal,
                lower_bound=lower,
                dual=self.dual_variable(G, alpha),
                converged=bool(gap <= max(gap_tol, 1e-12)),
                iterations=0,
                method=method,
                rank_X=self.r,
            )
        Gp, Gd, primal, lower, converged, its = self.fista(
            mu, gap_tol=gap_tol, max_iter=max_iter, start=start
        )
        _, alpha = self.lower(Gd, mu)
        return NuclearSolution(
            W=self.W(Gp),
            primal=primal,
            lower_bound=lower,
            dual=self.dual_variable(Gd, alpha),
            converged=converged,
            iterations=its,
            method="fista",
            rank_X=self.r,
        )
