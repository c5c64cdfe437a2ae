"""After the program has ended: the measured model(s) written to the job's output folder in
data-only formats, for the trusted re-measurement in a clean sandbox (grader/trusted.py).

This runs in the student's process, so nothing here is trusted: the host checks every file
before a clean sandbox loads it, and the figure that counts is measured there on images the
program never received. A model that cannot be exported is recorded with the reason.

Formats: Keras, the architecture as JSON plus the weights (.weights.h5), or a TensorFlow
SavedModel for a model the JSON cannot describe (subclassed models); PyTorch, a torch.export
program (.pt2) saved without its pickled sample inputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from grader.probe import layouts
from grader.probe.keras_classes import KERAS_CLASSES, keras_classes

MAX_EXPORT_BYTES = 256 * 2**20


def export_measured(probes: list[Any], out_dir: Path) -> list[dict[str, Any]]:
    """One manifest entry per measured model: {model, part, framework, kind, dir, files
    {name: {bytes, sha256}}, preprocess, dataset} or the same with `error`."""
    root = out_dir / "export"
    shutil.rmtree(root, ignore_errors=True)  # nothing the program left there is kept
    entries = []
    for probe in probes:
        measured = getattr(probe, "measured", None)
        if not measured or measured["dataset"] not in layouts.IMAGE_DATASETS:
            continue  # text models are not re-measured outside the program yet
        folder = root / str(len(entries))
        folder.mkdir(parents=True)
        entry = {"model": measured["model"], "part": measured.get("part"), "framework": measured["framework"],
                 "dataset": measured["dataset"], "dir": f"export/{len(entries)}"}
        try:
            entry["preprocess"] = layouts.describe(measured["inputs"], measured["raw"])
            entry["kind"] = WRITERS[measured["framework"]](measured, folder)
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


def describable(config: dict[str, Any]) -> bool:
    """True when the JSON names only Keras' own classes (compile settings aside)."""
    config = {k: v for k, v in config.items() if k != "compile_config"}
    return keras_classes(config) <= KERAS_CLASSES


def write_keras(measured: dict[str, Any], folder: Path) -> str:
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
    if hasattr(model, "export"):  # Keras 3
        model.export(str(saved), verbose=False)
    else:  # tf-keras
        import tensorflow as tf

        tf.saved_model.save(model, str(saved))
    return "keras_savedmodel"


def write_torch(measured: dict[str, Any], folder: Path) -> str:
    import torch

    model, example = measured["object"], torch.as_tensor(measured["inputs"][:2])
    model.eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    program._example_inputs = None  # saved pickled otherwise; the host refuses pickles
    torch.export.save(program, str(folder / "model.pt2"))
    return "torch_pt2"


WRITERS = {"keras": write_keras, "torch": write_torch}
