"""The dry run's time estimate: from the ``wall_time`` of the trials already recorded in the
store for the same grid (MLflow experiment), per batch shape (:meth:`TrialSpec.batch_shape`:
trials that differ only in per-network fields, the seed or the experiment train alike).

Read with :mod:`sqlite3` alone from a SQLite store (read-only, no MLflow import, like
:func:`sweep.store.recorded_keys`); a server store, or a store without runs of the grid, gives
no estimate. The figure is the sum, over the trials still to run, of the median recorded
``wall_time`` of their shape: trial time on one worker (each trial's share of its batch);
several workers divide it.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Iterable

from sweep.schema import TAG_KIND, TAG_TRIAL_KEY, TrialSpec
from sweep.store import LOCK_WAIT, Store, sqlite_path

__all__ = ["estimate_line", "recorded_walls"]

Shape = tuple[tuple[str, str], ...]


def _shape(params: dict[str, str]) -> Shape:
    """A batch shape from params as MLflow stores them (strings)."""
    spec_shape = TrialSpec.from_params(params).batch_shape()
    return tuple((name, str(value)) for name, value in spec_shape)


def recorded_walls(store: Store, experiment: str) -> tuple[dict[Shape, list[float]], set[str]]:
    """``({shape: [wall_time, ...]}, keys)`` of the FINISHED trial runs of ``experiment`` in a
    SQLite store; empty when there are none or the store is not a readable SQLite file."""
    path = sqlite_path(store.uri)
    if path is None or not path.is_file():
        return {}, set()
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=LOCK_WAIT)
    except sqlite3.Error:
        return {}, set()
    runs = (
        "SELECT r.run_uuid FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        "JOIN tags k ON k.run_uuid = r.run_uuid WHERE e.name = ? AND k.key = ? "
        "AND k.value = 'trial' AND r.status = 'FINISHED' AND r.lifecycle_stage = 'active'"
    )
    try:
        walls = dict(
            con.execute(
                f"SELECT m.run_uuid, m.value FROM latest_metrics m WHERE m.key = 'wall_time' "
                f"AND m.run_uuid IN ({runs})",
                (experiment, TAG_KIND),
            ).fetchall()
        )
        params: dict[str, dict[str, str]] = {}
        for rid, key, value in con.execute(
            f"SELECT p.run_uuid, p.key, p.value FROM params p WHERE p.run_uuid IN ({runs})",
            (experiment, TAG_KIND),
        ):
            params.setdefault(rid, {})[key] = value
        keys = {
            k
            for (k,) in con.execute(
                f"SELECT t.value FROM tags t WHERE t.key = ? AND t.run_uuid IN ({runs})",
                (TAG_TRIAL_KEY, experiment, TAG_KIND),
            )
        }
    except sqlite3.Error:
        return {}, set()
    finally:
        con.close()
    out: dict[Shape, list[float]] = {}
    for rid, wall in walls.items():
        try:
            shape = _shape(params.get(rid, {}))
        except Exception:  # params of an older schema that no longer parse: not comparable
            continue
        out.setdefault(shape, []).append(float(wall))
    return out, keys


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(specs: Iterable[TrialSpec], store: Store, experiment: str) -> str | None:
    """One line for the dry run, or None when the store has no recorded trial of the grid."""
    walls, done = recorded_walls(store, experiment)
    if not walls:
        return None
    median = {shape: statistics.median(v) for shape, v in walls.items()}
    total, known, unknown, skipped = 0.0, 0, 0, 0
    for spec in specs:
        if spec.key in done:
            skipped += 1
            continue
        shape = tuple((n, str(v)) for n, v in spec.batch_shape())
        if shape in median:
            total += median[shape]
            known += 1
        else:
            unknown += 1
    recorded = sum(len(v) for v in walls.values())
    line = (
        f"estimate: {_duration(total)} of trial time on one worker for {known} trial(s) to run "
        f"(median wall_time per shape of {recorded} recorded trial(s) in {store.uri}; "
        f"{skipped} already recorded"
    )
    if unknown:
        line += f"; {unknown} trial(s) of shapes never recorded are not counted"
    return line + ")."
