"""Read a sweep back from MLflow into pandas (the reading side of :mod:`sweep.schema`).

A sweep is one MLflow experiment (named after its grid): a parent run per invocation
(tag ``run_kind=sweep``) and a child run per trial (tag ``run_kind=trial``,
``mlflow.parentRunId``). :func:`load` returns one row per trial key (a store may hold several
runs of one key: a failed run redone, a killed driver's run, or two drivers that ran the same
trial; the latest FINISHED run wins, else the latest run, and ``frame.attrs["superseded"]``
says how many runs were left out):

- params (``data.n``, ``model.depth``, ``train.beta``, ``seed``, ``experiment`` …) under the
  names the command line uses, cast once, here, from MLflow's strings to the types of
  :func:`sweep.schema.param_types` (``train.beta`` float64, ``model.bias`` bool …); a field
  added to the schema after a store was written reads as its default (the key rule of
  :meth:`sweep.schema.TrialSpec.key_params`: those trials ran at it). Analysis reads these
  columns as they are, without parsing them again;
- metrics (``sgd_objective``, ``exact_objective``, ``rel_gap``, ``certificate``,
  ``layer1.rank`` …, ``spline.*``, ``nc.*``, ``rescaled.*``: the declared names of
  :data:`sweep.schema.EXTRA_METRICS`; an old store's spellings, :data:`~sweep.schema.LEGACY_METRICS`,
  are renamed to them here) as float64, NaN where a run did not log one; the stepped training curves ``curve.*`` are left out (see :func:`load_curves`);
- ``status`` (the trial's own: finished | diverged | failed, from the ``trial_status`` tag,
  else derived from MLflow's run status), ``run_status`` (MLflow's), ``run_id``,
  ``parent_run_id``, ``run_name``, ``start_time``/``end_time`` (UTC timestamps) and the tags
  ``trial_key``, ``family``, ``not_covered``, ``grid``, ``sweep_id``, ``device``, ``ray_node_id``,
  ``git_commit``.

Which path reads the store:

- **SQL** — the store is MLflow's ``SqlAlchemyStore`` with the tables the sweep's own SQL
  writer checks (:meth:`sweep.sqlstore.SqlWriter.usable`): the embedded SQLite store, or a
  database URL (``postgresql://…``) given as the tracking URI. The runs with their tags, params
  and latest metrics come from :func:`sweep.sqlstore.read_runs` (four queries joined on the
  experiment id) and the curves from :func:`sweep.sqlstore.read_curves` (one query): a
  10,000-trial store in seconds instead of minutes (BENCHMARKS.md, "Reading a 10,000-trial
  store").
- **MLflow API** — every other store (an ``http://`` tracking server, a ``file:`` store, a SQL
  store whose schema differs from the tables checked), or :data:`SQL_READS` set to False:
  ``search_runs`` paged with ``page_token`` (so thousands of runs come back whole) and one
  ``get_metric_history`` call per run and curve (threaded).

Both give the same frames: the same rows in the same order, columns and dtypes, and ``attrs``
(tests/analysis/test_load_sql.py compares them). Nothing is ever re-solved here. The store
is opened by :func:`sweep.store.open_store` (the writer's module too) without ``create``: a
missing or unreadable store is one sentence (:class:`sweep.store.StoreError`), and reading
never creates or writes anything.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.schema import (
    ARTIFACT_RESULT,
    ARTIFACT_TRACEBACK,
    CURVE_PREFIX,
    LEGACY_METRICS,
    TAG_DEVICE,
    TAG_EXPERIMENT,
    TAG_FAMILY,
    TAG_GIT_COMMIT,
    TAG_GRID,
    TAG_KIND,
    TAG_NODE_ID,
    TAG_NOT_COVERED,
    TAG_RESULT_REF,
    TAG_STATUS,
    TAG_SWEEP_ID,
    TAG_TRIAL_KEY,
    TrialResult,
    TrialSpec,
    param_types,
)
from sweep.sqlstore import SqlWriter, read_curves, read_runs
from sweep.store import (
    KIND_SWEEP,
    KIND_TRIAL,
    PAGE_SIZE,
    SWEEP_FILTER,
    TAG_PARENT,
    TRIAL_FILTER,
    default_uri,
    open_store,
    search_runs,
    tracking_store,
)

__all__ = [
    "curves_from_results",
    "default_tracking_uri",
    "frame_from_results",
    "load",
    "load_curves",
    "load_parents",
    "load_results",
    "logged_expectation",
    "load_tracebacks",
]

_TAGS = (
    TAG_TRIAL_KEY,
    TAG_FAMILY,
    TAG_NOT_COVERED,
    TAG_GRID,
    TAG_SWEEP_ID,
    TAG_DEVICE,
    TAG_NODE_ID,
    TAG_GIT_COMMIT,
)
_MLFLOW_STATUS = {
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
    "RUNNING": "running",
}
_FIXED = ["run_id", "parent_run_id", "run_name", "status", "run_status", "start_time", "end_time"]
_CURVE_COLUMNS = ["run_id", "curve", "step", "value"]

SQL_READS = True  # False: every store is read through MLflow's API (tests and bench/reading.py)


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db`` (the sweep's default store)."""
    return default_uri()


