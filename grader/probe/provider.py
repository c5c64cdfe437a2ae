"""Offline CIFAR-10, MNIST and IMDB for student code.

Student programs call ``keras.datasets.cifar10.load_data()``, ``mnist.load_data()`` or
``imdb.load_data(num_words=...)``, which would download from the internet. The sandbox has no network, so the probe answers
those calls from here instead:

* **real data** when faculty staged it (``grader data stage``): ``<cache>/datasets/<name>.npz``
  with the keys ``x_train, y_train, x_test, y_test`` in the layout Keras returns;
* otherwise a **synthetic stand-in** with the same shapes and dtypes whose ten classes are
  learnable (a small CNN gets well above chance, a model on shuffled labels does not), so
  the course's checks on training and accuracy still mean something. Reports say which one
  was served (:meth:`Served.describe`).

IMDB is served as Keras stores it (reviews as lists of raw word ranks, 1 = most frequent
word); :func:`imdb_load_data` then applies ``load_data``'s own arguments (``num_words``,
``index_from``, ``maxlen``, ...) the way Keras does, and :func:`imdb_word_index` answers
``get_word_index()``.

This module runs inside the sandbox next to student code, so it imports only the standard
library and numpy at module level.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bump whenever the generator's output changes: cached stand-ins carry it in their name.
STANDIN_VERSION = 1

NUM_CLASSES = 10
_CHUNK = 2048  # samples generated per vectorised step; fixed, so output never depends on it


@dataclass(frozen=True)
class _Spec:
    image_shape: tuple[int, ...]
    label_shape: tuple[int, ...]  # per sample: (1,) for cifar10, () for mnist
    n_train: int
    n_test: int


SPECS: dict[str, _Spec] = {
    "cifar10": _Spec((32, 32, 3), (1,), 50000, 10000),
    "mnist": _Spec((28, 28), (), 60000, 10000),
}
# Text datasets: ragged sequences of word ids, binary labels.
TEXT_SPECS: dict[str, _Spec] = {
    "imdb": _Spec((), (), 25000, 25000),
}
CLASSES = {"cifar10": NUM_CLASSES, "mnist": NUM_CLASSES, "imdb": 2}

_KEYS = ("x_train", "y_train", "x_test", "y_test")


class ProviderError(ValueError):
    """A dataset cannot be served (unknown name, malformed staged file)."""


@dataclass
class Served:
    """What the probe hands to student code, plus where it came from."""

    name: str  # "cifar10" | "mnist" | "imdb"
    source: str  # "real" | "standin"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    quick: bool
    word_index_path: str | None = None  # imdb: the staged real word index, if any

    def describe(self) -> str:
        return self.name if self.source == "real" else f"{self.name} (synthetic stand-in)"

    def info(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "quick": bool(self.quick),
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "classes": CLASSES.get(self.name, NUM_CLASSES),
            "description": self.describe(),
        }

    def load_data(self):
        """The tuple ``keras.datasets.<name>.load_data()`` returns."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)


def canonical_labels(served: Served) -> np.ndarray:
    """The test labels as a flat int64 array (what accuracy is measured against)."""
    return np.asarray(served.y_test).reshape(-1).astype(np.int64, copy=True)


# ------------------------------------------------------------------------------ loading


def load(
    name: str,
    *,
    cache_dir: str | os.PathLike,
    quick: bool,
    quick_train: int,
    quick_test: int,
    seed: int = 0,
) -> Served:
    """Serve ``name``: staged real data if present, else the synthetic stand-in.

    In quick mode a stratified subset of ``quick_train``/``quick_test`` samples is served
    (equal count per class; when the count is not a multiple of the number of classes, the
    first classes get one more). Everything is deterministic for a given ``seed``.
    """
    if name in TEXT_SPECS:
        return _load_text(name, cache_dir=cache_dir, quick=quick, quick_train=quick_train,
                          quick_test=quick_test, seed=seed)
    if name not in SPECS:
        raise ProviderError(f"unknown dataset {name!r}; served are: "
                            f"{', '.join(list(SPECS) + list(TEXT_SPECS))}")
    spec = SPECS[name]
    cache = Path(cache_dir)
    real_path = cache / "datasets" / f"{name}.npz"

    if real_path.is_file():
        arrays = _read_real(name, real_path)
        if quick:
            x_tr, y_tr = _stratified(arrays["x_train"], arrays["y_train"], quick_train, seed,
                                     name, 1)
            x_te, y_te = _stratified(arrays["x_test"], arrays["y_test"], quick_test, seed,
                                     name, 2)
            arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
        return Served(name, "real", quick=bool(quick), **arrays)

    if quick:
        n_train = max(0, int(quick_train))
        n_test = max(0, int(quick_test))
        x_tr, y_tr = _standin(name, n_train, seed, split=1, quick=True)
        x_te, y_te = _standin(name, n_test, seed, split=2, quick=True)
        return Served(name, "standin", x_tr, y_tr, x_te, y_te, quick=True)

    arrays = _full_standin(name, spec, cache, seed)
    return Served(name, "standin", quick=False, **arrays)


