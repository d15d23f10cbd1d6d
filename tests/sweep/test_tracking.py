"""Recording and resume against a real MLflow SQLite store in a temporary directory, with the
in-process runner: failed trials, stale RUNNING runs, live drivers, forced re-runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from sweep.config import TrackingConfig, load
from sweep.grid import expand
from sweep.runner import run_sweep
from sweep.schema import (
    ARTIFACT_TRACEBACK,
    TAG_DRIVER,
    TAG_KIND,
    TAG_STATUS,
    TAG_TRIAL_KEY,
    TrialResult,
    TrialSpec,
)
from sweep.tracking import Tracker, resolve_store, ui_command
from sweep.writers import SqlRunWriter

pytestmark = pytest.mark.slow


def boom(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """A batch function whose trials all raise (an engine bug, say)."""
    raise RuntimeError(f"engine exploded on {len(specs)} trial(s) on {device}")


def quick(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """Results computed from the spec alone (the recording path, without training)."""
    return [
        TrialResult(
            key=s.key,
            status="finished",
            sgd_objective=1.0 + s.seed,
            exact_objective=1.0,
            certificate=0.5,
            curve_steps=[0, 10, 20],
            curves={"objective": [3.0, 2.0, 1.0 + s.seed]},
            device=device,
        )
        for s in specs
    ]


def _sweep(tmp_path: Path, **over):
    cfg = {
        "grid": {"name": "track"},
        "seed": [0, 1, 2],
        "runner": {"kind": "inline", "batch_size": 2, "device": "cpu"},
        "tracking": {
            "uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            "artifacts": str(tmp_path / "art"),
        },
        "sweep": {"progress": False, **over},
    }
    sweep = load(cfg)
    return sweep, expand(sweep)


def _tracker(tmp_path: Path) -> Tracker:
    sweep, _ = _sweep(tmp_path)
    return Tracker(resolve_store(sweep.tracking), "track")


def test_store_defaults_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = resolve_store(TrackingConfig(), cwd=tmp_path)
    assert store.uri == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert store.artifacts == (tmp_path / "mlartifacts").as_uri()
    assert "--backend-store-uri sqlite:///" in ui_command(store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    server = resolve_store(TrackingConfig(), cwd=tmp_path)
    assert server.uri == "http://127.0.0.1:5000" and server.artifacts is None
    explicit = resolve_store(TrackingConfig(uri="sqlite:///rel.db"), cwd=tmp_path)
    assert explicit.uri == f"sqlite:///{tmp_path / 'rel.db'}"


def test_failed_trials_keep_their_traceback_and_are_retried(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    report = run_sweep(sweep, specs, batch_fn=boom, out=open(os.devnull, "w"))
    assert report.count("failed") == 3
    tracker = _tracker(tmp_path)
    runs = tracker.trial_runs()
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FAILED"}
    assert {r.data.tags[TAG_STATUS] for r in runs} == {"failed"}
    text = Path(
        tracker.client.download_artifacts(runs[0].info.run_id, ARTIFACT_TRACEBACK, str(tmp_path))
    ).read_text()
    assert "RuntimeError: engine exploded" in text and "Traceback" in text
    assert tracker.finished_keys() == set()

    report = run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 0 and report.count("finished") == 3
    assert tracker.finished_keys() == {s.key for s in specs}


def test_stale_running_runs_are_killed_and_redone_but_live_drivers_are_left(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    run_sweep(sweep, specs[:1], batch_fn=quick, out=open(os.devnull, "w"))
    tracker = _tracker(tmp_path)
    client, exp = tracker.client, tracker.experiment_id
    # a driver that died (pid 2**22 + 7 is beyond pid_max's default) left a trial RUNNING ...
    dead = client.create_run(
        exp, tags={TAG_KIND: "sweep", TAG_DRIVER: f"{socket.gethostname()}:4194311"}
    )
    stale = client.create_run(
        exp,
        tags={
            TAG_KIND: "trial",
            TAG_TRIAL_KEY: specs[1].key,
            "mlflow.parentRunId": dead.info.run_id,
        },
    )
    # ... while a live driver (another process on this host) owns another RUNNING trial
    other = subprocess.Popen(["sleep", "120"])
    try:
        live = client.create_run(
            exp, tags={TAG_KIND: "sweep", TAG_DRIVER: f"{socket.gethostname()}:{other.pid}"}
        )
        busy = client.create_run(
            exp,
            tags={
                TAG_KIND: "trial",
                TAG_TRIAL_KEY: "other",
                "mlflow.parentRunId": live.info.run_id,
            },
        )
        report = run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    finally:
        other.kill()
        other.wait()
    assert report.killed_stale == 2 and report.skipped == 1
    status = {r.info.run_id: r.info.status for r in tracker.trial_runs()}
    assert status[stale.info.run_id] == "KILLED" and status[busy.info.run_id] == "RUNNING"
    finished = [
        r.data.tags[TAG_TRIAL_KEY] for r in tracker.trial_runs() if r.info.status == "FINISHED"
    ]
    assert sorted(finished) == sorted(s.key for s in specs)  # redone once, nothing doubled
    assert client.get_run(dead.info.run_id).info.status == "KILLED"


def test_rerun_forces_every_trial_and_growing_the_grid_runs_only_new_points(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    grown, more = _sweep(tmp_path)
    more = expand(load({**_raw(tmp_path), "seed": [0, 1, 2, 3]}))
    report = run_sweep(grown, more, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 3 and [s.seed for s, _ in report.results] == [3]
    forced, _ = _sweep(tmp_path, rerun=True)
    report = run_sweep(forced, specs, batch_fn=quick, out=open(os.devnull, "w"))
    assert report.skipped == 0 and len(report.results) == 3
    assert len(_tracker(tmp_path).trial_runs()) == 3 + 1 + 3


def _raw(tmp_path: Path) -> dict:
    return {
        "grid": {"name": "track"},
        "runner": {"kind": "inline", "batch_size": 2, "device": "cpu"},
        "tracking": {
            "uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            "artifacts": str(tmp_path / "art"),
        },
        "sweep": {"progress": False},
    }


# ---------------------------------------------------------------------------- claims (issue 12 #3)


def _specs(n: int, name: str = "claims") -> list[TrialSpec]:
    sweep = load({"grid": {"name": name}, "seed": list(range(n)), "runner": {"kind": "inline"}})
    return expand(sweep)


def _store(tmp_path: Path):
    from sweep.store import Store

    return Store(f"sqlite:///{tmp_path / 'mlruns.db'}", (tmp_path / "art").as_uri())


def _finished_per_key(tracker: Tracker) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in tracker.trial_runs():
        if r.info.status == "FINISHED":
            key = r.data.tags[TAG_TRIAL_KEY]
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_two_drivers_claiming_the_same_keys_at_once_record_each_exactly_once(
    tmp_path: Path,
) -> None:
    """Both claim every key before either polls (the worst race): at record time the later
    claim of each key sees the earlier, live one and is withdrawn; the earlier records."""
    specs = _specs(6)
    a = Tracker(_store(tmp_path), "claims", settle=0.2)
    b = Tracker(_store(tmp_path), "claims", settle=0.2)
    a.start(params={})
    b.start(params={})
    a.view.poll()  # both see nothing of the other yet: every key is free for both
    b.view.poll()
    assert [s.key for s in a.claim(specs)] == [s.key for s in specs]
    assert [s.key for s in b.claim(specs)] == [s.key for s in specs]
    results = quick(specs)
    for spec, res in zip(specs, results, strict=True):
        b.record(spec, res)
        a.record(spec, res)
    b.finish("FINISHED")
    a.finish("FINISHED")
    assert a.stats.runs + b.stats.runs == len(specs)
    assert a.stats.dropped + b.stats.dropped == len(specs)
    assert _finished_per_key(a) == {s.key: 1 for s in specs}
    # the losers' runs are gone from the active view (withdrawn: KILLED, then deleted)
    assert len(a.trial_runs()) == len(specs)


def test_a_later_driver_skips_keys_claimed_by_a_live_one_and_takes_over_dead_ones(
    tmp_path: Path,
) -> None:
    specs = _specs(4)
    owner = Tracker(_store(tmp_path), "claims", settle=0.2)
    owner.start(params={})
    assert len(owner.claim(specs[:2])) == 2
    # a driver on another machine: alive while its heartbeat is fresh, then stale
    remote = owner.client.create_run(
        owner.experiment_id,
        tags={
            TAG_KIND: "sweep",
            TAG_DRIVER: "elsewhere:123",
            "sweep_id": "remote0000",
            "heartbeat": f"{time.time():.3f}",
        },
    )
    for spec in specs[2:]:
        owner.client.create_run(
            owner.experiment_id,
            tags={
                TAG_KIND: "trial",
                TAG_TRIAL_KEY: spec.key,
                "sweep_id": "remote0000",
                "mlflow.parentRunId": remote.info.run_id,
            },
        )
    later = Tracker(_store(tmp_path), "claims", settle=0.2, stale_after=2.0)
    later.start(params={})
    owner.client.set_tag(remote.info.run_id, "heartbeat", f"{time.time():.3f}")
    assert later.claim(specs) == []  # two of a live local driver, two of a live remote one
    assert later.stats.elsewhere == 4
    time.sleep(2.2)  # the remote driver's heartbeat is now older than stale_after
    later.view.last_poll = None  # forget the view: read every RUNNING claim again
    won = later.claim(specs)
    assert [s.key for s in won] == [s.key for s in specs[2:]]
    for spec, res in zip(won, quick(won), strict=True):
        later.record(spec, res)
    later.finish("FINISHED")
    assert later.stats.taken_over == 2  # the dead driver's claims were marked KILLED
    for spec, res in zip(specs[:2], quick(specs[:2]), strict=True):
        owner.record(spec, res)
    owner.finish("FINISHED")
    assert _finished_per_key(owner) == {s.key: 1 for s in specs}
    # the stale-driver sweep: the remote parent is KILLED by the next start-up's close_stale
    assert Tracker(_store(tmp_path), "claims", stale_after=2.0).close_stale() == 1


_DRIVER = """
import sys, time
from pathlib import Path
from sweep.config import load
from sweep.grid import batches, expand
from sweep.store import Store
from sweep.tracking import Tracker
from tests.sweep.test_tracking import slow_quick
tmp, n, me, drivers = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
specs = expand(load({"grid": {"name": "race"}, "seed": list(range(n)), "runner": {"kind": "inline"}}))
tracker = Tracker(Store(f"sqlite:///{tmp / 'mlruns.db'}", (tmp / "art").as_uri()), "race")
tracker.close_stale()
done = tracker.finished_keys()
tracker.start(params={})
(tmp / f"ready-{me}").touch()  # start together: wait for every driver to be this far
while len(list(tmp.glob("ready-*"))) < drivers:
    time.sleep(0.01)
