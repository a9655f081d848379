"""scikit-learn's handwritten digits as the two CSV files pstrain trains on.

Run through deploy/datasets/digits.sh, which sets up the venv (see that script and
README.md beside it). Three commands:

  write DIR      write DIR/digits-train.csv and DIR/digits-test.csv, print row counts
  check DIR      compare the two files' sha256 with the ones recorded here
  reference DIR  scikit-learn's own test accuracies on that split

The files: header p0,...,p63,label; pixels divided by 16, written in the shortest
exact decimal (0, 0.0625, ..., 0.5625, ..., 1); label an integer 0..9. The split is
train_test_split(test_size=0.25, stratify=y, random_state=0) over load_digits();
rows stay in the order of load_digits() (ascending original index) in each file.
"""

import hashlib
import os
import sys
import tempfile

FILES = ("digits-train.csv", "digits-test.csv")

# What `write` produces with the pinned packages of deploy/python-requirements.txt.
EXPECTED_SHA256 = {
    "digits-train.csv": "40d7ed22a647c70635cc117d19ea1d8db8f462e90d2fb2ef4b2a1b32fa29fff9",
    "digits-test.csv": "108575b7af21903469d38a1ba2c4c4ed849cfbcc7f9bd154c576bdb98765e3ac",
}

# The reference models' settings (documented in README.md).
LOGISTIC_MAX_ITER = 5000
MLP_MAX_ITER = 1000


def split():
    """(x_train, x_test, y_train, y_test) as integer pixels 0..16 and labels 0..9."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels, labels = digits.data, digits.target
    assert pixels.shape == (1797, 64), pixels.shape
    whole = pixels.astype(np.int64)
    assert np.array_equal(whole, pixels) and whole.min() >= 0 and whole.max() <= 16
    index = np.arange(len(labels))
    train_index, test_index = train_test_split(
        index, test_size=0.25, stratify=labels, random_state=0
    )
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    return whole[train_index], whole[test_index], labels[train_index], labels[test_index]


def pixel_text(value):
    """value/16 in the shortest decimal that reads back exactly: 0, 0.0625, ..., 1."""
    text = repr(value / 16)  # exact: a multiple of 1/16 has a short binary and decimal form
    return text.removesuffix(".0")


def csv_bytes(pixels, labels):
    table = [pixel_text(value) for value in range(17)]
    lines = [",".join([f"p{i}" for i in range(pixels.shape[1])] + ["label"])]
    for row, label in zip(pixels.tolist(), labels.tolist()):
        lines.append(",".join([table[value] for value in row] + [str(int(label))]))
    return ("\n".join(lines) + "\n").encode("ascii")


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def write(directory):
    x_train, x_test, y_train, y_test = split()
    for name, pixels, labels in (
        (FILES[0], x_train, y_train),
        (FILES[1], x_test, y_test),
    ):
        data = csv_bytes(pixels, labels)
        # Written beside the target and renamed, so a reader never sees half a file.
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, os.path.join(directory, name))
        except BaseException:
            os.unlink(temporary)
            raise
        digest = hashlib.sha256(data).hexdigest()
        note = "" if EXPECTED_SHA256[name] == digest else "  (differs from the recorded sha256)"
        print(f"{os.path.join(directory, name)}: {len(labels)} rows, sha256 {digest}{note}")
    return 0


def check(directory):
    failures = 0
    for name in FILES:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            print(f"{path}: missing", file=sys.stderr)
            failures += 1
            continue
        digest = sha256(path)
        if digest == EXPECTED_SHA256[name]:
            print(f"{path}: sha256 {digest} as recorded")
        else:
            print(
                f"{path}: sha256 {digest}, recorded {EXPECTED_SHA256[name]}",
                file=sys.stderr,
            )
            failures += 1
    return 1 if failures else 0


def load_csv(path):
    import numpy as np

    with open(path) as file:
        header = file.readline().strip().split(",")
    if header[-1] != "label":
        raise SystemExit(f"{path}: the last column is {header[-1]!r}, not 'label'")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return table[:, :-1], table[:, -1].astype(np.int64)


def reference(directory):
    import warnings

    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x_train, y_train = load_csv(os.path.join(directory, FILES[0]))
    x_test, y_test = load_csv(os.path.join(directory, FILES[1]))
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    print(f"train {len(y_train)} rows, test {len(y_test)} rows, {x_train.shape[1]} features")
    models = (
        (
            f"LogisticRegression(max_iter={LOGISTIC_MAX_ITER})",
            LogisticRegression(max_iter=LOGISTIC_MAX_ITER),
        ),
        (
            f"MLPClassifier(hidden_layer_sizes=(128,), random_state=0, max_iter={MLP_MAX_ITER})",
            MLPClassifier(hidden_layer_sizes=(128,), random_state=0, max_iter=MLP_MAX_ITER),
        ),
    )
    for name, model in models:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x_train, y_train)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        iterations = int(np.max(model.n_iter_))
        accuracy = model.score(x_test, y_test)
        train_accuracy = model.score(x_train, y_train)
        print(
            f"{name}: test accuracy {accuracy:.4f} ({round(accuracy * len(y_test))}/{len(y_test)}), "
            f"train accuracy {train_accuracy:.4f}, {iterations} iterations"
            + ("" if converged else ", NOT converged")
        )
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "check", "reference"):
        print("usage: digits.py write|check|reference DIR", file=sys.stderr)
        return 2
    command, directory = argv[1], argv[2]
    return {"write": write, "check": check, "reference": reference}[command](directory)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
