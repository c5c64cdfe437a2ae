"""Evidence of training on the test set (images or padded reviews), read in the student's
process (so it can be hidden: the trusted re-measurement has its own check, grader/trusted.py,
that does not rest on it)."""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE = 512
PIXELS = 128  # of the first channel, enough to tell any two images apart


def signatures(images: np.ndarray) -> list[bytes]:
    """Per image (N, H, W, C): the order of PIXELS of its first-channel pixels, which any
    increasing affine map (/255, a per-channel normalisation) leaves as it is. The pixels are
    spread evenly over the whole image: the first rows of a digit (MNIST) are blank in every
    image, so their order would make every digit look alike."""
    first = images[..., 0].reshape(len(images), -1)
    first = first[:, ::max(1, first.shape[1] // PIXELS)][:, :PIXELS]
    order = np.argsort(first, axis=1, kind="stable").astype(np.int16)  # one call for all rows
    return [row.tobytes() for row in order]


def served_test_share(x: Any, raw_test: np.ndarray) -> float | None:
    """The share of (a sample of) the training inputs `x` that are served test images, for
    inputs laid out as the served images (N, H, W[, C]); None when they are not."""
    raw = raw_test[..., None] if raw_test.ndim == 3 else raw_test
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) < 3 or tuple(shape[1:3]) != raw.shape[1:3] or len(x) == 0:
        return None
    pick = np.sort(np.random.default_rng(0).choice(len(x), min(SAMPLE, len(x)), replace=False))
    rows = np.asarray(x[pick], dtype=np.float32)
    rows = rows[..., None] if rows.ndim == 3 else rows
    test = set(signatures(raw))
    return round(sum(s in test for s in signatures(rows)) / len(pick), 4)


def served_review_share(x: Any, test_rows: Any) -> float | None:
    """The share of (a sample of) the training rows `x` (N, L) that are rows of the padded test
    reviews `test_rows` (M, L), compared as integer word ids; None when either is not a 2-D
    array of one length."""
    shape, test_shape = getattr(x, "shape", None), getattr(test_rows, "shape", None)
    if shape is None or test_shape is None or len(shape) != 2 or len(test_shape) != 2 \
            or shape[1] != test_shape[1] or len(x) == 0:
        return None
    pick = np.sort(np.random.default_rng(0).choice(len(x), min(SAMPLE, len(x)), replace=False))
    test = {row.tobytes() for row in np.asarray(test_rows).astype(np.int64)}
    rows = np.asarray(x[pick]).astype(np.int64)
    return round(sum(row.tobytes() in test for row in rows) / len(pick), 4)
