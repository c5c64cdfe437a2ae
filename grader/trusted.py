"""The trust boundary: figures that decide marks are measured where the student's code never runs.

What the student's process records (fits, histories, printed output, the probe's in-process
measurement) is evidence: the program can rewrite all of it. After the program has ended,
the probe exports the measured model in a data-only format. The host checks the files
(sizes, no links, Keras classes against an allow-list, no pickled entry in a .pt2), a second,
clean sandbox on the same runner (no student files, no network, the same limits) loads the
model with the frameworks' data-only loaders and writes its outputs on images, and the host
scores them against labels that sandbox never sees:

* the test images the program was served (compared with what the program reports), and
* images the program never received: fresh stand-in samples drawn with a seed the sandbox
  never sees, or real test images outside the quick subset. A model that memorised the test
  set scores far higher on the first than on the second: that is named as a leak.

A full run on real data serves every test image, so there are no unseen ones: the sheet says
the test set was visible to the program.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from grader.models import RunRecord, Status, TrustedMeasurement
from grader.probe import provider
from grader.probe.layouts import IMAGE_DATASETS
from grader.probe.keras_classes import KERAS_CLASSES, keras_classes
from grader.probe.measure import predictions_to_labels
from grader.runners.base import RunPlan

MAX_UNSEEN = 2000
MAX_MODEL_BYTES = 256 * 2**20

PT2_METADATA = ("archive_format", "archive_version", ".data/version", "byteorder", ".data/serialization_id")


class Refused(ValueError):
    """An exported model the host will not hand to a clean sandbox, with the reason."""


# ---------------------------------------------------------------- checks on the files


def checked_keras_json(folder: Path) -> str:
    """The architecture with its compile settings dropped, if every class is Keras' own."""
    config = json.loads((folder / "model.json").read_text())
    config.pop("compile_config", None)
    unknown = sorted(keras_classes(config) - KERAS_CLASSES)
    if unknown:
        raise Refused(f"the model uses layer classes that are not Keras' own: {', '.join(unknown[:5])}")
    return json.dumps(config)


def check_pt2(path: Path) -> None:
    """A .pt2 archive whose weights are raw tensors and which holds no pickled entry."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        configs = [n for n in names if n.endswith(("weights_config.json", "constants_config.json"))]
        raw = set()
        for name in configs:
            for tensor in json.loads(archive.read(name)).get("config", {}).values():
                if tensor.get("use_pickle", True):
                    raise Refused("the .pt2 archive stores a tensor pickled")
                raw.add(name.rsplit("/", 1)[0] + "/" + tensor["path_name"])
        for info in archive.infolist():
            name = info.filename
            if name in raw or name.endswith(".json") or name.split("/", 1)[-1] in PT2_METADATA:
                continue
            if name.endswith(".pt") and info.file_size == 0:  # the sample inputs, saved empty
                continue
            raise Refused(f"the .pt2 archive holds an entry that is not data: {name}")


def check_npz(path: Path) -> None:
    """Arrays only: an object array would be unpickled on loading."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            for name in arrays.files:
                arrays[name]
    except ValueError as e:
        raise Refused(f"the exported arrays hold pickled objects ({e})") from None


def check_savedmodel(folder: Path) -> None:
    for path in (folder / "savedmodel").rglob("*"):
        rel = path.relative_to(folder / "savedmodel").as_posix()
        if path.is_file() and not (rel in ("saved_model.pb", "fingerprint.pb") or rel.startswith(("variables/", "assets/"))):
            raise Refused(f"the SavedModel holds an unexpected file: {rel}")


def check_export(folder: Path, entry: dict[str, Any]) -> None:
    """Raises Refused unless the exported files are plain, small and data only."""
    files = [p for p in folder.rglob("*")]
    if any(p.is_symlink() for p in files) or folder.is_symlink():
        raise Refused("the export holds a link")
    size = sum(p.stat().st_size for p in files if p.is_file())
    if size > MAX_MODEL_BYTES:
        raise Refused(f"the exported model is larger than {MAX_MODEL_BYTES // 2**20} MB")
    kind = entry.get("kind")
    if kind == "keras_json":
        (folder / "model.json").write_text(checked_keras_json(folder))
    elif kind == "torch_pt2":
        check_pt2(folder / "model.pt2")
    elif kind == "keras_savedmodel":
        check_savedmodel(folder)
    elif kind == "knn_npz":
        check_npz(folder / "knn.npz")
    else:
        raise Refused(f"unknown export format {kind!r}")


