"""Many trial runs per transaction into MLflow's SQL tables — in the driver, or in the server.

MLflow's store API writes one run in three requests (``create_run``, ``log_batch``,
``update_run_info``), each its own transaction. A sweep records thousands of small runs, so
:class:`SqlWriter` writes the rows of many runs in one transaction through SQLAlchemy Core on
MLflow's own table definitions (``mlflow.store.tracking.dbmodels.models``), exactly as
``SqlAlchemyStore`` would write them one by one. It is used

- by the driver on a SQL store it opens itself (the embedded SQLite store, or a database URI
  given as ``tracking.uri``), and
- by the tracking server, through the ``dualsweep`` server app (:mod:`sweep.serverapp`:
  ``mlflow server --app-name dualsweep``, the default of ``cluster/mlflow-server.sh``), which
  takes the same rows as JSON at ``/dualsweep/api/1/<op>``; :class:`HttpWriter` is the
  driver's side of it. Against a stock server the driver keeps to MLflow's REST API.

Rows are plain JSON-able tuples:

- claims (``create``): ``(run_id, name, start_ms, {tag: value}, user)``;
- results (``finish``): ``(run_id, [(key, value, timestamp_ms, step)], [(key, value)],
  [(key, value)], status)`` — metrics, params, tags, FINISHED or FAILED.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sweep.schema import TAG_KIND, TAG_TRIAL_KEY

TAG_PARENT = "mlflow.parentRunId"  # MLflow's tag naming a child run's parent (sweep.store too)

__all__ = ["API", "Claim", "HttpWriter", "SqlWriter", "finished_keys"]

API = "/dualsweep/api/1"  # the server app's routes: {API}/info (GET), {API}/<op> (POST)
API_VERSION = 1
_IN_CHUNK = 10000  # ids per IN (...) clause: below SQLite's bound on parameters per statement

CreateRow = tuple[str, str, int, dict[str, str], str]
FinishRow = tuple[str, list, list, list, str]


@dataclass
class Claim:
    """A RUNNING child run that claims one trial key."""

    run_id: str
    start_ms: int  # the run's start_time: claims are ordered by (start_ms, run_id)
    artifact_uri: str


def finished_keys(engine, experiment_id: str | int) -> set[str]:
    """Trial keys with a FINISHED, active child run in ``experiment_id``: one query over
    MLflow's ``runs`` and ``tags`` tables (only child runs carry the ``trial_key`` tag; the
    tags' primary key ``(key, run_uuid)`` is the index it walks)."""
    from mlflow.store.tracking.dbmodels import models
    from sqlalchemy import select

    runs, tags = models.SqlRun.__table__, models.SqlTag.__table__
    query = (
        select(tags.c.value)
        .join(runs, runs.c.run_uuid == tags.c.run_uuid)
        .where(
            tags.c.key == TAG_TRIAL_KEY,
            runs.c.experiment_id == int(experiment_id),
            runs.c.status == "FINISHED",
            runs.c.lifecycle_stage == "active",
        )
    )
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(query)}


