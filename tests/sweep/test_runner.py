"""sweep.runner around the trials: an unreachable cluster address is one sentence in seconds
with no run opened; the Ray processes of a killed driver's local instance are cleaned up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.config import RunnerConfig, load
from sweep.runner import AddressError, check_address
from tests.sweep.conftest import REPO, sweep_env


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.parametrize("form", ["{port}", "ray://{port}"])
def test_unreachable_address_is_one_sentence(form: str, monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    address = form.format(port=f"127.0.0.1:{_closed_port()}")
    t0 = time.monotonic()
    with pytest.raises(AddressError) as info:
        check_address(RunnerConfig(address=address))
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert msg.startswith(f"runner.address={address} is unreachable (connection refused)")
    assert "\n" not in msg and msg.endswith(".")


def test_address_from_the_environment_is_named_and_bad_forms_refused(monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(AddressError, match=r"^\$RAY_ADDRESS=127\.0\.0\.1:\d+ is unreachable"):
        check_address(RunnerConfig())
    with pytest.raises(AddressError, match="must be auto, HOST:PORT or ray://HOST:PORT"):
        check_address(RunnerConfig(address="ray://nowhere"))
    check_address(RunnerConfig(address="auto"))  # left to Ray: no error here
    with socket.socket() as server:  # something listening: accepted
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_address(RunnerConfig(address=f"127.0.0.1:{server.getsockname()[1]}"))


def test_cli_with_unreachable_address_exits_2_before_the_store(tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", f"runner.address=ray://127.0.0.1:{_closed_port()}"],
        cwd=tmp_path,
        env=sweep_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - t0 < 180  # seconds quiet; generous for a loaded machine
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "runner.address=ray://127.0.0.1:" in errors[0], proc.stderr
    assert not (tmp_path / "mlruns.db").exists()


@pytest.mark.slow
def test_run_sweep_with_unreachable_cluster_opens_no_run(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    from sweep.grid import expand
    from sweep.runner import run_sweep

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sweep = load(
        {
            "grid": {"name": "addr"},
            "runner": {"kind": "local"},
            "tracking": {"uri": uri, "artifacts": str(tmp_path / "art")},
            "sweep": {"progress": False},
        }
    )
    with pytest.raises(AddressError):
        run_sweep(sweep, expand(sweep), out=open(os.devnull, "w"))
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("addr")
    runs = client.search_runs([exp.experiment_id]) if exp is not None else []
    assert [r.info.status for r in runs] == []  # no parent run, let alone a RUNNING one


DRIVER = """
import sys, time
from sweep.config import RunnerConfig
from sweep.runner import start_ray
import ray
start_ray(RunnerConfig(num_cpus=1))
print(ray.get_runtime_context().gcs_address, flush=True)
import os
print(os.path.basename(ray._private.worker._global_node.get_session_dir_path()), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _recorded_pids(records: Path) -> list[int]:
    import json

    (path,) = records.glob("*.json")
    return [int(p) for p in json.loads(path.read_text())["roots"]]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_ray_processes_of_a_killed_driver_are_removed_and_nothing_else(tmp_path, monkeypatch):
    import sweep.runner as runner

    records = tmp_path / "records"
    monkeypatch.setattr(runner, "RECORDS", records)
    env = sweep_env(DUALSWEEP_RAY_RECORDS=str(records))  # where the driver writes its record
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        driver.stdout.readline()
        session = driver.stdout.readline().strip()
        assert session.startswith("session_"), session
        ours = _recorded_pids(records)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        time.sleep(2)
        left = [p for p in ours if _alive(p)]
        assert left, "a killed driver's Ray processes outlive it (the case being fixed)"
        # a process that is not ours, although its command line names the session
        bystander = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(300)", session]
        )
        # a record of a driver that still runs (this test process) is not touched
        live = records / "live.json"
        me, other = os.getpid(), bystander.pid
        live.write_text(
            f'{{"driver": {me}, "driver_start": {runner._start_time(me)}, '
            f'"roots": {{"{other}": {runner._start_time(other)}}}}}'
        )
        assert runner.cleanup_local_instances() >= len(left)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(_alive(p) for p in left):
            time.sleep(0.1)
        assert not [p for p in left if _alive(p)]
        assert bystander.poll() is None and live.exists()
        bystander.kill()
    finally:
        if driver.poll() is None:
            driver.kill()


