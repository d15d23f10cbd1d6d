"""The ``dualsweep`` MLflow server apps: MLflow's tracking server plus batched trial writes.

``mlflow server --app-name dualsweep …`` (what ``cluster/mlflow-server.sh`` runs on 127.0.0.1)
serves everything the stock server serves — UI, REST API, artifacts — and adds

- ``GET  /dualsweep/api/1/info`` → ``{"version": 1, "sql": true}``;
- ``POST /dualsweep/api/1/<op>`` with ``{"experiment_id": …, "parent_run_id": …, …}``, ``op``
  one of ``create`` (``rows`` of claims), ``finish`` (``rows`` of results), ``kill`` /
  ``withdraw`` (``run_ids``), ``finished_keys`` — the calls of
  :class:`sweep.sqlstore.SqlWriter`, each one transaction on the server's backend store.

With ``DUALSWEEP_SERVER_AUTH=1`` in the server's environment (``cluster/mlflow-server.sh --app
dualsweep-auth``, its default for a server that listens beyond loopback) the same app runs on top
of MLflow's ``basic-auth`` app (``pip install 'dualsweep[auth]'``): every request needs a user's credentials (401 without), and the
dualsweep routes need the EDIT permission on the request's experiment (403 with READ only), as
MLflow's own ``log-batch`` / ``update-run`` do.

Every request is checked as MLflow's REST API checks its own (400 with a message, never a 500
for a request of the wrong shape; 413 above :data:`MAX_BODY` bytes): run ids and param /
metric / tag names by MLflow's rules and sizes, value types, statuses. Every operation is
scoped to the request's experiment, and ``create`` / ``finish`` / ``withdraw`` to the runs
whose ``mlflow.parentRunId`` is the request's ``parent_run_id``, a RUNNING sweep run of that
experiment: a caller cannot touch runs of other experiments, nor record over another sweep's
claims or over a finished run. ``kill`` (a dead driver's claims, taken over) reaches only
RUNNING runs of the experiment.

A driver that finds ``info`` writes a group of trials in one request instead of three per trial
(:class:`sweep.sqlstore.HttpWriter`); against a stock server it keeps to MLflow's REST API.
Needs a SQL backend (``--backend-store-uri`` sqlite / postgresql / mysql / mssql); with any
other backend ``info`` says ``"sql": false`` and the driver keeps to the REST API.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import re
import tempfile
import threading
from pathlib import Path

from sweep.sqlstore import API, API_VERSION, TAG_PARENT, SqlWriter
from sweep.store import tracking_store

__all__ = ["MAX_BODY", "create_app", "create_auth_app"]

MAX_BODY = 64 << 20  # bytes of one request body
_MAX_ROWS = 20000  # rows per request
# MLflow's rules for what its REST API stores (mlflow.utils.validation: run ids, names of
# params / metrics / tags, their lengths), so that every run written here reads back through it
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_NAME = re.compile(r"^[/\w.\- :]*$")
_MAX_KEY = 250
_MAX_PARAM = 6000
_MAX_TAG = 8000
_INT64 = 1 << 63
_writers: dict[tuple[str, str], SqlWriter] = {}  # (database URL, experiment id) -> writer
_lock = threading.Lock()


class _Refused(Exception):
    """A request refused: its HTTP status and the message."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def _tracking_store():
    """The server's backend store: built from the URI and artifact root ``mlflow server`` hands
    its workers (the environment variables named by ``mlflow.server``), as MLflow's handlers
    build theirs — a database's store shares their engine."""
    from mlflow.server import ARTIFACT_ROOT_ENV_VAR, BACKEND_STORE_URI_ENV_VAR

    uri = os.environ.get(BACKEND_STORE_URI_ENV_VAR)
    if not uri:
        raise _Refused("this server was started without a backend store URI", 501)
    return tracking_store(uri, os.environ.get(ARTIFACT_ROOT_ENV_VAR))


