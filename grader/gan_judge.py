"""What a GAN generates, judged on the host by a reference MNIST classifier of the grader's own.

The classifier is a small numpy network (784 -> 256 -> 64 -> 11, ReLU), trained by the host on
the served MNIST training images (stand-in or staged) and cached in the grader's cache dir
under a key of the data it was trained on, so it is trained once per data state. Its eleventh
class is "not a digit": images made from the training digits that no digit looks like (uniform
and Gaussian noise, flat grey, the digits' pixels shuffled), so that noise is not classified
as a digit with high confidence, as a ten-class network does. No framework
is imported: the host never loads a student's model, and needs none to run its own.

A judgement of N generated images (uint8 or float in [0, 1], N x 28 x 28):
* confident: the share the classifier gives one digit a probability of at least CONFIDENT
  (they look like digits, not like "not a digit" nor like several digits at once);
* digits: how many of the ten digits make up at least MIN_DIGIT_SHARE of the samples
  (classified by their likeliest digit), and evenness: the entropy of that spread over
  log(10), 1 for an even spread, 0 for one digit alone (mode collapse);
* frechet: the Fréchet distance between Gaussians fitted to the classifier's 64 hidden
  features of the samples and of real test digits (0 for the same spread; larger is worse).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from grader.models import GanJudgement
from grader.probe import provider

CLASSIFIER_VERSION = "gan-mlp-3"
TRAIN_IMAGES = 12000  # served training images the classifier learns from (at most)
REFERENCE_TEST = 2000  # served test images whose features stand for "real digits"
EPOCHS = 5
BATCH = 128
LEARNING_RATE = 1e-3
HIDDEN = (256, 64)
CONFIDENT = 0.9
MIN_DIGIT_SHARE = 0.02
NOT_A_DIGIT = 10  # the eleventh class
NEGATIVES = 0.2  # "not a digit" images, as a share of the training digits


class ReferenceClassifier:
    """The grader's MNIST classifier: weights as numpy arrays; inputs N x 784 in [0, 1]."""

    def __init__(self, weights: dict[str, np.ndarray], source: str, key: str, accuracy: float):
        self.w = weights
        self.source, self.key, self.accuracy = source, key, accuracy

    def features(self, x: np.ndarray) -> np.ndarray:
        """N x 64 hidden features of N x 784 pixels in [0, 1]."""
        h = np.maximum(x @ self.w["w0"] + self.w["b0"], 0)
        return np.maximum(h @ self.w["w1"] + self.w["b1"], 0)

    def probabilities(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N x 11 class probabilities, the last "not a digit"; N x 64 features)."""
        f = self.features(x)
        logits = f @ self.w["w2"] + self.w["b2"]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True), f


def as_pixels(images: np.ndarray) -> np.ndarray:
    """N x 784 float32 in [0, 1] from N x 28 x 28 (or N x 784, N x 28 x 28 x 1) uint8 or [0, 1] floats."""
    x = np.asarray(images).reshape(len(images), -1)
    if x.shape[1] != 784:
        raise ValueError(f"images of {x.shape[1]} pixels, not 28 x 28")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return np.clip(x, 0.0, 1.0)


def data_key(x: np.ndarray, y: np.ndarray, source: str) -> str:
    """The cache key of the classifier trained on (x, y): their bytes and the classifier's version."""
    h = hashlib.sha256(f"{CLASSIFIER_VERSION}|{source}|{x.shape}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()[:20]


def served_mnist(cache_dir: str | os.PathLike) -> provider.Served:
    """The MNIST images the grader serves (staged real files, else the stand-in), its own copy."""
    return provider.load("mnist", cache_dir=cache_dir, quick=True, quick_train=TRAIN_IMAGES,
                         quick_test=REFERENCE_TEST)


def reference_classifier(cache_dir: str | os.PathLike) -> ReferenceClassifier:
    """The cached classifier for the served data, trained (seconds) and cached when missing."""
    served = served_mnist(cache_dir)
    y = served.y_train.reshape(-1).astype(np.int64)
    key = data_key(served.x_train, y, served.source)
    path = Path(cache_dir) / "gan" / f"classifier-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            weights = {k: saved[k] for k in saved.files if k != "accuracy"}
            return ReferenceClassifier(weights, served.source, key, float(saved["accuracy"]))
    x = as_pixels(served.x_train)
    negatives = not_digits(x, np.random.default_rng(1))
    weights = train(np.concatenate([x, negatives]),
                    np.concatenate([y, np.full(len(negatives), NOT_A_DIGIT, np.int64)]))
    clf = ReferenceClassifier(weights, served.source, key, 0.0)
    probs, _ = clf.probabilities(as_pixels(served.x_test))
    clf.accuracy = float((probs.argmax(axis=1) == served.y_test.reshape(-1)).mean())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, accuracy=np.float64(clf.accuracy), **weights)
    os.replace(tmp, path)
    return clf


