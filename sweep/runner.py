"""Run a sweep: resume from MLflow, run the pending trials in batches, record, summarise.

Data flow (DESIGN.md): ``expand`` → drop keys with a FINISHED run (unless ``sweep.rerun``)
→ ``batches`` of equal shape → one call of the batch function per batch (default
``sweep.trial.run_batch``), as Ray tasks (``runner.kind=local``) or in this process
(``runner.kind=inline``, no Ray import) → each result recorded by the driver's MLflow
writer thread as it arrives → summary.

Ray: ``ray.init(address=runner.address or $RAY_ADDRESS)``; without an address a new
local instance with ``runner.num_cpus`` CPUs whose listeners stay on 127.0.0.1. Each task
reserves ``cpus_per_task`` / ``gpus_per_task`` (fractions allowed) and trains on CUDA when
it got a GPU; its torch and BLAS thread pools hold :func:`task_threads` (= its whole CPUs)
threads, so tasks never oversubscribe a node's cores. A task whose worker process dies is re-run up to ``runner.max_retries``
times; if it still fails, or the batch function itself raises, its trials are recorded as
``failed`` with the error as traceback, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sweep.config import EXPECT_REACH_PARAM, ConfigError, RunnerConfig, Sweep
from sweep.grid import batches, varying_fields
from sweep.interrupts import Deferred, Terminated, _on_sigterm, handle_sigterm
from sweep.progress import Progress, parent_summary, summary_table
from sweep.schema import TrialResult, TrialSpec

__all__ = [
    "AddressError",
    "BatchFn",
    "RunStats",
    "SweepReport",
    "Terminated",
    "check_address",
    "cleanup_local_instances",
    "handle_sigterm",
    "run_batches",
    "run_sweep",
    "limit_threads",
    "start_ray",
    "stop_ray",
    "task_threads",
]

BatchFn = Callable[..., list[TrialResult]]  # (specs, *, device) -> results, one per spec


@dataclass
class RunStats:
    """What the runner measured: tasks run and seconds spent inside the batch function."""

    tasks: int = 0
    compute_seconds: float = 0.0
    nodes: set[str] = field(default_factory=set)


@dataclass
class SweepReport:
    """Outcome of :func:`run_sweep`."""

    total: int  # trials in the grid
    skipped: int  # trials with a FINISHED run already (resume)
    results: list[tuple[TrialSpec, TrialResult]]  # this invocation's trials, in arrival order
    killed_stale: int  # RUNNING runs of dead drivers marked KILLED
    wall_seconds: float
    stats: RunStats
    mlflow_seconds: float
    mlflow_runs: int
    store_uri: str
    ui: str

    def count(self, status: str) -> int:
        return sum(1 for _, r in self.results if r.status == status)


def _failed(spec: TrialSpec, error: str, device: str = "cpu") -> TrialResult:
    return TrialResult(key=spec.key, status="failed", error=error, device=device)


def _call(
    fn: BatchFn | None, specs: list[TrialSpec], device: str
) -> tuple[list[TrialResult], float]:
    """Run one batch; any exception of the batch function becomes failed trials. Each result
    carries the batch's start and end (unix time, ``started_at``/``ended_at``): the trials of
    a batch are trained together."""
    t0 = time.perf_counter()
    started = time.time()
    try:
        if fn is None:
            from sweep.trial import run_batch as fn
        results = list(fn(specs, device=device))
        if [r.key for r in results] != [s.key for s in specs]:
            raise RuntimeError(
                f"the batch function returned {len(results)} results whose keys do not match the "
                f"{len(specs)} trials it was given"
            )
    except Exception:
        tb = traceback.format_exc()
        results = [_failed(s, tb, device) for s in specs]
    ended = time.time()
    for r in results:
        r.started_at, r.ended_at = started, ended
    return results, time.perf_counter() - t0


def task_threads(cpus: float) -> int:
    """Compute threads of a task that reserved ``cpus`` CPUs: ``max(1, ⌊cpus⌋)``.

    Ray runs as many tasks at once as a node has CPUs to reserve, so with threads =
    reserved CPUs the node's cores are used once each: 16 tasks × 1 thread on a 16-core
    node with ``cpus_per_task=1``, 4 × 4 with ``cpus_per_task=4``; a fraction of a CPU gets
    one thread. (Unlimited, each task would start one thread per core of the node: 16 × 16.)
    """
    return max(1, int(cpus))


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Within the block: torch's intra-op pool and the BLAS/OpenMP pools numpy and scipy use
    (threadpoolctl) hold ``threads`` threads; the previous sizes are restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn brings it
            yield
        else:
            with threadpool_limits(limits=threads):
                yield
    finally:
        torch.set_num_threads(before)


def _ray_batch(
    specs: list[TrialSpec], fn: BatchFn | None, device: str, threads: int = 1
) -> tuple[list[TrialResult], float, str]:
    """Body of the Ray task: choose the device, run the batch with ``threads`` compute
    threads (:func:`task_threads` of its CPU reservation), stamp the node id."""
    import ray

    if device == "auto":
        device = "cuda" if ray.get_gpu_ids() else "cpu"
    node = ray.get_runtime_context().get_node_id()
    with limit_threads(threads):
        results, seconds = _call(fn, specs, device)
    for r in results:
        r.node_id = node
    return results, seconds, node


def _inline_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class AddressError(ConfigError):
    """``runner.address`` (or ``$RAY_ADDRESS``) names no reachable Ray cluster."""


ADDRESS_TIMEOUT = 5.0  # seconds a TCP connection to runner.address may take
_ADDRESS = re.compile(
    r"^(?:ray://)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]]+)):(?P<port>\d{1,5})/?$"
)


def _address(runner: RunnerConfig) -> tuple[str | None, str]:
    """The Ray address to join (None: a new local instance) and where it came from."""
    if runner.address:
        return runner.address, "runner.address"
    env = os.environ.get("RAY_ADDRESS") or None
    return env, "$RAY_ADDRESS"


def check_address(runner: RunnerConfig) -> None:
    """One TCP connection to the cluster's address, within :data:`ADDRESS_TIMEOUT` seconds:
    :class:`AddressError` (one sentence) when nothing listens there — before any run is opened,
    instead of Ray's own minutes of retries. ``auto`` and ``local`` are left to Ray."""
    address, source = _address(runner)
    if address is None or address in ("auto", "local"):
        return
    m = _ADDRESS.match(address.strip())
    if m is None:
        raise AddressError(
            f"{source} must be auto, HOST:PORT or ray://HOST:PORT (got {address!r})."
        )
    host, port = m.group("v6") or m.group("host"), int(m.group("port"))
    try:
        socket.create_connection((host, port), timeout=ADDRESS_TIMEOUT).close()
    except OSError as exc:
        why = (
            f"no answer within {ADDRESS_TIMEOUT:g} s"
            if isinstance(exc, TimeoutError)
            else (exc.strerror or str(exc)).lower()
        )
        raise AddressError(
            f"{source}={address} is unreachable ({why}); "
            f"start the Ray cluster or fix the address (nothing was run or recorded)."
        ) from None


