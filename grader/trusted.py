"""The trust boundary: figures that decide marks are measured where the student's code never runs.

What the student's process records (fits, histories, printed output, the probe's in-process
measurement) is evidence: the program can rewrite all of it. After the program has ended,
the probe exports the measured model in a data-only format. The host checks the files
(sizes, no links, Keras classes against an allow-list, no pickled entry in a .pt2), a second,
clean sandbox on the same runner (no student files, no network, the same limits) loads the
model with the frameworks' data-only loaders and writes its outputs on images, and the host
scores them against labels that sandbox never sees:

* the test images the program was served (compared with what the program reports), and
* samples the program never received: fresh stand-in samples drawn with a seed the sandbox
  never sees, or real test samples outside the quick subset. A model that memorised the test
  set scores higher on the first than on the second by more than sampling noise explains
  (harness.trust.leak_margin): that is named as a leak.

A full run on real data serves every test image, so there are no unseen ones: the sheet says
the test set was visible to the program.

Re-measured: Keras and PyTorch image classifiers (Programs 1b, 3, 4), scikit-learn's KNN
(Program 1a: refitted from the served images it was fitted on, through any scaler or PCA
before it, applied again from their arrays), Keras and PyTorch models of padded reviews
(Program 6: the host pads its own copy of the reviews as the program padded those load_data
gave it, and encodes unseen ones by the same load_data arguments; a PyTorch one is exported
for a fixed batch of reviews), torchvision's pretrained models (Programs 2, 5: rebuilt from
their factory, the host's copy of the served weights and the program's own tensors, and run on
the host's reference images; grader/trusted_vision.py), keras.applications models (Program 2
written with Keras: rebuilt from their JSON, the served file loaded into the application and the
program's own variables, on the same images; grader/trusted_keras_apps.py), a chatbot's layers
and training (Program 7: a Keras one's architecture read on the host, a PyTorch one's graph read
in the clean sandbox, its loss on the rows it was fitted on against a fresh model's or a uniform
guess's; grader/trusted_structure.py) and a GAN's generator (DLPRAC activity 5: run on noise of
the host's seed, its samples judged on the host; grader/trusted_gan.py). A chatbot's replies can
only be observed in the program's process. Their checks say where their figure comes from in their
evidence (harness.registry.BASIS).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from grader.models import RunRecord, Status, TrustedMeasurement
from grader.probe import layouts, provider, transforms
from grader.probe.provider import Served
from grader.probe.layouts import TEXT_DATASETS
from grader.probe.keras_classes import (APPLICATION_CLASSES, KERAS_CLASSES, keras_classes,
                                        misplaced_application_classes)
from grader.probe.measure import predictions_to_labels
from grader.runners.base import RunPlan

MAX_UNSEEN = 2000
MIN_SERVED = 200  # served samples below which no figure is taken from them (sampling noise ~3.5%)
LEAK_SHARE = 0.05  # of a KNN's held-out rows that are rows it was fitted on
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


def checked_keras_json(folder: Path, application: bool = False) -> str:
    """The architecture with its compile settings dropped, if every class is Keras' own (for a
    keras.applications model, also the layers two applications define, from their module)."""
    config = json.loads((folder / "model.json").read_text())
    config.pop("compile_config", None)
    allowed = KERAS_CLASSES | set(APPLICATION_CLASSES) if application else KERAS_CLASSES
    unknown = sorted(keras_classes(config) - allowed | misplaced_application_classes(config))
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


KNN_PARAMS = {"n_neighbors", "weights", "metric", "p"}


def check_knn(folder: Path) -> None:
    """knn.json of plain parameters, knn.npz holding exactly its labels, and the scalers or PCA
    before it (steps.json, steps.npz) as plain operations with arrays of matching shapes."""
    params = json.loads((folder / "knn.json").read_text())
    if not isinstance(params, dict) or set(params) != KNN_PARAMS or not all(
            isinstance(v, (int, float, str)) for v in params.values()):
        raise Refused("the KNN's parameters are not plain values")
    check_npz(folder / "knn.npz", {"fit_labels.npy"})
    if (folder / "steps.json").exists() or (folder / "steps.npz").exists():
        try:
            with np.load(folder / "steps.npz", allow_pickle=False) as loaded:
                transforms.check_steps(json.loads((folder / "steps.json").read_text()), dict(loaded))
        except (ValueError, OSError, KeyError) as e:
            raise Refused(str(e)) from e


def check_npz(path: Path, names: set[str]) -> None:
    """A .npz of exactly the named arrays (whose contents the clean sandbox loads without pickle)."""
    with zipfile.ZipFile(path) as archive:
        if set(archive.namelist()) != names:
            raise Refused(f"{path.name} holds other entries than its arrays")


def check_export(folder: Path, entry: dict[str, Any]) -> None:
    """Raises Refused unless the exported files are plain, small and data only."""
    files = [p for p in folder.rglob("*")]
    if any(p.is_symlink() for p in files) or folder.is_symlink():
        raise Refused("the export holds a link")
    size = sum(p.stat().st_size for p in files if p.is_file())
    if size > MAX_MODEL_BYTES:
        raise Refused(f"the exported model is larger than {MAX_MODEL_BYTES // 2**20} MB")
    if (entry.get("preprocess") or {}).get("per") == "feature":
        check_npz(folder / "preprocess.npz", {"scale.npy", "shift.npy"})
    if (folder / "fit.npz").exists():
        check_npz(folder / "fit.npz", {"x.npy", "y.npy"})
    kind = entry.get("kind")
    if kind == "keras_json":
        (folder / "model.json").write_text(checked_keras_json(folder))
    elif kind == "torch_pt2":
        check_pt2(folder / "model.pt2")
    elif kind == "keras_savedmodel":
        check_savedmodel(folder)
    elif kind == "sklearn_knn":
        check_knn(folder)
    elif kind in ("torchvision_state", "torchvision_pt2"):
        from grader.trusted_vision import check_torchvision

        check_torchvision(folder, kind)
    elif kind == "keras_application":
        from grader.trusted_keras_apps import check_keras_application

        (folder / "model.json").write_text(checked_keras_json(folder, application=True))
        check_keras_application(folder)
    else:
        raise Refused(f"unknown export format {kind!r}")


# ---------------------------------------------------------------- the images


def evaluation_sets(dataset: str, plan: RunPlan, entry: dict[str, Any], copy: Served | None = None
                    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str, bool]:
    """{"served": (x, y), "unseen": (x, y)}, where the unseen samples come from, and whether
    the program saw the whole test set (a full run on real data: no unseen samples).

    Served: the test images the program received; for a model scored on its own split of the
    served images (a KNN on the OpenML table), the rows it held out (entry["served_rows"],
    indices into `copy`, the rows it was fitted on left out); for reviews, the test split
    imdb.load_data gave the program, padded as it padded them. The host takes each from its
    own copy of the data, with its own labels. Unseen: a fixed number of samples, whatever the
    program chose to be scored on. Served sets under MIN_SERVED samples are left out (too
    few to compare); with nothing unseen either, Refused."""
    quick = plan.mode == "quick"
    encode = lambda raw: raw  # noqa: E731  (images go to the clean sandbox as served)
    if dataset in TEXT_DATASETS:
        load_args, padding = checked_text_description(entry)
        served = host_copy(dataset, plan)
        (x_train, _), (x, y) = provider.imdb_load_data(served, **load_args)
        x = layouts.pad(x, padding)
        # load_data without num_words bounds the ids by the largest it served
        load_args = {**load_args, "num_words": load_args.get("num_words") or largest_id(x_train, x) + 1}
        encode = lambda raw: layouts.pad(provider.imdb_encode(raw, **load_args), padding)  # noqa: E731
    elif entry.get("served_rows") is not None:
        x, y = held_out_images(copy, entry["served_rows"], entry.get("fit_rows") or [])
    else:
        x, y = served_test(dataset, str(plan.cache_dir), quick, plan.quick_test, data_version(dataset, plan.cache_dir))
    sets = {"served": (x, y.reshape(-1).astype(np.int64))} if len(y) >= MIN_SERVED else {}
    unseen = unseen_test(dataset, min(plan.quick_test if quick else MAX_UNSEEN, MAX_UNSEEN), str(plan.cache_dir),
                         quick, plan.quick_test, data_version(dataset, plan.cache_dir))
    if unseen is None:
        if not sets:
            raise Refused(f"the program was scored on {len(y)} test samples: too few to measure (at least "
                          f"{MIN_SERVED})")
        return sets, "", True
    x, y, where = unseen
    sets["unseen"] = (encode(x), y.reshape(-1).astype(np.int64))
    return sets, where, False


def largest_id(*parts: np.ndarray) -> int:
    """The largest word id in padded or ragged reviews."""
    return max(int(np.max(r)) for part in parts for r in part if len(r))


LOAD_ARGS = ("num_words", "skip_top", "maxlen", "seed", "start_char", "oov_char", "index_from")
PAD_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64")


def checked_text_description(entry: dict[str, Any]) -> tuple[dict[str, int | None], dict[str, Any]]:
    """The program's imdb.load_data arguments and padding, if they are plain values (else Refused)."""
    load_args, padding = entry.get("load_args") or {}, entry.get("preprocess") or {}
    if not isinstance(load_args, dict) or not set(load_args) <= set(LOAD_ARGS) or not all(
            v is None or type(v) is int for v in load_args.values()):
        raise Refused("the program's load_data arguments are not plain numbers")
    maxlen = padding.get("maxlen")
    if type(maxlen) is not int or not 0 < maxlen <= 10_000 or str(padding.get("dtype")) not in \
            {np.dtype(d).str for d in PAD_DTYPES} or padding.get("padding") not in ("pre", "post") \
            or padding.get("truncating") not in ("pre", "post") or type(padding.get("value")) is not int:
        raise Refused("the program's padding could not be described as data")
    return load_args, padding


