"""The clean sandbox's training figure for a model fitted on the program's own arrays (Program
7's chatbot): its loss on the rows it was fitted on, against the loss of the same architecture
freshly initialised. A model that learned from those rows scores far lower than a fresh one.

Beside REQUEST.json: model.json and model.weights.h5 (checked by the host) and fit.npz (x, y:
the first rows the program fitted on, as the probe exported them; loaded without pickle).
Writes OUT_DIR/training.npy: float64 [loss of the exported model, loss of a fresh one].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

EPS = 1e-7


def cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of outputs p (N, K) against y: one-hot (N, K), class ids (N,), or for
    one output unit (N, 1), 0/1 labels. Outputs that are not probabilities go through a softmax
    (or a sigmoid for one unit)."""
    p = p.reshape(len(p), -1).astype(np.float64)
    if p.shape[1] == 1:
        q = p[:, 0] if ((p >= 0) & (p <= 1)).all() else 1 / (1 + np.exp(-p[:, 0]))
        t = y.reshape(-1).astype(np.float64)
        return float(-np.mean(t * np.log(q + EPS) + (1 - t) * np.log(1 - q + EPS)))
    if not (((p >= 0) & (p <= 1)).all() and np.allclose(p.sum(axis=1), 1, atol=1e-3)):
        p = np.exp(p - p.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
    t = y.reshape(len(y), -1)
    if t.shape[1] == p.shape[1] and t.shape[1] > 1:
        return float(-np.mean((t * np.log(p + EPS)).sum(axis=1)))
    ids = t[:, 0].astype(np.int64).clip(0, p.shape[1] - 1)
    return float(-np.mean(np.log(p[np.arange(len(p)), ids] + EPS)))


def losses(folder: Path, request: dict[str, Any]) -> np.ndarray:
    """[exported, fresh] losses on fit.npz."""
    if request.get("flavour") == "legacy":
        import tf_keras as keras
    else:
        import keras
    architecture = (folder / "model.json").read_text()
    model = keras.models.model_from_json(architecture)
    model.load_weights(str(folder / "model.weights.h5"))
    keras.utils.set_random_seed(0)
    fresh = keras.models.model_from_json(architecture)  # the same layers, as Keras initialises them
    with np.load(folder / "fit.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    return np.array([cross_entropy(np.asarray(m.predict(x, batch_size=256, verbose=0)), y) for m in (model, fresh)])


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    np.save(out_dir / "training.npy", losses(folder, request), allow_pickle=False)
    return 0