def start_ray(runner: RunnerConfig) -> bool:
    """Connect to (or start) Ray; returns whether this call started it (so we shut it down).

    A new local instance is recorded (:func:`cleanup_local_instances`) so that, if this
    driver is killed, the next driver removes the Ray processes it left behind. Failing to
    join a cluster raises :class:`AddressError` (one sentence).
    """
    address, source = _address(runner)
    if address is None:
        # a new single-node instance: keep every listener on 127.0.0.1 (DESIGN.md, "Ray on loopback")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return False
    ours = signal.getsignal(signal.SIGTERM) is _on_sigterm  # ray.init installs its own
    try:
        _init_ray(runner, address, source)
    except SystemExit as exc:  # Ray's handler (sys.exit(SIGTERM)) during ray.init
        if ours and exc.code == signal.SIGTERM:
            raise Terminated from None
        raise
    finally:
        if ours:
            handle_sigterm()
    return True


def _init_ray(runner: RunnerConfig, address: str | None, source: str) -> None:
    import ray

    if address is None:
        cleanup_local_instances()
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] not in (
            "0",
            "false",
            "False",
        )
        ctx = ray.init(
            address="local",  # a new instance, even when another Ray runs on this machine
            num_cpus=runner.num_cpus,
            num_gpus=runner.num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=True,
        )
        _record_local_instance(ctx.address_info.get("session_dir"))
    else:
        check_address(runner)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            raise AddressError(
                f"{source}={address}: Ray could not join the cluster ({first}); start it or fix "
                f"the address (nothing was run or recorded)."
            ) from None