class SqlWriter:
    """Many runs per transaction into a SQL-backed MLflow store (``SqlAlchemyStore``): rows
    exactly as ``create_run`` / ``log_batch`` / ``update_run_info`` write them (the
    ``mlflow.runName`` tag; NaN as ``is_nan``; ``latest_metrics`` = each key's entry with the
    largest ``(step, timestamp, value)``), in one transaction per call instead of three per
    run. :meth:`usable` checks the installed MLflow's tables first; where they differ the
    caller keeps to MLflow's store API."""

    _COLUMNS = {
        "runs": {"run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
                 "status", "start_time", "end_time", "deleted_time", "source_version",
                 "lifecycle_stage", "artifact_uri", "experiment_id"},
        "tags": {"key", "value", "run_uuid"},
        "params": {"key", "value", "run_uuid"},
        "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
        "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    }  # fmt: skip

    def __init__(self, store, experiment_id: str | int) -> None:
        from mlflow.store.tracking.dbmodels import models

        self.engine = store.engine
        self.experiment_id = int(experiment_id)
        dialect = self.engine.dialect
        self._copy = dialect.name == "postgresql" and dialect.driver == "psycopg2"
        self.location = store.get_experiment(str(experiment_id)).artifact_location.rstrip("/")
        self.t = {
            "runs": models.SqlRun.__table__,
            "tags": models.SqlTag.__table__,
            "params": models.SqlParam.__table__,
            "metrics": models.SqlMetric.__table__,
            "latest_metrics": models.SqlLatestMetric.__table__,
        }

    @classmethod
    def usable(cls, store) -> bool:
        """Whether ``store`` is MLflow's ``SqlAlchemyStore`` with the tables this writes."""
        return cls.mismatch(store) is None

    @classmethod
    def mismatch(cls, store) -> str | None:
        """Why :class:`SqlWriter` cannot write ``store`` (a phrase), None when it can: not
        MLflow's ``SqlAlchemyStore``, or the installed MLflow's tables have other columns."""
        try:
            from mlflow.store.tracking.dbmodels import models
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        except ImportError:
            return "MLflow's SQL store cannot be imported"
        if not isinstance(store, SqlAlchemyStore):
            return f"the store is {type(store).__name__}, not MLflow's SqlAlchemyStore"
        tables = {
            "runs": models.SqlRun,
            "tags": models.SqlTag,
            "params": models.SqlParam,
            "metrics": models.SqlMetric,
            "latest_metrics": models.SqlLatestMetric,
        }
        for name, cols in cls._COLUMNS.items():
            have = {c.name for c in tables[name].__table__.columns}
            if have != cols:
                diff = sorted(have ^ cols)
                return f"MLflow's table {name} differs in columns {', '.join(diff)}"
        return None

    def finished_keys(self) -> set[str]:
        return finished_keys(self.engine, self.experiment_id)

    def _insert(self, conn, table, rows: list[dict]) -> None:
        """``rows`` into ``table`` within ``conn``'s transaction: PostgreSQL through psycopg2
        takes them as one ``COPY … FROM STDIN`` (CSV; ~4× fewer server CPU seconds per row
        than multi-row INSERTs: BENCHMARKS.md), any other database as an executemany INSERT."""
        if not rows:
            return
        if self._copy:
            import csv
            import io

            cols = list(rows[0])
            buf = io.StringIO()
            # strings quoted ("" is an empty string, an unquoted empty field NULL), numbers not
            out = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
            out.writerows([r[c] for c in cols] for r in rows)
            buf.seek(0)
            names = ", ".join(f'"{c}"' for c in cols)
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.copy_expert(
                    f"COPY {table.name} ({names}) FROM STDIN (FORMAT csv)",
                    buf,
                )
            finally:
                cursor.close()
            return
        conn.execute(table.insert(), rows)

    def create(self, rows: list[CreateRow]) -> list[Claim]:
        """Insert RUNNING runs ``(run_id, name, start_ms, tags, user)`` in one transaction."""
        claims, runs, tags = [], [], []
        for run_id, name, start, run_tags, user in rows:
            uri = f"{self.location}/{run_id}/artifacts"
            runs.append(
                {
                    "run_uuid": run_id,
                    "name": name,
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": user,
                    "status": "RUNNING",
                    "start_time": int(start),
                    "end_time": None,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": uri,
                    "experiment_id": self.experiment_id,
                }  # fmt: skip
            )
            for k, v in {**run_tags, "mlflow.runName": name}.items():
                tags.append({"key": k, "value": v, "run_uuid": run_id})
            claims.append(Claim(run_id, int(start), uri))
        with self.engine.begin() as conn:
            conn.execute(self.t["runs"].insert(), runs)
            conn.execute(self.t["tags"].insert(), tags)
        return claims

    def start_times(self, starts: list[tuple[str, int]]) -> None:
        """Move the start time of ended runs to ``(run_id, start_ms)`` — the trial's real
        start, later than its claim — in one transaction. Only runs no longer RUNNING and only
        later: the order of live claims (by start time) is never changed."""
        from sqlalchemy import and_, bindparam

        runs = self.t["runs"]
        if not starts:
            return
        stmt = (
            runs.update()
            .where(
                and_(
                    runs.c.run_uuid == bindparam("rid"),
                    runs.c.status != "RUNNING",
                    runs.c.start_time < bindparam("start"),
                )
            )
            .values(start_time=bindparam("start"))
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"rid": r, "start": int(s)} for r, s in starts])

    def kill(self, run_ids: list[str]) -> None:
        """RUNNING runs marked KILLED (ended now), in one transaction."""
        self._end(run_ids, running=True)

    def withdraw(self, run_ids: list[str]) -> None:
        """KILLED and deleted (as ``delete_run`` marks it), in one transaction."""
        self._end(run_ids, delete=True)

    def _end(self, run_ids: list[str], *, running: bool = False, delete: bool = False) -> None:
        """The runs ``run_ids`` of this experiment (``running``: those still RUNNING) KILLED,
        ended now (``delete``: and deleted), in one transaction."""
        from sqlalchemy import and_, select

        runs = self.t["runs"]
        with self.engine.begin() as conn:
            for i in range(0, len(run_ids), _IN_CHUNK):
                chosen = and_(
                    runs.c.run_uuid.in_(run_ids[i : i + _IN_CHUNK]),
                    runs.c.experiment_id == self.experiment_id,
                )
                if running:  # the ids first: the status changes under the first update
                    sel = and_(chosen, runs.c.status == "RUNNING")
                    ids = [r[0] for r in conn.execute(select(runs.c.run_uuid).where(sel))]
                    if not ids:
                        continue
                    chosen = runs.c.run_uuid.in_(ids)
                conn.execute(runs.update().where(chosen).values(status="KILLED"))  # write lock
                now = int(time.time() * 1000)  # taken after it: end_time ≈ the commit time
                gone = {"lifecycle_stage": "deleted", "deleted_time": now} if delete else {}
                conn.execute(runs.update().where(chosen).values(end_time=now, **gone))

    def finish(self, rows: list[FinishRow]) -> None:
        """For each ``(run_id, metrics, params, tags, status)``: its params, tags, metrics and
        latest metrics, then the status and end time of the runs still RUNNING — one
        transaction for all."""
        from sqlalchemy import and_

        params, tags, metrics, latest = [], [], [], []
        for run_id, mets, pars, tgs, _ in rows:
            params += [{"key": k, "value": v, "run_uuid": run_id} for k, v in pars]
            tags += [{"key": k, "value": v, "run_uuid": run_id} for k, v in tgs]
            seen: dict[tuple, dict] = {}
            best: dict[str, dict] = {}
            for key, value, ts, step in mets:
                value = float(value)
                nan = math.isnan(value)
                value = (
                    0.0 if nan else max(min(value, 1.7976931348623157e308), -1.7976931348623157e308)
                )
                row = {"key": key, "value": value, "timestamp": int(ts), "step": int(step),
                       "is_nan": nan, "run_uuid": run_id}  # fmt: skip
                seen[(key, row["timestamp"], row["step"], value, nan)] = row
                cur = best.get(key)
                if cur is None or (row["step"], row["timestamp"], value) > (
                    cur["step"],
                    cur["timestamp"],
                    cur["value"],
                ):
                    best[key] = row
            metrics += list(seen.values())
            latest += list(best.values())
        runs = self.t["runs"]
        with self.engine.begin() as conn:
            for name, data in (("params", params), ("tags", tags), ("metrics", metrics),
                               ("latest_metrics", latest)):  # fmt: skip
                self._insert(conn, self.t[name], data)
            # the write lock is held from the first insert: end_time is (within ms) the commit
            # time, which other drivers' polls by end_time rely on
            now = int(time.time() * 1000)
            for status in sorted({r[4] for r in rows}):
                ids = [r[0] for r in rows if r[4] == status]
                for i in range(0, len(ids), _IN_CHUNK):
                    conn.execute(
                        runs.update()
                        .where(
                            and_(
                                runs.c.run_uuid.in_(ids[i : i + _IN_CHUNK]),
                                runs.c.status == "RUNNING",
                                runs.c.experiment_id == self.experiment_id,
                            )
                        )  # fmt: skip
                        .values(status=status, end_time=now)
                    )

    def owners(self, run_ids: list[str]) -> dict[str, tuple[str, str | None, str | None]]:
        """``run_id -> (status, parent run id, run_kind)`` of the active runs of this experiment
        among ``run_ids`` (the others are missing from the answer)."""
        from sqlalchemy import and_, select

        runs, tags = self.t["runs"], self.t["tags"]
        parent, kind = tags.alias("parent"), tags.alias("kind")
        out = {}
        with self.engine.connect() as conn:
            for i in range(0, len(run_ids), _IN_CHUNK):
                query = (
                    select(runs.c.run_uuid, runs.c.status, parent.c.value, kind.c.value)
                    .outerjoin(
                        parent,
                        and_(parent.c.run_uuid == runs.c.run_uuid, parent.c.key == TAG_PARENT),
                    )
                    .outerjoin(
                        kind, and_(kind.c.run_uuid == runs.c.run_uuid, kind.c.key == TAG_KIND)
                    )
                    .where(
                        runs.c.run_uuid.in_(run_ids[i : i + _IN_CHUNK]),
                        runs.c.experiment_id == self.experiment_id,
                        runs.c.lifecycle_stage == "active",
                    )
                )
                out.update({r[0]: (r[1], r[2], r[3]) for r in conn.execute(query)})
        return out

    def taken(self, run_ids: list[str]) -> set[str]:
        """Those of ``run_ids`` that name a run already, in any experiment."""
        from sqlalchemy import select

        runs = self.t["runs"]
        out: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(run_ids), _IN_CHUNK):
                chunk = run_ids[i : i + _IN_CHUNK]
                out.update(r[0] for r in conn.execute(select(runs.c.run_uuid).where(
                    runs.c.run_uuid.in_(chunk))))  # fmt: skip
        return out