def standin_path(name: str, cache_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Where the full-size stand-in of ``name`` is cached."""
    return Path(cache_dir) / "standin" / f"{name}-seed{int(seed)}-v{STANDIN_VERSION}.npz"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in _KEYS if k not in z.files]
        if missing:
            raise ProviderError(f"{path} lacks {', '.join(missing)}")
        return {k: np.asarray(z[k]) for k in _KEYS}


def _normalise(name: str, arrays: dict[str, np.ndarray], origin: Path) -> dict[str, np.ndarray]:
    """Check shapes and give the exact dtypes/layout Keras' loaders return."""
    spec = SPECS[name]
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.shape[1:] != spec.image_shape:
            raise ProviderError(
                f"{origin}: x_{split} has shape {x.shape}, expected (N, "
                f"{', '.join(map(str, spec.image_shape))})"
            )
        if y.size != len(x):
            raise ProviderError(f"{origin}: y_{split} has {y.size} labels for {len(x)} images")
        if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
            raise ProviderError(f"{origin}: y_{split} has labels outside 0..{NUM_CLASSES - 1}")
        if x.dtype != np.uint8 and (
            x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > 255))
        ):
            raise ProviderError(f"{origin}: x_{split} must hold uint8 pixels, not {x.dtype}")
        out[f"x_{split}"] = np.ascontiguousarray(x, dtype=np.uint8)
        y = y.reshape((len(x),) + spec.label_shape)
        out[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.uint8)
    return out


def _read_real(name: str, path: Path) -> dict[str, np.ndarray]:
    try:
        arrays = _read_npz(path)
    except ProviderError:
        raise
    except Exception as exc:  # zipfile / numpy format errors
        raise ProviderError(f"cannot read the staged dataset {path}: {exc}") from exc
    return _normalise(name, arrays, path)


def _stratified(x: np.ndarray, y: np.ndarray, n: int, seed: int, name: str, split: int,
                classes: int = NUM_CLASSES):
    """A deterministic subset with (as far as the data allows) equal count per class."""
    chosen = _stratified_index(y, n, seed, name, split, classes)
    return (x, y) if chosen is None else (x[chosen], y[chosen])


def _stratified_index(y: np.ndarray, n: int, seed: int, name: str, split: int,
                      classes: int = NUM_CLASSES) -> np.ndarray | None:
    """The rows `_stratified` picks, in its order; None when it takes them all."""
    n = max(0, int(n))
    flat = y.reshape(-1)
    if n >= len(flat):
        return None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _code(name), split, 7]))
    picks = []
    for c, k in enumerate(_per_class(n, classes)):
        idx = np.flatnonzero(flat == c)
        picks.append(idx[rng.permutation(len(idx))[:k]])
    chosen = np.concatenate(picks)
    return chosen[rng.permutation(len(chosen))]  # interleave classes, like the real sets


def _per_class(n: int, classes: int = NUM_CLASSES) -> list[int]:
    base, extra = divmod(n, classes)
    return [base + (1 if c < extra else 0) for c in range(classes)]


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


# ------------------------------------------------------------------- full-size caching


def _full_standin(name: str, spec: _Spec, cache: Path, seed: int) -> dict[str, np.ndarray]:
    path = standin_path(name, cache, seed)
    if path.is_file():
        try:
            arrays = _read_npz(path)
            if len(arrays["x_train"]) == spec.n_train and len(arrays["x_test"]) == spec.n_test:
                return _normalise(name, arrays, path)
        except Exception:
            pass  # damaged or foreign file: regenerate and replace it
    x_tr, y_tr = _standin(name, spec.n_train, seed, split=1, quick=False)
    x_te, y_te = _standin(name, spec.n_test, seed, split=2, quick=False)
    arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    try:
        _save_atomic(path, arrays)
    except OSError:
        pass  # a read-only cache only costs the next run the generation time
    return arrays


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # shared by sandboxes that may run as other users
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------- generation


def _standin(name: str, n: int, seed: int, *, split: int, quick: bool):
    """``n`` stand-in samples with balanced, shuffled labels, built chunk by chunk."""
    spec = SPECS[name]
    root = np.random.SeedSequence([int(seed), _code(name), split, int(quick), STANDIN_VERSION])
    labels_rng = np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(0,)))
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.uint8), _per_class(n))
    labels = labels[labels_rng.permutation(n)]
    x = np.empty((n,) + spec.image_shape, dtype=np.uint8)
    render = _render_cifar if name == "cifar10" else _render_mnist
    for i, start in enumerate(range(0, n, _CHUNK)):
        stop = min(n, start + _CHUNK)
        rng = np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(1, i)))
        x[start:stop] = render(labels[start:stop], rng)
    return x, labels.reshape((n,) + spec.label_shape).copy()


