"""A tracking server that dies in the middle of a sweep (issue 12).

The driver must stop within seconds — not sit in MLflow's HTTP retries for minutes — with one
sentence (exit 2) that says what was recorded and how to resume; once the server is back, the
same command finishes the sweep with every key FINISHED exactly once and none lost.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sweep.store import Store, StoreFault
from sweep.tracking import Tracker
from tests.cluster.harness import MlflowServer
from tests.reliability import helpers as h
from tests.sweep.test_tracking import _specs, quick

N = 400  # tiny trials, one per batch: the sweep writes throughout its lifetime
BOUND = 60.0  # seconds from the server's death to the driver's exit (MLflow's default: ~4 min
# of retries per request, several requests)


@pytest.mark.slow
def test_server_killed_mid_sweep_stops_the_driver_in_seconds_then_resume_finishes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.db"
    srv = MlflowServer(backend=f"sqlite:///{db}", workdir=tmp_path / "srv").start().ready()
    name = "death"
    sql = h.TRIALS_SQL.format(name=name)
    cmd = h.command(name, N, uri=srv.uri, artifacts=None, hydra=tmp_path / "hydra")
    log = tmp_path / "driver.log"
    proc = h.start(cmd, tmp_path, log)
    try:
        # some trials recorded, many still to run: then the server dies (SIGTERM, then SIGKILL)
        assert h.wait_for(lambda: len(h.finished_per_key(h.sqlite_rows(db, sql))) >= 20, proc)
        assert proc.poll() is None, "the sweep ended before the server could be stopped"
        srv.stop()
        died = time.monotonic()
        try:
            rc = proc.wait(timeout=BOUND + 60)
        except subprocess.TimeoutExpired:
            h.kill9(proc)
            pytest.fail(f"the driver was still running {BOUND + 60:.0f} s after the server died")
        waited = time.monotonic() - died
    finally:
        if proc.poll() is None:
            h.kill9(proc)
        srv.stop()
    out = log.read_text()
    print(f"driver exited {rc} {waited:.1f} s after the server died; last lines:\n{out[-600:]}")
    assert rc == 2, out[-3000:]
    assert waited < BOUND
    err = [ln for ln in out.splitlines() if ln.startswith("store error:")]
    assert len(err) == 1, out[-3000:]
    assert srv.uri in err[0] and "run the same command to resume" in err[0]
    assert "Traceback" not in out
    recorded = len(h.finished_per_key(h.sqlite_rows(db, sql)))
    assert 20 <= recorded < N

    # the server comes back on the same store and port: the same command finishes the sweep
    back = MlflowServer(backend=f"sqlite:///{db}", workdir=tmp_path / "srv", port=srv.port)
    back.start().ready()
    try:
        proc2, _ = h.run(cmd, tmp_path, timeout=900)
    finally:
        back.stop()
    assert proc2.returncode == 0, proc2.stdout[-3000:] + proc2.stderr[-3000:]
    assert f"{recorded} already recorded" in proc2.stdout
    h.assert_exactly_once(h.sqlite_rows(db, sql), h.expected_keys(name, N))


def test_a_store_that_fails_mid_sweep_stops_recording_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    """The first failed write stops the Tracker: later results are refused (StoreFault, which
    stops the sweep), no further request is made, and ``finish`` raises one sentence with what
    was recorded; the next Tracker resumes from the runs that are FINISHED."""
    store = Store(f"sqlite:///{tmp_path / 'mlruns.db'}", (tmp_path / "art").as_uri())
    specs = _specs(8, "fault")
    results = quick(specs)
    t = Tracker(store, "fault", settle=0.0)
    t.start(params={})
    t.claim(specs[:4])
    for s, r in zip(specs[:4], results[:4], strict=True):
        t.record(s, r)
    while t.pending() or t.stats.runs < 4:  # the first four are written
        time.sleep(0.01)
    real = t.writer.ops.finish

    def broken(rows):
        raise OSError("disk I/O error")

    t.writer.ops.finish = broken
    t.claim(specs[4:])
    t.record(specs[4], results[4])
    deadline = time.monotonic() + 300
    while t.fault is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert t.fault is not None and "disk i/o error" in t.fault
    calls = t.stats.calls
    with pytest.raises(StoreFault):
        t.record(specs[5], results[5])
    with pytest.raises(StoreFault):
        t.claim(specs[6:])
    with pytest.raises(StoreFault) as err:
        t.finish("FAILED")
    assert t.stats.calls == calls  # nothing more was sent to the failed store
    text = str(err.value)
    assert "4 trial(s) were recorded, 2 computed result(s) were not" in text
    assert "run the same command to resume" in text and "\n" not in text
    t.writer.ops.finish = real
    again = Tracker(store, "fault", settle=0.0)
    assert again.finished_keys() == {s.key for s in specs[:4]}
    assert again.close_stale() >= 1  # the failed driver's claims and parent, left RUNNING
