"""After the program has ended: the measured model(s) written to the job's output folder in
data-only formats, for the trusted re-measurement in a clean sandbox (grader/trusted.py).

This runs in the student's process, so nothing here is trusted: the host checks every file
before a clean sandbox loads it, and the figure that counts is measured there on images the
program never received. A model that cannot be exported is recorded with the reason.

Formats: Keras, the architecture as JSON plus the weights (.weights.h5), or a TensorFlow
SavedModel for a model the JSON cannot describe (subclassed models); PyTorch, a torch.export
program (.pt2) saved without its pickled sample inputs (a text model's for a fixed batch);
scikit-learn's KNN, its parameters as JSON, the labels it was fitted with in a .npz that loads
without unpickling, the served images it was fitted on by index, and any scaler or PCA between
them as arrays (grader/probe/transforms.py). A description fitted feature by feature is
written as preprocess.npz beside the model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.probe import layouts, transforms
from grader.probe.keras_classes import KERAS_CLASSES, keras_classes

MAX_EXPORT_BYTES = 256 * 2**20
TEXT_BATCH = 256  # rows per call of an exported text model (the clean sandbox's batch)


def export_measured(probes: list[Any], out_dir: Path) -> list[dict[str, Any]]:
    """One manifest entry per measured model: {model, part, framework, kind, dir, files
    {name: {bytes, sha256}}, preprocess, dataset} or the same with `error`."""
    root = out_dir / "export"
    shutil.rmtree(root, ignore_errors=True)  # nothing the program left there is kept
    entries = []
    for probe in probes:
        measured = getattr(probe, "measured", None)
        if not measured or not layouts.re_measured(measured["dataset"], measured["framework"]):
            continue
        folder = root / str(len(entries))
        folder.mkdir(parents=True)
        entry = {"model": measured["model"], "part": measured.get("part"), "framework": measured["framework"],
                 "dataset": measured["dataset"], "dir": f"export/{len(entries)}"}
        try:
            if measured.get("error"):
                raise ValueError(measured["error"])
            entry["preprocess"] = write_preprocess(measured.get("preprocess") or describe(measured), folder)
            for key in ("load_args", "output"):  # reviews: load_data's arguments; a logit output
                if measured.get(key):
                    entry[key] = measured[key]
            for rows in ("served_rows", "fit_rows"):  # indices into the served images (a KNN's)
                if measured.get(rows) is not None:
                    entry[rows] = [int(r) for r in measured[rows]]
            entry["kind"] = WRITERS[measured["framework"]](measured, folder, entry["preprocess"])
            entry["files"] = listing(folder)
            if sum(f["bytes"] for f in entry["files"].values()) > MAX_EXPORT_BYTES:
                raise ValueError(f"the exported model is larger than {MAX_EXPORT_BYTES // 2**20} MB")
        except Exception as e:
            shutil.rmtree(folder, ignore_errors=True)
            entry["error"] = f"{type(e).__name__}: {e}"[:500]
        entries.append(entry)
    return entries


def listing(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        files[str(path.relative_to(folder))] = {"bytes": path.stat().st_size,
                                                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return files


def describe(measured: dict[str, Any]) -> dict[str, Any] | None:
    if measured["dataset"] in layouts.TEXT_DATASETS:
        return layouts.describe_sequences(measured["inputs"], measured["raw"])
    return layouts.describe(measured["inputs"], measured["raw"])


def write_preprocess(description: dict[str, Any] | None, folder: Path) -> dict[str, Any] | None:
    """The description for the trace; per-feature arrays go to preprocess.npz beside the model."""
    if not description or description.get("per") != "feature":
        return description
    np.savez(folder / "preprocess.npz", scale=description["scale"], shift=description["shift"])
    return {"layout": description["layout"], "per": "feature"}


def describable(config: dict[str, Any]) -> bool:
    """True when the JSON names only Keras' own classes (compile settings aside)."""
    config = {k: v for k, v in config.items() if k != "compile_config"}
    return keras_classes(config) <= KERAS_CLASSES


