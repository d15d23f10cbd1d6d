"""``analysis.load``'s SQL path (``sweep.sqlstore.read_runs`` / ``read_curves`` on MLflow's
tables) against its MLflow API path (``search_runs`` / ``get_metric_history``), on one REAL
SQLite store: every frame must be equal, column by column and dtype by dtype.

The store (written by the sweep's own writer, ``sweep.tracking.Tracker``, plus MLflow's client
where a case needs it) holds finished, diverged and failed trials; a key with two runs (FAILED,
then FINISHED in a later invocation); a deleted run; a NaN metric and a NaN curve point logged
through MLflow's API, and a curve step logged twice; and a second experiment whose runs lost
their ``run_kind`` tags (the fallback of ``_trial_runs``: every child run is a trial).
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import replace

import pandas as pd
import pytest

from tests.analysis.synthetic import ideal

L = importlib.import_module("analysis.load")  # the module (analysis.load is also a function)

MIXED, UNTAGGED = "mixed", "untagged"


def _results() -> tuple[list, list]:
    """Twelve hand-made trials with two curves each (one diverged, one failed), no training."""
    specs, results = ideal()
    specs, results = specs[:12], results[:12]
    out = []
    for i, res in enumerate(results):
        steps = [0, 10, 20]
        curves = {"objective": [3.0 + i, 2.0 + i, 1.0 + i], "norm_ratio.1": [0.5, 0.75, 0.9 + i]}
        res = replace(res, curve_steps=steps, curves=curves)
        if i == 3:
            res = replace(res, status="diverged", sgd_objective=math.inf)
        if i == 4:
            res = replace(res, status="failed", sgd_objective=math.nan, error="Traceback: boom")
        out.append(res)
    return specs, out


def _record(uri: str, root, experiment: str, pairs: list) -> None:
    from sweep.tracking import Store, Tracker

    tracker = Tracker(Store(uri=uri, artifacts=(root / "art").as_uri()), experiment)
    tracker.start(params={"grid": experiment, "trials": len(pairs)})
    for spec, res in pairs:
        tracker.record(spec, res)
    tracker.finish("FINISHED")


def _fill(uri: str, root) -> str:
    """Write every case of the module docstring into the store ``uri``; returns ``uri``."""
    from mlflow.entities import Metric

    from sweep.schema import TAG_KIND, TAG_TRIAL_KEY
    from sweep.store import client

    specs, results = _results()
    redo = specs[5]  # a key with two runs: FAILED now, FINISHED in the next invocation
    first = [(s, r) for s, r in zip(specs, results, strict=True)]
    first[5] = (redo, replace(results[5], status="failed", error="Traceback: first try"))
    _record(uri, root, MIXED, first)
    time.sleep(0.01)  # distinct start times between the invocations
    _record(uri, root, MIXED, [(redo, replace(results[5], sgd_objective=0.25))])
    cl = client(uri)
    exp = cl.get_experiment_by_name(MIXED).experiment_id
    runs = {
        r.data.tags[TAG_TRIAL_KEY]: r
        for r in cl.search_runs([exp], "tags.run_kind = 'trial'", max_results=1000)
        if r.info.status == "FINISHED"
    }
    # a deleted run: a trial recorded again under a new run, then deleted
    _record(uri, root, MIXED, [(specs[0], replace(results[0], sgd_objective=99.0))])
    for r in cl.search_runs([exp], f"tags.trial_key = '{specs[0].key}'", max_results=10):
        if r.data.metrics["sgd_objective"] == 99.0:
            cl.delete_run(r.info.run_id)
    # NaN through MLflow's API: a metric, a curve point, and a step logged twice
    rid = runs[specs[1].key].info.run_id
    now = int(time.time() * 1000)
    cl.log_batch(
        rid,
        metrics=[
            Metric("extra.nan_metric", math.nan, now, 0),
            Metric("curve.objective", math.nan, now, 30),
            Metric("curve.objective", 7.5, now + 1, 10),
            Metric("curve.objective", -1.0, now + 1, 10),
        ],
    )
    # a second experiment written without run_kind tags
    _record(uri, root, UNTAGGED, list(zip(specs[6:10], results[6:10], strict=True)))
    exp2 = cl.get_experiment_by_name(UNTAGGED).experiment_id
    for r in cl.search_runs([exp2], "", max_results=1000):
        cl.delete_tag(r.info.run_id, TAG_KIND)
    return uri


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The cases in a SQLite store (the sweep's default)."""
    root = tmp_path_factory.mktemp("sqlread")
    return _fill(f"sqlite:///{root / 'mlruns.db'}", root)


def _both(monkeypatch, fn, *args, **kw):
    """(SQL path result, MLflow API path result) of ``fn``."""
    monkeypatch.setattr(L, "SQL_READS", True)
    sql = fn(*args, **kw)
    monkeypatch.setattr(L, "SQL_READS", False)
    api = fn(*args, **kw)
    monkeypatch.setattr(L, "SQL_READS", True)
    return sql, api


def _same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.columns) == list(b.columns)
    assert dict(a.dtypes) == dict(b.dtypes)


@pytest.mark.parametrize("experiment", [MIXED, UNTAGGED])
def test_load_sql_equals_api(store, monkeypatch, experiment) -> None:
    sql, api = _both(monkeypatch, L.load, experiment, store, curves=True)
    assert len(sql) > 0
    _same_frames(sql, api)
    assert set(sql.attrs) == set(api.attrs) == {
        "superseded", "experiment", "tracking_uri", "curves"
    }  # fmt: skip
    for k in ("superseded", "experiment", "tracking_uri"):
        assert sql.attrs[k] == api.attrs[k], k
    _same_frames(sql.attrs["curves"], api.attrs["curves"])
    assert len(sql.attrs["curves"]) > 0


