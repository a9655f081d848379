"""A dense relu network with a softmax cross-entropy loss, in plain NumPy.

The math a hand-written trainer uses, shared by model_bench.py and ps_baseline.py:
forward  z_l = a_(l-1) @ W_l + b_l, a_l = relu(z_l), logits = a_L @ W_out + b_out,
         p = softmax(logits), loss = mean over the batch of -log p[label];
backward d = (p - onehot) / B, dW = a.T @ d, db = sum of d over the batch,
         d_prev = (d @ W.T) * (a_prev > 0).

All parameters live in one flat vector, layer by layer (W_1 row-major as
(fan_in, fan_out), b_1, W_2, b_2, ...), so that a parameter server can apply a
gradient with one operation and send the weights as one frame of raw bytes.
The importer sets the BLAS thread count before importing this module.
"""

import numpy as np


class MLP:
    """Layer sizes [features, hidden..., classes] and the flat layout of their parameters."""

    def __init__(self, sizes, dtype=np.float64):
        if len(sizes) < 2 or any(size < 1 for size in sizes):
            raise ValueError(f"layer sizes must be at least 2 positive numbers, got {sizes}")
        self.sizes = list(sizes)
        self.dtype = np.dtype(dtype)
        self.shapes = []  # ((fan_in, fan_out), offset of W, offset of b)
        offset = 0
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.shapes.append(((fan_in, fan_out), offset, offset + fan_in * fan_out))
            offset += fan_in * fan_out + fan_out
        self.count = offset

    def layers(self, flat):
        """[(W, b), ...] as views into the flat vector `flat` (writable if it is)."""
        result = []
        for (fan_in, fan_out), w_offset, b_offset in self.shapes:
            w = flat[w_offset:b_offset].reshape(fan_in, fan_out)
            b = flat[b_offset : b_offset + fan_out]
            result.append((w, b))
        return result

    def he_normal(self, rng):
        """He normal initialisation for relu: W ~ N(0, 2/fan_in), drawn layer by layer
        with `rng.standard_normal((fan_in, fan_out))`; biases 0. The output layer is drawn
        the same way."""
        flat = np.zeros(self.count, dtype=np.float64)
        for (w, _b), ((fan_in, fan_out), _, _) in zip(self.layers(flat), self.shapes):
            w[...] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        return flat.astype(self.dtype, copy=False)

    def flops_per_sample(self):
        """Multiply-adds x2 of one forward and backward pass for one sample (the input's
        own gradient is not computed)."""
        products = [fan_in * fan_out for (fan_in, fan_out), _, _ in self.shapes]
        return 2 * sum(products) + 2 * sum(products) + 2 * sum(products[1:])

    def logits(self, flat, x):
        """The output layer's values for the rows of x."""
        a = x
        layers = self.layers(flat)
        for w, b in layers[:-1]:
            a = a @ w
            a += b
            np.maximum(a, 0, out=a)
        w, b = layers[-1]
        out = a @ w
        out += b
        return out

    def predict(self, flat, x):
        """The most likely class of each row of x."""
        return np.argmax(self.logits(flat, x), axis=1)


class Gradient:
    """Computes the mean softmax cross-entropy loss of a batch and its gradient into a
    flat buffer it owns (reused from call to call)."""

    def __init__(self, model):
        self.model = model
        self.flat = np.empty(model.count, dtype=model.dtype)
        self.layers = model.layers(self.flat)
        self._rows = np.arange(0)

    def __call__(self, params, x, y):
        """Loss of the batch (x, y) at `params`; its gradient is left in self.flat."""
        model = self.model
        layers = model.layers(params)
        batch = x.shape[0]
        if self._rows.shape[0] != batch:
            self._rows = np.arange(batch)
        rows = self._rows

        activations = [x]
        a = x
        for w, b in layers[:-1]:
            a = a @ w
            a += b
            np.maximum(a, 0, out=a)
            activations.append(a)
        w, b = layers[-1]
        p = a @ w
        p += b
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        loss = -float(np.log(p[rows, y]).mean())

        d = p
        d[rows, y] -= 1
        d /= batch
        for index in range(len(layers) - 1, -1, -1):
            w, _b = layers[index]
            gw, gb = self.layers[index]
            a = activations[index]
            np.matmul(a.T, d, out=gw)
            np.sum(d, axis=0, out=gb)
            if index > 0:
                d = d @ w.T
                d *= a > 0
        return loss


def load_csv(path, dtype=np.float64):
    """(features, labels) of a CSV with a header row whose last column is `label`."""
    with open(path) as file:
        header = file.readline().strip().split(",")
    if not header or header[-1] != "label":
        raise ValueError(f"{path}: the last column of the header is not 'label'")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if table.shape[1] != len(header):
        raise ValueError(f"{path}: {table.shape[1]} columns, the header names {len(header)}")
    labels = table[:, -1]
    if np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise ValueError(f"{path}: labels must be class indices 0, 1, 2, ...")
    return np.ascontiguousarray(table[:, :-1], dtype=dtype), labels.astype(np.int64)
