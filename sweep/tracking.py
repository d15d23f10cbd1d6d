"""MLflow recording of a sweep: the driver's bookkeeping (:class:`Tracker`).

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
arrives, so logging overlaps the trials still running. A driver killed mid-sweep leaves RUNNING
child runs, which the next invocation (or a live driver that needs their keys) marks KILLED and
redoes (:meth:`Tracker.close_stale`). Several drivers on one store run each key once: the
protocol is one page of ``docs/architecture.md`` ("Claims"); the view of the other drivers is
:class:`sweep.claims.ClaimView`. Every write of a trial run goes through one
:class:`sweep.writers.RunWriter` (SQL, the server's routes, or MLflow's store API), chosen once
when the Tracker is made. Resume reads the keys of FINISHED child runs
(:meth:`Tracker.finished_keys`: one SQL query on a SQL store).

Where the store is and how it is opened (default URI, checks, atomic creation of a SQLite
store, the lock between drivers, client, paged search) is :mod:`sweep.store`.
"""

from __future__ import annotations

import functools
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from sweep.claims import LIVE_SWEEPS, TAG_HEARTBEAT, ClaimView, spread
from sweep.interrupts import Deferred
from sweep.schema import (
    TAG_DRIVER,
    TAG_EXPERIMENT,
    TAG_GIT_COMMIT,
    TAG_GRID,
    TAG_KIND,
    TAG_RESULT_REF,
    TAG_SWEEP_ID,
    TAG_TRIAL_KEY,
    TAG_VERSIONS,
    TrialResult,
    TrialSpec,
)
from sweep.sqlstore import Claim
from sweep.store import (
    KIND_SWEEP,
    KIND_TRIAL,
    TAG_PARENT,
    TRIAL_FILTER,
    Store,
    StoreError,
    StoreFault,
    open_store,
    resolve_store,
    safe_uri,
    search_runs,
    tracking_store,
    ui_command,
)
from sweep.writers import RESULTS_DIR, SEARCH_PAGE, Item, make_writer, trial_entities, trial_rows

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


class _Guard:
    """The store-fault gate of one sweep: every request goes through :meth:`call`, which counts
    it and, once the store has failed (:meth:`failed`), refuses it — each would sit in
    retries — with the sweep's :class:`~sweep.store.StoreFault`: one sentence saying what was
    recorded and how to resume."""

    def __init__(self, uri: str, stats: _Stats, lock: threading.Lock) -> None:
        self.uri, self.stats, self.lock = uri, stats, lock
        self.fault: str | None = None  # the store's first failure during the sweep

    def refusal(self) -> StoreFault:
        return StoreFault(
            f"the MLflow store {safe_uri(self.uri)} failed during the sweep ({self.fault}); "
            f"{self.stats.runs} trial(s) were recorded, {self.stats.lost} computed result(s) "
            "were not; once the store works again, run the same command to resume (it runs "
            "those again)."
        )

    def failed(self, exc: BaseException) -> StoreFault:
        """Note the store's first failure; the StoreFault that stops the sweep."""
        with self.lock:
            if self.fault is None:
                self.fault = _reason(exc)
        return self.refusal()

    def check(self) -> None:
        if self.fault:
            raise self.refusal()

    def call(self, fn, *args, **kwargs):
        self.check()
        with self.lock:
            self.stats.calls += 1
        return fn(*args, **kwargs)


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
            raise self.guard.failed(exc) from exc

    return wrapped


