"""Grid expansion and batching: pure functions, no Ray, no MLflow.

A validated :class:`sweep.config.Sweep` holds blocks; each block gives every trial field a
tuple of values. A block expands to the Cartesian product of its tuples (fields in the
fixed order of :meth:`TrialSpec.params`, so the order of trials is reproducible), and the
grid is the union of its blocks with repeated points (equal ``key``) kept once.

Nothing here needs the whole grid in memory to describe it: :func:`count`, :func:`axes` and
:func:`batch_count` work on the blocks, and :func:`iter_specs` expands lazily, so a grid of
10^6 points is sized and refused (``sweep.max_trials``) at once and dry-runs as a stream.
A shortened dry run makes only the trials it prints: the first ones (:func:`iter_specs`) and
the last ones (:func:`tail_specs`), and checks the points in between (:func:`check_points`).

Trials whose :meth:`TrialSpec.batch_shape` agree train together in one call of the batched
trainer; :func:`batches` groups them, at most ``max_batch`` per batch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter, itemgetter

from sweep.config import GROUP_SPECS, Block, ConfigError, Sweep, check_spec
from sweep.schema import PER_NETWORK, TrialSpec, group_params

__all__ = [
    "axes",
    "batch_count",
    "batches",
    "check_points",
    "check_size",
    "count",
    "expand",
    "iter_specs",
    "tail_specs",
    "varying_fields",
]


def _block_size(block: Block) -> int:
    return math.prod(len(v) for v in block.values.values())


def count(sweep: Sweep) -> int:
    """Trials of the sweep, counted without expanding it: Σ over blocks of the product of
    their axis lengths, less the points two blocks share (repeated points run once).

    Exact: blocks of different experiments never share a point; two blocks of one
    experiment share the Cartesian product of the intersections of their value sets.
    With more than two blocks of one experiment overlapping each other the shared points
    are counted by walking the smaller blocks' points (rare; grids stay small then).
    """
    total = sum(_block_size(b) for b in sweep.blocks)
    by_exp: dict[str, list[Block]] = {}
    for b in sweep.blocks:
        by_exp.setdefault(b.experiment, []).append(b)
    for group in by_exp.values():
        overlaps = [
            (i, j, _shared(group[i], group[j]))
            for i in range(len(group))
            for j in range(i + 1, len(group))
        ]
        overlaps = [o for o in overlaps if o[2]]
        if not overlaps:
            continue
        if len({i for o in overlaps for i in o[:2]}) == 2 * len(overlaps):  # disjoint pairs
            total -= sum(o[2] for o in overlaps)
        else:
            seen: set[tuple] = set()
            total -= sum(_block_size(b) for b in group)
            for b in group:
                names = list(b.values)
                seen.update(
                    tuple(zip(names, c, strict=True))
                    for c in itertools.product(*(b.values[n] for n in names))
                )
            total += len(seen)
    return total


def _shared(a: Block, b: Block) -> int:
    """Points two blocks of one experiment have in common."""
    out = 1
    for name, values in a.values.items():
        other = b.values.get(name, ())
        out *= sum(1 for v in values if v in other)
        if out == 0:
            return 0
    return out


def check_size(sweep: Sweep) -> int:
    """The trial count, or :class:`ConfigError` when it exceeds ``sweep.max_trials``."""
    n = count(sweep)
    limit = sweep.options.max_trials
    if n > limit:
        raise ConfigError(
            f"the grid expands to {n} trials, more than sweep.max_trials={limit}; "
            f"shrink an axis or raise sweep.max_trials."
        )
    return n


def iter_specs(sweep: Sweep) -> Iterator[TrialSpec]:
    """Every trial of the sweep, lazily, each point once (first occurrence kept), in a stable
    order: blocks in order, each the Cartesian product of its axes in params order.

    Checks the size first (:func:`check_size`, no expansion); each point is checked
    (:func:`~sweep.config.check_spec`) as it is produced, so :class:`ConfigError` may come
    after some points were yielded.
    """
    check_size(sweep)
    seen: set[str] | None = set() if len(sweep.blocks) > 1 else None
    valid: dict[tuple, tuple] = {}
    for block in sweep.blocks:
        for spec in _block_specs(block, itertools.product(*block.values.values()), valid):
            if seen is not None:
                if spec.key in seen:
                    continue
                seen.add(spec.key)
            yield spec


def _block_specs(block: Block, combos: Iterable[tuple], valid: dict) -> Iterator[TrialSpec]:
    """The trials of ``block`` at ``combos`` (value tuples in the order of ``block.values``),
    each checked (:func:`~sweep.config.check_spec`) unless its (data, model, train) is in
    ``valid``: (data, model, train) already checked (seeds repeat them), by their ids; the
    value holds the instances, so no id is reused by a later instance while it is in use."""
    names = list(block.values)
    split = {
        group: [(i, n[len(group) + 1 :]) for i, n in enumerate(names) if n.startswith(group + ".")]
        for group in GROUP_SPECS
    }
    made: dict[str, dict[tuple, object]] = {group: {} for group in GROUP_SPECS}
    seed_at = names.index("seed")
    # a group whose fields all take one value is one instance for the whole block
    fixed = {
        group: cls(**{f: block.values[names[i]][0] for i, f in split[group]})
        for group, cls in GROUP_SPECS.items()
        if all(len(block.values[names[i]]) == 1 for i, _ in split[group])
    }
    # (group, its values out of a combo as one tuple) for the groups that vary
    varying = [(g, _tuple_getter([i for i, _ in split[g]])) for g in GROUP_SPECS if g not in fixed]
    for combo in combos:
        groups = dict(fixed)
        for group, pick in varying:  # one instance per distinct value tuple
            values = pick(combo)
            inst = made[group].get(values)
            if inst is None:
                inst = made[group][values] = GROUP_SPECS[group](
                    **{f: v for (_, f), v in zip(split[group], values, strict=True)}
                )
            groups[group] = inst
        spec = TrialSpec(**groups, seed=int(combo[seed_at]), experiment=block.experiment)
        # by identity: equal points of one block share their instances, and a tuple of
        # ids hashes without hashing the fields
        point = (id(groups["data"]), id(groups["model"]), id(groups["train"]))
        if point not in valid:  # check_spec reads no seed and no experiment
            check_spec(spec)
            valid[point] = (groups["data"], groups["model"], groups["train"])
        yield spec


def check_points(sweep: Sweep) -> None:
    """:func:`~sweep.config.check_spec` on every distinct (data, model, train) point of the
    sweep without making its trials: check_spec reads no seed, so each block is walked at
    its first seed only (a 10^6-trial grid of 1000 β × 1001 seeds checks 1000 points).
    Raises :class:`ConfigError` on the first inconsistent point, as :func:`iter_specs` does."""
    valid: dict[tuple, tuple] = {}
    for block in sweep.blocks:
        values = [v[:1] if n == "seed" else v for n, v in block.values.items()]
        for _ in _block_specs(block, itertools.product(*values), valid):
            pass


def tail_specs(sweep: Sweep, k: int) -> list[TrialSpec]:
    """The last ``k`` trials of :func:`iter_specs`, in its order, without making the others.

    Walks the blocks backwards, each block's product backwards (the product of the reversed
    axes is the reversed product), and skips a point that an earlier block of the same
    experiment holds (there it comes first), as :func:`count` counts shared points: a point
    is in a block when each of its values is among that block's values for the field.
    """
    out: list[TrialSpec] = []
    valid: dict[tuple, tuple] = {}
    blocks = sweep.blocks
    for j in range(len(blocks) - 1, -1, -1):
        if len(out) >= k:
            break
        block = blocks[j]
        names = list(block.values)
        earlier = [
            [set(b.values[n]) for n in names]
            for b in blocks[:j]
            if b.experiment == block.experiment
        ]
        combos = itertools.product(*(block.values[n][::-1] for n in names))
        if earlier:
            combos = (
                c
                for c in combos
                if not any(all(v in s for v, s in zip(c, sets, strict=True)) for sets in earlier)
            )
        out.extend(itertools.islice(_block_specs(block, combos, valid), k - len(out)))
    return out[::-1]


def _tuple_getter(indices: list[int]) -> Callable[[tuple], tuple]:
    """``lambda combo: tuple(combo[i] for i in indices)``, at C speed."""
    if len(indices) == 1:
        i = indices[0]
        return lambda combo: (combo[i],)
    return itemgetter(*indices) if indices else lambda combo: ()


def expand(sweep: Sweep) -> list[TrialSpec]:
    """Every trial of the sweep as a list (:func:`iter_specs`).

    Raises :class:`ConfigError` if a point is inconsistent (e.g. ``data.outputs > data.n``)
    or the grid has more than ``sweep.max_trials`` points.
    """
    return list(iter_specs(sweep))


def axes(sweep: Sweep) -> list[str]:
    """The params that take more than one value over the sweep, from its blocks alone
    (equal to :func:`varying_fields` of its expansion), in params order."""
    union: dict[str, set] = {}
    for b in sweep.blocks:
        for name, values in b.values.items():
            union.setdefault(name, set()).update(values)
        union.setdefault("experiment", set()).add(b.experiment)
    return [k for k in TrialSpec().params() if len(union.get(k, ())) > 1]


def batch_count(sweep: Sweep, max_batch: int) -> int:
    """Number of :func:`batches` of the sweep's trials, counted from the blocks: trials that
    differ only in per-network fields (:data:`~sweep.schema.PER_NETWORK`), the seed and the
    experiment share a batch shape. Blocks that share points (small grids) are expanded."""
    if count(sweep) != sum(_block_size(b) for b in sweep.blocks):
        return len(batches(expand(sweep), max_batch))
    sizes: dict[tuple, int] = {}
    for b in sweep.blocks:
        shape_names = [
            n for n in b.values if n.split(".")[0] in GROUP_SPECS and n not in PER_NETWORK
        ]
        per_shape = math.prod(len(v) for n, v in b.values.items() if n not in shape_names)
        for combo in itertools.product(*(b.values[n] for n in shape_names)):
            key = tuple(zip(shape_names, combo, strict=True))
            sizes[key] = sizes.get(key, 0) + per_shape
    return sum(-(-n // max_batch) for n in sizes.values())


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
    """Names of the params that take more than one value among ``specs`` (the grid's axes).

    One pass over the specs collecting their distinct group instances (grid points share
    them: a 10^5-point grid holds a handful), then the params of those instances only."""
    if not specs:
        return []
    # id -> instance: specs keep every instance alive while this runs, so ids are unique
    groups = {g: {id(i): i for i in map(attrgetter(g), specs)} for g in GROUP_SPECS}
    seeds = {s.seed for s in specs}
    experiments = {s.experiment for s in specs}
    seen: dict[str, set] = {"seed": seeds, "experiment": experiments}
    for g, distinct in groups.items():
        for inst in distinct.values():
            for k, v in group_params(g, inst).items():
                seen.setdefault(k, set()).add(v)
    return [k for k in specs[0].params() if len(seen.get(k, ())) > 1]
