"""Argument types the NumPy benchmarks share (argparse `type=` functions)."""

import argparse


def positive_int(text):
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text):
    """A number above 0 (NaN refused)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def hidden_sizes(text):
    """Hidden layer sizes, H or H1,H2,..., each at least 1."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or H1,H2,..., got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be at least 1, got {text!r}")
    return sizes
