"""The example's NumPy passes (examples/train_digits.py) against central finite
differences of their own loss, for softmax and a relu and tanh MLP: the gradient the
NumPy worker pushes is the gradient of the mean cross-entropy."""

import numpy as np
import pytest

from pstrain_client import TensorSpec, fingerprint
from train_digits import DenseClassifier


def layout(widths):
    specs = []
    for layer in range(1, len(widths)):
        specs.append(TensorSpec(f"layer{layer}.weight", (widths[layer - 1], widths[layer])))
        specs.append(TensorSpec(f"layer{layer}.bias", (widths[layer],)))
    return specs


@pytest.mark.parametrize("model, widths", [
    ("softmax", [5, 3]), ("mlp.relu", [5, 7, 3]), ("mlp.tanh", [5, 4, 6, 3]), ("mlp.sigmoid", [5, 4, 3]),
])
def test_the_numpy_gradient_is_the_derivative_of_the_loss(model, widths):
    random = np.random.default_rng(4)
    specs = layout(widths)
    weights = {s.name: random.normal(0, 0.5, s.shape) for s in specs}
    x = random.normal(0, 1, (6, widths[0]))
    labels = random.integers(0, widths[-1], 6).astype(np.float64)
    network = DenseClassifier(model, specs)
    gradient, loss = network.gradient(weights, x, labels)
    assert np.isfinite(loss) and loss > 0
    h = 1e-6
    for spec in specs:
        for index in np.ndindex(*spec.shape):
            moved = {name: value.copy() for name, value in weights.items()}
            moved[spec.name][index] += h
            up = network.gradient(moved, x, labels)[1]
            moved[spec.name][index] -= 2 * h
            down = network.gradient(moved, x, labels)[1]
            numeric = (up - down) / (2 * h)
            assert abs(gradient[spec.name][index] - numeric) <= 1e-6 * max(1, abs(numeric)), (
                spec.name, index)


def test_the_fingerprint_is_fnv1a_over_the_rows_bits():
    features = np.array([[1.0], [-1.0]])
    labels = np.array([-1.0, 1.0])
    value = 0xCBF29CE484222325
    for number in (1.0, -1.0, -1.0, 1.0):
        for byte in np.array([number], dtype="<f8").tobytes():
            value = ((value ^ byte) * 0x100000001B3) % (1 << 64)
    assert fingerprint(features, labels) == value
