"""Instrumentation of Keras (Keras 3 and tf-keras), installed when the program imports keras,
tensorflow or tf_keras.

Records every compile, fit (with per-epoch history, kept even if the run is killed),
evaluate and predict, and a loop of train_on_batch calls as a fit (grader/probe/keras_batches.py;
test_on_batch and predict_on_batch as evaluate and predict); serves the datasets from the provider. In quick mode it caps epochs,
stops training when the rubric's training-time budget is used (grader/probe/budget.py), and
lets batch normalisation's running statistics follow a short run (`quick_batchnorm`).
The student's calls behave as written apart from those documented caps.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
from typing import Any

import numpy as np

from grader.probe import image_folders, keras_assets, layouts
from grader.probe.keras_batches import KEPT_SAMPLES, BatchLoop
from grader.probe.keras_loops import TapeLoops
from grader.probe.trace import Trace, plain

LAYER_KEYS = ("filters", "kernel_size", "strides", "padding", "activation", "units", "rate",
              "pool_size", "use_bias", "momentum", "mode", "factor", "height_factor",
              "width_factor", "return_sequences", "output_dim", "input_dim", "kernel_regularizer")
AUGMENTATION_LAYERS = {"RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                       "RandomContrast", "RandomCrop", "RandomBrightness", "RandomTranslation",
                       "RandAugment", "RandomErasing"}
DATASETS = ("cifar10", "mnist", "imdb")


class KerasProbe:
    def __init__(self, trace: Trace, served_loader, epochs_cap: int | None):
        self.trace = trace
        self.load_served = served_loader  # name -> provider.Served (cached)
        self.epochs_cap = epochs_cap
        self.models: dict[int, Any] = {}  # strong refs by model id (index in trace["models"])
        self.test_inputs: dict[int, Any] = {}  # model id -> inputs the student evaluated on
        self.fit_inputs: dict[int, Any] = {}
        self.batch_loops: dict[int, BatchLoop] = {}  # model id -> its train_on_batch calls
        self.datasets: dict[tuple[int, str], Any] = {}  # (model id, "fit" | "evaluate") -> a tf.data pipeline
        self.tape_loops = TapeLoops(self)  # training steps of the program's own (GradientTape)
        self.modules: list[Any] = []  # the Keras packages patched
        self.fit_targets: dict[int, Any] = {}
        self.measured: dict[str, Any] | None = None  # the model to export (grader.probe.export)
        self.served: dict[str, Any] = {}
        self.text_calls: list[tuple[dict[str, Any], Any]] = []  # (load_args, Served) per imdb.load_data call
        self.phase = "running the program"
        self.originals: dict[tuple[type, str], Any] = {}

    def measure(self) -> dict[str, Any] | None:
        from grader.probe.measure import fitted_without_dataset, measure

        from grader.probe import session

        self.tape_loops.finish()
        for mid, loop in self.batch_loops.items():
            loop.finish()
            inputs = loop.inputs()
            if inputs is not None:
                self.fit_inputs[mid] = inputs
        self.inputs_from_datasets()
        result = measure(self)
        after = (session.CURRENT.config.get("probe") if session.CURRENT else None) or {}
        if "vision" in after and keras_assets.ACTIVE is not None and keras_assets.ACTIVE.models:
            # a keras.applications model (Program 2), whatever it was fitted on: run outside on the
            # host's reference images, the figures its checks judge
            self.measured = keras_assets.ACTIVE.to_export()
        elif result is None and not self.served and "chat" in after:  # a chatbot: its layers and training outside
            self.measured = fitted_without_dataset(self)
        return result

    def inputs_from_datasets(self) -> None:
        """Models fed tf.data pipelines: the test inputs are the evaluation pipeline's images
        when it yields the served test set in order; the training pipeline's first samples show
        the program's scaling."""
        served = next(iter(self.served.values()), None)
        if served is None:
            return
        for (mid, kind), dataset in self.datasets.items():
            if not is_pipeline(dataset):
                continue
            if kind == "evaluate" and mid not in self.test_inputs:
                x = first_inputs(dataset, len(served.y_test) + 1)
                if x is not None and len(x) == len(served.y_test) and layouts.describe(x, served.x_test):
                    self.test_inputs[mid] = x
            elif kind == "fit" and mid not in self.fit_inputs:
                x = first_inputs(dataset, KEPT_SAMPLES)
                if x is not None:
                    self.fit_inputs[mid] = x

    # ------------------------------------------------------------ installation

    def install(self, flavour: str) -> None:
        modules = []
        if flavour == "legacy":
            import tf_keras  # noqa: F401  (tensorflow.keras resolves to it)
            modules.append(sys.modules["tf_keras"])
        import keras

        modules.append(keras)
        for mod in modules:
            self._patch_model_class(mod.Model)
            self.trace["frameworks"][mod.__name__] = getattr(mod, "__version__", "")
        self.modules = modules
        self.tape_loops.install(tuple(mod.__name__ for mod in modules))
        self.trace["frameworks"]["keras_flavour"] = flavour
        try:
            import tensorflow as tf

            self.trace["frameworks"]["tensorflow"] = tf.__version__
            tf.keras.datasets  # resolves the lazy tf.keras alias so its modules get patched
        except Exception:  # TensorFlow may be absent (Keras 3 on another backend)
            pass
        self._patch_datasets()
        keras_assets.install(self.trace, tuple(mod.__name__ for mod in modules))  # get_file, applications
        image_folders.install_keras(self.trace, tuple(mod.__name__ for mod in modules))  # a custom dataset

    def on_import(self, name: str) -> None:
        """A Keras package imported after the probe installed (tf_keras under Keras 3) gets
        its datasets served too."""
        if name in KERAS_PACKAGES:
            self._patch_datasets()

    def _patch_datasets(self) -> None:
        """Replace load_data (and imdb's get_word_index) in every loaded module named
        ...datasets.cifar10 / .mnist / .imdb. Only Keras packages the program has imported are
        opened: importing tf_keras for a Keras 3 program costs half a second, and one imported
        later is patched then (on_import)."""
        for name in DATASETS:
            for package in KERAS_PACKAGES:
                if package not in sys.modules:
                    continue
                try:
                    importlib.import_module(f"{package}.src.datasets.{name}")
                except Exception:
                    pass
        pattern = re.compile(r"(^|\.)datasets\.(%s)$" % "|".join(DATASETS))
        for modname, mod in list(sys.modules.items()):
            m = pattern.search(modname)
            if m and hasattr(mod, "load_data"):
                mod.load_data = self._make_loader(m.group(2))
                if m.group(2) == "imdb" and hasattr(mod, "get_word_index"):
                    mod.get_word_index = self._word_index

    def _word_index(self, *args, **kwargs):
        """imdb.get_word_index(): word -> rank, from the same source as the reviews."""
        from grader.probe import provider

        return provider.imdb_word_index(self.load_served("imdb"))

    def _make_loader(self, name: str):
        if name == "imdb":
            return self._make_text_loader(name)

        def load_data(*args, **kwargs):
            served = self.load_served(name)
            self.served[name] = served
            self.trace["dataset"] = served.info()
            self.trace.save()
            return (served.x_train.copy(), served.y_train.copy()), (served.x_test.copy(), served.y_test.copy())

        load_data.__doc__ = f"{name}.load_data served from the grader's local cache"
        return load_data

    def _make_text_loader(self, name: str):
        import dataclasses

        from grader.probe import provider

        def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113,
                      start_char=1, oov_char=2, index_from=3, **kwargs):
            served = self.load_served(name)
            args = {"num_words": num_words, "skip_top": skip_top, "maxlen": maxlen, "seed": seed,
                    "start_char": start_char, "oov_char": oov_char, "index_from": index_from}
            (x_tr, y_tr), (x_te, y_te) = provider.imdb_load_data(served, **args)
            # What the program received is what its accuracy is measured against.
            self.served[name] = dataclasses.replace(served, x_train=x_tr, y_train=y_tr,
                                                    x_test=x_te, y_test=y_te)
            load_args = {k: v for k, v in args.items() if v is not None}
            # every call is kept: the model measured may have been fed an earlier one's reviews
            self.text_calls.append((load_args, self.served[name]))
            info = served.info()
            info.update(n_train=len(x_tr), n_test=len(x_te), load_args=load_args)
            self.trace["dataset"] = info
            self.trace.save()
            return (x_tr, y_tr.copy()), (x_te, y_te.copy())

        load_data.__doc__ = f"{name}.load_data served from the grader's local cache"
        return load_data

    def _patch_model_class(self, model_cls: type) -> None:
        for method, wrapper in (("compile", self._wrap_compile), ("fit", self._wrap_fit),
                                ("evaluate", self._wrap_eval), ("predict", self._wrap_predict),
                                ("train_on_batch", self._wrap_train_on_batch),
                                ("test_on_batch", self._wrap_eval), ("predict_on_batch", self._wrap_predict),
                                ("__call__", self._wrap_call)):
            original = getattr(model_cls, method, None)
            if original is None:
                continue
            self.originals[(model_cls, method)] = original
            setattr(model_cls, method, wrapper(original))

    def original(self, model: Any, method: str):
        for (cls, name), fn in self.originals.items():
            if name == method and isinstance(model, cls):
                return functools.partial(fn, model)
        return getattr(model, method)

    # ------------------------------------------------------------ models

    def model_id(self, model: Any) -> int:
        """The model's index in trace["models"], which every framework's probe shares."""
        for i, m in self.models.items():
            if m is model:
                return i
        mid = len(self.trace["models"])
        self.models[mid] = model
        self.trace["models"].append({"id": mid, "class": type(model).__name__})
        return mid

    def describe(self, model: Any) -> None:
        entry = self.trace["models"][self.model_id(model)]
        try:
            entry["layers"] = [describe_layer(layer) for layer in flat_layers(model)]
            entry["params"] = int(model.count_params()) if model.built else None
            entry["input_shape"] = shape_of(getattr(model, "input_shape", None)
                                            if not hasattr(model, "inputs") or model.inputs is None
                                            else model.inputs[0].shape)
        except Exception as e:  # a model the probe cannot read must not break the run
            entry["describe_error"] = f"{type(e).__name__}: {e}"[:300]
        opt = getattr(model, "optimizer", None)
        if opt is not None:
            entry["optimizer"] = {"class": type(opt).__name__, "learning_rate": learning_rate(opt)}
        outputs = [l for l in entry.get("layers", []) if l.get("trainable_output")]
        if outputs:
            entry["output"] = outputs[-1]

    def _wrap_compile(self, original):
        probe = self

        @functools.wraps(original)
        def compile(model, *args, **kwargs):
            bound = bind(original, model, args, kwargs)
            result = original(model, *args, **kwargs)
            entry = probe.trace["models"][probe.model_id(model)]
            entry["loss"] = name_of(bound.get("loss"))
            entry["metrics"] = [name_of(m) for m in as_list(bound.get("metrics"))]
            opt = bound.get("optimizer", "rmsprop")
            entry["optimizer_arg"] = name_of(opt)
            probe.describe(model)
            probe.trace.save()
            return result

        return compile

    def _wrap_fit(self, original):
        probe = self

        @functools.wraps(original)
        def fit(model, *args, **kwargs):
            bound = bind(original, model, args, kwargs)
            requested = bound.get("epochs", 1)
            record: dict[str, Any] = {
                "model": probe.model_id(model), "epochs_requested": requested,
                "batch_size": bound.get("batch_size"),
                "validation": validation_of(bound), "inputs": inputs_of(bound.get("x"), bound.get("y")),
                "history": {}, "epochs_run": 0, "completed": False,
                "callbacks": [type(c).__name__ for c in as_list(bound.get("callbacks"))],
            }
            kwargs = bound_kwargs(original, model, args, kwargs)
            if probe.epochs_cap and isinstance(requested, int) and requested > probe.epochs_cap:
                kwargs["epochs"] = probe.epochs_cap
                record["epochs_capped_to"] = probe.epochs_cap
            kwargs["callbacks"] = as_list(kwargs.get("callbacks")) + [probe._epoch_callback(model, record)]
            kwargs["callbacks"] += probe.quick_training(model, record)
            record["weights"] = trainable_summary(model)
            probe.trace["fits"].append(record)
            x, y = bound.get("x"), bound.get("y")
            if hasattr(x, "shape"):
                probe.fit_inputs[record["model"]] = x
            elif is_pipeline(x):
                probe.datasets[(record["model"], "fit")] = x
            if hasattr(y, "shape"):
                probe.fit_targets[record["model"]] = y
            probe.phase = "model.fit"
            probe.trace.save()
            history = original(model, **kwargs)
            probe.phase = "running the program"
            record["completed"] = True
            if getattr(history, "history", None):
                record["history"] = plain(history.history)
                record["epochs_run"] = len(next(iter(history.history.values()), []))
            probe.describe(model)
            probe.trace.save()
            return history

        return fit

    def _wrap_call(self, original):
        """model(x) outside fit: a training call (training=True) of a loop of the program's own
        (grader/probe/keras_loops.py), or the test set the program scores itself."""
        probe = self

        @functools.wraps(original)
        def call(model, *args, **kwargs):
            result = original(model, *args, **kwargs)
            if args and probe.phase == "running the program":
                if kwargs.get("training") is True:
                    probe.tape_loops.saw_training_call(model, args[0])
                elif probe.is_test_set(args[0]):
                    probe.test_inputs[probe.model_id(model)] = args[0]
            return result

        return call

    def _wrap_train_on_batch(self, original):
        probe = self

        @functools.wraps(original)
        def train_on_batch(model, *args, **kwargs):
            bound = bind(original, model, args, kwargs)
            loop = probe.batch_loop(model, bound)
            probe.phase = "model.train_on_batch"
            x = bound.get("x")
            result, ended = loop.step(lambda: original(model, *args, **kwargs), len(x) if hasattr(x, "__len__") else 0, x)
            probe.phase = "running the program"
            if ended or loop.record["steps"] == 1:  # the scaling is read from the loop's samples in measure()
                if loop.record["steps"] == 1:
                    probe.describe(model)
                probe.trace.save()
            return result

        return train_on_batch

    def batch_loop(self, model: Any, bound: dict[str, Any]) -> BatchLoop:
        """The model's loop of train_on_batch calls, started (a fit record) on its first call."""
        mid = self.model_id(model)
        loop = self.batch_loops.get(mid)
        if loop is None:
            x = bound.get("x")
            record: dict[str, Any] = {
                "model": mid, "loop": "train_on_batch", "epochs_requested": None,
                "batch_size": int(len(x)) if hasattr(x, "__len__") else None, "validation": None,
                "inputs": inputs_of(x, bound.get("y")), "history": {}, "epochs_run": 0, "steps": 0,
                "completed": True, "callbacks": []}
            served = next(iter(self.served.values()), None)
            metrics = [m for m in (self.trace["models"][mid].get("metrics") or []) if m]
            loop = self.batch_loops[mid] = BatchLoop(record, len(served.y_train) if served else None, metrics,
                                                     self.epochs_cap)
            self.trace["fits"].append(record)
        return loop

    def _epoch_callback(self, model, record):
        base = callback_base(model)
        probe = self

        class ProbeEpochs(base):
            def on_epoch_end(self, epoch, logs=None):
                for k, v in (logs or {}).items():
                    record["history"].setdefault(k, []).append(plain(v))
                record["epochs_run"] = epoch + 1
                if epoch == 0:
                    probe.describe(model)
                probe.trace.save()

        return ProbeEpochs()

    # ------------------------------------------------------------ quick mode

    def quick_training(self, model, record) -> list[Any]:
        """Quick mode's bounds on one fit besides the epoch cap: the training-time budget (a
        callback, returned) and batch normalisation's running statistics kept up to date."""
        if not self.epochs_cap:
            return []
        quick_batchnorm(model, record, self.trace)
        from grader.probe.budget import from_session

        budget = from_session()
        return [budget_callback(model, record, budget)] if budget else []

    def _wrap_eval(self, original):
        return self._wrap_inference(original, "evaluate")

    def _wrap_predict(self, original):
        return self._wrap_inference(original, "predict")

    def _wrap_inference(self, original, kind: str):
        probe = self

        @functools.wraps(original)
        def call(model, *args, **kwargs):
            bound = bind(original, model, args, kwargs)
            x = bound.get("x")
            mid = probe.model_id(model)
            record = {"model": mid, "kind": kind, "inputs": inputs_of(x, bound.get("y"))}
            probe.phase = f"model.{kind}"
            result = original(model, *args, **kwargs)
            probe.phase = "running the program"
            if kind == "evaluate":
                record["result"] = plain(result)
            if probe.is_test_set(x):
                probe.test_inputs[mid] = x
                record["on_test_set"] = True
            elif kind == "evaluate" and (is_pipeline(x) or hasattr(x, "class_indices")):
                probe.datasets[(mid, "evaluate")] = x  # a tf.data pipeline, or flow_from_directory's batches
            probe.trace["evaluations"].append(record)
            probe.trace.save()
            return result

        return call

    def is_test_set(self, x: Any) -> bool:
        n = getattr(x, "shape", (None,))[0] if hasattr(x, "shape") else None
        served = list(self.served.values()) + [s for _, s in self.text_calls]
        return any(n == len(s.y_test) for s in served)


