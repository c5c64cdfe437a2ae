"""`python -m grader.clean REQUEST.json OUT_DIR`: a checked model's outputs on given images
(or `--serve FRAMEWORK`: requests come on stdin, each served by a fork of a process that has
imported the framework and seen no model).

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
import traceback
from pathlib import Path

import numpy as np

from grader.clean.loaders import LOADERS
from grader.probe import layouts

def ready_keras() -> None:
    """Imports only: a TensorFlow that has run an op cannot be forked (its thread pools stay
    behind and the child's first parallel op waits for them for ever)."""
    import h5py  # noqa: F401
    import keras  # noqa: F401


def ready_torch() -> None:
    """A tiny program saved and loaded: the first torch.export.load imports most of the stack.
    Its ops are too small to start torch's thread pool, so the process can still be forked."""
    import io

    import torch

    program = torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),))
    program._example_inputs = None
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    torch.export.load(buffer).module()(torch.zeros(1, 2))


def ready_sklearn() -> None:
    from sklearn.neighbors import KNeighborsClassifier  # noqa: F401


def ready_torchvision() -> None:
    import torchvision  # noqa: F401
    from PIL import Image  # noqa: F401


# the loaders' slow first steps, done once per server (while the first student's job runs)
READY = {"keras": ready_keras, "torch": ready_torch, "sklearn": ready_sklearn, "torchvision": ready_torchvision}


def main(argv: list[str]) -> int:
    """`REQUEST.json OUT_DIR`, or `--serve FRAMEWORK` (see serve)."""
    if argv[0] == "--serve":
        return serve(argv[1])
    return remeasure(*argv)


def serve(framework: str) -> int:
    """Imports the framework and says "ready" on stdout; then, for each line
    ["REQUEST.json", "OUT_DIR", "WORK_DIR"] on stdin, forks a child that serves it in WORK_DIR
    (its stdout and stderr go to WORK_DIR/stderr.txt) and writes the child's exit code
    (negative: the signal that ended it) as one line on stdout. Each child starts from the same
    state, a process that has imported the framework and never held a model, so no request
    sees another's. Ends at end of input."""
    try:
        READY.get(framework, lambda: None)()
    except Exception:  # only time is lost: each request is served the same way
        pass
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stderr.flush()
    for line in iter(sys.stdin.readline, ""):
        request, out, work = json.loads(line)
        pid = os.fork()
        if pid == 0:
            serve_one(request, out, work)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"{os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()
    return 0


def serve_one(request: str, out: str, work: str) -> None:
    """The forked child: serves one request and exits (never returns)."""
    code = 1
    try:
        os.chdir(work)
        log = os.open(Path(work) / "stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the next request's line is the server's to read
        os.dup2(log, 1)  # stdout carries the server's replies: nothing else may write there
        os.dup2(log, 2)
        code = remeasure(request, out)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    inputs = [layouts.apply(np.load(folder / f"{name}.npy", allow_pickle=False), request["preprocess"])
              for name in request["inputs"]]
    if not inputs:
        return 0
    out = predict(np.concatenate(inputs)).astype(np.float32)  # one call: a framework traces its predict once
    for name, part in zip(request["inputs"], np.split(out, np.cumsum([len(x) for x in inputs])[:-1])):
        np.save(Path(out_dir) / f"{name}.npy", part.reshape(len(part), -1), allow_pickle=False)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # the outputs are written and closed; a framework's teardown only costs time
