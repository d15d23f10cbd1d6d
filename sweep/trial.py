"""One trial = one grid point: data → batched SGD → exact optimum → certificate → structure.

:func:`run_batch` is a plain function of frozen :class:`~sweep.schema.TrialSpec` s returning
plain :class:`~sweep.schema.TrialResult` s. It runs the same in-process (``runner=inline``) and
as a Ray task; it never raises for one trial's own trouble: a network whose loss blew up is
``diverged``, an exception while making data or analysing a network is that trial's
``failed`` status with its traceback, and the rest of the batch goes on.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from solvers import Network, NotCovered, Problem, Status, objective
from solvers.data import make_dataset
from solvers.dual import certificate, deep_relu_dual, deep_relu_dual_applies, dual_bound
from solvers.min_width import MinWidth, min_width
from solvers.problem import forward
from solvers.sgd import TrainConfig, TrainOutput, train
from solvers.solve import p_star_kind, solve
from solvers.structure import direction_alignment, fitted_function, layer_stats, spline_stats
from solvers.two_layer import FAMILY as TWO_LAYER
from solvers.two_layer import warm_starts
from solvers.vector_relu import best_at_width
from sweep.schema import PER_NETWORK, LayerStats, TrialResult, TrialSpec
from sweep.solve_cache import order, problem_key, solve_once

__all__ = ["make_problem", "run_batch"]

SPLINE_GRID = 801  # points on which a 1-D network is evaluated for spline statistics


def make_problem(spec: TrialSpec) -> Problem:
    """The training problem of one trial (data seeded by ``spec.data_seed``)."""
    d = spec.data
    X, Y = make_dataset(
        d.kind, d.targets, n=d.n, d=d.d, outputs=d.outputs, seed=spec.data_seed, whiten=d.whiten
    )
    m = spec.model
    return Problem(
        X=X,
        Y=Y,
        depth=m.depth,
        beta=spec.train.beta,
        activation=m.activation,
        width=m.width,
        bias=m.bias,
        batchnorm=m.batchnorm,
    )


def _train_config(spec: TrialSpec) -> TrainConfig:
    """The options ``train`` shares across a batch: every field of ``solvers.sgd.TrainConfig``
    taken from ``spec.train`` (a batch agrees on all of them but the per-network ones of
    :data:`~sweep.schema.PER_NETWORK`, which :func:`_per_network` passes one per network)."""
    own = {f.name for f in dataclasses.fields(spec.train)}
    return TrainConfig(
        **{
            f.name: getattr(spec.train, f.name)
            for f in dataclasses.fields(TrainConfig)
            if f.name in own
        }
    )


def _per_network(batch: Sequence[TrialSpec]) -> dict[str, list]:
    """Keyword arguments of ``train`` holding one value per network (from ``PER_NETWORK``)."""
    out: dict[str, list] = {"seeds": [s.init_seed for s in batch]}
    for name, channel in PER_NETWORK.items():
        if channel not in ("problem", "seed", "analysis"):
            out[channel] = [s.params()[name] for s in batch]
    return out


def _failed(spec: TrialSpec, device: str, started: float) -> TrialResult:
    return TrialResult(
        key=spec.key,
        status="failed",
        error=traceback.format_exc(),
        device=device,
        wall_time=time.perf_counter() - started,
    )


def _layers(net: Network) -> list[LayerStats]:
    return [
        LayerStats(
            rank=int(s["rank"]),
            stable_rank=float(s["stable_rank"]),
            norm_ratio=float(s["norm_ratio"]),
            fro_norm=float(s["fro_norm"]),
            top_sv=[float(v) for v in s["top_sv"]],
            align_next=None if s.get("align_next") is None else float(s["align_next"]),
        )
        for s in layer_stats(list(net.weights))
    ]


def _predicted_directions(opt) -> np.ndarray | None:
    """Unit first-layer directions of the exact optimum (d × m*), None when it predicts none."""
    dirs = opt.directions
    if dirs is None or dirs.shape[1] == 0:
        return None
    return dirs


ACTIVE_TOL = 1e-3  # a neuron is active when |a_j|·‖(w_j, b_j)‖ > ACTIVE_TOL · the largest one


def _neurons(problem: Problem, net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Two-layer net → (first-layer vectors ``(w_j, b_j)`` as columns, weights ``|a_j|·‖(w_j, b_j)‖``).

    ``K = 1``: ``a_j`` is the output weight of neuron j (for ``K > 1`` its row norm).
    """
    W1 = np.asarray(net.weights[0], dtype=np.float64).reshape(problem.d, -1)
    if problem.bias and net.biases is not None:
        W1 = np.vstack([W1, np.asarray(net.biases[0], dtype=np.float64).reshape(1, -1)])
    out = np.asarray(net.weights[-1], dtype=np.float64).reshape(W1.shape[1], -1)
    return W1, np.linalg.norm(W1, axis=0) * np.linalg.norm(out, axis=1)


