"""The clean sandbox's side of Programs 2 and 5: a torchvision model rebuilt from its factory,
the host's copy of the pretrained file and the program's own tensors, run on the host's
reference images (grader/trusted_vision.py writes the request).

Beside REQUEST.json: model.json ({factory, task, num_classes, weights_file, keys}), own.npz
(the tensors that are not the file's) or, for a classifier whose head is of the program's own
making, model.pt2 (the module whole, a torch.export program), base.pth (the host's copy of the file, when there is
one; loaded with torch.load(weights_only=True)) and <name>.npy (uint8 images, H x W x 3).
Writes to OUT_DIR only arrays:

* a classifier: <name>.npy, float32 (1, classes), after the probe's ImageNet preprocessing
  (resize 256, centre crop 224, normalise), as grader.probe.vision runs it in the program;
* a detector: <name>.boxes.npy float32 (N, 4), <name>.labels.npy int64 (N,), <name>.scores.npy
  float32 (N,), on the image as a [0, 1] tensor;
* weights.npy: float64 [parameters, from_file, near_file], parameters counted over the model's
  tensors that the file also has: taken from the file as they are, or the program's own with a
  cosine of at least NEAR to the file's (fine-tuned from it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from grader.probe.vision import IMAGENET_MEAN, IMAGENET_STD

NEAR = 0.9


def rebuild(folder: Path) -> tuple[Any, dict[str, Any], np.ndarray]:
    """(model in eval mode, its model.json, weights.npy's counts). Raises ValueError when the
    factory is not torchvision's or the tensors do not fit what it builds."""
    import torch
    import torchvision

    spec = json.loads((folder / "model.json").read_text())
    base_path = folder / "base.pth"
    base = torch.load(base_path, map_location="cpu", weights_only=True) if base_path.is_file() else {}
    if (folder / "model.pt2").is_file():  # a classifier with a head of the program's own making
        module = torch.export.load(str(folder / "model.pt2")).module()
        state = module.state_dict()
        return module, spec, matched(state, state, base)
    package = torchvision.models.detection if spec["task"] == "detection" else torchvision.models
    if spec["factory"] not in torchvision.models.list_models(module=package):
        raise ValueError(f"{spec['factory']!r} is not a torchvision {spec['task']} model")
    kwargs = {"weights": None, "num_classes": spec["num_classes"]}
    if spec["task"] == "detection":
        kwargs["weights_backbone"] = None
    model = torchvision.models.get_model_builder(spec["factory"])(**kwargs)
    with np.load(folder / "own.npz", allow_pickle=False) as arrays:
        own = {k: torch.from_numpy(arrays[k]) for k in arrays.files}
    keys = set(spec["keys"])
    state = {k: v for k, v in base.items() if k in keys and k not in own} | own
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # frozen batch norm has none
    if missing or unexpected or keys - set(state):
        odd = (missing + unexpected + sorted(keys - set(state)))[:3]
        raise ValueError(f"the exported model is not what {spec['factory']} builds for {spec['num_classes']} "
                         f"classes (tensors {', '.join(odd)})")
    return model.eval(), spec, matched(state, own, base)


def matched(state: dict[str, Any], own: dict[str, Any], base: dict[str, Any]) -> np.ndarray:
    """[parameters, from_file, near_file] over the floating tensors the file also has."""
    import torch

    counts = np.zeros(3)
    for key, value in state.items():
        file_value = base.get(key)
        if file_value is None or not value.is_floating_point():
            continue
        counts[0] += value.numel()
        if key not in own or torch.equal(value, file_value):
            counts[1] += value.numel()
        elif file_value.shape == value.shape and torch.nn.functional.cosine_similarity(
                value.flatten().double(), file_value.flatten().double(), dim=0) >= NEAR:
            counts[2] += value.numel()
    return counts


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    import torch
    from PIL import Image
    from torchvision.transforms import functional as F

    model, spec, counts = rebuild(folder)
    np.save(out_dir / "weights.npy", counts, allow_pickle=False)
    for name in request["inputs"]:
        image = Image.fromarray(np.load(folder / f"{name}.npy", allow_pickle=False), "RGB")
        with torch.no_grad():
            if spec["task"] == "detection":
                found = model([F.to_tensor(image)])[0]
                for part, dtype in (("boxes", np.float32), ("labels", np.int64), ("scores", np.float32)):
                    np.save(out_dir / f"{name}.{part}.npy", found[part].numpy().astype(dtype), allow_pickle=False)
                continue
            x = F.normalize(F.to_tensor(F.center_crop(F.resize(image, 256), 224)), IMAGENET_MEAN, IMAGENET_STD)
            output = model(x.unsqueeze(0))
        np.save(out_dir / f"{name}.npy", output.float().numpy(), allow_pickle=False)
    return 0
