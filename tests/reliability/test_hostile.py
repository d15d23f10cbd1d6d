"""Hostile requests to the ``/dualsweep/api/1/*`` routes (issue 19, defect 1).

In process (Flask's test client on a SQLite backend): every malformed shape, injected or
non-MLflow run id, foreign experiment, another sweep's claim, finished run and oversized body is
answered 400 / 403 / 404 / 411 / 413 with a message — never a 500 — and afterwards the store
reads back through MLflow's own client (``get_run`` of every run, as the UI calls it) and no run
outside the caller's sweep changed.

Through a real server (``cluster/mlflow-server.sh --app dualsweep-auth`` on 127.0.0.1, a fresh
user database, 1 and 4 workers): no credentials 401, a user with READ on the experiment 403, a
user with EDIT records a sweep through the routes (:class:`sweep.sqlstore.HttpWriter`).
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from sweep import serverapp
from sweep.sqlstore import API
from sweep.store import KIND_SWEEP, KIND_TRIAL, TAG_PARENT

ALLOWED = {400, 401, 403, 404, 411, 413}


@pytest.fixture
def app(tmp_path: Path, monkeypatch):
    """The dualsweep app in process on a fresh SQLite backend, and MLflow's store behind it."""
    db = tmp_path / "app.db"
    monkeypatch.setenv("_MLFLOW_SERVER_FILE_STORE", f"sqlite:///{db}")
    monkeypatch.setenv("_MLFLOW_SERVER_ARTIFACT_ROOT", str(tmp_path / "art"))
    monkeypatch.delenv("_MLFLOW_SGI_NAME", raising=False)
    monkeypatch.delenv("DUALSWEEP_SERVER_AUTH", raising=False)
    from mlflow.server import handlers

    monkeypatch.setattr(handlers, "_tracking_store", None)
    monkeypatch.setattr(serverapp, "_writers", {})
    application = serverapp.create_app()
    return application, handlers._get_tracking_store(), f"sqlite:///{db}"


def _run(store, exp: str, kind: str, parent: str | None = None, status: str = "RUNNING") -> str:
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    tags = [RunTag("run_kind", kind)] + ([RunTag(TAG_PARENT, parent)] if parent else [])
    run = store.create_run(exp, "someone", int(time.time() * 1000), tags, f"{kind}-run")
    rid = run.info.run_id
    if kind == KIND_TRIAL:
        store.log_batch(rid, [Metric("gap", 0.5, 1, 0)], [Param("lr", "0.1")], [])
    if status != "RUNNING":
        store.update_run_info(rid, RunStatus.from_string(status), int(time.time() * 1000), None)
    return rid


def _snapshot(store, run_ids: list[str]) -> dict:
    out = {}
    for rid in run_ids:
        r = store.get_run(rid)
        out[rid] = (r.info.status, r.info.lifecycle_stage, r.info.end_time, r.data.params,
                    r.data.metrics, r.data.tags)  # fmt: skip
    return out


def _claim(rid: str, parent: str, key: str = "k") -> list:
    tags = {"run_kind": KIND_TRIAL, TAG_PARENT: parent, "trial_key": key}
    return [rid, f"trial-{key}", int(time.time() * 1000), tags, "me"]


def _result(rid: str, status: str = "FINISHED") -> list:
    return [rid, [["gap", 0.25, 5, 0], ["curve.loss", float("nan"), 5, 3]], [["lr", "0.1"]],
            [["status", "finished"]], status]  # fmt: skip


