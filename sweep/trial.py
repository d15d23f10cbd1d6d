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
from collections.abc import Callable, Sequence

import numpy as np

from solvers import Network, NotCovered, Problem
from solvers.data import make_dataset
from solvers.dual import certificate, dual_bound
from solvers.sgd import TrainConfig, TrainOutput, train
from solvers.solve import solve
from solvers.structure import direction_alignment, fitted_function, layer_stats, spline_stats
from sweep.schema import PER_NETWORK, LayerStats, TrialResult, TrialSpec

__all__ = ["make_problem", "run_batch"]

RANK_TOL = 1e-6  # a singular value counts towards the rank when > RANK_TOL * max(1, σ_1)
SPLINE_GRID = 801  # points on which a 1-D network is evaluated for spline statistics


def make_problem(spec: TrialSpec) -> Problem:
    """The training problem of one trial (data seeded by ``spec.data_seed``)."""
    d = spec.data
    X, Y = make_dataset(d.kind, d.targets, n=d.n, d=d.d, outputs=d.outputs, seed=spec.data_seed)
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
        for s in layer_stats(list(net.weights), rank_tol=RANK_TOL)
    ]


def _predicted_directions(opt) -> np.ndarray | None:
    """Unit first-layer directions of the exact optimum (d × r), when it has any."""
    dirs = opt.info.get("w1_directions")
    if dirs is not None:
        return np.asarray(dirs, dtype=np.float64)
    W1 = np.asarray(opt.weights[0], dtype=np.float64)
    norms = np.linalg.norm(W1, axis=0)
    active = norms > 1e-12 * max(1.0, float(norms.max(initial=0.0)))
    if not active.any():
        return None
    return W1[:, active] / norms[active]


def _analyse(
    spec: TrialSpec,
    problem: Problem,
    net: Network,
    sgd_objective: float,
    diverged: bool,
    out: TrainOutput,
    index: int,
) -> TrialResult:
    result = TrialResult(
        key=spec.key,
        status="diverged" if diverged else "finished",
        sgd_objective=sgd_objective,
        device=out.device,
        curve_steps=[int(s) for s in out.curve_steps],
    )
    result.curves["objective"] = [float(v) for v in out.curves[index]]
    if out.norm_ratios is not None:
        for layer in range(out.norm_ratios.shape[1]):
            result.curves[f"norm_ratio.{layer + 1}"] = [
                float(v) for v in out.norm_ratios[index, layer]
            ]
    if diverged:
        return result

    try:
        opt = solve(problem)
        result.exact_objective = float(opt.objective)
        result.family = opt.family
    except NotCovered as exc:
        opt = None
        result.not_covered = str(exc)
    result.certificate = float(certificate(problem, net, optimum=opt))
    result.extra["dual_bound"] = float(dual_bound(problem, net))
    result.layers = _layers(net)
    if (
        opt is not None and not problem.batchnorm
    ):  # BN's earlier layers are scale-invariant, unconstrained
        # rank of the closed-form optimum's first layer (THEORY §1: #{s*_k > 0})
        result.extra["predicted_rank"] = float(
            layer_stats([opt.weights[0]], rank_tol=RANK_TOL)[0]["rank"]
        )
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
        result.arrays.update(
            x=x.tolist(),
            y=problem.Y[:, 0].tolist(),
            grid=grid.tolist(),
            f=f_grid.tolist(),
            kinks=list(map(float, kinks)),
        )
    if spec.model.batchnorm:
        result.extra.update(_collapse(problem, net))
    if spec.model.ball != "none":
        from solvers.rescaled import rescaled_gap

        gap = rescaled_gap(problem, ball=spec.model.ball)
        result.extra.update(_scalars("rescaled", gap))
    return result


def _scalars(prefix: str, values: dict) -> dict[str, float]:
    """``{prefix.name: value}`` for the real-number entries of ``values`` (strings, arrays dropped)."""
    return {
        f"{prefix}.{k}": float(v)
        for k, v in values.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    }


def _collapse(problem: Problem, net: Network) -> dict[str, float]:
    """Neural-collapse statistics of the last hidden features (THEORY §6), one-hot targets only."""
    from solvers.batchnorm import neural_collapse
    from solvers.problem import last_hidden

    Y = problem.Y
    if not (np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1)):
        return {}
    H = last_hidden(problem, net)
    stats = neural_collapse(H, Y.argmax(axis=1), W=np.asarray(net.weights[-1]))
    return _scalars("nc", stats)


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
            for j, i in enumerate(index):
                t0 = time.perf_counter()
                try:
                    results[i] = _analyse(
                        specs[i],
                        problems[j],
                        out.networks[j],
                        float(out.objectives[j]),
                        bool(out.diverged[j]) or not math.isfinite(float(out.objectives[j])),
                        out,
                        j,
                    )
                except Exception:
                    results[i] = _failed(specs[i], device, t0)
                results[i].wall_time = share + (time.perf_counter() - t0)
    return [r for r in results if r is not None]
