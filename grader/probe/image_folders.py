"""A custom dataset of images in folders (one folder per class), as a program reads it with
Keras' `image_dataset_from_directory` or `ImageDataGenerator.flow_from_directory`, or
torchvision's `ImageFolder`: each call is recorded (folder, subset, classes, files per class)
in trace["image_folders"], a folder that is not there included (with what the submission
holds instead), and after the program (rubric `probe: {image_folders: {}}`) the final Keras
model is measured on the validation images by the probe itself, not by the program.

Runs in the student's process: what it records is evidence (grader/harness/trust.py).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from grader.probe.trace import plain

VALIDATION_NAMES = {"val", "valid", "validation", "test", "testing", "dev"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
MAX_BATCHES = 200  # the measurement reads at most this many batches of the validation pipeline

STATE: dict[str, Any] = {"trace": None, "roots": []}  # roots: (record index, dataset object)


# ---------------------------------------------------------------- what a call reads


def listing(folder: Path) -> dict[str, int]:
    """Image files per class folder of `folder`, classes in the loaders' (sorted) order."""
    out = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        out[sub.name] = sum(1 for f in sub.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    return out


def beside() -> list[str]:
    """What the program's folder holds (to say where the images should have been)."""
    try:
        return sorted(p.name + ("/" if p.is_dir() else "") for p in Path.cwd().iterdir())[:30]
    except OSError:
        return []


def role(directory: str, subset: Any) -> str:
    """'validation' or 'training': the subset asked for, else the folder's name."""
    if subset in ("validation", "training"):
        return str(subset)
    return "validation" if Path(str(directory)).name.lower() in VALIDATION_NAMES else "training"


def record_call(loader: str, directory: Any, subset: Any = None, **extra: Any) -> dict[str, Any]:
    folder = Path(os.fspath(directory))
    rec: dict[str, Any] = {"loader": loader, "directory": str(directory), "subset": plain(subset),
                           "role": role(str(directory), subset), **{k: plain(v) for k, v in extra.items()}}
    rec["exists"] = folder.is_dir()
    if rec["exists"]:
        rec["per_class"] = listing(folder)
        rec["class_names"] = list(rec["per_class"])
    else:
        rec["beside"] = beside()
    trace = STATE["trace"]
    if trace is not None:
        trace.data.setdefault("image_folders", []).append(rec)
        trace.save()
    return rec


def traced(loader: str, original: Any, arg_names: tuple[str, ...]) -> Any:
    """A loader that records its call (and its error, if the folder is missing) and remembers
    the dataset it returns."""

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        given = dict(zip(arg_names, args)) | kwargs
        key = "directory" if "directory" in given else "root"
        local = colab_folder(given.get(key, ""))
        if local is not None:  # a Colab/Drive folder: the one of that name in the submission
            args, kwargs = tuple(local if a is given[key] else a for a in args), dict(kwargs)
            if key in kwargs:
                kwargs[key] = local
            given[key] = local
        rec = record_call(loader, given.get(key, ""), given.get("subset"),
                          validation_split=given.get("validation_split"), image_size=given.get("image_size",
                          given.get("target_size")), label_mode=given.get("label_mode", given.get("class_mode")))
        try:
            out = original(*args, **kwargs)
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {e}"[:500]
            if STATE["trace"] is not None:
                STATE["trace"].save()
            raise
        index = len(STATE["trace"].data["image_folders"]) - 1 if STATE["trace"] is not None else -1
        datasets = out if isinstance(out, (tuple, list)) else [out]
        for ds in datasets:  # subset="both" gives (training, validation)
            STATE["roots"].append((index, ds))
        rec["samples"] = plain(getattr(out, "samples", None) or sum(rec.get("per_class", {}).values()))
        return out

    return call


def colab_folder(directory: Any) -> str | None:
    """A Colab or Drive folder that is not there (/content/drive/MyDrive/flowers/train) read
    from the submission's folder of the same path's end (flowers/train, else train), as the
    Colab shim does for files (grader/probe/colab.py); None when it is not such a path."""
    from grader.probe.colab import COLAB_ROOTS

    text = os.fspath(directory) if isinstance(directory, (str, os.PathLike)) else None
    if not text or not text.startswith(COLAB_ROOTS) or os.path.isdir(text):
        return None
    root = next(r for r in COLAB_ROOTS if text.startswith(r))
    parts = Path(text[len(root):]).parts
    for i in range(len(parts)):
        candidate = Path(*parts[i:])
        if candidate.is_dir():
            trace = STATE["trace"]
            if trace is not None:
                trace.note(f"{text} was read from the submission's {candidate.as_posix()}/")
            return candidate.as_posix()
    return None


# ---------------------------------------------------------------- installing


def install_keras(trace: Any, packages: tuple[str, ...]) -> None:
    """image_dataset_from_directory wherever a Keras package or TensorFlow holds it, and
    ImageDataGenerator.flow_from_directory."""
    import sys

    from grader.probe.keras_assets import replace_everywhere

    STATE["trace"] = trace
    for package in packages:
        mod = sys.modules.get(package)
        utils = getattr(mod, "utils", None)
        original = getattr(utils, "image_dataset_from_directory", None)
        if original is not None and not getattr(original, "_image_folders", False):
            wrapped = traced("image_dataset_from_directory", original, ("directory", "labels", "label_mode"))
            wrapped._image_folders = True
            replace_everywhere(package, {id(original): (original, wrapped)})
        cls = generator_class(package)
        if cls is not None and not getattr(cls.flow_from_directory, "_image_folders", False):
            flow = traced("flow_from_directory", cls.flow_from_directory, ("self", "directory"))
            flow._image_folders = True
            cls.flow_from_directory = flow


# Where ImageDataGenerator lives: Keras 3 keeps it in its legacy package (reached through
# tf.keras.preprocessing.image), Keras 2 (tf_keras) in its preprocessing package.
GENERATOR_MODULES = ("{}.src.legacy.preprocessing.image", "{}.src.preprocessing.image", "{}.preprocessing.image")


def generator_class(package: str) -> Any:
    import importlib

    for name in GENERATOR_MODULES:
        try:
            cls = getattr(importlib.import_module(name.format(package)), "ImageDataGenerator", None)
        except ImportError:
            continue
        if cls is not None:
            return cls
    return None


def install_torchvision(trace: Any) -> None:
    """torchvision.datasets.ImageFolder (recorded; the measurement is Keras' only)."""
    import torchvision.datasets as tvd

    STATE["trace"] = trace
    cls = tvd.ImageFolder
    if getattr(cls.__init__, "_image_folders", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def init(self: Any, root: Any, *args: Any, **kwargs: Any) -> None:
        rec = record_call("ImageFolder", root)
        try:
            original(self, root, *args, **kwargs)
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {e}"[:500]
            raise

    init._image_folders = True
    cls.__init__ = init


# ---------------------------------------------------------------- after the program


def lineage(ds: Any, depth: int = 50) -> list[int]:
    """The ids of a tf.data pipeline and of every pipeline it was made from (map, batch, …)."""
    ids = []
    while ds is not None and depth > 0:
        ids.append(id(ds))
        inputs = getattr(ds, "_input_dataset", None)
        ds, depth = inputs, depth - 1
    return ids


def root_of(ds: Any) -> int | None:
    """The loader call (index in trace["image_folders"]) a pipeline descends from."""
    ids = set(lineage(ds))
    for index, root in STATE["roots"]:
        if id(root) in ids:
            return index
    return None


def batches(ds: Any) -> Any:
    """One pass: a tf.data pipeline as it iterates; a Keras DirectoryIterator (which repeats
    for ever) by index, len(ds) batches."""
    if hasattr(ds, "_variant_tensor") or not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
        return iter(ds)
    return (ds[i] for i in range(len(ds)))


def measure(model: Any, ds: Any) -> dict[str, Any]:
    """Accuracy of `model` over the pipeline `ds`, batch by batch, and the labels per class it
    saw (to compare with the files the folder holds)."""
    right = total = 0
    labels: dict[int, int] = {}
    for i, batch in enumerate(batches(ds)):
        if i >= MAX_BATCHES:
            break
        x, y = batch[0], np.asarray(batch[1])
        probs = np.asarray(model(x, training=False))
        pred = probs.argmax(-1) if probs.ndim == 2 and probs.shape[1] > 1 else (probs.reshape(-1) > 0.5).astype(int)
        true = y.argmax(-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(int)
        right += int((pred == true).sum())
        total += len(true)
        for t in true.tolist():
            labels[int(t)] = labels.get(int(t), 0) + 1
    return {"accuracy": round(right / total, 4) if total else None, "n": total,
            "labels": {str(k): v for k, v in sorted(labels.items())}}


def after_run(session: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The final Keras model measured on the validation images: through the pipeline the
    program evaluated on when that one descends from the validation images (its own
    preprocessing applied), else through the validation images as the loader gave them."""
    records = session.trace.data.get("image_folders", [])
    keras = session.installed.get("keras")
    result: dict[str, Any] = {"calls": len(records)}
    evaluated = {}
    if keras is not None:
        for (mid, kind), ds in getattr(keras, "datasets", {}).items():
            if kind == "evaluate":
                evaluated[mid] = root_of(ds)
    result["evaluated_on"] = {str(k): v for k, v in evaluated.items()}
    val = [(i, ds) for i, ds in STATE["roots"] if 0 <= i < len(records) and records[i]["role"] == "validation"]
    fits = session.trace.data.get("fits", [])
    model_index = fits[-1]["model"] if fits else None  # the model trained last
    model = keras.models.get(model_index) if keras is not None and model_index is not None else None
    if model is None or not val:
        result["error"] = "no Keras model to measure" if model is None else "no validation images were loaded"
        return result
    root_index, root = val[-1]
    pipeline = keras.datasets.get((model_index, "evaluate"))
    via = "the program's evaluation pipeline (its preprocessing applied)"
    if pipeline is None or root_of(pipeline) != root_index:
        pipeline, via = root, "the validation images as the loader gave them"
    result.update(root=root_index, via=via, model=model_index, **measure(model, pipeline))
    if pipeline is not root:  # the labels the folders give the same images, to compare with
        result["labels_from_folders"] = label_counts(root)
    return result


def label_counts(ds: Any) -> dict[str, int]:
    """Labels per class over one pass of a loader's own dataset (no model run)."""
    counts: dict[int, int] = {}
    for i, batch in enumerate(batches(ds)):
        if i >= MAX_BATCHES:
            break
        y = np.asarray(batch[1])
        for t in (y.argmax(-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(int)).tolist():
            counts[int(t)] = counts.get(int(t), 0) + 1
    return {str(k): v for k, v in sorted(counts.items())}
