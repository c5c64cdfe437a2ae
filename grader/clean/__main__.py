"""`python -m grader.clean REQUEST.json OUT_DIR`: a checked model's outputs on given images
(or `--warm FRAMEWORK`, started ahead: the request comes on stdin).

REQUEST.json: {"kind": keras_json | keras_savedmodel | torch_pt2 | sklearn_knn, "flavour":
keras3 | legacy, "preprocess": grader.probe.layouts description, "inputs": [name, ...]}, beside
it the model files (and preprocess.npz for a description fitted per feature; for a KNN,
fit_images.npy, written by the host) and <name>.npy
(uint8 images, N x H x W [x C]). Writes OUT_DIR/<name>.npy: float32 outputs, one row per
image (a KNN's: one-hot votes). Loads only with data-only loaders (no unpickling). Kinds
torchvision_state and torchvision_pt2 (a pretrained model on the reference images) are
grader/clean/vision.py's, keras_application (a keras.applications model on them)
grader/clean/keras_apps.py's; a request with "training" (a chatbot's loss)
grader/clean/training.py's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from grader.probe import layouts, transforms

BATCH = 256


def keras_json(folder: Path, request: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    if request.get("flavour") == "legacy":
        import tf_keras as keras
    else:
        import keras
    model = keras.models.model_from_json((folder / "model.json").read_text())
    model.load_weights(str(folder / "model.weights.h5"))
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
    first = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == first)
    size = node.meta["val"].shape[0]
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


def warm_keras() -> None:
    import keras

    keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])(np.zeros((1, 2), np.float32))


def warm_torch() -> None:
    """A tiny program saved and loaded: the first torch.export.load imports most of the stack."""
    import io

    import torch

    program = torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),))
    program._example_inputs = None
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    torch.export.load(buffer).module()(torch.zeros(1, 2))


def warm_sklearn() -> None:
    from sklearn.neighbors import KNeighborsClassifier  # noqa: F401


def warm_torchvision() -> None:
    import torchvision  # noqa: F401
    from PIL import Image  # noqa: F401


# the loaders' slow first steps, done while the student's job runs
WARM = {"keras": warm_keras, "torch": warm_torch, "sklearn": warm_sklearn, "torchvision": warm_torchvision}


def main(argv: list[str]) -> int:
    """`REQUEST.json OUT_DIR`, or `--warm FRAMEWORK`: import it, then read
    ["REQUEST.json", "OUT_DIR"] as one JSON line on stdin (none: exit)."""
    if argv[0] == "--warm":
        try:
            WARM.get(argv[1], lambda: None)()
        except Exception:  # only time is lost: the request is served the same way
            pass
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        argv = json.loads(line)
    return remeasure(*argv)


def remeasure(request_path: str, out_dir: str) -> int:
    folder = Path(request_path).parent
    request = json.loads(Path(request_path).read_text())
    if request["kind"] in ("torchvision_state", "torchvision_pt2"):  # a pretrained model on the reference images
        from grader.clean import vision

        return vision.remeasure(folder, request, Path(out_dir))
    if request["kind"] == "keras_application":  # a keras.applications model on the reference images
        from grader.clean import keras_apps

        return keras_apps.remeasure(folder, request, Path(out_dir))
    if request.get("gan"):  # a GAN's generator: its samples on the host's noise
        from grader.clean import gan

        return gan.remeasure(folder, request, Path(out_dir))
    if request.get("training"):  # a model fitted on the program's own arrays: its loss on them
        from grader.clean import training

        return training.remeasure(folder, request, Path(out_dir))
    if request["preprocess"].get("per") == "feature":
        arrays = np.load(folder / "preprocess.npz", allow_pickle=False)
        request["preprocess"].update(scale=arrays["scale"], shift=arrays["shift"])
    predict = LOADERS[request["kind"]](folder, request)
    for name in request["inputs"]:
        raw = np.load(folder / f"{name}.npy", allow_pickle=False)
        out = predict(layouts.apply(raw, request["preprocess"])).astype(np.float32)
        np.save(Path(out_dir) / f"{name}.npy", out.reshape(len(raw), -1), allow_pickle=False)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # the outputs are written and closed; a framework's teardown only costs time