def _writer(experiment_id: str) -> SqlWriter:
    store = _tracking_store()
    if not SqlWriter.usable(store):
        raise _Refused("this server's backend store is not a SQL store", 501)
    try:
        exp = store.get_experiment(experiment_id)
    except Exception:
        exp = None
    if exp is None or exp.lifecycle_stage != "active":
        raise _Refused(f"experiment {experiment_id} does not exist (or is deleted)", 404)
    with _lock:
        w = _writers.get((store.db_uri, experiment_id))
        if w is None:
            w = _writers[(store.db_uri, experiment_id)] = SqlWriter(store, experiment_id)
        return w


def _info():
    from flask import jsonify

    try:
        sql = SqlWriter.usable(_tracking_store())
    except _Refused:
        sql = False
    return jsonify({"version": API_VERSION, "sql": sql})


# ---------------------------------------------------------------------------- shapes


def _run_id(value, where: str) -> str:
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise _Refused(f"{where}: {str(value)[:80]!r} is not a run id (letters, digits, _ and -)")
    return value


def _key(value, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise _Refused(f"{where}: a name must be a string of 1 to {_MAX_KEY} characters")
    norm = posixpath.normpath(value)
    if not _NAME.match(value) or norm != value or norm.startswith(("..", "/")) or norm == ".":
        raise _Refused(
            f"{where}: {value[:80]!r} is not a valid name (alphanumerics, _ - . : / and spaces, "
            "not a path that resolves elsewhere)"
        )
    return value


def _text(value, limit: int, where: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise _Refused(f"{where}: must be a string of at most {limit} characters")
    return value


def _int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
        raise _Refused(f"{where}: must be a 64-bit integer")
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"{where}: must be a number")
    return float(value)


def _list(value, where: str, size: int | None = None) -> list:
    if not isinstance(value, list) or (size is not None and len(value) != size):
        shape = f"a list of {size} items" if size is not None else "a list"
        raise _Refused(f"{where}: must be {shape}")
    return value


def _pairs(value, limit: int, where: str) -> list[tuple[str, str]]:
    """``[[key, value], …]`` with distinct valid keys and string values of at most ``limit``."""
    out, seen = [], set()
    for j, pair in enumerate(_list(value, where)):
        k, v = _list(pair, f"{where}[{j}]", 2)
        k = _key(k, f"{where}[{j}] key")
        if k in seen:
            raise _Refused(f"{where}: {k!r} is given twice")
        seen.add(k)
        out.append((k, _text(v, limit, f"{where}[{j}] value")))
    return out


def _ids(body: dict) -> list[str]:
    ids = _list(body.get("run_ids"), "run_ids")
    if len(ids) > _MAX_ROWS:
        raise _Refused(f"run_ids: at most {_MAX_ROWS} per request")
    ids = [_run_id(r, f"run_ids[{i}]") for i, r in enumerate(ids)]
    if len(set(ids)) != len(ids):
        raise _Refused("run_ids: a run id is given twice")
    return ids


def _rows(body: dict) -> list:
    rows = _list(body.get("rows"), "rows")
    if len(rows) > _MAX_ROWS:
        raise _Refused(f"rows: at most {_MAX_ROWS} per request")
    return rows


def _create_rows(body: dict, parent: str) -> list:
    out = []
    for i, row in enumerate(_rows(body)):
        run_id, name, start, tags, user = _list(row, f"rows[{i}]", 5)
        if not isinstance(tags, dict):
            raise _Refused(f"rows[{i}] tags: must be an object")
        tag_pairs = _pairs([[k, v] for k, v in tags.items()], _MAX_TAG, f"rows[{i}] tags")
        if tags.get(TAG_PARENT) != parent:
            raise _Refused(f"rows[{i}]: a claim's {TAG_PARENT} tag must be parent_run_id")
        out.append((
            _run_id(run_id, f"rows[{i}] run id"),
            _text(name, _MAX_KEY, f"rows[{i}] name"),
            _int(start, f"rows[{i}] start time"),
            dict(tag_pairs),
            _text(user, _MAX_KEY, f"rows[{i}] user"),
        ))  # fmt: skip
    ids = [r[0] for r in out]
    if len(set(ids)) != len(ids):
        raise _Refused("rows: a run id is given twice")
    return out


def _finish_rows(body: dict) -> list:
    out = []
    for i, row in enumerate(_rows(body)):
        run_id, metrics, params, tags, status = _list(row, f"rows[{i}]", 5)
        mets = []
        for j, m in enumerate(_list(metrics, f"rows[{i}] metrics")):
            key, value, ts, step = _list(m, f"rows[{i}] metrics[{j}]", 4)
            where = f"rows[{i}] metrics[{j}]"
            mets.append((_key(key, f"{where} key"), _number(value, f"{where} value"),
                         _int(ts, f"{where} timestamp"), _int(step, f"{where} step")))  # fmt: skip
        if status not in ("FINISHED", "FAILED"):
            raise _Refused(f"rows[{i}]: a result's status must be FINISHED or FAILED")
        out.append((
            _run_id(run_id, f"rows[{i}] run id"),
            mets,
            _pairs(params, _MAX_PARAM, f"rows[{i}] params"),
            _pairs(tags, _MAX_TAG, f"rows[{i}] tags"),
            status,
        ))  # fmt: skip
    ids = [r[0] for r in out]
    if len(set(ids)) != len(ids):
        raise _Refused("rows: a run id is given twice")
    return out


# ---------------------------------------------------------------------------- scope


def _parent(writer: SqlWriter, body: dict) -> str:
    """The request's ``parent_run_id``: a RUNNING sweep run of the experiment."""
    parent = _run_id(body.get("parent_run_id"), "parent_run_id")
    owner = writer.owners([parent]).get(parent)
    if owner is None or owner[2] != "sweep" or owner[0] != "RUNNING":
        raise _Refused(
            f"parent_run_id {parent} is not a RUNNING sweep run of experiment "
            f"{writer.experiment_id}",
            404 if owner is None else 400,
        )
    return parent


def _owned(writer: SqlWriter, ids: list[str], parent: str | None) -> None:
    """Every run of ``ids`` is a RUNNING run of the experiment (``parent``: a trial of it)."""
    owners = writer.owners(ids)
    for rid in ids:
        o = owners.get(rid)
        if o is None:
            raise _Refused(
                f"run {rid} is not an active run of experiment {writer.experiment_id}", 404
            )
        if o[0] != "RUNNING":
            raise _Refused(f"run {rid} is {o[0]}, not RUNNING: it cannot be changed here", 400)
        if parent is not None and (o[1] != parent or o[2] != "trial"):
            raise _Refused(f"run {rid} is not a trial run of parent_run_id {parent}", 403)


def _may_edit() -> bool:
    """MLflow basic-auth's check of a dualsweep route (registered as its before-request
    validator): the EDIT permission on the request's experiment. A request the route refuses
    anyway (no JSON, no such experiment) passes here and gets its 4xx from the route, which
    then reads and writes nothing."""
    from mlflow.server.auth import validate_can_update_experiment

    try:
        _writer(str(int(_body()["experiment_id"])))
    except _Refused:
        return True
    return validate_can_update_experiment()


def _body() -> dict:
    from flask import request

    length = request.content_length
    if length is None:
        raise _Refused("the request needs a Content-Length", 411)
    if length > MAX_BODY:
        raise _Refused(f"the body is {length} bytes; at most {MAX_BODY} are taken", 413)
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        raise _Refused("the body must be a JSON object with a numeric 'experiment_id'") from None
    if not isinstance(body, dict) or not str(body.get("experiment_id", "")).isdigit():
        raise _Refused("the body must be a JSON object with a numeric 'experiment_id'")
    if isinstance(body["experiment_id"], bool) or len(str(body["experiment_id"])) > 18:
        raise _Refused("experiment_id: must be a number below 10^18")
    return body


def _op(op: str):
    from flask import jsonify

    try:
        if op not in ("create", "finish", "kill", "withdraw", "finished_keys"):
            raise _Refused(f"unknown operation {op[:40]!r}", 404)
        body = _body()
        experiment_id = str(int(body["experiment_id"]))
        return jsonify(_apply(op, _writer(experiment_id), body))
    except _Refused as exc:
        return jsonify({"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}), exc.code
    except Exception as exc:  # a row conflicting with the store (a run id taken meanwhile)
        from sqlalchemy.exc import IntegrityError

        if not isinstance(exc, IntegrityError):
            raise
        first = (str(exc.orig or exc).splitlines() or ["conflict"])[0][:200]
        return jsonify({"error_code": "INVALID_PARAMETER_VALUE",
                        "message": f"the rows conflict with the store ({first})"}), 400  # fmt: skip


def _apply(op: str, writer: SqlWriter, body: dict) -> dict:
    if op == "finished_keys":
        return {"keys": sorted(writer.finished_keys())}
    if op == "kill":  # a dead driver's claims (or parent), taken over: RUNNING runs only
        ids = _ids(body)
        _owned(writer, ids, None)
        writer.kill(ids)
        return {}
    parent = _parent(writer, body)
    if op == "create":
        rows = _create_rows(body, parent)
        taken = writer.taken([r[0] for r in rows])
        if taken:
            raise _Refused(f"run id {sorted(taken)[0]} exists already")
        claims = writer.create(rows)
        return {"artifact_uris": [c.artifact_uri for c in claims]}
    if op == "withdraw":
        ids = _ids(body)
        _owned(writer, ids, parent)
        writer.withdraw(ids)
        return {}
    rows = _finish_rows(body)
    _owned(writer, [r[0] for r in rows], parent)
    writer.finish(rows)  # NaN and ±inf metrics are stored as MLflow stores them
    return {}


# ---------------------------------------------------------------------------- apps


def _routes(app) -> None:
    if "dualsweep_info" not in app.view_functions:
        app.add_url_rule(f"{API}/info", "dualsweep_info", _info, methods=["GET"])
        app.add_url_rule(f"{API}/<op>", "dualsweep_op", _op, methods=["POST"])


def create_app(app=None):
    """MLflow's server app with the dualsweep routes added (for uvicorn: wrapped in MLflow's
    FastAPI app, as MLflow does for its own ``basic-auth`` app); with ``DUALSWEEP_SERVER_AUTH=1``
    in the environment (``cluster/mlflow-server.sh --app dualsweep-auth``) the same behind
    MLflow's basic-auth: :func:`create_auth_app`."""
    from mlflow.server import app as flask_app

    if os.environ.get("DUALSWEEP_SERVER_AUTH", "").lower() in ("1", "true"):
        return create_auth_app(app)
    app = app if app is not None else flask_app
    _routes(app)
    if os.environ.get("_MLFLOW_SGI_NAME") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def create_auth_app(app=None):
    """MLflow's ``basic-auth`` app with the dualsweep routes added, behind its authentication
    and the EDIT permission on the experiment (:func:`_may_edit`).

    MLflow's ``mlflow server`` creates the user database before starting workers only for its
    own ``basic-auth`` app name; for this one each worker would, and two workers on a fresh
    database raced ("table users already exists"). The workers take turns here instead (an
    exclusive ``flock`` on a file named after the auth database's URI), so the first creates
    the tables and the admin user and the others find them."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import BEFORE_REQUEST_VALIDATORS, auth_config
    from mlflow.server.auth import create_app as basic_auth_app

    app = app if app is not None else flask_app
    _routes(app)
    # MLflow's basic-auth refuses (403) every route without a validator of its own
    for op in ("create", "finish", "kill", "withdraw", "finished_keys"):
        BEFORE_REQUEST_VALIDATORS[(f"{API}/{op}", "POST")] = _may_edit
    BEFORE_REQUEST_VALIDATORS[(f"{API}/info", "GET")] = lambda: True  # any signed-in user
    digest = hashlib.sha256(auth_config.database_uri.encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"dualsweep-auth-{os.getuid()}-{digest}.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            return basic_auth_app(app)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