class HttpWriter:
    """:class:`SqlWriter`'s interface against a tracking server that runs the ``dualsweep``
    app: each call is one POST of JSON rows to ``{API}/<op>``, written by the server in one
    transaction (MLflow's own HTTP session, credentials, TLS settings, timeouts and retries)."""

    def __init__(self, rest_store, experiment_id: str) -> None:
        self.creds = rest_store.get_host_creds()
        self.experiment_id = str(experiment_id)
        self.parent: str | None = None  # the sweep's parent run, the owner of every claim
        # (set by sweep.writers.HttpRunWriter.bind; the server checks each claim against it)

    @staticmethod
    def available(rest_store) -> bool:
        """Whether the server answers ``{API}/info`` with this API version and a SQL backend it
        writes directly (one GET; a stock MLflow server answers 404)."""
        from mlflow.utils.rest_utils import http_request

        try:
            resp = http_request(
                rest_store.get_host_creds(), f"{API}/info", "GET", max_retries=0, timeout=10
            )
            info = resp.json() if resp.status_code == 200 else {}
            return info.get("version") == API_VERSION and info.get("sql") is True
        except Exception:
            return False

    def _post(self, op: str, body: dict) -> dict:
        from mlflow.utils.rest_utils import http_request

        body = {"experiment_id": self.experiment_id, "parent_run_id": self.parent, **body}
        resp = http_request(self.creds, f"{API}/{op}", "POST", json=body)
        if resp.status_code != 200:
            raise RuntimeError(
                f"the tracking server refused {API}/{op} (HTTP {resp.status_code}): "
                f"{resp.text.strip()[:300]}"
            )
        return resp.json()

    def finished_keys(self) -> set[str]:
        return set(self._post("finished_keys", {})["keys"])

    def create(self, rows: list[CreateRow]) -> list[Claim]:
        uris = self._post("create", {"rows": rows})["artifact_uris"]
        return [Claim(r[0], int(r[2]), u) for r, u in zip(rows, uris, strict=True)]

    def kill(self, run_ids: list[str]) -> None:
        self._post("kill", {"run_ids": run_ids})

    def withdraw(self, run_ids: list[str]) -> None:
        self._post("withdraw", {"run_ids": run_ids})

    def finish(self, rows: list[FinishRow]) -> None:
        self._post("finish", {"rows": rows})


