"""Column generation for THEORY §10's program: certified within the cap, a bracket beyond it.

**Solver.** Column generation: Clarabel (an interior-point conic solver, used directly without
cvxpy) solves the program on a working set of (pattern, sign) blocks (those in use plus up to
max(8, n) new ones per round); the exact ``c(λ)`` at the residual ``λ = y − f`` of the read-out
network gives the certificate and the violated cells (a cell's pattern is a valid block: its
cone holds the maximiser; the best ``max(8, n)`` are priced); they join the working set until
the relative gap ``(objective(network) − certificate)/objective ≤ 1e-8``. Interior-point solutions are accurate
to ~1e-9 only, so each round is polished: with the active blocks and the faces they lie on fixed,
the program's dual is the smooth concave ``max_{τ≥0} −½ỹᵀ(I + Σ τ_j C_jC_jᵀ)^{-1}ỹ − ½β²Στ``
(projected Newton, quadratic convergence; ``z_j = τ_j Q(QᵀEQ)^{-1}Qᵀ s_j X̃ᵀD_jλ``). Both ends
are rigorous: the upper end is the §0 objective of an actual network, the lower end a
dual-feasible point. The returned network is the candidate with the smallest gap to its OWN
certificate (so :func:`solvers.two_layer.two_layer_certificate` of ``opt.network`` is tight), reduced by Carathéodory
(same output and cost, ≤ n + 1 neurons). A β path (:func:`solvers.two_layer.solve_two_layer_path`) enumerates once
and warm-starts each working set from the previous β.

**Beyond the cap (issue 17).** The a-priori count is taken over DISTINCT hyperplanes
(:func:`solvers.arrangement._hyperplanes`: duplicated rows and, without bias, ``x``/``−x`` cut the same one). Past
it the working set starts from sampled cells and the warm-start networks' neurons; each round
is priced (no bound: pricing only) by the exact cone maximum of the sampled cells
(:func:`solvers.arrangement.price`) and of the cells next to the active blocks
(:func:`_neighbours`: one of the ``NEIGHBOUR_FLIPS`` points nearest a neuron's hyperplane
flipped), and by the local search of :mod:`solvers.separation`; when they find no new violated
block, the exact check ``c(λ)`` is the MIP oracle (:func:`solvers.separation.dual_norm_oracle`,
SCIP, objective limit ``β(1 + 0.1·tol)``: a proof below it counts as exact) with the time
left; a violated check stops ``ORACLE_STALL_NODES`` nodes after its last better point while more
than ``STALL_UNTIL`` of the time is left (its bound closes only at the end of the tree), the
solution pool's other violated cells join the working set, and every bound is carried to later
dual points by sublinearity (:class:`_Proofs`; a sign whose carried bound is below the target is
not solved again). Its bound (valid when stopped early) gives the lower end, and where the result is a
bracket, also the Shor bound (:mod:`solvers.shor`, rigorous, ``shor_time`` seconds after
``time_limit``, default ``min(SHOR_TIME, time_limit)``, up to ``SHOR_MAX_POINTS`` points) at
the residual of the bracket's network; CERTIFIED when it proved ``c(λ)`` and the relative gap is
``≤ TOL_BEYOND_CAP`` (1e-6), else BRACKET at ``time_limit`` (default ``TIME_LIMIT`` = 300 s; a
round in progress finishes first). A bracket's upper end is the best of the program's network
and L-BFGS (:func:`local_network`) from it and from every warm start (a network with no active
neuron is replaced by small neurons on the local search's directions). m* is the width of the
optimal network FOUND (after Carathéodory, ``≤ n + 1``): minimal only where proven, which this
module does not do.

Tolerances (module constants, each with its reason next to it): ``TOL`` (certified relative
gap within the cap), ``TOL_BEYOND_CAP`` (beyond it), ``INNER_TOL`` / ``INNER_TOL_MIN`` (the
conic solve on the working set), ``READ_OUT_DROPS``, ``USED_BLOCK_RTOL``, ``REDUCE_RTOL``,
``LOCAL_GTOL``, ``NEIGHBOUR_FLIPS``, and ``VIOLATION_RTOL`` from :mod:`solvers.arrangement` (a block is violated
above β(1 + 1e-10)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from solvers.arrangement import VIOLATION_RTOL, Geometry, price, relaxed_dual_norm, scaled_dual
from solvers.problem import Network, Optimum, Problem, as_network, objective
from solvers.relu_program import (
    active_faces,
    network_from_blocks,
    pad_width,
    polish,
    polished_blocks,
    residual,
    solve_restricted,
)
from solvers.separation import SepResult, dual_norm_oracle, local_search
from solvers.shor import shor_dual_norm

__all__ = [
    "FAMILY",
    "TIME_LIMIT",
    "TOL",
    "TOL_BEYOND_CAP",
    "State",
    "local_network",
    "make_optimum",
    "solve_on",
]

TOL = 1e-8  # certified relative duality gap
FAMILY = "relu_two_layer"
TOL_BEYOND_CAP = 1e-6  # certified relative gap beyond the cap (MIP oracle; issue 17's bar)
TIME_LIMIT = 300.0  # seconds for a solve beyond the cap (column generation with the MIP oracle)
LOCAL_MAXITER = 2000  # L-BFGS iterations of the bracket's local search
ADD_BEYOND_CAP = 40  # blocks added per round beyond the cap (conic solves over n rows each)
MAX_ROUNDS = 60  # rounds within the cap (the enumeration's price decides there)
MAX_ROUNDS_BEYOND_CAP = 100_000  # beyond it ``time_limit`` decides (60 rounds stopped 45 x 10
# at 184 s of a 300 s limit: BENCHMARKS.md)
ORACLE_STALL_NODES = 2000  # once the MIP holds a violator, stop this many nodes after its last
# better one (a proof c ≤ β(1 + ε) is not affected: with no point above the target the stall is
# ignored); at 40 x 10 the bound closes only at the end of the tree: 5-23k nodes, 10-30 s a sign,
# for violators 1-2% above β that it held after ~2k (BENCHMARKS.md)
STALL_UNTIL = 1 / 3  # ... while more than this share of time_limit is left; then every MIP call
# is solved to the end, so a bracket cut off by the time limit has a tight c̄ (stalled bounds are
# 1.6-2.1 β: 40 x 10 ended 0.23 wide with the stall to the end, 0.017 without it; BENCHMARKS.md)
PROOFS_KEPT = 8  # MIP bounds kept per sign and carried to later dual points (:class:`_Proofs`)
ALL_BLOCKS = 400  # up to this many (pattern, sign) blocks the first round takes them all
INNER_TOL = 1e-10  # Clarabel's tolerance on the working set (tightened ×0.1 when no block is new)
INNER_TOL_MIN = 1e-13  # below this, no new block means the round-off floor: stop
READ_OUT_DROPS = (1e-6, 1e-9)  # blocks below this × the largest are dropped from a read-out net
USED_BLOCK_RTOL = 1e-9  # ‖u_j‖ > this × the largest: a block stays in the working set
REDUCE_RTOL = 1e-12  # Carathéodory's network is kept if its objective is within this (round-off)
NEIGHBOUR_FLIPS = 16  # points nearest each active neuron's hyperplane flipped (pricing)
LOCAL_GTOL = 1e-12  # L-BFGS gradient tolerance of the bracket's local search
SHOR_TIME = 120.0  # seconds (both signs) of the Shor bound at a bracket's end (after time_limit)
SHOR_MAX_POINTS = 200  # beyond this n the Shor program is not tried (SCS does not converge in
# minutes at n = 1,000, d = 20: BENCHMARKS.md)


def make_optimum(
    p: Problem,
    geo: Geometry,
    net: Network,
    upper: float,
    lower: float,
    m_star: int,
    dirs: np.ndarray,
    tol: float,
    info: dict,
    *,
    certified: bool | None = None,
) -> Optimum:
    from solvers.problem import Status

    certified = geo.exact if certified is None else certified
    rel = (upper - lower) / abs(upper) if upper != 0 else 0.0
    rel = max(rel, 0.0)
    status = Status.CERTIFIED if (certified and rel <= tol) else Status.BRACKET
    if status is Status.BRACKET and not geo.exact:
        info = {**info, "not_covered": geo.reason}
    return Optimum(
        objective=upper,
        weights=list(net.weights),
        family=FAMILY,
        status=status,
        lower_bound=lower,
        rel_gap=rel,
        dual=None,
        network=net,
        m_star=m_star,
        directions=dirs,
        info=info,
    )


class State:
    """Working set of blocks (pattern, sign) shared by the solves of one problem (a β path)."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo
        self.D: list[np.ndarray] = []
        self.s: list[int] = []
        self.seen: set[tuple[bytes, int]] = set()

    def add(self, items: Sequence[tuple[np.ndarray, int]]) -> int:
        added = 0
        for D, s in items:
            key = (np.packbits(D).tobytes(), int(s))
            if key not in self.seen:
                self.seen.add(key)
                self.D.append(np.asarray(D, bool))
                self.s.append(int(s))
                added += 1
        return added

    def is_new(self, D: np.ndarray, s: int) -> bool:
        return (np.packbits(D).tobytes(), int(s)) not in self.seen

    def keep(self, mask: np.ndarray) -> None:
        """Drop the blocks not in ``mask`` (they may come back when priced again)."""
        self.D = [D for D, k in zip(self.D, mask, strict=False) if k]
        self.s = [s for s, k in zip(self.s, mask, strict=False) if k]
        self.seen = {(np.packbits(D).tobytes(), s) for D, s in zip(self.D, self.s, strict=False)}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.D, dtype=bool).reshape(-1, self.geo.Xt.shape[0]), np.array(
            self.s, dtype=np.float64
        )


