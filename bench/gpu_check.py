"""The CUDA path in one run: device placement, fractional GPUs in Ray, batched training speed.

    python -m bench.gpu_check            # on a machine with a GPU (and Ray installed)

1. placement: a batch trained with ``device="cuda"`` keeps every tensor on the GPU and, in
   float64, gives the same objectives as the CPU run (to 1e-9 relative);
2. Ray: ``ray.init(num_gpus=1)``, tasks asking for ``num_gpus=0.25`` each run
   ``sweep.trial.run_batch(device="cuda")``; reports how many ran at once and which GPU ids
   Ray assigned;
3. speed: batched networks/s on CUDA (float32, float64) vs the CPU of the same machine.
Prints one JSON line per check (``GPUCHECK {...}``) for BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from solvers import Problem
from solvers.data import make_dataset
from solvers.sgd import TrainConfig, train

DRY = "--dry-run" in sys.argv  # CPU rehearsal of the same script (no GPU needed), tiny sizes
DEV = "cpu" if DRY else "cuda"


def emit(name: str, **values: object) -> None:
    print("GPUCHECK " + json.dumps({"check": name, **values}, default=str), flush=True)


def problems(B: int, *, n: int = 100, d: int = 20, depth: int = 3) -> list[Problem]:
    out = []
    for i in range(B):
        X, Y = make_dataset("gaussian", "gaussian", n=n, d=d, outputs=1, seed=i)
        out.append(Problem(X=X, Y=Y, depth=depth, beta=0.1, activation="relu", width=50))
    return out


def placement() -> None:
    ps = problems(8)
    cfg = TrainConfig(steps=300, lr=1e-3, dtype="float64", log_every=100)
    cpu = train(ps, cfg, seeds=list(range(8)), device="cpu")
    gpu = train(ps, cfg, seeds=list(range(8)), device=DEV)
    rel = float(np.max(np.abs(cpu.objectives - gpu.objectives) / np.abs(cpu.objectives)))
    emit(
        "placement",
        device=gpu.device,
        card="none (dry run)" if DRY else torch.cuda.get_device_name(0),
        max_rel_diff_cpu_vs_cuda_float64=rel,
        ok=bool(gpu.device.startswith(DEV) and rel < 1e-9),
        peak_gpu_mem_mb=0.0 if DRY else torch.cuda.max_memory_allocated() / 2**20,
    )


def fractional_ray() -> None:
    import ray

    from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec
    from sweep.trial import run_batch

    ray.init(num_cpus=8, num_gpus=0 if DRY else 1, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_gpus=0 if DRY else 0.25, num_cpus=1)
    def task(specs: list[TrialSpec]) -> dict:
        t0 = time.time()
        results = run_batch(specs, device=DEV)
        return {
            "gpu_ids": ray.get_gpu_ids(),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "start": t0,
            "end": time.time(),
            "statuses": [r.status for r in results],
            "devices": sorted({r.device for r in results}),
            "max_rel_gap": max(abs(r.rel_gap) for r in results if r.rel_gap is not None),
        }

    batches = [
        [
            TrialSpec(
                data=DataSpec(kind="whitened", n=20, d=50, outputs=1),
                model=ModelSpec(depth=3, width=50, activation="relu"),
                train=TrainSpec(
                    beta=0.2, steps=300 if DRY else 3000, lr=5e-3, batch_size=5, dtype="float32"
                ),
                seed=10 * b + s,
            )
            for s in range(16)
        ]
        for b in range(8)
    ]
    t0 = time.time()
    outs = ray.get([task.remote(b) for b in batches])
    wall = time.time() - t0
    events = sorted([(o["start"], 1) for o in outs] + [(o["end"], -1) for o in outs])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    emit(
        "ray_fractional_gpu",
        tasks=len(outs),
        num_gpus_per_task=0.25,
        peak_concurrent_tasks=peak,
        gpu_ids=[o["gpu_ids"] for o in outs],
        devices=sorted({d for o in outs for d in o["devices"]}),
        statuses=sorted({s for o in outs for s in o["statuses"]}),
        worst_rel_gap=max(o["max_rel_gap"] for o in outs),
        wall_s=wall,
    )
    ray.shutdown()


def speed() -> None:
    for dtype in ("float32", "float64"):
        for device in (DEV, "cpu") if not DRY else ("cpu",):
            for B in (64, 1024, 4096) if device == "cuda" else (64,) if DRY else (64, 256):
                ps = problems(B)
                cfg = TrainConfig(
                    steps=50 if DRY else 1000,
                    lr=1e-3,
                    dtype=dtype,
                    log_every=1000,
                    track_layers=False,
                )
                train(
                    ps[:2], TrainConfig(steps=5, dtype=dtype), seeds=[0, 1], device=device
                )  # warm-up
                t0 = time.perf_counter()
                train(ps, cfg, seeds=list(range(B)), device=device)
                dt = time.perf_counter() - t0
                emit(
                    "speed",
                    device=device,
                    dtype=dtype,
                    B=B,
                    steps=1000,
                    seconds=dt,
                    networks_per_s=B / dt,
                )


if __name__ == "__main__":
    print(
        "torch",
        torch.__version__,
        "cuda",
        torch.cuda.is_available(),
        "dry" if DRY else "",
        flush=True,
    )
    placement()
    fractional_ray()
    speed()
