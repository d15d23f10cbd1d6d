"""How a sweep's trial runs reach the store: one interface, one implementation per write path,
chosen once per :class:`sweep.tracking.Tracker` (:func:`make_writer`).

:class:`RunWriter` is every store operation the sweep makes on trial runs:

- ``claim(rows, within)``: RUNNING child runs that claim trial keys (``rows``: run name and tags
  each), each made again (the late one withdrawn) while making it took longer than ``within``
  seconds — the claims protocol's bound on how long a claim may stay invisible;
- ``record(items)``: the results of claimed trials — params, metrics and curve points, result
  tags, ``trial.json`` / ``traceback.txt`` (or, where artifacts are not a local folder, one
  JSON-lines artifact of the parent run for the group), then FINISHED / FAILED;
- ``withdraw(run_ids)``: claims taken back (KILLED, then deleted);
- ``kill(run_ids)``: RUNNING runs of drivers that are gone marked KILLED (the liveness half of
  the protocol: their keys are taken over);
- ``finished_keys()``: the keys with a FINISHED child run (what resume skips);

plus ``bind(parent_id, artifact_uri)`` once the parent run exists. The implementations:

- :class:`SqlRunWriter`: a SQL store the driver opens itself (the embedded SQLite store, or a
  database URL as ``tracking.uri``) whose tables are the ones :class:`sweep.sqlstore.SqlWriter`
  writes — many runs per transaction;
- :class:`HttpRunWriter`: a tracking server that runs the ``dualsweep`` app
  (:mod:`sweep.serverapp`) — the same SqlWriter calls, one POST per group;
- :class:`MlflowWriter`: any other store (a stock server, a SQL store whose tables differ —
  saying so in one line on stderr, a file store) — MLflow's store API, three requests per trial.

The writers make their requests through ``call(fn, *args)`` (the Tracker's: it counts them and
refuses once the store failed). Their ``api`` is MLflow's store object for the URI
(:func:`sweep.store.tracking_store`), ``client`` an ``MlflowClient`` (artifacts, searches).
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from sweep.schema import (
    ARTIFACT_RESULT,
    ARTIFACT_TRACEBACK,
    CURVE_PREFIX,
    TAG_DEVICE,
    TAG_FAMILY,
    TAG_NODE_ID,
    TAG_NOT_COVERED,
    TAG_RESULT_REF,
    TAG_STATUS,
    TAG_TRIAL_KEY,
    TrialResult,
    TrialSpec,
)
from sweep.sqlstore import Claim, HttpWriter, SqlWriter
from sweep.store import TRIAL_FILTER, Store, search_runs

__all__ = [
    "RESULTS_DIR",
    "SEARCH_PAGE",
    "HttpRunWriter",
    "Item",
    "MlflowWriter",
    "RunWriter",
    "SqlRunWriter",
    "make_writer",
    "trial_entities",
    "trial_rows",
]

RESULTS_DIR = "results"  # parent run's artifact folder of JSON-lines results (servers)
SEARCH_PAGE = 5000  # runs per search_runs page
_MAX_TAG = 5000  # MLflow's tag value limit is 8000 characters

ClaimRow = tuple[str, dict[str, str]]  # (run name, tags) of one claim


@dataclass
class Item:
    """A trial's result, with the claim (its RUNNING child run) it is written into."""

    spec: TrialSpec
    result: TrialResult
    claim: Claim | None


class RunWriter(Protocol):
    """The store operations of a sweep on its trial runs (module docstring)."""

    kind: str  # "sql", "http" or "mlflow"

    def bind(self, parent_id: str, artifact_uri: str) -> None: ...

    def claim(self, rows: list[ClaimRow], within: float) -> list[Claim]: ...

    def record(self, items: list[Item]) -> None: ...

    def withdraw(self, run_ids: list[str]) -> None: ...

    def kill(self, run_ids: list[str]) -> None: ...

    def finished_keys(self) -> set[str]: ...


def _direct(fn, *args, **kwargs):
    return fn(*args, **kwargs)