class Tracker:
    """The driver's bookkeeping for one sweep invocation: its parent run and heartbeat, its
    claims on trial keys, and the queue of results its writer threads empty into the store.

    Construction opens (or creates) the store and the experiment once, before any trial starts,
    and chooses the write path (:func:`sweep.writers.make_writer`; ``fast=False``: MLflow's
    store API). ``start`` opens the parent run, its heartbeat and the writer threads; ``claim``
    (or ``claimed``) creates a RUNNING child run per trial before it is dispatched; ``record``
    queues a result for the writers; ``finish`` drains the queue and closes the parent run.
    Claims follow the protocol of ``docs/architecture.md`` ("Claims": ``settle``, ``stale_after``,
    ``heartbeat_every``; :class:`sweep.claims.ClaimView`). Against a server ``writers`` threads
    write in parallel (default 8); SQLite takes one.
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
        fast: bool = True,
    ) -> None:
        self.store = store
        # checks the store (one sentence, sweep.store.StoreError), creates it atomically if
        # missing, and the experiment once, before any trial starts
        self.client, self.experiment_id = open_store(store, experiment)
        # MLflow's store API: one request per call, without the client's extra get_run calls
        self.api = tracking_store(store.uri, store.artifacts)
        remote = store.uri.startswith(("http://", "https://"))
        self.writers = max(1, writers or (8 if remote else 1))
        self.settle = float(settle if settle is not None else (3.0 if remote else 1.0))
        self.heartbeat_every = heartbeat_every
        self.poll_every = poll_every
        self.experiment = experiment
        self.parent_id: str | None = None
        self.sweep_id = uuid.uuid4().hex[:12]
        self.driver = f"{socket.gethostname()}:{os.getpid()}"
        self.stats = _Stats()
        self._env = environment_tags()
        self._env.update(mlflow_source_tags(self._env[TAG_GIT_COMMIT]))
        self._trial_tags: dict[str, str] = {}  # every claim's tags but its key's (start)
        self.axes: tuple[str, ...] = ()  # what varies over the sweep: names the child runs
        self._lock = threading.Lock()  # stats, claims, view
        self._claims: dict[str, Claim] = {}  # key -> this driver's claim not yet recorded
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        self.guard = _Guard(store.uri, self.stats, self._lock)
        self.view = ClaimView(self._runs, sweep_id=self.sweep_id, settle=self.settle,
                              stale_after=stale_after, lock=self._lock)  # fmt: skip
        self.writer = make_writer(store, self.client, self.api, self.experiment_id, fast=fast,
                                  sweep_id=self.sweep_id, user=_user(), call=self.guard.call,
                                  threads=self.writers)  # fmt: skip
        self._recorder = _Recorder(self, max(1, group))

    @property
    def fault(self) -> str | None:
        """The store's first failure during the sweep (None while it works)."""
        return self.guard.fault

    def _runs(self, filter_string: str, *, deleted: bool = False) -> list:
        """Every run of the experiment matching ``filter_string`` (``deleted``: those in the
        bin too), each page a counted request."""
        return search_runs(self.client, self.experiment_id, filter_string, page_size=SEARCH_PAGE,
                           deleted=deleted, call=self.guard.call)  # fmt: skip

    # ------------------------------------------------------------ resume

    @_store_faults
    def finished_keys(self) -> set[str]:
        """Keys of trials with a FINISHED child run in this experiment (the writer's read: one
        SQL query on a SQL store or through the server's app, else ``search_runs``)."""
        self.view.snapshot = time.time()
        return self.writer.finished_keys()

    def trial_runs(self, filter_string: str = TRIAL_FILTER) -> list:
        """Every child run of this experiment (any status; or every run matching
        ``filter_string``), for inspection and tests."""
        return search_runs(self.client, self.experiment_id, filter_string, page_size=SEARCH_PAGE)

    @_store_faults
    def close_stale(self) -> int:
        """Mark KILLED every run left RUNNING by a driver that is gone; returns how many.

        Runs of a live driver (another sweep in progress: on this host its process exists, on
        another its heartbeat is younger than ``stale_after``) are left alone."""
        stale = self.view.stale_runs(self.trial_runs("attributes.status = 'RUNNING'"))
        self.writer.kill(stale)
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

        self.view.rerun = rerun
        self.axes = tuple(axes)
        tags = {TAG_GRID: self.experiment, TAG_SWEEP_ID: self.sweep_id, TAG_DRIVER: self.driver,
                **self._env}  # fmt: skip
        run = self.client.create_run(
            self.experiment_id,
            tags={TAG_KIND: KIND_SWEEP, **tags, TAG_HEARTBEAT: f"{time.time():.3f}"},
            run_name=f"{self.experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
        )
        self.parent_id = run.info.run_id
        self._trial_tags = {TAG_KIND: KIND_TRIAL, **tags, TAG_PARENT: self.parent_id}
        self.writer.bind(self.parent_id, run.info.artifact_uri)
        LIVE_SWEEPS.add(self.sweep_id)
        self.client.log_batch(
            self.parent_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
        )
        if config_text:
            self.client.log_text(self.parent_id, config_text, "sweep_config.yaml")
        self._heart = threading.Thread(target=self._heartbeat, name="sweep-heartbeat", daemon=True)
        self._heart.start()
        self._recorder.start(self.writers)
        return self.parent_id

    def _heartbeat(self) -> None:
        from mlflow.entities import RunTag

        while not self._stop.wait(self.heartbeat_every):
            try:
                beat = RunTag(TAG_HEARTBEAT, f"{time.time():.3f}")
                self.guard.call(self.api.set_tag, self.parent_id, beat)
            except Exception:  # a missed beat is retried at the next one
                pass

    # ------------------------------------------------------------ claims

    def run_name(self, spec: TrialSpec) -> str:
        """The name of ``spec``'s child run (:func:`run_name` over this sweep's axes)."""
        return child_run_name(spec, self.axes, self.experiment)

    def _claim(self, specs: list[TrialSpec]) -> list[Claim]:
        """RUNNING child runs for ``specs``, each made in at most ``settle / 2`` s."""
        rows = [(self.run_name(s), {**self._trial_tags, TAG_TRIAL_KEY: s.key,
                                    TAG_EXPERIMENT: s.experiment}) for s in specs]  # fmt: skip
        claims = self.writer.claim(rows, self.settle / 2)
        with self._lock:
            self.stats.claimed += len(claims)
        return claims

    def claim(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """Claim ``specs`` for this driver before they are dispatched; returns those it got.

        Keys FINISHED or claimed by another live driver (as of a poll at most ``poll_every`` s
        old) are left out; for the others a RUNNING child run is created (the run the result is
        written into). Races between drivers that claim the same key at the same moment are
        settled when the result is recorded."""
        if self.parent_id is None:
            raise RuntimeError("Tracker.claim called before Tracker.start")
        self.guard.check()
        # Ctrl-C / SIGTERM is held while the claims are created and registered: one landing
        # between the store's insert and the registration left a RUNNING child run that
        # ``finish`` never withdrew (CI, stop 25); it is raised once they are registered
        with Deferred() as held:
            try:
                self.view.poll(time.time() - self.poll_every)
                with self._lock:
                    mine = [s for s in specs if s.key not in self._claims]
                    todo = [s for s in mine if not self.view.blocked(s.key, None)]
                    self.stats.elsewhere += len(mine) - len(todo)
                claims = self._claim(todo)
            except Exception as exc:
                raise self.guard.failed(exc) from exc
            with self._lock:
                for spec, c in zip(todo, claims, strict=True):
                    self._claims[spec.key] = c
        held.reraise()
        return todo

    def claimed(self, groups) -> Iterator[list[TrialSpec]]:
        """``claim`` each batch of ``groups`` as it is taken (lazily), starting at an offset of
        this driver's own (:func:`sweep.claims.spread`); empty batches are left out."""
        return spread(groups, self.sweep_id, self.claim, lambda: self.stats.elsewhere)

    # ------------------------------------------------------------ results

    def record(self, spec: TrialSpec, result: TrialResult) -> None:
        """Queue one trial for the writer threads (returns at once). Raises
        :class:`~sweep.store.StoreFault` once the store has failed: the sweep stops."""
        if not self._recorder.threads:
            raise RuntimeError("Tracker.record called before Tracker.start")
        if self.fault:
            with self._lock:
                self.stats.lost += 1
            raise self.guard.refusal()
        with self._lock:
            claim = self._claims.get(spec.key)
        self._recorder.queue.put(Item(spec, result, claim))

    def pending(self) -> int:
        """Trials queued but not yet written."""
        return self._recorder.queue.qsize()

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

        self._recorder.join()
        self._stop.set()
        if self._heart is not None:
            self._heart.join(timeout=None if self.fault is None else 1.0)
            self._heart = None
        if self.fault:
            LIVE_SWEEPS.discard(self.sweep_id)
            raise self.guard.refusal()
        with self._lock:
            left = [c.run_id for c in self._claims.values()]
            self._claims.clear()
        now = int(time.time() * 1000)
        try:  # claims of trials whose results never came (Ctrl-C, a driver error): withdrawn
            self.writer.withdraw(left)
        except Exception as exc:
            LIVE_SWEEPS.discard(self.sweep_id)
            raise self.guard.failed(exc) from exc
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
                self.guard.call(self.client.log_text, self.parent_id, text, name)
            self.guard.call(
                self.api.update_run_info,
                self.parent_id,
                RunStatus.from_string(status if isinstance(status, str) else status()),
                int(time.time() * 1000),
                None,
            )
        LIVE_SWEEPS.discard(self.sweep_id)


class _Recorder:
    """A Tracker's writer threads: each takes every queued result, makes a claim for a result
    recorded without one, waits until the claims are settled (:meth:`ClaimView.settled`) and
    writes them in groups of at most ``group``: claims another driver owns withdrawn, earlier
    claims of drivers that are gone taken over, the winners recorded
    (:meth:`ClaimView.settle_group`, the tracker's :class:`~sweep.writers.RunWriter`). Once the
    store has failed nothing more is written (the results are counted lost; resume reruns them).
    """

    def __init__(self, tracker: Tracker, group: int) -> None:
        self.t = tracker
        self.group = group
        self.queue: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_since = 0.0

    def start(self, n: int) -> None:
        self.threads = [
            threading.Thread(target=self._run, name=f"mlflow-writer-{i}", daemon=True)
            for i in range(n)
        ]
        for th in self.threads:
            th.start()

    def join(self) -> None:
        """Every queued result written (or counted lost); the threads ended."""
        for _ in self.threads:
            self.queue.put(None)
        for th in self.threads:
            th.join()
        self.threads = []

    def _more(self, held: list[Item]) -> bool:
        """More queued results into ``held``, without waiting (up to ``50 * group`` held);
        whether the end-of-queue sentinel was taken."""
        while len(held) < 50 * self.group:
            try:
                nxt = self.queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            held.append(nxt)
        return False

    def _run(self) -> None:
        t, held, stop = self.t, [], False
        while True:
            if not held:
                if stop:  # the sentinel this writer took, for no one else: harmless
                    self.queue.put(None)
                    return
                item = self.queue.get()
                if item is None:
                    return
                held.append(item)
            if not stop:
                stop = self._more(held)
            if t.fault:  # nothing more is written once the store failed (resume reruns them)
                with t._lock:
                    t.stats.lost += len(held)
                held = []
                continue
            with t._lock:
                if self._busy == 0:
                    self._busy_since = time.perf_counter()
                self._busy += 1
            group: list[Item] = []
            try:
                bare = [it for it in held if it.claim is None]  # recorded without a claim
                for it, claim in zip(bare, t._claim([it.spec for it in bare]), strict=True):
                    it.claim = claim
                    with t._lock:
                        t._claims[it.spec.key] = claim
                group = t.view.settled(held)[: self.group]
                taken = {id(it) for it in group}
                held = [it for it in held if id(it) not in taken]
                self._write_group(group)
            except Exception as exc:  # the store failed: the sweep stops (StoreFault), resumable
                t.guard.failed(exc)
                with t._lock:
                    t.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    t.stats.lost += len(group) + len(held)
                held = []
            finally:
                with t._lock:
                    self._busy -= 1
                    if self._busy == 0:
                        t.stats.seconds += time.perf_counter() - self._busy_since

    def _write_group(self, items: list[Item]) -> None:
        """Settle the claims of ``items`` (polled already) and write the winners."""
        if not items:
            return
        t = self.t
        winners, losers, killed = t.view.settle_group(
            items, functools.partial(t.guard.call, t.api.get_run)
        )
        t.writer.withdraw([it.claim.run_id for it in losers])
        t.writer.kill(killed)  # a dead driver's claims on keys this one now records
        t.writer.record(winners)
        with t._lock:
            t.stats.dropped += len(losers)
            t.stats.taken_over += len(killed)
            t.stats.runs += len(winners)
            for it in items:
                t._claims.pop(it.spec.key, None)


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


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"
