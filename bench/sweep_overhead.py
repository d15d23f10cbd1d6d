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


# ---------------------------------------------------------------- both cores (H-sweep)


def both_cores(cpus: int, seeds: int, steps: int, width: int, reps: int) -> None:
    """Compute-bound trials: local Ray on ``cpus`` cores (one task per core, one thread per
    task: ``sweep.runner.task_threads``) against ``runner=inline`` on one core (one torch/BLAS
    thread), interleaved ``reps`` times so machine load hits both alike. Trial compute only:
    no MLflow store, Ray started (and its workers warmed) beforehand. Prints wall times and
    the speed-up inline/Ray (target: >= 1.8 on 2 cores)."""
    import statistics

    from sweep.config import RunnerConfig
    from sweep.grid import batches
    from sweep.runner import limit_threads, run_batches, stop_ray

    cfg = {
        "data": {"kind": "whitened", "n": 32, "d": 64},
        "model": {"activation": "linear", "depth": 3, "width": width},
        "train": {"beta": 0.1, "steps": steps, "lr": 0.01, "log_every": 500},
        "seed": list(range(seeds)),
    }
    specs = expand(load(cfg))
    groups = batches(specs, max(1, len(specs) // (2 * cpus)))  # 2 tasks per core
    t0 = time.perf_counter()
    started = start_ray(RunnerConfig(num_cpus=cpus))
    ray_start = time.perf_counter() - t0
    ray_runner = RunnerConfig(kind="local", cpus_per_task=1.0)
    warm = [[s] for s in expand(load({**cfg, "train": {**cfg["train"], "steps": 5}}))][:cpus]
    run_batches(warm, ray_runner, on_result=lambda s, r: None)
    with limit_threads(1):  # the inline path warm too (lazy imports of the trial engine)
        run_batches(
            warm[:1], RunnerConfig(kind="inline", device="cpu"), on_result=lambda s, r: None
        )

    def timed(kind: str) -> float:
        failed = []
        t = time.perf_counter()
        if kind == "inline":
            with limit_threads(1):
                run_batches(
                    groups,
                    RunnerConfig(kind="inline", device="cpu"),
                    on_result=lambda s, r: failed.append(r.status != "finished"),
                )
        else:
            run_batches(
                groups, ray_runner, on_result=lambda s, r: failed.append(r.status != "finished")
            )
        wall = time.perf_counter() - t
        assert len(failed) == len(specs) and not any(failed), f"{kind}: trials failed"
        return wall

    walls: dict[str, list[float]] = {"inline": [], "ray": []}
    for _ in range(reps):
        for kind in ("inline", "ray"):
            walls[kind].append(timed(kind))
    stop_ray(started)
    print(
        f"both cores: {len(specs)} trials (whitened n=32 d=64, linear L=3 m={width}, {steps} "
        f"steps) in {len(groups)} batches; Ray start-up {ray_start:.1f} s (not counted)"
    )
    for kind, w in walls.items():
        print(
            f"  {kind:>6}: wall {', '.join(f'{x:.1f}' for x in w)} s (median {statistics.median(w):.1f})"
        )
    ratios = [a / b for a, b in zip(walls["inline"], walls["ray"], strict=True)]
    print(
        f"  speed-up inline(1 core)/Ray({cpus} cores): {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f}x; target >= 1.8x)"
    )


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
    parser.add_argument(
        "--both-cores",
        action="store_true",
        help="only the compute-bound Ray-vs-inline section (uses --cpus, --seeds, --big-steps, --big-width)",
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="interleaved repetitions (--both-cores)"
    )
    args = parser.parse_args()
    if args.both_cores:
        both_cores(args.cpus, args.seeds, args.big_steps, args.big_width, args.reps)
        return
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