def test_the_store_holds_every_case(store) -> None:
    """What the equality tests compare is really in the store (else they could pass empty)."""
    frame = L.load(MIXED, store, curves=True)
    assert {"finished", "diverged", "failed"} <= set(frame["status"])
    assert frame.attrs["superseded"] == 1  # the FAILED first run of the redone key
    assert 99.0 not in set(frame["sgd_objective"])  # the deleted run is not read
    assert frame["extra.nan_metric"].isna().all() and "extra.nan_metric" in frame
    curves = frame.attrs["curves"]
    assert curves["value"].isna().sum() == 1
    twice = curves[(curves["curve"] == "objective") & (curves["step"] == 10)]
    assert twice["run_id"].value_counts().max() == 3  # 2.0+i, then 7.5 and -1.0 at step 10
    untagged = L.load(UNTAGGED, store)
    assert len(untagged) == 4 and L.load_parents(UNTAGGED, store).empty


def test_load_curves_and_parents_sql_equals_api(store, monkeypatch) -> None:
    frame = L.load(MIXED, store)
    some = list(frame["run_id"][:5])
    parent = frame["parent_run_id"].iloc[0]
    for kw in (
        {},
        {"run_ids": some},
        {"names": ["objective"]},
        {"run_ids": some + [parent, "no-such-run"], "names": ["norm_ratio.1", "nothing"]},
        {"run_ids": []},
    ):
        sql, api = _both(monkeypatch, L.load_curves, MIXED, store, **kw)
        _same_frames(sql, api)
    # every run of a key, the superseded FAILED run included, when asked by run id
    client, exp_id = L._open(store, MIXED)
    all_ids = [r.info.run_id for r in L._trial_runs(client, exp_id, 1000)]
    sql, api = _both(monkeypatch, L.load_curves, MIXED, store, run_ids=all_ids)
    assert sql["run_id"].nunique() == len(frame) + 1
    _same_frames(sql, api)
    sql, api = _both(monkeypatch, L.load_parents, MIXED, store)
    assert len(sql) == 3
    _same_frames(sql, api)
    for fn in (L.load, L.load_curves, L.load_parents):
        sql, api = _both(monkeypatch, fn, "no-such-grid", store)
        _same_frames(sql, api)


def _count_api_calls(monkeypatch) -> dict:
    from mlflow.tracking import MlflowClient

    calls = {"search_runs": 0, "get_metric_history": 0}
    search, history = L.search_runs, MlflowClient.get_metric_history

    def counted_search(*a, **k):
        calls["search_runs"] += 1
        return search(*a, **k)

    def counted_history(self, *a, **k):
        calls["get_metric_history"] += 1
        return history(self, *a, **k)

    monkeypatch.setattr(L, "search_runs", counted_search)
    monkeypatch.setattr(MlflowClient, "get_metric_history", counted_history)
    return calls


def test_sqlite_store_takes_the_sql_path(store, monkeypatch) -> None:
    calls = _count_api_calls(monkeypatch)
    L.load(MIXED, store, curves=True)
    L.load(UNTAGGED, store, curves=True)
    L.load_parents(MIXED, store)
    assert calls == {"search_runs": 0, "get_metric_history": 0}
    # the counters count: the API path (switched off, or a schema that does not qualify)
    monkeypatch.setattr(L, "SQL_READS", False)
    L.load(MIXED, store, curves=True)
    assert calls["search_runs"] > 0 and calls["get_metric_history"] > 0
    monkeypatch.setattr(L, "SQL_READS", True)
    monkeypatch.setattr(L.SqlWriter, "usable", classmethod(lambda cls, store: False))
    calls.update(search_runs=0, get_metric_history=0)
    L.load(MIXED, store, curves=True)
    assert calls["search_runs"] > 0 and calls["get_metric_history"] > 0


@pytest.mark.slow
def test_postgresql_store_sql_equals_api(tmp_path, monkeypatch) -> None:
    """The same on a PostgreSQL database given as the tracking URI (psycopg2's parameter
    style, its NULL ordering and collation): the SQL path is taken and equals the API path."""
    from tests.cluster.harness import start_postgres

    pg = start_postgres()
    try:
        url = pg.create_database("reading").replace("postgresql://", "postgresql+psycopg2://")
        uri = _fill(url, tmp_path)
        calls = _count_api_calls(monkeypatch)
        monkeypatch.setattr(L, "SQL_READS", True)
        frame = L.load(MIXED, uri, curves=True)
        assert calls == {"search_runs": 0, "get_metric_history": 0}
        assert {"finished", "diverged", "failed"} <= set(frame["status"])
        for experiment in (MIXED, UNTAGGED):
            sql, api = _both(monkeypatch, L.load, experiment, uri, curves=True)
            _same_frames(sql, api)
            _same_frames(sql.attrs["curves"], api.attrs["curves"])
            assert sql.attrs["superseded"] == api.attrs["superseded"]
        sql, api = _both(monkeypatch, L.load_parents, MIXED, uri)
        _same_frames(sql, api)
        some = list(frame["run_id"][:3])
        sql, api = _both(monkeypatch, L.load_curves, MIXED, uri, run_ids=some, names=["objective"])
        _same_frames(sql, api)
    finally:
        pg.stop()
