"""Where a sweep is recorded, and how that store is opened: the one home of MLflow client code
shared by the writer (:mod:`sweep.tracking`, :mod:`sweep.writers`), the server app
(:mod:`sweep.serverapp`) and the reader (:mod:`analysis.load`).

The modules of ``sweep`` that import mlflow (``store``, ``tracking``, ``writers``,
``sqlstore``, ``serverapp``) do so lazily: nothing here imports it at module import time; none
uses a private MLflow name (``tests/tooling/test_private_mlflow.py``).

What lives here:

- :class:`Store` / :func:`resolve_store` / :func:`default_uri`: ``tracking.uri``, else
  ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db`` (absolute paths);
- :func:`open_store`: checks the store in seconds, creates it if asked, and returns an
  ``MlflowClient`` (MLflow's chatty loggers silenced, SQLite in WAL mode) and the experiment id;
- :func:`tracking_store`: MLflow's store object for a URI (``create_run`` / ``log_batch`` /
  ``update_run_info`` in one request each), built from MLflow's public classes;
- :func:`search_runs` (paged ``search_runs``) and :func:`experiment_id`;
- the literals that tell a parent (sweep) run from a child (trial) run:
  :data:`TAG_PARENT`, :data:`KIND_SWEEP`, :data:`KIND_TRIAL` (the tag name ``run_kind`` is
  :data:`sweep.schema.TAG_KIND`).

Faults a user can cause are one sentence, raised as :class:`StoreError` (a
:class:`~sweep.config.ConfigError`: ``python -m sweep`` exits with status 2), within seconds and
with nothing written:

- an ``http(s)://`` server that does not answer ``GET /health`` within
  :data:`CHECK_TIMEOUT` seconds (instead of MLflow's HTTP retries, minutes);
- a database URL whose host:port does not accept a TCP connection;
- a SQLite path whose directory does not exist (MLflow would create every missing directory:
  we refuse and say where the store would be), or cannot be written; the same for
  ``tracking.artifacts``: its directory is made on the first artifact, but only in a parent
  that exists (the default ``<cwd>/mlartifacts`` always has one);
- an existing SQLite file that is not a database, cannot be written, or holds an MLflow schema
  other than the installed one while holding runs (``mlflow db upgrade`` is the user's call).

A store that fails *during* a sweep (a server or database that dies, a full disk) stops the
sweep: :class:`StoreFault`, one sentence with what was recorded, exit 2; the next run of the same
command resumes. Against a server MLflow's HTTP retries are bounded for that
(:data:`HTTP_DEFAULTS`, unless the environment sets them): a request to a dead server gives up
after ~15 s instead of MLflow's ~4 minutes per request.

Creating a SQLite store is atomic with respect to ``kill -9``: the schema is migrated and the
experiment created in ``.<name>.creating-<pid>`` in the same directory, converted out of WAL
mode and moved into place with ``os.replace``; a kill at any moment leaves either no store or a
complete one (plus a temporary file the next opening removes). Openings of SQLite stores hold an
exclusive ``flock`` on the store's directory (nothing is written for it), so two drivers
started together on a fresh store do not race in MLflow's migrations: the second waits (at most
:data:`LOCK_WAIT` seconds) and then opens the complete store. A store left half-migrated by a
driver of an earlier version killed during creation (schema not at MLflow's head, no runs in it)
is moved aside to ``<name>.broken-<time>`` and created again, with a note on stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import functools
import logging
import os
import socket
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sweep.config import ConfigError, TrackingConfig, check_uri
from sweep.schema import TAG_KIND, TAG_TRIAL_KEY

__all__ = [
    "CHECK_TIMEOUT",
    "HTTP_DEFAULTS",
    "KIND_SWEEP",
    "KIND_TRIAL",
    "LOCK_WAIT",
    "SWEEP_FILTER",
    "Store",
    "StoreError",
    "StoreFault",
    "TAG_PARENT",
    "TRIAL_FILTER",
    "check_reachable",
    "client",
    "database_url",
    "default_uri",
    "experiment_id",
    "open_store",
    "recorded_keys",
    "resolve_store",
    "safe_uri",
    "search_runs",
    "sqlite_path",
    "tracking_store",
    "ui_command",
]

DEFAULT_DB = "mlruns.db"
DEFAULT_ARTIFACTS = "mlartifacts"
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own tag naming a child run's parent
KIND_SWEEP = "sweep"  # value of sweep.schema.TAG_KIND on a parent run (one per invocation)
KIND_TRIAL = "trial"  # value of sweep.schema.TAG_KIND on a child run (one per trial)
SWEEP_FILTER = f"tags.{TAG_KIND} = '{KIND_SWEEP}'"
TRIAL_FILTER = f"tags.{TAG_KIND} = '{KIND_TRIAL}'"
PAGE_SIZE = 1000  # runs per search_runs page
CHECK_TIMEOUT = 3.0  # seconds a server / database gets to answer the preflight check
LOCK_WAIT = 120.0  # seconds a driver waits for another one to finish opening the same store
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}
_QUIET = (
    "alembic",
    "alembic.runtime.migration",
    "mlflow.store.db.utils",
    "mlflow.store.sqlalchemy_store",
)


# MLflow's telemetry (MLflow >= 3.2: a thread that posts usage events) is off in every process
# that opens a store through this module, unless the environment says otherwise: a cluster node
# without internet gains nothing from it, and its thread deletes _MLFLOW_TELEMETRY_SESSION_ID
# from os.environ while `requests` iterates os.environ in the driver's writer threads
# (RuntimeError: dictionary changed size during iteration, issue 19). Set at import, before
# any module here imports mlflow (whose import starts the telemetry client).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class StoreError(ConfigError):
    """A tracking store that cannot be used, as one sentence naming it and what to do."""


class StoreFault(StoreError):
    """The store failed during the sweep (after the preflight checks passed)."""


# MLflow's HTTP client settings for a driver, unless the environment sets them: 4 retries 1, 2,
# 4, 8 s apart (MLflow: 7 retries, 2 s factor, ~4 min per request) and 30 s per attempt
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


@dataclass(frozen=True)
class Store:
    """Where a sweep is recorded: tracking URI and artifact location of new experiments."""

    uri: str
    artifacts: str | None  # file:// URI, or None when a server decides


def default_uri(cwd: str | os.PathLike | None = None) -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db`` (the sweep's default)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    base = Path(cwd if cwd is not None else os.getcwd()).absolute()
    return uri or f"sqlite:///{base / DEFAULT_DB}"


def resolve_store(tracking: TrackingConfig, *, cwd: str | os.PathLike | None = None) -> Store:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db``; for
    an embedded store (SQLite / file) the artifacts go to ``tracking.artifacts`` or
    ``<cwd>/mlartifacts`` (absolute paths, so Ray workers or a changed cwd cannot move them).
    Raises :class:`sweep.config.ConfigError` for a malformed URI. Imports no mlflow."""
    base = Path(cwd if cwd is not None else os.getcwd()).absolute()
    uri = check_uri(tracking.uri or default_uri(base))
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(base / uri[len('sqlite:///') :]).absolute()}"
    artifacts = None
    if uri.startswith(("sqlite:", "file:")):
        art = Path(tracking.artifacts) if tracking.artifacts else base / DEFAULT_ARTIFACTS
        artifacts = (art if art.is_absolute() else base / art).as_uri()
    return Store(uri=uri, artifacts=artifacts)


