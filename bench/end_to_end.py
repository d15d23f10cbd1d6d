"""N small trials end to end with the default command and store, as a user runs them.

    python -m bench.end_to_end [--trials 10000] [--runner local|inline] [--keep DIR]

Writes a grid file ``e2e.yaml`` (the smoke grid: whitened n = 8, d = 12; linear and ReLU,
depth 2 and 3, width 8; 300 steps — with ``trials / 4`` seeds) into a fresh directory and runs

    python -m sweep 'hydra.searchpath=[file://DIR]' +grid=e2e sweep.max_trials=… sweep.progress=false

there: the default runner (local Ray on every core) and the default store (``./mlruns.db`` next
to it). It prints the process's wall and CPU time, the driver's own ``done in`` line, the
compute/recording split the driver measured, and then reads the store back through
``analysis.load`` (one FINISHED run per key, curves of every run) — the check that every trial
was recorded. Nothing is asserted: the figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent


def grid_file(folder: Path, seeds: int) -> None:
    (folder / "grid").mkdir(parents=True, exist_ok=True)
    (folder / "grid" / "e2e.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - smoke\n  - _self_\n"
        f"grid:\n  name: e2e\nseed: [{', '.join(map(str, range(seeds)))}]\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--runner", default="", help="runner override (default: the default)")
    parser.add_argument("--keep", default="", help="run in this directory and keep it")
    args = parser.parse_args()
    seeds = max(1, args.trials // 4)
    tmp = None
    if args.keep:
        work = Path(args.keep).absolute()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-e2e-")
        work = Path(tmp.name)
    grid_file(work / "conf", seeds)
    cmd = [sys.executable, "-m", "sweep", f"hydra.searchpath=[file://{work / 'conf'}]",
           "+grid=e2e", "sweep.max_trials=1000000", "sweep.progress=false"]  # fmt: skip
    if args.runner:
        cmd.append(f"runner={args.runner}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("MLFLOW_TRACKING")}
    load0 = os.getloadavg()[0]
    print(f"{seeds * 4} trials ({seeds} seeds × 4 points); load average {load0:.1f} at start; "
          f"{os.cpu_count()} CPUs; in {work}", flush=True)  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"the sweep exited {proc.returncode}")
    done = next((ln for ln in proc.stdout.splitlines() if ln.startswith("done in")), "")
    print(f"process: {wall:.1f} s wall, {cpu:.1f} s CPU (driver + its children; Ray workers "
          f"are not its children); load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print(f"driver: {done}")
    for ln in proc.stdout.splitlines():
        if re.search(r"compute|mlflow|recorded", ln, re.IGNORECASE) and ln != done:
            print(f"driver: {ln}")
    from analysis.load import load, load_curves

    uri = f"sqlite:///{work / 'mlruns.db'}"
    t1 = time.perf_counter()
    frame = load("e2e", uri)
    curves = load_curves("e2e", uri)
    print(f"read back in {time.perf_counter() - t1:.1f} s: {len(frame)} trials "
          f"({frame['trial_key'].nunique()} keys; status {frame['status'].value_counts().to_dict()}), "
          f"curves of {curves['run_id'].nunique()} runs")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
