"""Integration: real ``python -m sweep`` runs with real Ray (local, 2 CPUs) and real MLflow on
a temporary SQLite store, including a driver killed with SIGKILL and a Ray worker killed
mid-sweep. Linux only for the process checks (they read /proc)."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.config import load
from sweep.grid import expand
from sweep.schema import (
    ARTIFACT_RESULT,
    CURVE_PREFIX,
    TAG_GIT_COMMIT,
    TAG_GRID,
    TAG_KIND,
    TAG_NODE_ID,
    TAG_STATUS,
    TAG_TRIAL_KEY,
    TAG_VERSIONS,
    TrialResult,
    TrialSpec,
)
from tests.sweep.conftest import compose, sweep_env

pytestmark = pytest.mark.slow

SCALAR_METRICS = [
    "sgd_objective",
    "exact_objective",
    "abs_gap",
    "rel_gap",
    "certificate",
    "certified_gap",
    "wall_time",
    "layer1.rank",
    "layer1.stable_rank",
    "layer1.norm_ratio",
    "layer1.align_next",
]


def _sweep(args: list[str], cwd: Path, *, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *args, "sweep.progress=false"],
        cwd=cwd,
        env=sweep_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _client(cwd: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlruns.db'}")


def _runs(cwd: Path, grid: str, kind: str = "trial", status: str | None = None) -> list:
    client = _client(cwd)
    exp = client.get_experiment_by_name(grid)
    if exp is None:
        return []
    flt = f"tags.{TAG_KIND} = '{kind}'"
    if status:
        flt += f" and attributes.status = '{status}'"
    return list(client.search_runs([exp.experiment_id], filter_string=flt, max_results=5000))


def _finished_count(cwd: Path) -> int:
    """FINISHED child runs, read with sqlite3 read-only: opening the store with MLflow while
    the driver creates it would race its schema migration (DESIGN.md pitfalls)."""
    import sqlite3

    db = cwd / "mlruns.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            (n,) = con.execute(
                "SELECT count(*) FROM runs r JOIN tags t ON r.run_uuid = t.run_uuid "
                f"WHERE t.key = '{TAG_KIND}' AND t.value = 'trial' AND r.status = 'FINISHED'"
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(n)


def _grid_keys(overrides: list[str]) -> set[str]:
    return {s.key for s in expand(load(compose(overrides)))}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used; 0 once it is gone. A load-independent clock
    of how far a process got, where wall time on a busy machine says little."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _listening_addresses(pids: list[int]) -> set[str]:
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
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in inodes:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(parts[1].split(":")[0])
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host order
            ip = ipaddress.ip_address(words)
            mapped = getattr(ip, "ipv4_mapped", None)
            addrs.add(str(mapped or ip))
    return addrs


def test_smoke_grid_on_local_ray_then_rerun_creates_nothing(tmp_path: Path) -> None:
    proc = _sweep(["+grid=smoke", "runner.num_cpus=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '-m mlflow ui --backend-store-uri "sqlite:///$PWD/mlruns.db"' in proc.stdout
    assert "--host 127.0.0.1" in proc.stdout

    runs = _runs(tmp_path, "smoke")
    keys = _grid_keys(["+grid=smoke"])
    assert len(runs) == len(keys) == 8
    assert {r.data.tags[TAG_TRIAL_KEY] for r in runs} == keys
    client = _client(tmp_path)
    (parent,) = _runs(tmp_path, "smoke", kind="sweep")
    assert parent.info.status == "FINISHED"
    for run in runs:
        assert run.info.status == "FINISHED"
        tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags[TAG_STATUS] == "finished" and tags[TAG_GRID] == "smoke"
        assert tags[TAG_GIT_COMMIT] and json.loads(tags[TAG_VERSIONS])["ray"]
        assert tags[TAG_NODE_ID] not in ("", "driver")  # a Ray node ran it
        for name in SCALAR_METRICS:
            assert name in metrics, name
        exact = metrics["exact_objective"]  # SGD cannot beat P*, no lower bound exceeds it
        assert metrics["sgd_objective"] >= exact * (1 - 1e-9)
        assert metrics["certificate"] <= exact * (1 + 1e-9)
        spec = TrialSpec.from_params(params)
        assert spec.key == tags[TAG_TRIAL_KEY]
        curve = client.get_metric_history(run.info.run_id, CURVE_PREFIX + "objective")
        assert len(curve) >= 3 and len({m.step for m in curve}) == len(curve)
        local = client.download_artifacts(run.info.run_id, ARTIFACT_RESULT, str(tmp_path))
        result = TrialResult.from_json(Path(local).read_text())
        assert result.key == spec.key and result.metrics()["sgd_objective"] == pytest.approx(
            metrics["sgd_objective"], rel=1e-12
        )

    again = _sweep(["+grid=smoke", "runner.num_cpus=2"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "8 already recorded, 0 to run" in again.stdout
    assert len(_runs(tmp_path, "smoke")) == 8  # nothing new, nothing doubled


def test_driver_killed_with_sigkill_then_resumed(tmp_path: Path) -> None:
    args = ["+grid=smoke", "runner=inline", "runner.batch_size=1", "seed=[0,1,2,3,4]"]
    keys = _grid_keys(args)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", *args, "sweep.progress=false"],
        cwd=tmp_path,
        env=sweep_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600  # a loaded machine: the driver starts slowly
        while time.monotonic() < deadline and proc.poll() is None:
            if _finished_count(tmp_path) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {r.data.tags[TAG_TRIAL_KEY] for r in _runs(tmp_path, "smoke", status="FINISHED")}
    assert 3 <= len(before) < len(keys)
    (parent,) = _runs(tmp_path, "smoke", kind="sweep")
    assert parent.info.status == "RUNNING"  # killed: nobody closed it

    again = _sweep(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    finished = [r.data.tags[TAG_TRIAL_KEY] for r in _runs(tmp_path, "smoke", status="FINISHED")]
    assert sorted(finished) == sorted(keys)  # the union is exactly the grid, no key twice
    assert not _runs(tmp_path, "smoke", status="RUNNING")
    statuses = {r.info.run_id: r.info.status for r in _runs(tmp_path, "smoke", kind="sweep")}
    assert statuses[parent.info.run_id] == "KILLED" and sorted(statuses.values()) == [
        "FINISHED",
        "KILLED",
    ]
    assert f"{len(before)} already recorded, {len(keys) - len(before)} to run" in again.stdout


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ray_worker_killed_mid_sweep_is_retried_and_ray_stays_on_loopback(tmp_path: Path) -> None:
    args = [
        "+grid=smoke",
        "runner.num_cpus=2",
        "runner.batch_size=1",
        "runner.max_retries=3",
        "train.steps=3000",
    ]
    keys = _grid_keys(args)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", *args, "sweep.progress=false"],
        cwd=tmp_path,
        env=sweep_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    addresses: set[str] = set()
    try:
        deadline = time.monotonic() + 600
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            pids = _descendants(proc.pid)
            addresses |= _listening_addresses(pids)
            busy = [p for p in pids if _cmdline(p).startswith("ray::_ray_batch")]
            if busy:
                # let it get into the trial: 0.3 s of its own CPU time, whatever the load
                start = _cpu_seconds(busy[0])
                while _cpu_seconds(busy[0]) - start < 0.3 and time.monotonic() < deadline:
                    time.sleep(0.02)
                os.kill(busy[0], signal.SIGKILL)
                killed = busy[0]
            time.sleep(0.05)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no Ray worker was seen running a batch"
    assert proc.returncode == 0, err[-3000:]
    finished = [r.data.tags[TAG_TRIAL_KEY] for r in _runs(tmp_path, "smoke", status="FINISHED")]
    assert sorted(finished) == sorted(keys)
    assert {r.data.tags[TAG_STATUS] for r in _runs(tmp_path, "smoke")} == {"finished"}
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses


def test_huge_learning_rate_is_recorded_as_diverged_with_exit_0(tmp_path: Path) -> None:
    args = ["+grid=smoke", "runner=inline", "train.lr=1e6", "seed=0"]
    proc = _sweep(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(tmp_path, "smoke")
    assert len(runs) == len(_grid_keys(args)) == 4
    assert {r.data.tags[TAG_STATUS] for r in runs} == {"diverged"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert "4 diverged" in proc.stdout


def test_ctrl_c_marks_the_sweep_killed_and_keeps_what_finished(tmp_path: Path) -> None:
    args = ["+grid=smoke", "runner=inline", "runner.batch_size=1", "seed=[0,1,2,3,4]"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", *args, "sweep.progress=false"],
        cwd=tmp_path,
        env=sweep_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600  # a loaded machine: the driver starts slowly
        while time.monotonic() < deadline and proc.poll() is None and _finished_count(tmp_path) < 2:
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "run the same command to resume" in err
    (parent,) = _runs(tmp_path, "smoke", kind="sweep")
    assert parent.info.status == "KILLED"
    runs = _runs(tmp_path, "smoke")
    assert {r.info.status for r in runs} == {"FINISHED"}  # every result that arrived was written
    keys = [r.data.tags[TAG_TRIAL_KEY] for r in runs]
    assert len(keys) == len(set(keys)) >= 2
