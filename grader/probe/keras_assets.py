"""Keras' downloads served offline (Keras 3 and tf-keras), installed with the Keras probe.

Everything Keras fetches goes through `keras.utils.get_file(fname, origin, file_hash=...)`:
the pretrained weights of every `keras.applications` model (ResNet50, VGG16, MobileNetV2 …),
the ImageNet class index that `decode_predictions` reads, and the datasets. In the sandbox
that call is answered from the grader's cache, by the file's own name:

* a real file that faculty staged (`grader data stage NAME FILE` puts it in
  ``<cache>/files/``); it is checked against the checksum Keras passes for it, if any;
* else, for application weights, a seeded stand-in: the model the application has just
  built, with seeded He-normal kernels (biases and batch-norm statistics as initialised),
  saved under Keras' file name in ``<cache>/keras/standin/v<N>/<keras|tf_keras>/``;
* else, for `imagenet_class_index.json`, a stand-in index of the real shape (1000 entries
  ``"i": [wnid, name]``) whose names say they are stand-ins;
* anything else ends the job with "the program asks for X from the internet; stage it
  with `grader data stage X FILE`".

The applications themselves are recorded in trace["keras_applications"] in the shape of the
torchvision probe's record (models with the weights asked for and served, predictions on
the student's image with their arg-max, images read, labels decoded), so that the vision
checks judge a Keras model as they judge a torchvision one. That record is evidence only:
when an application's weights are served, a digest of each of its variables is kept (not in
the trace), and after the program the final model is exported with only the variables whose
values are no longer the served file's (to_export, grader.probe.export.write_keras_application)
for the re-measurement outside the program (grader/trusted_keras_apps.py).

Stdlib at import time; Keras is imported by the caller.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from grader.probe.shims import AssetNotServed, asked_from_internet, url_file_name
from grader.probe.trace import Trace
from grader.probe.weights import label_by_weights

STANDIN_VERSION = 1
FILES_DIR = "files"  # <cache>/files/<name>: files staged under the name a program asks for
MANIFEST = "manifest.json"
CLASS_INDEX = "imagenet_class_index.json"
PACKAGES = ("keras", "tf_keras")
GET_FILE_MODULE = {"keras": "keras.src.utils.file_utils", "tf_keras": "tf_keras.src.utils.data_utils"}
DATASET_MODULES = ("boston_housing", "california_housing", "cifar10", "cifar100", "fashion_mnist", "imdb",
                   "mnist", "reuters")
MAX_FORWARDS = 40
# For `grader data status`: what keras.applications offers (Keras 3); every one is served.
APPLICATIONS = ("ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
                "DenseNet121", "DenseNet169", "DenseNet201", *(f"EfficientNetB{i}" for i in range(8)),
                *(f"EfficientNetV2{s}" for s in ("B0", "B1", "B2", "B3", "S", "M", "L")),
                "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Small",
                "MobileNetV3Large", "NASNetMobile", "NASNetLarge", "ResNet50", "ResNet101", "ResNet152",
                "ResNet50V2", "ResNet101V2", "ResNet152V2", "VGG16", "VGG19", "Xception")

ACTIVE: "KerasAssets | None" = None  # the installed instance, for the post-run reference step


# ---------------------------------------------------------------- the cache


def session_cache() -> str | None:
    """The running job's cache folder (None outside a graded run)."""
    from grader.probe import session

    return session.CURRENT.config.get("cache_dir") if session.CURRENT else None


def files_dir(cache_dir: Path | str) -> Path:
    return Path(cache_dir) / FILES_DIR


def staged(name: str, cache_dir: Path | str) -> Path | None:
    """The file staged under this name, if any."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = files_dir(cache_dir) / name
    return path if path.is_file() else None


def read_manifest(cache_dir: Path | str) -> dict[str, Any]:
    try:
        data = json.loads((files_dir(cache_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def digests(path: Path) -> dict[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def matches(name: str, path: Path, file_hash: str | None, cache_dir: Path | str) -> bool:
    """Whether a staged file has the checksum Keras gives for it (md5, or sha256 when 64
    hex digits long); true when Keras gives none. The manifest's digests save rehashing."""
    if not file_hash:
        return True
    entry = read_manifest(cache_dir).get(name) or {}
    known = entry if entry.get("size") == path.stat().st_size and "md5" in entry else digests(path)
    return known["sha256" if len(file_hash) == 64 else "md5"] == file_hash.lower()


