#!/usr/bin/env python3
"""Forward+backward samples/s of a NumPy MLP on one thread.

The same math a hand-written trainer uses (mlp.py): X @ W1 + b1, relu, ..., @ Wout
+ bout, softmax cross-entropy averaged over the batch, and the backward pass with
matrix products into a reused gradient buffer. No parameter update. Inputs are
uniform in [0, 1) and labels uniform over the classes, from a seeded generator: a
few fixed batches used in turn.

  python benchmarks/numpy/model_bench.py --features 64 --hidden 128 --classes 10 \\
      --batch-size 32 --dtype float64 --seconds 5 --json

BLAS runs on one thread (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS are set to 1 before numpy is imported), to compare with one
worker's compute elsewhere. samples_per_s is batches x batch size / seconds over the
whole measured time, after a warm-up of a tenth of it (at most 1 s); the median and
the best of the ~0.25 s windows inside it are given too, and samples_per_cpu_s, the
rate per second of CPU time this process got (a steadier figure on a busy machine).
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arguments import hidden_sizes, positive_float, positive_int  # noqa: E402
from mlp import MLP, Gradient  # noqa: E402


def blas_description():
    """The BLAS numpy calls, as threadpoolctl sees it (None if it is not installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                key: pool.get(key)
                for key in ("internal_api", "version", "architecture", "num_threads")
            }
    return None


def measure(gradient, params, batches, seconds):
    """(total batches, wall seconds, CPU seconds of this process, per-window samples/s)
    over about `seconds` of wall time."""
    warm_up = min(1.0, seconds / 10)
    batch_size = batches[0][0].shape[0]
    step = 0
    deadline = time.perf_counter() + warm_up
    while time.perf_counter() < deadline:
        x, y = batches[step % len(batches)]
        gradient(params, x, y)
        step += 1

    windows = []
    total_steps = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    end = start + seconds
    window_start, window_steps = start, 0
    now = start
    while now < end:
        x, y = batches[step % len(batches)]
        gradient(params, x, y)
        step += 1
        total_steps += 1
        window_steps += 1
        if window_steps % 8 == 0:
            now = time.perf_counter()
            if now - window_start >= 0.25:
                windows.append(window_steps * batch_size / (now - window_start))
                window_start, window_steps = now, 0
    return total_steps, now - start, time.process_time() - cpu_start, windows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--features", type=positive_int, default=64, help="inputs D (64)")
    parser.add_argument(
        "--hidden", type=hidden_sizes, default=[128], help="hidden sizes H or H1,H2,... (128)"
    )
    parser.add_argument("--classes", type=positive_int, default=10, help="classes K (10)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="rows B (32)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seconds", type=positive_float, default=5.0, help="measured time S (5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.classes < 2:
        parser.error("--classes must be at least 2 for softmax cross-entropy")

    dtype = np.dtype(args.dtype)
    model = MLP([args.features, *args.hidden, args.classes], dtype)
    rng = np.random.default_rng(args.seed)
    params = model.he_normal(rng)
    batches = [
        (
            rng.random((args.batch_size, args.features)).astype(dtype),
            rng.integers(0, args.classes, args.batch_size),
        )
        for _ in range(8)
    ]
    gradient = Gradient(model)
    steps, seconds, cpu_seconds, windows = measure(gradient, params, batches, args.seconds)
    samples_per_s = steps * args.batch_size / seconds
    result = {
        "samples_per_s": samples_per_s,
        "median_window_samples_per_s": statistics.median(windows) if windows else None,
        "best_window_samples_per_s": max(windows) if windows else None,
        "samples_per_cpu_s": steps * args.batch_size / cpu_seconds,
        "batches_per_s": steps / seconds,
        "gflops": samples_per_s * model.flops_per_sample() / 1e9,
        "batches": steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "layers": model.sizes,
        "parameters": model.count,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "numpy": np.__version__,
        "blas": blas_description(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{'-'.join(map(str, model.sizes))} {args.dtype} batch {args.batch_size}: "
            f"{samples_per_s:,.0f} samples/s ({steps / seconds:,.0f} batches/s, "
            f"{result['gflops']:.2f} GFLOP/s) over {seconds:.2f} s; "
            f"windows median {result['median_window_samples_per_s'] or 0:,.0f}, "
            f"best {result['best_window_samples_per_s'] or 0:,.0f}; "
            f"{result['samples_per_cpu_s']:,.0f} per CPU second ({cpu_seconds:.2f} s of CPU)"
        )
        blas = result["blas"]
        if blas:
            print(
                f"numpy {np.__version__}, {blas['internal_api']} {blas['version']} "
                f"({blas['architecture']}, {blas['num_threads']} thread)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
