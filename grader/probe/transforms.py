"""scikit-learn transformers a KNN's rows went through (scalers, PCA), written as data and
applied again without scikit-learn's objects.

A program may scale, standardise or project its rows with PCA before a KNN. The probe
records which fitted transformers made the rows the KNN was fitted and scored on
(sklearn_hooks), the export writes each as plain arrays (steps.json, steps.npz), the host
checks them (grader/trusted.py) and the clean sandbox applies them to the host's own images
(grader/clean) before refitting the KNN. Each step is one of three operations:

* "affine": x * scale + shift, per feature (StandardScaler, MinMaxScaler, MaxAbsScaler);
* "project": (x - mean) @ components.T / divisor (PCA, divisor 1 unless whitened);
* "normalize": each row divided by its l1, l2 or max norm (Normalizer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

STEP_CLASSES = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "Normalizer", "PCA")
ARRAYS = {"affine": ("scale", "shift"), "project": ("mean", "components", "divisor"), "normalize": ()}
NORMS = ("l1", "l2", "max")
MAX_STEPS = 4


def step_of(est: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(spec, arrays) of one fitted transformer; raises ValueError for any other kind.
    Arrays are float64: scale, shift (F,); mean (F,), components (K, F), divisor (K,)."""
    name = type(est).__name__
    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    if name == "StandardScaler":
        n = est.n_features_in_
        scale = f64(est.scale_) if est.with_std else np.ones(n)
        mean = f64(est.mean_) if est.with_mean else np.zeros(n)
        return {"op": "affine"}, {"scale": 1 / scale, "shift": -mean / scale}
    if name == "MinMaxScaler" and not est.clip:
        return {"op": "affine"}, {"scale": f64(est.scale_), "shift": f64(est.min_)}
    if name == "MaxAbsScaler":
        return {"op": "affine"}, {"scale": 1 / f64(est.scale_), "shift": np.zeros(est.n_features_in_)}
    if name == "Normalizer" and est.norm in NORMS:
        return {"op": "normalize", "norm": est.norm}, {}
    if name == "PCA":
        divisor = np.sqrt(f64(est.explained_variance_)) if est.whiten else np.ones(est.n_components_)
        return {"op": "project"}, {"mean": f64(est.mean_), "components": f64(est.components_), "divisor": divisor}
    raise ValueError(f"a {name} between the data and the KNN is not re-measured")


def apply_steps(x: np.ndarray, specs: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """x (N, F) through each step; arrays are named "<step>_<array>" as write_steps names them."""
    x = np.asarray(x, np.float64)
    for i, spec in enumerate(specs):
        a = {name: arrays[f"{i}_{name}"] for name in ARRAYS[spec["op"]]}
        if spec["op"] == "affine":
            x = x * a["scale"] + a["shift"]
        elif spec["op"] == "project":
            x = (x - a["mean"]) @ a["components"].T / a["divisor"]
        else:
            norm = {"l1": np.abs(x).sum(1), "l2": np.sqrt((x * x).sum(1)), "max": np.abs(x).max(1)}[spec["norm"]]
            x = x / np.where(norm == 0, 1, norm)[:, None]
    return x


def write_steps(transformers: list[Any]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Specs and arrays of a chain of fitted transformers, for np.savez(**arrays)."""
    if len(transformers) > MAX_STEPS:
        raise ValueError(f"more than {MAX_STEPS} transformers between the data and the KNN")
    specs, arrays = [], {}
    for i, est in enumerate(transformers):
        spec, named = step_of(est)
        specs.append(spec)
        arrays.update({f"{i}_{k}": v for k, v in named.items()})
    return specs, arrays


def check_steps(specs: Any, arrays: dict[str, np.ndarray]) -> None:
    """Raises ValueError unless the steps are plain and their arrays chain with consistent
    shapes (the first step's width is the preprocessed images')."""
    if not isinstance(specs, list) or len(specs) > MAX_STEPS:
        raise ValueError("the transformers before the KNN are not a short list")
    expected: set[str] = set()
    width = None
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("op") not in ARRAYS or set(spec) - {"op", "norm"} \
                or (spec["op"] == "normalize") != ("norm" in spec) or spec.get("norm", "l2") not in NORMS:
            raise ValueError(f"transformer {i} before the KNN is not one the grader applies")
        names = {f"{i}_{k}" for k in ARRAYS[spec["op"]]}
        expected |= names
        a = {k: arrays.get(f"{i}_{k}") for k in ARRAYS[spec["op"]]}
        if any(v is None or v.dtype != np.float64 for v in a.values()):
            raise ValueError(f"transformer {i} before the KNN lacks its arrays")
        first = next(iter(a.values()), None)
        width = width or (first.shape[-1] if first is not None and first.ndim else None)
        if spec["op"] == "affine" and not (a["scale"].shape == a["shift"].shape == (width,)):
            raise ValueError(f"transformer {i} before the KNN does not fit the rows' width")
        if spec["op"] == "project":
            k = a["components"].shape[0] if a["components"].ndim == 2 else -1
            if a["mean"].shape != (width,) or a["components"].shape != (k, width) or a["divisor"].shape != (k,) \
                    or not 0 < k <= width:
                raise ValueError(f"transformer {i} before the KNN does not fit the rows' width")
            width = k
    if set(arrays) != expected:
        raise ValueError("the transformers' arrays hold other entries")