def ui_command(store: Store, *, cwd: str | os.PathLike | None = None) -> str:
    """The command that opens the MLflow UI on ``store``, as it works when pasted into a shell
    in ``cwd`` (default: the current directory) without an activated venv: this interpreter's
    ``python -m mlflow`` (relative when it is under ``cwd``: ``.venv/bin/python``), and for the
    default store ``"sqlite:///$PWD/mlruns.db"`` (README, Quickstart); other paths absolute.
    The artifact root is named only when it is not ``<cwd>/mlartifacts``, MLflow's default."""
    import shlex

    if store.uri.startswith(("http://", "https://")):
        return f"open {store.uri} in a browser"
    base = Path(cwd if cwd is not None else os.getcwd()).absolute()
    python = Path(sys.executable).absolute()
    exe = str(python.relative_to(base)) if python.is_relative_to(base) else str(python)
    uri = shlex.quote(store.uri)
    path = sqlite_path(store.uri)
    if path is not None and path.absolute().parent == base:
        uri = f'"sqlite:///$PWD/{path.name}"'
    art = ""
    if store.artifacts and store.artifacts != (base / DEFAULT_ARTIFACTS).as_uri():
        art = f" --default-artifact-root {shlex.quote(store.artifacts)}"
    return f"{shlex.quote(exe)} -m mlflow ui --backend-store-uri {uri}{art} --host 127.0.0.1"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (query string dropped), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    raw = urllib.parse.unquote(uri[len("sqlite:///") :].split("?", 1)[0])
    return Path(raw) if raw.startswith("/") else Path.cwd() / raw


