"""MLflow recording of a sweep: the writer side of the store (:mod:`sweep.store` opens it).

Layout (names from :mod:`sweep.schema`):

- one **experiment** per grid name;
- one **parent run** per invocation of ``python -m sweep`` (tag ``run_kind=sweep``, the
  driver's ``host:pid`` and a ``heartbeat``), FINISHED when the sweep ran to the end, KILLED on
  Ctrl-C, FAILED on an error in the driver;
- one **child run** per trial (tag ``run_kind=trial``, ``mlflow.parentRunId``): params =
  ``TrialSpec.params()``, metrics = ``TrialResult.metrics()``, the training curves as stepped
  metrics ``curve.<name>``, the ``TAG_*`` tags, the full result as ``trial.json`` (against a
  server: a line of the parent's ``results/*.jsonl``, named by the ``trial_json`` tag) and, for
  a failed trial, ``traceback.txt``. Status FINISHED for finished and diverged trials, FAILED
  for failed ones (so a re-run tries them again).

Only drivers write. A child run is created RUNNING when its trial is dispatched — the driver's
claim on its key (:meth:`Tracker.claim`) — and completed by the writer threads when the result
arrives (``log_batch`` → ``trial.json`` → FINISHED), so logging overlaps the trials still
running. A driver killed mid-sweep leaves RUNNING child runs, which the next invocation (or a
live driver that needs their keys) marks KILLED and redoes (:meth:`Tracker.close_stale`).
Several drivers on one store run each key once (see :class:`Tracker`). Resume reads the keys of
FINISHED child runs (:meth:`Tracker.finished_keys`: one SQL query on a SQLite store).

Where the store is and how it is opened (default URI, checks, atomic creation of a SQLite
store, the lock between drivers, client, paged search) is :mod:`sweep.store`; this module and
that one are the only modules of ``sweep`` that import mlflow.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
    TAG_RESULT_REF,
    TAG_STATUS,
    TAG_SWEEP_ID,
    TAG_TRIAL_KEY,
    TAG_VERSIONS,
    TrialResult,
    TrialSpec,
)
from sweep.sqlstore import Claim, HttpWriter, SqlWriter
from sweep.store import (
    KIND_SWEEP,
    KIND_TRIAL,
    SWEEP_FILTER,
    TAG_PARENT,
    TRIAL_FILTER,
    Store,
    StoreError,
    StoreFault,
    open_store,
    resolve_store,
    safe_uri,
    search_runs,
    ui_command,
)

__all__ = [
    "RESULTS_DIR",
    "TAG_HEARTBEAT",
    "TAG_RESULT_REF",
    "Store",
    "Tracker",
    "environment_tags",
    "mlflow_source_tags",
    "resolve_store",
    "run_name",
    "trial_entities",
    "trial_rows",
    "ui_command",
]

_PACKAGES = ("numpy", "scipy", "torch", "ray", "mlflow", "hydra-core", "omegaconf", "dualsweep")
_MAX_TAG = 5000  # MLflow's tag value limit is 8000 characters
_PAGE = 5000  # runs per search_runs page
TAG_HEARTBEAT = "heartbeat"  # parent run: unix time of its driver's last sign of life
RESULTS_DIR = "results"  # parent run's artifact folder of JSON-lines results (servers)
# short labels of the usual axes in run names (``L=3 w=10 β=0.2 zca s0``)
_SHORT = {"model.depth": "L", "model.width": "w", "train.beta": "β", "data.outputs": "K",
          "train.lr": "lr", "train.steps": "steps", "train.batch_size": "bs"}  # fmt: skip
_MAX_NAME = 250


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


def mlflow_source_tags(commit: str) -> dict[str, str]:
    """MLflow's own tags (``mlflow.utils.mlflow_tags``) for the UI's Source and User columns:
    the command, its type and the git commit (without the ``-dirty`` mark, which stays in
    ``git_commit``)."""
    tags = {
        "mlflow.source.name": "python -m sweep",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": _user(),
    }
    if commit and commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    return tags


def _label(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_name(spec: TrialSpec, axes: list[str] | tuple[str, ...], default: str) -> str:
    """A trial's run name from what varies in its sweep (``axes``): ``L=3 w=10 β=0.2 zca s0``
    — model, train, data fields, experiment, seed in that order; short labels for the usual
    fields, the bare value of a text field, ``s<seed>``;
    ``default`` when nothing varies. The key stays a tag (``trial_key``)."""
    params = spec.params()
    parts = []
    order = ("model.", "train.", "data.", "experiment", "seed")  # the network first, seed last
    for axis in sorted(
        axes, key=lambda a: next(i for i, p in enumerate((*order, "")) if a.startswith(p))
    ):
        value = params.get(axis)
        if axis == "seed":
            parts.append(f"s{value}")
        elif isinstance(value, str) and value:
            parts.append(value)
        else:
            parts.append(f"{_SHORT.get(axis, axis.rsplit('.', 1)[-1])}={_label(value)}")
    return (" ".join(parts) or default)[:_MAX_NAME]


def child_run_name(spec: TrialSpec, axes: list[str] | tuple[str, ...], grid: str) -> str:
    """The name a sweep gives ``spec``'s child run: :func:`run_name` over the sweep's ``axes``
    (:func:`sweep.grid.varying_fields` of its trials), ``<experiment or grid>-<key[:8]>`` when
    nothing varies."""
    return run_name(spec, axes, f"{spec.experiment or grid}-{spec.key[:8]}")


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
    runs: int = 0  # child runs written (FINISHED or FAILED) by this driver
    seconds: float = 0.0  # wall time during which at least one writer was busy
    calls: int = 0  # requests to the store (create, log_batch, update, search, artifacts ...)
    claimed: int = 0  # claims (RUNNING child runs) this driver created
    elsewhere: int = 0  # trials skipped at dispatch: recorded or claimed by another live driver
    dropped: int = 0  # results not recorded: another driver's claim or FINISHED run came first
    lost: int = 0  # results not recorded because the store failed (run again on resume)
    taken_over: int = 0  # claims of dead drivers marked KILLED while this one ran their keys
    errors: list[str] = field(default_factory=list)


@dataclass
class _Item:
    spec: TrialSpec
    result: TrialResult
    claim: Claim | None


_LIVE_SWEEPS: set[str] = set()  # sweep ids of the Trackers alive in this process


def _store_faults(method):
    """A failure of the store inside a :class:`Tracker` method becomes the sweep's
    :class:`~sweep.store.StoreFault` (one sentence: what was recorded, how to resume)."""

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            raise self._failed(exc) from exc

    return wrapped


class Tracker:
    """The driver's MLflow writer for one sweep invocation, and its claims on trial keys.

    Construction opens (or creates) the store and the experiment once, before any trial starts.
    ``start`` opens the parent run, its heartbeat and the writer threads; ``claim`` (or
    ``claimed``) creates a RUNNING child run per trial before it is dispatched; ``record``
    queues a result for the writers; ``finish`` drains the queue and closes the parent run.

    Claims (issue 12 #3). Every child run is created when its trial is dispatched, RUNNING, and
    is the very run its result is later written into, so a claim costs no extra request. Claims
    on one key are totally ordered by ``(start_time, run_id)``. Before a result is recorded the
    driver reads the other drivers' claims (a poll that started at least ``settle`` seconds after
    its own claim, so every claim with an earlier start_time is visible) and records only if no
    other run of that key is FINISHED and no earlier claim of a live driver exists; otherwise
    its run is withdrawn (KILLED, then deleted) and the result dropped. A claim whose creation
    took longer than ``settle / 2`` is withdrawn and made again, so the rule holds for claims
    made on several machines with clocks within ``settle / 2`` of each other. A driver is live
    while its parent run is RUNNING and: on this host, its process exists; elsewhere, its
    parent's ``heartbeat`` tag (refreshed every ``heartbeat_every`` s) is younger than
    ``stale_after`` s. At dispatch, keys already FINISHED or claimed by a live driver are
    skipped, and each driver walks its batches from an offset of its own so that drivers started
    together work on different keys.

    Writes per trial: ``create_run`` (claim, with every identifying tag), one ``log_batch``
    (params, metrics, curve points, result tags), ``update_run_info`` (FINISHED / FAILED) —
    through MLflow's store API directly (``MlflowClient.set_terminated`` would add a ``get_run``
    per run against a server). ``trial.json`` is written straight into a local artifact
    directory; against a server the results of a group of trials go up as one JSON-lines
    artifact of the parent run (``results/…``), named by each child's ``trial_json`` tag.
    Against a server ``writers`` threads write in parallel (default 8); SQLite takes one.
    """

    def __init__(
        self,
        store: Store,
        experiment: str,
        *,
        writers: int | None = None,
        settle: float | None = None,
        heartbeat_every: float = 10.0,
        stale_after: float = 60.0,
        poll_every: float = 1.0,
        group: int = 64,
    ) -> None:
        self.store = store
        # checks the store (one sentence, sweep.store.StoreError), creates it atomically if
        # missing, and the experiment once, before any trial starts
        self.client, self.experiment_id = open_store(store, experiment)
        # MLflow's store API (AbstractStore): create_run / log_batch / update_run_info in one
        # request each, without the client's extra get_run calls
        self._ts = self.client._tracking_client.store
        self.remote = store.uri.startswith(("http://", "https://"))
        self._chunked = self.remote
        self.writers = max(1, writers or (8 if self.remote else 1))
        self.settle = float(settle if settle is not None else (3.0 if self.remote else 1.0))
        self.heartbeat_every = heartbeat_every
        self.stale_after = stale_after
        self.poll_every = poll_every
        self.group = max(1, group)
        self.experiment = experiment
        self.parent_id: str | None = None
        self.sweep_id = uuid.uuid4().hex[:12]
        self.driver = f"{socket.gethostname()}:{os.getpid()}"
        self.stats = _Stats()
        self.rerun = False
        self._env = environment_tags()
        self._env.update(mlflow_source_tags(self._env[TAG_GIT_COMMIT]))
        self._user = _user()
        self.axes: tuple[str, ...] = ()  # what varies over the sweep: names the child runs
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # stats, claims, view
        self._poll_lock = threading.Lock()
        self._busy = 0
        self._busy_since = 0.0
        self._claims: dict[str, Claim] = {}  # key -> this driver's claim not yet recorded
        self._t0 = time.time()
        self._snapshot = self._t0  # when finished_keys read the store (start of the poll window)
        self._last_poll: float | None = None  # wall time the last completed poll started
        self._others: dict[str, dict[str, tuple[int, str]]] = {}  # key -> run_id -> (start, sweep)
        self._done: set[str] = set()  # keys FINISHED by other drivers (seen in polls)
        self._parents: dict[str, tuple[str, float]] = {}  # live sweep id -> (driver, heartbeat)
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        self._chunks = 0
        self.fault: str | None = None  # the store's first failure during the sweep
        # many runs per transaction instead of 3 calls per run: on a SQL store the driver opens
        # (SQLite by default), or through a server that runs the dualsweep app (sweep.serverapp)
        self._sql: SqlWriter | HttpWriter | None = None
        if SqlWriter.usable(self._ts):
            self._sql = SqlWriter(self._ts, self.experiment_id)
        elif self.remote and HttpWriter.available(self._ts):
            self._sql = HttpWriter(self._ts, self.experiment_id)
        _warn_slow_path(self._ts, self._sql)

    # ------------------------------------------------------------ store calls

    def _failed(self, exc: BaseException) -> StoreFault:
        """Note the store's first failure; the StoreFault that stops the sweep."""
        with self._lock:
            if self.fault is None:
                self.fault = _reason(exc)
        return StoreFault(self._fault_sentence())

    def _fault_sentence(self) -> str:
        return (
            f"the MLflow store {safe_uri(self.store.uri)} failed during the sweep ({self.fault}); "
            f"{self.stats.runs} trial(s) were recorded, {self.stats.lost} computed result(s) "
            "were not; once the store works again, run the same command to resume (it runs "
            "those again)."
        )

    def _call(self, fn, *args, **kwargs):
        if self.fault:  # no more requests (each would sit in retries) once the store failed
            raise StoreFault(self._fault_sentence())
        with self._lock:
            self.stats.calls += 1
        return fn(*args, **kwargs)

    def _runs(self, filter_string: str, *, deleted: bool = False) -> list:
        """Every run of the experiment matching ``filter_string`` (paged; ``deleted``: those
        in the bin too)."""
        from mlflow.entities import ViewType

        view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
        runs, token = [], None
        while True:
            page = self._call(
                self.client.search_runs,
                [self.experiment_id],
                filter_string=filter_string,
                run_view_type=view,
                max_results=_PAGE,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # ------------------------------------------------------------ resume

    def _search(self, filter_string: str) -> list:
        return search_runs(self.client, self.experiment_id, filter_string, page_size=_PAGE)

    @_store_faults
    def finished_keys(self) -> set[str]:
        """Keys of trials with a FINISHED child run in this experiment.

        A SQL store (the driver's own, or a server's through the dualsweep app) is read with one
        query over MLflow's ``runs`` and ``tags`` tables (:func:`sweep.sqlstore.finished_keys`:
        0.1 s for 100,000 runs, where ``search_runs`` materialises every param and metric); any
        other store, or a schema that query does not fit, through ``search_runs``."""
        self._snapshot = time.time()
        if self._sql is not None:
            with contextlib.suppress(Exception):  # a schema it does not fit: MLflow's search below
                return self._call(self._sql.finished_keys)
        runs = self._search(f"{TRIAL_FILTER} and attributes.status = 'FINISHED'")
        return {r.data.tags[TAG_TRIAL_KEY] for r in runs if TAG_TRIAL_KEY in r.data.tags}

    def trial_runs(self) -> list:
        """Every child run of this experiment (any status), for inspection and tests."""
        return self._search(TRIAL_FILTER)

    def _owner_alive(self, parent) -> bool:
        """Whether the driver of parent run ``parent`` (a RUNNING sweep run) is alive."""
        tags = parent.data.tags
        driver = tags.get(TAG_DRIVER, "")
        beat = _float(tags.get(TAG_HEARTBEAT), parent.info.start_time / 1000.0)
        return self._alive(driver, tags.get(TAG_SWEEP_ID, ""), beat)

    def _alive(self, driver: str, sweep_id: str, beat: float) -> bool:
        host, _, pid = driver.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid():
                return sweep_id in _LIVE_SWEEPS  # another Tracker of this process
            return _driver_alive(driver)
        return time.time() - beat < self.stale_after  # another machine: its heartbeat

    @_store_faults
    def close_stale(self) -> int:
        """Mark KILLED every run left RUNNING by a driver that is gone; returns how many.

        Runs of a live driver (another sweep in progress: on this host its process exists, on
        another its heartbeat is younger than ``stale_after``) are left alone."""
        from mlflow.entities import RunStatus

        running = self._search("attributes.status = 'RUNNING'")
        parents = {r.info.run_id: r for r in running if r.data.tags.get(TAG_KIND) == KIND_SWEEP}
        alive = {rid for rid, r in parents.items() if self._owner_alive(r)}
        stale = []
        for r in running:
            owner = r.info.run_id if r.info.run_id in parents else r.data.tags.get(TAG_PARENT)
            if owner not in alive:
                stale.append(r.info.run_id)
        now = int(time.time() * 1000)
        if self._sql is not None and stale:  # one statement, however many a killed driver left
            self._call(self._sql.kill, stale)
        else:
            self._map(
                lambda rid: self._call(self._ts.update_run_info, rid, RunStatus.KILLED, now, None),
                stale,
            )
        return len(stale)

    # ------------------------------------------------------------ parent run

    @_store_faults
    def start(
        self,
        *,
        params: dict[str, object],
        config_text: str = "",
        rerun: bool = False,
        axes: list[str] | tuple[str, ...] = (),
    ) -> str:
        """Open the parent run of this invocation, its heartbeat and the writer threads.
        ``rerun``: FINISHED runs from before this invocation do not count as done; ``axes``:
        the fields that vary over the sweep, which name its child runs (:func:`run_name`)."""
        from mlflow.entities import Param

        self.rerun = rerun
        self.axes = tuple(axes)
        tags = {
            TAG_KIND: KIND_SWEEP,
            TAG_GRID: self.experiment,
            TAG_SWEEP_ID: self.sweep_id,
            TAG_DRIVER: self.driver,
            TAG_HEARTBEAT: f"{time.time():.3f}",
            **self._env,
        }
        run = self.client.create_run(
            self.experiment_id,
            tags=tags,
            run_name=f"{self.experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
        )
        self.parent_id = run.info.run_id
        # results go up in JSON-lines chunks (one upload per group of trials) unless the
        # artifact store is a local directory, where each trial.json is written directly
        self._chunked = _local_folder(run.info.artifact_uri) is None
        _LIVE_SWEEPS.add(self.sweep_id)
        self.client.log_batch(
            self.parent_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
        )
        if config_text:
            self.client.log_text(self.parent_id, config_text, "sweep_config.yaml")
        self._heart = threading.Thread(target=self._heartbeat, name="sweep-heartbeat", daemon=True)
        self._heart.start()
        self._threads = [
            threading.Thread(target=self._writer, name=f"mlflow-writer-{i}", daemon=True)
            for i in range(self.writers)
        ]
        for t in self._threads:
            t.start()
        return self.parent_id

    def _heartbeat(self) -> None:
        from mlflow.entities import RunTag

        while not self._stop.wait(self.heartbeat_every):
            try:
                self._call(
                    self._ts.set_tag, self.parent_id, RunTag(TAG_HEARTBEAT, f"{time.time():.3f}")
                )
            except Exception:  # a missed beat is retried at the next one
                pass

    # ------------------------------------------------------------ claims

    def _poll(self, needed: float = 0.0) -> None:
        """Refresh the view of other drivers' claims, FINISHED runs and live parents, unless a
        poll that started at or after ``needed`` (wall time) already did.

        A FAILED run of another driver counts as done (``_done``) for this invocation when that
        driver's invocation overlaps this one: its driver is live now, or the run started at or
        after this driver's start (less ``settle``). Concurrent drivers thus try a failing key
        once between them; a later invocation (after theirs ended) retries it."""
        with self._poll_lock:
            if self._last_poll is not None and self._last_poll >= needed:
                return
            t = time.time()
            me = f"tags.{TAG_SWEEP_ID} != '{self.sweep_id}'"
            if self._last_poll is None:
                new = self._runs(f"{TRIAL_FILTER} and {me} and attributes.status = 'RUNNING'")
                since_end = self._snapshot
            else:
                since = int((self._last_poll - self.settle) * 1000)
                new = self._runs(
                    f"{TRIAL_FILTER} and {me} and attributes.start_time >= {since}", deleted=True
                )
                since_end = self._last_poll
            ended = self._runs(
                f"{TRIAL_FILTER} and {me} and attributes.end_time >= "
                f"{int((since_end - self.settle) * 1000)}",
                deleted=True,
            )
            parents = self._runs(f"{SWEEP_FILTER} and attributes.status = 'RUNNING'")
            concurrent = set()  # sweep ids of the other live invocations
            for p in parents:
                sid = p.data.tags.get(TAG_SWEEP_ID, "")
                if sid != self.sweep_id and self._owner_alive(p):
                    concurrent.add(sid)
            failed = []  # the first poll: what they failed before this driver's first window
            if self._last_poll is None:
                for sid in sorted(concurrent):
                    failed += self._runs(
                        f"{TRIAL_FILTER} and tags.{TAG_SWEEP_ID} = '{sid}' "
                        "and attributes.status = 'FAILED'"
                    )
            since_me = (self._t0 - self.settle) * 1000
            with self._lock:
                for r in (*new, *ended, *failed):
                    key = r.data.tags.get(TAG_TRIAL_KEY)
                    if not key:
                        continue
                    live = r.info.lifecycle_stage == "active"
                    if r.info.status == "RUNNING" and live:
                        self._others.setdefault(key, {})[r.info.run_id] = (
                            int(r.info.start_time),
                            r.data.tags.get(TAG_SWEEP_ID, ""),
                        )
                        continue
                    self._others.get(key, {}).pop(r.info.run_id, None)
                    if r.info.status == "FINISHED" and live:
                        if not self.rerun or r.info.start_time >= since_me:
                            self._done.add(key)
                    elif r.info.status == "FAILED" and live:
                        sid = r.data.tags.get(TAG_SWEEP_ID, "")
                        if sid in concurrent or r.info.start_time >= since_me:
                            self._done.add(key)
                self._parents = {
                    p.data.tags.get(TAG_SWEEP_ID, ""): (
                        p.data.tags.get(TAG_DRIVER, ""),
                        _float(p.data.tags.get(TAG_HEARTBEAT), p.info.start_time / 1000.0),
                    )
                    for p in parents
                }
                self._last_poll = t

    def _live(self, sweep_id: str) -> bool:
        p = self._parents.get(sweep_id)
        return p is not None and self._alive(p[0], sweep_id, p[1])

    def _blocked(self, key: str, mine: Claim | None) -> bool:
        """Whether another driver owns ``key``: it has a FINISHED run of it, or a live claim
        ordered before ``mine`` (any live claim when ``mine`` is None)."""
        if key in self._done:
            return True
        for rid, (start, sid) in self._others.get(key, {}).items():
            if mine is not None and (start, rid) > (mine.start_ms, mine.run_id):
                continue
            if self._live(sid):
                return True
        return False

    def _stale_claims(self, key: str, mine: Claim) -> list[str]:
        """Claims of ``key`` ordered before ``mine`` whose drivers are gone."""
        return [
            rid
            for rid, (start, sid) in self._others.get(key, {}).items()
            if (start, rid) < (mine.start_ms, mine.run_id) and not self._live(sid)
        ]

    def _claim_tags(self, spec: TrialSpec) -> dict[str, str]:
        tags = {
            TAG_KIND: KIND_TRIAL,
            TAG_TRIAL_KEY: spec.key,
            TAG_GRID: self.experiment,
            TAG_SWEEP_ID: self.sweep_id,
            TAG_DRIVER: self.driver,
            TAG_EXPERIMENT: spec.experiment,
            **self._env,
        }
        if self.parent_id:
            tags[TAG_PARENT] = self.parent_id
        return tags

    def run_name(self, spec: TrialSpec) -> str:
        """The name of ``spec``'s child run (:func:`run_name` over this sweep's axes)."""
        return child_run_name(spec, self.axes, self.experiment)

    def _create(self, spec: TrialSpec) -> Claim:
        """Create the RUNNING child run that claims ``spec.key`` (again if it took too long)."""
        from mlflow.entities import RunTag

        tags = [RunTag(k, v) for k, v in self._claim_tags(spec).items()]
        name = self.run_name(spec)
        for attempt in range(4):
            t0 = time.time()
            start = int(t0 * 1000)
            run = self._call(self._ts.create_run, self.experiment_id, self._user, start, tags, name)
            claim = Claim(run.info.run_id, start, run.info.artifact_uri)
            if time.time() - t0 <= self.settle / 2 or attempt == 3:
                with self._lock:
                    self.stats.claimed += 1
                return claim
            self._withdraw(claim.run_id)  # others may have polled before it was visible
        raise AssertionError("unreachable")

    def _create_many(self, specs: list[TrialSpec]) -> list[Claim]:
        """Claims for ``specs``: one transaction on a SQL store (made again if it took more
        than ``settle / 2``), else one ``create_run`` each (in parallel against a server)."""
        if not specs:
            return []
        if self._sql is None:
            return self._map(self._create, specs)
        for attempt in range(4):
            t0 = time.time()
            start = int(t0 * 1000)
            rows = [
                (
                    uuid.uuid4().hex,
                    self.run_name(s),
                    start,
                    self._claim_tags(s),
                    self._user,
                )
                for s in specs
            ]
            claims = self._call(self._sql.create, rows)
            if time.time() - t0 <= self.settle / 2 or attempt == 3:
                with self._lock:
                    self.stats.claimed += len(claims)
                return claims
            self._call(self._sql.withdraw, [c.run_id for c in claims])  # made again, on time
        raise AssertionError("unreachable")

    def _withdraw(self, run_id: str) -> None:
        """Take back a claim: KILLED (so pollers see it end), then deleted."""
        from mlflow.entities import RunStatus

        self._call(
            self._ts.update_run_info, run_id, RunStatus.KILLED, int(time.time() * 1000), None
        )
        self._call(self._ts.delete_run, run_id)

    def _map(self, fn, items: list) -> list:
        if self.writers == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.writers, len(items))) as pool:
            return list(pool.map(fn, items))

    def claim(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """Claim ``specs`` for this driver before they are dispatched; returns those it got.

        Keys FINISHED or claimed by another live driver (as of a poll at most ``poll_every`` s
        old) are left out; for the others a RUNNING child run is created (the run the result is
        written into). Races between drivers that claim the same key at the same moment are
        settled when the result is recorded (see the class docstring)."""
        if self.parent_id is None:
            raise RuntimeError("Tracker.claim called before Tracker.start")
        if self.fault:
            raise StoreFault(self._fault_sentence())
        try:
            self._poll(time.time() - self.poll_every)
            with self._lock:
                todo = [
                    s for s in specs if s.key not in self._claims and not self._blocked(s.key, None)
                ]
                self.stats.elsewhere += sum(1 for s in specs if s.key not in self._claims) - len(
                    todo
                )
            claims = self._create_many(todo)
        except Exception as exc:
            raise self._failed(exc) from exc
        with self._lock:
            for spec, c in zip(todo, claims, strict=True):
                self._claims[spec.key] = c
        return todo

    def claimed(self, groups) -> Iterator[list[TrialSpec]]:
        """``claim`` each batch of ``groups`` as it is taken (lazily); empty batches (every
        key owned elsewhere) are left out. Each driver starts at an offset derived from its
        sweep id and, when a batch shows that it met another driver, jumps to a random batch
        further on, so that drivers started together work on different keys."""
        import random
        from collections import deque

        order = deque(groups)
        if not order:
            return
        rng = random.Random(self.sweep_id)
        order.rotate(-(int(self.sweep_id, 16) % len(order)))
        while order:
            batch = order.popleft()
            before = self.stats.elsewhere
            won = self.claim(list(batch))
            if self.stats.elsewhere > before and len(order) > 1:
                order.rotate(-rng.randrange(len(order)))
            if won:
                yield won

    # ------------------------------------------------------------ results

    def record(self, spec: TrialSpec, result: TrialResult) -> None:
        """Queue one trial for the writer threads (returns at once). Raises
        :class:`~sweep.store.StoreFault` once the store has failed: the sweep stops."""
        if not self._threads:
            raise RuntimeError("Tracker.record called before Tracker.start")
        if self.fault:
            with self._lock:
                self.stats.lost += 1
            raise StoreFault(self._fault_sentence())
        with self._lock:
            claim = self._claims.get(spec.key)
        self._queue.put(_Item(spec, result, claim))

    def pending(self) -> int:
        """Trials queued but not yet written."""
        return self._queue.qsize()

    @_store_faults
    def finish(
        self,
        status: str | Callable[[], str],
        *,
        metrics: dict[str, float] | None = None,
        artifacts: dict[str, str] | None = None,
    ) -> None:
        """Write every queued trial, withdraw claims never recorded, close the parent run with
        ``metrics`` (the sweep's counts and gaps, for the UI's chart view) and the text
        ``artifacts`` (``{name: text}``: the summary table) besides its own statistics.
        ``status`` may be a function, called when the parent run is closed (an interrupt held
        back by the runner until then turns it into KILLED).

        Raises :class:`~sweep.store.StoreFault` (one sentence, what was recorded and how to
        resume) if the store failed during the sweep; the parent run and the claims are then
        left RUNNING for the next run of the command to close (its driver is gone by then)."""
        from mlflow.entities import Metric, RunStatus

        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._threads = []
        self._stop.set()
        if self._heart is not None:
            self._heart.join(timeout=None if self.fault is None else 1.0)
            self._heart = None
        if self.fault:
            _LIVE_SWEEPS.discard(self.sweep_id)
            raise StoreFault(self._fault_sentence())
        with self._lock:
            left = [c.run_id for c in self._claims.values()]
            self._claims.clear()
        now = int(time.time() * 1000)
        try:  # claims of trials whose results never came (Ctrl-C, a driver error): withdrawn
            if self._sql is not None and left:
                self._call(self._sql.withdraw, left)
            else:
                self._map(self._withdraw, left)
        except Exception as exc:
            _LIVE_SWEEPS.discard(self.sweep_id)
            raise self._failed(exc) from exc
        if self.parent_id is not None:
            self.client.log_batch(
                self.parent_id,
                metrics=[
                    Metric("runs_recorded", float(self.stats.runs), now, 0),
                    Metric("mlflow_seconds", self.stats.seconds, now, 0),
                    Metric("claims_dropped", float(self.stats.dropped), now, 0),
                    Metric("trials_elsewhere", float(self.stats.elsewhere), now, 0),
                    *(
                        Metric(k, float(v), now, 0)
                        for k, v in (metrics or {}).items()
                        if v is not None and math.isfinite(float(v))
                    ),
                ],
            )
            for name, text in (artifacts or {}).items():
                self._call(self.client.log_text, self.parent_id, text, name)
            self._call(
                self._ts.update_run_info,
                self.parent_id,
                RunStatus.from_string(status if isinstance(status, str) else status()),
                int(time.time() * 1000),
                None,
            )
        _LIVE_SWEEPS.discard(self.sweep_id)

    def _writer(self) -> None:
        """Take every queued result; write, in one group, those whose claims are settled (a
        poll that started ``settle`` s after the claim has been read); hold the others."""
        held: list[_Item] = []
        stop = False
        while True:
            if not held:
                item = self._queue.get()
                if item is None:
                    return
                held.append(item)
            while not stop and len(held) < 50 * self.group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                else:
                    held.append(nxt)
            if self.fault:  # nothing more is written once the store failed (resume reruns them)
                with self._lock:
                    self.stats.lost += len(held)
                held = []
                if stop:
                    self._queue.put(None)
                    return
                continue
            with self._lock:
                if self._busy == 0:
                    self._busy_since = time.perf_counter()
                self._busy += 1
            group: list[_Item] = []
            try:
                bare = [it for it in held if it.claim is None]  # recorded without a claim
                for it, claim in zip(
                    bare, self._create_many([it.spec for it in bare]), strict=True
                ):
                    it.claim = claim
                    with self._lock:
                        self._claims[it.spec.key] = claim
                # a claim is settled once a poll started `settle` s after it: every claim
                # ordered before it was visible then
                first = min(it.claim.start_ms for it in held) / 1000.0 + self.settle
                wait = first - time.time()
                if wait > 0:
                    time.sleep(wait)
                if self._last_poll is None or self._last_poll < first:
                    self._poll(first)
                polled = self._last_poll or 0.0
                ready = [it for it in held if it.claim.start_ms / 1000.0 + self.settle <= polled]
                group = ready[: self.group]
                taken = {id(it) for it in group}
                held = [it for it in held if id(it) not in taken]
                self._write_group(group)
            except Exception as exc:  # the store failed: the sweep stops (StoreFault), resumable
                self._failed(exc)
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    self.stats.lost += len(group) + len(held)
                held = []
            finally:
                with self._lock:
                    self._busy -= 1
                    if self._busy == 0:
                        self.stats.seconds += time.perf_counter() - self._busy_since
            if stop and not held:
                self._queue.put(None)  # the sentinel this writer took, for no one else: harmless
                return

    def _write_group(self, items: list[_Item]) -> None:
        """Settle the claims of ``items`` (polled already) and write the winners."""
        from mlflow.entities import RunStatus

        if not items:
            return
        winners, stale = [], {}
        with self._lock:
            for it in items:
                if self._blocked(it.spec.key, it.claim):
                    continue
                winners.append(it)
                stale[id(it)] = self._stale_claims(it.spec.key, it.claim)
        # an earlier claim whose driver is gone: read it again (rare) — its driver may have
        # finished it just before ending; only a claim still RUNNING is taken over
        killed = []
        for it in [it for it in winners if stale[id(it)]]:
            runs = [self._call(self._ts.get_run, rid) for rid in stale[id(it)]]
            if any(r.info.status == "FINISHED" for r in runs):
                winners.remove(it)
                with self._lock:
                    self._done.add(it.spec.key)
            else:
                killed += [r.info.run_id for r in runs if r.info.status == "RUNNING"]
        losers = [it for it in items if it not in winners]
        if self._sql is not None and losers:
            self._call(self._sql.withdraw, [it.claim.run_id for it in losers])
        else:
            for it in losers:
                self._withdraw(it.claim.run_id)
        if self._sql is not None and killed:
            self._call(self._sql.kill, killed)
        else:
            now = int(time.time() * 1000)
            for rid in killed:  # a dead driver's claim on a key this one now records
                self._call(self._ts.update_run_info, rid, RunStatus.KILLED, now, None)
        ref = self._upload_results(winners) if self._chunked and winners else None
        if self._sql is not None and winners:
            rows = []
            for it in winners:
                metrics, params, tags = self._payload(it, ref)
                self._artifacts(it)
                status = "FAILED" if it.result.status == "failed" else "FINISHED"
                rows.append((it.claim.run_id, metrics, params, tags, status))
            self._call(self._sql.finish, rows)
            if isinstance(self._sql, SqlWriter):  # the UI's duration: the trial's, not its queue's
                now = time.time()  # a worker's clock ahead of this one's: no start after the end
                starts = [(it.claim.run_id, int(min(it.result.started_at, now) * 1000))
                          for it in winners if it.result.started_at is not None]  # fmt: skip
                self._call(self._sql.start_times, starts)
        else:
            for it in winners:
                self._write(it, ref)
        with self._lock:
            self.stats.dropped += len(losers)
            self.stats.taken_over += len(killed)
            self.stats.runs += len(winners)
            for it in items:
                self._claims.pop(it.spec.key, None)

    def _upload_results(self, items: list[_Item]) -> str:
        """One JSON-lines artifact of the parent run with the results of ``items``; returns
        the reference each child's ``trial_json`` tag carries."""
        with self._lock:
            self._chunks += 1
            name = f"{RESULTS_DIR}/{self.sweep_id}-{self._chunks:06d}.jsonl"
        text = "".join(it.result.to_json() + "\n" for it in items)
        self._call(self.client.log_text, self.parent_id, text, name)
        return f"runs:/{self.parent_id}/{name}"

    def _payload(self, it: _Item, ref: str | None) -> tuple[list, list, list]:
        """(metrics with curve points, params, result tags) of one trial's child run, as plain
        ``(key, value, timestamp, step)`` / ``(key, value)`` tuples."""
        spec, result = it.spec, it.result
        tags = {
            TAG_STATUS: result.status,
            TAG_NODE_ID: result.node_id or "driver",
            TAG_DEVICE: result.device,
        }
        if result.family:
            tags[TAG_FAMILY] = result.family
        if result.not_covered:
            tags[TAG_NOT_COVERED] = result.not_covered[:_MAX_TAG]
        if ref:
            tags[TAG_RESULT_REF] = ref
        metrics, params = trial_rows(spec, result, int(time.time() * 1000))
        return metrics, params, list(tags.items())

    def _artifacts(self, it: _Item) -> None:
        if not self._chunked:
            self._artifact(it.claim, ARTIFACT_RESULT, it.result.to_json())
        if it.result.status == "failed":
            self._artifact(it.claim, ARTIFACT_TRACEBACK, it.result.error or "(no traceback)")

    def _write(self, it: _Item, ref: str | None) -> None:
        """One trial through MLflow's store API: ``log_batch`` (split at MLflow's limits),
        its artifacts, then FINISHED / FAILED."""
        from mlflow.entities import Metric, Param, RunStatus, RunTag

        run_id = it.claim.run_id
        mets, pars, tgs = self._payload(it, ref)
        metrics = [Metric(*m) for m in mets]
        params = [Param(*p) for p in pars]
        tag_list = [RunTag(*t) for t in tgs]
        # MLflow's limits per log_batch: 100 params + tags, 1000 entities in all
        first = 1000 - len(params[:100]) - len(tag_list)
        self._call(self._ts.log_batch, run_id, metrics[:first], params[:100], tag_list)
        for i in range(100, len(params), 100):
            self._call(self._ts.log_batch, run_id, [], params[i : i + 100], [])
        for i in range(first, len(metrics), 1000):
            self._call(self._ts.log_batch, run_id, metrics[i : i + 1000], [], [])
        self._artifacts(it)
        status = RunStatus.FAILED if it.result.status == "failed" else RunStatus.FINISHED
        self._call(self._ts.update_run_info, run_id, status, int(time.time() * 1000), None)

    def _artifact(self, claim: Claim, name: str, text: str) -> None:
        """A text artifact; written straight to disk for a local (file://) artifact store."""
        folder = _local_folder(claim.artifact_uri)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        else:
            self._call(self.client.log_text, claim.run_id, text, name)


def _warn_slow_path(ts, writer) -> None:
    """One line on stderr when a SQL store is written without :class:`SqlWriter`'s fast path
    (an MLflow whose tables differ from the ones it was tested against: 3 requests per trial)."""
    if writer is not None:
        return
    why = SqlWriter.mismatch(ts)
    if why is not None and "not MLflow's SqlAlchemyStore" not in why:
        print(
            f"warning: recording through MLflow's store API, 3 calls per trial ({why}; "
            "sweep.sqlstore writes only the tables of the MLflow versions it is tested with).",
            file=sys.stderr,
            flush=True,
        )


def trial_rows(spec: TrialSpec, result: TrialResult, now: int) -> tuple[list, list]:
    """``(metrics, params)`` of one trial's child run as plain tuples: every
    ``result.metrics()`` as ``(name, value, now, 0)``, every finite curve point as
    ``(CURVE_PREFIX + name, value, now, step)``, every param as ``(name, str(value))``
    (``now``: the timestamp in ms)."""
    metrics = [(k, float(v), now, 0) for k, v in result.metrics().items()]
    for cname, values in result.curves.items():
        key = CURVE_PREFIX + cname
        for step, v in zip(result.curve_steps, values, strict=False):
            if v is not None and math.isfinite(float(v)):
                metrics.append((key, float(v), now, int(step)))
    params = [(k, str(v)) for k, v in spec.params().items()]
    return metrics, params


def trial_entities(spec: TrialSpec, result: TrialResult, now: int) -> tuple[list, list]:
    """:func:`trial_rows` as MLflow ``Metric`` and ``Param`` entities."""
    from mlflow.entities import Metric, Param

    metrics, params = trial_rows(spec, result, now)
    return [Metric(*m) for m in metrics], [Param(*p) for p in params]


# the phrases of the usual store failures, as they appear in nested exception texts
_REASONS = ("Connection refused", "timed out", "Name or service not known",
            "Connection reset", "Remote end closed connection", "database is locked",
            "disk I/O error", "No space left on device", "readonly database")  # fmt: skip


def _reason(exc: BaseException) -> str:
    """A short phrase for a store failure: the first usual reason in its text (MLflow nests
    urllib3's in its own), else the exception's first line."""
    text = str(exc)
    for phrase in _REASONS:
        if phrase.lower() in text.lower():
            return f"{phrase.lower()}, {type(exc).__name__}"
    first = (text.strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}".rstrip(": ")


def _local_folder(artifact_uri: str) -> Path | None:
    """The directory of a local artifact location (``file://`` URI or plain path), else None."""
    parts = urlparse(artifact_uri)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    if parts.scheme == "" and artifact_uri:
        return Path(artifact_uri).absolute()
    return None


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default
