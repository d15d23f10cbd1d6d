"""The ``dualsweep`` server app (sweep/serverapp.py) and the SQL writer behind it.

A driver against a server that runs the app records groups of trials in one request each
(:class:`sweep.writers.HttpRunWriter`); the runs must be the very runs MLflow's REST API writes
one call at a time. PostgreSQL takes the rows through ``COPY`` (psycopg2): the same check
against MLflow's own ``SqlAlchemyStore`` there.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from sweep.sqlstore import API
from sweep.store import Store
from sweep.tracking import Tracker
from sweep.writers import HttpRunWriter, MlflowWriter, SqlRunWriter
from tests.cluster.harness import MlflowServer, start_postgres
from tests.sweep.test_tracking import _specs, quick

# differ between two recordings of the same trials (ids, names of the two experiments, HEAD)
VOLATILE = {"sweep_id", "mlflow.parentRunId", "mlflow.user", "git_commit", "driver", "trial_json",
            "grid", "mlflow.runName"}  # fmt: skip


def _strip(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if k not in VOLATILE}


def _record(store: Store, experiment: str, specs, results, *, rest: bool) -> Tracker:
    """Record ``results`` through a Tracker; ``rest``: MLflow's API one call at a time."""
    t = Tracker(store, experiment, settle=0.0, fast=not rest)
    t.start(params={})
    t.claim(specs)
    for s, r in zip(specs, results, strict=True):
        t.record(s, r)
    t.finish("FINISHED")
    return t


def _runs(t: Tracker) -> dict:
    """key -> (params, metrics, tags, status, curve history) of every child run."""
    out = {}
    for run in t.trial_runs():
        hist = t.client.get_metric_history(run.info.run_id, "curve.objective")
        key = run.data.tags["trial_key"]
        out[key] = (
            run.data.params,
            run.data.metrics,
            _strip(run.data.tags),
            run.info.status,
            sorted((m.step, m.value) for m in hist),
        )
    return out


def _with_extremes(results):
    """Results whose metrics need every digit of a float64 (and one near its smallest)."""
    out = []
    for i, r in enumerate(results):
        r.sgd_objective = math.pi * (i + 1) / 7.0
        r.certificate = 1e-300 * (i + 1)
        out.append(r)
    return out


@pytest.fixture(scope="module")
def postgres():
    pg = start_postgres()
    yield pg
    pg.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_app_records_the_runs_mlflow_rest_api_records(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        uri = request.getfixturevalue("postgres").create_database(f"s{uuid.uuid4().hex[:8]}")
    srv = MlflowServer(backend=uri, workdir=tmp_path / "srv").start().ready()
    try:
        store = Store(srv.uri, None)
        specs = _specs(6, "app")
        results = _with_extremes(quick(specs))
        fast = _record(store, "via-app", specs, results, rest=False)
        assert isinstance(fast.writer, HttpRunWriter)  # the server answered {API}/info
        slow = _record(store, "via-rest", specs, results, rest=True)
        a, b = _runs(fast), _runs(slow)
        assert set(a) == {s.key for s in specs} == set(b)
        for key in a:
            assert a[key] == b[key], key
        # one FINISHED run per key, resume reads it through the app too
        assert fast.finished_keys() == set(a)
        # claims and results of a group in one request each, where REST takes 3 per trial
        assert fast.stats.calls + 2 * len(specs) <= slow.stats.calls
        # the result of each trial is readable (JSON-lines chunk on the parent run)
        from analysis.load import load, load_results

        frame = load("via-app", srv.uri)
        assert len(frame) == len(specs)
        assert len(load_results(list(frame["run_id"]), srv.uri)) == len(specs)
    finally:
        srv.stop()


@pytest.mark.slow
def test_stock_server_falls_back_to_the_rest_api(tmp_path: Path) -> None:
    srv = MlflowServer(
        backend=f"sqlite:///{tmp_path / 'server.db'}", workdir=tmp_path / "srv", app="mlflow"
    ).start()
    try:
        srv.ready()
        specs = _specs(3, "stock")
        t = _record(Store(srv.uri, None), "stock", specs, quick(specs), rest=False)
        assert isinstance(t.writer, MlflowWriter)  # no {API}/info on a stock server
        assert t.finished_keys() == {s.key for s in specs}
    finally:
        srv.stop()


@pytest.mark.slow
def test_copy_into_postgresql_writes_what_mlflows_store_writes(postgres) -> None:
    """SqlWriter on PostgreSQL (COPY through psycopg2) against MLflow's SqlAlchemyStore."""
    url = postgres.create_database(f"c{uuid.uuid4().hex[:8]}")
    assert url.startswith("postgresql://")  # bare: sweep.store.database_url picks the driver
    specs = _specs(4, "copy")
    results = _with_extremes(quick(specs))
    fast = _record(Store(url, None), "copy-sql", specs, results, rest=False)
    assert isinstance(fast.writer, SqlRunWriter) and fast.writer.ops._copy
    slow = _record(Store(url, None), "copy-api", specs, results, rest=True)
    a, b = _runs(fast), _runs(slow)
    assert a and a == b


def test_server_app_refuses_bad_requests_with_a_reason(tmp_path: Path, monkeypatch) -> None:
    """The routes answer malformed bodies with 4xx and a message, and write nothing (every
    hostile shape: tests/reliability/test_hostile.py)."""
    monkeypatch.setenv("_MLFLOW_SERVER_FILE_STORE", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", str(tmp_path / "art"))
    monkeypatch.delenv("_MLFLOW_SGI_NAME", raising=False)
    from mlflow.server import handlers

    monkeypatch.setattr(handlers, "_tracking_store", None)
    from sweep.serverapp import create_app

    app = create_app()
    client = app.test_client()
    info = client.get(f"{API}/info")
    assert info.status_code == 200 and info.get_json() == {"version": 1, "sql": True}
    exp = handlers._get_tracking_store().create_experiment("bad")
    for body, code, words in [
        ("not json", 400, "experiment_id"),
        ({"experiment_id": "x"}, 400, "experiment_id"),
        ({"experiment_id": "999999", "rows": []}, 404, "999999"),
        ({"experiment_id": exp, "rows": [["r", [], [], [], "DONE"]]}, 400, "parent_run_id"),
        ({"experiment_id": exp, "run_ids": [1, 2]}, 400, "is not a run id"),
    ]:
        op = "kill" if "run_ids" in body else "finish"
        resp = (
            client.post(f"{API}/{op}", json=body)
            if isinstance(body, dict)
            else client.post(f"{API}/{op}", data=body, content_type="application/json")
        )
        assert resp.status_code == code, (body, resp.get_json())
        assert words in resp.get_json()["message"]
    assert client.post(f"{API}/drop", json={"experiment_id": exp}).status_code == 404
    from mlflow.entities import ViewType

    assert handlers._get_tracking_store().search_runs([exp], "", ViewType.ALL) == []


def test_a_bare_postgresql_url_gets_the_installed_driver() -> None:
    import importlib.util

    from sweep.store import database_url

    url = "postgresql://u:p@127.0.0.1:5432/db"
    has3 = importlib.util.find_spec("psycopg") is not None
    has2 = importlib.util.find_spec("psycopg2") is not None
    rewrite = has2 and not has3
    assert database_url(url) == ("postgresql+psycopg2://u:p@127.0.0.1:5432/db" if rewrite else url)
    assert database_url("postgres://h/db") == (
        "postgresql+psycopg2://h/db" if rewrite else "postgres://h/db"
    )
    for other in ("postgresql+psycopg://h/db", "sqlite:///x.db", "http://h:5000", "mysql://h/d"):
        assert database_url(other) == other
