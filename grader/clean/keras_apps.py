"""The clean sandbox's side of Program 2 written with keras.applications: the model rebuilt from
its Keras JSON, the served file loaded into its application as keras.applications loads it,
the program's own variables put back, run on the host's reference images
(grader/trusted_keras_apps.py writes the request).

Beside REQUEST.json: model.json (the architecture, checked by the host), application.json
({application: layer names from the root to the application, weights_file, package: keras |
tf_keras, module: the application's module, shapes: model.weights' shapes in order}), own.npz
("w<i>": the value of model.weights[i], for the variables that are not the served file's),
base.h5 (the host's copy of a real file faculty staged; a stand-in is made here, seeded as the
program's sandbox made it: grader.probe.keras_assets.seed_weights) and <name>.npy (uint8
images, H x W x 3). Writes to OUT_DIR only arrays:

* <name>.npy, float32 (1, classes): the image resized to the model's input (224 x 224 where it
  takes any size) and passed through the application's preprocess_input, as the probe runs the
  reference step in the program (grader.probe.keras_assets.KerasAssets.reference);
* weights.npy: float64 [parameters, from_file, near_file] over the application's variables:
  left as the file gave them, or the program's own with a cosine of at least NEAR to the file's.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from grader.clean.vision import NEAR
from grader.probe.keras_assets import input_size, seed_weights


def rebuild(folder: Path) -> tuple[Any, dict[str, Any], np.ndarray]:
    """(model, application.json, weights.npy's counts). Raises ValueError when the model is not
    the one described (its variables' shapes) or holds no application where the export says."""
    spec = json.loads((folder / "application.json").read_text())
    keras = importlib.import_module(spec["package"])
    model = from_json(keras, (folder / "model.json").read_text())
    application = model
    for name in spec["application"]:
        application = application.get_layer(name)
    variables = model.weights
    if [list(v.shape) for v in variables] != spec["shapes"]:
        raise ValueError("the rebuilt model's variables are not the exported model's (their number or shapes)")
    if (folder / "base.h5").is_file():  # the real file, loaded as keras.applications loads it
        application.load_weights(str(folder / "base.h5"))
    elif spec["weights_file"]:  # the stand-in the program's sandbox was served, made the same way
        seed_weights(application, spec["weights_file"])
    with np.load(folder / "own.npz", allow_pickle=False) as arrays:
        own = {int(k[1:]): arrays[k] for k in arrays.files}
    mine = {id(v) for v in application.weights} if spec["weights_file"] else set()
    counts = np.zeros(3)
    for i, v in enumerate(variables):
        dtype = numpy_dtype(v)
        if id(v) in mine and np.issubdtype(dtype, np.floating):
            size = int(np.prod(v.shape))
            counts[0] += size
            if i not in own:
                counts[1] += size
            elif near(v.numpy(), own[i]):
                counts[2] += size
        if i in own:
            v.assign(own[i].astype(dtype))
    return model, spec, counts


def numpy_dtype(variable: Any) -> np.dtype:
    """A variable's dtype as numpy's (Keras 3 names it by a string, tf-keras by a tf.DType)."""
    return np.dtype(getattr(variable.dtype, "as_numpy_dtype", variable.dtype))


def near(file_value: np.ndarray, value: np.ndarray) -> bool:
    """Whether the program's own value is the file's, fine-tuned (cosine >= NEAR)."""
    a, b = file_value.astype(np.float64).ravel(), value.astype(np.float64).ravel()
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return a.shape == b.shape and norms > 0 and float(a @ b) / norms >= NEAR


def from_json(keras: Any, text: str) -> Any:
    """The model from its JSON; Keras 3's in safe mode (no Lambda's code deserialised). For
    tf-keras the host has already refused every class that is not Keras' own."""
    if keras.__name__ != "keras":
        return keras.models.model_from_json(text)
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(True):
        return keras.models.model_from_json(text)


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    from PIL import Image

    model, spec, counts = rebuild(folder)
    np.save(out_dir / "weights.npy", counts, allow_pickle=False)
    module = importlib.import_module(spec["module"]) if spec["module"] else None
    preprocess = getattr(module, "preprocess_input", None)
    size = input_size(model)
    for name in request["inputs"]:
        image = Image.fromarray(np.load(folder / f"{name}.npy", allow_pickle=False), "RGB")
        batch = np.asarray(image.resize(size), dtype="float32")[None]
        output = forward(model, preprocess(batch) if preprocess else batch)
        np.save(out_dir / f"{name}.npy", output.astype(np.float32), allow_pickle=False)
    return 0


def forward(model: Any, batch: np.ndarray) -> np.ndarray:
    """The model's (first) output on one batch, called eagerly in inference mode: `predict`
    would trace the whole graph first, seconds for a ResNet, to serve a handful of images."""
    output = model(batch, training=False)
    output = output[0] if isinstance(output, (list, tuple)) else output
    return np.asarray(output.detach().cpu() if hasattr(output, "detach") else output)  # a torch backend's tensor