# The host's copies of the data, kept per process and data version: a batch renders the stand-ins
# or reads the staged file once, not once per student. The caller must not write into them.
UNSEEN_SEED = secrets.randbits(62)  # drawn once per host process: no sandbox sees it, and every
                                    # student of a batch is scored on the same unseen samples


def data_version(dataset: str, cache_dir: Path | str) -> int:
    """The staged file's modification time (0: the stand-in): staging data mid-batch is seen."""
    path = Path(cache_dir) / "datasets" / f"{dataset}.npz"
    return path.stat().st_mtime_ns if path.is_file() else 0


def host_copy(dataset: str, plan: RunPlan) -> Served:
    """The served data as the host serves it to this job (training then test images)."""
    return _load(dataset, str(plan.cache_dir), plan.mode == "quick", plan.quick_train, plan.quick_test,
                 data_version(dataset, plan.cache_dir))


@lru_cache(maxsize=4)
def _load(dataset: str, cache_dir: str, quick: bool, quick_train: int, quick_test: int, version: int) -> Served:
    return provider.load(dataset, cache_dir=cache_dir, quick=quick, quick_train=quick_train, quick_test=quick_test)


@lru_cache(maxsize=4)
def served_test(dataset: str, cache_dir: str, quick: bool, quick_test: int, version: int
                ) -> tuple[np.ndarray, np.ndarray]:
    return provider.served_test(dataset, cache_dir=cache_dir, quick=quick, quick_test=quick_test)