def neuron_alignment(problem: Problem, net: Network, optimal: Network) -> float | None:
    """``w1_alignment`` of a two-layer ReLU net with the optimal network of THEORY §10.

    With ``u_k`` the unit first-layer vectors of the optimal active neurons (``(w_k, b_k)``
    when the problem has biases), ``ω_k = |a_k|·‖(w_k, b_k)‖ / Σ_l |a_l|·‖(w_l, b_l)‖`` their
    shares of the optimal regulariser (the group-lasso block norms ‖v_k‖ of §10), and ``J`` the
    trained neurons with ``|a_j|·‖(w_j, b_j)‖ > ACTIVE_TOL · max_j`` (the same weight):

        w1_alignment = Σ_k ω_k · max_{j ∈ J} cos(u_k, (w_j, b_j))     (signed cosine)

    — 1 exactly when every optimal neuron appears (up to scale) in the trained net; the weight
    makes a missing big neuron cost more than a missing small one; ≤ 0 when the trained net has
    no neuron on the optimal side. ``None`` when the optimal net has no active neuron (P* = ½‖y‖²);
    0.0 when the trained net has none.
    """
    U, w_opt = _neurons(problem, optimal)
    keep = w_opt > ACTIVE_TOL * max(float(w_opt.max(initial=0.0)), 1e-300)
    if not keep.any() or w_opt.max(initial=0.0) == 0:
        return None
    U, omega = U[:, keep], w_opt[keep] / w_opt[keep].sum()
    V, w_net = _neurons(problem, net)
    if w_net.max(initial=0.0) == 0:
        return 0.0
    active = w_net > ACTIVE_TOL * w_net.max()
    V = V[:, active] / np.linalg.norm(V[:, active], axis=0)
    U = U / np.linalg.norm(U, axis=0)
    return float(omega @ np.max(U.T @ V, axis=1))


SOLVE_CACHE = 64  # optima kept per process (grids sweep the width at fixed data, β, bias)
_SOLVED: OrderedDict[str, object] = OrderedDict()


def _solve_any_width(problem: Problem, warm: Sequence[Network] = ()):
    """``solve(problem)`` at ``width=None`` (the optimum over every width), memoised on the
    problem's content (X, Y, β, depth, activation, bias) in this process and across the
    processes of this machine (:mod:`sweep.solve_cache`): the trials of one data point that
    differ only in width (or in training settings) share one solve. A ``NotCovered`` is
    memoised too and raised again. A hit returns the optimum as the first trial computed it,
    warm-started from that trial's networks: the same P* and certificate; the network reaching
    it may differ from what this trial's own warm start would give."""
    key = problem_key(problem)

    def fresh() -> object:
        try:
            with warm_starts(warm):  # §10's program starts from the trial's networks
                return solve(dataclasses.replace(problem, width=None))
        except NotCovered as exc:
            return exc

    found = _memoised(_SOLVED, SOLVE_CACHE, key, lambda: solve_once(key, fresh))
    if isinstance(found, NotCovered):
        raise NotCovered(str(found))
    return found


def _shares_optimum(problem: Problem) -> bool:
    """Whether :func:`_optimum` reads ``problem``'s optimum over every width (shared by the
    trials of one problem) rather than solving at its width (batch norm, no width)."""
    return not problem.batchnorm and problem.width is not None


