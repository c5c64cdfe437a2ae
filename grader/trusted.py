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
MAX_MODELS = 3  # clean sandboxes per job, whatever the trace lists
MAX_MODEL_BYTES = 256 * 2**20

PT2_METADATA = ("archive_format", "archive_version", ".data/version", "byteorder", ".data/serialization_id")
PT2_CONFIGS = ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json")
# Graph operations a Keras model never needs and that reach outside the model (files, Python).
SAVEDMODEL_REFUSED_OPS = (b"WriteFile", b"ReadFile", b"MatchingFiles", b"DeleteFile", b"PyFunc", b"EagerPyFunc",
                          b"ImmutableConst", b"PrintV2", b"WriteSummary", b"CreateSummaryFileWriter")


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
    """A .pt2 archive of exactly the entries torch.export writes: its JSON, raw tensors named by
    its two weight configs (none pickled), empty sample inputs, no guard code to execute."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        roots = {n.split("/", 1)[0] for n in names}
        if len(set(names)) != len(names) or len(roots) != 1:
            raise Refused("the .pt2 archive is not one program (repeated or scattered entries)")
        root = roots.pop()
        allowed = {f"{root}/{n}" for n in PT2_METADATA + PT2_CONFIGS + ("models/model.json",)}
        for config in PT2_CONFIGS:
            if f"{root}/{config}" not in names:
                continue
            folder = f"{root}/{config.rsplit('/', 1)[0]}"
            for tensor in json.loads(archive.read(f"{root}/{config}")).get("config", {}).values():
                name = str(tensor.get("path_name", ""))
                if tensor.get("use_pickle", True) or "/" in name or name.endswith((".pt", ".pkl", ".json")):
                    raise Refused("the .pt2 archive stores a tensor pickled")
                allowed.add(f"{folder}/{name}")
        if f"{root}/models/model.json" in names and json.loads(archive.read(f"{root}/models/model.json")).get("guards_code"):
            raise Refused("the .pt2 archive holds guard code, which loading would execute")
        for info in infos:
            empty_sample = info.filename == f"{root}/data/sample_inputs/model.pt" and info.file_size == 0
            if info.filename not in allowed and not empty_sample:
                raise Refused(f"the .pt2 archive holds an entry that is not data: {info.filename}")


def check_savedmodel(folder: Path) -> None:
    """Only the files a SavedModel has, and no graph operation that reaches outside the model
    (looked for by name in the graph: a deny-list, since the host never parses the graph)."""
    graph = (folder / "savedmodel" / "saved_model.pb").read_bytes()
    found = [op.decode() for op in SAVEDMODEL_REFUSED_OPS if op in graph]
    if found:
        raise Refused(f"the SavedModel's graph uses operations a model does not need: {', '.join(found)}")
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
    for entry in (run.trace.get("exports") or [])[:MAX_MODELS]:
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
    if plan.dataset not in IMAGE_DATASETS:
        raise Refused(f"re-measuring a model of {plan.dataset!r} outside the program is not supported yet")
    if entry.get("dataset") != plan.dataset:
        raise Refused(f"the exported model was measured on {entry.get('dataset')!r}, not on {plan.dataset!r}")
    if not entry.get("preprocess"):
        raise Refused("the program's preprocessing could not be described as data (layout and scaling)")
    sets, where, visible = evaluation_sets(plan.dataset, plan)
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
            {"kind": entry["kind"], "flavour": plan.keras_flavour, "preprocess": entry["preprocess"],
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