# ---------------------------------------------------------------- helpers


def is_pipeline(x: Any) -> bool:
    """A tf.data pipeline (what the probe can read again after the program)."""
    return hasattr(x, "as_numpy_iterator") and hasattr(x, "element_spec")


def first_inputs(dataset: Any, limit: int) -> np.ndarray | None:
    """Up to `limit` model inputs a tf.data pipeline yields ((x, y) elements or x alone),
    joined; None when they are not arrays of one shape or the pipeline fails."""
    parts, n = [], 0
    try:
        for element in dataset.as_numpy_iterator():
            x = element[0] if isinstance(element, (tuple, list)) else element
            if not isinstance(x, np.ndarray) or x.ndim == 0:
                return None
            parts.append(x)
            n += len(x)
            if n >= limit:
                break
        if not parts or len({p.shape[1:] for p in parts}) != 1:
            return None
        return np.concatenate(parts)[:limit]
    except Exception:
        return None


def bind(fn, model, args, kwargs) -> dict[str, Any]:
    try:
        b = inspect.signature(fn).bind_partial(model, *args, **kwargs)
        merged = dict(b.arguments)
        merged.update(merged.pop("kwargs", {}) or {})
        return merged
    except TypeError:
        return dict(kwargs)


def bound_kwargs(fn, model, args, kwargs) -> dict[str, Any]:
    """Positional arguments turned into keywords, so one of them can be changed."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]
    out = {p.name: a for p, a in zip(params, args)}
    out.update(kwargs)
    return out


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def name_of(obj: Any) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return repr({k: name_of(v) for k, v in obj.items()})
    return getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__


def learning_rate(opt: Any) -> Any:
    lr = getattr(opt, "learning_rate", None)
    if lr is None:
        return None
    if callable(lr) and not hasattr(lr, "numpy") and not hasattr(lr, "value"):
        return {"schedule": type(lr).__name__, "config": plain(getattr(lr, "get_config", dict)())}
    for get in (lambda v: float(v.numpy()), lambda v: float(v), lambda v: float(v.value)):
        try:
            return round(get(lr), 8)
        except Exception:
            continue
    return repr(lr)[:100]


def shape_of(shape: Any) -> Any:
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return repr(shape)


def flat_layers(model: Any) -> list[Any]:
    """Layers in order, with nested models (e.g. an augmentation block) opened up."""
    out = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def describe_layer(layer: Any) -> dict[str, Any]:
    try:
        config = layer.get_config()
    except Exception:
        config = {}
    info: dict[str, Any] = {"type": type(layer).__name__, "name": layer.name,
                            "config": {k: plain(config[k]) for k in LAYER_KEYS if k in config}}
    if isinstance(info["config"].get("activation"), dict):  # serialised activation objects
        info["config"]["activation"] = info["config"]["activation"].get("config", {}).get("name")
    try:
        info["params"] = int(layer.count_params())
    except Exception:
        info["params"] = None
    for get in (lambda l: l.output.shape, lambda l: l.output_shape):
        try:
            info["output_shape"] = shape_of(get(layer))
            break
        except Exception:
            continue
    inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
    if inner is not None:  # Bidirectional / TimeDistributed: which layer they wrap
        info["wraps"] = type(inner).__name__
    info["trainable_output"] = info["type"] == "Dense"
    info["augmentation"] = info["type"] in AUGMENTATION_LAYERS
    return info


KERAS_PACKAGES = ("keras", "tf_keras")


QUICK_BN_MOMENTUM = 0.9  # running statistics averaged over about 10 steps


def quick_batchnorm(model: Any, record: dict[str, Any], trace: Trace) -> None:
    """Quick mode: BatchNormalization's running mean and variance follow the last ~10 steps
    (momentum 0.9) instead of Keras' default ~100 (0.99). A run of a few hundred steps
    otherwise ends with statistics of weights long gone, and the model in inference mode
    measures far below what it learned (Program 4 with batch norm: 53% against 93% with
    batch statistics, after 2 quick epochs); a full run's thousands of steps never see it."""
    changed = []
    for layer in flat_layers(model):
        momentum = getattr(layer, "momentum", None)
        if "BatchNormalization" in type(layer).__name__ and isinstance(momentum, float) \
                and momentum > QUICK_BN_MOMENTUM:
            layer.momentum = QUICK_BN_MOMENTUM
            changed.append(momentum)
    if changed:
        record["quick_batchnorm"] = {"layers": len(changed), "momentum": QUICK_BN_MOMENTUM,
                                     "was": sorted(set(changed))}
        trace.note(f"quick mode: {len(changed)} BatchNormalization layer(s) keep running statistics "
                   f"with momentum {QUICK_BN_MOMENTUM} (was {max(changed)}) for a short run")


