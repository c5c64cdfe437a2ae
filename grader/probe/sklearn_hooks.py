"""Instrumentation of scikit-learn installed before the student's code.

Serves ``fetch_openml("CIFAR_10_small")`` / ``("CIFAR_10")`` (and their data ids 40926 /
40927) from the provider, as OpenML holds them (see provider.openml_table). With
``as_frame="auto"`` scikit-learn returns pandas objects, so the probe does where pandas is
installed; without pandas (where scikit-learn itself would fail) it returns arrays, so the
manual's ``.astype('float32')`` / ``.astype('int')`` still work.

Records every estimator that is fit (class, parameters, training size) and what its
score()/predict() calls returned; tracks ``train_test_split`` of the served table by
splitting an index array alongside the program's arrays, so the held-out rows are known
exactly; afterwards measures the last fitted estimator itself.

How the measurement finds the true labels of the rows the program scored on, in order:
the rows' own pixels when nobody scaled them (matched against the OpenML table and the
served images, flattened channels last or first); rows that were scaled, normalised or
standardised, from whichever loader served them (the served test or training images in
order under one affine map per feature, or in any order under an increasing map per
channel, flattened channels last or first); else the part of the recorded split with that
many rows (scaling keeps the row order). Accuracy is the estimator's predictions
on the program's own X_test against those canonical labels; the labels the program passed
are compared with them ("labels_agree"). A split of arrays that were not the served table
in served order is used only where the program's labels mostly agree with it. Rows that
cannot be traced are scored against the program's own labels, and the measurement says so.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from grader.probe import layouts, provider
from grader.probe.layouts import affine_fit, within_a_level
from grader.probe.trace import Trace, plain
from grader.probe.transforms import STEP_CLASSES

WRAPPED = ("fit", "predict", "score", "transform", "fit_transform")
MIXINS = ("ClassifierMixin", "RegressorMixin", "TransformerMixin")
MAX_CALLS = 200  # score/predict records kept per estimator
MAX_LINKS = 8  # transformer outputs remembered (each keeps the rows it started from alive)


class SklearnProbe:
    def __init__(self, trace: Trace, served_loader, dataset: str | None = None):
        self.trace = trace
        self.load_served = served_loader
        self.dataset = dataset  # the rubric's dataset: rows of raw pixels are matched against it
        self.phase = "running the program"
        self.estimators: list[Any] = []  # strong refs, index = id in trace["estimators"]
        self.table: dict[str, Any] | None = None  # the served OpenML table
        self.split: dict[str, np.ndarray] | None = None  # served-row indices per split part
        self.inputs: dict[int, list] = {}  # estimator id -> [(kind, X, y, predictions)]
        self.fit_x: dict[int, Any] = {}
        # id(output) -> (weakref to output, the transformers that made it, the rows they started from)
        self.links: OrderedDict[int, tuple[Any, Any, tuple[str, Any]]] = OrderedDict()
        self.local = threading.local()
        trace.data.setdefault("estimators", [])

    # ------------------------------------------------------------ installation

    def install(self) -> None:
        import sklearn
        import sklearn.base as base
        import sklearn.datasets
        import sklearn.model_selection

        self.trace["frameworks"]["sklearn"] = sklearn.__version__
        for name in MIXINS:
            self._patch_class(getattr(base, name))
        for cls in all_subclasses(base.BaseEstimator):
            self._patch_class(cls)
        self._hook_new_classes(base.BaseEstimator)
        fetch = self._fetch_openml(sklearn.datasets.fetch_openml)
        for mod in (sklearn.datasets, inspect.getmodule(sklearn.datasets.fetch_openml)):
            mod.fetch_openml = fetch
        split = self._train_test_split(sklearn.model_selection.train_test_split)
        for mod in (sklearn.model_selection, inspect.getmodule(sklearn.model_selection.train_test_split)):
            mod.train_test_split = split

    def _hook_new_classes(self, root: type) -> None:
        """Estimator classes defined after installation (modules imported later) are patched
        as they are created."""
        original = inspect.getattr_static(root, "__init_subclass__")
        probe = self

        def init_subclass(cls, **kwargs):
            original.__get__(None, cls)(**kwargs)
            probe._patch_class(cls)

        root.__init_subclass__ = classmethod(init_subclass)

    def _patch_class(self, cls: type) -> None:
        for method in WRAPPED:
            fn = cls.__dict__.get(method)
            # available_if methods (a pipeline's predict/score) are descriptors holding .fn
            holder, fn = (cls, fn) if callable(fn) else (fn, getattr(fn, "fn", None))
            if callable(fn) and not getattr(fn, "_grader_probe", False):
                wrapped = getattr(self, f"_wrap_{method}")(fn)
                wrapped._grader_probe = True
                setattr(holder, method if holder is cls else "fn", wrapped)

    # ------------------------------------------------------------ datasets

    def _fetch_openml(self, original):
        probe = self

        @functools.wraps(original)
        def fetch_openml(name=None, *, version="active", data_id=None, data_home=None,
                         target_column="default-target", cache=True, return_X_y=False,
                         as_frame="auto", n_retries=3, delay=1.0, parser="auto", read_csv_kwargs=None):
            table = provider.openml_name(name, data_id)
            if table is None:
                raise OSError(f"fetch_openml(name={name!r}, data_id={data_id!r}) cannot be served: the "
                              "grading sandbox has no network and serves only CIFAR_10 and CIFAR_10_small")
            return probe.serve_table(table, return_X_y, as_frame)

        return fetch_openml

    def serve_table(self, table: str, return_X_y: bool, as_frame: Any):
        from sklearn.utils import Bunch

        served = self.load_served("cifar10")
        pixels, labels = provider.openml_table(served, table)
        self.table = {"name": table, "pixels": pixels, "labels": labels, "served": served}
        info = served.info()
        info.update(openml=table, rows=int(len(labels)))
        self.trace["dataset"] = info
        self.trace.save()
        features = [f"a{i}" for i in range(pixels.shape[1])]
        target = labels.astype(str).astype(object)
        data, frame = pixels.astype(np.float64), None
        if as_frame is True or (as_frame == "auto" and has_pandas()):
            import pandas as pd  # as_frame=True without pandas fails as it does in scikit-learn

            data = pd.DataFrame(data, columns=features)
            target = pd.Series(pd.Categorical(target, categories=[str(c) for c in range(10)]), name="class")
            frame = pd.concat([data, target], axis=1)
        if return_X_y:
            return data, target
        openml_id = {v: k for k, v in provider.OPENML_IDS.items()}[table]
        return Bunch(data=data, target=target, frame=frame, categories=None, feature_names=features,
                     target_names=["class"], DESCR=f"{table}: {served.describe()}, served offline by the grader",
                     details={"name": table, "id": openml_id, "served_by": "grader"},
                     url=f"https://www.openml.org/d/{openml_id}")

    def _train_test_split(self, original):
        probe = self

        @functools.wraps(original)
        def train_test_split(*arrays, **options):
            rows = len(probe.table["labels"]) if probe.table is not None else None
            if not arrays or not hasattr(arrays[0], "__len__") or len(arrays[0]) != rows:
                return original(*arrays, **options)
            # An index array split alongside says exactly which rows went where.
            parts = original(*arrays, np.arange(rows), **options)
            in_order = probe.is_table(arrays[0])
            probe.split = {"train": np.asarray(parts[-2]), "test": np.asarray(parts[-1]), "in_served_order": in_order}
            probe.trace["split"] = {"train": len(parts[-2]), "test": len(parts[-1]), "in_served_order": in_order,
                                    "options": {k: plain(v) for k, v in options.items() if k != "stratify"}}
            return parts[:-2]

        return train_test_split

    def is_table(self, x: Any) -> bool:
        """Whether x holds the served table's rows in served order (any dtype)."""
        if self.table is None or not hasattr(x, "shape") or x.shape != self.table["pixels"].shape:
            return False
        probe_rows = [0, len(x) // 2, len(x) - 1]
        try:
            return bool(np.allclose(as_array(x)[probe_rows], self.table["pixels"][probe_rows]))
        except Exception:
            return False

    # ------------------------------------------------------------ estimators

    def estimator_id(self, est: Any) -> int:
        for i, e in enumerate(self.estimators):
            if e is est:
                return i
        self.estimators.append(est)
        self.trace["estimators"].append({"id": len(self.estimators) - 1, "class": type(est).__name__,
                                         "part": part_of(est), "fits": [], "calls": []})
        return len(self.estimators) - 1

    def known_id(self, est: Any) -> int | None:
        return next((i for i, e in enumerate(self.estimators) if e is est), None)

    def _outermost(self) -> bool:
        return getattr(self.local, "depth", 0) == 0

    def _enter(self) -> bool:
        outer = self._outermost()
        self.local.depth = getattr(self.local, "depth", 0) + 1
        return outer

    def _leave(self) -> None:
        self.local.depth -= 1

    def _wrap_fit(self, original):
        probe = self

        @functools.wraps(original)
        def fit(est, X=None, *args, **kwargs):
            outer = probe._enter()
            try:
                result = original(est, X, *args, **kwargs)
            finally:
                probe._leave()
            if outer and hasattr(est, "predict"):
                probe.record_fit(est, X)
            return result

        return fit

    def _wrap_transform(self, original):
        probe = self

        @functools.wraps(original)
        def transform(est, X, *args, **kwargs):
            outer = probe._enter()
            try:
                result = original(est, X, *args, **kwargs)
            finally:
                probe._leave()
            if outer and type(est).__name__ in STEP_CLASSES:
                probe.record_transform(est, X, result)
            return result

        return transform

    _wrap_fit_transform = _wrap_transform

    def record_transform(self, est: Any, X: Any, out: Any) -> None:
        """Remembers that `est` made `out` from X, to trace a KNN's rows back to the data: the
        transformers so far and the rows before the first of them (kept alive; outputs are
        only weakly referenced)."""
        chain, rows = self.transformed_from(X)
        try:
            self.links[id(out)] = (weakref.ref(out), chain + [est], rows)
        except TypeError:  # an output that cannot be weakly referenced is not traced
            return
        self.links.move_to_end(id(out))
        while len(self.links) > MAX_LINKS:
            self.links.popitem(last=False)

    def transformed_from(self, X: Any) -> tuple[list[Any], Any]:
        """(the transformers that made X, first to last; the rows they started from)."""
        link = self.links.get(id(X))
        return (link[1], link[2]) if link is not None and link[0]() is X else ([], X)

    def record_fit(self, est: Any, X: Any) -> None:
        entry = self.trace["estimators"][self.estimator_id(est)]
        entry["params"] = safe_params(est)
        shape = getattr(X, "shape", None)
        entry["fits"].append({"n": int(shape[0]) if shape else None,
                              "features": int(shape[1]) if shape is not None and len(shape) > 1 else None,
                              "on_served_table": self.is_table(X),
                              "split_part": self.split_part(X)})
        self.fit_x[entry["id"]] = X
        self.trace.save()

    def _wrap_predict(self, original):
        probe = self

        @functools.wraps(original)
        def predict(est, X, *args, **kwargs):
            outer = probe._enter()
            try:
                result = original(est, X, *args, **kwargs)
            finally:
                probe._leave()
            probe.remember(est, "predict", X, None, result)
            if outer and hasattr(X, "shape"):
                probe.record_call(est, "predict", X, None)
            return result

        return predict

    def _wrap_score(self, original):
        probe = self

        @functools.wraps(original)
        def score(est, X, y=None, *args, **kwargs):
            outer = probe._enter()
            try:
                result = original(est, X, y, *args, **kwargs)
            finally:
                probe._leave()
            if outer and hasattr(est, "predict"):
                probe.remember(est, "score", X, y, None)
                probe.record_call(est, "score", X, result)
            return result

        return score

    def remember(self, est: Any, kind: str, X: Any, y: Any, predictions: Any) -> None:
        """Keeps what the estimator was asked about (predictions of a score() come from the
        predict() it calls on the same X)."""
        mid = self.known_id(est)
        if mid is None:  # an estimator inside another one (a pipeline's step)
            return
        kept = self.inputs.setdefault(mid, [])
        for item in kept:
            if item[1] is X:
                item[2] = y if y is not None else item[2]
                item[3] = predictions if predictions is not None else item[3]
                item[0] = kind if kind == "score" else item[0]
                return
        kept.append([kind, X, y, predictions])
        del kept[:-4]  # the last few inputs are enough; old arrays may be large

    def record_call(self, est: Any, kind: str, X: Any, result: Any) -> None:
        entry = self.trace["estimators"][self.estimator_id(est)]
        if len(entry["calls"]) >= MAX_CALLS:
            return
        call = {"kind": kind, "n": int(len(X)) if hasattr(X, "__len__") else None,
                "split_part": self.split_part(X)}
        if kind == "score":
            call["result"] = plain(result)
        entry["calls"].append(call)
        self.trace.save()

    def split_part(self, X: Any) -> str | None:
        """Which part of the recorded split X has the length of (rows keep their order)."""
        n = len(X) if hasattr(X, "__len__") else None
        if self.split is None or n is None:
            return None
        hits = [k for k in ("train", "test") if len(self.split[k]) == n]
        return hits[0] if len(hits) == 1 else None

    # ------------------------------------------------------------ measurement

    def measure(self) -> dict[str, Any] | None:
        fitted = [e for e in self.trace["estimators"] if e["fits"]]
        if not fitted:
            return None
        entry = fitted[-1]
        mid = entry["id"]
        result: dict[str, Any] = {"part": entry["part"], "framework": "sklearn", "estimator": mid,
                                  "class": entry["class"], "trained": True, "split": "test"}
        if self.table is not None:
            result.update(dataset=self.table["served"].name, table=self.table["name"])
        scored = [c for c in entry["calls"] if c["kind"] == "score"]
        if scored:
            result["reported"] = scored[-1].get("result")
        held_out = [item for item in self.inputs.get(mid, []) if item[1] is not self.fit_x.get(mid)]
        if not held_out:
            result["error"] = "the estimator was never asked to predict or score held-out samples"
            return result
        # the test rows: what score() judged, the split's test part, the most rows (not the last
        # few rows a program predicts to print them)
        _, X, y, predictions = max(held_out, key=lambda item: (
            item[0] == "score", self.split_part(item[1]) == "test", len(item[1]) if hasattr(item[1], "__len__") else 0))
        if predictions is None:
            predictions = self.own_predict(self.estimators[mid], X)
        predictions = np.asarray(predictions).reshape(-1)
        result["n"] = int(len(predictions))
        result.update(self.judge(X, None if y is None else as_array(y).reshape(-1), predictions))
        try:
            self.describe_for_export(mid, X)
        except Exception as e:  # the in-process measurement stands; the export says why not
            self.measured = {"model": None, "part": "knn", "framework": "sklearn", "dataset": self.dataset,
                             "error": f"{type(e).__name__}: {e}"[:300]}
        return result

    def own_predict(self, est: Any, X: Any) -> Any:
        self._enter()  # the harness's own call: not recorded as the program's
        try:
            return est.predict(X)
        finally:
            self._leave()

    def judge(self, X: Any, y: np.ndarray | None, predictions: np.ndarray) -> dict[str, Any]:
        """Accuracy of the predictions against the canonical labels of X's rows (else y's)."""
        rows, truth, how, trusted = self.truth_of(X)
        agree = accuracy(y, truth) if truth is not None and y is not None else None
        if truth is not None and not trusted and (agree is None or agree < 0.9):
            truth = rows = None  # rows assumed in served order, and the program's labels say otherwise
        self.held_out_rows = rows
        if truth is None:
            if y is None:
                return {"error": "the held-out rows could not be traced to the served data and no labels were passed"}
            return {"accuracy": accuracy(predictions, y), "labels_verified": False,
                    "method": "predictions on the program's own X_test against the program's own labels "
                              "(the rows could not be traced to the served data)"}
        out = {"accuracy": accuracy(predictions, truth), "labels_verified": True,
               "method": f"predictions on the program's own X_test against the canonical labels ({how})"}
        if y is not None:
            out.update(labels_agree=agree, accuracy_own_labels=accuracy(predictions, y))
        ints = as_ints(predictions)
        if ints is not None and len(ints) and ints.min() >= 0:
            out["predicted_class_share"] = np.bincount(ints, minlength=10).tolist()
        return out

    def truth_of(self, X: Any) -> tuple[np.ndarray | None, np.ndarray | None, str, bool]:
        """X's rows as indices into the served images (training then test, as the OpenML
        table orders them), their canonical labels, how they were found, and whether that
        holds whatever labels the program passed (False: only if those mostly agree)."""
        x = as_array(X)
        for pixels, name in self.reference_tables(x):
            rows = content_rows(x, pixels)
            if rows is not None:
                return rows, self.all_labels()[rows], f"rows matched by their pixels in {name}", True
        part = self.split_part(X)
        if part is not None and self.split["in_served_order"]:
            return self.split_rows(part)
        for images, offset, name in self.served_images(x):
            found = normalised_rows(x, images)
            if found is not None:
                rows, how = found
                return rows + offset, self.all_labels()[rows + offset], f"rows matched to {name} ({how})", True
        return self.split_rows(part) if part is not None else (None, None, "", False)

    def split_rows(self, part: str) -> tuple[np.ndarray, np.ndarray, str, bool]:
        """One part of the recorded split and its labels (scaling keeps the row order)."""
        trusted = bool(self.split["in_served_order"])
        how = f"the {part} part of the program's train_test_split of the served table"
        rows = self.split[part]
        return rows, self.table["labels"][rows], how + ("" if trusted else ", rows in served order"), trusted

    def served(self):
        return self.table["served"] if self.table is not None else self.load_served(self.dataset)

    def all_images(self) -> np.ndarray:
        """The served images, training then test (N, H, W[, C]) uint8: what rows index."""
        return self.all_served()[0]

    def all_labels(self) -> np.ndarray:
        return self.all_served()[1]

    def all_served(self) -> tuple[np.ndarray, np.ndarray]:
        """Training then test images and labels, joined once per served dataset (a full run's
        60000 images are 184 MB: not to be copied for each lookup)."""
        served = self.served()
        if getattr(self, "_joined", (None,))[0] is not served:
            self._joined = (served, np.concatenate([served.x_train, served.x_test]),
                            np.concatenate([served.y_train.reshape(-1), served.y_test.reshape(-1)]).astype(np.int64))
        return self._joined[1:]

    def reference_tables(self, x: np.ndarray):
        """Served images as rows (the OpenML table; the dataset's images flattened channels
        last and channels first), for rows that still hold raw pixels."""
        if not looks_raw(x):
            return
        if self.table is not None:
            yield self.table["pixels"], f"the {self.table['name']} table"
        if self.dataset not in provider.SPECS:
            return
        images = self.all_images()
        yield images.reshape(len(images), -1), f"the served {self.dataset} images"
        if images.ndim == 4:
            yield images.transpose(0, 3, 1, 2).reshape(len(images), -1), \
                f"the served {self.dataset} images (channels first)"

    def served_images(self, x: np.ndarray):
        """The served images (test set, then training set) with their offset into
        all_images, for rows that are no longer raw pixels: scaled, normalised or
        standardised, from any loader of the dataset."""
        if looks_raw(x) or x.ndim != 2 or x.dtype.kind not in "iuf" or self.dataset not in provider.SPECS:
            return
        served = self.load_served(self.dataset)
        for images, offset, split in ((served.x_test, len(served.x_train), "test"), (served.x_train, 0, "training")):
            if images.dtype == np.uint8 and images.ndim in (3, 4):
                yield images, offset, f"the served {self.dataset} {split} images"

    # ------------------------------------------------------------ export

    def describe_for_export(self, mid: int, X: Any) -> None:
        """What the trusted re-measurement needs (grader/probe/export.py): the KNN, the served
        images its held-out and training rows are, and the rows it received for them. Rows
        that a scaler or PCA made are traced back through them (the transformers travel too)."""
        from sklearn.neighbors import KNeighborsClassifier

        est = self.estimators[mid]
        final = est.steps[-1][1] if isinstance(getattr(est, "steps", None), list) else est
        rows = getattr(self, "held_out_rows", None)
        if rows is None or not isinstance(final, KNeighborsClassifier):
            return
        images = self.all_images()
        features = as_array(X) if final is est else est[:-1].transform(X)
        description = layouts.describe(features, images[rows])
        fit_rows = None if description is None else rows_under(np.asarray(final._fit_X), description, images)
        steps: list[Any] = []
        if fit_rows is None:
            steps, test_rows, fit_x = self.steps_before(mid, est, X)
            description = layouts.describe(as_array(test_rows), images[rows]) if steps else None
            fit_rows = None if description is None else rows_under(as_array(fit_x), description, images)
        self.measured = {"model": None, "part": "knn", "framework": "sklearn", "object": final,
                         "dataset": self.served().name, "inputs": features, "raw": images[rows],
                         "preprocess": description, "served_rows": rows, "fit_rows": fit_rows, "steps": steps}

    def steps_before(self, mid: int, est: Any, X: Any) -> tuple[list[Any], Any, Any]:
        """(transformers, the rows they started from for the test rows, for the training rows):
        a pipeline's own steps, or the transformers recorded making the KNN's rows, which
        must be the same for both; ([], None, None) when there are none."""
        if isinstance(getattr(est, "steps", None), list):
            steps = [s for _, s in est.steps[:-1] if s not in (None, "passthrough")]
            return steps, X, self.fit_x.get(mid)
        steps, test_rows = self.transformed_from(X)
        fit_steps, fit_x = self.transformed_from(self.fit_x.get(mid))
        if [id(s) for s in steps] != [id(s) for s in fit_steps]:
            raise ValueError("the KNN's training and test rows went through different transformers")
        return steps, test_rows, fit_x


# ---------------------------------------------------------------- normalised rows
# A program may scale (/255), normalise per channel (torchvision's Normalize) or standardise
# per feature (StandardScaler) before the KNN, and flatten channels last (NumPy, Keras) or
# channels first (torch tensors). Such rows are found among the served images in two ways:
# in served order (any affine map per feature), or in any order (any increasing map per
# channel: a pixel's rank among the pixels of its channel in its image does not change).

LAYOUTS = ("channels last", "channels first")
AFFINE_SAMPLE = 256  # rows the per-feature affine map is fitted on
SIGNATURE_PIXELS = 128  # pixels per channel in an image's rank signature
AMBIGUOUS = -1


def normalised_rows(x: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, str] | None:
    """(indices of x's rows among the images, how) when every row is a transformed image."""
    if x.shape[1] != images[0].size or not len(x):
        return None
    layout = affine_in_order(x, images)
    if layout is not None:
        return np.arange(len(x)), f"in order, one affine map per feature, flattened {layout}"
    for layout in LAYOUTS if images.ndim == 4 else LAYOUTS[:1]:
        rows = rank_matched(x, images, layout)
        if rows is not None:
            return rows, f"any order, by each channel's pixel ranks, flattened {layout}"
    return None


def flat(images: np.ndarray, layout: str) -> np.ndarray:
    """Images (N, H, W[, C]) as rows, channels last or channels first."""
    if images.ndim == 4 and layout == "channels first":
        images = images.transpose(0, 3, 1, 2)
    return images.reshape(len(images), -1)


def affine_in_order(x: np.ndarray, images: np.ndarray) -> str | None:
    """The layout in which x's rows are the first len(x) images in order, each feature under
    one affine map (x = a*pixel + b, a != 0), else None."""
    n = len(x)
    if n > len(images):
        return None
    sample = np.unique(np.linspace(0, n - 1, min(n, AFFINE_SAMPLE)).astype(np.int64))
    for layout in LAYOUTS if images.ndim == 4 else LAYOUTS[:1]:
        fit = affine_fit(x[sample].astype(np.float64), flat(images[sample], layout).astype(np.float64))
        if fit is not None and affine_holds(x, images, layout, *fit):
            return layout
    return None


def affine_holds(x: np.ndarray, images: np.ndarray, layout: str, a, b, varying, chunk: int = 2000) -> bool:
    """The fitted map holds for every row, not only the sample it was fitted on."""
    for start in range(0, len(x), chunk):
        stop = min(start + chunk, len(x))
        raw = flat(images[start:stop], layout).astype(np.float64)
        if not within_a_level(x[start:stop].astype(np.float64), raw, a, b, varying):
            return False
    return True


def channel_pixels(rows: np.ndarray, channels: int, layout: str) -> np.ndarray:
    """(N, C, K): K pixels spread over the image, per channel, from rows in a layout."""
    n = len(rows)
    pixels = rows.shape[1] // channels
    picked = np.unique(np.linspace(0, pixels - 1, min(pixels, SIGNATURE_PIXELS)).astype(np.int64))
    if layout == "channels first":
        return rows.reshape(n, channels, pixels)[:, :, picked]
    return rows.reshape(n, pixels, channels)[:, picked, :].transpose(0, 2, 1)


def dense_ranks(v: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values of its last axis (ties share a rank)."""
    order = np.argsort(v, axis=-1, kind="stable")
    ordered = np.take_along_axis(v, order, -1)
    rises = np.diff(ordered, axis=-1) > 0
    steps = np.concatenate([np.zeros(rises.shape[:-1] + (1,), np.int16), rises.astype(np.int16)], -1).cumsum(-1)
    ranks = np.empty_like(steps)
    np.put_along_axis(ranks, order, steps, -1)
    return ranks


def signatures(rows: np.ndarray, channels: int, layout: str, chunk: int = 5000) -> list[bytes]:
    out: list[bytes] = []
    for start in range(0, len(rows), chunk):
        ranks = dense_ranks(channel_pixels(rows[start:start + chunk], channels, layout)).astype(np.uint8)
        out.extend(r.tobytes() for r in ranks.reshape(len(ranks), -1))
    return out


def rank_matched(x: np.ndarray, images: np.ndarray, layout: str) -> np.ndarray | None:
    """Indices of x's rows among the images, matched by rank signatures, or None when a row
    has no image or more than one (e.g. blank images)."""
    channels = images.shape[-1] if images.ndim == 4 else 1
    index: dict[bytes, int] = {}
    for i, sig in enumerate(signatures(flat(images, "channels last"), channels, "channels last")):
        index[sig] = AMBIGUOUS if sig in index else i
    rows = [index.get(sig) for sig in signatures(x, channels, layout)]
    if any(r is None or r == AMBIGUOUS for r in rows):
        return None
    return np.asarray(rows)


def rows_under(x: np.ndarray, description: dict[str, Any], images: np.ndarray, chunk: int = 4000
               ) -> np.ndarray | None:
    """Indices of the images whose rows under `description` (a flattened layout) are x's
    rows, in any order, found by undoing the affine map; None unless every row is one."""
    channels = layouts.as_nhwc(images[:1]).shape[-1]
    index = np.broadcast_to(np.arange(channels), layouts.as_nhwc(images[:1]).shape)
    per = np.arange(x.shape[1]) if description.get("per") == "feature" else \
        layouts.arrange(index, description["layout"]).reshape(-1)
    scale = np.asarray(description["scale"], np.float64)[per]
    shift = np.asarray(description["shift"], np.float64)[per]
    known = np.abs(scale) > 0  # features the map keeps
    where: dict[bytes, int] = {}
    for start in range(0, len(images), chunk):
        flat_rows = layouts.arrange(layouts.as_nhwc(images[start:start + chunk]), description["layout"])
        for i, row in enumerate(flat_rows.reshape(len(flat_rows), -1)[:, known]):
            where.setdefault(row.tobytes(), start + i)
    found = []
    for start in range(0, len(x), chunk):
        raw = (x[start:start + chunk, known].astype(np.float64) - shift[known]) / scale[known]
        levels = np.round(raw)
        if np.abs(raw - levels).max(initial=0) > 0.25 or levels.min(initial=0) < 0 or levels.max(initial=0) > 255:
            return None
        found.extend(where.get(r.tobytes()) for r in levels.astype(np.uint8))
    return None if any(r is None for r in found) else np.asarray(found)


# ---------------------------------------------------------------- helpers


def all_subclasses(cls: type) -> list[type]:
    out, todo = [], list(cls.__subclasses__())
    while todo:
        c = todo.pop()
        if c not in out:
            out.append(c)
            todo.extend(c.__subclasses__())
    return out


def has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def as_array(x: Any) -> np.ndarray:
    return np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)


def as_ints(values: np.ndarray) -> np.ndarray | None:
    try:
        return np.asarray(values).astype(np.float64).astype(np.int64)
    except (TypeError, ValueError):
        return None


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """Share of equal labels; labels given as strings ("3") and numbers (3) compare equal."""
    if len(predicted) != len(truth) or not len(truth):
        return None
    a, b = as_ints(predicted), as_ints(truth)
    if a is None or b is None:
        a, b = np.asarray(predicted).astype(str), np.asarray(truth).astype(str)
    return round(float((a == b).mean()), 6)


def looks_raw(x: np.ndarray) -> bool:
    """2-D rows of whole numbers in 0..255 (pixels nobody scaled)."""
    if x.ndim != 2 or not len(x) or x.dtype.kind not in "iuf":
        return False
    return bool(x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)))


def content_rows(x: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
    """Indices of x's rows among the pixel rows when every one is there, else None."""
    if x.shape[1] != pixels.shape[1]:
        return None
    where = {hash(row.tobytes()): i for i, row in enumerate(pixels)}
    rows = [where.get(hash(r.tobytes())) for r in x.astype(np.uint8)]
    return None if any(r is None for r in rows) else np.asarray(rows)


def part_of(est: Any) -> str:
    """"knn" for a KNN classifier (also as a pipeline's last step), else the class name."""
    steps = getattr(est, "steps", None)
    final = steps[-1][1] if isinstance(steps, list) and steps and isinstance(steps[-1], tuple) else est
    name = type(final).__name__
    return "knn" if name.startswith("KNeighbors") else type(est).__name__.lower()


def safe_params(est: Any) -> dict[str, Any]:
    try:
        params = est.get_params(deep=False)
    except Exception:
        return {}
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else type(v).__name__
            for k, v in params.items()}