def _open(tracking_uri: str | None, experiment: str):
    """(client, experiment id or None) of an existing store; never creates or writes anything
    (:class:`sweep.store.StoreError`, one sentence, for a missing or unreadable store)."""
    if not isinstance(experiment, str) or not experiment:
        raise ValueError(f"experiment must be a non-empty experiment name, got {experiment!r}")
    return open_store(tracking_uri or default_tracking_uri(), experiment, create=False)


def _engine(client):
    """The SQLAlchemy engine of ``client``'s store when the SQL path applies (see the module
    docstring), else None (MLflow's API path)."""
    if not SQL_READS:
        return None
    # the store MLflow builds for the client's URI (a database's: on the client's own engine)
    store = tracking_store(str(client.tracking_uri))
    return store.engine if SqlWriter.usable(store) else None


def _trial_runs(client, experiment_id: str, page_size: int, *, tags_only: bool = False) -> list:
    """The active trial runs (tag ``run_kind=trial``), as MLflow ``Run`` entities (API path)
    or :class:`sweep.sqlstore.RunRow` (SQL path: the same attributes and values; with
    ``tags_only`` their params and metrics are left unread)."""
    engine = _engine(client)
    parts = ("tags",) if tags_only else ("tags", "params", "metrics")
    if engine is not None:
        runs = read_runs(engine, experiment_id, kind=KIND_TRIAL, parts=parts)
    else:
        runs = search_runs(client, experiment_id, TRIAL_FILTER, page_size=page_size)
    if runs:
        return runs
    # stores written without run_kind tags: every child run is a trial
    if engine is not None:
        every = read_runs(engine, experiment_id, parts=parts)
    else:
        every = search_runs(client, experiment_id, "", page_size=page_size)
    return [
        r for r in every if TAG_PARENT in r.data.tags and r.data.tags.get(TAG_KIND) != KIND_SWEEP
    ]


def _latest_per_key(runs: Sequence) -> tuple[list, int]:
    """One run per trial key: the latest FINISHED run, else the latest run ("latest" by start
    time, then end time, then run id); runs without a key are kept. Returns (runs, superseded).
    """

    def order(r) -> tuple:
        return (
            r.info.status == "FINISHED",
            r.info.start_time or 0,
            r.info.end_time or 0,
            r.info.run_id,
        )

    best: dict[str, object] = {}
    for r in runs:
        key = r.data.tags.get(TAG_TRIAL_KEY) or f"run:{r.info.run_id}"
        if key not in best or order(r) > order(best[key]):
            best[key] = r
    return list(best.values()), len(runs) - len(best)