def solve_on(
    p: Problem,
    state: State,
    *,
    tol: float,
    max_rounds: int | None = None,
    add_per_round: int | None = None,
    warm_start: Sequence[Network] = (),
    time_limit: float = TIME_LIMIT,
    shor_time: float | None = None,
) -> Optimum:
    t_start = time.perf_counter()
    geo = state.geo
    y = p.Y[:, 0]
    beta = p.beta
    n = p.n
    add_per_round = add_per_round or (max(8, n) if geo.exact else max(8, min(n, ADD_BEYOND_CAP)))
    max_rounds = max_rounds or (MAX_ROUNDS if geo.exact else MAX_ROUNDS_BEYOND_CAP)
    if not state.D and 2 * geo.patterns.shape[0] <= ALL_BLOCKS:  # small: every cell at once
        state.add([(D, s) for D in geo.patterns for s in (1, -1)])
    else:
        lam0 = y - y.mean() if p.bias else y
        _, viol = price(geo, lam0, beta=0.0, top=2 * add_per_round)
        state.add([(D, s) for D, s, _ in viol[: 2 * add_per_round]])
    warm = [as_network(w) for w in warm_start]
    for w in warm:  # the neurons of a known network are blocks: its cone holds each of them
        state.add(_network_blocks(geo, w))
    lower, best, best_own = 0.0, None, 0.0
    inner_tol = INNER_TOL
    rounds = 0
    oracle: dict = {"calls": 0, "exact": False, "seconds": 0.0}
    proofs = _Proofs(p.X, p.bias)
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - reported
        Dw, s = state.arrays()
        Z, const = solve_restricted(geo, y, beta, Dw, s, tol=inner_tol)
        cands = []
        for rel_drop in READ_OUT_DROPS:
            net, m_star, dirs, _ = network_from_blocks(p, geo, s, Z, rel_drop=rel_drop, const=const)
            cands.append((objective(p, net), net, m_star, dirs, (s, Z, const, rel_drop)))
        faces = active_faces(geo, Dw, s, Z)
        if faces:
            tau0 = np.array([np.linalg.norm(Z[f[0], : geo.r]) for f in faces])
            pol = polish(p, geo, faces, tau0 / beta)
            if pol is not None:
                Sp, Zp, cp_ = polished_blocks(p, geo, Dw, faces, pol[0], pol[1])
                if Zp.shape[0]:
                    net, m_star, dirs, _ = network_from_blocks(
                        p, geo, Sp, Zp, rel_drop=0.0, const=cp_
                    )
                    cands.append((objective(p, net), net, m_star, dirs, (Sp, Zp, cp_, 0.0)))
        cands.sort(key=lambda c: c[0])
        viol = []
        for c in cands:  # each network certifies itself: keep the one with the smallest own gap
            lam = residual(p, c[1])
            if geo.exact:
                cbar, v = price(geo, lam, beta=beta, top=add_per_round)
            else:  # sampled cells bound nothing: the provable relaxation instead; the local
                # search and the sampled cells price, only until a candidate has violators
                # (the loop keeps the first candidate's violators)
                cbar = relaxed_dual_norm(p.X, lam, bias=p.bias)
                v = (
                    []
                    if viol
                    else _searched(p, lam, beta)
                    + _sampled(geo, lam, beta, add_per_round)
                    + _neighbours(geo, Dw, Z, lam, beta, add_per_round)
                )
                cbar = min(cbar, proofs.bound(lam))
            own = scaled_dual(lam, y, beta, cbar)
            lower = max(lower, own)
            viol = viol or v
            if best is None or c[0] - own < best[0] - best_own:
                best, best_own = c, own
        left = time_limit - (time.perf_counter() - t_start)
        if not geo.exact:  # violators already in the working set are round-off, not news
            viol = [v for v in viol if state.is_new(v[0], v[1])]
        if not geo.exact and not viol and left > 0:  # the exact check: the MIP oracle
            cur = cands[0]  # this round's best network (own gaps above used the loose bound)
            lam = residual(p, cur[1])
            target = beta * (1.0 + 0.1 * tol)
            bounds = {sg: proofs.bound(lam, sg) for sg in (1, -1)}  # carried, else inf
            res = dual_norm_oracle(
                p.X,
                lam,
                bias=p.bias,
                time_limit=left,
                tol=0.1 * tol,
                target=target,
                stall_nodes=ORACLE_STALL_NODES if left > STALL_UNTIL * time_limit else None,
                signs=tuple(sg for sg in (1, -1) if bounds[sg] > target),  # else proved
            )
            proven = {sg: bounds[sg] <= target for sg in (1, -1)}
            for r in res:
                bounds[r.sign] = min(bounds[r.sign], r.upper)
                proven[r.sign] = r.exact or r.below_target
            proofs.add(lam, res)
            oracle["calls"] += 1
            oracle["seconds"] += sum(r.seconds for r in res)
            cbar = min(max(bounds.values()), relaxed_dual_norm(p.X, lam, bias=p.bias))
            own = scaled_dual(lam, y, beta, cbar)
            lower = max(lower, own)
            if cur[0] - own < best[0] - best_own:
                best, best_own = cur, own
                oracle["exact"] = all(proven.values())
            viol = [_sep_block(geo, r) for r in res if r.value > beta * (1.0 + VIOLATION_RTOL)]
            viol += sorted(  # the pool's other violated cells: blocks from the same MIP
                ((np.asarray(pt, bool), r.sign, v) for r in res for pt, v in r.others),
                key=lambda b: -b[2],
            )
        if best[0] - lower <= tol * abs(best[0]) and best[0] - best_own <= tol * abs(best[0]):
            break
        if not geo.exact and time.perf_counter() - t_start > time_limit:
            break  # within the cap the enumeration decides: no time limit there
        # keep the blocks in use, add the most violated new ones
        nu = np.linalg.norm(Z[:, : geo.r], axis=1)
        used = nu > USED_BLOCK_RTOL * max(float(np.max(nu, initial=0.0)), 1e-300)
        state.keep(used)
        if state.add([(D, sg) for D, sg, _ in viol[:add_per_round]]) == 0:
            if inner_tol <= INNER_TOL_MIN:
                break
            inner_tol *= 0.1  # no new block: the restricted solve was not accurate enough
    upper, net, m_star, dirs, (sb, Zb, cb, dropb) = best
    net2, m2, dirs2, _ = network_from_blocks(p, geo, sb, Zb, rel_drop=dropb, const=cb, reduce=True)
    up2 = objective(p, net2)
    # fewer neurons, the same output and objective up to round-off: keep it if still certified,
    # and always when the unreduced one has more than n + 1 neurons (Carathéodory's bound)
    if up2 - lower <= tol * abs(up2) or up2 <= upper * (1.0 + REDUCE_RTOL) or m_star > n + 1:
        upper, net, m_star, dirs = up2, net2, m2, dirs2
    upper = min(upper, best[0]) if net is best[1] else upper
    info = {
        "patterns": int(geo.patterns.shape[0]),
        "blocks": len(state.D),
        "rounds": rounds,
    }
    if not geo.exact:
        info["oracle"] = oracle
        if upper - lower > tol * abs(upper):  # a bracket: its upper end is the best network known
            for start in [net, *warm]:
                w = local_network(p, start)
                vw = objective(p, w)
                if vw < upper:
                    upper, net = vw, w
                    m_star = int(np.sum(np.abs(w.weights[1][:, 0]) > 0))
                    dirs = _directions(w)
                    info["upper_from"] = "local search"
        shor_time = min(SHOR_TIME, time_limit) if shor_time is None else shor_time
        if upper - lower > tol * abs(upper) and shor_time > 0 and n <= SHOR_MAX_POINTS:
            lam = residual(p, net)  # the bracket's network: its residual, c(λ) by the SDP
            cbar, parts = shor_dual_norm(p.X, lam, bias=p.bias, time_limit=shor_time)
            own = scaled_dual(lam, y, beta, cbar)
            info["shor"] = {
                "bound": cbar,
                "lower": own,
                "lower_before": lower,
                "seconds": sum(b.seconds for b in parts),
            }
            lower = max(lower, own)
    net = pad_width(p, net, net.weights[0].shape[1])
    certified = geo.exact or oracle["exact"]
    return make_optimum(p, geo, net, upper, lower, m_star, dirs, tol, info, certified=certified)


