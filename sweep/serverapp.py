"""The ``dualsweep`` MLflow server app: MLflow's tracking server plus batched trial writes.

``mlflow server --app-name dualsweep …`` (what ``cluster/mlflow-server.sh`` runs) serves
everything the stock server serves — UI, REST API, artifacts — and adds

- ``GET  /dualsweep/api/1/info`` → ``{"version": 1, "sql": true}``;
- ``POST /dualsweep/api/1/<op>`` with ``{"experiment_id": …, …}``, ``op`` one of ``create``
  (``rows`` of claims), ``finish`` (``rows`` of results), ``kill`` / ``withdraw``
  (``run_ids``), ``finished_keys`` — the calls of :class:`sweep.sqlstore.SqlWriter`, each one
  transaction on the server's backend store.

A driver that finds ``info`` writes a group of trials in one request instead of three per trial
(:class:`sweep.sqlstore.HttpWriter`); against a stock server it keeps to MLflow's REST API.
Needs a SQL backend (``--backend-store-uri`` sqlite / postgresql / mysql / mssql); with any
other backend ``info`` says ``"sql": false`` and the driver keeps to the REST API.

The routes have MLflow's own access rules: none (like the REST API of a server started
without ``--app-name basic-auth``); keep the server on 127.0.0.1 or a private network.
"""

from __future__ import annotations

import os
import threading

from sweep.sqlstore import API, API_VERSION, SqlWriter

__all__ = ["create_app"]

_MAX_ROWS = 20000  # rows per request
_writers: dict[str, SqlWriter] = {}
_lock = threading.Lock()


def _writer(experiment_id: str) -> SqlWriter | None:
    from mlflow.server.handlers import _get_tracking_store

    store = _get_tracking_store()
    if not SqlWriter.usable(store):
        return None
    with _lock:
        w = _writers.get(experiment_id)
        if w is None:
            w = _writers[experiment_id] = SqlWriter(store, experiment_id)
        return w


def _info():
    from flask import jsonify
    from mlflow.server.handlers import _get_tracking_store

    return jsonify({"version": API_VERSION, "sql": SqlWriter.usable(_get_tracking_store())})


def _bad(message: str, code: int = 400):
    from flask import jsonify

    return jsonify({"error_code": "INVALID_PARAMETER_VALUE", "message": message}), code


def _op(op: str):
    from flask import jsonify, request

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not str(body.get("experiment_id", "")).isdigit():
        return _bad("the body must be a JSON object with a numeric 'experiment_id'")
    experiment_id = str(body["experiment_id"])
    try:
        writer = _writer(experiment_id)
    except Exception as exc:  # no such experiment
        return _bad(f"experiment {experiment_id}: {exc}", 404)
    if writer is None:
        return _bad("this server's backend store is not a SQL store", 501)
    items = body.get("rows", body.get("run_ids", []))
    if not isinstance(items, list) or len(items) > _MAX_ROWS:
        return _bad(f"'rows' / 'run_ids' must be a list of at most {_MAX_ROWS} items")
    if op == "create":
        claims = writer.create([(r[0], r[1], int(r[2]), dict(r[3]), r[4]) for r in items])
        return jsonify({"artifact_uris": [c.artifact_uri for c in claims]})
    if op == "finish":
        if any(r[4] not in ("FINISHED", "FAILED") for r in items):
            return _bad("a result's status must be FINISHED or FAILED")
        writer.finish(items)
    elif op in ("kill", "withdraw"):
        if not all(isinstance(r, str) for r in items):
            return _bad("'run_ids' must be a list of strings")
        getattr(writer, op)(items)
    elif op == "finished_keys":
        return jsonify({"keys": sorted(writer.finished_keys())})
    else:
        return _bad(f"unknown operation {op!r}", 404)
    return jsonify({})


def create_app(app=None):
    """MLflow's server app with the dualsweep routes added (for uvicorn: wrapped in MLflow's
    FastAPI app, as MLflow does for its own ``basic-auth`` app)."""
    from mlflow.server import app as flask_app

    app = app if app is not None else flask_app
    if "dualsweep_info" not in app.view_functions:
        app.add_url_rule(f"{API}/info", "dualsweep_info", _info, methods=["GET"])
        app.add_url_rule(f"{API}/<op>", "dualsweep_op", _op, methods=["POST"])
    if os.environ.get("_MLFLOW_SGI_NAME") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