def budget_callback(model: Any, record: dict[str, Any], budget: Any):
    """A callback that stops the fit cleanly once quick mode's training-time budget is used:
    checked after every batch, also inside the first epoch; Keras still ends the epoch
    (history, validation), keeps what was learned and returns."""
    base = callback_base(model)

    class QuickBudget(base):
        epoch = 0

        def on_train_begin(self, logs=None):
            budget.start()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if budget.spent():
                model.stop_training = True
                if "stopped_by_budget" not in record:
                    record["stopped_by_budget"] = budget.stop_record(self.epoch + 1, batch + 1)
                    record["cap"] = budget.cap_message(self.epoch + 1, batch + 1)

        def on_train_end(self, logs=None):
            budget.pause()

    return QuickBudget()


def callback_base(model: Any) -> type:
    """The Callback class of the Keras the model belongs to, read from the first class in its
    MRO that Keras defines: a student's subclass of keras.Model is defined in __main__ (or any
    module of the student's), so the model's own class cannot say which Keras it is."""
    for cls in type(model).__mro__:
        package = (getattr(cls, "__module__", None) or "").split(".")[0]
        if package in KERAS_PACKAGES:
            return importlib.import_module(f"{package}.callbacks").Callback
    return importlib.import_module("keras.callbacks").Callback