def write_keras(measured: dict[str, Any], folder: Path, preprocess: Any = None) -> str:
    model = measured["object"]
    try:
        architecture = model.to_json()
    except Exception:
        architecture = None
    if architecture and describable(json.loads(architecture)):
        (folder / "model.json").write_text(architecture)
        model.save_weights(str(folder / "model.weights.h5"))
        return "keras_json"
    saved = folder / "savedmodel"
    backend = _keras_backend()
    if backend != "tensorflow":  # a SavedModel needs TensorFlow; the JSON could not describe the model
        raise ValueError(f"a Keras model that its JSON cannot describe (a subclassed model) is exported only on "
                         f"the TensorFlow backend, not on {backend!r}")
    if hasattr(model, "export"):  # Keras 3
        model.export(str(saved), verbose=False)
    else:  # tf-keras
        import tensorflow as tf

        tf.saved_model.save(model, str(saved))
    return "keras_savedmodel"


def write_torch(measured: dict[str, Any], folder: Path, preprocess: Any = None) -> str:
    """A torch.export program (.pt2). Images: the batch axis dynamic. Reviews: a fixed batch of
    TEXT_BATCH rows (the clean sandbox pads the last one): tracing a recurrent layer over a
    symbolic batch took 3 to 13 times as long (bench/results/text_export*.json; two stacked
    bidirectional LSTMs over 300 words still took 17-26 s on a busy 2-core machine)."""
    import torch

    model, inputs = measured["object"], torch.as_tensor(measured["inputs"]).cpu()
    model.cpu().eval()  # the program has ended: a model trained on a GPU is exported to run anywhere
    if measured["dataset"] in layouts.TEXT_DATASETS:
        example = inputs[torch.arange(TEXT_BATCH) % len(inputs)]
        program = torch.export.export(model, (example,), strict=False)
    else:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (inputs[:2],), dynamic_shapes=({0: batch},))
    program._example_inputs = None  # saved pickled otherwise; the host refuses pickles
    torch.export.save(program, str(folder / "model.pt2"))
    return "torch_pt2"


def _keras_backend() -> str:
    """The backend the program's Keras runs on ("tensorflow" for tf-keras)."""
    keras = sys.modules.get("keras")
    try:
        return keras.backend.backend() if keras is not None else "tensorflow"
    except Exception:
        return "tensorflow"


KNN_METRICS = ("minkowski", "euclidean", "manhattan", "cosine", "chebyshev", "l1", "l2", "cityblock")


def write_sklearn(measured: dict[str, Any], folder: Path, preprocess: dict[str, Any] | None) -> str:
    """A KNN as data: knn.json (its parameters) and knn.npz (fit_labels int64 (N,), the labels
    it was fitted with); the images it was fitted on are named by index ("fit_rows") and the
    host takes them from its own copy. Raises ValueError when its training rows were not found
    among the served images under the preprocessing its test rows show."""
    knn = measured["object"]
    if measured.get("fit_rows") is None:  # found by undoing the description: matched, or None
        raise ValueError("the KNN's training rows could not be traced to the served images")
    if preprocess is None:
        raise ValueError("the program's preprocessing could not be described as data (layout and scaling)")
    params = {k: knn.get_params()[k] for k in ("n_neighbors", "weights", "metric", "p")}
    if params["weights"] not in ("uniform", "distance") or params["metric"] not in KNN_METRICS:
        raise ValueError(f"a KNN with weights={params['weights']!r}, metric={params['metric']!r} is not re-measured")
    labels = np.asarray(knn.classes_)[np.asarray(knn._y)].astype(np.float64).astype(np.int64)
    (folder / "knn.json").write_text(json.dumps(params))
    np.savez(folder / "knn.npz", fit_labels=labels)
    if measured.get("steps"):  # scalers or a PCA between the data and the KNN, as arrays
        specs, arrays = transforms.write_steps(measured["steps"])
        (folder / "steps.json").write_text(json.dumps(specs))
        np.savez(folder / "steps.npz", **arrays)
    return "sklearn_knn"


WRITERS = {"keras": write_keras, "torch": write_torch, "sklearn": write_sklearn}
