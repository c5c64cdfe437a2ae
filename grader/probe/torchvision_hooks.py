"""The torchvision probe: pretrained models, what the program does to them, what it runs.

Recorded in trace["torchvision"] (plain JSON):

* weights: every pretrained file served (real or stand-in, see grader.probe.weights);
* models: each model built by a torchvision.models / torchvision.models.detection factory:
  which factory, the weights asked for, the files loaded, and after the run the final
  module tree (e.g. the classification head the student put in place of `fc`);
* forwards: calls of those models (train/eval mode, input and output shapes; for detection
  the boxes, labels and scores);
* images: the image files read (PIL.Image.open, cv2.imread);
* labels: per model, the program's list of class names that fits its output, if any.

A Colab path read by cv2.imread (C code, not seen by the Colab shim's open()) is decoded
from the bytes open() resolves, so Colab notebooks reading images with OpenCV run unchanged.
"""

from __future__ import annotations

import builtins
import os
import sys
from pathlib import Path
from typing import Any

from grader.probe import weights
from grader.probe.trace import Trace

IDLE = "running the program"
MAX_FORWARDS = 40  # calls kept in the trace: the first half and the latest half
MAX_BOXES = 100
HEAD_ATTRS = ("fc", "classifier", "head", "heads")


def shape(value: Any) -> Any:
    if hasattr(value, "shape"):
        return list(value.shape)
    if isinstance(value, (list, tuple)):
        return [shape(v) for v in value[:8]]
    return type(value).__name__


