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

import numpy as np

from grader.clean.loaders import LOADERS
from grader.probe import layouts

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
