"""``cluster/slurm.sbatch`` end to end on this machine, with stand-ins for ``srun`` and
``scontrol`` that run every step here, on a single "node": two ``ray start`` on one machine
do not stay on loopback (DESIGN.md, "Ray on loopback"), so the head-and-workers mode starts
the head only, and ``ray symmetric-run`` runs as the one node of its cluster. What is real:
the script itself, ``ray start --head --block`` / ``ray symmetric-run``, token
authentication through the token file the script writes, the sweep's driver on the head
recording into an SQLite store, and the teardown (no Ray process survives the script, the
token file is removed). Every listener of the head stays on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from sweep.schema import TAG_TRIAL_KEY
from tests.cluster.harness import (
    LOOPBACK,
    ROOT,
    base_env,
    free_port,
    listening_addresses,
    stop_pids,
)

pytestmark = pytest.mark.slow

GRID = "smoke"


def _tail(r: subprocess.CompletedProcess, n: int = 4000) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-n:]}\n--- stderr\n{r.stderr[-n:]}"


def _other_ray_running() -> bool:
    from ray._private import services

    if hasattr(services.find_gcs_addresses, "cache_clear"):
        services.find_gcs_addresses.cache_clear()
    return bool(services.find_gcs_addresses())


FAKE_SRUN = """#!/usr/bin/env bash
# fake srun: one "node" (this machine); drop srun's options, run the command in its place
while [[ $# -gt 0 ]]; do
  case $1 in
    -w | -N | -n | --nodelist) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
# fake scontrol: only `scontrol show hostnames LIST`
[[ $1 == show && $2 == hostnames ]] && tr ',' '\\n' <<<"$3"
"""
FAKE_HOSTNAME = """#!/usr/bin/env bash
# fake hostname: the one node's address is loopback
if [[ ${1:-} == --ip-address ]]; then echo 127.0.0.1; else exec /bin/hostname "$@"; fi
"""


def _processes_mentioning(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("symmetric", [False, True], ids=["head-and-workers", "symmetric-run"])
def test_slurm_script_on_one_fake_node(tmp_path: Path, symmetric: bool) -> None:
    """cluster/slurm.sbatch end to end with stand-ins for srun/scontrol on a single node
    (two `ray start` on one machine do not stay on loopback, so one node only): head up,
    token file written and removed, the sweep on the head, Ray stopped at the end."""
    if symmetric and _other_ray_running():
        pytest.skip(
            "`ray symmetric-run` refuses to start where another Ray instance runs on the "
            "machine (another test or user); nothing to check here then"
        )
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    for name, text in (
        ("srun", FAKE_SRUN),
        ("scontrol", FAKE_SCONTROL),
        ("hostname", FAKE_HOSTNAME),
    ):
        (fakebin / name).write_text(text)
        (fakebin / name).chmod(0o755)
    ray_tmp = tempfile.mkdtemp(prefix="dsslurm-")
    submit_dir = tmp_path / "submit"
    submit_dir.mkdir()
    store = tmp_path / "slurm.db"
    env = base_env()
    env.update(
        PATH=f"{fakebin}:{env['PATH']}",
        SLURM_JOB_NODELIST="fake0",
        SLURM_JOB_ID="4242",
        SLURM_SUBMIT_DIR=str(submit_dir),
        SLURM_CPUS_ON_NODE="2",
        VENV=str(ROOT / ".venv"),
        MLFLOW_TRACKING_URI=f"sqlite:///{store}",
        RAY_PORT=str(free_port()),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # keep the head's listeners on 127.0.0.1
        USE_SYMMETRIC_RUN="1" if symmetric else "0",
        RAY_HEAD_ARGS=(
            f"--temp-dir={ray_tmp} --dashboard-port={free_port()} "
            f"--ray-client-server-port={free_port()} --dashboard-agent-listen-port={free_port()}"
        ),
    )
    try:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "cluster" / "slurm.sbatch"), GRID, "sweep.progress=false"],
            cwd=submit_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),
            threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),
        ]
        for t in readers:
            t.start()
        addrs: set[str] = set()  # every listener of the head while the script runs
        deadline = time.monotonic() + 900  # generous: a loaded machine
        while proc.poll() is None and time.monotonic() < deadline:
            addrs |= listening_addresses(_processes_mentioning(ray_tmp))
            time.sleep(0.5)
        code = proc.wait(timeout=60)
        for t in readers:
            t.join(timeout=10)
        r = subprocess.CompletedProcess(proc.args, code, "".join(out), "".join(err))
        assert r.returncode == 0, _tail(r)
        assert addrs and addrs <= LOOPBACK, addrs
        assert ("1 Ray nodes alive" in r.stdout) != symmetric, _tail(r)  # which path ran
        assert "done in" in r.stdout and "8 finished" in r.stdout, _tail(r)
        assert not list(submit_dir.glob(".ray-token-*"))  # removed at teardown
        with sqlite3.connect(store) as conn:
            rows = conn.execute(
                "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE t.key = ?",
                (TAG_TRIAL_KEY,),
            ).fetchall()
        finished = Counter(k for k, status in rows if status == "FINISHED")
        assert len(finished) == 8 and set(finished.values()) == {1}
        deadline = time.monotonic() + 120  # teardown's last processes may still be exiting
        while _processes_mentioning(ray_tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _processes_mentioning(ray_tmp), "Ray processes outlived the batch script"
    finally:
        stop_pids(_processes_mentioning(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