# ---------------------------------------------------------------------------- preflight


def check_reachable(uri: str, *, timeout: float = CHECK_TIMEOUT) -> str | None:
    """Why the server or database of ``uri`` does not answer (a phrase), or None when it does.

    ``http(s)://``: ``GET /health`` must answer 200 within ``timeout``; a database URL: its
    host:port must accept a TCP connection. Other schemes: None (checked on opening). The same
    rule as ``cluster/check_tracking.py`` (which stays standard-library-only for the cluster)."""
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    try:
        if scheme in ("http", "https"):
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
                if resp.status != 200:
                    return f"GET /health answered HTTP {resp.status}"
        elif scheme in _DB_PORTS:
            host = parts.hostname or "127.0.0.1"
            socket.create_connection((host, parts.port or _DB_PORTS[scheme]), timeout).close()
    except urllib.error.HTTPError as exc:
        return f"GET /health answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror
        if isinstance(reason, TimeoutError | socket.timeout):
            return f"no answer within {timeout:g} s"
        return str(reason) or type(exc).__name__
    return None


def _check_server(uri: str) -> None:
    why = check_reachable(uri)
    if why is None:
        return
    if uri.startswith(("http://", "https://")):
        raise StoreError(
            f"cannot reach the MLflow tracking server at {uri} ({why}); start it "
            "(cluster/mlflow-server.sh) or fix tracking.uri / MLFLOW_TRACKING_URI, then run the "
            "same command again."
        )
    raise StoreError(
        f"cannot reach the database of the tracking store {safe_uri(uri)} ({why}); start it or fix "
        "tracking.uri / MLFLOW_TRACKING_URI, then run the same command again."
    )


def safe_uri(uri: str) -> str:
    """``uri`` without its password."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return uri


def _sqlite_state(path: Path, uri: str, *, write: bool) -> str:
    """``"absent"`` (no file, or an empty one) or ``"database"``; raises StoreError for a file
    that is not a SQLite database or (``write``) cannot be written. Writes nothing."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        raise StoreError(f"cannot read the store {uri} ({exc.strerror}).") from None
    if path.is_dir():
        raise StoreError(
            f"the store {uri} names a directory, not a file; point tracking.uri at a .db file."
        )
    if size == 0:
        return "absent"
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(
            f"cannot read the store {uri} ({exc.strerror}); fix its permissions or choose another "
            "tracking.uri."
        ) from None
    if magic != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not a SQLite database, so it cannot be the MLflow store {uri}; move it "
            "away (a new store is then created) or choose another tracking.uri."
        )
    _check_intact(path, uri)
    if write:
        why = _write_probe(path)
        if why:
            raise StoreError(
                f"the store {uri} cannot be written ({why}); make {path} and its directory "
                "writable, or choose another tracking.uri (python -m analysis can still read it)."
            )
    return "database"


_INTACT: set[tuple] = set()  # (path, size, mtime) of the files quick_check passed