# ------------------------------------------------------------------ beyond the cap
class _Proofs:
    """The MIP's bounds ``s(σλ_k) ≤ ū_k`` at earlier dual points, carried to a new ``λ`` by
    sublinearity (``s`` is a support function): ``s(σλ) ≤ s(σλ_k) + s(σ(λ − λ_k)) ≤ ū_k +
    c̄(λ − λ_k)``, ``c̄`` the relaxed bound (:func:`solvers.arrangement.relaxed_dual_norm`).
    Between rounds the dual point moves little, so a sign proved ``≤ β(1 + ε)`` a round ago
    often stays proved (its branch and bound is then skipped), and a stalled call's loose bound
    does not undo an earlier tight one. The last ``PROOFS_KEPT`` per sign are kept."""

    def __init__(self, X: np.ndarray, bias: bool) -> None:
        self.X, self.bias = X, bias
        self.kept: dict[int, list[tuple[np.ndarray, float]]] = {1: [], -1: []}

    def add(self, lam: np.ndarray, res: Sequence[SepResult]) -> None:
        for r in res:
            if np.isfinite(r.upper):
                kept = self.kept[r.sign]
                kept.append((np.array(lam, dtype=np.float64), float(r.upper)))
                del kept[:-PROOFS_KEPT]  # the latest: the dual point moves on

    def bound(self, lam: np.ndarray, sign: int | None = None) -> float:
        """``≥ s(sign·λ)`` (``sign = None``: ``≥ c(λ)``, both signs); ``inf`` without a proof."""
        if sign is None:
            return max(self.bound(lam, 1), self.bound(lam, -1))
        return min((u + self._step(lam - lk) for lk, u in self.kept[sign]), default=np.inf)

    def _step(self, delta: np.ndarray) -> float:
        """``≥ c(δ)``; with bias ``c(δ) = ∞`` unless ``1ᵀδ = 0`` (a free ``b``)."""
        if self.bias and abs(float(delta.sum())) > 1e-12 * max(float(np.abs(delta).sum()), 1e-300):
            return np.inf
        return relaxed_dual_norm(self.X, delta, bias=self.bias)