def _to_uint8(img: np.ndarray) -> np.ndarray:
    np.clip(img, 0.0, 1.0, out=img)
    img *= 255.0
    img += 0.5
    return img.astype(np.uint8)


# CIFAR-10 stand-in ---------------------------------------------------------------------
# Every class is a texture family at one of two scales (class k: family k % 5, scale k // 5)
# in a soft window near the centre, over a smooth random colour background tinted with a
# class-typical but widely overlapping hue. Families: horizontal stripes, vertical stripes,
# a "+" plaid, an "x" plaid and rings. All of them survive horizontal flips, small shifts
# and zooms (the usual augmentations), so a class never turns into another one. Their phase
# is random, so a linear model on raw pixels sees little beyond the hue; a convolution
# followed by a non-linearity sees orientation and scale.

_C_FAMILY = np.arange(NUM_CLASSES) % 5
_C_PERIOD = np.where(np.arange(NUM_CLASSES) < 5, 4.2, 8.0).astype(np.float32)
_C_HUE = (np.arange(NUM_CLASSES, dtype=np.float32) * 0.37) % 1.0
# Direction of each family's (first) wave vector: 0 makes vertical stripes, pi/2 horizontal.
_F_THETA = np.array([np.pi / 2, 0.0, 0.0, np.pi / 4, 0.0], np.float32)


def _upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation from ``n_in`` to ``n_out`` samples, as an (n_out, n_in) matrix."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1 - w
    m[np.arange(n_out), hi] += w
    return m


_UP32 = _upsample_matrix(32, 4)


def _hue_rgb(hue: np.ndarray) -> np.ndarray:
    """A smooth colour wheel: hue in turns -> rgb in [0, 1], shape (..., 3)."""
    phase = np.array([0.0, 1 / 3, 2 / 3], np.float32)
    return 0.5 + 0.5 * np.cos(2 * np.pi * (hue[..., None] - phase))