def _check_intact(path: Path, uri: str) -> None:
    """SQLite's ``PRAGMA quick_check`` on a store this process did not just create (a pass over
    every page: a second per GB); :class:`StoreError` saying what is wrong and how to save
    the runs that can still be read when it fails. Writes nothing to the database (a writable
    one is opened read-write only so that closing removes the ``-wal`` / ``-shm`` files SQLite
    makes for a WAL-mode database, as MLflow's own connections do)."""
    try:
        stamp = tuple(
            (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else None
            for p in (path, Path(f"{path}-wal"))
        )
    except OSError:
        return  # unreadable: said by the caller
    if (path, stamp) in _INTACT:
        return
    try:  # read-write only where the file really opens so (an immutable one does not)
        os.close(os.open(path, os.O_RDWR))
        writable = os.access(path.parent, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    # a file nobody can write is read as immutable: no -shm / -wal is made beside it
    mode = "rw" if writable else "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    listed = True
    try:
        con = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=LOCK_WAIT)
        try:
            try:
                rows = con.execute("PRAGMA quick_check(1)").fetchall()
            except sqlite3.DatabaseError:
                try:  # is the table list itself lost?
                    con.execute("SELECT name FROM sqlite_master").fetchall()
                except sqlite3.DatabaseError:
                    listed = False
                raise
        finally:
            con.close()
        why = None if rows and rows[0][0] == "ok" else (rows[0][0] if rows else "no answer")
    except sqlite3.OperationalError:
        return  # locked, or cannot be opened: said by the checks that follow
    except sqlite3.DatabaseError as exc:
        why = str(exc)
    if why is None:
        _INTACT.add((path, stamp))
        return
    why = " ".join(why.replace("*** in database main ***", "").split())[:200].rstrip(".")
    if not listed:
        raise StoreError(
            f"the store {uri} is damaged beyond reading (SQLite's integrity check: {why}; its "
            "list of tables is lost, so no run can be read back); restore it from a backup, or "
            f"move {path.name} aside and run the sweep again into a new store."
        )
    new = path.with_name(f"{path.stem}-recovered{path.suffix}")
    raise StoreError(
        f"the store {uri} is damaged (SQLite's integrity check: {why}); copy the runs that can "
        f"still be read into a new store with `python -m sweep.recover {path} {new}` and use "
        f"sqlite:///{new} as the store from then on (the damaged file is left as it is)."
    )


def _write_probe(path: Path) -> str | None:
    """Why SQLite cannot take a write lock on ``path`` (a phrase), or None. Writes nothing."""
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=LOCK_WAIT)
    except sqlite3.Error as exc:
        return str(exc)
    try:  # a write that is rolled back: SQLite refuses it on a read-only file or file system
        version = con.execute("PRAGMA user_version").fetchone()[0]
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"PRAGMA user_version = {int(version)}")
        con.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        con.close()
    return None