def standin_class_index() -> dict[str, list[str]]:
    """The real file's shape (1000 entries "i": [wnid, name]); the names say what they are."""
    return {str(i): [f"n{i:08d}", f"standin_class_{i:03d}"] for i in range(1000)}


# ---------------------------------------------------------------- stand-in weights


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def seed_weights(model: Any, name: str) -> None:
    """Seeded He-normal kernels (every weight of two or more dimensions); biases and
    batch-norm statistics keep their initial constants, so the whole is deterministic."""
    import numpy as np

    rng = np.random.default_rng(seed_of(name))
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        if value.ndim >= 2:
            fan_in = max(1, int(np.prod(value.shape[:-1])))
            weight.assign((rng.standard_normal(value.shape) * np.sqrt(2.0 / fan_in)).astype(value.dtype))


def save_h5(model: Any, path: str, package: str) -> None:
    """Weights in Keras' legacy HDF5 layout, the layout of the real application files."""
    if package == "tf_keras":
        model.save_weights(path)
        return
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def write_standin(model: Any, target: Path, package: str) -> None:
    seed_weights(model, target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".h5", dir=target.parent)
    os.close(fd)
    try:
        save_h5(model, tmp, package)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # two jobs making it at once: the last one wins, both whole
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def package_of(obj: Any) -> str:
    """"keras" or "tf_keras": the first class in the object's MRO that Keras defines."""
    for cls in type(obj).__mro__:
        package = (getattr(cls, "__module__", None) or "").split(".")[0]
        if package in PACKAGES:
            return package
    return "keras"


def caller_model(depth: int = 8) -> Any:
    """The model an application function is loading weights into (its local `model`)."""
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return None
        model = frame.f_locals.get("model")
        if model is not None and hasattr(model, "load_weights") and hasattr(model, "weights"):
            return model
        frame = frame.f_back
    return None


# ---------------------------------------------------------------- descriptions


def shape(value: Any) -> Any:
    if hasattr(value, "shape"):
        try:
            return [None if d is None else int(d) for d in value.shape]
        except TypeError:
            return str(value.shape)
    if isinstance(value, (list, tuple)):
        return [shape(v) for v in value[:8]]
    return type(value).__name__


def flat_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []) or []:
        inner = getattr(layer, "layers", None)
        out.extend(flat_layers(layer) if inner else [layer])
    return out


def head_info(model: Any) -> dict[str, Any]:
    """The last layer: for a Dense one, its inputs and outputs (the classes it decides)."""
    layers = flat_layers(model)
    if not layers:
        return {}
    last = layers[-1]
    info: dict[str, Any] = {"path": last.name, "class": type(last).__name__}
    kernel = getattr(last, "kernel", None)
    if type(last).__name__ == "Dense" and kernel is not None:
        info.update(in_features=int(kernel.shape[0]), out_features=int(last.units))
    return info


def describe(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"class": type(model).__name__, "training": False,
                           "children": [[layer.name, type(layer).__name__] for layer in model.layers[-30:]]}
    try:
        out["parameters"] = int(model.count_params())
    except Exception:
        out["parameters"] = None
    out["head"] = head_info(model)
    return out


def describe_output(output: Any) -> dict[str, Any]:
    import numpy as np

    try:
        array = np.asarray(output.numpy() if hasattr(output, "numpy") else output, dtype="float64")
    except Exception:
        return {"kind": type(output).__name__}
    out: dict[str, Any] = {"kind": "tensor", "shape": list(array.shape)}
    if array.ndim == 2 and array.shape[0] <= 64:
        out["argmax"] = array.argmax(axis=1).tolist()
        out["finite"] = bool(np.isfinite(array).all())
    return out


def concrete(x: Any) -> bool:
    """An input with values (an array or eager tensor), not a symbolic one being traced."""
    name = type(x).__name__
    if name in ("ndarray", "EagerTensor", "Tensor") and hasattr(x, "shape"):
        return name != "Tensor" or type(x).__module__.startswith("torch")
    return False


