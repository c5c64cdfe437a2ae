"""Programs 2 and 5 re-measured outside the student's process: the pretrained torchvision model
the program ended with, run in a clean sandbox on the host's own reference images.

The probe exports the final model as data (grader.probe.export.write_torchvision): its
factory's name, its number of classes, and only the tensors that differ from the pretrained
file the sandbox served it (a replaced head: a few kB). A classifier whose head the factory
cannot build (nn.Sequential(Dropout, Linear) …) travels whole as a torch.export program
(ResNet-50: 100 MB, under the cap); a detector the factory cannot build is not re-measured. The pretrained tensors never travel:
the host puts its own copy of the file beside the request, so the export stays far below the
size cap whatever the backbone (ResNet-50 100 MB, Faster R-CNN 160 MB; VGG16's 530 MB would
not fit whole) and a program cannot hand over weights of its own under the file's name: every
tensor that is not the file's travels as it is and is used as it is. The clean sandbox
(grader/clean/vision.py) rebuilds the model with torchvision's factory (no code of the
program's: a model torchvision does not build is refused), runs it in eval mode on the
reference images drawn or read by the host, and writes arrays only; the host turns them into
the figures the vision checks judge (output shape and class, detections) and counts how much
of the model is the served file (WeightsMatch). Predictions post-processed in Python (a
forward, predict or decode_predictions of the program's) do not travel.

What the export says the model is, is what is judged: a program that rewrites the exporter in
its own process can hand over another model than the one it ran, but then it must build that
model; the reference images it never sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from grader.models import ReferenceOutput, RunRecord, TrustedMeasurement, WeightsMatch
from grader.probe import weights
from grader.probe.vision import boxes_drawn, cross_check_on, load_reference
from grader.runners.base import RunPlan
from grader.trusted import Refused, check_pt2, checked_request, run_clean

MAX_CLASSES = 100_000
MAX_IMAGES = 8
KEY = re.compile(r"[A-Za-z0-9_.]{1,200}")
FACTORY = re.compile(r"[a-z][a-z0-9_]{0,60}")


def check_torchvision(folder: Path, kind: str) -> dict[str, Any]:
    """model.json of plain values (a factory name, a task, classes, a served file or none, the
    state's keys) and own.npz holding only arrays of those keys, or (torchvision_pt2, a
    classifier) a .pt2 program of data only. Raises Refused."""
    spec = json.loads((folder / "model.json").read_text())
    if not isinstance(spec, dict) or set(spec) != {"factory", "task", "num_classes", "weights_file", "keys"}:
        raise Refused("the exported model's description is not the expected one")
    if not isinstance(spec["factory"], str) or not FACTORY.fullmatch(spec["factory"]) \
            or spec["task"] not in ("classification", "detection") \
            or type(spec["num_classes"]) is not int or not 0 < spec["num_classes"] <= MAX_CLASSES:
        raise Refused("the exported model's factory, task or classes are not plain values")
    if spec["weights_file"] is not None and spec["weights_file"] not in weights.CATALOGUE:
        raise Refused(f"the export names a weights file the grader does not serve: {str(spec['weights_file'])[:80]}")
    keys = spec["keys"]
    if not isinstance(keys, list) or not all(isinstance(k, str) and KEY.fullmatch(k) for k in keys):
        raise Refused("the exported model's tensor names are not plain names")
    if kind == "torchvision_pt2":
        if spec["task"] != "classification" or (folder / "own.npz").exists():
            raise Refused("only a classifier is exported whole, and without other files")
        check_pt2(folder / "model.pt2")
        return spec
    with zipfile.ZipFile(folder / "own.npz") as archive:
        if not {n.removesuffix(".npy") for n in archive.namelist()} <= set(keys):
            raise Refused("own.npz holds other entries than the model's tensors")
    return spec


def reference_images(plan: RunPlan) -> list[tuple[str, np.ndarray, list[dict[str, Any]], str]]:
    """(name, uint8 H x W x 3 image, known objects, "drawn" | "photo") for each of the rubric's
    reference images, drawn or read by the host itself."""
    specs = ((plan.probe or {}).get("vision") or {}).get("images") or []
    if not specs:
        raise Refused("the rubric names no reference images")
    out = []
    for spec in specs[:MAX_IMAGES]:
        image, objects, origin = load_reference(spec, plan.cache_dir)
        out.append((str(spec.get("name") or spec.get("file")), np.asarray(image, dtype=np.uint8), objects, origin))
    return out


def measure(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
            result: TrustedMeasurement) -> None:
    """Fills result.reference and result.weights, or raises Refused with the reason."""
    if entry.get("kind") not in ("torchvision_state", "torchvision_pt2"):
        raise Refused(f"a torchvision model exported as {str(entry.get('kind'))[:40]!r} is not re-measured")
    images = reference_images(plan)
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        spec = json.loads((request / "model.json").read_text())
        if spec["weights_file"]:
            place(weights.resolve(spec["weights_file"], plan.cache_dir).path, request / "base.pth")
        names = [f"reference{i}" for i in range(len(images))]
        for name, (_, image, _, _) in zip(names, images):
            np.save(request / f"{name}.npy", image, allow_pickle=False)
        run_clean(request, out, plan, runner, {"kind": entry["kind"], "preprocess": entry.get("preprocess"),
                                               "inputs": names})
        counts = array(out / "weights.npy", np.float64)
        result.weights = WeightsMatch(file=spec["weights_file"], parameters=int(counts[0]),
                                      from_file=int(counts[1]), near_file=int(counts[2]))
        result.reference = [read_output(out, name, reference, spec["task"]) for name, reference in zip(names, images)]


def place(source: Path, target: Path) -> None:
    """The host's copy of the served file beside the request: linked where it can be, else copied."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def array(path: Path, dtype: Any) -> np.ndarray:
    """An array the clean sandbox wrote, of that dtype; Refused when missing or malformed."""
    if not path.is_file() or path.is_symlink():
        raise Refused(f"the clean sandbox wrote no {path.name}")
    value = np.load(path, allow_pickle=False)
    if value.dtype != dtype:
        raise Refused(f"the clean sandbox's {path.name} is not {np.dtype(dtype).name}")
    return value


