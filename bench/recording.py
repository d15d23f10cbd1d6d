"""Recording throughput: trial runs written per second into MLflow, before and after.

    python -m bench.recording [--trials 400] [--rounds 2] [--writers 8] [--stores all]

Where the time goes when a driver records one small trial (the smoke grid's shape: 26 params,
~30 metrics, 3–4 training curves of 7 points, a 1.5–2 KB ``trial.json``), into

- ``sqlite``: the embedded store (``sqlite:///…/mlruns.db``, WAL, artifacts on local disk);
- ``pg-direct``: the driver writes straight into PostgreSQL (``tracking.uri=postgresql://…``,
  the database a tracking server would serve: the server then only shows it);
- ``server+sqlite`` / ``server+pg``: an MLflow tracking server on 127.0.0.1
  (``cluster/mlflow-server.sh``) backed by SQLite or by a throw-away PostgreSQL server, in the
  server configurations compared (``uvicorn×1``: one worker; ``uvicorn×4``: MLflow's default
  four workers; ``gunicorn×4``: four gunicorn workers — all the stock server, ``--app mlflow``,
  where the driver makes 3 REST requests per trial; ``dualsweep gunicorn×4`` (the script's
  default) / ``dualsweep uvicorn×1``: the ``dualsweep`` server app, one request per group of
  trials, :mod:`sweep.serverapp`).

It prints

(a) the latency of one kept-alive HTTP request (``runs/set-tag``) against a new connection per
    request, per server configuration: a kept-alive request that waits ~40 ms more than a new
    connection is small writes waiting on delayed ACKs (the server socket lacks TCP_NODELAY);
(b) the old write path, call by call (median ms): ``create_run``, ``log_batch``, ``trial.json``
    upload, ``set_terminated`` (the client's ``set_terminated`` and ``log_text`` each add a
    ``get_run`` request against a server);
(c) runs/s of the old writer (one thread, the four client calls per trial) and of
    :class:`sweep.tracking.Tracker` (claim at dispatch + one ``log_batch`` + FINISHED through
    MLflow's store API, ``trial.json`` in a JSON-lines artifact per group of trials on a server,
    ``--writers`` threads on a server), interleaved round by round on fresh experiments, with the
    requests each made per trial. Every run written is checked: FINISHED, its params, metrics,
    curve points and result readable back (``analysis.load``).

Nothing here is asserted: the figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
SERVER_CONFIGS = {  # name: (server app, options of `mlflow server`)
    "uvicorn×1": ("mlflow", ["--workers", "1", "--uvicorn-opts", "--timeout-keep-alive 30"]),
    "uvicorn×4": ("mlflow", ["--workers", "4", "--uvicorn-opts", "--timeout-keep-alive 30"]),
    "gunicorn×4": ("mlflow", ["--workers", "4", "--gunicorn-opts", "--keep-alive 30"]),
    "dualsweep gunicorn×4": ("dualsweep", ["--workers", "4", "--gunicorn-opts", "--keep-alive 30"]),
    "dualsweep uvicorn×1": (
        "dualsweep",
        ["--workers", "1", "--uvicorn-opts", "--timeout-keep-alive 30"],
    ),
}


# ---------------------------------------------------------------------------- trials


def trials(n: int) -> list:
    """``n`` (spec, result) pairs of the smoke grid's shape; results are real ones (one trained
    per network shape) copied under each spec's key, so recording is all that is timed."""
    from sweep.config import load
    from sweep.grid import expand
    from sweep.trial import run_batch

    seeds = max(1, math.ceil(n / 4))
    sweep = load(
        {
            "grid": {"name": "bench"},
            "data": {"kind": "whitened", "n": 8, "d": 12},
            "model": {"activation": ["linear", "relu"], "depth": [2, 3], "width": 8},
            "train": {"beta": 0.1, "steps": 300, "lr": 0.01, "log_every": 50},
            "seed": list(range(seeds)),
            "runner": {"kind": "inline"},
        }
    )
    specs = expand(sweep)[:n]
    shape = {}
    for s in specs:
        key = (s.model.activation, s.model.depth)
        if key not in shape:
            shape[key] = run_batch([s], device="cpu")[0]
    return [(s, replace(shape[(s.model.activation, s.model.depth)], key=s.key)) for s in specs]


