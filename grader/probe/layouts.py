"""How a program turns the served images into its model's inputs, as data: a layout (channels
first or last, flattened or not) and an affine map per colour channel.

The probe fits this description in the student's process from inputs it saw the model
receive; the clean sandbox applies it to images the program never received. Plain NumPy,
so both sides share one definition. A wrong description can only lower the figure measured
with it: it is a way to feed the model, not a source of labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_DATASETS = ("cifar10", "mnist")  # the datasets whose images a layout describes
LAYOUTS = ("channels last", "channels first", "flattened channels last", "flattened channels first",
           "no channel axis")
MAX_RELATIVE_ERROR = 1e-3  # fitted map vs the inputs the model really received


def as_nhwc(raw: np.ndarray) -> np.ndarray:
    """Served images (N, H, W) or (N, H, W, C) as (N, H, W, C)."""
    return raw[..., None] if raw.ndim == 3 else raw


def arrange(images: np.ndarray, layout: str) -> np.ndarray:
    """(N, H, W, C) images in `layout`. Raises ValueError for an unknown layout."""
    n = len(images)
    if layout == "channels last":
        return images
    if layout == "channels first":
        return images.transpose(0, 3, 1, 2)
    if layout == "flattened channels last":
        return images.reshape(n, -1)
    if layout == "flattened channels first":
        return images.transpose(0, 3, 1, 2).reshape(n, -1)
    if layout == "no channel axis" and images.shape[-1] == 1:
        return images[..., 0]
    raise ValueError(f"unknown or unfit layout {layout!r}")


def describe(inputs: Any, raw: np.ndarray, rows: int = 256) -> dict[str, Any] | None:
    """The layout and per-channel affine map with inputs[i] == map(raw[i]), fitted on the
    first `rows` rows; None when no layout and affine map reproduce the inputs.

    inputs: what the model received for the served images raw (row-aligned), any array-like
    with a leading batch axis. raw: served uint8 images, (N, H, W[, C]).
    Returns {"layout", "scale": [per channel], "shift": [per channel]}.
    """
    x = np.asarray(inputs[:rows], dtype=np.float64)
    images = as_nhwc(np.asarray(raw[:len(x)]))
    if len(x) < 2 or len(images) != len(x):
        return None
    channels = np.broadcast_to(np.arange(images.shape[-1]), images.shape)
    for layout in LAYOUTS:
        try:
            r, ch = arrange(images, layout), arrange(channels, layout)
        except ValueError:
            continue
        if r.shape != x.shape:
            continue
        fitted = fit_affine(x, r.astype(np.float64), ch, images.shape[-1])
        if fitted is not None:
            return {"layout": layout, "scale": fitted[0], "shift": fitted[1]}
    return None


def fit_affine(x: np.ndarray, r: np.ndarray, ch: np.ndarray, channels: int):
    """Per-channel least-squares a, b with x ~ a*r + b; None if the fit is not exact."""
    scales, shifts = [], []
    for c in range(channels):
        xs, rs = x[ch == c], r[ch == c]
        if rs.std() == 0:
            return None
        a, b = np.polyfit(rs, xs, 1)
        error = np.abs(a * rs + b - xs).max()
        if error > MAX_RELATIVE_ERROR * max(1e-6, np.abs(xs).max()):
            return None
        scales.append(float(a))
        shifts.append(float(b))
    return scales, shifts


def apply(raw: np.ndarray, description: dict[str, Any]) -> np.ndarray:
    """Images (N, H, W[, C]) uint8 -> float32 model inputs as `description` says."""
    images = as_nhwc(raw).astype(np.float32)
    scale = np.asarray(description["scale"], dtype=np.float32)
    shift = np.asarray(description["shift"], dtype=np.float32)
    if len(scale) != images.shape[-1] or len(shift) != images.shape[-1]:
        raise ValueError("the description's channels do not match the images")
    return np.ascontiguousarray(arrange(images * scale + shift, description["layout"]), dtype=np.float32)
