"""Real processes on loopback for the cluster tests: a two-node Ray cluster, MLflow servers
(SQLite or PostgreSQL backed) and a throw-away PostgreSQL server.

Everything here listens on 127.0.0.1 only and is stopped by the pid it was started with.
The two-node cluster is Ray's own multi-node test harness ``ray.cluster_utils.Cluster`` (a
head and a second node, each with its own raylet): a second ``ray start`` does not stay on
loopback here (DESIGN.md, "Ray on loopback"). ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps
every address Ray derives (the dashboard agent's and the job driver's connections included)
on 127.0.0.1 instead of the machine's outward address. Token authentication is on, with a
token file of its own (``RAY_AUTH_TOKEN_PATH``), so ``~/.ray/auth_token`` is never touched.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = ROOT / "cluster" / "submit.sh"
MLFLOW_SERVER = ROOT / "cluster" / "mlflow-server.sh"
LOOPBACK = {"127.0.0.1", "::1"}

__all__ = [
    "LOOPBACK",
    "MlflowServer",
    "Postgres",
    "RayCluster",
    "base_env",
    "free_port",
    "grid_keys",
    "listening_addresses",
    "stop_pids",
    "submit",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    """Environment of every process the tests start: this interpreter's bin first on PATH (so
    ``python``, ``ray`` and ``mlflow`` are the project's), no inherited cluster or store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def stop_pids(pids: set[int] | list[int], *, grace: float = 10.0) -> None:
    """SIGTERM each pid still alive, then SIGKILL what is left after ``grace`` seconds."""
    alive = [p for p in pids if _alive(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if _alive(p)]
        if not alive:
            return


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def listening_addresses(pids: set[int]) -> set[str]:
    """Local IPs of the TCP sockets in LISTEN state owned by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addrs = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in inodes:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(parts[1].split(":")[0])
            host = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(host)
            addrs.add(str(getattr(ip, "ipv4_mapped", None) or ip))
    return addrs


def wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; ``RuntimeError`` with the log tail if ``proc`` exits
    or ``timeout`` seconds pass (servers of the tests and of ``bench.recording``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{url}: server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# ---------------------------------------------------------------------------- MLflow server


@dataclass
class MlflowServer:
    """``cluster/mlflow-server.sh`` on 127.0.0.1:port, in its own process group."""

    backend: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    app: str = "dualsweep"  # cluster/mlflow-server.sh --app (mlflow: the stock server)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        """Start without waiting (``ready`` waits), so it boots while other things start."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / f"mlflow-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                str(MLFLOW_SERVER),
                "--backend",
                self.backend,
                "--artifacts",
                str(self.workdir / "artifacts"),
                "--port",
                str(self.port),
                "--app",
                self.app,
                "--",
                "--workers",
                "1",
            ],
            cwd=self.workdir,
            env=base_env(),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its uvicorn worker shares the group: stopped together
        )
        return self

    def ready(self, timeout: float = 300.0) -> MlflowServer:
        assert self.proc is not None
        wait_http(self.uri + "/health", self.proc, timeout, self.log)
        return self

    def pids(self) -> set[int]:
        return {self.proc.pid} | descendants(self.proc.pid) if self.proc else set()

    def stop(self) -> None:
        if self.proc is None:
            return
        pids = self.pids()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group the server leads (pgid == pid)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        stop_pids(pids, grace=5)
        self.proc = None

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


# ---------------------------------------------------------------------------- PostgreSQL


def find_pg_bin() -> Path | None:
    """Directory of PostgreSQL's server binaries (initdb, postgres), or None."""
    found = shutil.which("initdb")
    cands = [Path(found).resolve().parent] if found else []
    cands += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for d in cands:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