class _Writer(ABC):
    """What the three write paths share: the parent run's results chunks, a trial's payload and
    artifacts, the retry of a late claim, and ``finished_keys`` through ``search_runs``."""

    kind = ""

    def __init__(
        self,
        client,
        api,
        experiment_id: str,
        *,
        sweep_id: str,
        user: str,
        call: Callable = _direct,
        threads: int = 1,
    ) -> None:
        self.client, self.api = client, api
        self.experiment_id = experiment_id
        self.sweep_id, self.user = sweep_id, user
        self.call = call
        self.threads = threads
        self.parent: str | None = None
        self.chunked = True  # results as JSON-lines chunks of the parent run (bind decides)
        self._chunks = 0
        self._lock = threading.Lock()

    def bind(self, parent_id: str, artifact_uri: str) -> None:
        """The sweep's parent run (the owner of every claim). Results go up in JSON-lines chunks
        (one upload per group of trials) unless its artifact store is a local directory, where
        each ``trial.json`` is written directly."""
        self.parent = parent_id
        self.chunked = _local_folder(artifact_uri) is None

    def finished_keys(self) -> set[str]:
        runs = search_runs(
            self.client,
            self.experiment_id,
            f"{TRIAL_FILTER} and attributes.status = 'FINISHED'",
            page_size=SEARCH_PAGE,
        )
        return {r.data.tags[TAG_TRIAL_KEY] for r in runs if TAG_TRIAL_KEY in r.data.tags}

    def record(self, items: list[Item]) -> None:
        if items:
            self._record(items, self._upload_results(items) if self.chunked else None)

    @abstractmethod
    def _record(self, items: list[Item], ref: str | None) -> None:
        """Write the results of ``items`` (``ref``: their JSON-lines chunk, or None)."""

    @abstractmethod
    def withdraw(self, run_ids: list[str]) -> None:
        """Take back the claims ``run_ids``: KILLED (so pollers see them end), then deleted."""

    def _timely(self, make: Callable[[int], list[Claim]], within: float) -> list[Claim]:
        """``make(start_ms)``'s claims, made again (the late ones withdrawn: other drivers may
        have polled before they were visible) while making them took longer than ``within`` s;
        the fourth try is kept whatever it took."""
        for attempt in range(4):
            t0 = time.time()
            claims = make(int(t0 * 1000))
            if time.time() - t0 <= within or attempt == 3:
                return claims
            self.withdraw([c.run_id for c in claims])
        raise AssertionError("unreachable")

    def _upload_results(self, items: list[Item]) -> str:
        """One JSON-lines artifact of the parent run with the results of ``items``; returns
        the reference each child's ``trial_json`` tag carries."""
        with self._lock:
            self._chunks += 1
            name = f"{RESULTS_DIR}/{self.sweep_id}-{self._chunks:06d}.jsonl"
        text = "".join(it.result.to_json() + "\n" for it in items)
        self.call(self.client.log_text, self.parent, text, name)
        return f"runs:/{self.parent}/{name}"

    def _payload(self, it: Item, ref: str | None) -> tuple[list, list, list]:
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

    def _artifacts(self, it: Item) -> None:
        if not self.chunked:
            self._artifact(it.claim, ARTIFACT_RESULT, it.result.to_json())
        if it.result.status == "failed":
            self._artifact(it.claim, ARTIFACT_TRACEBACK, it.result.error or "(no traceback)")

    def _artifact(self, claim: Claim, name: str, text: str) -> None:
        """A text artifact; written straight to disk for a local (file://) artifact store."""
        folder = _local_folder(claim.artifact_uri)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        else:
            self.call(self.client.log_text, claim.run_id, text, name)


class MlflowWriter(_Writer):
    """MLflow's store API, one run at a time: ``create_run`` per claim, ``log_batch`` (split at
    MLflow's limits) and ``update_run_info`` per result — straight to the store object
    (``MlflowClient.set_terminated`` would add a ``get_run`` per run against a server). Claims,
    withdrawals and kills go out on ``threads`` threads."""

    kind = "mlflow"

    def claim(self, rows: list[ClaimRow], within: float) -> list[Claim]:
        from mlflow.entities import RunTag

        def one(row: ClaimRow) -> Claim:
            name, tags = row
            entities = [RunTag(k, v) for k, v in tags.items()]
            return self._timely(lambda start: [self._create(name, entities, start)], within)[0]

        return self._map(one, rows)

    def _create(self, name: str, tags: list, start: int) -> Claim:
        run = self.call(self.api.create_run, self.experiment_id, self.user, start, tags, name)
        return Claim(run.info.run_id, start, run.info.artifact_uri)

    def withdraw(self, run_ids: list[str]) -> None:
        from mlflow.entities import RunStatus

        def one(run_id: str) -> None:
            self.call(
                self.api.update_run_info, run_id, RunStatus.KILLED, int(time.time() * 1000), None
            )
            self.call(self.api.delete_run, run_id)

        self._map(one, run_ids)

    def kill(self, run_ids: list[str]) -> None:
        from mlflow.entities import RunStatus

        now = int(time.time() * 1000)
        self._map(
            lambda rid: self.call(self.api.update_run_info, rid, RunStatus.KILLED, now, None),
            run_ids,
        )

    def _record(self, items: list[Item], ref: str | None) -> None:
        from mlflow.entities import Metric, Param, RunStatus, RunTag

        for it in items:
            run_id = it.claim.run_id
            mets, pars, tgs = self._payload(it, ref)
            metrics = [Metric(*m) for m in mets]
            params = [Param(*p) for p in pars]
            tag_list = [RunTag(*t) for t in tgs]
            # MLflow's limits per log_batch: 100 params + tags, 1000 entities in all
            first = 1000 - len(params[:100]) - len(tag_list)
            self.call(self.api.log_batch, run_id, metrics[:first], params[:100], tag_list)
            for i in range(100, len(params), 100):
                self.call(self.api.log_batch, run_id, [], params[i : i + 100], [])
            for i in range(first, len(metrics), 1000):
                self.call(self.api.log_batch, run_id, metrics[i : i + 1000], [], [])
            self._artifacts(it)
            status = RunStatus.FAILED if it.result.status == "failed" else RunStatus.FINISHED
            self.call(self.api.update_run_info, run_id, status, int(time.time() * 1000), None)

    def _map(self, fn, items: list) -> list:
        if self.threads == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.threads, len(items))) as pool:
            return list(pool.map(fn, items))


