"""Post-run step `vision`: the student's final torchvision model (or keras.applications
model, see grader.probe.keras_assets) on the harness's own reference images.

The rubric's `probe: {vision: {images: [...]}}` names the images. Each is either

* `{name, seed, width, height}`: drawn here, deterministically (shapes on a gradient, with
  the boxes of the shapes drawn as known objects). No photo travels into the sandbox and
  the reference solution never does; the same drawings are kept as PNGs under
  reference/programN/ for faculty to look at (`python -m grader.probe.vision DIR SPEC.json`);
* `{file, objects: [{box: [x1, y1, x2, y2], label}]}`: a real annotated photo that faculty
  put under `<cache>/reference/` (the cache is readable from the sandbox).

A classifier gets the ImageNet preprocessing (resize 256, centre crop 224, normalise); a
detector gets the image as a [0, 1] tensor. The model runs in eval mode without gradients
(its mode is restored afterwards), once per image; a detector's boxes are drawn on the
image and kept as an artifact picture.

What counts is the same model run outside the program (grader/trusted_vision.py); this run is
a cross-check that flags an export which does not reproduce the model the program ran. A
rubric can turn it off (`cross_check: false`) where one forward costs seconds (a detector on
CPU): then an exported model is run on the reference images only outside, and the host draws
the picture (grader/trusted_vision.py, draw_detections). A model that was not exported is
always run here: it is all the sheet can show.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grader.probe import keras_assets
from grader.probe.torchvision_hooks import TorchvisionProbe, describe_detections, describe_output, final_model

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def after_run(session, params: dict[str, Any]) -> dict[str, Any]:
    probe = next((p for p in session.probes if isinstance(p, TorchvisionProbe)), None)
    if (probe is None or not probe.models) and keras_assets.ACTIVE is not None and keras_assets.ACTIVE.models:
        return keras_assets.ACTIVE.reference(session, params)  # a keras.applications model
    if probe is None or not probe.models:
        return {"error": "no torchvision model was built, so there is nothing to run on the reference images"}
    index = final_model(probe.record)
    model = probe.models[index]
    task = probe.record["models"][index]["task"]
    if outside_only(session, params, "torchvision", index):
        return {"model": index, "task": task, "results": [], "cross_check": False}
    results = []
    for spec in params.get("images", []):
        image, objects, origin = load_reference(spec, session.config["cache_dir"])
        out = run_model(probe, model, task, image)
        out.update(image=spec.get("name") or spec.get("file"), origin=origin, size=list(image.size), objects=objects)
        if task == "detection":
            out["picture"] = draw(image, out, Path(session.config["artifacts_dir"]), session.trace)
        results.append(out)
    return {"model": index, "task": task, "results": results}


def cross_check_on(params: dict[str, Any]) -> bool:
    """Whether the rubric's `vision` step runs the reference images in the program's process too
    (the default)."""
    return params.get("cross_check", True) is not False


def outside_only(session, params: dict[str, Any], framework: str, index: int) -> bool:
    """Whether the reference images are left to the clean sandbox alone: the rubric turns the
    cross-check off and the final model was exported for it."""
    return not cross_check_on(params) and any(
        e.get("framework") == framework and e.get("model") == index and not e.get("error")
        for e in session.trace.data.get("exports") or [])


def run_model(probe: TorchvisionProbe, model, task: str, image) -> dict[str, Any]:
    import torch
    from torchvision.transforms import functional as F

    was_training = model.training
    device = next(model.parameters()).device  # the program may have moved it to a GPU
    probe.quiet = True  # the harness's own calls are not the program's
    try:
        model.eval()
        with torch.no_grad():
            if task == "detection":
                output = model([F.to_tensor(image).to(device)])
                return {"output": {"kind": "detections", "images": [describe_detections(output[0])]}}
            x = F.normalize(F.to_tensor(F.center_crop(F.resize(image, 256), 224)), IMAGENET_MEAN, IMAGENET_STD)
            output = model(x.unsqueeze(0).to(device))
            out = describe_output(output)
            if out.get("kind") == "tensor" and len(out["shape"]) == 2:
                out["max_probability"] = round(float(output.float().softmax(dim=1).max()), 4)
            return {"output": out}
    except Exception as e:  # a head that does not fit the backbone, say: the check says so
        return {"error": f"{type(e).__name__}: {e}"[:500]}
    finally:
        probe.quiet = False
        model.train(was_training)


# ---------------------------------------------------------------- reference images


def load_reference(spec: dict[str, Any], cache_dir: str):
    """(PIL image, known objects, "drawn" | "photo")."""
    from PIL import Image

    if "file" in spec:
        path = Path(cache_dir) / "reference" / spec["file"]
        return Image.open(path).convert("RGB"), spec.get("objects", []), "photo"
    image, objects = drawn_image(int(spec.get("seed", 0)), int(spec.get("width", 320)), int(spec.get("height", 240)))
    return image, objects, "drawn"


def drawn_image(seed: int, width: int, height: int):
    """A gradient with two to four filled shapes; their boxes are the known objects."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / width * 200, ys / height * 200, np.full_like(xs, 120.0, dtype=float)], axis=-1)
    image = Image.fromarray(base.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(image)
    objects = []
    for i in range(int(rng.integers(2, 5))):
        w, h = int(rng.integers(width // 6, width // 3)), int(rng.integers(height // 6, height // 3))
        x1, y1 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = ("rectangle", "ellipse")[i % 2]
        getattr(draw, kind)([x1, y1, x1 + w, y1 + h], fill=color, outline=(0, 0, 0))
        objects.append({"box": [x1, y1, x1 + w, y1 + h], "label": kind})
    return image, objects


def draw(image, out: dict[str, Any], artifacts: Path, trace) -> str | None:
    """The detections drawn on the reference image, kept as a picture for the report."""
    found = (out.get("output") or {}).get("images") or [{}]
    name = f"reference_detections{sum(f.startswith('reference_detections') for f in trace['figures']) + 1}.png"
    try:
        boxes_drawn(image, found[0]).save(artifacts / name)
    except OSError:
        return None
    trace["figures"].append(name)
    return name


def boxes_drawn(image, detections: dict[str, Any]):
    """A copy of the PIL image with the first 20 boxes of a detector's output (as
    torchvision_hooks.describe_detections writes it: pixel boxes x1, y1, x2, y2) and their scores."""
    from PIL import ImageDraw

    picture = image.copy()
    pen = ImageDraw.Draw(picture)
    for box, score in zip(detections.get("boxes", [])[:20], detections.get("scores", [])[:20]):
        pen.rectangle(box, outline=(255, 0, 0), width=2)
        pen.text((box[0] + 2, box[1] + 2), f"{score:.2f}", fill=(255, 255, 0))
    return picture


def save_drawn(folder: Path, specs: list[dict[str, Any]]) -> list[Path]:
    """Writes the drawn reference images as PNGs (and their objects as JSON) for faculty."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs:
        image, objects = drawn_image(int(spec["seed"]), int(spec["width"]), int(spec["height"]))
        path = folder / f"{spec['name']}.png"
        image.save(path)
        path.with_suffix(".json").write_text(json.dumps({"spec": spec, "objects": objects}, indent=1) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m grader.probe.vision DIR '[{"name": ..., "seed": ...}]'
    for written_path in save_drawn(Path(sys.argv[1]), json.loads(sys.argv[2])):
        print(written_path)