def read_output(out: Path, name: str, reference: tuple[str, np.ndarray, list[dict[str, Any]], str],
                task: str) -> ReferenceOutput:
    """One reference image's outputs (reference: as reference_images gives it), in the words of
    the in-process record."""
    shown, image, objects, origin = reference
    height, width = image.shape[:2]
    result = ReferenceOutput(image=shown, size=[width, height], origin=origin, objects=objects)
    if task == "detection":
        boxes = array(out / f"{name}.boxes.npy", np.float32).reshape(-1, 4)
        labels, scores = array(out / f"{name}.labels.npy", np.int64), array(out / f"{name}.scores.npy", np.float32)
        result.detections = {"boxes_shape": list(boxes.shape), "count": int(len(boxes)),
                             "boxes": [[round(float(v), 2) for v in b] for b in boxes[:100]],
                             "labels_dtype": "torch.int64", "labels": labels[:100].tolist(),
                             "scores": [round(float(s), 4) for s in scores[:100]]}
        return result
    scores = array(out / f"{name}.npy", np.float32)
    result.shape, result.finite = list(scores.shape), bool(np.isfinite(scores).all())
    if scores.ndim == 2:
        result.argmax = scores.argmax(axis=1).tolist()
    return result


def draw_detections(run: RunRecord, plan: RunPlan, artifacts_to: Path) -> None:
    """Where the program did not run the reference images itself (the rubric's cross_check is
    off), the detector's re-measured boxes drawn on them by the host, kept as the job's
    reference_detections<i>.png pictures (as grader.probe.vision draws them in the process)."""
    found = next((t for t in run.trusted if t.framework == "torchvision" and not t.error and t.reference), None)
    if cross_check_on(plan.probe.get("vision") or {}) or found is None:
        return
    from PIL import Image

    images = reference_images(plan)
    for i, (output, (_, image, _, _)) in enumerate(zip(found.reference, images), 1):
        if output.detections is None:
            continue
        name = f"reference_detections{i}.png"
        artifacts_to.mkdir(parents=True, exist_ok=True)
        boxes_drawn(Image.fromarray(image, "RGB"), output.detections).save(artifacts_to / name)
        if name not in run.artifacts:
            run.artifacts.append(name)
