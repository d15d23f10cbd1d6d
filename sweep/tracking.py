"""MLflow recording of a sweep: the only module of ``sweep`` that imports mlflow.

Layout (names from :mod:`sweep.schema`):

- one **experiment** per grid name;
- one **parent run** per invocation of ``python -m sweep`` (tag ``run_kind=sweep``), FINISHED
  when the sweep ran to the end, KILLED on Ctrl-C, FAILED on an error in the driver;
- one **child run** per trial (tag ``run_kind=trial``, ``mlflow.parentRunId``): params =
  ``TrialSpec.params()``, metrics = ``TrialResult.metrics()``, the training curves as stepped
  metrics ``curve.<name>``, the ``TAG_*`` tags, the full result as ``trial.json`` and, for a
  failed trial, ``traceback.txt``. Status FINISHED for finished and diverged trials, FAILED for
  failed ones (so a re-run tries them again).

Only the driver writes. A child run is created when its result arrives and is completed by
one writer thread (create → ``log_batch`` → artifacts → terminated), so logging overlaps the
trials still running and a driver killed mid-write leaves at most a RUNNING child run, which
the next invocation marks KILLED and redoes (:meth:`Tracker.close_stale`). Resume reads the
keys of FINISHED child runs (:meth:`Tracker.finished_keys`, paged).

Where the store is and how it is opened (default URI, checks, atomic creation of a SQLite
store, the lock between drivers, client, paged search) is :mod:`sweep.store`; this module and
that one are the only modules of ``sweep`` that import mlflow.
"""

from __future__ import annotations

import json
import math
import os
import platform
import queue
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from sweep.schema import (
    ARTIFACT_RESULT,
    ARTIFACT_TRACEBACK,
    CURVE_PREFIX,
    TAG_DEVICE,
    TAG_DRIVER,
    TAG_EXPERIMENT,
    TAG_FAMILY,
    TAG_GIT_COMMIT,
    TAG_GRID,
    TAG_KIND,
    TAG_NODE_ID,
    TAG_NOT_COVERED,
    TAG_STATUS,
    TAG_SWEEP_ID,
    TAG_TRIAL_KEY,
    TAG_VERSIONS,
    TrialResult,
    TrialSpec,
)
from sweep.store import (
    KIND_SWEEP,
    KIND_TRIAL,
    TAG_PARENT,
    TRIAL_FILTER,
    Store,
    open_store,
    resolve_store,
    search_runs,
    ui_command,
)

__all__ = ["Store", "Tracker", "environment_tags", "resolve_store", "ui_command"]

_PACKAGES = ("numpy", "scipy", "torch", "ray", "mlflow", "hydra-core", "omegaconf", "dualsweep")
_MAX_TAG = 5000  # MLflow's tag value limit is 8000 characters
_PAGE = 5000  # runs per search_runs page


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def environment_tags() -> dict[str, str]:
    """Git commit (``-dirty`` when tracked files changed) and package versions."""
    versions = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    return {TAG_GIT_COMMIT: _git_commit(), TAG_VERSIONS: json.dumps(versions, sort_keys=True)}