def not_digits(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NEGATIVES x len(x) images no digit looks like (N x 784 in [0, 1]), in three equal parts:
    uniform noise, flat grey, training digits with their pixels shuffled (the same ink, no
    strokes). Digits with speckle on them (a young generator's) are left to the ten digits."""
    n = max(3, int(NEGATIVES * len(x))) // 3
    uniform = rng.random((n, x.shape[1]))
    flat = np.repeat(rng.random((n, 1)), x.shape[1], axis=1)
    shuffled = np.stack([rng.permutation(row) for row in x[rng.integers(0, len(x), n)]])
    return np.clip(np.concatenate([uniform, flat, shuffled]), 0, 1).astype(np.float32)


def train(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """A 784-256-64-11 ReLU network fitted by Adam on softmax cross-entropy (x: N x 784 in [0, 1])."""
    rng = np.random.default_rng(seed)
    sizes = (x.shape[1],) + HIDDEN + (NOT_A_DIGIT + 1,)
    w = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w[f"w{i}"] = (rng.normal(size=(a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
        w[f"b{i}"] = np.zeros(b, np.float32)
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(a) for k, a in w.items()}
    t = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            grads = gradients(w, x[idx], y[idx])
            t += 1
            for k, g in grads.items():
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                w[k] -= LEARNING_RATE * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    return w


def gradients(w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean cross-entropy for one batch (backpropagation by hand)."""
    h0 = np.maximum(x @ w["w0"] + w["b0"], 0)
    h1 = np.maximum(h0 @ w["w1"] + w["b1"], 0)
    logits = h1 @ w["w2"] + w["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    d2 = p / len(y)
    d1 = (d2 @ w["w2"].T) * (h1 > 0)
    d0 = (d1 @ w["w1"].T) * (h0 > 0)
    return {"w2": h1.T @ d2, "b2": d2.sum(0), "w1": h0.T @ d1, "b1": d1.sum(0),
            "w0": x.T @ d0, "b0": d0.sum(0)}


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a and b (N x D each)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # trace(sqrt(ca cb)) = sum of sqrt(eigenvalues of sqrt(ca) cb sqrt(ca)), all real and >= 0
    vals, vecs = np.linalg.eigh(ca)
    root = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(root @ cb @ root)
    cross = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def real_features(clf: ReferenceClassifier, cache_dir: str | os.PathLike) -> np.ndarray:
    """The classifier's features of the served test digits (REFERENCE_TEST of them)."""
    return clf.features(as_pixels(served_mnist(cache_dir).x_test))


def judge(images: np.ndarray, clf: ReferenceClassifier, real: np.ndarray) -> GanJudgement:
    """The judgement of generated images (N x 28 x 28 in [0, 1] or uint8) against real features."""
    x = as_pixels(images)
    probs, feats = clf.probabilities(x)
    digits = probs[:, :NOT_A_DIGIT].argmax(axis=1)  # the likeliest digit, whatever "not a digit" gets
    counts = np.bincount(digits, minlength=NOT_A_DIGIT)
    shares = counts / max(1, len(x))
    nonzero = shares[shares > 0]
    evenness = abs(float(-(nonzero * np.log(nonzero)).sum() / np.log(10)))
    return GanJudgement(
        n=len(x), confident=round(float((probs[:, :NOT_A_DIGIT].max(axis=1) >= CONFIDENT).mean()), 4),
        digits=int((shares >= MIN_DIGIT_SHARE).sum()), evenness=round(evenness, 4),
        digit_counts=[int(c) for c in counts], frechet=round(frechet(feats, real), 3),
        pixel_mean=round(float(x.mean()), 4), pixel_std=round(float(x.std()), 4),
        classifier_accuracy=round(clf.accuracy, 4), classifier_key=clf.key, source=clf.source)
