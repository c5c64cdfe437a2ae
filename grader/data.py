"""Staging the real CIFAR-10, MNIST and IMDB files, pretrained weights and the other assets
(Keras' files, NLTK data, spaCy pipelines) that faculty downloaded.

The sandbox has no network. When the real datasets are wanted, faculty download the
official files once (on any machine) and stage them:

* CIFAR-10: ``cifar-10-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html
  (md5 ``c58f30108f718f92721af3b95e74349a``); its pickled batches are converted here;
* MNIST: Keras' ``mnist.npz`` from
  https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz
  (sha256 ``731c5ac6...b673d1``);
* IMDB: Keras' ``imdb.npz`` (sha256 ``69664113...76b9f``) and ``imdb_word_index.json``
  (md5 ``bfafd718...97834f``) from the same folder.

Staging writes ``<cache>/datasets/<name>.npz`` (keys ``x_train, y_train, x_test, y_test``,
exactly the arrays ``keras.datasets.<name>.load_data()`` reads; the word index is kept as
its JSON) and records it in
``<cache>/datasets/manifest.json``. The probe (:mod:`grader.probe.provider`) serves that
file to student code; without it, student code gets a synthetic stand-in.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydantic import BaseModel

from grader.probe.keras_assets import digests as file_digests

DATASETS = ("cifar10", "mnist", "imdb", "imdb_word_index")
MANIFEST = "manifest.json"


class DataError(Exception):
    """A dataset file cannot be staged (unknown name, missing file, bad checksum, bad layout)."""


@dataclass(frozen=True)
class _Source:
    file_name: str  # the official file's name
    algo: str  # checksum algorithm the publisher gives
    digest: str
    url: str
    what: str  # how to describe it in messages
    image_shape: tuple[int, ...] = ()  # () for what is not images: no layout check
    label_shape: tuple[int, ...] = ()  # per sample
    staged_as: str = ""  # file name in <cache>/datasets/; default <name>.npz


SOURCES: dict[str, _Source] = {
    "cifar10": _Source(
        "cifar-10-python.tar.gz",
        "md5",
        "c58f30108f718f92721af3b95e74349a",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "CIFAR-10 python version",
        (32, 32, 3),
        (1,),
    ),
    "mnist": _Source(
        "mnist.npz",
        "sha256",
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        "Keras MNIST file",
        (28, 28),
        (),
    ),
    "imdb": _Source(
        "imdb.npz",
        "sha256",
        "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz",
        "Keras IMDB reviews file",
    ),
    "imdb_word_index": _Source(
        "imdb_word_index.json",
        "md5",
        "bfafd718b763782e994055a2d397834f",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json",
        "Keras IMDB word index",
        staged_as="imdb_word_index.json",
    ),
}


class StagedDataset(BaseModel):
    name: str
    path: Path  # the staged .npz
    sha256: str  # of the staged .npz
    n_train: int
    n_test: int
    verified: bool = True  # the source file's checksum was checked and matched
    source: str = ""  # the source file's name


class DatasetStatus(BaseModel):
    name: str
    staged: bool
    verified: bool | None  # None: staged, but not recorded in the manifest
    path: Path


def default_cache_dir() -> Path:
    """``$GRADER_CACHE`` if set, else ``~/.cache/grader``."""
    env = os.environ.get("GRADER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "grader"


def datasets_dir(cache_dir: Path | str) -> Path:
    return Path(cache_dir) / "datasets"


def dataset_path(name: str, cache_dir: Path | str) -> Path:
    name = canonical_name(name)
    return datasets_dir(cache_dir) / (SOURCES[name].staged_as or f"{name}.npz")


def canonical_name(name: str) -> str:
    """``cifar10``/``mnist``/``imdb``/``imdb_word_index`` from any reasonable spelling
    (``CIFAR-10``, ``cifar_10``, ``imdb-word-index``)."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    names = {n.replace("_", ""): n for n in SOURCES}
    if key not in names:
        raise DataError(f"unknown dataset {name!r}; the datasets that can be staged are: "
                        f"{', '.join(DATASETS)}")
    return names[key]


# ----------------------------------------------------------------------------- staging