def _optimum(
    problem: Problem, warm: Sequence[Network] = ()
) -> tuple[object | None, object | None, str | None]:
    """``(optimum, wide, not_covered)`` of a trial's problem (width = the trial's width m).

    The optimum over every width (:func:`_solve_any_width`) with m* neurons / paths; if
    ``m* ≤ m`` it is this trial's ``optimum`` (its network has m* neurons; padding with zero
    neurons to m changes nothing). If ``m < m*``, ``wide`` is that optimum: its P* (THEORY's P*,
    "width ≥ m*") is a certified lower bound on this width-m problem — E11's "width < m*"
    trials. m* is the width of the optimal network FOUND, not a proven minimum: a width-m net
    may still reach P* (issue 17 measured one within 1.1e-6 at m = m* − 1). So
    :func:`solvers.min_width.min_width` is asked (:func:`_min_width`): a narrower network at the
    optimum's objective with at most m neurons makes it this trial's optimum (CERTIFIED by the
    optimum's lower bound, :func:`_narrower`); a proven lower bound above m is said in
    ``not_covered`` (P* of this width strictly above P*). Batch-norm problems are
    solved at their width (their closed forms read it).
    """
    m = problem.width
    try:
        found = _solve_any_width(problem, warm) if _shares_optimum(problem) else solve(problem)
    except NotCovered as exc:
        return None, None, str(exc)
    k = found.m_star if found.is_exact else None
    if m is None or k is None or k <= m or problem.batchnorm:
        return found, None, None
    proof = _min_width(problem, found)
    if proof is not None and proof.network is not None and _width(proof.network) <= m:
        return _narrower(problem, found, proof.network), None, None
    p_star = f"P* = {float(found.objective):.6g} of width >= m*, family {found.family}"
    if proof is not None and proof.lower > m:
        return (
            None,
            found,
            f"width {m} is below the smallest optimal width: every optimal network has at least "
            f"{proof.lower} neurons (proven, solvers.min_width), so P* of this width is strictly "
            f"above {p_star} (logged as p_star_any_width and lower_bound; min_width_lower)",
        )
    why = "" if proof is None else f"; solvers.min_width: {proof.reason}"
    return (
        None,
        found,
        f"width {m} is below the width m* = {k} of the optimal network found (not proven "
        f"minimal{why}): P* of this width is unknown (>= {p_star}, logged as "
        f"p_star_any_width and lower_bound)",
    )


MIN_WIDTH_CACHE = 64  # proofs kept per process (one per problem, shared by its widths)
_MIN_WIDTH: OrderedDict[str, object] = OrderedDict()


def _min_width(problem: Problem, found) -> MinWidth | None:
    """:func:`solvers.min_width.min_width` of a problem's optimum over every width, memoised on
    the problem's content in this process (the trials of one problem share it); None where it
    does not apply (batch norm, no shared optimum, not covered)."""
    if not _shares_optimum(problem) or found is None or not found.is_exact:
        return None
    return _memoised(
        _MIN_WIDTH,
        MIN_WIDTH_CACHE,
        problem_key(problem),
        lambda: min_width(dataclasses.replace(problem, width=None), found),
    )


def _memoised(cache: OrderedDict, cap: int, key: str, compute: Callable[[], object]) -> object:
    """``cache[key]``, computed once by ``compute()``; the ``cap`` most recently used kept."""
    if key not in cache:
        cache[key] = compute()
        while len(cache) > cap:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def _live(net: Network) -> np.ndarray:
    """The neurons with a non-zero first-layer column and output row (two-layer networks)."""
    W1 = np.asarray(net.weights[0], dtype=np.float64)
    W2 = np.asarray(net.weights[-1], dtype=np.float64).reshape(W1.shape[1], -1)
    return (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)


def _width(net: Network) -> int:
    return int(np.shape(net.weights[-1])[0])  # hidden neurons: the rows of the output layer


def _narrower(problem: Problem, found, net: Network):
    """``found`` realised by ``net`` (narrower than its m*, from :func:`_min_width`) padded with
    zero neurons to the trial's width: CERTIFIED, its objective that network's."""
    W1 = np.asarray(net.weights[0], dtype=np.float64)
    W2 = np.asarray(net.weights[1], dtype=np.float64).reshape(W1.shape[1], -1)
    extra = int(problem.width) - W1.shape[1]
    live = _live(net)
    padded = Network(
        weights=(
            np.hstack([W1, np.zeros((problem.d, extra))]),
            np.vstack([W2, np.zeros((extra, problem.K))]),
        )
    )
    value = float(objective(problem, padded))
    lower = float(  # the optimum's certificate bounds every width from below (EXACT: itself)
        found.objective if found.lower_bound is None else found.lower_bound
    )
    return dataclasses.replace(
        found,
        objective=value,
        weights=list(padded.weights),
        network=padded,
        status=Status.CERTIFIED,
        rel_gap=max(value - lower, 0.0) / abs(value) if value else 0.0,
        m_star=int(np.sum(live)),
        directions=W1[:, live] / np.linalg.norm(W1[:, live], axis=0, keepdims=True),
        info={**found.info, "narrower_than_found": int(found.m_star)},
    )