def _sep_block(geo: Geometry, res: SepResult) -> tuple[np.ndarray, int, float]:
    """A separation maximiser as a block (its pattern ``1[Xu + b > 0]`` holds it: a cone of the
    program) with its sign and value."""
    return np.asarray(res.pattern, bool), int(res.sign), float(res.value)


def _sampled(geo: Geometry, lam: np.ndarray, beta: float, top: int) -> list:
    """Violated blocks among the sampled cells (no bound: pricing only)."""
    return price(geo, lam, beta=beta, top=top)[1]


def _neighbours(
    geo: Geometry, Dw: np.ndarray, Z: np.ndarray, lam: np.ndarray, beta: float, top: int
) -> list:
    """Violated blocks among the cells next to the working set's active blocks: each block's
    pattern with one of its ``NEIGHBOUR_FLIPS`` points nearest to the neuron's hyperplane
    flipped, priced by the exact cone maximum (any pattern's cone is a valid block; no bound).
    The MIP oracle's violators were mostly there (the dual point moves little per round)."""
    import dataclasses

    nu = np.linalg.norm(Z[:, : geo.r], axis=1)
    act = np.flatnonzero(nu > USED_BLOCK_RTOL * max(float(np.max(nu, initial=0.0)), 1e-300))
    if act.size == 0:
        return []
    xn = np.linalg.norm(geo.Xt, axis=1)
    near = np.argsort(np.abs(Z[act] @ geo.Xt.T) / xn[None, :], axis=1)[:, :NEIGHBOUR_FLIPS]
    P = np.repeat(Dw[act], near.shape[1], axis=0)
    rows = np.arange(P.shape[0])
    P[rows, near.ravel()] = ~P[rows, near.ravel()]
    P = np.unique(P, axis=0)
    return price(dataclasses.replace(geo, patterns=P, exact=False), lam, beta=beta, top=top)[1]