def stage(name: str, source_file: Path, cache_dir: Path, verify: bool = True) -> StagedDataset:
    """Check ``source_file`` and convert it into ``<cache_dir>/datasets/<name>.npz``.

    Raises :class:`DataError` for an unknown name, a missing or unreadable file, a checksum
    mismatch (when ``verify``) or an unexpected layout. Nothing is written unless the whole
    conversion succeeded; an earlier staged file stays as it was on failure.
    """
    name = canonical_name(name)
    src = SOURCES[name]
    source_file = Path(source_file).expanduser()
    if not source_file.is_file():
        what = "is a directory, not a file" if source_file.is_dir() else "does not exist"
        raise DataError(
            f"{source_file} {what}. Download the {src.what} {src.file_name} from {src.url} "
            f"and give its path."
        )

    if name == "imdb" and not verify:
        raise DataError("imdb.npz stores the reviews pickled, and a pickle can run code when it is "
                        "read: only the official file, with its checksum verified, is staged")
    digests = file_digests(source_file)
    actual = digests[src.algo]
    if verify and actual != src.digest:
        raise DataError(
            f"checksum mismatch for {source_file}: expected {src.algo} {src.digest}, "
            f"got {src.algo} {actual}. This is not the official {src.what}; download "
            f"{src.file_name} from {src.url} (or stage it anyway with --no-verify)."
        )

    write, n_train, n_test = _converted(name, source_file)
    out_dir = datasets_dir(cache_dir)
    target = dataset_path(name, cache_dir)
    entry = {
        "sha256": "",
        "verified": bool(verify),
        "staged_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_file": source_file.name,
        "source_checksum": f"{src.algo}:{actual}",
        "n_train": n_train,
        "n_test": n_test,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp_npz = _temp_in(out_dir, target.name)
        tmp_manifest = None
        try:
            with open(tmp_npz, "wb") as fh:
                write(fh)
            entry["sha256"] = file_digests(tmp_npz)["sha256"]
            manifest = read_manifest(cache_dir)
            manifest[name] = entry
            tmp_manifest = _temp_in(out_dir, MANIFEST)
            with open(tmp_manifest, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, sort_keys=True)
                fh.write("\n")
            for tmp in (tmp_npz, tmp_manifest):
                os.chmod(tmp, 0o644)  # the sandbox may read it as another user
            os.replace(tmp_npz, target)
            os.replace(tmp_manifest, out_dir / MANIFEST)
        finally:
            for tmp in (tmp_npz, tmp_manifest):
                if tmp is not None and tmp.exists():
                    tmp.unlink()
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc}") from exc

    return StagedDataset(
        name=name,
        path=target,
        sha256=entry["sha256"],
        n_train=entry["n_train"],
        n_test=entry["n_test"],
        verified=entry["verified"],
        source=source_file.name,
    )


def status(cache_dir: Path) -> list[DatasetStatus]:
    """Which datasets are staged under ``cache_dir``, and whether their source was verified."""
    manifest = read_manifest(cache_dir)
    out = []
    for name in DATASETS:
        path = dataset_path(name, cache_dir)
        staged = path.is_file()
        verified = None
        if staged and isinstance(manifest.get(name), dict) and "verified" in manifest[name]:
            verified = bool(manifest[name]["verified"])
        out.append(DatasetStatus(name=name, staged=staged, verified=verified, path=path))
    return out


def read_manifest(cache_dir: Path | str) -> dict[str, Any]:
    path = datasets_dir(cache_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ------------------------------------------------------------------------- conversion


def _converted(name: str, source_file: Path):
    """(write(fh), n_train, n_test): the staged file's writer and its sizes."""
    if name == "imdb_word_index":
        index = _read_word_index(source_file)
        return (lambda fh: fh.write(json.dumps(index).encode())), len(index), 0
    convert = {"cifar10": _convert_cifar10, "mnist": _convert_mnist, "imdb": _convert_imdb}[name]
    arrays = convert(source_file)
    if SOURCES[name].image_shape:
        arrays = _check_layout(name, arrays, source_file)
    # Reviews are ragged lists: object arrays, pickled as in Keras' own imdb.npz.
    return (lambda fh: np.savez(fh, **arrays)), int(len(arrays["x_train"])), int(len(arrays["x_test"]))


def _convert_imdb(path: Path) -> dict[str, np.ndarray]:
    from grader.probe.provider import ProviderError, read_real_text  # the reader that serves it

    try:
        return read_real_text(path)
    except ProviderError as exc:
        raise DataError(f"{exc}; expected Keras' {SOURCES['imdb'].file_name}") from exc


def _read_word_index(path: Path) -> dict[str, int]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON ({exc}); expected Keras' "
                        f"{SOURCES['imdb_word_index'].file_name}") from exc
    if not isinstance(index, dict) or not index or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in index.items()):
        raise DataError(f"{path}: expected a JSON object of word -> integer rank")
    return index


