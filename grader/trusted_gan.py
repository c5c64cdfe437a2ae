"""A GAN's generator judged by what it generates, outside the student's process.

The probe exports the generator (Keras JSON + weights; grader/probe/gan.py). The host checks
the files like any Keras export (every class Keras' own, no link, size), a clean sandbox
(grader/clean/gan.py) runs it, and the same architecture freshly initialised (what it would make
untrained), on SAMPLES noise vectors drawn with a seed the host picks here and the program never sees, and the host maps the outputs to pixels in [0, 1] by the output
activation it reads from the checked architecture, then judges them with its own reference
classifier (grader/gan_judge.py). The host never loads the student's model.
"""

from __future__ import annotations

import base64
import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from grader import gan_judge
from grader.models import TrustedMeasurement
from grader.runners.base import RunPlan
from grader.trusted import Refused, checked_request, run_clean
from grader.trusted_structure import json_layers
from grader.trusted_vision import array

SAMPLES = 1000
GRID = 36  # samples kept for the mark sheet's picture


def measure(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
            result: TrustedMeasurement) -> None:
    """Fills result.gan; raises Refused when the generator cannot be run or judged."""
    kind = entry.get("kind")
    if kind not in ("keras_json", "torch_pt2"):
        raise Refused("the generator could not be written as Keras' JSON or a torch.export program (a model of the "
                      "program's own classes), so its samples are not judged outside the program")
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        # the activation from the checked architecture (Keras); a .pt2's outputs speak for themselves
        activation = output_activation(json.loads((request / "model.json").read_text())) if kind == "keras_json" else None
        run_clean(request, out, plan, runner, {"kind": kind, "flavour": plan.keras_flavour,
                                               "preprocess": {}, "inputs": [],
                                               "gan": {"n": SAMPLES, "seed": secrets.randbits(62)}})
        raw = array(out / "samples.npy", np.float32)
        fresh = array(out / "fresh.npy", np.float32) if kind == "keras_json" else None
    for what in (raw, fresh):
        if what is not None and (what.shape != (SAMPLES, 784) or not np.isfinite(what).all()):
            raise Refused(f"the generator's samples are not {SAMPLES} finite 28 x 28 images (got {what.shape})")
    pixels, how = to_pixels(raw, activation)
    clf = gan_judge.reference_classifier(plan.cache_dir)
    real = gan_judge.real_features(clf, plan.cache_dir)
    judgement = gan_judge.judge(pixels, clf, real)
    if fresh is not None:
        judgement.frechet_fresh = gan_judge.judge(to_pixels(fresh, activation)[0], clf, real).frechet
    judgement.output_range = how
    judgement.grid = base64.b64encode((pixels[:GRID] * 255).round().astype(np.uint8).tobytes()).decode()
    result.gan = judgement


def output_activation(config: dict[str, Any]) -> str | None:
    """The activation of the architecture's last layer that names one (a final Reshape has none)."""
    for layer in reversed(json_layers(config)):
        act = layer["config"].get("activation")
        if act:
            return str(act)
        if layer["type"] == "Dense":
            return "linear"
    return None


def to_pixels(raw: np.ndarray, activation: str | None) -> tuple[np.ndarray, str]:
    """(N x 784 in [0, 1], how): tanh outputs (x + 1) / 2, sigmoid's as they are; any other
    activation by the outputs' own range (below -0.01 anywhere: as tanh), clipped to [0, 1]."""
    if activation in ("tanh", "hard_tanh") or (activation not in ("sigmoid", "hard_sigmoid") and raw.min() < -0.01):
        return np.clip((raw + 1) / 2, 0, 1), f"{activation or 'unknown'} output: (x + 1) / 2, clipped to [0, 1]"
    return np.clip(raw, 0, 1), f"{activation or 'unknown'} output: taken as [0, 1], clipped"


def grid_images(judgement_grid: str) -> np.ndarray:
    """The mark sheet's samples back as uint8 K x 28 x 28."""
    data = np.frombuffer(base64.b64decode(judgement_grid), dtype=np.uint8)
    return data.reshape(-1, 28, 28)
