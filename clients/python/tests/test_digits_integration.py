"""The NumPy worker (examples/train_digits.py) with real processes: a pstrain server
holding the softmax model of the digits, a Swift `pstrain worker`, two NumPy workers
(one honest, one pushing its gradients scaled by 1.01) and a coordinator auditing
every few versions with `--replay rounding`. The honest NumPy worker's pushes are
applied, its audits (finite differences and replay) pass and the scaled one's fail, and
the NumPy forward pass classifies the held-out digits as the coordinator's evaluation does.

Needs the pstrain binary (PSTRAIN_BINARY, or .build/debug/pstrain) and the digits files
(PSTRAIN_DIGITS_DIR, which deploy/local.sh test sets); skipped without them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from pstrain_client import Client, load_csv
from train_digits import DenseClassifier

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("PSTRAIN_BINARY") or os.path.join(ROOT, ".build", "debug", "pstrain")
DIGITS = os.environ.get("PSTRAIN_DIGITS_DIR", "")
TRAIN = os.path.join(DIGITS, "digits-train.csv")
TEST = os.path.join(DIGITS, "digits-test.csv")
EXAMPLE = os.path.join(ROOT, "clients", "python", "examples", "train_digits.py")

pytestmark = pytest.mark.skipif(
    not (os.access(BINARY, os.X_OK) and DIGITS and os.path.exists(TRAIN)),
    reason="needs the pstrain binary and PSTRAIN_DIGITS_DIR (deploy/local.sh test sets both)")


class Process:
    """A process whose output goes to files (no pipe fills up); killed on stop."""

    def __init__(self, arguments: list, directory: str, name: str):
        self.out_path = os.path.join(directory, f"{name}.out")
        self.err_path = os.path.join(directory, f"{name}.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(arguments, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    @property
    def output(self) -> str:
        return open(self.out_path, encoding="utf-8", errors="replace").read()

    @property
    def errors(self) -> str:
        return open(self.err_path, encoding="utf-8", errors="replace").read()

    def line(self, prefix: str, within: float) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for text in (self.output, self.errors):
                for line in text.splitlines():
                    if line.startswith(prefix):
                        return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line starting with {prefix!r}: {self.errors[-800:]}")

    def wait(self, within: float) -> int:
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"still running after {within} s: {self.errors[-800:]}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_numpy_worker_trains_beside_a_swift_worker_and_passes_the_audits():
    with tempfile.TemporaryDirectory(prefix="pstrain-pyclient-") as directory:
        processes = []
        try:
            server = Process([BINARY, "server", "--bind", "tcp://127.0.0.1:*", "--model", "softmax",
                              "--features", "64", "--classes", "10", "--lr", "0.2"], directory, "server")
            processes.append(server)
            endpoint = server.line("listening ", within=60).split(" ", 1)[1].strip()
            coordinator = Process([BINARY, "coordinator", "--connect", endpoint, "--data", TRAIN,
                                   "--every", "3", "--audit-budget", "0", "--replay", "rounding",
                                   "--test-data", TEST, "--json"], directory, "coordinator")
            processes.append(coordinator)
            coordinator.line('{"type":"subscribed"', within=60)

            swift = Process([BINARY, "worker", "--connect", endpoint, "--data", TRAIN, "--id", "0",
                             "--shard", "0/3", "--epochs", "2", "--batch-size", "32"], directory, "swift")
            honest = Process([sys.executable, EXAMPLE, "--connect", endpoint, "--data", TRAIN,
                              "--id", "1", "--shard", "1/3", "--epochs", "2",
                              "--test-data", TEST], directory, "numpy")
            scaled = Process([sys.executable, EXAMPLE, "--connect", endpoint, "--data", TRAIN,
                              "--id", "2", "--shard", "2/3", "--epochs", "1", "--scale-gradient", "1.01"],
                             directory, "scaled")
            processes += [swift, honest, scaled]
            for worker in (swift, honest, scaled):
                assert worker.wait(within=180) == 0, worker.errors[-1500:]

            # 449 rows a shard, batches of 32: 15 pushes an epoch.
            summary = json_lines(honest.output)[-1]
            assert summary["pushes"] == 30
            # It learns: the second epoch's loss is below the first's.
            first, second = summary["epoch_losses"]
            assert second < first, summary
            assert 0 <= summary["test_accuracy"] <= 1
            assert json_lines(scaled.output)[-1]["pushes"] == 15
            with Client(endpoint, timeout=30) as client:
                status = client.status()
            # Every push of the three workers was applied, one version each (async).
            assert status["gradients_applied"] == 30 + 30 + 15
            assert status["version"] == 75 and status["workers_left"] == 3
            assert status["rejected"] == 0

            coordinator.process.send_signal(signal.SIGTERM)
            coordinator.wait(within=120)
            # The coordinator evaluated the final weights on the held-out digits: the
            # NumPy forward pass classifies them as pstrain's does, and better than chance.
            with Client(endpoint, timeout=30) as client:
                evaluation = client.status()["last_evaluation"]
            assert evaluation is not None and evaluation["version"] == 75, evaluation
            network = DenseClassifier(status["model"], status["layout"])
            accuracy = network.accuracy(status["weights"], *load_csv(TEST))
            assert accuracy == pytest.approx(evaluation["accuracy"], abs=1e-12)
            assert accuracy >= 0.3, accuracy
            audits = [line for line in json_lines(coordinator.output) if line.get("type") == "audit"]
            by_worker = {worker: [a for a in audits if a["worker"] == worker] for worker in (0, 1, 2)}
            honest_audits = by_worker[1]
            assert honest_audits, coordinator.output[-2000:]
            for audit in honest_audits + by_worker[0]:
                assert audit["passed"], json.dumps(audit)[:1500]
                assert set(audit["checks"]) == {"finite_differences", "replay"}
                assert audit["replay"]["mode"] == "rounding" and audit["replay"]["passed"]
            # Conclusive: the finite differences measured the NumPy gradient, not noise.
            assert any(a["conclusive"] for a in honest_audits)
            failed = [a for a in by_worker[2] if not a["passed"]]
            assert failed, json.dumps(by_worker[2])[:1500]
            assert all("finite_differences" in a["failed_checks"] for a in failed)
        finally:
            for process in processes:
                process.stop()