def _optimum_fields(result: TrialResult, problem: Problem, net: Network, opt, wide=None) -> None:
    """m*, the neuron alignment, and the best bracket where P* is unknown (THEORY §10, §7).

    Exact / certified optimum: ``m_star`` (its active neurons / paths,
    :attr:`~solvers.Optimum.m_star`), the solver's certified relative gap (``optimum_rel_gap``) and,
    for §10's family, :func:`neuron_alignment`. Otherwise — a ``bracket`` optimum, ``NotCovered``
    or a width below m* (``wide``, see :func:`_optimum`) — P* is bracketed by ``lower_bound`` =
    the best certified bound (the trial's certificate, the bracket's own lower bound, the P* of
    any width) and ``upper_bound`` = the best objective known (the trained net — SGD or
    polished — and the bracket's feasible network); ``not_covered`` says why there is no exact
    value. A width below m* also logs ``m_star`` and ``p_star_any_width`` (and, for §10, the
    alignment with the wide optimum's neurons), and ``width_search_objective``: the best
    width-m network refit from the wide optimum's neurons
    (:func:`solvers.vector_relu.best_at_width`, two-layer ReLU without biases), which
    ``upper_bound`` includes; ``sgd_objective`` stays SGD's alone. A bracket whose network is
    wider than the trial (raw K = 3 at width 10) likewise: its lower end bounds every width, its
    network's value is not a width-m value, so the width-m refit of it stands in its place. Where
    :mod:`solvers.min_width` proves them: ``min_width`` (the smallest optimal width) and
    ``min_width_lower`` (a lower bound on every optimal width).
    """
    proof = _min_width(problem, opt if opt is not None and opt.is_exact else wide)
    if proof is not None and proof.width is not None:
        result.extra["min_width"] = float(proof.width)
    if proof is not None and proof.lower > 0:
        result.extra["min_width_lower"] = float(proof.lower)
    if opt is not None and opt.is_exact:
        result.m_star = opt.m_star
        result.p_star_kind = p_star_kind(problem, opt)
        result.extra["optimum_rel_gap"] = opt.rel_gap
        if opt.family == TWO_LAYER and opt.network is not None:
            result.w1_alignment = neuron_alignment(problem, net, opt.network)
        return
    upper = min(float(objective(problem, net)), float(result.sgd_objective))  # polished or SGD
    lower = float(result.certificate) if result.certificate is not None else -math.inf
    if wide is not None:  # width below m*: P* (any width) bounds this problem from below
        lower = max(lower, float(wide.lower_bound))
        result.m_star = wide.m_star
        result.extra["p_star_any_width"] = float(wide.objective)
        result.p_star_kind = p_star_kind(problem, wide)
        if wide.family == TWO_LAYER and wide.network is not None:
            result.w1_alignment = neuron_alignment(problem, net, wide.network)
        if wide.network is not None:  # the wide optimum's neurons, m of them refit
            upper = _width_search(result, problem, wide.network, upper)
    if opt is not None:  # a bracket: [its certified lower bound, its feasible network's value]
        wider = (
            problem.width is not None
            and opt.network is not None
            and len(opt.network.weights) == 2
            and int(np.sum(_live(opt.network))) > problem.width
        )
        if not wider:
            upper = min(upper, float(opt.objective))
        else:  # its network is wider than this trial: its m largest neurons refit at width m
            upper = _width_search(result, problem, opt.network, upper)
        lower = max(lower, opt.lower_bound)
        result.family = opt.family
        result.not_covered = (
            f"{opt.family}: P* only bracketed in [{lower:.6g}, {upper:.6g}] "
            f"(status {opt.status.value}: the solver's own bracket has relative width "
            f"{opt.rel_gap:.3g} — activation patterns sampled beyond "
            f"the enumeration cap, or the solver stopped before its tolerance)"
        )
    if not math.isfinite(lower) or not math.isfinite(upper):
        return
    result.upper_bound, result.lower_bound = upper, lower
    result.bracket_rel_width = (upper - lower) / max(abs(upper), 1e-300)