def stop_ray(started: bool) -> None:
    """Shut Ray down if :func:`start_ray` started it, and forget its local-instance record."""
    if not started:
        return
    import ray

    ray.shutdown()
    if _RECORD is not None:
        _RECORD.unlink(missing_ok=True)


# ---------------------------------------------------------------- Ray processes of killed drivers

# A local Ray instance (gcs_server, raylet, agents, workers) outlives a driver killed with
# SIGKILL. Each driver that starts one writes a record here: its own pid and start time, and
# the pid + start time of every process whose command line names the instance's session
# directory (the instance's roots; agents and workers are their descendants). A later driver
# kills the processes of records whose driver is gone — only those: a Ray cluster started by
# anyone else has no record, and a pid reused since is recognised by its start time.
RECORDS = Path(
    os.environ.get("DUALSWEEP_RAY_RECORDS")
    or Path(tempfile.gettempdir()) / f"dualsweep-ray-{os.getuid()}"
)
_RECORD: Path | None = None


def _start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot, /proc/PID/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    out = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry.name)] = (ppid, cmd)
    return out


def _record_local_instance(session_dir: str | None) -> None:
    global _RECORD
    if not session_dir or not Path("/proc").is_dir():
        return
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    # the processes naming the session (gcs_server, raylet, monitors) and their descendants
    # (the dashboard / runtime-env agents and workers, renamed "ray::…": they outlive a kill)
    stack = [pid for pid, (_, cmd) in procs.items() if session_dir in cmd and pid != os.getpid()]
    roots: dict[int, int | None] = {}
    while stack:
        pid = stack.pop()
        if pid not in roots:
            roots[pid] = _start_time(pid)
            stack.extend(children.get(pid, []))
    record = {
        "driver": os.getpid(),
        "driver_start": _start_time(os.getpid()),
        "session_dir": session_dir,
        "roots": {str(pid): t for pid, t in roots.items() if t is not None},
    }
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{os.getpid()}-{record['driver_start']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    _RECORD = path


def cleanup_local_instances(*, grace: float = 2.0) -> int:
    """Kill the Ray processes that local instances of killed drivers of ours left behind
    (see :data:`RECORDS`); returns how many processes were signalled."""
    if not RECORDS.is_dir():
        return 0
    procs: dict[int, tuple[int, str]] | None = None
    victims: list[tuple[int, int | None]] = []
    for path in sorted(RECORDS.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        driver = int(record.get("driver", 0))
        if driver and _start_time(driver) == record.get("driver_start"):
            continue  # its driver still runs: not ours to touch
        if procs is None:
            procs = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        for pid_text, started in record.get("roots", {}).items():
            root = int(pid_text)
            if _start_time(root) != started:
                continue  # gone, or the pid now belongs to another process
            stack = [root]
            while stack:
                pid = stack.pop()
                victims.append((pid, _start_time(pid)))
                stack.extend(children.get(pid, []))
        path.unlink(missing_ok=True)
    for pid, _ in victims:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_start_time(p) == t for p, t in victims):
        time.sleep(0.05)
    for pid, started in victims:
        if _start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    if victims:
        print(
            f"removed {len(victims)} Ray process(es) left by a killed driver's local instance",
            file=sys.stderr,
        )
    return len(victims)


def run_batches(
    groups: Sequence[list[TrialSpec]],
    runner: RunnerConfig,
    *,
    on_result: Callable[[TrialSpec, TrialResult], None],
    batch_fn: BatchFn | None = None,
) -> RunStats:
    """Run every batch (inline or as Ray tasks) and call ``on_result`` for each trial as its
    batch completes. ``batch_fn`` defaults to ``sweep.trial.run_batch`` (imported where it
    runs); a non-default one must be importable by Ray workers (a module-level function)."""
    stats = RunStats()
    if runner.kind == "inline":
        device = _inline_device(runner.device)
        for batch in groups:
            results, seconds = _call(batch_fn, batch, device)
            stats.tasks += 1
            stats.compute_seconds += seconds
            for spec, res in zip(batch, results, strict=True):
                on_result(spec, res)
        return stats

    started = start_ray(runner)
    import ray

    try:
        task = ray.remote(
            num_cpus=runner.cpus_per_task,
            num_gpus=runner.gpus_per_task,
            max_retries=runner.max_retries,
            retry_exceptions=False,
        )(_ray_batch)
        device = (
            "cuda" if runner.device == "cuda" else ("cpu" if runner.device == "cpu" else "auto")
        )
        threads = task_threads(runner.cpus_per_task)
        refs = {task.remote(list(b), batch_fn, device, threads): list(b) for b in groups}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                batch = refs.pop(ref)
                try:
                    results, seconds, node = ray.get(ref)
                    stats.compute_seconds += seconds
                    stats.nodes.add(node)
                except Exception as exc:  # the worker died more than max_retries times
                    err = f"Ray task failed after {runner.max_retries} retries: {type(exc).__name__}: {exc}"
                    results = [_failed(s, err) for s in batch]
                stats.tasks += 1
                for spec, res in zip(batch, results, strict=True):
                    on_result(spec, res)
    finally:
        stop_ray(started)
    return stats


def _nothing_to_run(sweep: Sweep, specs: Sequence[TrialSpec], store, t0: float, out: TextIO):
    """The report of a sweep whose every trial has a FINISHED run, else None."""
    from sweep.store import recorded_keys, ui_command

    done = recorded_keys(store, sweep.grid)
    if done is None or not specs or any(s.key not in done for s in specs):
        return None
    print(
        f"sweep '{sweep.grid}': {len(specs)} trials, {len(specs)} already recorded, 0 to run; "
        f"store {store.uri}",
        file=out,
    )
    wall = time.perf_counter() - t0
    print(
        f"done in {wall:.1f} s: 0 finished, 0 diverged, 0 failed, {len(specs)} skipped "
        "(already recorded).",
        file=out,
    )
    print(f"results: MLflow experiment '{sweep.grid}' in {store.uri}", file=out)
    print(f"open the UI: {ui_command(store)}", file=out, flush=True)
    return SweepReport(
        total=len(specs),
        skipped=len(specs),
        results=[],
        killed_stale=0,
        wall_seconds=wall,
        stats=RunStats(),
        mlflow_seconds=0.0,
        mlflow_runs=0,
        store_uri=store.uri,
        ui=ui_command(store),
    )


def _start(tracker, sweep: Sweep, specs, todo, axes, config_text: str) -> None:
    """Open the parent run of this invocation (its params: what the sweep is about to do)."""
    tracker.start(
        params={
            "grid": sweep.grid,
            "trials": len(specs),
            "pending": len(todo),
            "skipped": len(specs) - len(todo),
            "axes": ",".join(axes),
            "runner.kind": sweep.runner.kind,
            "runner.batch_size": sweep.runner.batch_size,
            "runner.address": sweep.runner.address or os.environ.get("RAY_ADDRESS") or "local",
            "rerun": sweep.options.rerun,
            "command": " ".join(sys.argv),
            **({EXPECT_REACH_PARAM: sweep.expect_reach} if sweep.expect_reach is not None else {}),
        },
        config_text=config_text,
        rerun=sweep.options.rerun,
        axes=axes,
    )


def run_sweep(
    sweep: Sweep,
    specs: Sequence[TrialSpec],
    *,
    batch_fn: BatchFn | None = None,
    config_text: str = "",
    out: TextIO | None = None,
) -> SweepReport:
    """Resume, run and record ``specs`` (the expansion of ``sweep``); print the summary to
    ``out`` (default stdout). KeyboardInterrupt marks the parent run KILLED and propagates;
    any other driver error marks it FAILED and propagates."""
    from sweep.tracking import Tracker, resolve_store, ui_command

    out = out or sys.stdout
    t0 = time.perf_counter()
    store = resolve_store(sweep.tracking)
    if not sweep.options.rerun:
        # every trial recorded already (a SQLite store read with sqlite3 alone): nothing to
        # run, nothing written — no MLflow import, no parent run (a 10^5-trial re-run: seconds)
        report = _nothing_to_run(sweep, specs, store, t0, out)
        if report is not None:
            return report
    tracker = Tracker(store, sweep.grid)  # store + experiment created once, before any trial
    killed = tracker.close_stale()
    done = set() if sweep.options.rerun else tracker.finished_keys()
    todo = [s for s in specs if s.key not in done]
    axes = varying_fields(list(specs))
    # join (or start) Ray before the parent run opens: an unreachable runner.address is one
    # sentence (AddressError) within seconds, with no run left RUNNING
    ray_started = start_ray(sweep.runner) if todo and sweep.runner.kind == "local" else False
    progress = Progress(len(todo), enabled=sweep.options.progress, desc=sweep.grid)
    pairs: list[tuple[TrialSpec, TrialResult]] = []

    def on_result(spec: TrialSpec, res: TrialResult) -> None:
        pairs.append((spec, res))
        tracker.record(spec, res)
        progress.update(res)

    status = "FAILED"
    stats = RunStats()
    try:  # from the parent run's creation on: Ctrl-C / SIGTERM / an error close it
        _start(tracker, sweep, specs, todo, axes, config_text)
        print(
            f"sweep '{sweep.grid}': {len(specs)} trials, {len(specs) - len(todo)} already "
            f"recorded, {len(todo)} to run ({sweep.runner.kind}); store {store.uri}"
            + (f"; {killed} stale RUNNING run(s) marked KILLED" if killed else ""),
            file=out,
            flush=True,
        )
        if todo:
            stats = run_batches(
                # each batch is claimed (a RUNNING child run per trial) as it is dispatched, so
                # several drivers on one store run each key once (Tracker.claim)
                tracker.claimed(batches(todo, sweep.runner.batch_size)),
                sweep.runner,
                on_result=on_result,
                batch_fn=batch_fn,
            )
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        with Deferred() as held:  # an interrupt from here on waits until the parent is closed
            progress.close()
            try:  # the parent run's summary for the UI; the sweep's results do not depend on it
                metrics, artifacts = parent_summary(
                    pairs,
                    grid=sweep.grid,
                    total=len(specs),
                    skipped=len(specs) - len(todo),
                    axes=axes,
                    names={s.key: tracker.run_name(s) for s, _ in pairs},
                    status=status,
                )
            except Exception as exc:
                print(f"note: no summary on the parent run ({type(exc).__name__}: {exc})", file=out)
                metrics, artifacts = {}, {}
            try:
                tracker.finish(lambda: held.status(status), metrics=metrics, artifacts=artifacts)
            finally:
                stop_ray(ray_started)
        held.reraise()
    wall = time.perf_counter() - t0
    report = SweepReport(
        total=len(specs),
        skipped=len(specs) - len(todo),
        results=pairs,
        killed_stale=killed,
        wall_seconds=wall,
        stats=stats,
        mlflow_seconds=tracker.stats.seconds,
        mlflow_runs=tracker.stats.runs,
        store_uri=store.uri,
        ui=ui_command(store),
    )
    table = summary_table(pairs)
    if table:
        print(table, file=out)
    print(
        f"done in {wall:.1f} s: {report.count('finished')} finished, {report.count('diverged')} "
        f"diverged, {report.count('failed')} failed, {report.skipped} skipped (already recorded).",
        file=out,
    )
    ts = tracker.stats
    if ts.elsewhere or ts.dropped:
        print(
            f"{ts.elsewhere + ts.dropped} trial(s) were recorded by another driver running the same "
            f"sweep ({ts.elsewhere} skipped when dispatched, {ts.dropped} results dropped).",
            file=out,
        )
    if sweep.options.verdicts and status == "FINISHED":
        _log_verdicts(sweep.grid, store.uri, tracker, out)
    print(f"results: MLflow experiment '{sweep.grid}' in {store.uri}", file=out)
    print(f"open the UI: {report.ui}", file=out, flush=True)
    return report


REPORT_FILES = ("verdicts.md", "verdicts.json", "README.md")  # logged under report/


def _log_verdicts(grid: str, uri: str, tracker, out: TextIO) -> None:
    """``sweep.verdicts=true``: run ``python -m analysis`` on the sweep's store (a subprocess:
    ``sweep`` does not import ``analysis``), print its verdict lines and log
    :data:`REPORT_FILES` on the parent run under ``report/``. A failure is a note, not an
    error: the trials are recorded either way."""
    import subprocess
    import tempfile

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="dualsweep-report-") as tmp:
        cmd = [sys.executable, "-m", "analysis", "--experiment", grid, "--out", tmp,
               "--tracking-uri", uri, "--no-curves"]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        files = [Path(tmp) / name for name in REPORT_FILES if (Path(tmp) / name).is_file()]
        if proc.returncode not in (0, 1) or not files:  # 1: a verdict is FAIL (--check's code)
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            print(f"note: no verdicts on the parent run (python -m analysis: {why})", file=out)
            return
        for f in files:
            tracker.client.log_artifact(tracker.parent_id, str(f), "report")
    print(proc.stdout.rstrip(), file=out)
    print(f"verdicts logged on the parent run {tracker.parent_id} under report/", file=out)