def trainable_summary(model: Any) -> dict[str, Any]:
    """What this fit trains: the parameters it updates and those it keeps (frozen layers), and
    the layers with weights that train (a pretrained base frozen or fine-tuned)."""
    def count(weights: Any) -> int:
        try:
            return int(sum(int(np.prod(w.shape)) for w in weights))
        except Exception:
            return 0

    return {"trainable": count(getattr(model, "trainable_weights", [])),
            "frozen": count(getattr(model, "non_trainable_weights", [])),
            "trainable_layers": [l.name for l in flat_layers(model) if l.trainable and l.weights][:500]}


def validation_of(bound: dict[str, Any]) -> Any:
    if bound.get("validation_data") is not None:
        return "validation_data"
    split = bound.get("validation_split") or 0
    return f"split {split}" if split else None


def inputs_of(x: Any, y: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": type(x).__name__}
    if hasattr(x, "shape"):
        info.update(kind="array", shape=shape_of(x.shape), dtype=str(getattr(x, "dtype", "")))
        try:
            sample = x[:256]
            info["max"] = round(float(sample.max()), 4)
            info["mean"] = round(float(sample.mean()), 4)
        except Exception:
            pass
    gen = getattr(x, "image_data_generator", None)
    if gen is not None:  # ImageDataGenerator.flow(...)
        info["augmentation"] = {k: plain(getattr(gen, k, None)) for k in
                                ("rotation_range", "width_shift_range", "height_shift_range",
                                 "horizontal_flip", "zoom_range", "shear_range")}
        info["augmentation_from"] = "ImageDataGenerator"
    if hasattr(y, "shape"):
        info["y_shape"] = shape_of(y.shape)
    return info