def _width_search(result: TrialResult, problem: Problem, wider: Network, upper: float) -> float:
    """``wider``'s neurons refit at the trial's width (:func:`best_at_width`, a feasible network:
    logged as ``width_search_objective``); returns ``upper`` lowered to its value."""
    narrow = best_at_width(problem, wider, problem.width)
    if narrow is None:
        return upper
    result.extra["width_search_objective"] = float(objective(problem, narrow))
    return min(upper, result.extra["width_search_objective"])


def _analyse(
    spec: TrialSpec,
    problem: Problem,
    out: TrainOutput,
    index: int,
) -> TrialResult:
    """Everything measured on network ``index`` of ``out``.

    ``sgd_objective``, the gaps and the certificate refer to SGD ALONE (``out.sgd_networks``,
    before the L-BFGS polish: "does SGD reach P*?"); ``polished_objective`` is the objective
    after the polish (``train.polish > 0`` only). The structure statistics (layers, W_1
    alignment, spline, neural collapse) are those of the network the trial ends with: the
    polished one when there is a polish (it sharpens the structure SGD found, THEORY §8).
    """
    sgd_net = out.sgd_networks[index] if out.sgd_networks is not None else out.networks[index]
    sgd_objective = float(
        out.sgd_objectives[index] if out.sgd_objectives is not None else out.objectives[index]
    )
    net = out.networks[index]
    diverged = bool(out.diverged[index]) or not math.isfinite(sgd_objective)
    result = TrialResult(
        key=spec.key,
        status="diverged" if diverged else "finished",
        sgd_objective=sgd_objective,
        device=out.device,
        curve_steps=[int(s) for s in out.curve_steps],
    )
    if spec.train.polish > 0 and not diverged:
        result.polished_objective = float(out.objectives[index])
        info = out.polish_info[index] if out.polish_info is not None else None
        result.extra.update(_scalars("polish", info or {}))  # iterations, grad_norm
    result.curves["objective"] = [float(v) for v in out.curves[index]]
    if out.norm_ratios is not None:
        for layer in range(out.norm_ratios.shape[1]):
            result.curves[f"norm_ratio.{layer + 1}"] = [
                float(v) for v in out.norm_ratios[index, layer]
            ]
    if diverged:
        return result

    # ½‖Y‖²: the objective of the zero network (analysis flags P* equal to it: nothing to test)
    result.extra["null_objective"] = 0.5 * float(np.sum(np.square(problem.Y)))
    # what the data IS, however it was made: whitened iff this is ≤ solvers.detect.WHITENED_TOL
    gram = problem.X @ problem.X.T
    result.extra["whitening_error"] = float(np.linalg.norm(gram - np.eye(len(gram))))
    if problem.Y.shape[1] == 1:  # ‖y₊‖, ‖y₋‖: §3's closed form and its stationary points
        y = problem.Y[:, 0]
        result.extra["y_plus_norm"] = float(np.linalg.norm(np.maximum(y, 0.0)))
        result.extra["y_minus_norm"] = float(np.linalg.norm(np.maximum(-y, 0.0)))
    found, wide, result.not_covered = _optimum(
        problem, (sgd_net, net) if problem.depth == 2 else ()
    )
    opt = found if found is not None and found.is_exact else None  # P* known (§1–§6, §10)
    if opt is not None:
        result.exact_objective = float(opt.objective)
        result.family = opt.family
    result.certificate = float(
        certificate(problem, sgd_net, optimum=found if found is not None else wide)
    )
    result.extra["dual_bound"] = float(dual_bound(problem, sgd_net))
    if deep_relu_dual_applies(problem):  # the same (remembered) optimisation as dual_bound's
        deep = deep_relu_dual(problem, problem.Y - forward(problem, sgd_net))
        result.extra["deep_dual_limit"] = float(deep.limit)
    result.layers = _layers(net)
    _optimum_fields(result, problem, net, found, wide)
    if (
        opt is not None and not problem.batchnorm and opt.family != TWO_LAYER
    ):  # BN's earlier layers are scale-invariant, unconstrained
        # rank of the closed-form optimum's first layer (THEORY §1: #{s*_k > 0})
        result.extra["predicted_rank"] = float(layer_stats([opt.weights[0]])[0]["rank"])
        directions = _predicted_directions(opt)
        if directions is not None:
            # linear nets determine only the span of W_1; ReLU nets its neurons, with sign
            linear = problem.activation == "linear"
            result.w1_alignment = float(
                direction_alignment(net.weights[0], directions, subspace=linear, signed=not linear)
            )
    if spec.data.kind == "spline_1d":
        x = problem.X[:, 0]
        grid = np.linspace(float(x.min()), float(x.max()), SPLINE_GRID)
        f_grid = fitted_function(problem, net, grid)
        stats = spline_stats(x, problem.Y[:, 0], f_grid, grid)
        kinks = stats.pop("kinks", [])
        result.extra.update(_scalars("spline", stats))
        if opt is not None and opt.network is not None:  # the exact optimum's own kinks (§5, §10)
            f_opt = fitted_function(problem, opt.network, grid)
            result.extra.update(
                _scalars("spline_opt", spline_stats(x, problem.Y[:, 0], f_opt, grid))
            )
        result.arrays.update(
            x=x.tolist(),
            y=problem.Y[:, 0].tolist(),
            grid=grid.tolist(),
            f=f_grid.tolist(),
            kinks=list(map(float, kinks)),
        )
    if spec.model.batchnorm:
        result.extra.update(_collapse(problem, net))
        if opt is not None and opt.network is not None:  # the prediction: NC of the optimum
            result.extra.update(_collapse(problem, opt.network, prefix="nc_opt"))
    if spec.model.ball != "none":  # THEORY §9 / E8: both balls measured, whichever is named
        from solvers.rescaled import rescaled_both

        result.extra.update({f"rescaled.{k}": v for k, v in rescaled_both(problem).items()})
    return result


