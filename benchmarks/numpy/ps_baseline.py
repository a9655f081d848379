#!/usr/bin/env python3
"""The parameter server users would write instead of pstrain: NumPy and pyzmq.

One server process (this one) holds an MLP's weights (float64, one flat vector)
behind a zmq ROUTER socket bound to tcp://127.0.0.1 on a free port. N worker
processes (multiprocessing, spawned) each take a contiguous shard of the training
CSV and, for E epochs over a shuffled order of their shard, compute the mini-batch
gradient with NumPy (mlp.py: relu hidden layers, softmax cross-entropy averaged
over the batch), push it on a DEALER socket and wait for the fresh weights. The
server applies every push as it arrives (asynchronous plain SGD, w -= lr * g) and
replies with the weights. Arrays travel as raw float64 bytes, read back with
np.frombuffer; nothing is pickled.

  python benchmarks/numpy/ps_baseline.py --train DIR/digits-train.csv \\
      --test DIR/digits-test.csv --workers 2 --hidden 128 --batch-size 32 \\
      --epochs 30 --lr 0.1 --seed 0 --json

Initial weights: He normal, W ~ N(0, 2/fan_in), drawn layer by layer (output layer
too) with numpy.random.default_rng(seed).standard_normal((fan_in, fan_out)); biases
0. Worker i shuffles its shard each epoch with default_rng([seed, i + 1]).

samples_per_s counts the samples whose gradients the server applied, divided by the
wall seconds of training: from the moment every worker has loaded its shard and
connected (the server then sends them the initial weights) to the last worker's
"done". Start-up and the final evaluation are not counted. test_accuracy is that of
the final weights on --test. Every BLAS runs on one thread (set before numpy is
imported), as one process per core wants.

Every wait is bounded by --timeout (socket RCVTIMEO); the workers are killed when
this process ends, also on Ctrl-C or SIGTERM, and die with it on Linux.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import zmq  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arguments import hidden_sizes, positive_float, positive_int  # noqa: E402
from mlp import MLP, Gradient, load_csv  # noqa: E402

HELLO, WEIGHTS, GRADIENT, DONE, BYE = b"hello", b"weights", b"gradient", b"done", b"bye"
# Messages from a worker (frames): HELLO, its index (u32 little-endian);
# GRADIENT, rows in the batch (u32), the flat gradient (raw float64);
# DONE, its index, then samples and pushes (u64 each), the sum of batch losses and
# the CPU seconds the worker used while training (f64 each).
# From the server: WEIGHTS, the flat weights (raw float64); BYE.
INDEX_FORMAT = "<I"
DONE_FORMAT = "<QQdd"


class BaselineError(Exception):
    """A failure worth one line on stderr (a worker died, a wait timed out, bad input)."""


class Stopped(Exception):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) asked this process to stop."""

    def __init__(self, number):
        super().__init__(signal.Signals(number).name)
        self.number = number


# The signal that asked to stop, if one did. The handler only records it: an exception
# raised from a handler could land inside pyzmq's cleanup, which swallows it.
stop_signal = None


def request_stop(number, _frame):
    global stop_signal
    stop_signal = number


