"""Program 7's chatbot re-measured outside the student's process, as far as it can be: its
layers read on the host from the exported Keras architecture (JSON, every class checked
against Keras' own), and its training from its loss, computed in a clean sandbox, on the rows
it was fitted on, against the same architecture freshly initialised.

The replies themselves can only be observed in the program's process (its response function is
the program's own code): the chat checks say so. The rows come from the program's process too
(the probe exports the first ones it saw model.fit receive): a model can only score a low loss
on rows it learned, so a program that swaps them for others does not make an untrained model
look trained. A PyTorch chatbot travels as a torch.export program traced for the shape of the
batches it was trained on: the clean sandbox reads its layers from the program's graph
(grader/clean/training.py) and its untrained figure is a uniform guess's loss.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from grader.models import TrustedMeasurement
from grader.runners.base import RunPlan
from grader.trusted import Refused, checked_request, run_clean
from grader.trusted_vision import array

LAYER_KEYS = ("units", "activation")


def measure(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
            result: TrustedMeasurement) -> None:
    """Fills result.layers, and result.loss / loss_fresh (or loss_error) when the rows it was
    fitted on came with it; raises Refused when the layers cannot be read."""
    if entry.get("kind") == "torch_pt2":
        return measure_torch(entry, export_root, plan, runner, result)
    if entry.get("kind") != "keras_json":
        raise Refused("the chatbot's layers could not be written as Keras' JSON (a model of the program's own "
                      "classes), so they are not read outside the program")
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        result.layers = json_layers(json.loads((request / "model.json").read_text()))
        if not (request / "fit.npz").exists():
            return
        try:
            run_clean(request, out, plan, runner, {"kind": "keras_json", "flavour": plan.keras_flavour,
                                                   "preprocess": {}, "inputs": [], "training": True})
            losses = array(out / "training.npy", np.float64)
            if losses.shape != (2,) or not np.isfinite(losses).all():
                raise Refused("the clean sandbox could not compute the chatbot's loss")
        except Refused as e:  # the layers were read: only the training figure is missing
            result.loss_error = str(e)
            return
        result.loss, result.loss_fresh = round(float(losses[0]), 4), round(float(losses[1]), 4)


def measure_torch(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
                  result: TrustedMeasurement) -> None:
    """A PyTorch chatbot: its layers and both losses from one clean run; Refused without them
    (the layers come from the same run, so a loss that fails leaves nothing trusted)."""
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        if not (request / "fit.npz").exists():
            raise Refused("the chatbot was exported without the rows it was trained on")
        run_clean(request, out, plan, runner, {"kind": "torch_pt2", "preprocess": {}, "inputs": [], "training": True})
        result.layers = read_layers(out / "layers.npy")
        losses = array(out / "training.npy", np.float64)
    if losses.shape != (2,) or not np.isfinite(losses).all():
        raise Refused("the clean sandbox could not compute the chatbot's loss")
    result.loss, result.loss_fresh = round(float(losses[0]), 4), round(float(losses[1]), 4)


def read_layers(path: Path) -> list[dict[str, Any]]:
    """The clean sandbox's layers.npy (grader/clean/training.encode_layers: rows of type, wrapped
    type or -1, units or -1) in the probe's words; Refused when it is not that."""
    from grader.clean.training import LAYER_CODES

    rows = array(path, np.int64)
    codes = range(len(LAYER_CODES))
    if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) > MAX_LAYERS or not all(
            kind in codes and (wraps == -1 or wraps in codes) and units >= -1 for kind, wraps, units in rows.tolist()):
        raise Refused("the clean sandbox's layers are not in the expected form")
    layers = []
    for kind, wraps, units in rows.tolist():
        layer: dict[str, Any] = {"type": LAYER_CODES[kind], "config": {} if units < 0 else {"units": units}}
        if wraps >= 0:
            layer["wraps"] = LAYER_CODES[wraps]
        layers.append(layer)
    return layers


MAX_LAYERS = 200


def json_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers of a Keras architecture (nested models flattened, input layers left out), in
    the probe's words: {"type", "wraps" (a wrapper's inner layer), "config": {units, activation}}."""
    out = []
    for layer in (config.get("config") or {}).get("layers") or []:
        kind, inner = layer.get("class_name"), (layer.get("config") or {})
        if kind in ("Sequential", "Functional", "Model"):
            out += json_layers(layer)
        elif kind != "InputLayer":
            info: dict[str, Any] = {"type": kind, "config": {k: plain(inner[k]) for k in LAYER_KEYS if k in inner}}
            wrapped = inner.get("layer") or inner.get("forward_layer")
            if isinstance(wrapped, dict):
                info["wraps"] = wrapped.get("class_name")
            out.append(info)
    return out


def plain(value: Any) -> Any:
    """A serialised activation object by its name; numbers and names as they are."""
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name") or value.get("class_name")
    return value if isinstance(value, (int, float, str)) or value is None else str(value)[:40]