@dataclass
class Postgres:
    """A throw-away PostgreSQL server: ``initdb`` into a fresh directory, listening on
    127.0.0.1:port only (no Unix socket outside that directory), password authentication.
    As root it runs as the ``postgres`` system user (PostgreSQL refuses to run as root)."""

    bindir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    proc: subprocess.Popen | None = None

    def _user(self) -> tuple[str | None, int | None, int | None]:
        if os.geteuid() != 0:
            return None, None, None
        import pwd

        pw = pwd.getpwnam("postgres")  # KeyError: no such user (the caller skips)
        return "postgres", pw.pw_uid, pw.pw_gid

    def start(self, timeout: float = 300.0) -> Postgres:
        user, uid, gid = self._user()
        self.dir = Path(tempfile.mkdtemp(prefix="dualsweep-pg-"))
        data, pwfile = self.dir / "data", self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if uid is not None:
            os.chown(self.dir, uid, gid)
            os.chown(pwfile, uid, gid)
        run_as = {"user": uid, "group": gid, "extra_groups": []} if uid is not None else {}
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.dir,
            **run_as,
        )
        self.log = self.dir / "postgres.log"
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.dir),  # Unix socket in our own directory
                "-c",
                "fsync=off",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.dir,
            **run_as,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("SELECT 1", dbname="postgres")
                break
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not start:\n{self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        return self

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, *, dbname: str) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=self.password,
            dbname=dbname,
            connect_timeout=5,
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"', dbname="postgres")
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            pids = {self.proc.pid} | descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            stop_pids(pids, grace=5)
            self.proc = None
        shutil.rmtree(getattr(self, "dir", ""), ignore_errors=True)


def start_postgres(*, install: bool = False) -> Postgres:
    """A started throw-away PostgreSQL, or ``pytest.skip`` with the reason: not installed
    (``install``: after trying ``.ci/install-postgres.sh``), or running as root without a
    ``postgres`` user to run it as."""
    import pytest

    bindir = find_pg_bin()
    why = "PostgreSQL is not installed (make system-deps installs it)"
    if bindir is None and install:
        r = subprocess.run(
            [str(ROOT / ".ci" / "install-postgres.sh")], capture_output=True, text=True
        )
        bindir = find_pg_bin()
        why = (
            "PostgreSQL is not installed and could not be installed here "
            f"(.ci/install-postgres.sh: {(r.stdout + r.stderr).strip()})"
        )
    if bindir is None:
        pytest.skip(why)
    pg = Postgres(bindir)
    try:
        pg.start()
    except KeyError:
        pytest.skip("running as root but there is no 'postgres' system user to run PostgreSQL as")
    return pg


# ---------------------------------------------------------------------------- Ray cluster


