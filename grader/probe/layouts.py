"""How a program turns the served images into its model's inputs, as data: a layout (channels
first or last, flattened or not) and an affine map per colour channel, or, for flattened rows
standardised feature by feature (scikit-learn's StandardScaler), one affine map per feature.

The probe fits this description in the student's process from inputs it saw the model
receive; the clean sandbox applies it to images the program never received. Plain NumPy,
so both sides share one definition. A wrong description can only lower the figure measured
with it: it is a way to feed the model, not a source of labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_DATASETS = ("cifar10", "mnist")  # the datasets whose images a layout describes
TEXT_DATASETS = ("imdb",)  # reviews as word ids, padded to one length (pad_sequences)
PADDED = "padded sequences"


def re_measured(dataset: str | None, framework: str) -> bool:
    """Whether a model of this dataset and framework is exported and re-measured outside the
    program: image classifiers, text models of padded reviews (Keras or PyTorch), and
    pretrained models of torchvision and keras.applications (no dataset: Programs 2 and 5) on
    the host's reference images."""
    return (dataset in IMAGE_DATASETS or (dataset in TEXT_DATASETS and framework in ("keras", "torch"))
            or framework in ("torchvision", "keras_applications"))


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
    """The layout and affine map with inputs[i] == map(raw[i]), fitted on the first `rows`
    rows; None when no layout and affine map reproduce the inputs.

    inputs: what the model received for the served images raw (row-aligned), any array-like
    with a leading batch axis. raw: served uint8 images, (N, H, W[, C]).
    Returns {"layout", "scale": [per channel], "shift": [per channel]}, or for flattened rows
    {"layout", "per": "feature", "scale": (F,) array, "shift": (F,) array}.
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
        if x.ndim == 2:
            per_feature = affine_fit(x, r.astype(np.float64))
            if per_feature is not None:
                return {"layout": layout, "per": "feature", "scale": per_feature[0].astype(np.float32),
                        "shift": per_feature[1].astype(np.float32)}
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


def affine_fit(xs: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per feature a, b with xs = a*raw + b to within a quarter of a pixel level, and which
    features vary (only those are checked; the others get a = 0 and xs' mean); None when
    there is no such map or fewer than half the features vary. xs, raw: (N, F) float64."""
    rc, xc = raw - raw.mean(0), xs - xs.mean(0)
    var = (rc ** 2).sum(0)
    varying = var > 0
    if varying.mean() < 0.5:
        return None
    a = np.where(varying, (rc * xc).sum(0) / np.where(varying, var, 1.0), 0.0)
    if not np.all(np.abs(a[varying]) > 0):
        return None
    b = xs.mean(0) - a * raw.mean(0)
    if not within_a_level(xs, raw, a, b, varying):
        return None
    return a, b, varying


def within_a_level(xs: np.ndarray, raw: np.ndarray, a: np.ndarray, b: np.ndarray, varying: np.ndarray) -> bool:
    err = np.abs(xs - (a * raw + b))[:, varying]
    return bool(np.all(err < 0.25 * np.abs(a[varying])))


def describe_sequences(inputs: Any, raw: Any, rows: int = 256) -> dict[str, Any] | None:
    """How reviews (lists of word ids, as load_data returned them) became the model's inputs,
    when by pad_sequences with maxlen = the inputs' length: {"layout": "padded sequences",
    "maxlen", "padding", "truncating", "value", "dtype"}; else None.
    inputs: (N, L) integer array; raw: the reviews, row-aligned."""
    x = np.asarray(inputs[:rows])
    if x.ndim != 2 or len(x) < 2 or len(raw) < len(x) or x.dtype.kind not in "iuf":
        return None
    value = int(x[np.argmin([len(r) for r in raw[:len(x)]])].min()) if x.size else 0
    for padding in ("pre", "post"):
        for truncating in ("pre", "post"):
            description = {"layout": PADDED, "maxlen": int(x.shape[1]), "padding": padding,
                           "truncating": truncating, "value": value, "dtype": x.dtype.str}
            if np.array_equal(pad(raw[:len(x)], description), x):
                return description
    return None


def pad(sequences: Any, description: dict[str, Any]) -> np.ndarray:
    """Keras' pad_sequences as `description` says: (N, maxlen) of its dtype."""
    n, maxlen = len(sequences), int(description["maxlen"])
    out = np.full((n, maxlen), description["value"], dtype=np.dtype(description["dtype"]))
    for i, seq in enumerate(sequences):
        seq = list(seq)
        seq = seq[-maxlen:] if description["truncating"] == "pre" else seq[:maxlen]
        if seq:
            if description["padding"] == "post":
                out[i, :len(seq)] = seq
            else:
                out[i, maxlen - len(seq):] = seq
    return out


def apply(raw: np.ndarray, description: dict[str, Any]) -> np.ndarray:
    """Images (N, H, W[, C]) uint8 -> float32 model inputs as `description` says; reviews
    already padded (the host pads them) pass as they are.
    Raises ValueError when the description does not fit the images."""
    if description["layout"] == PADDED:
        if raw.ndim != 2 or raw.shape[1] != description["maxlen"] or raw.dtype.kind not in "iuf":
            raise ValueError("the padded reviews do not match the description")
        return np.ascontiguousarray(raw)
    images = as_nhwc(raw).astype(np.float32)
    scale = np.asarray(description["scale"], dtype=np.float32)
    shift = np.asarray(description["shift"], dtype=np.float32)
    if description.get("per") == "feature":
        rows = arrange(images, description["layout"])
        if rows.ndim != 2 or scale.shape != rows.shape[1:] or shift.shape != scale.shape:
            raise ValueError("the description's features do not match the images")
        return np.ascontiguousarray(rows * scale + shift, dtype=np.float32)
    if len(scale) != images.shape[-1] or len(shift) != images.shape[-1]:
        raise ValueError("the description's channels do not match the images")
    return np.ascontiguousarray(arrange(images * scale + shift, description["layout"]), dtype=np.float32)