@lru_cache(maxsize=4)
def unseen_test(dataset: str, n: int, cache_dir: str, quick: bool, quick_test: int, version: int
                ) -> tuple[np.ndarray, np.ndarray, str] | None:
    return provider.unseen_test(dataset, n, cache_dir=cache_dir, quick=quick, quick_test=quick_test,
                                seed=UNSEEN_SEED)


def checked_rows(copy: Served, rows: Any, what: str) -> np.ndarray:
    """`rows` as indices into the copy's training then test images, else Refused."""
    total = len(copy.y_train) + len(copy.y_test)
    if not isinstance(rows, list) or not rows or not all(type(r) is int and 0 <= r < total for r in rows):
        raise Refused(f"the {what} the program's trace names are not served images")
    return np.asarray(rows, dtype=np.int64)


def images_at(copy: Served, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The copy's images (training then test) at `rows`, with their labels."""
    n_train = len(copy.y_train)
    test = rows >= n_train
    x = np.empty((len(rows),) + copy.x_train.shape[1:], copy.x_train.dtype)
    x[~test], x[test] = copy.x_train[rows[~test]], copy.x_test[rows[test] - n_train]
    return x, np.concatenate([copy.y_train.reshape(-1), copy.y_test.reshape(-1)])[rows]


def held_out_images(copy: Served, rows: Any, fit_rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """The images a KNN held out (distinct rows), less any it was fitted on, with their labels."""
    index = checked_rows(copy, rows, "held-out rows")
    if len(set(rows)) != len(rows):
        raise Refused("the held-out rows the program's trace names repeat")
    fitted = np.isin(index, np.asarray(fit_rows, dtype=np.int64))
    if fitted.mean() >= LEAK_SHARE:
        raise Refused(f"trained on the test set: {fitted.sum()} of the {len(index)} rows it was scored on are rows "
                      "it was fitted on")
    return images_at(copy, index[~fitted])


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
    if result.framework == "torchvision":  # a pretrained model: its outputs on the reference images
        from grader import trusted_vision

        return trusted_vision.measure(entry, export_root, plan, runner, result)
    if result.framework == "keras_applications":  # the same, for a keras.applications model
        from grader import trusted_keras_apps

        return trusted_keras_apps.measure(entry, export_root, plan, runner, result)
    if result.part == "generator":  # a GAN's generator: its samples judged on the host
        from grader import trusted_gan

        return trusted_gan.measure(entry, export_root, plan, runner, result)
    if result.part == "chatbot":  # its layers and its loss on what it was fitted on
        from grader import trusted_structure

        return trusted_structure.measure(entry, export_root, plan, runner, result)
    if not layouts.re_measured(plan.dataset, result.framework):
        raise Refused(f"re-measuring a {result.framework} model of {plan.dataset!r} outside the program is not "
                      "supported yet")
    if entry.get("dataset") != plan.dataset:
        raise Refused(f"the exported model was measured on {entry.get('dataset')!r}, not on {plan.dataset!r}")
    if not entry.get("preprocess"):
        raise Refused("the program's preprocessing could not be described as data (layout and scaling)")
    copy = host_copy(plan.dataset, plan) if entry.get("kind") == "sklearn_knn" else None
    sets, where, visible = evaluation_sets(plan.dataset, plan, entry, copy)
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        for name, (x, _) in sets.items():
            np.save(request / f"{name}.npy", np.ascontiguousarray(x), allow_pickle=False)
        if copy is not None:  # the KNN's fitted rows, from the host's copy: never the program's pixels
            fit_images = images_at(copy, checked_rows(copy, entry.get("fit_rows"), "fitted rows"))[0]
            np.save(request / "fit_images.npy", fit_images, allow_pickle=False)
        run_clean(request, out, plan, runner, {"kind": entry["kind"], "flavour": plan.keras_flavour,
                                               "preprocess": entry["preprocess"], "inputs": list(sets)})
        logit = output_is_logit(entry)
        scores = {name: accuracy(out / f"{name}.npy", y, logit) for name, (_, y) in sets.items()}
    if "served" in scores:
        result.accuracy_served, result.n_served = scores["served"], len(sets["served"][1])
    if "unseen" in scores:
        result.accuracy_unseen, result.n_unseen = scores["unseen"], len(sets["unseen"][1])
    result.accuracy = scores["unseen"] if "unseen" in scores else scores["served"]
    result.unseen, result.test_set_visible = where, visible


def checked_request(entry: dict[str, Any], export_root: Path, tmp: Path) -> tuple[Path, Path]:
    """(request, out) folders under tmp: the exported files copied and checked (Refused else)."""
    request, out = tmp / "request", tmp / "out"
    source = export_root / Path(str(entry.get("dir", ""))).name
    if not source.is_dir() or source.is_symlink():
        raise Refused("the exported model is missing")
    shutil.copytree(source, request, symlinks=True)
    check_export(request, entry)
    return request, out


def run_clean(request: Path, out: Path, plan: RunPlan, runner: Any, spec: dict[str, Any]) -> None:
    """Writes request.json and runs the clean sandbox on the request; Refused when it fails."""
    (request / "request.json").write_text(json.dumps(spec))
    out.mkdir()
    status, message = runner.remeasure(request, out, plan)
    if status != Status.ok:
        raise Refused(f"the clean sandbox could not run the model: {message}")


def output_is_logit(entry: dict[str, Any]) -> bool:
    """Whether the model's one output unit is a logit (a PyTorch model trained with
    BCEWithLogitsLoss, as its process saw it), else a probability; Refused for other values.
    The program could claim either: the same threshold serves the served and unseen reviews."""
    output = entry.get("output")
    if output not in (None, "logit"):
        raise Refused("the program's trace describes the model's output as something unknown")
    return output == "logit"


def accuracy(path: Path, labels: np.ndarray, logit: bool = False) -> float:
    """Share of rows whose predicted class is the label (one output unit: above 0.5, above 0 for
    a logit; several: the largest); raises Refused on a malformed file."""
    if not path.is_file() or path.is_symlink():
        raise Refused("the clean sandbox wrote no outputs")
    outputs = np.load(path, allow_pickle=False)
    if outputs.dtype != np.float32 or len(outputs) != len(labels):
        raise Refused("the clean sandbox's outputs do not match the images")
    predicted = predictions_to_labels(outputs + 0.5 if logit and outputs.shape[1] == 1 else outputs)
    return round(float((predicted == labels).mean()), 6)