def _driver_alive(driver: str) -> bool:
    """Whether ``host:pid`` names a live process other than this one on this host."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Stats:
    runs: int = 0  # child runs written
    seconds: float = 0.0  # time the writer spent in MLflow calls
    errors: list[str] = field(default_factory=list)


class Tracker:
    """The driver's MLflow writer for one sweep invocation.

    Construction creates the store (schema migration) and the experiment once, before any
    trial starts. ``start`` opens the parent run and the writer thread; ``record`` queues a
    trial; ``finish`` drains the queue and closes the parent run.
    """

    def __init__(self, store: Store, experiment: str) -> None:
        self.store = store
        # checks the store (one sentence, sweep.store.StoreError), creates it atomically if
        # missing, and the experiment once, before any trial starts
        self.client, self.experiment_id = open_store(store, experiment)
        self.experiment = experiment
        self.parent_id: str | None = None
        self.sweep_id = uuid.uuid4().hex[:12]
        self.stats = _Stats()
        self._env = environment_tags()
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ resume

    def _search(self, filter_string: str) -> list:
        return search_runs(self.client, self.experiment_id, filter_string, page_size=_PAGE)

    def finished_keys(self) -> set[str]:
        """Keys of trials with a FINISHED child run in this experiment."""
        runs = self._search(f"{TRIAL_FILTER} and attributes.status = 'FINISHED'")
        return {r.data.tags[TAG_TRIAL_KEY] for r in runs if TAG_TRIAL_KEY in r.data.tags}

    def trial_runs(self) -> list:
        """Every child run of this experiment (any status), for inspection and tests."""
        return self._search(TRIAL_FILTER)

    def close_stale(self) -> int:
        """Mark KILLED every run left RUNNING by a driver that is gone; returns how many.

        Runs of a driver still alive on this host (another sweep in progress) are left alone.
        """
        running = self._search("attributes.status = 'RUNNING'")
        parents = {r.info.run_id: r for r in running if r.data.tags.get(TAG_KIND) == KIND_SWEEP}
        alive = {
            rid for rid, r in parents.items() if _driver_alive(r.data.tags.get(TAG_DRIVER, ""))
        }
        n = 0
        for r in running:
            owner = r.info.run_id if r.info.run_id in parents else r.data.tags.get(TAG_PARENT)
            if owner in alive:
                continue
            self.client.set_terminated(r.info.run_id, "KILLED")
            n += 1
        return n

    # ------------------------------------------------------------ writing

    def start(self, *, params: dict[str, object], config_text: str = "") -> str:
        """Open the parent run of this invocation and start the writer thread."""
        tags = {
            TAG_KIND: KIND_SWEEP,
            TAG_GRID: self.experiment,
            TAG_SWEEP_ID: self.sweep_id,
            TAG_DRIVER: f"{socket.gethostname()}:{os.getpid()}",
            **self._env,
        }
        run = self.client.create_run(
            self.experiment_id,
            tags=tags,
            run_name=f"{self.experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
        )
        self.parent_id = run.info.run_id
        from mlflow.entities import Param

        self.client.log_batch(
            self.parent_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
        )
        if config_text:
            self.client.log_text(self.parent_id, config_text, "sweep_config.yaml")
        self._thread = threading.Thread(target=self._writer, name="mlflow-writer", daemon=True)
        self._thread.start()
        return self.parent_id

    def record(self, spec: TrialSpec, result: TrialResult) -> None:
        """Queue one trial for the writer thread (returns at once)."""
        if self._thread is None:
            raise RuntimeError("Tracker.record called before Tracker.start")
        self._queue.put((spec, result))

    def pending(self) -> int:
        """Trials queued but not yet written."""
        return self._queue.qsize()

    def finish(self, status: str) -> None:
        """Write every queued trial, then mark the parent run ``status``.

        Raises RuntimeError if any trial could not be written (after closing the parent).
        """
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self.parent_id is not None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(
                self.parent_id,
                metrics=[
                    Metric("runs_recorded", float(self.stats.runs), now, 0),
                    Metric("mlflow_seconds", self.stats.seconds, now, 0),
                ],
            )
            self.client.set_terminated(self.parent_id, status)
        if self.stats.errors:
            raise RuntimeError(
                f"{len(self.stats.errors)} trial(s) could not be recorded in MLflow; first error: "
                + self.stats.errors[0]
            )

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            t0 = time.perf_counter()
            try:
                self._write(*item)
                self.stats.runs += 1
            except Exception as exc:  # recorded and re-raised by finish(): never silently lost
                self.stats.errors.append(f"{item[0].key}: {type(exc).__name__}: {exc}")
            self.stats.seconds += time.perf_counter() - t0

    def _artifact(self, run_id: str, artifact_uri: str, name: str, text: str) -> None:
        """A text artifact; written straight to disk for a local (file://) artifact store."""
        if artifact_uri.startswith("file://"):
            folder = Path(url2pathname(urlparse(artifact_uri).path))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        else:
            self.client.log_text(run_id, text, name)

    def _write(self, spec: TrialSpec, result: TrialResult) -> None:
        from mlflow.entities import Metric, Param

        tags = {
            TAG_KIND: KIND_TRIAL,
            TAG_TRIAL_KEY: spec.key,
            TAG_GRID: self.experiment,
            TAG_STATUS: result.status,
            TAG_SWEEP_ID: self.sweep_id,
            TAG_NODE_ID: result.node_id or "driver",
            TAG_DEVICE: result.device,
            TAG_EXPERIMENT: spec.experiment,
            **self._env,
        }
        if result.family:
            tags[TAG_FAMILY] = result.family
        if result.not_covered:
            tags[TAG_NOT_COVERED] = result.not_covered[:_MAX_TAG]
        if self.parent_id:
            tags[TAG_PARENT] = self.parent_id
        name = f"{spec.experiment or self.experiment}-{spec.key[:8]}"
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in result.metrics().items()]
        for cname, values in result.curves.items():
            for step, v in zip(result.curve_steps, values, strict=False):
                if v is not None and math.isfinite(float(v)):
                    metrics.append(Metric(CURVE_PREFIX + cname, float(v), now, int(step)))
        params = [Param(k, str(v)) for k, v in spec.params().items()]
        self.client.log_batch(run_id, metrics=metrics[:900], params=params)
        for i in range(900, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
        self._artifact(run_id, run.info.artifact_uri, ARTIFACT_RESULT, result.to_json())
        if result.status == "failed":
            self._artifact(
                run_id, run.info.artifact_uri, ARTIFACT_TRACEBACK, result.error or "(no traceback)"
            )
        self.client.set_terminated(run_id, "FAILED" if result.status == "failed" else "FINISHED")