def _searched(p: Problem, lam: np.ndarray, beta: float) -> list[tuple[np.ndarray, int, float]]:
    """Violated blocks found by the oracle's local search at ``±λ`` (no bound: pricing only)."""
    out = []
    for sg in (1, -1):
        res = local_search(p.X, sg * lam, bias=p.bias)
        if res.value > beta * (1.0 + VIOLATION_RTOL):
            out.append((np.asarray(res.pattern, bool), sg, float(res.value)))
    return sorted(out, key=lambda v: -v[2])


def _network_blocks(geo: Geometry, net: Network) -> list[tuple[np.ndarray, int]]:
    """The (pattern, sign) blocks of a network's neurons (neurons with zero output skipped)."""
    W1, W2 = net.weights[0], net.weights[1][:, 0]
    b = net.biases[0] if (geo.bias and net.biases is not None) else np.zeros(W1.shape[1])
    out = []
    for j in np.flatnonzero((W2 != 0) & np.any(W1 != 0, axis=0)):
        z = geo.V.T @ W1[:, j]
        a = geo.Xt[:, : geo.r] @ z + (b[j] if geo.bias else 0.0)
        out.append((a > 0, int(np.sign(W2[j]))))
    return out


def _directions(net: Network) -> np.ndarray:
    """Unit first-layer weights of the neurons with non-zero output and input."""
    W1, W2 = net.weights[0], net.weights[1][:, 0]
    nrm = np.linalg.norm(W1, axis=0)
    keep = (W2 != 0) & (nrm > 0)
    return W1[:, keep] / nrm[keep]