# ---------------------------------------------------------------------------- reading


@dataclass
class RunInfoRow:
    """The fields of MLflow's ``RunInfo`` that :mod:`analysis.load` reads."""

    run_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str


@dataclass
class RunDataRow:
    """MLflow's ``RunData`` as plain dicts: tags, params (strings) and latest metrics."""

    tags: dict
    params: dict
    metrics: dict


@dataclass
class RunRow:
    """A run read straight from the SQL tables, shaped like MLflow's ``Run``
    (``.info.run_id`` …, ``.data.tags`` …) for the readers of :mod:`analysis.load`."""

    info: RunInfoRow
    data: RunDataRow


def _fetch(conn, query) -> list[tuple]:
    """All rows of ``query`` as the database driver returns them: the statement compiled
    once, executed on the connection's DBAPI cursor (SQLAlchemy's per-row result processing
    costs as much as the query on these tables: ~0.7 of 1.4 s for 3·10^5 rows). Only for
    columns whose raw values are already what the caller reads (strings, ints, floats,
    booleans as 0/1)."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    if compiled.positional:
        args = tuple(params[name] for name in compiled.positiontup)
    else:
        args = params
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return cursor.fetchall()
    finally:
        cursor.close()


def _active(runs, experiment_id: str | int):
    return (runs.c.experiment_id == int(experiment_id), runs.c.lifecycle_stage == "active")


def read_runs(
    engine,
    experiment_id: str | int,
    *,
    kind: str | None = None,
    parts: tuple[str, ...] = ("tags", "params", "metrics"),
) -> list[RunRow]:
    """Every active run of ``experiment_id`` (``runs.lifecycle_stage = 'active'``, what
    ``search_runs`` with ``ViewType.ACTIVE_ONLY`` returns) with its tags, params and latest
    metrics, as :class:`RunRow` — the same values MLflow's ``Run`` entities carry (``is_nan``
    read as NaN; ``run_name`` from the ``mlflow.runName`` tag when the column is empty).

    ``kind``: only the runs whose ``run_kind`` tag (:data:`sweep.schema.TAG_KIND`) is ``kind``;
    ``parts``: which of tags, params, metrics to read (the others stay empty dicts).
    Up to four queries (runs, tags, params, latest metrics), each a join on ``runs.experiment_id``:
    no list of run ids is sent, so 10^5 runs cost what their rows cost."""
    from mlflow.store.tracking.dbmodels import models
    from sqlalchemy import and_, select

    from sweep.schema import TAG_KIND

    runs = models.SqlRun.__table__
    tables = {
        "tags": models.SqlTag.__table__,
        "params": models.SqlParam.__table__,
        "metrics": models.SqlLatestMetric.__table__,
    }
    chosen = runs
    if kind is not None:
        k = models.SqlTag.__table__.alias("kind_tag")
        on = and_(k.c.run_uuid == runs.c.run_uuid, k.c.key == TAG_KIND, k.c.value == kind)
        chosen = runs.join(k, on)  # (key, run_uuid) is the tags' primary key: one row per run
    where = _active(runs, experiment_id)
    out: dict[str, RunRow] = {}
    with engine.connect() as conn:
        cols = (runs.c.run_uuid, runs.c.name, runs.c.status, runs.c.start_time,
                runs.c.end_time, runs.c.lifecycle_stage)  # fmt: skip
        for rid, name, status, start, end, stage in _fetch(
            conn, select(*cols).select_from(chosen).where(*where)
        ):
            out[rid] = RunRow(
                RunInfoRow(rid, name, status, start, end, stage), RunDataRow({}, {}, {})
            )
        if not out:
            return []
        for field in parts:
            t = tables[field]
            extra = (t.c.is_nan,) if field == "metrics" else ()
            query = (
                select(t.c.run_uuid, t.c.key, t.c.value, *extra)
                .select_from(chosen.join(t, t.c.run_uuid == runs.c.run_uuid))
                .where(*where)
            )
            target = {rid: getattr(run.data, field) for rid, run in out.items()}
            rows = _fetch(conn, query)
            if field == "metrics":
                nan = float("nan")
                rows = [(rid, key, nan if is_nan else value) for rid, key, value, is_nan in rows]
            for rid, key, value in rows:
                into = target.get(rid)
                if into is not None:  # else a run that became active between the queries
                    into[key] = value
    for run in out.values():
        if not run.info.run_name:
            name = run.data.tags.get("mlflow.runName")
            if name:
                run.info.run_name = name
    return list(out.values())


def read_curves(engine, experiment_id: str | int, prefix: str) -> list[tuple]:
    """Every row of MLflow's ``metrics`` table (the full histories ``get_metric_history``
    reads) of the active runs of ``experiment_id`` whose key starts with ``prefix``, as
    ``(run_id, key, step, value)`` (``value`` NaN where ``is_nan``), ordered by run id, key,
    step, then as ``get_metric_history`` orders one history (timestamp, stored value).
    One query, a join on ``runs.experiment_id``."""
    from mlflow.store.tracking.dbmodels import models
    from sqlalchemy import select

    runs, m = models.SqlRun.__table__, models.SqlMetric.__table__
    query = (
        select(m.c.run_uuid, m.c.key, m.c.step, m.c.value, m.c.is_nan)
        .join(runs, runs.c.run_uuid == m.c.run_uuid)
        .where(*_active(runs, experiment_id), m.c.key.startswith(prefix, autoescape=True))
        .order_by(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value)
    )
    nan = float("nan")
    with engine.connect() as conn:
        rows = _fetch(conn, query)
    # LIKE ignores case in SQLite and MySQL: the prefix is checked again here
    return [
        (rid, key, step, nan if is_nan else value)
        for rid, key, step, value, is_nan in rows
        if key.startswith(prefix)
    ]


__all__ += ["RunDataRow", "RunInfoRow", "RunRow", "read_curves", "read_runs"]
