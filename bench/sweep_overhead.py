"""Sweep overhead: the smoke grid scaled to ~200 trials, run in-process and on Ray.

    python bench/sweep_overhead.py [--seeds 50] [--steps 300] [--big-steps 3000] [--big-width 32] [--cpus 2]

For each trial size (``--steps``: smoke-sized; ``--big-steps``/``--big-width``: big enough to matter)
it runs the same trials twice, each on a fresh temporary MLflow SQLite store:
``runner=inline`` (one process) and Ray local with ``--cpus`` CPUs (Ray started beforehand,
its start-up time reported separately). It reports

(a) wall time of each and the Ray speed-up over inline;
(b) the fraction of wall time that is not trial compute (Ray + MLflow + bookkeeping):
    ``1 - compute / (wall * workers)``, where compute is the time spent inside
    ``sweep.trial.run_batch`` summed over tasks and workers is 1 inline, ``--cpus`` on Ray;
(c) MLflow child runs recorded per second by the driver's writer thread, and how long the
    driver waited for that writer after the last result arrived.

Targets (issue "sweep"): overhead <= 10% of wall time; Ray on 2 CPUs >= 1.8x inline once
trials are big enough to matter.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a file (`python bench/sweep_overhead.py`), Python puts bench/ first on sys.path, where
# bench/solvers.py would shadow the `solvers` package that the trial engine imports.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sweep.config import load  # noqa: E402
from sweep.grid import expand  # noqa: E402
from sweep.runner import run_sweep, start_ray  # noqa: E402

__all__ = ["main"]


def _config(
    store: Path, *, seeds: int, steps: int, kind: str, cpus: int, batch: int, width: int = 8
) -> dict:
    """The smoke grid (conf/grid/smoke.yaml) with ``seeds`` seeds: 4 * seeds trials."""
    return {
        "grid": {"name": "bench"},
        "data": {"kind": "whitened", "n": 8, "d": 12},
        "model": {"activation": ["linear", "relu"], "depth": [2, 3], "width": width},
        "train": {"beta": 0.1, "steps": steps, "lr": 0.01, "log_every": 50},
        "seed": list(range(seeds)),
        "runner": {"kind": kind, "num_cpus": cpus, "batch_size": batch, "device": "cpu"},
        "tracking": {"uri": f"sqlite:///{store / 'mlruns.db'}", "artifacts": str(store / "art")},
        "sweep": {"progress": False},
    }


def _run(kind: str, args: argparse.Namespace, steps: int, width: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null:
        cfg = _config(
            Path(tmp),
            seeds=args.seeds,
            steps=steps,
            kind=kind,
            cpus=args.cpus,
            batch=args.batch_size,
        )
        sweep = load(cfg)
        specs = expand(sweep)
        t0 = time.perf_counter()
        report = run_sweep(sweep, specs, out=null)
        wall = time.perf_counter() - t0
    workers = 1 if kind == "inline" else args.cpus
    return {
        "trials": len(report.results),
        "failed": report.count("failed"),
        "wall": wall,
        "compute": report.stats.compute_seconds,
        "overhead": 1.0 - report.stats.compute_seconds / (wall * workers),
        "runs_per_s": report.mlflow_runs / max(report.mlflow_seconds, 1e-9),
        "tasks": report.stats.tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds per grid point (4 points)")
    parser.add_argument("--steps", type=int, default=300, help="SGD steps of smoke-sized trials")
    parser.add_argument(
        "--big-steps", type=int, default=3000, help="steps of bigger trials (0: skip)"
    )
    parser.add_argument("--big-width", type=int, default=32, help="hidden width of bigger trials")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--batch-size", type=int, default=16, help="runner.batch_size")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray

    from sweep.config import RunnerConfig

    t0 = time.perf_counter()
    start_ray(RunnerConfig(num_cpus=args.cpus))
    ray_start = time.perf_counter() - t0
    # warm the workers (imports of torch and the trial engine), as a long sweep would be
    warm = _config(
        Path(tempfile.gettempdir()), seeds=1, steps=10, kind="local", cpus=args.cpus, batch=1
    )
    from sweep.runner import run_batches

    run_batches([[s] for s in expand(load(warm))], load(warm).runner, on_result=lambda s, r: None)

    print(f"Ray start-up (ray.init, {args.cpus} CPUs): {ray_start:.1f} s (not counted below)")
    header = (
        f"{'steps':>6} {'width':>5} {'runner':>7} {'trials':>6} {'tasks':>5} {'wall s':>7} {'compute s':>9} "
        f"{'non-compute':>11} {'MLflow runs/s':>13} {'speed-up':>8}"
    )
    print(header)
    sizes = [(args.steps, 8)] + ([(args.big_steps, args.big_width)] if args.big_steps else [])
    for steps, width in sizes:
        inline = _run("inline", args, steps, width)
        local = _run("local", args, steps, width)
        for name, r in (("inline", inline), ("ray", local)):
            speed = inline["wall"] / r["wall"]
            print(
                f"{steps:>6} {width:>5} {name:>7} {r['trials']:>6} {r['tasks']:>5} {r['wall']:>7.1f} "
                f"{r['compute']:>9.1f} {r['overhead']:>10.1%} {r['runs_per_s']:>13.1f} {speed:>7.2f}x"
            )
            if r["failed"]:
                print(f"  warning: {r['failed']} trials failed")
    ray.shutdown()


if __name__ == "__main__":
    main()