def _cast_column(values: list, typ: type) -> pd.Series:
    s = pd.Series(values, dtype=object)
    missing = s.isna()
    if typ is bool:
        out = s.map(lambda v: None if v is None else str(v).strip().lower() in ("true", "1", "yes"))
        return out.astype("boolean") if missing.any() else out.astype(bool)
    if typ is int:
        num = pd.to_numeric(s, errors="coerce")
        if num.isna().any():
            return num.round().astype("Int64")
        return num.round().astype(np.int64)
    if typ is float:
        return pd.to_numeric(s, errors="coerce").astype(np.float64)
    return s.where(~missing, None).astype(object)


def _run_row(r) -> dict:
    tags = r.data.tags
    mstatus = r.info.status
    row = {
        "run_id": r.info.run_id,
        "parent_run_id": tags.get(TAG_PARENT),
        "run_name": r.info.run_name,
        "status": tags.get(TAG_STATUS) or _MLFLOW_STATUS.get(mstatus, mstatus.lower()),
        "run_status": mstatus,
        "start_time": r.info.start_time,
        "end_time": r.info.end_time,
    }
    for t in _TAGS:
        row[t] = tags.get(t)
    params = dict(r.data.params)
    params.setdefault("experiment", tags.get(TAG_EXPERIMENT, ""))
    metrics = {k: v for k, v in r.data.metrics.items() if not k.startswith(CURVE_PREFIX)}
    return {"fixed": row, "params": params, "metrics": metrics}


def _frame(runs: Sequence) -> pd.DataFrame:
    return _build([_run_row(r) for r in runs])


def frame_from_results(
    specs: Sequence[TrialSpec], results: Sequence[TrialResult], *, grid: str = "trial"
) -> pd.DataFrame:
    """The frame :func:`load` would give for these trials, built in memory (no MLflow): the
    same columns and types, and the run names a sweep of grid ``grid`` over ``specs`` gives
    (:func:`sweep.tracking.child_run_name`: by what varies); ``run_id`` is the trial key,
    ``run_status`` mirrors ``status``."""
    from sweep.grid import varying_fields
    from sweep.tracking import child_run_name

    if len(specs) != len(results):
        raise ValueError(
            f"specs and results must have the same length, got {len(specs)} and {len(results)}"
        )
    axes = varying_fields(list(specs))
    rows = []
    for spec, res in zip(specs, results, strict=True):
        fixed = {
            "run_id": spec.key,
            "parent_run_id": None,
            "run_name": child_run_name(spec, axes, grid),
            "status": res.status,
            "run_status": "FAILED" if res.status == "failed" else "FINISHED",
            "start_time": None,
            "end_time": None,
            TAG_TRIAL_KEY: spec.key,
            TAG_FAMILY: res.family,
            TAG_NOT_COVERED: res.not_covered,
            TAG_DEVICE: res.device,
        }
        rows.append({"fixed": fixed, "params": spec.params(), "metrics": res.metrics()})
    frame = _build(rows)
    frame.attrs["superseded"] = 0
    return frame


def curves_from_results(specs: Sequence[TrialSpec], results: Sequence[TrialResult]) -> pd.DataFrame:
    """The long-form curves :func:`load_curves` would give for these trials (``run_id`` = key)."""
    if len(specs) != len(results):
        raise ValueError(
            f"specs and results must have the same length, got {len(specs)} and {len(results)}"
        )
    rows = [
        (spec.key, name, int(step), float(v))
        for spec, res in zip(specs, results, strict=True)
        for name, values in res.curves.items()
        for step, v in zip(res.curve_steps, values, strict=False)
        if v is not None and np.isfinite(float(v))
    ]
    out = pd.DataFrame(rows, columns=["run_id", "curve", "step", "value"])
    out = out.astype({"run_id": object, "curve": object, "step": np.int64, "value": np.float64})
    return out.sort_values(["run_id", "curve", "step"], kind="stable").reset_index(drop=True)


