"""Reading a sweep back: ``analysis.load`` on a SQL store, MLflow's API path against the SQL path.

    python -m bench.reading [--trials 2000] [--rounds 2]
    python -m bench.reading --uri sqlite:////path/mlruns.db --experiment NAME [--rounds 1]
        [--paths API,SQL]

Without ``--uri`` it records ``--trials`` trials of the smoke grid's shape (26 params, ~30
metrics, 3–4 training curves of 7 points: :func:`bench.recording.trials`) into a fresh SQLite
store with the sweep's writer (:func:`bench.recording.run_new`); with ``--uri`` it reads an
existing store (nothing is written to it). Then, round by round and path by path interleaved
(so machine load falls on both alike), it times in one process, after one warm-up read:

- ``load``: one row per trial key (:func:`analysis.load.load`);
- ``load_curves``: every training curve (:func:`analysis.load.load_curves`);

through MLflow's API (``search_runs`` pages + one ``get_metric_history`` per run and curve,
8 threads; ``analysis.load.SQL_READS = False``) and through the SQL path
(:func:`sweep.sqlstore.read_runs` / :func:`sweep.sqlstore.read_curves`), and checks that both
paths gave equal frames. Wall seconds; nothing is asserted: the figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def _time(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def measure(uri: str, name: str, rounds: int, paths: tuple[str, ...] = ("API", "SQL")) -> None:
    """Print wall seconds of load / load_curves per path and round, and the ratios."""
    import pandas as pd

    L = importlib.import_module("analysis.load")  # the module (analysis.load is also a function)
    L.load_parents(name, uri)  # warm-up: mlflow imported, store and engine open
    best: dict[tuple[str, str], float] = {}
    frames: dict[str, tuple] = {}
    print(f"{'round':>5} {'path':>4} {'load s':>8} {'curves s':>9} {'trials':>7} {'points':>8}")
    for r in range(rounds):
        for path in paths:
            L.SQL_READS = path == "SQL"
            t_load, frame = _time(L.load, name, uri)
            t_curves, curves = _time(L.load_curves, name, uri)
            frames[path] = (frame, curves)
            for what, t in (("load", t_load), ("curves", t_curves)):
                best[(path, what)] = min(best.get((path, what), float("inf")), t)
            print(f"{r:>5} {path:>4} {t_load:8.2f} {t_curves:9.2f} {len(frame):7d} "
                  f"{len(curves):8d}", flush=True)  # fmt: skip
    L.SQL_READS = True
    for (path, what), t in sorted(best.items()):
        print(f"best {what:>6} {path}: {t:7.2f} s")
    if len(frames) < 2:
        return
    (fa, ca), (fs, cs) = frames["API"], frames["SQL"]
    try:
        pd.testing.assert_frame_equal(fa, fs, check_exact=True)
        pd.testing.assert_frame_equal(ca, cs, check_exact=True)
        same = "equal"
    except AssertionError as exc:
        same = f"DIFFERENT: {str(exc).splitlines()[0]}"
    print(f"frames of the two paths: {same}")
    for what in ("load", "curves"):
        a, s = best[("API", what)], best[("SQL", what)]
        print(f"{what:>6}: SQL path {a / s:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials recorded (no --uri)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--uri", default=None, help="read this existing store instead")
    parser.add_argument("--experiment", default=None, help="its experiment (with --uri)")
    parser.add_argument("--paths", default="API,SQL", help="paths timed: API, SQL or both")
    args = parser.parse_args()
    paths = tuple(p.strip().upper() for p in args.paths.split(","))
    if not paths or set(paths) - {"API", "SQL"}:
        parser.error(f"--paths must name API and/or SQL, got {args.paths!r}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    if args.uri:
        if not args.experiment:
            parser.error("--uri needs --experiment")
        measure(args.uri, args.experiment, args.rounds, paths)
        return
    from bench.recording import run_new, trials

    with tempfile.TemporaryDirectory(prefix="bench-reading-") as tmp:
        uri, art = f"sqlite:///{Path(tmp) / 'mlruns.db'}", (Path(tmp) / "art").as_uri()
        pairs = trials(args.trials)
        t = time.perf_counter()
        _, _, _, name = run_new(uri, art, pairs, writers=None)
        print(f"{len(pairs)} trials recorded in {time.perf_counter() - t:.1f} s ({uri})")
        measure(uri, name, args.rounds, paths)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")


if __name__ == "__main__":
    main()