@contextlib.contextmanager
def _dir_lock(folder: Path, uri: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` (no lock file: nothing is written for it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise StoreError(
            f"cannot open {folder} to lock the store {uri} ({exc.strerror}); fix the directory's "
            "permissions or choose another tracking.uri."
        ) from None
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been opening the store {uri} for {LOCK_WAIT:.0f} s "
                        f"(it holds the lock on {folder}); wait for it or stop it, then run the "
                        "same command again."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


# ---------------------------------------------------------------------------- MLflow


def _quiet() -> None:
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # one line per HTTP retry: a store that fails is reported once, as one sentence (StoreFault)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _sqlite_fast_commits() -> None:
    """Put SQLite stores opened by this process in WAL mode with ``synchronous=NORMAL``.

    Each MLflow call is its own transaction; with the default rollback journal every commit
    waits for an fsync (about 3x slower per run on these machines). WAL keeps commits durable
    against a killed process (only a power cut can lose the last commits) and lets readers
    (``analysis``, the MLflow UI) read while the driver writes."""
    if getattr(_sqlite_fast_commits, "done", False):
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection: object, _record: object) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    _sqlite_fast_commits.done = True  # type: ignore[attr-defined]


def client(uri: str):
    """An ``MlflowClient`` on ``uri`` with MLflow's migration chatter silenced and SQLite in
    WAL mode. No checks: :func:`open_store` is the way in for a driver or a reader."""
    _quiet()
    if uri.startswith("sqlite:"):
        _sqlite_fast_commits()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=database_url(uri))


@functools.lru_cache(maxsize=64)
def tracking_store(uri: str, artifacts: str | None = None):
    """MLflow's store API object (``AbstractStore``: ``create_run`` / ``log_batch`` /
    ``update_run_info`` in one request each, without the client's extra ``get_run``) for ``uri``,
    built as MLflow's own registry builds it, from public classes only: ``RestStore`` with
    ``get_default_host_creds`` for a server (credentials and TLS settings from the environment),
    ``SqlAlchemyStore`` for a database (sharing the engine MLflow keeps per URL with every
    client on it), ``FileStore`` for ``file:``. ``artifacts``: the root of new experiments that
    name none (every experiment the sweep creates names its own). One object per URI and root,
    as MLflow keeps one per URI. No checks: :func:`open_store` comes first."""
    scheme = urllib.parse.urlsplit(uri).scheme.split("+")[0]
    if scheme in ("http", "https"):
        from mlflow.store.tracking.rest_store import RestStore
        from mlflow.utils.credentials import get_default_host_creds

        return RestStore(functools.partial(get_default_host_creds, uri))
    if scheme in ("file", ""):
        from mlflow.store.tracking.file_store import FileStore

        return FileStore(uri, uri)  # as MLflow builds it
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = artifacts or (Path.cwd() / DEFAULT_ARTIFACTS).as_uri()
    return SqlAlchemyStore(database_url(uri), root)


# the cached stores go before the interpreter tears down: their SQLite connections then close
# as the client's do, and SQLite removes a WAL store's -wal / -shm files (a store left with them
# is changed by every later reader)
atexit.register(tracking_store.cache_clear)


def database_url(uri: str) -> str:
    """``uri`` with a driver SQLAlchemy can load: a bare ``postgresql://`` (or ``postgres://``)
    URL means psycopg 3 to SQLAlchemy 2.1; when only psycopg2 is installed (``dualsweep[postgres]``)
    it becomes ``postgresql+psycopg2://`` (as ``cluster/mlflow-server.sh`` does for a server)."""
    import importlib.util

    scheme, sep, rest = uri.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return f"postgresql+psycopg2://{rest}"
    return uri


def experiment_id(client, name: str) -> str | None:
    """Id of the experiment called ``name`` (active or deleted), or None."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"experiment must be a non-empty experiment name, got {name!r}")
    exp = client.get_experiment_by_name(name)
    return None if exp is None else exp.experiment_id


def search_runs(
    client,
    experiment_id: str,
    filter_string: str = "",
    *,
    page_size: int = PAGE_SIZE,
    deleted: bool = False,
    call=None,
) -> list:
    """Every active run of ``experiment_id`` matching ``filter_string``, page by page
    (``deleted``: those in the bin too; ``call(fn, *args, **kwargs)``, when given, makes each
    request: the driver counts them and stops once its store failed)."""
    from mlflow.entities import ViewType

    view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    call = call or (lambda fn, *args, **kwargs: fn(*args, **kwargs))
    runs, token = [], None
    while True:
        page = call(
            client.search_runs,
            [experiment_id],
            filter_string=filter_string,
            run_view_type=view,
            max_results=page_size,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _ensure_experiment(cl, name: str, artifacts: str | None) -> str:
    exp = cl.get_experiment_by_name(name)
    if exp is None:
        try:
            return cl.create_experiment(name, artifact_location=artifacts)
        except Exception:  # created meanwhile by another driver (server / database stores)
            exp = cl.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage != "active":
        cl.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _schema(path: Path) -> tuple[str | None, int | None]:
    """(alembic revision, number of runs) of the SQLite file, None where the table is missing."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=LOCK_WAIT)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rev = None
        if "alembic_version" in tables:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            rev = row[0] if row else None
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else None
    finally:
        con.close()
    return rev, runs


def recorded_keys(store: Store, experiment: str) -> set[str] | None:
    """Trial keys with a FINISHED, active child run in experiment ``experiment`` of a SQLite
    store, read with :mod:`sqlite3` alone (read-only, no MLflow import: a re-run with nothing
    left to do exits in seconds); None when the store is not a SQLite file that answers it,
    cannot be written or is damaged (the full path then refuses it with one sentence), or holds
    RUNNING runs of the experiment (the full path marks those of dead drivers KILLED)."""
    path = sqlite_path(store.uri)
    if path is None or not path.is_file():
        return None
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return None  # a store that cannot be written is refused on the full path, as always
    try:
        _check_intact(path, store.uri)
    except StoreError:
        return None  # damaged: the full path says so
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=LOCK_WAIT)
    except sqlite3.Error:
        return None
    try:
        rows = con.execute(
            "SELECT k.value FROM tags k JOIN runs r ON r.run_uuid = k.run_uuid "
            "JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE k.key = ? AND e.name = ? AND r.status = 'FINISHED' "
            "AND r.lifecycle_stage = 'active'",
            (TAG_TRIAL_KEY, experiment),
        ).fetchall()
        running = con.execute(
            "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE e.name = ? AND r.status = 'RUNNING' AND r.lifecycle_stage = 'active'",
            (experiment,),
        ).fetchone()[0]
        if running:  # left by a killed driver (or another one's): the full path closes them
            return None
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return {r[0] for r in rows}


@functools.cache
def _head_revision() -> str:
    """The installed MLflow's schema head: the one head of the alembic scripts MLflow ships
    (``mlflow/store/db_migrations``), read with alembic's public ``ScriptDirectory`` (~0.05 s;
    the installed MLflow cannot change under a process)."""
    import importlib.resources

    from alembic.script import ScriptDirectory

    folder = importlib.resources.files("mlflow.store") / "db_migrations"
    heads = ScriptDirectory(str(folder)).get_heads()
    if len(heads) != 1:
        raise StoreError(
            f"the installed MLflow's schema scripts have {len(heads)} heads ({heads}), not one; "
            "reinstall MLflow (pip install 'mlflow<4')."
        )
    return heads[0]


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _build_sqlite(path: Path, experiment: str | None, artifacts: str | None) -> None:
    """Create the store at ``path`` atomically: migrate (and create ``experiment``) in a
    temporary file of the same directory, leave WAL mode, fsync, ``os.replace``. Any failure
    (a directory SQLite cannot create a database in, a full disk: OSError, sqlite3's or
    SQLAlchemy's OperationalError, MLflow's wrapping of them) is a :class:`StoreError` naming
    the store, with the temporary file removed."""
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
    _remove_sqlite(tmp)
    try:
        _probe_create(tmp)  # seconds, where MLflow's engine retries take minutes
        _migrate(tmp, experiment, artifacts, path.parent / DEFAULT_ARTIFACTS)
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode=DELETE")  # checkpoints the WAL into the file
        finally:
            con.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        _remove_sqlite(tmp)
        if not isinstance(exc, Exception) or isinstance(exc, StoreError):
            raise
        raise StoreError(
            f"cannot create the store sqlite:///{path} ({_db_reason(exc)}); free space or fix "
            f"{path.parent}, or choose another tracking.uri (nothing was written)."
        ) from None
    _remove_sqlite(tmp)  # any -wal / -shm left beside the temporary name


def _probe_create(tmp: Path) -> None:
    """Create ``tmp`` as an empty SQLite database with one write (raises sqlite3.Error or
    OSError at once where MLflow would retry for minutes)."""
    con = sqlite3.connect(tmp, timeout=LOCK_WAIT)
    try:
        con.execute("CREATE TABLE dualsweep_probe (x)")
        con.execute("DROP TABLE dualsweep_probe")
        con.commit()
    finally:
        con.close()


def _migrate(tmp: Path, experiment: str | None, artifacts: str | None, default: Path) -> None:
    """MLflow's schema (and ``experiment``, its artifacts in ``artifacts``, else MLflow's
    default root ``default``) in the SQLite file ``tmp``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp_uri = f"sqlite:///{tmp}"
    _quiet()
    _sqlite_fast_commits()
    store = SqlAlchemyStore(tmp_uri, artifacts or default.as_uri())
    try:
        if experiment:
            store.create_experiment(experiment, artifact_location=artifacts)
    finally:
        store.engine.dispose()  # its connections closed before the file is moved into place


def _db_reason(exc: BaseException) -> str:
    """A short phrase for a database failure: sqlite3's message where one is nested (SQLAlchemy
    and MLflow wrap it), else the OS's, else the first line."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200].rstrip(".")
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sqlite3.Error) and str(exc):
            return str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError
        exc, seen = orig or exc.__cause__ or exc.__context__, seen + 1
    return first


def _open_sqlite(store: Store, path: Path, experiment: str | None, create: bool) -> None:
    """Checks and (``create``) builds the SQLite store at ``path``; see the module docstring."""
    uri = store.uri
    folder = path.parent
    if not folder.is_dir():
        if not create:
            raise StoreError(
                f"there is no MLflow store at {path} (its directory {folder} does not exist); "
                "run a sweep first or give the store's URI."
            )
        raise StoreError(
            f"the store {uri} would be created in {folder}, which does not exist; create that "
            f"directory first (mkdir -p {folder}) or choose another tracking.uri."
        )
    state = _sqlite_state(path, uri, write=create)
    if not create:
        if state == "absent":
            raise StoreError(
                f"there is no MLflow store at {path}; run a sweep first or give the store's URI "
                "(--tracking-uri / MLFLOW_TRACKING_URI)."
            )
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"cannot write in {folder}, so the store {uri} cannot be created or updated there; "
            "choose another tracking.uri or make the directory writable."
        )
    with _dir_lock(folder, uri):
        for stale in folder.glob(f".{path.name}.creating-*"):  # left by a killed driver
            _remove_sqlite(stale)
        state = _sqlite_state(path, uri, write=True)  # again, under the lock
        if state == "database":
            rev, runs = _schema(path)
            head = _head_revision()
            if rev == head:
                if experiment:
                    _ensure_experiment(client(uri), experiment, store.artifacts)
                return
            if runs:
                raise StoreError(
                    f"the store {uri} holds {runs} runs in MLflow schema {rev}, not the installed "
                    f"MLflow's {head}; back it up and run `mlflow db upgrade {uri}`, or choose "
                    "another tracking.uri."
                )
            aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
            for suffix in ("-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            print(
                f"note: the store {uri} was left half-created (schema {rev}, no runs) by a killed "
                f"driver; moved it to {aside.name} and created it again.",
                file=sys.stderr,
                flush=True,
            )
        elif path.exists():  # an empty file: nothing in it to keep
            _remove_sqlite(path)
        _build_sqlite(path, experiment, store.artifacts)


def _check_artifacts(artifacts: str | None) -> None:
    """The local artifact directory of new experiments (``tracking.artifacts``, a ``file://``
    URI): it may be missing (the first artifact makes it), its parent may not — MLflow would
    create every missing directory above it, wherever a typo points."""
    if not artifacts or not artifacts.startswith("file:"):
        return
    folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(artifacts).path))
    if folder.exists() and not folder.is_dir():
        raise StoreError(
            f"the artifact location {folder} (tracking.artifacts) is a file, not a directory; "
            "choose another tracking.artifacts."
        )
    if not folder.exists() and not folder.parent.is_dir():
        raise StoreError(
            f"the artifact directory {folder} (tracking.artifacts) would be created in "
            f"{folder.parent}, which does not exist; create that directory first "
            f"(mkdir -p {folder.parent}) or choose another tracking.artifacts."
        )


def open_store(
    store: Store | str, experiment: str | None = None, *, create: bool = True
) -> tuple[object, str | None]:
    """Check ``store``, create it if needed (``create``), and return ``(client, experiment_id)``.

    With ``create`` (the driver) a missing SQLite store is built atomically and the experiment
    ``experiment`` is created (or restored) when missing; without it (a reader) nothing is ever
    written and the id is None for a missing experiment. Raises :class:`StoreError` (one
    sentence) for every fault listed in the module docstring, before anything is written."""
    if isinstance(store, str):
        store = Store(uri=check_uri(store), artifacts=None)
    uri = store.uri
    if create:
        _check_artifacts(store.artifacts)
    path = sqlite_path(uri)
    if path is not None:
        _open_sqlite(store, path, experiment if create else None, create)
    elif uri.startswith("file:"):
        folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
        if not (folder if folder.exists() else folder.parent).is_dir():
            raise StoreError(
                f"the store {uri} would be created under {folder.parent}, which does not exist; "
                "create that directory first or choose another tracking.uri."
            )
    else:
        _check_server(uri)
        if uri.startswith(("http://", "https://")):
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
    try:
        cl = client(uri)
        if experiment is None:
            return cl, None
        if not create:
            return cl, experiment_id(cl, experiment)
        return cl, _ensure_experiment(cl, experiment, store.artifacts)
    except StoreError:
        raise
    except Exception as exc:  # MLflow refused the store: say which and why, in one sentence
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise StoreError(
            f"the MLflow store {safe_uri(uri)} could not be opened ({type(exc).__name__}: "
            f"{first[:300]}); fix it or choose another tracking.uri."
        ) from exc