def _build(parts: list[dict]) -> pd.DataFrame:
    types = param_types()
    defaults = TrialSpec().params()
    rows, param_names, metric_names = [], set(), set()
    for part in parts:
        row = dict(part["fixed"])
        params = part["params"]
        if params.keys() - {"experiment"}:  # a trial's params, maybe from before a field existed:
            # a field missing from them was, by the key rule (TrialSpec.key_params), at its
            # default; so each param is one typed column, parsed here and nowhere else
            params = {**defaults, **params}
        for k, v in params.items():
            row[k] = v
            param_names.add(k)
        for k, v in part["metrics"].items():
            k = LEGACY_METRICS.get(k, k)  # an old store's spelling -> the declared name
            row[k] = v
            metric_names.add(k)
        rows.append(row)
    cols = _FIXED + list(_TAGS)
    ordered_params = list(types) + sorted(param_names - set(types))
    ordered_metrics = sorted(metric_names - set(ordered_params) - set(cols))
    columns = cols + ordered_params + ordered_metrics
    data: dict[str, pd.Series] = {}
    for c in columns:
        values = [row.get(c) for row in rows]
        if c in ("start_time", "end_time"):
            data[c] = pd.to_datetime(pd.Series(values, dtype="float64"), unit="ms", utc=True)
        elif c in ordered_params:
            data[c] = _cast_column(values, types.get(c, str))
        elif c in ordered_metrics:
            data[c] = pd.Series([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            data[c] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data, columns=columns)
    if "experiment" in frame:
        frame["experiment"] = frame["experiment"].fillna("").astype(str)
    return frame.sort_values(["experiment", "start_time", "run_id"], kind="stable").reset_index(
        drop=True
    )


def load(
    experiment: str,
    tracking_uri: str | None = None,
    *,
    curves: bool = False,
    page_size: int = PAGE_SIZE,
) -> pd.DataFrame:
    """One row per trial key of MLflow experiment ``experiment`` (a grid name): its latest
    FINISHED child run, else its latest child run; ``frame.attrs["superseded"]`` is the number
    of other runs of the same keys that were left out (0 for a store written by one driver
    without failures).

    ``tracking_uri``: a ``sqlite:///…`` store or an ``http://`` server (default:
    :func:`default_tracking_uri`). With ``curves=True`` the long-form training curves of
    :func:`load_curves` come back as ``frame.attrs["curves"]``. An experiment that does not
    exist gives an empty frame (with the fixed columns), not an error; a store that does not
    exist raises :class:`sweep.store.StoreError` (one sentence), and nothing is ever written.
    """
    if not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive int, got {page_size!r}")
    client, exp_id = _open(tracking_uri, experiment)
    runs = [] if exp_id is None else _trial_runs(client, exp_id, page_size)
    runs, superseded = _latest_per_key(runs)
    frame = _frame(runs)
    frame.attrs["superseded"] = superseded
    frame.attrs["experiment"] = experiment
    frame.attrs["tracking_uri"] = tracking_uri or default_tracking_uri()
    if curves:
        frame.attrs["curves"] = load_curves(
            experiment, tracking_uri, run_ids=list(frame["run_id"]), page_size=page_size
        )
    return frame


def load_parents(
    experiment: str, tracking_uri: str | None = None, *, page_size: int = PAGE_SIZE
) -> pd.DataFrame:
    """The parent (sweep) runs of ``experiment``, latest first (as ``search_runs`` orders them:
    start time descending, then run id): run_id, run_name, run_status, times, then
    ``metric.*`` and ``param.*`` (sorted by name)."""
    client, exp_id = _open(tracking_uri, experiment)
    engine = None if exp_id is None else _engine(client)
    if exp_id is None:
        runs = []
    elif engine is not None:
        runs = read_runs(engine, exp_id, kind=KIND_SWEEP)
        runs.sort(key=lambda r: r.info.run_id)
        runs.sort(key=lambda r: (r.info.start_time is None, -(r.info.start_time or 0)))
    else:
        runs = search_runs(client, exp_id, SWEEP_FILTER, page_size=page_size)
    rows = []
    for r in runs:
        rows.append(
            {
                "run_id": r.info.run_id,
                "run_name": r.info.run_name,
                "run_status": r.info.status,
                "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True),
                "end_time": pd.to_datetime(r.info.end_time, unit="ms", utc=True)
                if r.info.end_time
                else pd.NaT,
                **{f"metric.{k}": v for k, v in sorted(r.data.metrics.items())},
                **{f"param.{k}": v for k, v in sorted(r.data.params.items())},
            }
        )
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "run_name", "run_status"])


