"""The clean sandbox's training figure for a model fitted on the program's own arrays (Program
7's chatbot): its loss on the rows it was fitted on, against the loss of an untrained model. A
model that learned from those rows scores far lower than an untrained one.

Keras: model.json and model.weights.h5 beside REQUEST.json (checked by the host); the untrained
model is the same architecture freshly initialised. PyTorch: model.pt2, a torch.export program
traced for one batch shape; its layers are read from the program's graph (the aten operators
of embeddings, recurrent and linear layers) into layers.npy, and the untrained figure is the
loss of a uniform guess over its outputs, ln(K), which a freshly initialised network scores
about (its logits are small). Both with fit.npz (x, y: the first rows the program fitted on,
as the probe exported them; loaded without pickle). Writes OUT_DIR/training.npy: float64 [loss
of the exported model, loss of an untrained one].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grader.clean.loaders import keras_model, keras_module, torch_pt2

EPS = 1e-7


def cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of outputs p (N, K) against y: one-hot (N, K), class ids (N,), or for
    one output unit (N, 1), 0/1 labels. Outputs that are not probabilities go through a softmax
    (or a sigmoid for one unit)."""
    p = p.reshape(len(p), -1).astype(np.float64)
    if p.shape[1] == 1:
        q = p[:, 0] if ((p >= 0) & (p <= 1)).all() else 1 / (1 + np.exp(-p[:, 0]))
        t = y.reshape(-1).astype(np.float64)
        return float(-np.mean(t * np.log(q + EPS) + (1 - t) * np.log(1 - q + EPS)))
    if not (((p >= 0) & (p <= 1)).all() and np.allclose(p.sum(axis=1), 1, atol=1e-3)):
        p = np.exp(p - p.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
    t = y.reshape(len(y), -1)
    if t.shape[1] == p.shape[1] and t.shape[1] > 1:
        return float(-np.mean((t * np.log(p + EPS)).sum(axis=1)))
    ids = t[:, 0].astype(np.int64).clip(0, p.shape[1] - 1)
    return float(-np.mean(np.log(p[np.arange(len(p)), ids] + EPS)))


def exported_and_fresh(folder: Path, request: dict[str, Any]) -> tuple[Any, Any]:
    """The exported Keras model (model.json, model.weights.h5) and the same architecture as Keras
    initialises it (seeded: the same fresh copy on every run)."""
    keras = keras_module(request)
    model = keras_model(folder, request)
    keras.utils.set_random_seed(0)
    return model, keras.models.model_from_json((folder / "model.json").read_text())


def losses(folder: Path, request: dict[str, Any]) -> np.ndarray:
    """[exported, fresh] losses of a Keras model on fit.npz."""
    model, fresh = exported_and_fresh(folder, request)
    with np.load(folder / "fit.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    return np.array([cross_entropy(np.asarray(m.predict(x, batch_size=256, verbose=0)), y) for m in (model, fresh)])


# aten operators of a torch.export graph, as the probe names the layers they come from
RECURRENT_OPS = {"aten.lstm.input": "LSTM", "aten.gru.input": "GRU", "aten.rnn_tanh.input": "RNN",
                 "aten.rnn_relu.input": "RNN"}


def graph_layers(program: Any) -> list[dict[str, Any]]:
    """Embedding, recurrent (Bidirectional(...) when bidirectional) and Linear layers in graph
    order, in the probe's words: {"type", "wraps"?, "config": {"units"?}}."""
    layers = []
    for node in program.graph.nodes:
        op = str(node.target) if node.op == "call_function" else ""
        if op == "aten.embedding.default":
            layers.append({"type": "Embedding", "config": {}})
        elif op in RECURRENT_OPS:
            hx = node.args[1][0] if isinstance(node.args[1], (list, tuple)) else node.args[1]
            layer = {"type": RECURRENT_OPS[op], "config": {"units": int(hx.meta["val"].shape[-1])}}
            if node.args[7] is True:  # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, …)
                layer = {"type": "Bidirectional", "wraps": layer["type"], "config": layer["config"]}
            layers.append(layer)
        elif op == "aten.linear.default":
            layers.append({"type": "Linear", "config": {"units": int(node.args[1].meta["val"].shape[0])}})
    return layers


# layers.npy: one int64 row per layer, (type, wrapped type or -1, units or -1), types by index here
LAYER_CODES = ("Embedding", "LSTM", "GRU", "RNN", "Bidirectional", "Linear")


def encode_layers(layers: list[dict[str, Any]]) -> np.ndarray:
    """N x 3 int64: the clean sandbox writes arrays only."""
    rows = [(LAYER_CODES.index(l["type"]), LAYER_CODES.index(l["wraps"]) if "wraps" in l else -1,
             l["config"].get("units", -1)) for l in layers]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def torch_losses(folder: Path, out_dir: Path) -> np.ndarray:
    """[exported, uniform guess] losses of a torch.export program on fit.npz; writes layers.npy."""
    import torch

    program = torch.export.load(str(folder / "model.pt2"))
    np.save(out_dir / "layers.npy", encode_layers(graph_layers(program)), allow_pickle=False)
    with np.load(folder / "fit.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    p = torch_pt2(folder, {})(x)  # batches of the traced size, the last padded and cut back
    classes = p.shape[-1]
    p = p.reshape(-1, classes)
    if p.shape[0] != y.size:
        raise ValueError(f"{p.shape[0]} outputs for {y.size} targets")
    return np.array([cross_entropy(p, y.reshape(-1)), float(np.log(classes))])


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    figures = torch_losses(folder, out_dir) if request["kind"] == "torch_pt2" else losses(folder, request)
    np.save(out_dir / "training.npy", figures, allow_pickle=False)
    return 0