def _scalars(prefix: str, values: dict) -> dict[str, float]:
    """``{prefix.name: value}`` for the real-number entries of ``values`` (strings, arrays dropped)."""
    return {
        f"{prefix}.{k}": float(v)
        for k, v in values.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    }


def _collapse(problem: Problem, net: Network, prefix: str = "nc") -> dict[str, float]:
    """Neural-collapse statistics of the last hidden features (THEORY §6), one-hot targets only
    (``nc_opt.*`` for the closed-form optimal network: what theory predicts for these classes)."""
    from solvers.batchnorm import neural_collapse
    from solvers.problem import last_hidden

    Y = problem.Y
    if not (np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1)):
        return {}
    H = last_hidden(problem, net)
    stats = neural_collapse(H, Y.argmax(axis=1), W=np.asarray(net.weights[-1]))
    return _scalars(prefix, stats)


def run_batch(
    specs: Sequence[TrialSpec],
    *,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> list[TrialResult]:
    """Run trials of one batch shape together; one result per spec, in order."""
    if not specs:
        return []
    shapes = {s.batch_shape() for s in specs}
    if len(shapes) != 1:
        raise ValueError(
            f"specs: a batch must share one batch_shape, got {len(shapes)} different ones"
        )
    started = time.perf_counter()
    results: list[TrialResult | None] = [None] * len(specs)
    problems: list[Problem] = []
    index: list[int] = []
    for i, spec in enumerate(specs):
        try:
            problems.append(make_problem(spec))
            index.append(i)
        except Exception:
            results[i] = _failed(spec, device, started)
    if problems:
        batch = [specs[i] for i in index]
        try:
            out = train(
                problems,
                _train_config(batch[0]),
                **_per_network(batch),
                device=device,
                progress=progress,
            )
        except Exception:
            for i in index:
                results[i] = _failed(specs[i], device, started)
            out = None
        if out is not None:
            share = out.wall_time / len(problems)
            # the problems another process is solving now wait till last (sweep.solve_cache)
            keys = [problem_key(p) if _shares_optimum(p) else None for p in problems]
            for j in order(keys):
                i = index[j]
                t0 = time.perf_counter()
                try:
                    results[i] = _analyse(specs[i], problems[j], out, j)
                    results[i].check_declared()  # an undeclared metric fails the trial
                except Exception:
                    results[i] = _failed(specs[i], device, t0)
                results[i].wall_time = share + (time.perf_counter() - t0)
    return [r for r in results if r is not None]