class TorchvisionProbe:
    def __init__(self, trace: Trace, cache_dir: str):
        self.trace = trace
        self.cache_dir = cache_dir
        self.phase = IDLE
        self.models: list[Any] = []  # the live modules, index = trace record index
        self.original_heads: list[Any] = []
        self.building: dict[str, Any] | None = None
        self.quiet = False  # set while the harness runs a model itself (grader.probe.vision)
        self.measured: dict[str, Any] | None = None  # the final model, for grader.probe.export
        self.record: dict[str, Any] = {"version": None, "weights": [], "models": [], "forwards": [],
                                       "forward_calls": 0, "images": []}
        trace["torchvision"] = self.record

    # ------------------------------------------------------------ install

    def install(self) -> None:
        import torchvision

        self.record["version"] = torchvision.__version__
        self.trace["frameworks"]["torchvision"] = torchvision.__version__
        weights.install(self.cache_dir, self._served, scratch=Path.home() / ".grader-weights")
        self._wrap_builders()
        self._wrap_torch_load()
        self._wrap_image_readers()
        from grader.probe import image_folders

        image_folders.install_torchvision(self.trace)  # a custom dataset: ImageFolder

    def _served(self, served: weights.Served, url: str) -> None:
        entry = {"file": served.file_name, "source": served.source, "verified": served.verified,
                 "model": weights.CATALOGUE[served.file_name].model,
                 "for_model": len(self.models) if self.building is not None else None}
        self.record["weights"].append(entry)
        if self.building is not None:
            self.building["loaded"].append(entry)
        self.trace.note(f"pretrained weights {served.describe()} were served from the grader's cache")
        weights.label_by_weights(self.trace, self.record["weights"])
        self.trace.save()

    def _wrap_builders(self) -> None:
        import torchvision.models as tvm
        import torchvision.models._api as api
        import torchvision.models.detection as tvd

        for package, task in ((tvm, "classification"), (tvd, "detection")):
            for name in tvm.list_models(module=package):
                builder = api.BUILTIN_MODELS[name]
                wrapped = self._builder(name, task, builder)
                api.BUILTIN_MODELS[name] = wrapped
                setattr(package, name, wrapped)
                setattr(sys.modules[builder.__module__], name, wrapped)

    def _builder(self, name: str, task: str, builder):
        probe = self

        def build(*args, **kwargs):
            if probe.building is not None:  # a backbone built inside another factory
                return builder(*args, **kwargs)
            probe.building = {"factory": name, "task": task, "requested": requested(args, kwargs), "loaded": []}
            probe.phase = f"building {name}"
            try:
                model = builder(*args, **kwargs)
            finally:
                rec, probe.building, probe.phase = probe.building, None, IDLE
            probe._keep(model, rec)
            return model

        build.__wrapped__ = builder
        build.__name__ = builder.__name__
        build.__doc__ = builder.__doc__
        return build

    def _keep(self, model: Any, rec: dict[str, Any]) -> None:
        index = len(self.models)
        rec.update({"index": index, "class": type(model).__name__, "pretrained": bool(rec["loaded"]),
                    "built": describe(model)})
        self.models.append(model)
        self.original_heads.append(head_of(model)[1])
        self.record["models"].append(rec)
        model.register_forward_pre_hook(self._before(index))
        model.register_forward_hook(self._after(index))
        self.trace.save()

    # ------------------------------------------------------------ forward calls

    def _before(self, index: int):
        def hook(module, args):
            import torch

            if self.quiet:
                return
            self.record["forward_calls"] += 1
            forwards = self.record["forwards"]
            if len(forwards) >= MAX_FORWARDS:  # keep the first calls and the latest (the prediction)
                del forwards[MAX_FORWARDS // 2]
            forwards.append({"model": index, "training": module.training, "grad": torch.is_grad_enabled(),
                             "input": shape(args[0]) if args else None, "output": None})
            self.phase = f"running model {index} ({type(module).__name__})"
        return hook

    def _after(self, index: int):
        def hook(module, args, output):
            if self.quiet:
                return
            self.phase = IDLE
            mine = [f for f in self.record["forwards"] if f["model"] == index and f["output"] is None]
            if mine:
                mine[-1]["output"] = describe_output(output)
                self.trace.save()
        return hook

    # ------------------------------------------------------------ weights from torch.load

    def _wrap_torch_load(self) -> None:
        """The manual's own program loads resnet50-0676ba61.pth from a Drive folder with
        torch.load: a known weights file that is not there is served from the cache."""
        import torch

        original = torch.load

        def load(f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and not os.path.exists(f):
                name = os.path.basename(os.fspath(f))
                if name in weights.CATALOGUE:
                    served = weights.resolve(name, self.cache_dir, Path.home() / ".grader-weights")
                    self._served(served, os.fspath(f))
                    f = served.path
            return original(f, *args, **kwargs)

        torch.load = load

    # ------------------------------------------------------------ images read

    def _wrap_image_readers(self) -> None:
        self._wrap_pil()
        self._wrap_cv2()

    def _image_read(self, path: Any, size: tuple[int, int] | None, how: str) -> None:
        if isinstance(path, (str, os.PathLike)) and len(self.record["images"]) < 50:
            self.record["images"].append({"path": os.fspath(path)[:300], "name": Path(os.fspath(path)).name,
                                          "size": list(size) if size else None, "reader": how})
            self.trace.save()

    def _wrap_pil(self) -> None:
        try:
            from PIL import Image
        except ImportError:
            return
        original = Image.open

        def open_image(fp, *args, **kwargs):
            image = original(fp, *args, **kwargs)
            self._image_read(fp, image.size, "PIL.Image.open")
            return image

        Image.open = open_image

    def _wrap_cv2(self) -> None:
        try:
            import cv2
            import numpy as np
        except ImportError:
            return
        original = cv2.imread

        def imread(filename, flags=cv2.IMREAD_COLOR, *args):
            image = original(filename, flags, *args)
            if image is None and isinstance(filename, str):
                try:  # open() knows the Colab paths; OpenCV's C code does not
                    with builtins.open(filename, "rb") as fh:
                        image = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), flags)
                except OSError:
                    image = None
            if image is not None:
                self._image_read(filename, (image.shape[1], image.shape[0]), "cv2.imread")
            return image

        cv2.imread = imread

    # ------------------------------------------------------------ after the run

    def measure(self) -> None:
        """The final module tree of each model, and the class names the program used."""
        from grader.probe import session

        namespace = (session.CURRENT.namespace if session.CURRENT else None) or {}
        for rec, model, original in zip(self.record["models"], self.models, self.original_heads):
            rec["final"] = describe(model)
            rec["final"]["head_replaced"] = head_of(model)[1] is not original
            outputs = rec["final"].get("head", {}).get("out_features")
            rec["labels"] = label_list(namespace, outputs)
        if self.models:
            self.measured = self.to_export(final_model(self.record))
        self.trace.save()
        return None

    def to_export(self, index: int) -> dict[str, Any]:
        """What grader.probe.export needs to write the final model for the trusted re-measurement
        on the reference images: the live module, its factory, its classes and the pretrained
        file served for it (at build, else by torch.load), by name."""
        rec = self.record["models"][index]
        files = [w["file"] for w in rec["loaded"]] or [w["file"] for w in self.record["weights"]
                                                        if w["for_model"] is None]
        task = rec["task"]
        return {"model": index, "framework": "torchvision", "dataset": None, "object": self.models[index], "probe": self,
                "factory": rec["factory"], "task": task, "num_classes": rec["final"].get("head", {}).get("out_features"),
                "weights_file": files[-1] if files else None, "cache_dir": self.cache_dir,
                "preprocess": {"kind": "imagenet" if task == "classification" else "to_tensor"}}


