"""Grid expansion and batching: pure functions, no Ray, no MLflow.

A validated :class:`sweep.config.Sweep` holds blocks; each block gives every trial field a
tuple of values. A block expands to the Cartesian product of its tuples (fields in the
fixed order of :meth:`TrialSpec.params`, so the order of trials is reproducible), and the
grid is the union of its blocks with repeated points (equal ``key``) kept once.

Trials whose :meth:`TrialSpec.batch_shape` agree train together in one call of the batched
trainer; :func:`batches` groups them, at most ``max_batch`` per batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sweep.config import GROUP_SPECS, ConfigError, Sweep, check_spec
from sweep.schema import TrialSpec

__all__ = ["batches", "expand", "varying_fields"]


def _spec(point: dict[str, object], experiment: str) -> TrialSpec:
    groups = {}
    for group, typ in GROUP_SPECS.items():
        prefix = group + "."
        groups[group] = typ(
            **{k[len(prefix) :]: v for k, v in point.items() if k.startswith(prefix)}
        )
    return TrialSpec(**groups, seed=int(point["seed"]), experiment=experiment)  # type: ignore[arg-type]


def expand(sweep: Sweep) -> list[TrialSpec]:
    """Every trial of the sweep, each point once (first occurrence kept), in a stable order.

    Raises :class:`ConfigError` if a point is inconsistent (e.g. ``data.outputs > data.n``)
    or the grid has more than ``sweep.max_trials`` points.
    """
    out: dict[str, TrialSpec] = {}
    limit = sweep.options.max_trials
    for block in sweep.blocks:
        names = list(block.values)
        size = 1
        for name in names:
            size *= len(block.values[name])
        if size + len(out) > limit:
            raise ConfigError(
                f"the grid expands to more than sweep.max_trials={limit} trials; "
                f"shrink an axis or raise sweep.max_trials."
            )
        for combo in itertools.product(*(block.values[n] for n in names)):
            spec = _spec(dict(zip(names, combo, strict=True)), block.experiment)
            check_spec(spec)
            out.setdefault(spec.key, spec)
    return list(out.values())


def batches(specs: Sequence[TrialSpec], max_batch: int) -> list[list[TrialSpec]]:
    """Group trials of equal ``batch_shape()`` into batches of at most ``max_batch``.

    Groups keep the order in which their first trial appears; batches of one group are
    filled greedily in order, so the same trials always form the same batches.
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
    groups: dict[tuple, list[TrialSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.batch_shape(), []).append(spec)
    out: list[list[TrialSpec]] = []
    for members in groups.values():
        out.extend(members[i : i + max_batch] for i in range(0, len(members), max_batch))
    return out


def varying_fields(specs: Sequence[TrialSpec]) -> list[str]:
    """Names of the params that take more than one value among ``specs`` (the grid's axes)."""
    if not specs:
        return []
    seen: dict[str, set] = {}
    for spec in specs:
        for k, v in spec.params().items():
            seen.setdefault(k, set()).add(v)
    return [k for k in specs[0].params() if len(seen[k]) > 1]
