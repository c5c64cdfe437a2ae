"""Measures the student's final model on the canonical test set, independently of what
the program prints (DESIGN principle 1).

The model expects inputs preprocessed the student's way. In order of preference the
probe uses: the test inputs the student passed to evaluate()/predict() (recognised by
their length), or the served raw test images put through the same scaling the training
inputs show relative to the served raw training images (e.g. /255). Padded reviews are
matched to the imdb.load_data call whose test split they are (a program may call it more than
once, with other arguments): that call's labels score them and its arguments describe them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.probe.layouts import TEXT_DATASETS, describe_sequences
from grader.probe.leaks import served_review_share, served_test_share


def pick_model(probe) -> tuple[int | None, bool]:
    """The model to measure: the last one fitted, else the last one evaluated (untrained)."""
    # the trace is shared: fits another framework's probe recorded (torch) are not Keras models
    fits = [f for f in probe.trace["fits"] if f.get("framework", "keras") == "keras"]
    if fits:
        return fits[-1]["model"], any(f["epochs_run"] > 0 or f.get("steps", 0) > 0
                                      for f in fits if f["model"] == fits[-1]["model"])
    evaluated = [e["model"] for e in probe.trace["evaluations"]]
    if evaluated:
        return evaluated[-1], False
    return (max(probe.models), False) if probe.models else (None, False)


MAX_FIT_ROWS = 4096  # training rows exported with a chatbot, for its loss outside the program


def fitted_without_dataset(probe) -> dict[str, Any] | None:
    """The model a program without a served dataset built last or fitted (Program 7's chatbot),
    for the export, with the first rows it was fitted on as arrays (x, y) when it was fitted on
    arrays; None when it built no Keras model."""
    mid, _ = pick_model(probe)
    if mid is None:
        return None
    x, y = probe.fit_inputs.get(mid), probe.fit_targets.get(mid)
    fit = None if x is None or y is None else (np.asarray(x[:MAX_FIT_ROWS]), np.asarray(y[:MAX_FIT_ROWS]))
    return {"model": mid, "part": "chatbot", "framework": "keras", "object": probe.models[mid], "dataset": None,
            "preprocess": {"kind": "the program's own arrays"}, "fit": fit}


def infer_scaling(fit_x: Any, raw_train: np.ndarray) -> tuple[float, float] | None:
    """a, b with fit_x ~ a * raw + b, from global statistics (robust to shuffling)."""
    if fit_x is None or getattr(fit_x, "shape", None) is None:
        return None
    if tuple(fit_x.shape[1:]) != tuple(raw_train.shape[1:]):
        return None
    sample = np.asarray(fit_x[:2000], dtype=np.float64)
    raw = raw_train[:2000].astype(np.float64)
    if raw.std() == 0:
        return None
    a = sample.std() / raw.std()
    b = sample.mean() - a * raw.mean()
    return float(a), float(b)


def fed_call(calls: list[tuple[dict[str, Any], Any]], inputs: Any) -> tuple[dict[str, Any], Any] | None:
    """Of a program's imdb.load_data calls ((load_args, Served) each, in call order), the latest
    whose test reviews, padded, are `inputs` (N, L); None when none is."""
    for load_args, served in reversed(calls):
        if len(served.y_test) == len(inputs) and describe_sequences(inputs, served.x_test) is not None:
            return load_args, served
    return None


def predictions_to_labels(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.ndim == 1 or pred.shape[-1] == 1:
        return (pred.reshape(len(pred)) > 0.5).astype(np.int64)
    return pred.reshape(len(pred), -1).argmax(axis=1)


def measure(probe) -> dict[str, Any] | None:
    if not probe.served:
        return None
    mid, trained = pick_model(probe)
    if mid is None:
        return None
    name, served = next(iter(probe.served.items()))
    load_args = (probe.trace.data.get("dataset") or {}).get("load_args")
    model = probe.models[mid]
    x = probe.test_inputs.get(mid)
    if x is not None and name in TEXT_DATASETS:  # the load_data call whose test reviews the model was fed
        load_args, served = fed_call(probe.text_calls, x) or (load_args, served)
    result: dict[str, Any] = {"model": mid, "trained": trained, "dataset": name,
                              "split": "test", "n": int(len(served.y_test))}
    if x is not None:
        result["method"] = "the test inputs the program passed to evaluate/predict"
    else:
        scaling = infer_scaling(probe.fit_inputs.get(mid), served.x_train)
        if scaling is None:
            result["error"] = ("could not tell how the program preprocesses its inputs "
                               "(it neither evaluated on the test set nor fit on arrays)")
            return result
        a, b = scaling
        x = (served.x_test.astype(np.float32) * a + b).astype(np.float32)
        result["method"] = f"served test images scaled like the training inputs (x*{a:.5g}{b:+.5g})"
    try:
        pred = probe.original(model, "predict")(x, batch_size=256, verbose=0)
    except Exception as e:
        result["error"] = f"the model could not predict on the test set: {type(e).__name__}: {e}"[:500]
        return result
    fitted = probe.fit_inputs.get(mid)
    result["fit_on_served_test"] = (served_review_share(fitted, x) if name in TEXT_DATASETS
                                    else served_test_share(fitted, served.x_test))
    probe.measured = {"model": mid, "framework": "keras", "object": model, "inputs": x, "raw": served.x_test,
                      "dataset": name, "load_args": load_args}  # for the export to the trusted re-measurement
    labels = np.asarray(served.y_test).reshape(-1).astype(np.int64)
    predicted = predictions_to_labels(pred)
    result["accuracy"] = round(float((predicted == labels).mean()), 6)
    result["predicted_class_share"] = np.bincount(predicted, minlength=10).tolist()
    return result