def final_model(record: dict[str, Any]) -> int:
    """The model the program last ran, else the last one it built (indices into record["models"])."""
    ran = [f["model"] for f in record["forwards"]]
    return ran[-1] if ran else len(record["models"]) - 1


# ---------------------------------------------------------------- descriptions


def requested(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the program asked the factory for, as it wrote it."""
    out: dict[str, Any] = {}
    if args:
        out["positional"] = [str(a)[:80] for a in args]
    for key in ("pretrained", "weights", "pretrained_backbone", "weights_backbone", "num_classes"):
        if key in kwargs:
            value = kwargs[key]
            out[key] = value if isinstance(value, (bool, int, type(None))) else str(value)[:80]
    return out


def head_of(model: Any) -> tuple[str | None, Any]:
    """(path, module) of the part that decides the classes: the last layer of `fc` /
    `classifier` / `head`, or a detector's box predictor."""
    roi = getattr(model, "roi_heads", None)
    if roi is not None and hasattr(roi, "box_predictor"):
        return "roi_heads.box_predictor", roi.box_predictor
    for attr in HEAD_ATTRS:
        if hasattr(model, attr):
            return attr, getattr(model, attr)
    return None, None


def last_linear(module: Any) -> Any:
    import torch.nn as nn

    if isinstance(module, nn.Linear):
        return module
    found = [m for m in module.modules() if isinstance(m, nn.Linear)] if isinstance(module, nn.Module) else []
    return found[-1] if found else None


def describe(model: Any) -> dict[str, Any]:
    import torch.nn as nn

    out: dict[str, Any] = {"class": type(model).__name__, "training": getattr(model, "training", None)}
    if isinstance(model, nn.Module):
        out["parameters"] = sum(p.numel() for p in model.parameters())
        out["children"] = [[name, type(m).__name__] for name, m in list(model.named_children())[:30]]
    path, head = head_of(model)
    if head is not None:
        info: dict[str, Any] = {"path": path, "class": type(head).__name__}
        linear = getattr(head, "cls_score", None) or last_linear(head)
        if linear is not None:
            info.update(in_features=linear.in_features, out_features=linear.out_features)
        out["head"] = info
    return out


def describe_output(output: Any) -> dict[str, Any]:
    if isinstance(output, (list, tuple)) and output and all(isinstance(o, dict) for o in output):
        return {"kind": "detections", "images": [describe_detections(o) for o in output[:4]]}
    if hasattr(output, "shape"):
        out: dict[str, Any] = {"kind": "tensor", "shape": list(output.shape)}
        if output.ndim == 2 and output.shape[0] <= 64:
            detached = output.detach().float()
            out["argmax"] = detached.argmax(dim=1).tolist()
            out["finite"] = bool(detached.isfinite().all())
        return out
    if isinstance(output, dict):  # a detector in training mode returns its losses
        return {"kind": "dict", "keys": sorted(map(str, output))[:20]}
    return {"kind": type(output).__name__}


def describe_detections(prediction: dict[str, Any]) -> dict[str, Any]:
    boxes, labels, scores = (prediction.get(k) for k in ("boxes", "labels", "scores"))
    out: dict[str, Any] = {"keys": sorted(map(str, prediction))}
    if boxes is not None and hasattr(boxes, "shape"):
        out["boxes_shape"] = list(boxes.shape)
        out["boxes"] = [[round(float(v), 2) for v in b] for b in boxes.detach()[:MAX_BOXES].tolist()]
        out["count"] = int(boxes.shape[0])
    if labels is not None and hasattr(labels, "dtype"):
        out["labels_dtype"] = str(labels.dtype)
        out["labels"] = labels.detach()[:MAX_BOXES].tolist()
    if scores is not None and hasattr(scores, "dtype"):
        out["scores"] = [round(float(s), 4) for s in scores.detach()[:MAX_BOXES].tolist()]
    return out


def label_list(namespace: dict[str, Any], classes: int | None) -> dict[str, Any] | None:
    """The program's own list of class names that fits the model's outputs (e.g.
    class_labels = ['cat', 'dog'] for a 2-way head, or COCO's 91 names)."""
    if not classes:
        return None
    for name, value in namespace.items():
        if (not name.startswith("_") and isinstance(value, (list, tuple)) and len(value) == classes
                and all(isinstance(v, str) for v in value)):
            return {"name": name, "values": [v[:40] for v in value[:100]]}
    return None