class _Batched(_Writer):
    """Many runs per request through ``ops`` (:class:`~sweep.sqlstore.SqlWriter`'s calls:
    ``create``, ``finish``, ``withdraw``, ``kill``, ``finished_keys``)."""

    def __init__(self, ops, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ops = ops

    def claim(self, rows: list[ClaimRow], within: float) -> list[Claim]:
        if not rows:
            return []
        return self._timely(
            lambda start: self.call(
                self.ops.create,
                [(uuid.uuid4().hex, name, start, tags, self.user) for name, tags in rows],
            ),
            within,
        )

    def withdraw(self, run_ids: list[str]) -> None:
        if run_ids:
            self.call(self.ops.withdraw, run_ids)

    def kill(self, run_ids: list[str]) -> None:
        if run_ids:  # one statement, however many a killed driver left
            self.call(self.ops.kill, run_ids)

    def finished_keys(self) -> set[str]:
        """One query over MLflow's ``runs`` and ``tags`` tables (:func:`sweep.sqlstore.
        finished_keys`: 0.1 s for 100,000 runs, where ``search_runs`` materialises every param
        and metric); a schema that query does not fit: through ``search_runs``."""
        with contextlib.suppress(Exception):
            return self.call(self.ops.finished_keys)
        return super().finished_keys()

    def _record(self, items: list[Item], ref: str | None) -> None:
        rows = []
        for it in items:
            metrics, params, tags = self._payload(it, ref)
            self._artifacts(it)
            status = "FAILED" if it.result.status == "failed" else "FINISHED"
            rows.append((it.claim.run_id, metrics, params, tags, status))
        self.call(self.ops.finish, rows)


class SqlRunWriter(_Batched):
    """A SQL store the driver opens itself: :class:`~sweep.sqlstore.SqlWriter` on its engine."""

    kind = "sql"

    def __init__(self, client, api, experiment_id: str, **kwargs) -> None:
        super().__init__(SqlWriter(api, experiment_id), client, api, experiment_id, **kwargs)

    def _record(self, items: list[Item], ref: str | None) -> None:
        super()._record(items, ref)
        # the UI's duration: the trial's, not its queue's
        now = time.time()  # a worker's clock ahead of this one's: no start after the end
        starts = [(it.claim.run_id, int(min(it.result.started_at, now) * 1000))
                  for it in items if it.result.started_at is not None]  # fmt: skip
        self.call(self.ops.start_times, starts)


class HttpRunWriter(_Batched):
    """A server that runs the ``dualsweep`` app: :class:`~sweep.sqlstore.HttpWriter`, each call
    one POST that the server writes in one transaction."""

    kind = "http"

    def __init__(self, client, api, experiment_id: str, **kwargs) -> None:
        super().__init__(HttpWriter(api, experiment_id), client, api, experiment_id, **kwargs)

    def bind(self, parent_id: str, artifact_uri: str) -> None:
        super().bind(parent_id, artifact_uri)
        self.ops.parent = parent_id  # the server checks that each claim's parent is it


def make_writer(
    store: Store, client, api, experiment_id: str, *, fast: bool = True, **kwargs
) -> RunWriter:
    """The write path for ``store``, chosen once: SQL where ``api`` is MLflow's SQL store with
    the tables :class:`~sweep.sqlstore.SqlWriter` writes; the routes where the server at an
    ``http(s)://`` URI answers ``{API}/info`` with a SQL backend; else MLflow's store API
    (``fast=False``: always), with one warning line when a SQL store is written that way.
    ``kwargs``: ``sweep_id``, ``user``, ``call``, ``threads``."""
    if fast and SqlWriter.usable(api):
        return SqlRunWriter(client, api, experiment_id, **kwargs)
    remote = store.uri.startswith(("http://", "https://"))
    if fast and remote and HttpWriter.available(api):
        return HttpRunWriter(client, api, experiment_id, **kwargs)
    if fast:
        _warn_slow_path(api)
    return MlflowWriter(client, api, experiment_id, **kwargs)


def _warn_slow_path(api) -> None:
    """One line on stderr when a SQL store is written without :class:`SqlWriter`'s fast path
    (an MLflow whose tables differ from the ones it was tested against: 3 requests per trial)."""
    why = SqlWriter.mismatch(api)
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


def _local_folder(artifact_uri: str) -> Path | None:
    """The directory of a local artifact location (``file://`` URI or plain path), else None."""
    parts = urlparse(artifact_uri)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    if parts.scheme == "" and artifact_uri:
        return Path(artifact_uri).absolute()
    return None