# ---------------------------------------------------------------- threads per task


def test_task_threads_follow_the_cpu_reservation() -> None:
    from sweep.runner import task_threads

    assert [task_threads(c) for c in (0.25, 0.5, 1, 1.0, 1.5, 2, 4.0, 16)] == [
        1,
        1,
        1,
        1,
        1,
        2,
        4,
        16,
    ]


def test_limit_threads_sets_torch_and_blas_pools_and_restores_them() -> None:
    import torch
    from threadpoolctl import threadpool_info

    from sweep.runner import limit_threads

    before = torch.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info()]
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before
    assert [p["num_threads"] for p in threadpool_info()] == blas_before


def report_threads(specs: list, *, device: str = "cpu") -> list:
    """A batch function that reports the compute threads it was given (for the Ray test)."""
    import torch
    from threadpoolctl import threadpool_info

    from sweep.schema import TrialResult

    blas = max((p["num_threads"] for p in threadpool_info()), default=0)
    extra = {"torch_threads": float(torch.get_num_threads()), "blas_threads": float(blas)}
    return [TrialResult(key=s.key, status="finished", extra=dict(extra)) for s in specs]


THREADS_DRIVER = """
import json, sys
from sweep.config import RunnerConfig, load
from sweep.grid import batches, expand
from sweep.runner import run_batches, start_ray, stop_ray
from tests.sweep.test_runner import report_threads

specs = expand(load({"seed": [0, 1, 2, 3]}))
started = start_ray(RunnerConfig(num_cpus=4))
out = {}
for cpus in (1, 2, 0.5):
    seen = []
    run_batches(batches(specs, 1), RunnerConfig(cpus_per_task=cpus), batch_fn=report_threads,
                on_result=lambda s, r: seen.append(r.extra))
    out[str(cpus)] = seen
stop_ray(started)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_each_ray_task_gets_as_many_threads_as_cpus_it_reserved(tmp_path) -> None:
    import json

    records = tmp_path / "records"
    proc = subprocess.run(
        [sys.executable, "-c", THREADS_DRIVER],
        cwd=REPO,
        env=sweep_env(DUALSWEEP_RAY_RECORDS=str(records), OMP_NUM_THREADS="", MKL_NUM_THREADS=""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for cpus, threads in (("1", 1), ("2", 2), ("0.5", 1)):
        assert len(seen[cpus]) == 4
        assert {e["torch_threads"] for e in seen[cpus]} == {threads}, seen
        assert {e["blas_threads"] for e in seen[cpus]} <= {threads, 0}, seen


def test_an_interrupt_during_the_closing_bookkeeping_waits_for_it() -> None:
    """Ctrl-C / SIGTERM that lands while the writers drain and the parent run is closed is held
    until that is done (else the parent stayed RUNNING: seen in 2 of 829 tests on a quiet
    machine), then raised; the parent is closed KILLED."""
    import os
    import signal

    from sweep.interrupts import Deferred, Terminated

    for sig, exc in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)):
        before = signal.getsignal(sig)
        closed = []
        with pytest.raises(exc):
            with Deferred() as held:
                os.kill(os.getpid(), sig)  # delivered at once, to this (the main) thread
                closed.append(held.status("FINISHED"))  # still running: nothing was raised
            held.reraise()
        assert closed == ["KILLED"]
        assert signal.getsignal(sig) in (before, signal.SIG_IGN)
        signal.signal(sig, before)
    with Deferred() as held:  # no signal: the status stands and nothing is raised
        status = held.status("FINISHED")
    assert status == "FINISHED" and held.reraise() is None