_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"{_CIFAR_DIR}/data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = f"{_CIFAR_DIR}/test_batch"


def _convert_cifar10(path: Path) -> dict[str, np.ndarray]:
    """The official tarball's six pickled batches -> Keras' layout."""
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable tar archive; expected the CIFAR-10 python version "
            f"{SOURCES['cifar10'].file_name}"
        ) from exc
    wanted = _CIFAR_TRAIN + (_CIFAR_TEST,)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with archive:
        try:
            for member in archive:  # one sequential pass: no seeking back in the gzip stream
                name = member.name.removeprefix("./")
                if name not in wanted or not member.isfile() or name in batches:
                    continue
                fh = archive.extractfile(member)
                if fh is None:
                    raise DataError(f"{path}: cannot read {name}")
                with fh:
                    batches[name] = _read_cifar_batch(fh, f"{path}:{name}")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a damaged archive: {exc}") from exc
    missing = [m for m in wanted if m not in batches]
    if missing:
        raise DataError(
            f"{path} lacks {', '.join(missing)}; expected the CIFAR-10 python version "
            f"({SOURCES['cifar10'].file_name}), which holds {_CIFAR_DIR}/data_batch_1..5 "
            f"and {_CIFAR_TEST}"
        )

    def join(names):
        xs, ys = zip(*(batches[n] for n in names))
        x = np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.concatenate(ys).reshape(-1, 1)
        return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.uint8)

    x_train, y_train = join(_CIFAR_TRAIN)
    x_test, y_test = join((_CIFAR_TEST,))
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _read_cifar_batch(fh: BinaryIO, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(fh, encoding="bytes").load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{where} is not a readable CIFAR-10 batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise DataError(f"{where} is not a CIFAR-10 batch (a {type(batch).__name__}, not a dict)")
    data = _field(batch, "data", where)
    labels = _field(batch, "labels", where)
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}: data has shape {data.shape}, expected (N, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (len(data),):
        raise DataError(f"{where}: {labels.size} labels for {len(data)} images")
    return data, labels


def _field(batch: dict, key: str, where: str):
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise DataError(f"{where} has no {key!r} entry")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches only: numpy arrays, lists, bytes, no other globals."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise DataError(f"unexpected object {module}.{name} in a CIFAR-10 batch; refused")
        if module.startswith("numpy.core."):  # pickles from numpy 1.x
            try:
                return super().find_class("numpy._core." + module[len("numpy.core."):], name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def _convert_mnist(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}; expected Keras' mnist.npz")
            arrays = {k: np.asarray(z[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{path} is not a readable .npz file ({exc}); expected Keras' "
            f"{SOURCES['mnist'].file_name}"
        ) from exc
    return arrays


def _check_layout(name: str, arrays: dict[str, np.ndarray], origin: Path) -> dict[str, np.ndarray]:
    """Shapes, label range and dtypes exactly as Keras' ``load_data()`` returns them."""
    src = SOURCES[name]
    out = {}
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        if x.ndim != 1 + len(src.image_shape) or x.shape[1:] != src.image_shape:
            raise DataError(f"{origin}: x_{split} has shape {x.shape}, expected (N, "
                            f"{', '.join(map(str, src.image_shape))})")
        if len(x) == 0:
            raise DataError(f"{origin}: x_{split} is empty")
        if x.dtype != np.uint8 and (x.dtype.kind not in "iu" or x.min() < 0 or x.max() > 255):
            raise DataError(f"{origin}: x_{split} holds {x.dtype}, not 8-bit pixels")
        if y.size != len(x):
            raise DataError(f"{origin}: y_{split} has {y.size} labels for {len(x)} images")
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() > 9:
            raise DataError(f"{origin}: y_{split} must hold integer labels 0..9")
        out[f"x_{split}"] = np.ascontiguousarray(x, dtype=np.uint8)
        out[f"y_{split}"] = y.reshape((len(x),) + src.label_shape).astype(np.uint8)
    return out


# -------------------------------------------------------------------------------- helpers


def _temp_in(directory: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=directory)
    os.close(fd)
    return Path(tmp)


# ------------------------------------------------------------------- pretrained weights
#
# torchvision's pretrained files, staged under their own names in ``<cache>/weights/``
# (see grader.probe.weights, which serves them in the sandbox). torch.hub names each file
# by the first hex digits of its sha256 (resnet50-0676ba61.pth); staging checks that prefix.


class StagedWeights(BaseModel):
    name: str  # resnet50 | fasterrcnn
    file_name: str  # torchvision's name, e.g. resnet50-0676ba61.pth
    path: Path
    sha256: str
    verified: bool


class WeightsStatus(BaseModel):
    name: str
    file_name: str
    staged: bool
    verified: bool | None  # None: staged, but not recorded in the manifest
    path: Path


WEIGHTS_ALIASES = {"resnet50": "resnet50", "fasterrcnn": "fasterrcnn", "fasterrcnnresnet50fpn": "fasterrcnn"}


def weights_name(name: str) -> str | None:
    """``resnet50``/``fasterrcnn`` from any reasonable spelling, or None for a dataset name."""
    return WEIGHTS_ALIASES.get(name.strip().lower().replace("-", "").replace("_", ""))


def stage_weights(name: str, source_file: Path, cache_dir: Path, verify: bool = True) -> StagedWeights:
    """Check a downloaded weights file and copy it into ``<cache_dir>/weights/`` under
    torchvision's name. Verified: its sha256 must start with the prefix in one of the
    model's file names. Unverified: the file must carry one of those names itself."""
    from grader.probe import weights

    model = weights_name(name)
    if model is None:
        raise DataError(f"unknown weights {name!r}; the weights that can be staged are: {', '.join(weights.MODELS)}")
    files = [w for w in weights.CATALOGUE.values() if w.model == model]
    source_file = Path(source_file).expanduser()
    if not source_file.is_file():
        raise DataError(f"{source_file} does not exist. Download {' or '.join(w.url for w in files)} and give its path.")
    sha = file_digests(source_file)["sha256"]
    if verify:
        spec = next((w for w in files if sha.startswith(w.sha256_prefix)), None)
        if spec is None:
            known = ", ".join(f"{w.file_name} (sha256 {w.sha256_prefix}…)" for w in files)
            raise DataError(f"checksum mismatch for {source_file}: sha256 {sha} matches none of {known}. This is "
                            f"not the official file; download it from {files[0].url} (or stage it anyway with "
                            "--no-verify, keeping torchvision's file name).")
    else:
        spec = next((w for w in files if w.file_name == source_file.name), None)
        if spec is None:
            raise DataError(f"{source_file.name}: unverified weights must keep torchvision's file name "
                            f"({', '.join(w.file_name for w in files)}) so that it is known which weights they are")
    target = _copy_weights(source_file, spec.file_name, cache_dir, {
        "sha256": sha, "verified": bool(verify), "model": model, "source_file": source_file.name,
        "staged_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return StagedWeights(name=model, file_name=spec.file_name, path=target, sha256=sha, verified=bool(verify))


def _copy_weights(source_file: Path, file_name: str, cache_dir: Path, entry: dict[str, Any]) -> Path:
    from grader.probe import weights

    out_dir = weights.weights_dir(cache_dir)
    target = out_dir / file_name
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp, tmp_manifest = _temp_in(out_dir, file_name), _temp_in(out_dir, weights.MANIFEST)
        try:
            with open(source_file, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            manifest = weights.read_manifest(cache_dir)
            manifest[file_name] = entry
            tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            for path in (tmp, tmp_manifest):
                os.chmod(path, 0o644)  # the sandbox may read it as another user
            os.replace(tmp, target)
            os.replace(tmp_manifest, out_dir / weights.MANIFEST)
        finally:
            for path in (tmp, tmp_manifest):
                if path.exists():
                    path.unlink()
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc}") from exc
    return target


def weights_status(cache_dir: Path) -> list[WeightsStatus]:
    from grader.probe import weights

    manifest = weights.read_manifest(cache_dir)
    out = []
    for spec in weights.CATALOGUE.values():
        path = weights.staged_path(spec.file_name, cache_dir)
        entry = manifest.get(spec.file_name)
        verified = bool(entry["verified"]) if path.is_file() and isinstance(entry, dict) and "verified" in entry else None
        out.append(WeightsStatus(name=spec.model, file_name=spec.file_name, staged=path.is_file(),
                                 verified=verified, path=path))
    return out


def weights_state(cache_dir: Path) -> str:
    """Which weights files a job is served, for the grade key: staged files change marks."""
    from grader.probe import weights

    staged = [f"{s.file_name}:{s.path.stat().st_size}:{s.path.stat().st_mtime_ns}"
              for s in weights_status(cache_dir) if s.staged]
    return f"weights:{','.join(staged) or 'none'}:standin-v{weights.STANDIN_VERSION}|{assets_state(cache_dir)}"


# ------------------------------------------------------------------- other assets
#
# What else programs ask the internet for, staged under the name they ask by:
#
# * a file Keras' get_file fetches (application weights such as
#   resnet50_weights_tf_dim_ordering_tf_kernels.h5, imagenet_class_index.json, a dataset
#   file): ``grader data stage FILE_NAME FILE`` keeps it in ``<cache>/files/``; verified when
#   its md5 or sha256 is one Keras records in its own source (the sandbox checks it again
#   against the checksum Keras passes for that very file);
# * NLTK data: ``grader data stage nltk:punkt_tab punkt_tab.zip`` (the package zip from the
#   NLTK data index, or its folder) unpacks it into ``<cache>/nltk_data/<category>/``;
# * a spaCy pipeline: ``grader data stage en_core_web_sm en_core_web_sm-3.8.0-py3-none-any.whl``
#   (the wheel, its .tar.gz, or the pipeline folder) keeps the folder holding config.cfg in
#   ``<cache>/spacy/<name>/``; a wheel is verified against the sha256 of every file in its RECORD.

NLTK_CATEGORIES = {"punkt": "tokenizers", "punkt_tab": "tokenizers", "averaged_perceptron_tagger": "taggers",
                   "averaged_perceptron_tagger_eng": "taggers", "maxent_ne_chunker": "chunkers",
                   "maxent_ne_chunker_tab": "chunkers", "vader_lexicon": "sentiment", "snowball_data": "stemmers",
                   "rslp": "stemmers", "porter_test": "stemmers", "universal_tagset": "taggers"}


class StagedAsset(BaseModel):
    kind: str  # file | nltk | spacy
    name: str
    path: Path
    sha256: str
    verified: bool
    how: str  # what was checked, in words


class AssetStatus(BaseModel):
    group: str
    name: str
    staged: bool
    verified: bool | None = None
    fallback: str  # what student code gets when it is not staged


def asset_kind(name: str) -> str | None:
    """file | nltk | spacy for a name `grader data stage` takes beside datasets and weights."""
    from grader.probe.nlp_assets import PIPELINE

    if name.lower().startswith("nltk:"):
        return "nltk"
    if PIPELINE.match(name):
        return "spacy"
    if "." in name and "/" not in name and not name.startswith("."):
        return "file"
    return None


def stage_asset(name: str, source_file: Path, cache_dir: Path, verify: bool = True) -> StagedAsset:
    kind = asset_kind(name)
    source_file = Path(source_file).expanduser()
    if kind is None:
        raise DataError(f"unknown name {name!r}: give a dataset ({', '.join(DATASETS)}), weights (resnet50, "
                        "fasterrcnn), the file name a program asks for (e.g. imagenet_class_index.json), "
                        "nltk:PACKAGE or a spaCy pipeline (en_core_web_sm)")
    if not source_file.exists():
        raise DataError(f"{source_file} does not exist")
    stage_fn = {"file": _stage_file, "nltk": _stage_nltk, "spacy": _stage_spacy}[kind]
    return stage_fn(name, source_file, Path(cache_dir), verify)


def keras_known_digests() -> set[str]:
    """Every md5/sha256 written in Keras' applications and datasets sources (Keras 3 and
    tf-keras): the checksums Keras itself knows for the files it downloads."""
    import importlib.util
    import re

    found: set[str] = set()
    for package in ("keras", "tf_keras"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0]) / "src"
        for folder in ("applications", "datasets"):
            for path in (root / folder).glob("*.py"):
                found.update(re.findall(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b", path.read_text(errors="replace")))
    return found


def _stage_file(name: str, source_file: Path, cache_dir: Path, verify: bool) -> StagedAsset:
    from grader.probe import keras_assets

    if not source_file.is_file():
        raise DataError(f"{source_file} is not a file")
    sums = file_digests(source_file)
    known = bool({sums["md5"], sums["sha256"]} & keras_known_digests())
    if verify and not known:
        raise DataError(f"checksum mismatch for {source_file}: neither its md5 {sums['md5']} nor its sha256 matches "
                        f"a checksum Keras records. Download the official {name} (or, for a file Keras keeps no "
                        "checksum for, stage it anyway with --no-verify)")
    entry = {**sums, "size": source_file.stat().st_size, "verified": bool(verify and known),
             "source_file": source_file.name, "staged_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out_dir = keras_assets.files_dir(cache_dir)
    target = _copy_with_manifest(source_file, out_dir / name, out_dir / keras_assets.MANIFEST, name, entry)
    how = "md5/sha256 is one Keras records" if entry["verified"] else "checksum not checked"
    return StagedAsset(kind="file", name=name, path=target, sha256=sums["sha256"], verified=entry["verified"], how=how)


def _copy_with_manifest(source: Path, target: Path, manifest_path: Path, key: str, entry: dict) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_in(target.parent, target.name)
        try:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)  # the sandbox may read it as another user
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        _update_manifest(manifest_path, key, entry)
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc}") from exc
    return target


def _update_manifest(path: Path, key: str, entry: dict) -> None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    manifest[key] = entry
    tmp = _temp_in(path.parent, path.name)
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _safe_extract(archive: zipfile.ZipFile, dest: Path) -> None:
    for member in archive.namelist():
        target = (dest / member).resolve()
        if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
            raise DataError(f"{member!r} would be written outside {dest}: refused")
    archive.extractall(dest)


def _stage_nltk(name: str, source_file: Path, cache_dir: Path, verify: bool) -> StagedAsset:
    """An NLTK package zip (its top folder named like the package) or that folder."""
    from grader.probe.nlp_assets import NLTK_DIR

    package = name.split(":", 1)[1].strip()
    category = NLTK_CATEGORIES.get(package, "corpora")
    dest = cache_dir / NLTK_DIR / category
    dest.mkdir(parents=True, exist_ok=True)
    if source_file.is_dir():
        shutil.copytree(source_file, dest / package, dirs_exist_ok=True)
        sha = ""
    else:
        try:
            with zipfile.ZipFile(source_file) as archive:
                bad = archive.testzip()
                tops = {m.split("/")[0] for m in archive.namelist()}
                if bad is not None or tops != {package}:
                    raise DataError(f"{source_file} is not NLTK's {package}.zip (damaged member {bad}, "
                                    f"top folders {sorted(tops)})")
                _safe_extract(archive, dest)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{source_file} is not a zip file: {exc}") from exc
        shutil.copyfile(source_file, dest / f"{package}.zip")
        sha = file_digests(source_file)["sha256"]
    return StagedAsset(kind="nltk", name=package, path=dest / package, sha256=sha, verified=False,
                       how="layout checked (NLTK publishes no checksum the grader can check offline)")


def _stage_spacy(name: str, source_file: Path, cache_dir: Path, verify: bool) -> StagedAsset:
    """A pipeline's wheel (verified against its RECORD), its .tar.gz, or its folder."""
    from grader.probe.nlp_assets import SPACY_DIR

    with tempfile.TemporaryDirectory() as tmp:
        root, verified = _unpack_pipeline(source_file, Path(tmp))
        if verify and not verified:
            raise DataError(f"{source_file}: only a pipeline's wheel (.whl) carries checksums to verify; "
                            "stage a .tar.gz or a folder with --no-verify")
        folder = _pipeline_folder(root, name)
        target = cache_dir / SPACY_DIR / name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, target)
    sha = file_digests(source_file)["sha256"] if source_file.is_file() else ""
    how = "every file's sha256 matches the wheel's RECORD" if verified else "checksum not checked"
    return StagedAsset(kind="spacy", name=name, path=target, sha256=sha, verified=verified, how=how)


def _unpack_pipeline(source: Path, into: Path) -> tuple[Path, bool]:
    if source.is_dir():
        return source, False
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as archive:
            _safe_extract(archive, into)
        return into, _record_matches(into)
    try:
        with tarfile.open(source) as archive:
            archive.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{source} is neither a wheel, a tar archive nor a folder: {exc}") from exc
    return into, False


def _record_matches(root: Path) -> bool:
    """Whether every file listed in the wheel's RECORD has the sha256 listed there."""
    import base64
    import csv

    records = list(root.glob("*.dist-info/RECORD"))
    if not records:
        return False
    with open(records[0], newline="") as fh:
        rows = [r for r in csv.reader(fh) if len(r) >= 2 and r[1].startswith("sha256=")]
    for path, digest, *_ in rows:
        data = (root / path).read_bytes()
        actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != f"sha256={actual}":
            return False
    return bool(rows)


def _pipeline_folder(root: Path, name: str) -> Path:
    """The folder holding the pipeline's config.cfg (a package nests it as name/name-x.y.z)."""
    found = sorted(p.parent for p in root.rglob("config.cfg") if (p.parent / "meta.json").is_file())
    if not found:
        raise DataError(f"no spaCy pipeline (config.cfg with meta.json) in what was given for {name}")
    return found[0]


def asset_status(cache_dir: Path) -> list[AssetStatus]:
    """Every asset beside the datasets and torchvision weights that the sandbox serves."""
    from grader.probe import keras_assets, nlp_assets

    cache_dir = Path(cache_dir)
    manifest = keras_assets.read_manifest(cache_dir)
    out = [AssetStatus(group="keras.applications", name=", ".join(keras_assets.APPLICATIONS), staged=False,
                       fallback="weights=\"imagenet\": the staged file of Keras' name, else a seeded stand-in")]
    out.append(AssetStatus(group="keras file", name=keras_assets.CLASS_INDEX,
                           staged=keras_assets.staged(keras_assets.CLASS_INDEX, cache_dir) is not None,
                           verified=(manifest.get(keras_assets.CLASS_INDEX) or {}).get("verified"),
                           fallback="stand-in index (1000 entries)"))
    files = keras_assets.files_dir(cache_dir)
    for path in sorted(files.iterdir()) if files.is_dir() else []:
        if path.is_file() and path.name not in (keras_assets.MANIFEST, keras_assets.CLASS_INDEX):
            if not path.name.startswith("."):
                out.append(AssetStatus(group="keras file", name=path.name, staged=True,
                                       verified=(manifest.get(path.name) or {}).get("verified"), fallback="-"))
    for package in nlp_assets.NLTK_STANDINS:
        out.append(AssetStatus(group="nltk", name=package,
                               staged=nlp_assets.nltk_staged(package, cache_dir) is not None,
                               fallback="working stand-in"))
    spacy_dir = cache_dir / nlp_assets.SPACY_DIR
    staged_pipelines = sorted(p.name for p in spacy_dir.iterdir() if (p / "config.cfg").is_file()) \
        if spacy_dir.is_dir() else []
    for name in staged_pipelines:
        out.append(AssetStatus(group="spacy", name=name, staged=True, fallback="-"))
    out.append(AssetStatus(group="spacy", name="any other trained pipeline (en_core_web_sm, …)", staged=False,
                           fallback="blank pipeline with a sentencizer"))
    return out


def assets_state(cache_dir: Path) -> str:
    """Which staged assets a job is served, for the grade key."""
    rows = [f"{a.group}:{a.name}" for a in asset_status(cache_dir) if a.staged]
    return f"assets:{','.join(rows) or 'none'}"