def logged_expectation(parents: pd.DataFrame | None) -> float | None:
    """The optimizer expectation ``grid.expect_reach`` the latest sweep invocation (the first
    row of :func:`load_parents`) logged on its parent run; None when it set none. A logged
    value that is not a fraction in (0, 1] raises :class:`sweep.store.StoreError`."""
    from sweep.config import EXPECT_REACH_PARAM, ConfigError, check_expect_reach
    from sweep.store import StoreError

    col = f"param.{EXPECT_REACH_PARAM}"
    if parents is None or parents.empty or col not in parents:
        return None
    raw = parents[col].iloc[0]
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = raw
    where = f"{EXPECT_REACH_PARAM} logged on parent run {parents['run_id'].iloc[0]}"
    try:
        return check_expect_reach(value, where)
    except ConfigError as exc:
        raise StoreError(str(exc)) from None


def _curve_runs(client, exp_id: str, run_ids: set[str] | None, page_size: int) -> list:
    """The trial runs whose curves :func:`load_curves` reads: those in ``run_ids``, or (None)
    the runs :func:`load` keeps, one per trial key (SQL path: their tags only)."""
    runs = _trial_runs(client, exp_id, page_size, tags_only=_engine(client) is not None)
    if run_ids is None:
        runs, _ = _latest_per_key(runs)
    return [r for r in runs if run_ids is None or r.info.run_id in run_ids]


def _curve_keys(runs: Sequence) -> dict[str, list]:
    """run id → its ``curve.*`` metric keys (from the latest metrics of each run)."""
    return {
        r.info.run_id: sorted(k for k in r.data.metrics if k.startswith(CURVE_PREFIX)) for r in runs
    }


def load_curves(
    experiment: str,
    tracking_uri: str | None = None,
    *,
    run_ids: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
    page_size: int = PAGE_SIZE,
    threads: int = 8,
) -> pd.DataFrame:
    """Training curves in long form: columns ``run_id``, ``curve`` (``objective``,
    ``norm_ratio.1`` …, without the ``curve.`` prefix), ``step`` (int64), ``value`` (float64).

    ``run_ids`` restricts to some runs (default: the runs :func:`load` keeps, one per trial
    key), ``names`` to some curves (without the prefix).
    SQL path: every curve point of the experiment in one query (:func:`sweep.sqlstore.read_curves`),
    then restricted to those runs and names. API path: one ``get_metric_history`` call per run
    and curve (threaded: a server answers them in parallel). Both give every point of each
    history, NaN included, sorted by run id, curve and step (points of one step in the order
    ``get_metric_history`` returns them: by timestamp, then value).
    """
    client, exp_id = _open(tracking_uri, experiment)
    empty = pd.DataFrame(
        {
            "run_id": pd.Series(dtype=object),
            "curve": pd.Series(dtype=object),
            "step": pd.Series(dtype=np.int64),
            "value": pd.Series(dtype=np.float64),
        }
    )
    if exp_id is None:
        return empty
    wanted = None if run_ids is None else set(run_ids)
    runs = _curve_runs(client, exp_id, wanted, page_size)
    name_set = None if names is None else {CURVE_PREFIX + n for n in names}
    engine = _engine(client)
    if engine is not None:
        keep = {r.info.run_id for r in runs}
        cut = len(CURVE_PREFIX)
        rows = [
            (rid, key[cut:], int(step), float(value))
            for rid, key, step, value in read_curves(engine, exp_id, CURVE_PREFIX)
            if rid in keep and (name_set is None or key in name_set)
        ]
        return _curve_frame(rows) if rows else empty
    keys = _curve_keys(runs)
    jobs = [(rid, k) for rid, ks in keys.items() for k in ks if name_set is None or k in name_set]
    if not jobs:
        return empty

    def fetch(job: tuple[str, str]) -> list[tuple]:
        rid, key = job
        return [
            (rid, key[len(CURVE_PREFIX) :], int(m.step), float(m.value))
            for m in client.get_metric_history(rid, key)
        ]

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        parts = list(pool.map(fetch, jobs))
    return _curve_frame([row for part in parts for row in part])


