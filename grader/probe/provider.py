"""Offline CIFAR-10 and MNIST for student code.

Student programs call ``keras.datasets.cifar10.load_data()`` or ``mnist.load_data()``,
which would download from the internet. The sandbox has no network, so the probe answers
those calls from here instead:

* **real data** when faculty staged it (``grader data stage``): ``<cache>/datasets/<name>.npz``
  with the keys ``x_train, y_train, x_test, y_test`` in the layout Keras returns;
* otherwise a **synthetic stand-in** with the same shapes and dtypes whose ten classes are
  learnable (a small CNN gets well above chance, a model on shuffled labels does not), so
  the course's checks on training and accuracy still mean something. Reports say which one
  was served (:meth:`Served.describe`).

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

_KEYS = ("x_train", "y_train", "x_test", "y_test")


class ProviderError(ValueError):
    """A dataset cannot be served (unknown name, malformed staged file)."""


@dataclass
class Served:
    """What the probe hands to student code, plus where it came from."""

    name: str  # "cifar10" | "mnist"
    source: str  # "real" | "standin"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    quick: bool

    def describe(self) -> str:
        return self.name if self.source == "real" else f"{self.name} (synthetic stand-in)"

    def info(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "quick": bool(self.quick),
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "classes": NUM_CLASSES,
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
    (equal count per class; when the count is not a multiple of ten, the first classes get
    one more). Everything is deterministic for a given ``seed``.
    """
    if name not in SPECS:
        raise ProviderError(f"unknown dataset {name!r}; served are: {', '.join(SPECS)}")
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


def _stratified(x: np.ndarray, y: np.ndarray, n: int, seed: int, name: str, split: int):
    """A deterministic subset with (as far as the data allows) equal count per class."""
    n = max(0, int(n))
    flat = y.reshape(-1)
    if n >= len(flat):
        return x, y
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _code(name), split, 7]))
    picks = []
    for c, k in enumerate(_per_class(n)):
        idx = np.flatnonzero(flat == c)
        picks.append(idx[rng.permutation(len(idx))[:k]])
    chosen = np.concatenate(picks)
    chosen = chosen[rng.permutation(len(chosen))]  # interleave classes, like the real sets
    return x[chosen], y[chosen]


def _per_class(n: int) -> list[int]:
    base, extra = divmod(n, NUM_CLASSES)
    return [base + (1 if c < extra else 0) for c in range(NUM_CLASSES)]


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