computed = 0
for batch in tracker.claimed(batches([s for s in specs if s.key not in done], 4)):
    for spec, res in zip(batch, slow_quick(batch), strict=True):
        tracker.record(spec, res)
        computed += 1
tracker.finish("FINISHED")
print("computed", computed, "recorded", tracker.stats.runs)
"""


def slow_quick(specs: list[TrialSpec], *, device: str = "cpu") -> list[TrialResult]:
    """``quick`` at 50 ms a trial, so that concurrent drivers overlap."""
    time.sleep(0.05 * len(specs))
    return quick(specs, device=device)


@pytest.mark.parametrize("drivers", [2, 4])
def test_concurrent_drivers_on_sqlite_record_each_key_exactly_once(
    tmp_path: Path, drivers: int
) -> None:
    n = 64
    from sweep.store import open_store

    open_store(_store(tmp_path), "race")  # the store exists (its creation is sweep.store's)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(tmp_path), str(n), str(i), str(drivers)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(drivers)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    computed = [int(o.split("computed ")[1].split()[0]) for o in outs]
    recorded = [int(o.split("recorded ")[1].split()[0]) for o in outs]
    print(f"{drivers} drivers: computed {computed}, recorded {recorded}")
    tracker = Tracker(_store(tmp_path), "race")
    keys = {s.key for s in _specs(n, "race")}
    assert _finished_per_key(tracker) == dict.fromkeys(keys, 1)  # once each, none lost
    assert sum(recorded) == n
    assert tracker.close_stale() == 0  # no claim left RUNNING


def test_runs_written_in_one_sql_transaction_read_back_as_mlflow_writes_them(
    tmp_path: Path,
) -> None:
    """The SQL path (SQLite) and MLflow's store API give the same run: params, metrics and
    their latest values, curve histories, tags, status, artifact location."""

    spec = _specs(1)[0]
    res = quick([spec])[0]
    runs = {}
    for mode in ("sql", "api"):
        (tmp_path / mode).mkdir()
        t = Tracker(_store(tmp_path / mode), "claims", settle=0.0, fast=mode == "sql")
        assert isinstance(t.writer, SqlRunWriter) == (mode == "sql")
        t.start(params={})
        t.claim([spec])
        t.record(spec, res)
        t.finish("FINISHED")
        (run,) = t.trial_runs()
        history = t.client.get_metric_history(run.info.run_id, "curve.objective")
        runs[mode] = (t.client.get_run(run.info.run_id), [(m.step, m.value) for m in history])
    (sql, sql_hist), (api, api_hist) = runs["sql"], runs["api"]
    assert sql.data.params == api.data.params
    assert sql.data.metrics == api.data.metrics and sql_hist == api_hist
    volatile = {"sweep_id", "mlflow.parentRunId", "mlflow.user", "git_commit"}  # HEAD may move
    strip = lambda tags: {k: v for k, v in tags.items() if k not in volatile}  # noqa: E731
    assert strip(sql.data.tags) == strip(api.data.tags)
    assert (sql.info.status, sql.info.run_name) == (api.info.status, api.info.run_name)
    assert sql.info.artifact_uri.endswith(f"{sql.info.run_id}/artifacts")
    assert Path(url2pathname(urlparse(sql.info.artifact_uri).path), "trial.json").is_file()


def test_finished_keys_by_sql_equal_the_search_api(tmp_path: Path) -> None:
    sweep, specs = _sweep(tmp_path)
    run_sweep(sweep, specs[:2], batch_fn=quick, out=open(os.devnull, "w"))
    run_sweep(sweep, specs[2:], batch_fn=boom, out=open(os.devnull, "w"))
    tracker = _tracker(tmp_path)
    done = [r for r in tracker.trial_runs() if r.info.status == "FINISHED"]
    tracker.client.delete_run(done[0].info.run_id)  # deleted: no longer finished
    by_api = {
        r.data.tags[TAG_TRIAL_KEY] for r in tracker.trial_runs() if r.info.status == "FINISHED"
    }
    assert len(by_api) == 1
    assert tracker.finished_keys() == by_api


def test_a_rerun_with_nothing_to_run_writes_nothing(tmp_path: Path) -> None:
    """Every trial FINISHED: the re-run reads the keys with sqlite3 and writes no parent run;
    a FAILED trial, a grown grid or ``rerun`` take the full path (a new parent run)."""
    from sweep.store import SWEEP_FILTER

    def parents() -> int:
        return len(_tracker(tmp_path).trial_runs(SWEEP_FILTER))

    sweep, specs = _sweep(tmp_path)
    devnull = open(os.devnull, "w")
    run_sweep(sweep, specs[:2], batch_fn=quick, out=devnull)
    run_sweep(sweep, specs[2:], batch_fn=boom, out=devnull)  # the third trial FAILED
    assert parents() == 2
    again = run_sweep(sweep, specs[:2], batch_fn=quick, out=devnull)
    assert (again.skipped, again.results, parents()) == (2, [], 2)  # nothing written
    retried = run_sweep(sweep, specs, batch_fn=quick, out=devnull)  # the FAILED one runs again
    assert [s.key for s, _ in retried.results] == [specs[2].key] and parents() == 3
    assert run_sweep(sweep, specs, batch_fn=quick, out=devnull).skipped == 3 and parents() == 3
    forced, _ = _sweep(tmp_path, rerun=True)
    assert len(run_sweep(forced, specs, batch_fn=quick, out=devnull).results) == 3
    assert parents() == 4


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_an_interrupt_landing_inside_a_claim_leaves_no_claim_running(
    tmp_path: Path, sig: str
) -> None:
    """CI, stop 25: SIGTERM landed after the store had created a batch's RUNNING child runs
    but before the tracker registered them, so ``finish`` never withdrew that claim. The
    signal is sent here from inside the writer's claim, after its insert: the interrupt is
    raised once the claim is registered, and ``finish`` withdraws it (without the hold the
    claim stays RUNNING and this fails)."""
    import signal

    from sweep.interrupts import Terminated, handle_sigterm

    signum = getattr(signal, sig)
    before = signal.getsignal(signal.SIGTERM)
    handle_sigterm()
    try:
        specs = _specs(4)
        tracker = Tracker(_store(tmp_path), "claims", settle=0.2)
        tracker.start(params={})
        assert len(tracker.claim(specs[:2])) == 2
        real = tracker.writer.claim

        def claim_then_signal(rows, within):
            claims = real(rows, within)
            signal.raise_signal(signum)  # to this (the main) thread, at once
            return claims

        tracker.writer.claim = claim_then_signal
        with pytest.raises(Terminated if sig == "SIGTERM" else KeyboardInterrupt):
            tracker.claim(specs[2:])
        tracker.writer.claim = real  # the one signal was sent
        tracker.record(specs[0], quick(specs[:1])[0])
        tracker.finish("KILLED")
        runs = tracker.trial_runs()
        assert {r.data.tags[TAG_TRIAL_KEY]: r.info.status for r in runs} == {
            specs[0].key: "FINISHED"
        }
    finally:
        signal.signal(signal.SIGTERM, before)