def _curve_frame(rows: list[tuple]) -> pd.DataFrame:
    """Long-form curves from ``(run_id, curve, step, value)`` rows, each history in the order
    ``get_metric_history`` gives it (the sort by run id, curve and step is stable)."""
    out = pd.DataFrame(rows, columns=_CURVE_COLUMNS)
    out = out.astype({"step": np.int64, "value": np.float64})
    return out.sort_values(["run_id", "curve", "step"], kind="stable").reset_index(drop=True)


def load_tracebacks(
    run_ids: Iterable[str], tracking_uri: str | None = None, *, threads: int = 8
) -> dict[str, str]:
    """The ``traceback.txt`` of each failed run (run_id → text); runs without one are left out."""
    import mlflow.artifacts

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or default_tracking_uri()

    def fetch(rid: str) -> tuple[str, str | None]:
        with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=rid, artifact_path=ARTIFACT_TRACEBACK, dst_path=tmp, tracking_uri=uri
                )
                return rid, Path(path).read_text()
            except Exception:  # no traceback artifact for this run
                return rid, None

    ids = list(dict.fromkeys(run_ids))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        got = list(pool.map(fetch, ids))
    return {rid: text for rid, text in got if text is not None}


def load_results(
    run_ids: Iterable[str], tracking_uri: str | None = None, *, threads: int = 8
) -> dict[str, TrialResult]:
    """The full :class:`~sweep.schema.TrialResult` of each run (its ``trial.json`` artifact:
    curves and figure arrays such as the spline's ``x, y, grid, f, kinks``). Runs without the
    artifact are left out of the returned mapping."""
    import mlflow.artifacts

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or default_tracking_uri()

    chunks: dict[str, dict[str, str]] = {}  # JSON-lines result files, read once each
    lock = threading.Lock()

    def from_chunk(rid: str) -> str | None:
        """A result a driver wrote against a server: a line of its parent's results/*.jsonl,
        named by the child's ``trial_json`` tag (sweep.schema.TAG_RESULT_REF)."""
        from sweep.store import client

        tags = client(uri).get_run(rid).data.tags
        ref, key = tags.get(TAG_RESULT_REF), tags.get(TAG_TRIAL_KEY)
        if not ref or not key:
            return None
        with lock:
            lines = chunks.get(ref)
        if lines is None:
            with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=ref, dst_path=tmp, tracking_uri=uri
                )
                lines = {}
                for line in Path(path).read_text().splitlines():
                    if line.strip():
                        lines[json.loads(line)["key"]] = line
            with lock:
                chunks[ref] = lines
        return lines.get(key)

    def fetch(rid: str) -> tuple[str, TrialResult | None]:
        with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=rid, artifact_path=ARTIFACT_RESULT, dst_path=tmp, tracking_uri=uri
                )
                text = Path(path).read_text()
            except Exception:  # no trial.json artifact: a server run's JSON-lines chunk, or none
                try:
                    text = from_chunk(rid)
                except Exception:
                    text = None
                if text is None:
                    return rid, None
        try:
            return rid, TrialResult.from_json(text)
        except (ValueError, TypeError, KeyError, json.JSONDecodeError):
            return rid, None

    ids = list(dict.fromkeys(run_ids))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        got = list(pool.map(fetch, ids))
    return {rid: res for rid, res in got if res is not None}