def requested(sig: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the program asked the application for, with Keras' defaults filled in."""
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return {}
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for key in ("weights", "include_top", "classes", "pooling", "input_shape"):
        if key in bound.arguments:
            value = bound.arguments[key]
            out[key] = value if isinstance(value, (bool, int, type(None))) else str(value)[:80]
    return out


# ---------------------------------------------------------------- the probe part


class KerasAssets:
    """Serves Keras' downloads and records keras.applications models (see module doc)."""

    def __init__(self, trace: Trace, cache_dir: Path | str | None = None, scratch: Path | None = None):
        self.trace = trace
        self._cache_dir = cache_dir
        self.scratch = Path(scratch) if scratch else Path.home() / ".grader-keras"
        self.models: list[Any] = []  # live application models, index = record index
        self.digests: dict[int, dict[int, bytes]] = {}  # record index -> {id(variable): digest as served}
        self.predicted: dict[int, Any] = {}  # index -> the model last run on an image (it or one holding it)
        self.building: dict[str, Any] | None = None
        self.quiet = False  # set while the harness runs a model itself
        self.depth = 0  # nested model calls (a predict calls the model): only the outermost is kept
        self.record: dict[str, Any] = {"weights": [], "models": [], "forwards": [], "forward_calls": 0,
                                       "images": [], "decoded": [], "files": []}
        trace["keras_applications"] = self.record

    @property
    def cache_dir(self) -> Path:
        return Path(self._cache_dir or session_cache() or Path.home() / ".cache" / "grader")

    # ------------------------------------------------------------ installation

    def install(self, package: str) -> None:
        """Patches one Keras package (keras or tf_keras), already imported."""
        get_file_module = importlib.import_module(GET_FILE_MODULE[package])
        for name in DATASET_MODULES:  # they hold get_file by name: import them before patching
            try:
                importlib.import_module(f"{package}.src.datasets.{name}")
            except Exception:
                pass
        utils = importlib.import_module(f"{package}.src.applications.imagenet_utils")
        images = importlib.import_module(f"{package}.src.utils.image_utils")
        wanted = [(get_file_module.get_file, lambda fn: self.get_file(fn, package)),
                  (utils.decode_predictions, self.decode), (images.load_img, self.load_img),
                  *self._applications(package)]
        replace_everywhere(package, {id(fn): (fn, wrap(fn)) for fn, wrap in wanted
                                     if not getattr(fn, "grader_served", False)})
        model_cls = importlib.import_module(package).Model
        self._wrap_calls(model_cls)

    # ------------------------------------------------------------ get_file

    def get_file(self, original, package: str):
        sig = inspect.signature(original)
        assets = self

        @functools.wraps(original)
        def get_file(*args, **kwargs):
            asked = sig.bind(*args, **kwargs).arguments
            origin = str(asked.get("origin") or "")
            name = Path(str(asked.get("fname") or url_file_name(origin))).name
            file_hash = asked.get("file_hash") or asked.get("md5_hash")
            path = assets.serve(name, origin, file_hash, package)
            if asked.get("extract") or asked.get("untar"):
                asked.update(origin=path.as_uri(), cache_dir=str(assets.scratch), force_download=False)
                return original(**{k: v for k, v in asked.items() if k in sig.parameters})
            return str(path)

        get_file.grader_served = True
        return get_file

    def serve(self, name: str, origin: str, file_hash: str | None, package: str) -> Path:
        real = staged(name, self.cache_dir)
        if real is not None:
            if not matches(name, real, file_hash, self.cache_dir):
                raise AssetNotServed(f"the staged {name} does not match the checksum Keras knows for it "
                                     f"({file_hash}); stage the official file with `grader data stage {name} FILE`")
            return self._served(name, real, "real", origin)
        if name == CLASS_INDEX:
            return self._served(name, self._standin_index(), "standin", origin)
        model = caller_model() if self.building is not None else None
        if model is not None:
            return self._served(name, self._standin_weights(name, model, package), "standin", origin)
        self.trace.note(f"the program asked for {name} ({origin}) from the internet: it is not staged")
        self.trace.save()
        raise asked_from_internet(f"{name} ({origin})" if origin else name, name)

    def _served(self, name: str, path: Path, source: str, origin: str) -> Path:
        entry = {"file": name, "source": source, "verified": self._verified(name) if source == "real" else None,
                 "url": origin[:300]}
        if self.building is not None:
            entry.update(model=self.building["factory"], for_model=len(self.models))
            self.building["loaded"].append(entry)
            self.record["weights"].append(entry)
        else:
            self.record["files"].append(entry)
        label = "real" if source == "real" else "synthetic stand-in"
        self.trace.note(f"{name} ({label}) was served from the grader's cache")
        label_by_weights(self.trace, self.record["weights"])
        self.trace.save()
        return path

    def _verified(self, name: str) -> bool | None:
        entry = read_manifest(self.cache_dir).get(name)
        return bool(entry.get("verified")) if isinstance(entry, dict) else None

    def _writable(self, relative: str, make) -> Path:
        """<cache>/keras/standin/v<N>/relative, made by make(path) if missing; the job's
        scratch folder when the cache cannot be written (a read-only mount)."""
        for base in (self.cache_dir / "keras" / "standin", self.scratch / "standin"):
            target = base / f"v{STANDIN_VERSION}" / relative
            if target.is_file():
                return target
            try:
                make(target)
                return target
            except OSError:
                continue
        raise OSError(f"no writable place for the stand-in {relative}")

    def _standin_index(self) -> Path:
        def make(target: Path) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(standin_class_index()), encoding="utf-8")
            os.replace(tmp, target)

        return self._writable(CLASS_INDEX, make)

    def _standin_weights(self, name: str, model: Any, package: str) -> Path:
        return self._writable(f"{package}/{name}", lambda target: write_standin(model, target, package))

    # ------------------------------------------------------------ applications

    def _applications(self, package: str) -> list[tuple[Any, Any]]:
        """(function, its wrapper maker) for every application of the package (ResNet50 …)."""
        root = importlib.import_module(f"{package}.src.applications")
        found = []
        for info in pkgutil.iter_modules(root.__path__):
            if info.name.endswith("_test"):
                continue
            try:
                module = importlib.import_module(f"{root.__name__}.{info.name}")
            except Exception:
                continue
            found += [(fn, functools.partial(self.application, name)) for name, fn in list(vars(module).items())
                      if is_application(fn, module.__name__, name)]
        return found

    def application(self, name: str, builder):
        sig = inspect.signature(builder)
        assets = self

        @functools.wraps(builder)
        def build(*args, **kwargs):
            if assets.building is not None:  # ResNet50 calls ResNet: one model
                return builder(*args, **kwargs)
            assets.building = {"factory": name, "task": "classification", "requested": requested(sig, args, kwargs),
                               "loaded": [], "module": builder.__module__}
            try:
                model = builder(*args, **kwargs)
            finally:
                rec, assets.building = assets.building, None
            assets._keep(model, rec)
            return model

        build.grader_served = True
        return build

    def _keep(self, model: Any, rec: dict[str, Any]) -> None:
        rec.update(index=len(self.models), pretrained=bool(rec["loaded"]), built=describe(model),
                   **{"class": type(model).__name__})
        rec["final"] = dict(rec["built"], head_replaced=False)
        if rec["loaded"] and exported_after_run():  # the file's values, to tell the program's own later
            self.digests[len(self.models)] = {id(v): variable_digest(v) for v in model.weights}
        self.models.append(model)
        self.record["models"].append(rec)
        self.trace.save()

    def index_of(self, model: Any) -> int | None:
        """The application model this is, or the last one it holds as a layer."""
        for i, m in enumerate(self.models):
            if m is model:
                return i
        if not self.models:
            return None
        held = {id(layer) for layer in all_layers(model)}
        inside = [i for i, m in enumerate(self.models) if id(m) in held]
        return inside[-1] if inside else None

    # ------------------------------------------------------------ predictions

    def _wrap_calls(self, model_cls: type) -> None:
        for method in ("predict", "predict_on_batch", "__call__"):
            original = getattr(model_cls, method)
            if not getattr(original, "grader_served", False):
                wrapped = self.forward(original, method)
                setattr(model_cls, method, wrapped)

    def forward(self, original, how: str):
        assets = self

        @functools.wraps(original)
        def call(model, *args, **kwargs):
            x = args[0] if args else kwargs.get("x", kwargs.get("inputs"))
            if assets.quiet or assets.depth or not assets.models or (how == "__call__" and not concrete(x)):
                return original(model, *args, **kwargs)
            index = assets.index_of(model)
            if index is None:
                return original(model, *args, **kwargs)
            entry = assets._forward_started(index, model, x, how, kwargs)
            assets.depth += 1
            try:
                output = original(model, *args, **kwargs)
            finally:
                assets.depth -= 1
            entry["output"] = describe_output(output)
            assets._forward_done(index, model)
            return output

        call.grader_served = True
        return call

    def _forward_started(self, index: int, model: Any, x: Any, how: str, kwargs: dict) -> dict[str, Any]:
        self.record["forward_calls"] += 1
        forwards = self.record["forwards"]
        if len(forwards) >= MAX_FORWARDS:  # keep the first calls and the latest (the prediction)
            del forwards[MAX_FORWARDS // 2]
        entry = {"model": index, "training": bool(kwargs.get("training")), "grad": False, "input": shape(x),
                 "output": None, "via": how}
        forwards.append(entry)
        return entry

    def _forward_done(self, index: int, model: Any) -> None:
        self.predicted[index] = model
        rec = self.record["models"][index]
        final = describe(model)
        final["head_replaced"] = model is not self.models[index] and final["head"] != rec["built"]["head"]
        rec["final"] = final
        self.trace.save()

    def decode(self, original):
        assets = self

        @functools.wraps(original)
        def decode_predictions(preds, *args, **kwargs):
            result = original(preds, *args, **kwargs)
            assets._decoded(preds, result)
            return result

        decode_predictions.grader_served = True
        return decode_predictions

    def _decoded(self, preds: Any, result: Any) -> None:
        import numpy as np

        try:
            first = np.asarray(preds.numpy() if hasattr(preds, "numpy") else preds)[0]
            top = [[str(w), str(label), round(float(p), 4)] for w, label, p in result[0][:5]]
        except Exception:
            return
        if len(self.record["decoded"]) < 20:
            self.record["decoded"].append({"index": int(first.argmax()), "top": top})
            self.trace.save()

    # ------------------------------------------------------------ images read

    def load_img(self, original):
        assets = self

        @functools.wraps(original)
        def load_img(path, *args, **kwargs):
            image = original(path, *args, **kwargs)
            assets.image_read(path, getattr(image, "size", None), "keras.utils.load_img")
            return image

        load_img.grader_served = True
        return load_img

    def image_read(self, path: Any, size: Any, how: str) -> None:
        if isinstance(path, (str, os.PathLike)) and len(self.record["images"]) < 50:
            text = os.fspath(path)
            self.record["images"].append({"path": text[:300], "name": Path(text).name,
                                          "size": list(size) if size else None, "reader": how})
            self.trace.save()

    # ------------------------------------------------------------ after the run

    def final(self) -> int | None:
        """The record index of the application the program ran last, else the last one built."""
        if not self.models:
            return None
        ran = [f["model"] for f in self.record["forwards"]]
        return ran[-1] if ran else len(self.models) - 1

    def to_export(self) -> dict[str, Any] | None:
        """What grader.probe.export needs to write the final model (the model the program last
        ran: the application, or one holding it) for the re-measurement outside the program:
        the live model, its application and the digests of the application's variables as
        served, the served file's name and the application's module (its preprocess_input)."""
        index = self.final()
        if index is None:
            return None
        rec = self.record["models"][index]
        files = [w["file"] for w in rec["loaded"]]
        return {"model": index, "framework": "keras_applications", "dataset": None,
                "object": self.predicted.get(index, self.models[index]), "application": self.models[index],
                "digests": self.digests.get(index, {}), "weights_file": files[-1] if files else None,
                "package": package_of(self.models[index]), "module": rec.get("module"),
                "preprocess": {"kind": "keras_application", "module": rec.get("module")}}

    def reference(self, session: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The final application model (as the program last ran it) on the harness's
        reference images, preprocessed as its application prescribes."""
        from grader.probe import vision
        from grader.probe.torchvision_hooks import label_list

        index = self.final()
        if index is None:
            return {"error": "no pretrained model was built, so there is nothing to run on the reference images"}
        model = self.predicted.get(index, self.models[index])
        rec = self.record["models"][index]
        outputs = (rec.get("final") or {}).get("head", {}).get("out_features")
        rec["labels"] = label_list(session.namespace or {}, outputs)
        self.trace.save()
        post = {"model": index, "task": "classification", "framework": "keras", "results": []}
        if vision.outside_only(session, params, "keras_applications", index):
            return post | {"cross_check": False}
        post["results"] = [self._run_reference(model, rec, spec, session.config["cache_dir"])
                           for spec in params.get("images", [])]
        return post

    def _run_reference(self, model: Any, rec: dict[str, Any], spec: dict[str, Any], cache_dir: str) -> dict[str, Any]:
        import numpy as np

        from grader.probe.vision import load_reference

        image, objects, origin = load_reference(spec, cache_dir)
        out: dict[str, Any] = {"image": spec.get("name") or spec.get("file"), "origin": origin,
                               "size": list(image.size), "objects": objects}
        size = input_size(model)
        batch = np.asarray(image.resize(size), dtype="float32")[None]
        preprocess = getattr(sys.modules.get(rec.get("module", "")), "preprocess_input", None)
        self.quiet = True
        try:
            result = model.predict(preprocess(batch) if preprocess else batch, verbose=0)
            out["output"] = describe_output(result)
        except Exception as e:  # a head that does not fit, say: the check says so
            out["error"] = f"{type(e).__name__}: {e}"[:500]
        finally:
            self.quiet = False
        return out


def exported_after_run() -> bool:
    """Whether the final application model is exported after the program: the job runs it on
    reference images (the rubric's `vision` step; grader.probe.keras_hooks), or no job runs."""
    from grader.probe import session

    return session.CURRENT is None or "vision" in (session.CURRENT.config.get("probe") or {})


def variable_digest(variable: Any) -> bytes:
    """SHA-1 of a variable's value as bytes (ResNet-50's 25.6 M values: about 0.1 s)."""
    import numpy as np

    value = np.ascontiguousarray(variable.numpy())
    return hashlib.sha1(memoryview(value).cast("B"), usedforsecurity=False).digest()


def input_size(model: Any) -> tuple[int, int]:
    """(width, height) the model takes, 224 x 224 where it takes any size."""
    try:
        dims = list(model.inputs[0].shape)[1:3]
    except Exception:
        dims = [None, None]
    height, width = (int(d) if d else 224 for d in dims)
    return width, height


def all_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []) or []:
        out.append(layer)
        if getattr(layer, "layers", None):
            out.extend(all_layers(layer))
    return out


def is_application(fn: Any, module: str, name: str) -> bool:
    if not inspect.isfunction(fn) or fn.__module__ != module or name.startswith("_"):
        return False
    try:
        return "include_top" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def replace_everywhere(package: str, replacements: dict[int, tuple[Any, Any]]) -> None:
    """Every loaded module of the package (and TensorFlow's aliases of it) that holds an
    original object by name gets its replacement (they imported it by name): one pass over
    the modules for all of them. `replacements`: id(original) -> (original, replacement)."""
    prefixes = (package, "tensorflow")
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in prefixes:
            continue
        try:
            held = [(k, replacements[id(v)]) for k, v in vars(module).items() if id(v) in replacements]
        except TypeError:
            continue
        for key, (original, replacement) in held:
            if getattr(module, key, None) is original:
                setattr(module, key, replacement)


def install(trace: Trace, flavour_packages: tuple[str, ...] | None = None, cache_dir: Path | str | None = None,
            scratch: Path | None = None) -> KerasAssets:
    """Installs the serving for every Keras package already imported (keras, tf_keras);
    one imported later is patched when it is imported."""
    global ACTIVE
    assets = ACTIVE if ACTIVE is not None and ACTIVE.trace is trace else KerasAssets(trace, cache_dir, scratch)
    ACTIVE = assets
    for package in flavour_packages or PACKAGES:
        if package in sys.modules:
            assets.install(package)
        else:
            _install_later(assets, package)
    return assets


def _install_later(assets: KerasAssets, package: str) -> None:
    try:
        import wrapt
    except ImportError:
        return
    wrapt.register_post_import_hook(lambda module: assets.install(package), package)
