"""A pstrain worker in NumPy: trains the server's dense classifier (`softmax`, or
`mlp.relu` / `mlp.tanh` / `mlp.sigmoid`) on a CSV file such as the digits files of
deploy/datasets/digits.sh, beside `pstrain worker`s on the same server.

    pstrain server --bind tcp://127.0.0.1:5555 --model softmax --features 64 --classes 10
    python examples/train_digits.py --connect tcp://127.0.0.1:5555 \\
        --data .build/datasets/digits-train.csv --id 7 --shard 1/2 --epochs 5

Each batch: the forward and backward passes in NumPy at the weights the server last
sent, then `push` (the gradient of the batch's mean cross-entropy, and the batch's row
numbers), whose answer is the next weights. The passes are those of pstrain's
DenseNetwork (Sources/TrainingMath/DenseKernels.swift, SoftmaxCrossEntropyLoss.swift)
step for step, but NumPy's matrix products sum in another order than pstrain's BLAS
calls, so the bits may differ: a coordinator auditing this worker replays its
gradients with `--replay rounding` (within the model's rounding bound), not `exact`
(which happened to pass on the project's machine, where both BLAS builds gave the same
bits, but nothing promises it).
Its finite differences see no difference. `--scale-gradient 1.01` pushes a wrong
gradient, which the audits flag.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from pstrain_client import Client, fingerprint, load_csv  # noqa: E402

ACTIVATIONS = ("relu", "tanh", "sigmoid")


class DenseClassifier:
    """pstrain's dense network with a softmax cross-entropy loss: layers l = 1...L of
    `layer<l>.weight` [in, out] and `layer<l>.bias` [out], the activation between them."""

    def __init__(self, model: str, layout: list):
        if model == "softmax":
            self.activation = None
        elif model.startswith("mlp.") and model[4:] in ACTIVATIONS:
            self.activation = model[4:]
        else:
            raise SystemExit(f"train_digits.py computes softmax and mlp.<activation> models, not {model}")
        self.names = [spec.name for spec in layout]
        self.layers = len(layout) // 2

    def activate(self, z: np.ndarray) -> np.ndarray:
        if self.activation == "relu":
            return np.maximum(z, 0.0)
        if self.activation == "tanh":
            return np.tanh(z)
        return 1.0 / (1.0 + np.exp(-z))

    def derivative(self, a: np.ndarray) -> np.ndarray:
        """f'(z) from a = f(z), as pstrain computes it."""
        if self.activation == "relu":
            return (a > 0).astype(np.float64)
        if self.activation == "tanh":
            return 1.0 - a * a
        return a * (1.0 - a)

    def forward(self, weights: dict, x: np.ndarray) -> list:
        """Every layer's outputs from the inputs `x` on: the hidden activations, then the logits."""
        activations = [x]
        for layer in range(1, self.layers + 1):
            z = activations[-1] @ weights[f"layer{layer}.weight"] + weights[f"layer{layer}.bias"]
            activations.append(z if layer == self.layers else self.activate(z))
        return activations

    def accuracy(self, weights: dict, x: np.ndarray, labels: np.ndarray) -> float:
        """The fraction of rows whose highest-scoring class is their label."""
        return float(np.mean(np.argmax(self.forward(weights, x)[-1], axis=1) == labels))

    def gradient(self, weights: dict, x: np.ndarray, labels: np.ndarray) -> tuple[dict, float]:
        """The gradient of the batch's mean cross-entropy at `weights`, and that loss."""
        batch = x.shape[0]
        activations = self.forward(weights, x)
        logits = activations[-1]
        # Per example, as SoftmaxCrossEntropyLoss: log Σ e^(o_j − m) − (o_c − m), and
        # p − onehot; exp and log from the C library, as pstrain's (glibc) are.
        output_gradient = np.empty_like(logits)
        total = 0.0
        for row in range(batch):
            target = int(labels[row])
            maximum = max(logits[row])
            terms = [math.exp(value - maximum) for value in logits[row]]
            total_terms = 0.0
            for term in terms:
                total_terms += term
            total += math.log(total_terms) - (logits[row, target] - maximum)
            for j, term in enumerate(terms):
                probability = term / total_terms
                output_gradient[row, j] = probability - 1.0 if j == target else probability
        # Backward, as DenseKernels.backward: the 1/B scale goes into the output
        # layer's products, the hidden layers' deltas carry it on.
        gradient = {}
        scale = 1.0 / batch
        delta = output_gradient
        for layer in range(self.layers, 0, -1):
            previous = activations[layer - 1]
            w = weights[f"layer{layer}.weight"]
            gradient[f"layer{layer}.weight"] = (previous.T @ delta) * scale
            gradient[f"layer{layer}.bias"] = delta.sum(axis=0) * scale
            if layer > 1:
                delta = (delta @ w.T) * scale * self.derivative(previous)
            scale = 1.0
        return gradient, total / batch


def parse_shard(text: str) -> tuple:
    index, _, count = text.partition("/")
    return int(index), int(count)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", required=True, help="the server's endpoint, tcp://host:port")
    parser.add_argument("--data", required=True, help="the CSV file the run trains on (every worker's)")
    parser.add_argument("--id", type=int, default=0, help="worker id, unique in the run")
    parser.add_argument("--shard", default="0/1", help="this worker's rows, I/N (a contiguous block)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-pushes", type=int, default=0, help="stop after this many pushes (0: none)")
    parser.add_argument("--scale-gradient", type=float, default=1.0,
                        help="multiply every gradient by this (a fault for the audits to find)")
    parser.add_argument("--test-data", help="held-out CSV file: print the final weights' accuracy on it")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer")
    parser.add_argument("--server-key", help="the server's CURVE public key file (.pub)")
    parser.add_argument("--client-key", help="this client's CURVE key pair file (.key)")
    args = parser.parse_args(argv)

    features, labels = load_csv(args.data)
    index, count = parse_shard(args.shard)
    rows = features.shape[0]
    # Shard.rows(of:): the contiguous block index·rows/count ..< (index + 1)·rows/count.
    shard_rows = np.arange(index * rows // count, (index + 1) * rows // count)

    with Client(args.connect, timeout=args.timeout, server_public_key=args.server_key,
                secret_key=args.client_key) as client:
        status = client.status()
        network = DenseClassifier(status["model"], status["layout"])
        snapshot = client.join(args.id, dataset_rows=rows, dataset_fingerprint=fingerprint(features, labels),
                               shard=(index, count))
        pushes, epoch_losses = 0, []
        for _ in range(args.epochs):
            losses = []
            for start in range(0, len(shard_rows), args.batch_size):
                batch = shard_rows[start:start + args.batch_size]
                gradient, loss = network.gradient(snapshot.weights, features[batch], labels[batch])
                if args.scale_gradient != 1.0:
                    gradient = {name: value * args.scale_gradient for name, value in gradient.items()}
                snapshot = client.push(gradient, batch)
                losses.append(loss)
                pushes += 1
                if args.max_pushes and pushes >= args.max_pushes:
                    break
            epoch_losses.append(float(np.mean(losses)) if losses else float("nan"))
            if args.max_pushes and pushes >= args.max_pushes:
                break
        client.leave()
    summary = {"worker": args.id, "pushes": pushes, "epoch_losses": epoch_losses,
               "version": snapshot.version}
    if args.test_data:
        test_features, test_labels = load_csv(args.test_data)
        summary["test_accuracy"] = network.accuracy(snapshot.weights, test_features, test_labels)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