def die_with_parent():
    """Ask Linux to end this process when its parent ends (no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def worker_main(endpoint, index, count, train_path, sizes, batch_size, epochs, seed, timeout):
    """One worker: its shard, E epochs of gradient pushes, then "done"."""
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent ended before the request above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us
    x_all, y_all = load_csv(train_path)
    rows = len(y_all)
    start, end = index * rows // count, (index + 1) * rows // count
    x, y = x_all[start:end], y_all[start:end]
    model = MLP(sizes)
    gradient = Gradient(model)
    rng = np.random.default_rng([seed, index + 1])

    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 1000)
    socket.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    socket.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    socket.connect(endpoint)

    def receive(expected):
        try:
            frames = socket.recv_multipart(copy=False)
        except zmq.Again:
            raise BaselineError(
                f"worker {index}: no reply from the server in {timeout:g} s"
            ) from None
        if frames[0].bytes != expected:
            raise BaselineError(f"worker {index}: expected {expected!r}, got {frames[0].bytes!r}")
        return frames

    try:
        socket.send_multipart([HELLO, struct.pack(INDEX_FORMAT, index)])
        params = np.frombuffer(receive(WEIGHTS)[1], dtype=np.float64)
        cpu_start = time.process_time()
        samples = pushes = 0
        loss_sum = 0.0
        for _epoch in range(epochs):
            order = rng.permutation(len(y))
            for first in range(0, len(y), batch_size):
                chosen = order[first : first + batch_size]
                loss_sum += gradient(params, x[chosen], y[chosen])
                socket.send_multipart([GRADIENT, struct.pack("<I", len(chosen)), gradient.flat])
                params = np.frombuffer(receive(WEIGHTS)[1], dtype=np.float64)
                samples += len(chosen)
                pushes += 1
        socket.send_multipart(
            [
                DONE,
                struct.pack(INDEX_FORMAT, index),
                struct.pack(
                    DONE_FORMAT, samples, pushes, loss_sum, time.process_time() - cpu_start
                ),
            ]
        )
        receive(BYE)
    except BaselineError as error:
        print(f"ps_baseline: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        socket.close()
        context.term()


def serve(router, model, params, lr, workers, timeout, processes):
    """Answer hellos, apply gradients as they come, until every worker said "done".
    Returns (wall and CPU seconds of training, samples applied, pushes, and what each
    worker's "done" said)."""
    waiting = []
    finished = {}
    applied_samples = pushes = 0
    step = np.empty_like(params)
    started = None
    last_message = time.monotonic()
    while len(finished) < workers:
        if stop_signal is not None:
            raise Stopped(stop_signal)
        try:
            frames = router.recv_multipart(copy=False)
        except zmq.Again:
            for number, process in enumerate(processes):
                if process.exitcode is not None and number not in finished:
                    raise BaselineError(
                        f"worker {number} exited with code {process.exitcode} before it finished"
                    ) from None
            if time.monotonic() - last_message > timeout:
                raise BaselineError(f"no message from any worker in {timeout:g} s") from None
            continue
        last_message = time.monotonic()
        identity, kind = frames[0].bytes, frames[1].bytes
        if kind == GRADIENT:
            (rows,) = struct.unpack("<I", frames[2].bytes)
            gradient = np.frombuffer(frames[3], dtype=np.float64)
            if gradient.shape != params.shape:
                raise BaselineError(f"a gradient of {gradient.size} values, expected {params.size}")
            np.multiply(gradient, lr, out=step)
            params -= step
            applied_samples += rows
            pushes += 1
            router.send_multipart([identity, WEIGHTS, params])
        elif kind == HELLO:
            waiting.append(identity)
            if len(waiting) == workers:
                started = time.perf_counter()
                cpu_start = time.process_time()
                for each in waiting:
                    router.send_multipart([each, WEIGHTS, params])
        elif kind == DONE:
            (number,) = struct.unpack(INDEX_FORMAT, frames[2].bytes)
            finished[number] = struct.unpack(DONE_FORMAT, frames[3].bytes)
            router.send_multipart([identity, BYE])
        else:
            raise BaselineError(f"unknown message kind {kind!r}")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_start
    return seconds, cpu_seconds, applied_samples, pushes, [finished[i] for i in sorted(finished)]


def parse_arguments():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--train", required=True, help="training CSV (header, ..., label)")
    parser.add_argument("--test", required=True, help="test CSV with the same columns")
    parser.add_argument("--workers", type=positive_int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--hidden", type=hidden_sizes, default=[128], help="hidden sizes H or H1,H2,... (128)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=32, help="rows per push (32)")
    parser.add_argument(
        "--epochs", type=positive_int, default=30, help="passes over each shard (30)"
    )
    parser.add_argument("--lr", type=positive_float, default=0.1, help="SGD learning rate (0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and shuffles (0)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        help="longest wait for any message, seconds (60)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def run(args, processes):
    try:
        x_train, y_train = load_csv(args.train)
        x_test, y_test = load_csv(args.test)
    except (OSError, ValueError) as error:
        raise BaselineError(str(error)) from None
    if x_train.shape[1] != x_test.shape[1]:
        raise BaselineError(
            f"{args.train} has {x_train.shape[1]} features, {args.test} {x_test.shape[1]}"
        )
    if len(y_train) < args.workers:
        raise BaselineError(f"{len(y_train)} training rows for {args.workers} workers")
    classes = int(max(y_train.max(), y_test.max())) + 1
    sizes = [x_train.shape[1], *args.hidden, classes]
    model = MLP(sizes)
    params = model.he_normal(np.random.default_rng(args.seed))

    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.RCVTIMEO, 1000)  # wakes up to check the workers and --timeout
    router.setsockopt(zmq.SNDTIMEO, int(args.timeout * 1000))
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a vanished worker is an error
    try:
        router.bind("tcp://127.0.0.1:*")
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        spawn = multiprocessing.get_context("spawn")
        for index in range(args.workers):
            process = spawn.Process(
                target=worker_main,
                name=f"ps_baseline worker {index}",
                args=(
                    endpoint,
                    index,
                    args.workers,
                    args.train,
                    sizes,
                    args.batch_size,
                    args.epochs,
                    args.seed,
                    args.timeout,
                ),
                daemon=True,
            )
            process.start()
            processes.append(process)
        seconds, server_cpu_seconds, samples, pushes, done = serve(
            router, model, params, args.lr, args.workers, args.timeout, processes
        )
    finally:
        router.close()
        context.term()

    for process in processes:
        process.join(timeout=args.timeout)
    predictions = model.predict(params, x_test)
    test_accuracy = float(np.mean(predictions == y_test))
    train_accuracy = float(np.mean(model.predict(params, x_train) == y_train))
    worker_pushes = sum(each[1] for each in done)
    return {
        "samples_per_s": samples / seconds,
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "train_seconds": seconds,
        "samples_applied": samples,
        "pushes": pushes,
        "pushes_per_s": pushes / seconds,
        "server_cpu_seconds": server_cpu_seconds,
        "worker_cpu_seconds": [each[3] for each in done],
        "mean_batch_loss": sum(each[2] for each in done) / max(1, worker_pushes),
        "workers": args.workers,
        "layers": sizes,
        "parameters": model.count,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "numpy": np.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
    }


def stop_children(processes):
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)


def main():
    args = parse_arguments()

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, request_stop)
    processes = []
    try:
        result = run(args, processes)
    except BaselineError as error:
        print(f"ps_baseline: {error}", file=sys.stderr)
        return 1
    except zmq.ZMQError as error:
        print(f"ps_baseline: the server's socket failed: {error}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(f"ps_baseline: stopped by {stopped}", file=sys.stderr)
        return 128 + stopped.number
    finally:
        stop_children(processes)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.workers} workers, {'-'.join(map(str, result['layers']))}, batch "
            f"{args.batch_size}, {args.epochs} epochs, lr {args.lr:g}: "
            f"{result['samples_per_s']:,.0f} samples/s ({result['samples_applied']} samples, "
            f"{result['pushes']} pushes in {result['train_seconds']:.3f} s), "
            f"test accuracy {result['test_accuracy']:.4f}, train accuracy "
            f"{result['train_accuracy']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