# ---------------------------------------------------------------------------- servers


class Server:
    """``cluster/mlflow-server.sh`` on 127.0.0.1 with the given backend and server options."""

    def __init__(self, backend: str, config: tuple[str, list[str]], workdir: Path) -> None:
        from tests.cluster.harness import free_port

        self.backend, self.workdir = backend, workdir
        self.app, self.options = config
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        from tests.cluster.harness import MLFLOW_SERVER, base_env, wait_http

        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "server.log"
        self.proc = subprocess.Popen(
            [str(MLFLOW_SERVER), "--backend", self.backend, "--artifacts",
             str(self.workdir / "artifacts"), "--port", str(self.port), "--app", self.app,
             "--", *self.options],
            cwd=self.workdir, env=base_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_http(self.uri + "/health", self.proc, 120, log)
        return self

    def __exit__(self, *exc: object) -> None:
        from tests.cluster.harness import descendants, stop_pids

        pids = {self.proc.pid} | descendants(self.proc.pid)
        stop_pids(pids, grace=10)
        self.proc.wait()


def probe_keepalive(uri: str, run_id: str, n: int = 15) -> tuple[float, float]:
    """Median ms of a ``runs/set-tag`` request on one kept-alive connection (as ``requests``
    would reuse it, without TCP_NODELAY on our side either) and on a new connection each."""
    port = int(uri.rsplit(":", 1)[1])
    body = json.dumps({"run_id": run_id, "key": "probe", "value": "x"}).encode()
    headers = {"Content-Type": "application/json"}

    def once(conn: http.client.HTTPConnection) -> float:
        t = time.perf_counter()
        conn.request("POST", "/api/2.0/mlflow/runs/set-tag", body=body, headers=headers)
        conn.getresponse().read()
        return time.perf_counter() - t

    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    once(kept)
    alive = [once(kept) for _ in range(n)]
    kept.close()
    fresh = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        fresh.append(once(conn))
        conn.close()
    return 1000 * statistics.median(alive), 1000 * statistics.median(fresh)


# ---------------------------------------------------------------------------- writers


def _old_write(client, exp_id: str, spec, result, times: dict | None = None) -> None:
    """The write path before this change (sweep/tracking.py at 391e1a3): four client calls."""
    from sweep.schema import ARTIFACT_RESULT
    from sweep.tracking import trial_entities

    tags = {"run_kind": "trial", "trial_key": spec.key, "grid": "bench", "trial_status": "finished"}
    t0 = time.perf_counter()
    run = client.create_run(exp_id, tags=tags, run_name=f"bench-{spec.key[:8]}")
    t1 = time.perf_counter()
    metrics, params = trial_entities(spec, result, int(time.time() * 1000))
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    t2 = time.perf_counter()
    uri = run.info.artifact_uri
    if uri.startswith("file://"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        folder = Path(url2pathname(urlparse(uri).path))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ARTIFACT_RESULT).write_text(result.to_json())
    else:
        client.log_text(run.info.run_id, result.to_json(), ARTIFACT_RESULT)
    t3 = time.perf_counter()
    client.set_terminated(run.info.run_id, "FINISHED")
    t4 = time.perf_counter()
    if times is not None:
        for name, dt in (("create_run", t1 - t0), ("log_batch", t2 - t1), ("trial.json", t3 - t2),
                         ("set_terminated", t4 - t3)):  # fmt: skip
            times.setdefault(name, []).append(1000 * dt)


def run_old(uri: str, artifacts: str | None, pairs: list, *, breakdown: bool = False):
    """Runs/s of the old single-threaded writer, and (``breakdown``) per-call medians."""
    from sweep.store import Store, open_store

    name = f"old-{uuid.uuid4().hex[:8]}"
    client, exp_id = open_store(Store(uri, artifacts), name)
    times: dict = {}
    t0 = time.perf_counter()
    for spec, result in pairs:
        _old_write(client, exp_id, spec, result, times if breakdown else None)
    wall = time.perf_counter() - t0
    return len(pairs) / wall, {k: statistics.median(v) for k, v in times.items()}, name


def run_new(uri: str, artifacts: str | None, pairs: list, *, writers: int | None, batch: int = 16):
    """Runs/s of :class:`sweep.tracking.Tracker`: claims per batch of ``batch`` trials as a
    driver dispatches them, results recorded by its writer threads, ``finish`` included."""
    from sweep.store import Store
    from sweep.tracking import Tracker

    name = f"new-{uuid.uuid4().hex[:8]}"
    tracker = Tracker(Store(uri, artifacts), name, writers=writers)
    tracker.finished_keys()
    tracker.start(params={"bench": 1})
    calls0 = tracker.stats.calls
    t0 = time.perf_counter()
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        won = {s.key for s in tracker.claim([s for s, _ in chunk])}
        for spec, result in chunk:
            if spec.key in won:
                tracker.record(spec, result)
    tracker.finish("FINISHED")
    wall = time.perf_counter() - t0
    per_trial = (tracker.stats.calls - calls0) / len(pairs)
    return len(pairs) / wall, per_trial, tracker.settle, name


def check(uri: str, name: str, pairs: list) -> str:
    """Every trial readable back through ``analysis.load``: one FINISHED run per key, its
    params and metrics, its curve points and its result; returns 'ok' or what is missing."""
    from analysis.load import load, load_curves, load_results

    frame = load(name, uri)
    if len(frame) != len(pairs) or set(frame["trial_key"]) != {s.key for s, _ in pairs}:
        return f"{len(frame)} runs for {len(pairs)} trials"
    if set(frame["run_status"]) != {"FINISHED"} or frame["sgd_objective"].isna().any():
        return "a run is not FINISHED or lacks its metrics"
    some = list(frame["run_id"][:3])
    curves = load_curves(name, uri, run_ids=some)
    want = sum(len(v) for v in pairs[0][1].curves.values())
    if curves.groupby("run_id").size().min() < want - 7:
        return "curve points missing"
    res = load_results(some, uri)
    if len(res) != len(some):
        return f"trial.json readable for {len(res)} of {len(some)} runs"
    return "ok"


# ---------------------------------------------------------------------------- resume at scale


BETAS = "train.beta=[0.01,0.02,0.03,0.05,0.07,0.1,0.2,0.3,0.5,0.7]"


def _sweep_cmd(seeds: int, uri: str, *extra: str) -> list[str]:
    """The default command on the smoke grid (4 points) × 10 β with ``seeds`` seeds:
    40 × seeds trials (the β axis keeps the seed list, one argv word, far below the
    kernel's 128 KiB per-argument limit at 10^5 trials)."""
    return [sys.executable, "-m", "sweep", "+grid=smoke", BETAS,
            f"seed=[{','.join(map(str, range(seeds)))}]",
            f"tracking.uri={uri}", "sweep.max_trials=1000000", "sweep.progress=false", *extra]  # fmt: skip


def resume(n: int, workdir: Path) -> None:
    """A SQLite store holding a FINISHED run for each of the ``n`` trials of the smoke grid
    × 10 β with n/40 seeds (filled through :class:`sweep.sqlstore.SqlWriter`, the Tracker's own SQL
    path, 2,000 runs per transaction: every run's tags and params, one metric), then the
    default command on that grid (must run nothing), then on the grid grown by 10%."""
    from sweep.sqlstore import SqlWriter
    from sweep.store import Store
    from sweep.tracking import Tracker

    seeds = n // 40
    uri = f"sqlite:///{workdir / 'mlruns.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run(_sweep_cmd(seeds, uri, "sweep.dry_run=true", "sweep.dry_run_lines=0"), cwd=workdir, env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    dry = time.perf_counter() - t0
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == n, (len(rows), out[:300])
    tracker = Tracker(Store(uri, (workdir / "art").as_uri()), "smoke")
    sql = SqlWriter(tracker.api, tracker.experiment_id)
    t0 = time.perf_counter()
    start = int(time.time() * 1000)
    for i in range(0, n, 2000):
        chunk = rows[i : i + 2000]
        made = sql.create(
            [(uuid.uuid4().hex, f"smoke-{r[0][:8]}", start,
              {"run_kind": "trial", "trial_key": r[0], "grid": "smoke", "sweep_id": "synthetic",
               "experiment": "", "git_commit": "synthetic", "driver": "bench:0"}, "bench")
             for r in chunk]
        )  # fmt: skip
        sql.finish(
            [(c.run_id, [("sgd_objective", 1.0, start, 0)],
              [tuple(kv.split("=", 1)) for kv in r[1:]],
              [("trial_status", "finished")], "FINISHED")
             for c, r in zip(made, chunk, strict=True)]
        )  # fmt: skip
    fill = time.perf_counter() - t0
    print(f"store: {n} FINISHED trial runs written in {fill:.0f} s ({n / fill:.0f} runs/s); "
          f"the dry run of the {n}-trial grid took {dry:.1f} s")  # fmt: skip
    t0 = time.perf_counter()
    keys = tracker.finished_keys()
    print(f"Tracker.finished_keys (one SQL query): {len(keys)} keys in "
          f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
    t0 = time.perf_counter()
    api = tracker.trial_runs("tags.run_kind = 'trial' and attributes.status = 'FINISHED'")
    print(f"the same through search_runs (paged, every param and metric): {len(api)} runs in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    for label, s in (("re-run, all recorded", seeds), ("grown by 10%", seeds + seeds // 10)):
        t0 = time.perf_counter()
        proc = subprocess.Popen(_sweep_cmd(s, uri, "runner=inline"), cwd=workdir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        first = proc.stdout.readline().strip()
        t_first = time.perf_counter() - t0
        if label.startswith("grown"):
            proc.send_signal(2)  # seen what it would run: stop it (Ctrl-C)
        rest = proc.communicate(timeout=600)[0]
        wall = time.perf_counter() - t0
        last = [ln for ln in rest.splitlines() if ln.startswith("done in")]
        print(f"{label}: exit {proc.returncode} after {wall:.1f} s; first line after "
              f"{t_first:.1f} s: {first}")  # fmt: skip
        if last:
            print(f"    {last[0]}")


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="trials recorded per cell")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per store")
    parser.add_argument("--writers", type=int, default=8, help="writer threads against a server")
    parser.add_argument(
        "--stores",
        default="all",
        help="comma list of sqlite, server+sqlite, server+pg, pg-direct (default all)",
    )
    parser.add_argument(
        "--servers", default=",".join(SERVER_CONFIGS), help="server configurations to compare"
    )
    parser.add_argument("--old-trials", type=int, default=0, help="trials for the old writer "
                        "against a server (default: --trials / 4; it is 10-30x slower)")  # fmt: skip
    parser.add_argument("--resume", type=int, default=0, help="instead: time resuming an N-trial "
                        "grid whose trials are all recorded (a synthetic SQLite store)")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.resume:
        with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
            resume(args.resume, Path(tmp))
        return
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # no "View run …" per run
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    every = ["sqlite", "pg-direct", "server+pg", "server+sqlite"]
    stores = every if args.stores == "all" else args.stores.split(",")
    servers = args.servers.split(",")
    pairs = trials(args.trials)
    old_n = args.old_trials or max(16, args.trials // 4)
    load = os.getloadavg()
    print(f"{len(pairs)} trials per cell ({old_n} for the old writer on a server), "
          f"{args.rounds} rounds, load average {load[0]:.1f} at start, {os.cpu_count()} CPUs")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        tmp = Path(tmp)
        if "sqlite" in stores:
            uri, art = f"sqlite:///{tmp / 'mlruns.db'}", (tmp / "art").as_uri()
            _, calls, _ = run_old(uri, art, pairs[:50], breakdown=True)
            print("(b) sqlite, old path, median ms per call: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in calls.items()))  # fmt: skip
            for r in range(args.rounds):
                old, _, name_o = run_old(uri, art, pairs)
                new, per, settle, name_n = run_new(uri, art, pairs, writers=1)
                ok = check(uri, name_n, pairs) if r == 0 else ""
                rows.append(("sqlite (embedded)", "-", r, old, new, per, ok))
        pg = None
        try:
            if "server+pg" in stores or "pg-direct" in stores:
                from tests.cluster.harness import Postgres, find_pg_bin

                pg = Postgres(find_pg_bin()).start()
            if "pg-direct" in stores:  # the driver writes to the server's database itself
                url = pg.create_database(f"d{uuid.uuid4().hex[:8]}").replace(
                    "postgresql://", "postgresql+psycopg2://"
                )
                for r in range(args.rounds):
                    old, _, _ = run_old(url, None, pairs[:old_n])
                    new, per, settle, name_n = run_new(url, None, pairs, writers=1)
                    ok = check(url, name_n, pairs) if r == 0 else ""
                    rows.append(("pg-direct", "-", r, old, new, per, ok))
                    print(f"    pg-direct round {r}: old {old:.1f} runs/s, new {new:.1f} runs/s",
                          flush=True)  # fmt: skip
            for store in [s for s in stores if s.startswith("server")]:
                for cfg in servers:
                    if store == "server+pg":
                        backend = pg.create_database(f"b{uuid.uuid4().hex[:8]}")
                    else:
                        backend = f"sqlite:///{tmp / uuid.uuid4().hex[:8]}.db"
                    with Server(backend, SERVER_CONFIGS[cfg], tmp / uuid.uuid4().hex[:8]) as srv:
                        from mlflow.tracking import MlflowClient

                        cl = MlflowClient(srv.uri)
                        rid = cl.create_run(cl.create_experiment("probe")).info.run_id
                        kept, fresh = probe_keepalive(srv.uri, rid)
                        print(f"(a) {store} {cfg}: set-tag kept-alive {kept:.1f} ms, "
                              f"new connection {fresh:.1f} ms")  # fmt: skip
                        _, calls, _ = run_old(srv.uri, None, pairs[:20], breakdown=True)
                        print(f"(b) {store} {cfg}, old path, median ms per call: "
                              + ", ".join(f"{k} {v:.1f}" for k, v in calls.items()))  # fmt: skip
                        for r in range(args.rounds):
                            old, _, _ = run_old(srv.uri, None, pairs[:old_n])
                            new, per, settle, name_n = run_new(
                                srv.uri, None, pairs, writers=args.writers
                            )
                            ok = check(srv.uri, name_n, pairs) if r == 0 else ""
                            rows.append((store, cfg, r, old, new, per, ok))
                            print(f"    round {r}: old {old:.1f} runs/s, new {new:.1f} runs/s",
                                  flush=True)  # fmt: skip
        finally:
            if pg is not None:
                pg.stop()
    print(f"\n(c) runs/s (load average now {os.getloadavg()[0]:.1f}); new writer: "
          f"{args.writers} threads on a server, 1 on SQLite")  # fmt: skip
    print(f"{'store':<18} {'server':<11} {'round':>5} {'old runs/s':>10} {'new runs/s':>10} "
          f"{'ratio':>7} {'requests/trial':>14}  check")  # fmt: skip
    for store, cfg, r, old, new, per, ok in rows:
        print(f"{store:<18} {cfg:<11} {r:>5} {old:>10.1f} {new:>10.1f} {new / old:>6.1f}x "
              f"{per:>14.2f}  {ok}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