# ---------------------------------------------------------------- the images


def evaluation_sets(dataset: str, plan: RunPlan) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str, bool]:
    """{"served": (x, y), "unseen": (x, y)}, where the unseen images come from, and whether
    the program saw the whole test set (a full run on real data: no unseen images)."""
    x, y = provider.served_test(dataset, cache_dir=plan.cache_dir, quick=plan.mode == "quick",
                                quick_test=plan.quick_test)
    sets = {"served": (x, y.reshape(-1).astype(np.int64))}
    n = min(len(x), MAX_UNSEEN)
    unseen = provider.unseen_test(dataset, n, cache_dir=plan.cache_dir, quick=plan.mode == "quick",
                                  quick_test=plan.quick_test, seed=secrets.randbits(62))
    if unseen is None:
        return sets, "", True
    x, y, where = unseen
    sets["unseen"] = (x, y.reshape(-1).astype(np.int64))
    return sets, where, False


# ---------------------------------------------------------------- the re-measurement


def remeasure(run: RunRecord, plan: RunPlan, runner: Any) -> list[TrustedMeasurement]:
    """One trusted measurement per model the program exported (image classifiers)."""
    if not run.export_dir or not run.trace:
        return []
    results = []
    for entry in run.trace.get("exports") or []:
        started = time.monotonic()
        result = TrustedMeasurement(model=entry.get("model"), part=entry.get("part"),
                                    framework=str(entry.get("framework", "")), kind=str(entry.get("kind", "")))
        try:
            measure_one(entry, Path(run.export_dir), plan, runner, result)
        except Refused as e:
            result.error = str(e)
        except Exception as e:  # never lose the job's other results
            result.error = f"{type(e).__name__}: {e}"[:500]
        result.wall_s = round(time.monotonic() - started, 2)
        results.append(result)
    return results


def measure_one(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
                result: TrustedMeasurement) -> None:
    if entry.get("error"):
        raise Refused(f"the model could not be exported: {entry['error']}")
    if entry.get("dataset") not in IMAGE_DATASETS:
        raise Refused(f"re-measuring a model of {entry.get('dataset')!r} outside the program is not supported yet")
    if not entry.get("preprocess"):
        raise Refused("the program's preprocessing could not be described as data (layout and scaling)")
    sets, where, visible = evaluation_sets(entry["dataset"], plan)
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = Path(tmp) / "request", Path(tmp) / "out"
        source = export_root / Path(str(entry.get("dir", ""))).name
        if not source.is_dir() or source.is_symlink():
            raise Refused("the exported model is missing")
        shutil.copytree(source, request, symlinks=True)
        check_export(request, entry)
        for name, (x, _) in sets.items():
            np.save(request / f"{name}.npy", np.ascontiguousarray(x), allow_pickle=False)
        (request / "request.json").write_text(json.dumps(
            {"kind": entry["kind"], "flavour": entry.get("flavour"), "preprocess": entry["preprocess"],
             "inputs": list(sets)}))
        out.mkdir()
        status, message = runner.remeasure(request, out, plan)
        if status != Status.ok:
            raise Refused(f"the clean sandbox could not run the model: {message}")
        scores = {name: accuracy(out / f"{name}.npy", y) for name, (_, y) in sets.items()}
    result.accuracy_served, result.n_served = scores["served"], len(sets["served"][1])
    if "unseen" in scores:
        result.accuracy_unseen, result.n_unseen = scores["unseen"], len(sets["unseen"][1])
    result.accuracy = scores.get("unseen", scores["served"])
    result.unseen, result.test_set_visible = where, visible


def accuracy(path: Path, labels: np.ndarray) -> float:
    """Share of rows whose predicted class is the label; raises Refused on a malformed file."""
    if not path.is_file() or path.is_symlink():
        raise Refused("the clean sandbox wrote no outputs")
    outputs = np.load(path, allow_pickle=False)
    if outputs.dtype != np.float32 or len(outputs) != len(labels):
        raise Refused("the clean sandbox's outputs do not match the images")
    return round(float((predictions_to_labels(outputs) == labels).mean()), 6)
