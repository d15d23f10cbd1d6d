"""Training throughput of the batched trainer (solvers.sgd.train).

(a) networks trained per second, B networks in one batched call vs one network per call;
(b) achieved matmul FLOP/s of the batched trainer vs this machine's own large-matmul FLOP/s;
(c) the same on a GPU with ``--device cuda``.

FLOPs counted per network and step (full batch of n samples, layer shapes a_l × b_l):
forward ``Σ_l 2 n a_l b_l``, weight gradients the same again, input gradients
``Σ_{l ≥ 2} 2 n a_l b_l`` (none for the data). Element-wise work is not counted.

    .venv/bin/python -m bench.training            # full CPU run
    .venv/bin/python -m bench.training --quick    # a short run
    python3 -m bench.training --device cuda       # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from solvers.problem import Problem
from solvers.sgd import TrainConfig, train

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_matmul_flops(size: int, dtype: str, device: torch.device, reps: int) -> float:
    """FLOP/s of a size×size×size matmul (best of ``reps`` after a warm-up)."""
    dt = _DTYPES[dtype]
    g = torch.Generator(device=device).manual_seed(0)
    A = torch.randn(size, size, generator=g, device=device, dtype=dt)
    Bm = torch.randn(size, size, generator=g, device=device, dtype=dt)
    C = A @ Bm
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        C = A @ Bm
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    del C
    return 2.0 * size**3 / best


def flops_per_network_step(n: int, d: int, m: int, K: int, L: int) -> float:
    shapes = [(d, m)] + [(m, m)] * (L - 2) + [(m, K)]
    fwd = sum(2 * n * a * b for a, b in shapes)
    igrad = sum(2 * n * a * b for a, b in shapes[1:])
    return float(2 * fwd + igrad)


def make_problems(count: int, args: argparse.Namespace, seed: int) -> list[Problem]:
    rng = np.random.default_rng(seed)
    return [
        Problem(
            rng.standard_normal((args.n, args.d)) / np.sqrt(args.d),
            rng.standard_normal((args.n, args.K)),
            args.depth,
            0.01,
            activation="relu",
            width=args.m,
        )
        for _ in range(count)
    ]


def timed_train(
    problems: list[Problem], cfg: TrainConfig, seeds: list[int], device: torch.device, repeat: int
) -> float:
    """Best wall time of ``repeat`` identical calls (the machine is shared: the best is the
    least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = train(problems, cfg, seeds=seeds, device=device)
        best = min(best, time.perf_counter() - t0)
        assert not out.diverged.any(), "benchmark networks diverged: lower the learning rate"
    return best


def check(device: torch.device) -> None:
    """Correctness on the benchmark device: batched == alone, device == CPU, divergence."""
    rng = np.random.default_rng(0)
    probs = [
        Problem(
            rng.standard_normal((30, 6)) / 3,
            rng.standard_normal((30, 2)),
            3,
            0.05,
            activation="relu",
            width=8,
        )
        for _ in range(4)
    ]
    cfg = TrainConfig(
        steps=300, lr=0.01, batch_size=5, lr_decay=0.5, lr_decay_every=100, log_every=50
    )
    lrs = [0.005, 0.01, 1e4, 0.002]
    out = train(probs, cfg, seeds=[0, 1, 2, 3], lr=lrs, device=device)
    cpu = train(probs, cfg, seeds=[0, 1, 2, 3], lr=lrs, device="cpu")
    worst_alone = worst_cpu = 0.0
    for i in (0, 1, 3):
        alone = train([probs[i]], cfg, seeds=[i], lr=[lrs[i]], device=device)
        for a, b, c in zip(
            out.networks[i].weights, alone.networks[0].weights, cpu.networks[i].weights, strict=True
        ):
            worst_alone = max(
                worst_alone, float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))
            )
            worst_cpu = max(worst_cpu, float(np.max(np.abs(a - c)) / max(1.0, np.max(np.abs(c)))))
    print(f"check on {device}: diverged flags {out.diverged.tolist()} (expected only index 2)")
    print(
        f"check on {device}: batched vs alone max rel diff {worst_alone:.2e}; vs CPU {worst_cpu:.2e} (float64)"
    )
    print(f"check on {device}: objectives {np.array2string(out.objectives, precision=6)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--K", type=int, default=1)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=0, help="SGD mini-batch (0 = full batch)")
    ap.add_argument("--batches", default=None, help="comma-separated B values")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--single", type=int, default=None, help="networks timed one per call")
    ap.add_argument(
        "--repeat", type=int, default=None, help="best of this many timings (default 3; quick 1)"
    )
    ap.add_argument("--peak-size", type=int, default=2048)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine a second thread waits on a busy core)",
    )
    ap.add_argument(
        "--check", action="store_true", help="also run the correctness check on the device"
    )
    ap.add_argument("--quick", action="store_true", help="short run: 200 steps, fewer networks")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)  # a benchmark script, not library code
    if args.quick:
        args.steps = min(args.steps, 200)
    if args.batches is None:
        args.batches = (
            "16,64"
            if args.quick
            else ("16,64,256,1024,4096" if device.type == "cuda" else "16,64,256")
        )
    batches = [int(b) for b in args.batches.split(",")]
    single = args.single or (2 if args.quick else 4)
    dtypes = args.dtypes.split(",")
    repeat = args.repeat or (1 if args.quick else 3)

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}"
    print(f"device: {device} ({name}); torch {torch.__version__}")
    print(
        f"shape: n={args.n} d={args.d} m={args.m} K={args.K} L={args.depth} ReLU, "
        f"{'full-batch GD' if args.batch_size in (0, args.n) else f'mini-batch {args.batch_size}'}, "
        f"{args.steps} steps, curves logged at start and end only, best of {repeat} timings"
    )
    if args.check:
        check(device)
    fps = flops_per_network_step(args.batch_size or args.n, args.d, args.m, args.K, args.depth)
    print(f"matmul FLOPs per network per step (fwd + bwd): {fps:.3e}")

    for dtype in dtypes:
        peak = peak_matmul_flops(args.peak_size, dtype, device, reps=3 if args.quick else 10)
        cfg = TrainConfig(
            steps=args.steps,
            lr=args.lr,
            momentum=0.9,
            batch_size=args.batch_size,
            dtype=dtype,
            log_every=args.steps,
            track_layers=False,
        )
        warm = make_problems(2, args, 99)
        train(
            warm, TrainConfig(steps=5, dtype=dtype, log_every=5), seeds=[0, 1], device=device
        )  # warm-up
        probs = make_problems(single, args, 0)
        t_single = sum(timed_train([p], cfg, [i], device, repeat) for i, p in enumerate(probs))
        rate_single = single / t_single
        print(
            f"\n[{dtype}] peak {args.peak_size}x{args.peak_size} matmul: {peak / 1e9:.1f} GFLOP/s"
        )
        print(
            f"[{dtype}] one network per call: {rate_single:.2f} networks/s ({t_single / single:.3f} s each, {single} timed)"
        )
        print(
            f"{'B':>6} {'wall s':>8} {'nets/s':>9} {'speed-up':>9} {'GFLOP/s':>9} {'% of peak':>9}"
        )
        for B in batches:
            probs = make_problems(B, args, B)
            t = timed_train(probs, cfg, list(range(B)), device, repeat)
            rate = B / t
            achieved = B * args.steps * fps / t
            print(
                f"{B:>6} {t:>8.2f} {rate:>9.1f} {rate / rate_single:>8.1f}x {achieved / 1e9:>9.2f} {100 * achieved / peak:>8.1f}%"
            )


if __name__ == "__main__":
    main()