class RayCluster:
    """A head and a worker node (1 CPU each, custom resources ``head_node`` / ``worker_node``)
    on 127.0.0.1, token authentication on, the dashboard at 127.0.0.1:<free port>."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.token_path = workdir / "ray_auth_token"
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        self.dashboard_port = free_port()
        self.temp_dir = tempfile.mkdtemp(prefix="dsray-")  # short: Unix socket paths are limited
        self._saved_env: dict[str, str | None] = {}
        self._pids: set[int] = set()

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self, *, token: bool = True) -> dict[str, str]:
        """Environment for ``cluster/submit.sh`` and ``ray job`` against this cluster."""
        env = base_env()
        env["RAY_ADDRESS"] = self.dashboard
        if token:
            env["RAY_AUTH_TOKEN_PATH"] = str(self.token_path)
        return env

    def _setenv(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def start(self) -> RayCluster:
        # The cluster's processes are children of this one and inherit its environment.
        self._setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        self._setenv("RAY_AUTH_MODE", "token")
        self._setenv("RAY_AUTH_TOKEN_PATH", str(self.token_path))
        self._setenv("PATH", base_env()["PATH"])
        self._setenv("OMP_NUM_THREADS", "1")
        from ray._private import ray_constants
        from ray._raylet import AuthenticationTokenLoader, Config

        self._saved_enable = ray_constants.ENABLE_RAY_CLUSTER
        # read at call time by services.get_node_ip_address: keep derived addresses on loopback
        ray_constants.ENABLE_RAY_CLUSTER = False
        Config.initialize("")  # this process's RayConfig picks up RAY_AUTH_MODE=token
        AuthenticationTokenLoader.instance().reset_cache()  # and reads our token file

        current = Path("/tmp/ray/ray_current_cluster")
        before = current.read_text() if current.exists() else None
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            shutdown_at_exit=True,  # and a reaper: nothing outlives a crashed test process
            head_node_args={
                "num_cpus": 1,
                "resources": {"head_node": 1},
                "node_ip_address": "127.0.0.1",
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": self.dashboard_port,
                # the head's job agent listens on a free port, not Ray's default 52365: a local
                # Ray instance of any other process on this machine holds that one, and the
                # agent then never registers ("No available agent to submit job")
                "dashboard_agent_listen_port": free_port(),
                "temp_dir": self.temp_dir,
            },
        )
        self.head = self.cluster.head_node
        self.worker = self.cluster.add_node(
            num_cpus=1, resources={"worker_node": 1}, node_ip_address="127.0.0.1"
        )
        # Cluster() records its address as "the current cluster" in /tmp/ray, not in its own
        # temp dir: put back what was there, so no other Ray user on this machine joins this
        # test cluster by accident, and record it in the cluster's temp dir, where the job
        # supervisor resolves the address it hands to job drivers (otherwise it falls back to
        # any GCS process it finds on the machine, possibly another test's).
        if before is None:
            current.unlink(missing_ok=True)
        else:
            current.write_text(before)
        from ray._private.utils import write_ray_address

        write_ray_address(self.cluster.gcs_address, self.temp_dir)
        self.node_ids = {self.head.node_id, self.worker.node_id}
        self.track()
        self._wait_dashboard()
        return self

    def _wait_dashboard(self, timeout: float = 300.0) -> None:
        token = self.token_path.read_text().strip()
        req = urllib.request.Request(
            self.dashboard + "/api/version", headers={"Authorization": f"Bearer {token}"}
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    json.loads(r.read())
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop_job(self, submission_id: str) -> None:
        """Stop a job through the dashboard's REST API (``ray job stop``, minus its start-up)."""
        token = self.token_path.read_text().strip()
        req = urllib.request.Request(
            f"{self.dashboard}/api/jobs/{submission_id}/stop",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200

    def track(self) -> set[int]:
        """Every process of the cluster (this process's descendants), remembered for teardown."""
        self._pids |= descendants(os.getpid())
        return set(self._pids)

    def processes(self) -> set[int]:
        return {p for p in self.track() if _alive(p)}

    def stop(self) -> None:
        pids = self.track()
        try:
            self.cluster.shutdown()
        finally:
            stop_pids(pids, grace=10)
            if not os.environ.get("DUALSWEEP_KEEP_RAY_LOGS"):  # debugging: keep the session logs
                shutil.rmtree(self.temp_dir, ignore_errors=True)
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = self._saved_enable
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")  # later Ray users in this process see their own settings
            AuthenticationTokenLoader.instance().reset_cache()


# ---------------------------------------------------------------------------- helpers


def submit(
    cluster: RayCluster,
    grid: str,
    overrides: list[str] = (),
    *,
    tracking_uri: str,
    extra_env: dict[str, str] | None = None,
    token: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """``cluster/submit.sh GRID overrides...`` from the repository root, as a user would."""
    env = cluster.env(token=token)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(extra_env or {})
    return subprocess.run(
        [str(SUBMIT), grid, "sweep.progress=false", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def grid_keys(grid: str, overrides: list[str] = ()) -> set[str]:
    """Trial keys of a grid, from the sweep's own dry run (the public CLI)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            f"+grid={grid}",
            "sweep.dry_run=true",
            "sweep.dry_run_lines=0",  # every key, however big the grid
            *overrides,
        ],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=600,  # generous: a loaded machine (the dry run is seconds on a quiet one)
        check=True,
    ).stdout
    keys = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert keys and all(len(k) == 20 for k in keys), out
    return keys


def iter_runs(client, experiment: str) -> Iterator:
    """Every run of ``experiment`` (any status), through the server's REST API."""
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return
    token = None
    while True:
        page = client.search_runs(
            [exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return
