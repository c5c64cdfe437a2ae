"""The clean sandbox's loaders: a checked model file loaded with a framework's data-only
loader, as a function from inputs (N x ...) to outputs (N x K float32). Shared by the
classifiers' re-measurement (grader/clean/__main__.py), a chatbot's loss (training.py) and a
GAN's samples (gan.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from grader.probe import layouts, transforms


def keras_module(request: dict[str, Any]) -> Any:
    """The Keras the course grades with: tf_keras for the legacy flavour, else Keras 3."""
    if request.get("flavour") == "legacy":
        import tf_keras as keras
    else:
        import keras
    return keras


def keras_model(folder: Path, request: dict[str, Any]) -> Any:
    """The exported Keras model: model.json, then model.weights.h5."""
    model = keras_module(request).models.model_from_json((folder / "model.json").read_text())
    model.load_weights(str(folder / "model.weights.h5"))
    return model


def first_input_shape(program: Any) -> tuple:
    """The shape of a torch.export program's first input, as traced (a symbolic axis stays so)."""
    first = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == first)
    return tuple(node.meta["val"].shape)


BATCH = 256


def keras_json(folder: Path, request: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    model = keras_model(folder, request)
    return lambda x: np.asarray(model.predict(x, batch_size=BATCH, verbose=0))  # compiled: eager LSTMs crawl


def keras_savedmodel(folder: Path, request: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder / "savedmodel"))  # referenced below: its variables live with it

    def outputs(x: np.ndarray) -> np.ndarray:
        serve = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        y = serve(tf.constant(x))
        y = next(iter(y.values())) if isinstance(y, dict) else y
        return np.asarray(y)

    return batched(outputs)


def torch_pt2(folder: Path, request: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A torch.export program's outputs; one exported for a fixed batch (a text model) gets
    batches of that size, the last padded with copies of its first row and cut back."""
    import torch

    program = torch.export.load(str(folder / "model.pt2"))
    module = program.module()
    fixed = fixed_batch(program)

    def outputs(x: np.ndarray) -> np.ndarray:
        n = len(x)
        if fixed and n < fixed:
            x = np.concatenate([x, np.repeat(x[:1], fixed - n, axis=0)])
        with torch.no_grad():
            y = module(torch.from_numpy(x))
        y = y[0] if isinstance(y, (tuple, list)) else y
        return y.float().numpy()[:n]

    return batched(outputs, fixed or BATCH)


def fixed_batch(program: Any) -> int | None:
    """The batch size of the program's first input when it was exported for one (else None)."""
    size = first_input_shape(program)[0]
    return size if isinstance(size, int) else None


def sklearn_knn(folder: Path, request: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The KNN refitted from its parameters and its training images under the same preprocessing."""
    from sklearn.neighbors import KNeighborsClassifier

    params = json.loads((folder / "knn.json").read_text())
    labels = np.load(folder / "knn.npz", allow_pickle=False)["fit_labels"].astype(np.int64)
    images = np.load(folder / "fit_images.npy", allow_pickle=False)  # the host's copy of the fitted rows
    steps = lambda x: x  # noqa: E731
    if (folder / "steps.json").exists():  # scalers or a PCA before the KNN, as arrays
        specs = json.loads((folder / "steps.json").read_text())
        with np.load(folder / "steps.npz", allow_pickle=False) as loaded:
            arrays = dict(loaded)
        steps = lambda x: transforms.apply_steps(x.reshape(len(x), -1), specs, arrays)  # noqa: E731
    knn = KNeighborsClassifier(**params).fit(steps(layouts.apply(images, request["preprocess"])), labels)
    classes = max(10, int(labels.max()) + 1)
    return batched(lambda x: np.eye(classes, dtype=np.float32)[knn.predict(steps(x))])


def batched(fn: Callable[[np.ndarray], np.ndarray], size: int = BATCH) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.concatenate([fn(x[i:i + size]) for i in range(0, len(x), size)])


LOADERS = {"keras_json": keras_json, "keras_savedmodel": keras_savedmodel, "torch_pt2": torch_pt2,
           "sklearn_knn": sklearn_knn}