def _seed_network(p: Problem, lam: np.ndarray, width: int = 8) -> Network:
    """Small neurons on the local search's best directions at ``±λ`` (L-BFGS cannot leave the
    zero network: its gradient vanishes there)."""
    cols, bs, outs = [], [], []
    for k in range(width // 2):
        for sg in (1, -1):
            res = local_search(p.X, sg * lam, bias=p.bias, directions=500, seed=k + 1)
            if res.value > 0:
                cols.append(res.u)
                bs.append(res.b)
                outs.append(sg)
    if not cols:
        cols, bs, outs = [np.zeros(p.d)], [0.0], [0.0]
    scale = 0.1 * math.sqrt(max(float(np.abs(lam).max()), 1e-12))
    W1 = np.array(cols).T * scale
    W2 = np.array(outs, float)[:, None] * scale
    return Network(weights=(W1, W2), biases=(np.array(bs) * scale,) if p.bias else None)


def local_network(p: Problem, net: Network, *, maxiter: int = LOCAL_MAXITER) -> Network:
    """L-BFGS (scipy, float64, analytic gradient) of the §0 objective from a two-layer network
    (its width; hidden biases unregularised). Used for the upper end of a bracket: the result is
    an actual network, so its objective bounds P* from above whatever the local minimum. A
    network with no active neuron is replaced by :func:`_seed_network` first."""
    from scipy.optimize import minimize

    X, y, beta = p.X, p.Y[:, 0], p.beta
    net = as_network(net)
    if not np.any(_directions(net).size):
        net = _seed_network(p, residual(p, net))
    d, m = net.weights[0].shape
    bias = p.bias

    def split(th: np.ndarray):
        W1 = th[: d * m].reshape(d, m)
        a = th[d * m : d * m + m]
        b = th[d * m + m :] if bias else np.zeros(m)
        return W1, a, b

    def fg(th: np.ndarray):
        W1, a, b = split(th)
        H = X @ W1 + b
        A = H > 0
        R = np.where(A, H, 0.0)
        r = R @ a - y
        f = 0.5 * float(r @ r) + 0.5 * beta * (float(np.sum(W1 * W1)) + float(a @ a))
        dH = np.outer(r, a) * A
        g = [(X.T @ dH + beta * W1).ravel(), R.T @ r + beta * a]
        if bias:
            g.append(dH.sum(axis=0))
        return f, np.concatenate(g)

    b0 = net.biases[0] if (bias and net.biases is not None) else np.zeros(m)
    th0 = np.concatenate([net.weights[0].ravel(), net.weights[1][:, 0]] + ([b0] if bias else []))
    res = minimize(
        fg, th0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter, "gtol": LOCAL_GTOL}
    )
    W1, a, b = split(res.x)
    out = Network(weights=(W1.copy(), a[:, None].copy()), biases=(b.copy(),) if bias else None)
    return out if objective(p, out) <= objective(p, net) else net
