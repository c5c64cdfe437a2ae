"""After the program has ended: the measured model(s) written to the job's output folder in
data-only formats, for the trusted re-measurement in a clean sandbox (grader/trusted.py).

This runs in the student's process, so nothing here is trusted: the host checks every file
before a clean sandbox loads it, and the figure that counts is measured there on images the
program never received. A model that cannot be exported is recorded with the reason.

Formats: Keras, the architecture as JSON plus the weights (.weights.h5), or a TensorFlow
SavedModel for a model the JSON cannot describe (subclassed models); PyTorch, a torch.export
program (.pt2) saved without its pickled sample inputs (a text model's for a fixed batch); a
torchvision pretrained model, its factory and the tensors that are not the served pretrained
file's (write_torchvision); a keras.applications model, its JSON, where the application sits in
it and the variables that are not the served file's (write_keras_application); scikit-learn's
KNN, its parameters as JSON, the labels it was fitted with in a .npz that loads without
unpickling, the served images it was fitted on by index, and any scaler or PCA between them as
arrays (grader/probe/transforms.py). A description fitted feature by feature is written as
preprocess.npz beside the model; a model fitted on the program's own arrays (a chatbot) comes
with the first rows it was fitted on (fit.npz: x, y).
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
from grader.probe.keras_classes import (APPLICATION_CLASSES, KERAS_CLASSES, keras_classes,
                                        misplaced_application_classes)

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
        if not measured or not (layouts.re_measured(measured["dataset"], measured["framework"])
                                or measured.get("part") == "chatbot"):
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
            if measured.get("fit") is not None:  # the rows it was fitted on, for its loss outside
                np.savez(folder / "fit.npz", x=measured["fit"][0], y=measured["fit"][1])
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

    # the program has ended: a model trained on a GPU is exported to run anywhere
    model, inputs = measured["object"].cpu(), torch.as_tensor(measured["inputs"]).cpu()
    if measured.get("part") == "chatbot":  # its first training batch's shape: token ids of that length
        export_program(model, inputs[:measured["batch"]], folder / "model.pt2", fixed=True)
    elif measured["dataset"] in layouts.TEXT_DATASETS:  # a fixed batch: a recurrent layer traces far faster
        export_program(model, inputs[torch.arange(TEXT_BATCH) % len(inputs)], folder / "model.pt2", fixed=True)
    else:
        export_program(model, inputs[:2], folder / "model.pt2")
    return "torch_pt2"


def export_program(model: Any, example: Any, path: Path, fixed: bool = False) -> None:
    """The module in eval mode as a torch.export program (its mode restored): for any batch
    size, or with `fixed` for the example's batch size alone, traced non-strict."""
    import torch

    was_training = model.training
    model.eval()
    try:
        if fixed:
            program = torch.export.export(model, (example,), strict=False)
        else:
            program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    finally:
        model.train(was_training)
    program._example_inputs = None  # saved pickled otherwise; the host refuses pickles
    torch.export.save(program, str(path))


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


def write_torchvision(measured: dict[str, Any], folder: Path, preprocess: Any = None) -> str:
    """A torchvision model as its factory's name and classes (model.json) and the tensors of its
    state that are not the served pretrained file's (own.npz, plain arrays). The pretrained
    tensors do not travel: the clean sandbox takes them from the host's copy of the file
    (named in model.json), so an export stays small (a replaced head: a few kB, where
    ResNet-50 whole is 100 MB) and every tensor the program changed travels as it is.
    Raises ValueError for a head whose classes could not be read."""
    import torch

    if not isinstance(measured.get("num_classes"), int):
        raise ValueError("the model's head could not be described (no linear layer that gives its classes)")
    model = measured["object"]
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    base = served_tensors(measured.get("weights_file"), measured["cache_dir"])
    (folder / "model.json").write_text(json.dumps(
        {"factory": measured["factory"], "task": measured["task"], "num_classes": measured["num_classes"],
         "weights_file": measured.get("weights_file") if base else None, "keys": sorted(state)}))
    if not fits_factory(measured, state):
        if measured["task"] != "classification":
            raise ValueError(f"the detector is not what {measured['factory']} builds for {measured['num_classes']} "
                             "classes, and a detector is re-measured only as its factory builds it")
        device = next(model.parameters()).device
        probe = measured["probe"]
        probe.quiet = True  # its hooks record the program's calls, not the tracing
        try:
            export_program(model, torch.zeros(2, 3, 224, 224, device=device), folder / "model.pt2")
        finally:
            probe.quiet = False
        return "torchvision_pt2"  # a head of the program's own making (nn.Sequential …): the module whole
    own = {k: v for k, v in state.items() if not (k in base and base[k].shape == v.shape
                                                  and base[k].dtype == v.dtype and torch.equal(base[k], v))}
    np.savez(folder / "own.npz", **{k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in own.items()})
    return "torchvision_state"