def test_hostile_requests_get_4xx_and_change_nothing_outside_the_sweep(app, monkeypatch) -> None:
    application, store, uri = app
    client = application.test_client()
    mine = store.create_experiment("mine")
    other = store.create_experiment("other")
    parent = _run(store, mine, KIND_SWEEP)
    # runs outside the caller's sweep: another experiment's, another live sweep's
    victim = _run(store, other, KIND_TRIAL, _run(store, other, KIND_SWEEP), "FINISHED")
    rival = _run(store, mine, KIND_SWEEP)
    rival_claim = _run(store, mine, KIND_TRIAL, rival)
    rival_done = _run(store, mine, KIND_TRIAL, rival, "FINISHED")
    others = [victim, rival, rival_claim, rival_done]
    before = _snapshot(store, others)

    def post(op: str, body, **kw):
        if isinstance(body, bytes | str):
            return client.post(f"{API}/{op}", data=body, content_type="application/json", **kw)
        return client.post(f"{API}/{op}", json=body, **kw)

    # the caller's own sweep works: claims, then results
    own = [uuid.uuid4().hex for _ in range(3)]
    base = {"experiment_id": mine, "parent_run_id": parent}
    ok = post("create", {**base, "rows": [_claim(r, parent, f"k{i}") for i, r in enumerate(own)]})
    assert ok.status_code == 200, ok.get_json()
    assert post("finish", {**base, "rows": [_result(own[0])]}).status_code == 200

    claim = _claim(uuid.uuid4().hex, parent)
    result = _result(own[1])
    hostile: list[tuple[str, str, object, int]] = [
        # (what, op, body, status)
        ("not JSON", "finish", "{not json", 400),
        ("a JSON array", "finish", "[1, 2]", 400),
        ("JSON null", "finish", "null", 400),
        ("nested 100000 deep", "finish", "[" * 100000 + "]" * 100000, 400),
        ("no experiment_id", "finish", {"rows": []}, 400),
        ("experiment_id not a number", "finish", {"experiment_id": "x'; --"}, 400),
        ("experiment_id a bool", "finished_keys", {"experiment_id": True}, 400),
        ("experiment_id huge", "finished_keys", {"experiment_id": "9" * 40}, 400),
        ("no such experiment", "finished_keys", {"experiment_id": "999999"}, 404),
        ("unknown op", "drop", base, 404),
        ("no parent_run_id", "create", {"experiment_id": mine, "rows": [claim]}, 400),
        ("parent in another experiment", "create",
         {"experiment_id": mine, "parent_run_id": victim, "rows": [claim]}, 404),
        ("parent that is a trial", "create",
         {"experiment_id": mine, "parent_run_id": rival_claim, "rows": [claim]}, 400),
        ("parent that does not exist", "create",
         {"experiment_id": mine, "parent_run_id": uuid.uuid4().hex, "rows": [claim]}, 404),
        ("rows not a list", "create", {**base, "rows": {"a": 1}}, 400),
        ("a row not a list", "create", {**base, "rows": ["abc"]}, 400),
        ("a row of 4 items", "create", {**base, "rows": [claim[:4]]}, 400),
        ("a row of 6 items", "create", {**base, "rows": [[*claim, 1]]}, 400),
        ("SQL in a run id", "create",
         {**base, "rows": [["a'b;DROP TABLE runs;--", *claim[1:]]]}, 400),
        ("a path as run id", "create", {**base, "rows": [["../../../../tmp/x", *claim[1:]]]}, 400),
        ("unicode run id", "create", {**base, "rows": [["ü√漢字😀", *claim[1:]]]}, 400),
        ("run id not a string", "create", {**base, "rows": [[12, *claim[1:]]]}, 400),
        ("start time a string", "create", {**base, "rows": [[*claim[:2], "now", *claim[3:]]]}, 400),
        ("start time a float", "create", {**base, "rows": [[*claim[:2], 1.5, *claim[3:]]]}, 400),
        ("start time past int64", "create", {**base, "rows": [[*claim[:2], 2**70, *claim[3:]]]}, 400),
        ("tags a list", "create", {**base, "rows": [[*claim[:3], [["a", "b"]], "me"]]}, 400),
        ("tag value a number", "create", {**base, "rows": [[*claim[:3], {**claim[3], "x": 1}, "me"]]}, 400),
        ("tag value 8001 chars", "create",
         {**base, "rows": [[*claim[:3], {**claim[3], "x": "v" * 8001}, "me"]]}, 400),
        ("tag name a path", "create", {**base, "rows": [[*claim[:3], {**claim[3], "a/../b": "v"}, "me"]]}, 400),
        ("tag name with a quote", "create", {**base, "rows": [[*claim[:3], {**claim[3], "a'b": "v"}, "me"]]}, 400),
        ("claim of another parent", "create",
         {**base, "rows": [[*claim[:3], {**claim[3], TAG_PARENT: rival}, "me"]]}, 400),
        ("user not a string", "create", {**base, "rows": [[*claim[:4], None]]}, 400),
        ("name 251 chars", "create", {**base, "rows": [[claim[0], "n" * 251, *claim[2:]]]}, 400),
        ("a run id twice", "create", {**base, "rows": [claim, claim]}, 400),
        ("an existing run id", "create", {**base, "rows": [[victim, *claim[1:]]]}, 400),
        ("finish a run of another experiment", "finish", {**base, "rows": [_result(victim)]}, 404),
        ("finish another sweep's claim", "finish", {**base, "rows": [_result(rival_claim)]}, 403),
        ("finish a finished run", "finish", {**base, "rows": [_result(own[0])]}, 400),
        ("status DONE", "finish", {**base, "rows": [[*result[:4], "DONE"]]}, 400),
        ("status RUNNING", "finish", {**base, "rows": [[*result[:4], "RUNNING"]]}, 400),
        ("metrics not a list", "finish", {**base, "rows": [[own[1], "x", *result[2:]]]}, 400),
        ("a metric of 3 items", "finish", {**base, "rows": [[own[1], [["a", 1, 2]], *result[2:]]]}, 400),
        ("a metric value a string", "finish",
         {**base, "rows": [[own[1], [["a", "1", 2, 0]], *result[2:]]]}, 400),
        ("a metric value a bool", "finish",
         {**base, "rows": [[own[1], [["a", True, 2, 0]], *result[2:]]]}, 400),
        ("a metric step a float", "finish",
         {**base, "rows": [[own[1], [["a", 1.0, 2, 0.5]], *result[2:]]]}, 400),
        ("a metric name a path", "finish",
         {**base, "rows": [[own[1], [["../a", 1.0, 2, 0]], *result[2:]]]}, 400),
        ("a metric name 251 chars", "finish",
         {**base, "rows": [[own[1], [["m" * 251, 1.0, 2, 0]], *result[2:]]]}, 400),
        ("params not pairs", "finish", {**base, "rows": [[*result[:2], [["a"]], *result[3:]]]}, 400),
        ("a param value 6001 chars", "finish",
         {**base, "rows": [[*result[:2], [["a", "v" * 6001]], *result[3:]]]}, 400),
        ("a param twice", "finish",
         {**base, "rows": [[*result[:2], [["a", "1"], ["a", "2"]], *result[3:]]]}, 400),
        ("a param value a number", "finish", {**base, "rows": [[*result[:2], [["a", 1]], *result[3:]]]}, 400),
        ("tags not pairs", "finish", {**base, "rows": [[*result[:3], "t", result[4]]]}, 400),
        ("a result twice", "finish", {**base, "rows": [result, result]}, 400),
        ("withdraw a run of another experiment", "withdraw", {**base, "run_ids": [victim]}, 404),
        ("withdraw another sweep's claim", "withdraw", {**base, "run_ids": [rival_claim]}, 403),
        ("withdraw another sweep's parent", "withdraw", {**base, "run_ids": [rival]}, 403),
        ("withdraw without a parent", "withdraw", {"experiment_id": mine, "run_ids": [own[2]]}, 400),
        ("run_ids not a list", "withdraw", {**base, "run_ids": "abc"}, 400),
        ("run_ids of numbers", "kill", {**base, "run_ids": [1, 2]}, 400),
        ("kill a run of another experiment", "kill", {**base, "run_ids": [victim]}, 404),
        ("kill a finished run", "kill", {**base, "run_ids": [rival_done]}, 400),
        ("kill a SQL run id", "kill", {**base, "run_ids": ["x' OR '1'='1"]}, 400),
        ("too many rows", "kill", {**base, "run_ids": ["a"] * 20001}, 400),
    ]  # fmt: skip
    answers = []
    for what, op, body, code in hostile:
        resp = post(op, copy.deepcopy(body))
        answers.append((what, resp.status_code))
        assert resp.status_code == code, (what, resp.status_code, resp.get_data(as_text=True)[:300])
        assert resp.get_json()["message"], what
    assert all(code in ALLOWED for _, code in answers)

    # a body over the cap (413), and one without a length (411)
    monkeypatch.setattr(serverapp, "MAX_BODY", 1000)
    big = post("finish", {**base, "rows": [[*result[:2], [["a", "v" * 2000]], *result[3:]]]})
    assert big.status_code == 413, big.get_json()
    chunked = client.post(f"{API}/finished_keys", data=b'{"experiment_id": 1}',
                          headers={"Transfer-Encoding": "chunked"},
                          content_type="application/json")  # fmt: skip
    assert chunked.status_code == 411, chunked.get_json()

    # nothing outside the caller's sweep changed; the sweep's own runs are as written
    assert _snapshot(store, others) == before
    finished = post("finished_keys", {"experiment_id": mine}).get_json()["keys"]
    assert finished == ["k0"]  # only the caller's one real result: no fake FINISHED key
    # the store reads back through MLflow's client, every run by get_run (as the UI does)
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    reader = MlflowClient(tracking_uri=uri)
    runs = reader.search_runs([mine, other], run_view_type=ViewType.ALL)
    assert len(runs) == 4 + len(own) + 2
    for r in runs:
        assert reader.get_run(r.info.run_id).info.run_id == r.info.run_id
    got = reader.get_run(own[0])
    assert got.info.status == "FINISHED" and got.data.metrics["gap"] == 0.25
    # the legitimate withdraw and kill still work
    assert post("withdraw", {**base, "run_ids": [own[2]]}).status_code == 200
    assert reader.get_run(own[2]).info.lifecycle_stage == "deleted"
    assert post("kill", {**base, "run_ids": [rival_claim]}).status_code == 200
    assert reader.get_run(rival_claim).info.status == "KILLED"