def _render_cifar(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(y)
    f32 = np.float32
    idx = np.arange(32, dtype=f32)
    rows, cols = idx[None, :, None], idx[None, None, :]

    # Background: smooth random colour field around a base colour (channels first here).
    hue = _C_HUE[y] + rng.normal(0, 0.12, n).astype(f32)
    sat = rng.uniform(0.15, 0.55, n).astype(f32)
    base = 0.5 + sat[:, None] * (_hue_rgb(hue) - 0.5)  # (n, 3)
    coarse = rng.normal(0, 0.08, (n, 3, 4, 4)).astype(f32)
    img = _UP32 @ coarse @ _UP32.T  # (n, 3, 32, 32)
    img += base[:, :, None, None]

    # The class texture: random phase, jittered orientation and period.
    fam = _C_FAMILY[y]
    period = _C_PERIOD[y] * rng.uniform(0.9, 1.1, n).astype(f32)
    k = (2 * np.pi / period).astype(f32)[:, None, None]
    theta = _F_THETA[fam] + rng.normal(0, np.deg2rad(8), n).astype(f32)
    k_r, k_c = k * np.sin(theta)[:, None, None], k * np.cos(theta)[:, None, None]
    phases = rng.uniform(0, 2 * np.pi, (2, n, 1, 1)).astype(f32)
    wave = np.sin(k_r * rows + k_c * cols + phases[0])  # (n, 32, 32)
    plaid = np.flatnonzero((fam == 2) | (fam == 3))  # add the perpendicular grating
    if len(plaid):
        wave[plaid] += np.sin(k_c[plaid] * rows - k_r[plaid] * cols + phases[1][plaid])
        wave[plaid] *= f32(0.75)
    centre = 15.5 + rng.normal(0, 3.5, (n, 2)).astype(f32)
    ring = np.flatnonzero(fam == 4)  # concentric rings around the window's centre
    if len(ring):
        rc = centre[ring]
        r = np.sqrt((rows - rc[:, 0, None, None]) ** 2 + (cols - rc[:, 1, None, None]) ** 2)
        wave[ring] = np.sin(k[ring] * r + phases[0][ring])

    sigma = rng.uniform(7.0, 11.0, n).astype(f32)
    window = (rows - centre[:, 0, None, None]) ** 2 + (cols - centre[:, 1, None, None]) ** 2
    window *= (-0.5 / sigma**2)[:, None, None]
    np.exp(window, out=window)
    contrast = rng.uniform(0.2, 0.55, n).astype(f32)
    # About one sample in fifteen is so faint that only its hue hints at the class: an
    # error floor of the stand-in's own, so that even strong models stay below 100%.
    contrast[rng.random(n) < 0.07] *= f32(0.05)
    wave *= window
    wave *= contrast[:, None, None]

    # The texture is mostly luminance, with a random tint of its own.
    tint = 0.7 + 0.3 * _hue_rgb(rng.uniform(0, 1, n).astype(f32))  # (n, 3)
    for ch in range(3):
        img[:, ch] += wave * tint[:, ch, None, None]

    # Global brightness/contrast jitter and sensor noise (uniform: cheap, sd 0.05).
    gain = rng.uniform(0.7, 1.25, n).astype(f32)[:, None, None, None]
    shift = rng.normal(0, 0.06, n).astype(f32)[:, None, None, None]
    img -= 0.5
    img *= gain
    img += 0.5 + shift
    noise = rng.random(img.shape, dtype=f32)
    noise -= 0.5
    noise *= 0.05 * np.sqrt(12.0, dtype=f32)
    img += noise
    return _to_uint8(img).transpose(0, 2, 3, 1)


# MNIST stand-in ------------------------------------------------------------------------
# Handwriting-like digits: each class is a set of strokes (polylines) drawn with a random
# affine transform, per-vertex wobble, random stroke width and the occasional missing
# stroke, so some samples are genuinely ambiguous.

_DIGITS: list[list[list[tuple[float, float]]]] = [  # (x, y), x right, y down, box [-.5,.5]x[-1,1]
    [[(0.0, -1.0), (0.38, -0.8), (0.5, -0.2), (0.42, 0.55), (0.0, 1.0), (-0.42, 0.55),
      (-0.5, -0.2), (-0.38, -0.8), (0.0, -1.0)]],
    [[(-0.25, -0.65), (0.1, -1.0), (0.0, 1.0)]],
    [[(-0.45, -0.6), (-0.2, -0.95), (0.2, -1.0), (0.45, -0.65), (0.35, -0.2), (-0.5, 1.0),
      (0.55, 1.0)]],
    [[(-0.5, -0.85), (0.0, -1.0), (0.45, -0.7), (0.3, -0.15), (-0.1, 0.0), (0.35, 0.15),
      (0.5, 0.6), (0.05, 1.0), (-0.5, 0.85)]],
    [[(0.15, -1.0), (-0.55, 0.35), (0.6, 0.35)], [(0.3, -0.45), (0.3, 1.0)]],
    [[(0.5, -1.0), (-0.4, -1.0), (-0.5, -0.1), (0.1, -0.25), (0.5, 0.1), (0.5, 0.6),
      (0.1, 1.0), (-0.5, 0.85)]],
    [[(0.4, -1.0), (-0.2, -0.5), (-0.5, 0.3), (-0.3, 0.9), (0.2, 1.0), (0.5, 0.6),
      (0.35, 0.1), (-0.1, 0.05), (-0.45, 0.35)]],
    [[(-0.5, -1.0), (0.55, -1.0), (-0.1, 1.0)]],
    [[(0.0, 0.0), (0.4, -0.3), (0.35, -0.85), (0.0, -1.0), (-0.35, -0.85), (-0.4, -0.3),
      (0.0, 0.0), (0.5, 0.45), (0.35, 0.95), (0.0, 1.0), (-0.35, 0.95), (-0.5, 0.45),
      (0.0, 0.0)]],
    [[(0.45, -0.55), (0.1, -0.05), (-0.35, -0.15), (-0.5, -0.6), (-0.2, -1.0),
      (0.25, -0.95), (0.45, -0.55), (0.4, 0.3), (0.1, 1.0)]],
]


def _digit_geometry(strokes):
    """Vertices (V, 2) and segments as vertex-index pairs (S, 2) of one digit."""
    verts, segs = [], []
    for line in strokes:
        first = len(verts)
        verts.extend(line)
        segs.extend((first + i, first + i + 1) for i in range(len(line) - 1))
    return np.array(verts, np.float32), np.array(segs, np.intp)


_GEOM = [_digit_geometry(d) for d in _DIGITS]


def _render_mnist(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(y)
    f32 = np.float32
    out = np.zeros((n, 28, 28), f32)
    px = np.arange(28, dtype=f32)
    grid_r = np.repeat(px, 28)[None, :]  # (1, 784)
    grid_c = np.tile(px, 28)[None, :]

    # Per-sample affine: rotation, slant (shear), size, aspect and position.
    rot = rng.normal(0, np.deg2rad(8), n).astype(f32)
    shear = rng.normal(0, 0.18, n).astype(f32)
    size = rng.uniform(8.0, 10.5, n).astype(f32)  # pixels per unit: digits ~16-21 px tall
    aspect = rng.uniform(0.75, 1.25, n).astype(f32)
    centre = 13.5 + rng.normal(0, 1.3, (n, 2)).astype(f32)
    width = rng.uniform(0.9, 1.9, n).astype(f32)  # stroke half-width in pixels
    ink = rng.uniform(0.8, 1.0, n).astype(f32)

    for c in range(NUM_CLASSES):
        sel = np.flatnonzero(y == c)
        if not len(sel):
            continue
        verts, segs = _GEOM[c]
        m = len(sel)
        v = verts[None] + rng.normal(0, 0.07, (m,) + verts.shape).astype(f32)  # wobble
        vx = (v[..., 0] + shear[sel, None] * v[..., 1]) * aspect[sel, None]
        vy = v[..., 1]
        cos, sin = np.cos(rot[sel])[:, None], np.sin(rot[sel])[:, None]
        s = size[sel, None]
        col = centre[sel, 1, None] + s * (cos * vx - sin * vy)  # (m, V)
        row = centre[sel, 0, None] + s * (sin * vx + cos * vy)
        # A stroke goes missing now and then (8 without a loop half, 4 without its stem...).
        drop = np.where(rng.random(m) < 0.07, rng.integers(0, len(segs), m), -1)

        best = np.full((m, 784), np.inf, f32)
        for j, (a, b) in enumerate(segs):
            ar, ac = row[:, a, None], col[:, a, None]
            dr, dc = row[:, b, None] - ar, col[:, b, None] - ac
            inv = 1.0 / np.maximum(dr * dr + dc * dc, 1e-6)
            pr, pc = grid_r - ar, grid_c - ac
            t = np.clip((pr * dr + pc * dc) * inv, 0.0, 1.0)
            pr -= t * dr
            pc -= t * dc
            d2 = pr * pr + pc * pc
            d2[drop == j] = np.inf
            np.minimum(best, d2, out=best)
        dist = np.sqrt(best)
        stroke = np.clip(width[sel, None] + 0.5 - dist, 0.0, 1.0) * ink[sel, None]
        out[sel] = stroke.reshape(m, 28, 28)

    noise = rng.random(out.shape, dtype=f32)
    noise -= 0.5
    noise *= 0.1 * (out > 0)
    out += noise
    return _to_uint8(out)


# ------------------------------------------------------------------------------- IMDB
# Reviews are served as Keras stores them in imdb.npz: 1-D object arrays whose items are
# lists of raw word ranks (1 = the most frequent word), labels 0 (negative) / 1 (positive).
#
# The stand-in: a fixed vocabulary of IMDB_VOCAB synthetic words ranked by a Zipf law. A few
# dozen of the frequent ones are sentiment cues (half positive, half negative). A review
# of 30-400 words mixes neutral words with cues, most of them of its label's sentiment; how
# clear a review is varies (some are nearly balanced), so even good models stay below 100%.
# Cues are spread over the whole review, so a recurrent model that mostly remembers the
# last words of a review still sees them; with shuffled labels nothing can be learned.

IMDB_VOCAB = 10000
_IMDB_CUES = 50  # positive cue words; as many negative ones
_IMDB_MIN_LEN, _IMDB_MAX_LEN = 30, 400
_IMDB_CUE_RATE = (0.06, 0.2)  # share of a review's words that are cues
_IMDB_AGREE = (0.6, 0.95)  # share of its cues that carry its label's sentiment
_IMDB_CUE_SPAN = (10, 300)
_IMDB_TAIL = (15, 0.7)  # the last words of a review (its verdict) and their share of cues  # ranks the cue words are drawn from

_COMMON = ("the and a of to is br in it i this that was as for with movie but film on not you are "
           "his have he be one all at by an they who so from like her just about out if has some "
           "there what or more when very up no time even she my would which story only really see "
           "their had can were me well than we much been get will also into other people because "
           "how most him them its do first then made make could way any too after characters think "
           "watch two films character seen many being life plot never acting little over off show "
           "know where ever does did man scene here through scenes").split()
_POSITIVE = ("great good best love excellent wonderful beautiful perfect brilliant enjoyed amazing "
             "favorite superb fun loved fantastic touching delightful charming moving").split()
_NEGATIVE = ("bad worst awful waste terrible boring poor stupid horrible worse dull mess lame "
             "annoying pointless ridiculous crap weak disappointing unfunny").split()


def _imdb_vocabulary() -> tuple[list[str], np.ndarray, np.ndarray]:
    """(words by rank, ranks of positive cues, ranks of negative cues); ranks are 1-based."""
    rng = np.random.default_rng(np.random.SeedSequence([_code("imdb"), 11]))
    onsets = list("bcdfghjklmnprstvwz") + ["br", "ch", "cl", "dr", "gr", "pl", "sh", "st", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
    codas = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ck"]
    taken = set(_COMMON) | set(_POSITIVE) | set(_NEGATIVE)
    made: list[str] = []
    while len(made) < IMDB_VOCAB:
        k = int(rng.integers(2, 4))
        word = "".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                       for _ in range(k)) + codas[rng.integers(len(codas))]
        if word not in taken:
            taken.add(word)
            made.append(word)
    # Cue ranks: among the frequent words, never the very commonest ones.
    slots = rng.permutation(np.arange(*_IMDB_CUE_SPAN))[: 2 * _IMDB_CUES]
    pos, neg = np.sort(slots[:_IMDB_CUES]), np.sort(slots[_IMDB_CUES:])
    words: list[str | None] = [None] * IMDB_VOCAB
    words[: len(_COMMON)] = _COMMON
    for ranks, names in ((pos, _POSITIVE), (neg, _NEGATIVE)):
        for r, w in zip(ranks[: len(names)], names):
            words[r - 1] = w
    filler = iter(made)
    words = [w if w is not None else next(filler) for w in words]
    return words, pos, neg


_VOCAB_CACHE: list = []


def _vocab():
    if not _VOCAB_CACHE:
        _VOCAB_CACHE.append(_imdb_vocabulary())
    return _VOCAB_CACHE[0]


def _zipf_sampler(ranks: np.ndarray):
    p = 1.0 / (ranks.astype(np.float64) + 2.7)
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return ranks, cdf


def _imdb_standin_flat(n: int, seed: int, *, split: int, quick: bool):
    """``n`` stand-in reviews as (flat raw ids int32, lengths int32, labels int64)."""
    _, pos, neg = _vocab()
    root = np.random.SeedSequence([int(seed), _code("imdb"), split, int(quick), STANDIN_VERSION])
    rng = np.random.default_rng(root)
    labels = np.repeat(np.arange(2, dtype=np.int64), _per_class(n, 2))
    labels = labels[rng.permutation(n)]
    # Lengths: log-normal around ~170 words, clipped to 30..400 (IMDB's reviews are skewed).
    lengths = np.clip(np.round(rng.lognormal(np.log(170), 0.55, n)), _IMDB_MIN_LEN,
                      _IMDB_MAX_LEN).astype(np.int32)
    total = int(lengths.sum())
    owner = np.repeat(np.arange(n), lengths)
    # Per review: how many of its words are cues, and how many cues agree with its label.
    cue_rate = rng.uniform(*_IMDB_CUE_RATE, n).astype(np.float32)
    agree = rng.uniform(*_IMDB_AGREE, n).astype(np.float32)

    all_ranks = np.arange(1, IMDB_VOCAB + 1)
    neutral = np.setdiff1d(all_ranks, np.concatenate([pos, neg]))
    out = np.empty(total, np.int32)
    # Reviews tend to end with a verdict: their last words are denser in cues.
    from_end = np.cumsum(lengths)[owner] - np.arange(total)  # 1 for a review's last word
    rate = np.where(from_end <= _IMDB_TAIL[0], _IMDB_TAIL[1], cue_rate[owner])
    u = rng.random(total, dtype=np.float32)
    is_cue = u < rate
    positive_cue = rng.random(total, dtype=np.float32) < np.where(labels[owner] == 1, agree[owner],
                                                                  1 - agree[owner])
    pick = rng.random(total)
    for mask, pool in ((~is_cue, neutral), (is_cue & positive_cue, pos),
                       (is_cue & ~positive_cue, neg)):
        ranks, cdf = _zipf_sampler(pool)
        idx = np.searchsorted(cdf, pick[mask], side="right")
        out[mask] = ranks[np.minimum(idx, len(ranks) - 1)]
    return out, lengths, labels


def _ragged(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 1-D object array of Python lists, the layout Keras' imdb.npz holds."""
    values = flat.tolist()
    ends = np.cumsum(lengths).tolist()
    starts = [0] + ends[:-1]
    out = np.empty(len(lengths), dtype=object)
    out[:] = [values[a:b] for a, b in zip(starts, ends)]
    return out


def _flatten(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in x), dtype=np.int64, count=len(x))
    flat = np.fromiter((w for s in x for w in s), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def imdb_standin_path(cache_dir: str | os.PathLike, seed: int = 0) -> Path:
    return Path(cache_dir) / "standin" / f"imdb-seed{int(seed)}-v{STANDIN_VERSION}.npz"


def _imdb_full_standin(cache: Path, seed: int):
    spec = TEXT_SPECS["imdb"]
    path = imdb_standin_path(cache, seed)
    keys = ("train_ids", "train_len", "y_train", "test_ids", "test_len", "y_test")
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                a = {k: np.asarray(z[k]) for k in keys}
            if len(a["y_train"]) == spec.n_train and len(a["y_test"]) == spec.n_test:
                return a
        except Exception:
            pass  # damaged or foreign file: regenerate and replace it
    tr = _imdb_standin_flat(spec.n_train, seed, split=1, quick=False)
    te = _imdb_standin_flat(spec.n_test, seed, split=2, quick=False)
    a = dict(zip(keys, tr + te))
    try:
        _save_atomic(path, a)
    except OSError:
        pass
    return a


def _load_text(name: str, *, cache_dir, quick: bool, quick_train: int, quick_test: int,
               seed: int) -> Served:
    cache = Path(cache_dir)
    real_path = cache / "datasets" / f"{name}.npz"
    if real_path.is_file():
        arrays = read_real_text(real_path)
        if quick:
            x_tr, y_tr = _stratified(arrays["x_train"], arrays["y_train"], quick_train, seed, name, 1, 2)
            x_te, y_te = _stratified(arrays["x_test"], arrays["y_test"], quick_test, seed, name, 2, 2)
            arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
        index = cache / "datasets" / f"{name}_word_index.json"
        return Served(name, "real", quick=bool(quick), **arrays,
                      word_index_path=str(index) if index.is_file() else None)
    if quick:
        tr = _imdb_standin_flat(max(0, int(quick_train)), seed, split=1, quick=True)
        te = _imdb_standin_flat(max(0, int(quick_test)), seed, split=2, quick=True)
        a = dict(zip(("train_ids", "train_len", "y_train", "test_ids", "test_len", "y_test"), tr + te))
    else:
        a = _imdb_full_standin(cache, seed)
    return Served(name, "standin", _ragged(a["train_ids"], a["train_len"]), a["y_train"].astype(np.int64),
                  _ragged(a["test_ids"], a["test_len"]), a["y_test"].astype(np.int64), quick=bool(quick))


def read_real_text(path: Path) -> dict[str, np.ndarray]:
    try:
        # Keras' imdb.npz stores the ragged reviews as pickled object arrays.
        with np.load(path, allow_pickle=True) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise ProviderError(f"{path} lacks {', '.join(missing)}")
            arrays = {k: np.asarray(z[k]) for k in _KEYS}
    except ProviderError:
        raise
    except Exception as exc:
        raise ProviderError(f"cannot read the staged dataset {path}: {exc}") from exc
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1)
        if x.ndim != 1 or len(x) != len(y):
            raise ProviderError(f"{path}: x_{split} must be 1-D with one review per label")
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ProviderError(f"{path}: y_{split} has labels outside 0..1")
        arrays[f"y_{split}"] = y.astype(np.int64)
        if x.dtype != object:
            out = np.empty(len(x), dtype=object)
            out[:] = [list(map(int, s)) for s in x]
            arrays[f"x_{split}"] = out
    return arrays


def imdb_load_data(served: Served, num_words=None, skip_top=0, maxlen=None, seed=113,
                   start_char=1, oov_char=2, index_from=3):
    """What ``keras.datasets.imdb.load_data(...)`` returns for the served reviews.

    Mirrors Keras: both splits shuffled with ``np.random.RandomState(seed)``; ``start_char``
    prepended and ids offset by ``index_from``; reviews of ``maxlen`` or more words dropped;
    ids outside ``skip_top <= id < num_words`` replaced by ``oov_char`` (or removed when it
    is None). Returns new arrays each call.
    """
    rng = np.random.RandomState(seed)
    parts = []
    for x, y in ((served.x_train, served.y_train), (served.x_test, served.y_test)):
        idx = np.arange(len(x))
        rng.shuffle(idx)
        flat, lengths = _offset(*_flatten(x[idx]), start_char, index_from)
        y = np.asarray(y)[idx]
        if maxlen:
            keep = lengths < maxlen
            owner = np.repeat(np.arange(len(lengths)), lengths)
            flat, lengths, y = flat[keep[owner]], lengths[keep], y[keep]
        parts.append([flat, lengths, y])
    if maxlen and (not len(parts[0][1]) or not len(parts[1][1])):
        raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, "
                         "no sequence was kept. Increase maxlen.")
    if not num_words:
        num_words = max(int(p[0].max()) for p in parts if p[0].size)
    out = []
    for flat, lengths, y in parts:
        out.append((_ragged(*_vocabulary(flat, lengths, num_words, skip_top, oov_char)), y.astype(np.int64)))
    return out[0], out[1]


def _offset(flat: np.ndarray, lengths: np.ndarray, start_char, index_from) -> tuple[np.ndarray, np.ndarray]:
    """Word ids offset by index_from, each review opened by start_char (load_data's steps)."""
    flat = flat + (index_from or 0)
    if start_char is not None:
        flat = np.insert(flat, (np.cumsum(lengths) - lengths).astype(np.int64), start_char)
        lengths = lengths + 1
    return flat, lengths


def _vocabulary(flat: np.ndarray, lengths: np.ndarray, num_words, skip_top, oov_char) -> tuple[np.ndarray, np.ndarray]:
    """Ids outside skip_top <= id < num_words replaced by oov_char, or removed when it is None."""
    bad = (flat < skip_top) | (flat >= num_words) if num_words else flat < skip_top
    if oov_char is not None:
        return np.where(bad, oov_char, flat), lengths
    owner = np.repeat(np.arange(len(lengths)), lengths)
    return flat[~bad], lengths - np.bincount(owner[bad], minlength=len(lengths))


def imdb_word_index(served: Served | None = None) -> dict[str, int]:
    """``imdb.get_word_index()``: with real reviews the staged real index (when staged),
    with the stand-in (or no ``served``) the stand-in's word -> rank."""
    if served is not None and served.source == "real" and served.word_index_path:
        import json

        with open(served.word_index_path, encoding="utf-8") as fh:
            return {str(k): int(v) for k, v in json.load(fh).items()}
    words, _, _ = _vocab()
    return {w: i + 1 for i, w in enumerate(words)}


# ------------------------------------------------------------------ OpenML (scikit-learn)
# ``sklearn.datasets.fetch_openml`` serves CIFAR-10 as OpenML stores it: one row per image,
# 3072 pixel features a0..a3071 in channel-major order (1024 red, 1024 green, 1024 blue:
# the CIFAR binary layout) and the class as a string "0".."9". The rows are the served
# train images then the served test images; CIFAR_10_small (OpenML id 40926) is the first
# 20000 of them, CIFAR_10 (40927) all of them. In quick mode every table is the quick
# train + test subset (quick_train + quick_test rows), whatever its name.

OPENML_TABLES: dict[str, int | None] = {"cifar_10_small": 20000, "cifar_10": None}
OPENML_IDS: dict[int, str] = {40926: "CIFAR_10_small", 40927: "CIFAR_10"}


def openml_name(name: str | None, data_id: int | None) -> str | None:
    """The table's OpenML name for a fetch_openml call, or None when it is not served."""
    if data_id is not None:
        return OPENML_IDS.get(int(data_id))
    if name and name.lower() in OPENML_TABLES:
        return {v.lower(): v for v in OPENML_IDS.values()}[name.lower()]
    return None


def openml_table(served: Served, table: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 (n, 3072) channel-major, labels int64 (n,)) of an OpenML CIFAR-10 table."""
    if served.name != "cifar10":
        raise ProviderError(f"OpenML table {table} is CIFAR-10, not {served.name}")
    x = np.concatenate([served.x_train, served.x_test])
    y = np.concatenate([served.y_train.reshape(-1), served.y_test.reshape(-1)]).astype(np.int64)
    rows = OPENML_TABLES[table.lower()]
    if rows is not None and not served.quick:
        x, y = x[:rows], y[:rows]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), -1)), y


# ------------------------------------------------------------- images the program never saw


def is_staged(name: str, cache_dir: str | os.PathLike) -> bool:
    """Whether real data of `name` is staged in the cache (else the stand-in is served)."""
    return (Path(cache_dir) / "datasets" / f"{name}.npz").is_file()


def served_test(name: str, *, cache_dir: str | os.PathLike, quick: bool, quick_test: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The test split `load` serves (x_test, y_test), without making the training split."""
    if quick and not (Path(cache_dir) / "datasets" / f"{name}.npz").is_file() and name in SPECS:
        return _standin(name, max(0, int(quick_test)), seed, split=2, quick=True)
    served = load(name, cache_dir=cache_dir, quick=quick, quick_train=0, quick_test=quick_test, seed=seed)
    return served.x_test, served.y_test



def unseen_test(name: str, n: int, *, cache_dir: str | os.PathLike, quick: bool, quick_test: int,
                seed: int, served_seed: int = 0) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Up to ``n`` test samples of ``name`` that a program served with ``served_seed`` never
    received, for the trusted re-measurement: (x, y, where they come from). Staged real data:
    test images outside the quick subset; None in a full run (every test image is served).
    Stand-in: fresh samples from the same generator, drawn with ``seed`` (keep it secret)."""
    real_path = Path(cache_dir) / "datasets" / f"{name}.npz"
    if real_path.is_file():
        arrays = read_real_text(real_path) if name in TEXT_SPECS else _read_real(name, real_path)
        served = _stratified_index(arrays["y_test"], quick_test, served_seed, name, 2, CLASSES[name]) if quick else None
        if served is None:
            return None
        rest = np.setdiff1d(np.arange(len(arrays["y_test"])), served)
        pick = np.random.default_rng(seed).permutation(rest)[:n]
        return arrays["x_test"][pick], arrays["y_test"][pick], "real test samples outside the quick subset"
    if name in TEXT_SPECS:
        flat, lengths, y = _imdb_standin_flat(n, seed, split=3, quick=quick)
        x = _ragged(flat, lengths)
    else:
        x, y = _standin(name, n, seed, split=3, quick=quick)
    return x, y, "fresh stand-in samples, drawn with a seed the program never saw"


def imdb_encode(x: np.ndarray, num_words=None, skip_top=0, start_char=1, oov_char=2, index_from=3,
                **_ignored) -> np.ndarray:
    """Reviews as ``imdb.load_data(...)`` would return them with these arguments, for reviews
    it never served (unseen ones): no shuffling, no maxlen filter. With num_words None every
    id is kept (load_data would also replace the largest id of the reviews it served by
    oov_char: one rare word, kept here). Returns a ragged array."""
    flat, lengths = _offset(*_flatten(x), start_char, index_from)
    return _ragged(*_vocabulary(flat, lengths, num_words, skip_top, oov_char))