def write_keras_application(measured: dict[str, Any], folder: Path, preprocess: Any = None) -> str:
    """A keras.applications model (the application whole, or a model holding it) as data: its
    architecture as Keras JSON (model.json), where the application sits in it and which served
    file it loaded (application.json: {application: [layer names from the root], weights_file,
    package, module, shapes: each of model.weights' shapes, in order}) and the variables whose
    values are not what the served file gave them (own.npz: "w<index into model.weights>").
    The pretrained values do not travel: the clean sandbox loads the host's copy of the file
    into the application as keras.applications does. Raises ValueError for a model its JSON
    cannot describe with Keras' own classes, or one that no longer holds the application."""
    model, application = measured["object"], measured["application"]
    try:
        architecture = json.loads(model.to_json())
    except Exception as e:
        raise ValueError(f"the model could not be described as Keras JSON ({type(e).__name__}: {str(e)[:200]})") from e
    config = {k: v for k, v in architecture.items() if k != "compile_config"}
    unknown = sorted(keras_classes(config) - KERAS_CLASSES - set(APPLICATION_CLASSES)
                     | misplaced_application_classes(config))
    if unknown:
        raise ValueError(f"the model uses classes that are not Keras' own: {', '.join(unknown[:5])}")
    path = layer_path(model, application)
    if path is None:
        raise ValueError("the model the program ran last does not hold the application it built")
    from grader.probe.keras_assets import variable_digest

    served = measured["digests"]  # id(variable) -> digest as the file gave it
    own = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)
           if id(v) not in served or variable_digest(v) != served[id(v)]}
    (folder / "model.json").write_text(json.dumps(architecture))
    (folder / "application.json").write_text(json.dumps(
        {"application": path, "weights_file": measured["weights_file"] if served else None,
         "package": measured["package"], "module": measured["module"],
         "shapes": [[int(d) for d in v.shape] for v in model.weights]}))
    np.savez(folder / "own.npz", **own)
    return "keras_application"


def layer_path(model: Any, target: Any, depth: int = 4) -> list[str] | None:
    """Layer names from `model` down to `target` ([] when it is the model), or None."""
    if model is target:
        return []
    if depth == 0:
        return None
    for layer in getattr(model, "layers", None) or []:
        inner = layer_path(layer, target, depth - 1)
        if inner is not None:
            return [layer.name, *inner]
    return None


def fits_factory(measured: dict[str, Any], state: dict[str, Any]) -> bool:
    """Whether the state has the tensors (names and shapes) the factory builds for the model's
    classes; built on the meta device (no memory, no weights)."""
    import torch
    import torchvision

    kwargs = {"weights": None, "num_classes": measured["num_classes"]}
    if measured["task"] == "detection":
        kwargs["weights_backbone"] = None
    builder = torchvision.models.get_model_builder(measured["factory"])
    with torch.device("meta"):  # torchvision's own factory, not the probe's recording wrapper
        built = getattr(builder, "__wrapped__", builder)(**kwargs).state_dict()
    counted = lambda d: {k: tuple(v.shape) for k, v in d.items() if not k.endswith("num_batches_tracked")}  # noqa: E731
    return counted(built) == counted(state)


def served_tensors(file_name: str | None, cache_dir: str) -> dict[str, Any]:
    """The pretrained file served to the program, as tensors (empty when none was)."""
    import torch

    from grader.probe import weights

    if not file_name:
        return {}
    served = weights.resolve(file_name, cache_dir, Path.home() / ".grader-weights")
    state = torch.load(served.path, map_location="cpu", weights_only=True)
    return state if isinstance(state, dict) else {}


WRITERS = {"keras": write_keras, "torch": write_torch, "sklearn": write_sklearn, "torchvision": write_torchvision,
           "keras_applications": write_keras_application}