# ---------------------------------------------------------------------------- with basic-auth


def _auth_server(tmp_path: Path, workers: int):
    """``cluster/mlflow-server.sh --app dualsweep-auth`` on 127.0.0.1 with ``workers`` workers
    and a fresh user database; returns (process, uri, log)."""
    from tests.cluster.harness import MLFLOW_SERVER, base_env, free_port, wait_http

    port = free_port()
    work = tmp_path / f"srv{workers}"
    work.mkdir()
    env = base_env()
    env.update(MLFLOW_AUTH_ADMIN_PASSWORD="admin-Pass-123456", MLFLOW_AUTH_ADMIN_USERNAME="admin")
    env.pop("MLFLOW_FLASK_SERVER_SECRET_KEY", None)  # the script makes one
    log = work / "server.log"
    opts = ["--workers", str(workers)]
    if workers > 1:
        opts += ["--gunicorn-opts", "--keep-alive 30"]
    proc = subprocess.Popen(
        [str(MLFLOW_SERVER), "--backend", f"sqlite:///{work / 'mlflow.db'}", "--artifacts",
         str(work / "artifacts"), "--port", str(port), "--app", "dualsweep-auth", "--", *opts],
        cwd=work, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    wait_http(uri + "/health", proc, 180, log)
    return proc, uri, log


def _stop(proc) -> None:
    import os
    import signal

    from tests.cluster.harness import descendants, stop_pids

    pids = {proc.pid} | descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    stop_pids(pids, grace=5)


def _post(uri: str, op: str, body: dict, auth: tuple[str, str] | None) -> int:
    import base64
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{uri}{API}/{op}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_a_server_beyond_loopback_gets_basic_auth_by_default(tmp_path: Path) -> None:
    """``--host`` other than loopback and no ``--app``: the dualsweep-auth app, whose user
    database needs an admin password on a first start — refused before anything listens."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth needs dualsweep[auth]")
    from tests.cluster.harness import MLFLOW_SERVER, base_env

    env = {k: v for k, v in base_env().items() if not k.startswith("MLFLOW_AUTH_")}
    proc = subprocess.run(
        [str(MLFLOW_SERVER), "--host", "192.0.2.1", "--port", "5999"],  # TEST-NET-1: unroutable
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert err[-1].startswith("cluster/mlflow-server.sh: --app dualsweep-auth:"), err
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" in err[-1] and len(err) == 2, err


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 4])
def test_basic_auth_and_the_dualsweep_routes(tmp_path: Path, monkeypatch, workers: int) -> None:
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth needs dualsweep[auth]")
    proc, uri, log = _auth_server(tmp_path, workers)
    try:
        from mlflow.server import get_app_client

        from sweep.store import Store
        from sweep.tracking import Tracker
        from sweep.writers import HttpRunWriter
        from tests.sweep.test_tracking import _specs, quick

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "admin-Pass-123456")
        users = get_app_client("basic-auth", tracking_uri=uri)
        for name in ("editor", "reader"):
            users.create_user(name, f"{name}-Pass-123456")
        from mlflow.tracking import MlflowClient

        exp = MlflowClient(tracking_uri=uri).create_experiment("auth")
        users.grant_user_permission("editor", "experiment", exp, "EDIT")
        users.grant_user_permission("reader", "experiment", exp, "READ")
        body = {"experiment_id": exp}
        assert _post(uri, "finished_keys", body, None) == 401
        assert _post(uri, "finished_keys", body, ("editor", "wrong")) == 401
        assert _post(uri, "finished_keys", body, ("reader", "reader-Pass-123456")) == 403
        assert _post(uri, "finish", {**body, "rows": []}, ("reader", "reader-Pass-123456")) == 403
        editor = ("editor", "editor-Pass-123456")
        for bad in ({"experiment_id": "x"}, {"experiment_id": "999999"}, {"rows": 1}):
            assert _post(uri, "finish", bad, editor) in (400, 404), bad
        assert _post(uri, "finished_keys", {**body, "experiment_id": "0"}, editor) == 403
        for _ in range(2 * workers):  # every worker answers alike
            assert _post(uri, "finished_keys", body, ("editor", "editor-Pass-123456")) == 200
        # a sweep recorded by the editor, through the routes
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "editor")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "editor-Pass-123456")
        t = Tracker(Store(uri, None), "auth", settle=0.0)
        assert isinstance(t.writer, HttpRunWriter)
        specs = _specs(3, "auth")
        t.start(params={})
        t.claim(specs)
        for s, r in zip(specs, quick(specs), strict=True):
            t.record(s, r)
        t.finish("FINISHED")
        assert t.finished_keys() == {s.key for s in specs}
        text = log.read_text()
        assert "already exists" not in text and "Traceback" not in text, text[-3000:]
    finally:
        _stop(proc)
