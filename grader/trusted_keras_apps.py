"""Program 2 written with keras.applications, re-measured outside the student's process: the
model the program ended with (the application whole, or a Sequential or functional model
holding it under a head of its own), run in a clean sandbox on the host's own reference images.

The probe exports it as data (grader.probe.export.write_keras_application): the architecture as
Keras JSON (every class Keras' own, as for any Keras model), where the application sits in it,
the name of the file keras.applications loaded into it, and only the variables whose values are
not what that file gave them (own.npz: a new head, a few kB; a model whose weights were all
replaced travels whole, and one over the size cap is not re-measured). The pretrained values
never travel: for a real file faculty staged the host puts its own copy beside the request;
for a stand-in the clean sandbox seeds the application as the program's sandbox did (the
stand-in is a function of the file's name and the architecture). Every variable the program
changed travels as it is and is used as it is, so the clean sandbox
(grader/clean/keras_apps.py) runs the model the program ended with, on images the program never
saw, after the preprocessing the probe's reference step applies (resize to the model's input,
the application's preprocess_input), and counts how much of the application is the served
file's (WeightsMatch). The vision checks judge these figures as they judge a torchvision
model's (grader/trusted_vision.py).

As there, what the export says the model is, is what is judged: a program that rewrites the
exporter in its own process can hand over another model than the one it ran (the file's
values, say, where it changed them), but it must build that model; the reference images it
never sees.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from grader.models import TrustedMeasurement, WeightsMatch
from grader.probe import keras_assets
from grader.runners.base import RunPlan
from grader.trusted import Refused, checked_request, run_clean
from grader.trusted_vision import array, place, read_output, reference_images

SPEC_KEYS = {"application", "weights_file", "package", "module", "shapes"}
LAYER = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
WEIGHTS_FILE = re.compile(r"[A-Za-z0-9_.\-]{1,200}\.h5")
MODULE = re.compile(r"(keras|tf_keras)\.src\.applications\.[a-z0-9_]{1,60}")
MAX_VARIABLES = 5000


def check_keras_application(folder: Path) -> dict[str, Any]:
    """application.json of plain values (layer names, a file name ending .h5 or none, a Keras
    package, an application module of that package, lists of whole numbers) and own.npz holding
    only arrays named w<i> for i below the number of variables. Raises Refused."""
    spec = json.loads((folder / "application.json").read_text())
    if not isinstance(spec, dict) or set(spec) != SPEC_KEYS:
        raise Refused("the exported application's description is not the expected one")
    path, shapes = spec["application"], spec["shapes"]
    if not isinstance(path, list) or len(path) > 4 or not all(isinstance(n, str) and LAYER.fullmatch(n) for n in path):
        raise Refused("the exported model names its application by something other than layer names")
    if spec["weights_file"] is not None and not (isinstance(spec["weights_file"], str)
                                                 and WEIGHTS_FILE.fullmatch(spec["weights_file"])):
        raise Refused(f"the export names a weights file that is no Keras weights file: {str(spec['weights_file'])[:80]}")
    if spec["package"] not in keras_assets.PACKAGES or not (
            spec["module"] is None or isinstance(spec["module"], str) and MODULE.fullmatch(spec["module"])
            and spec["module"].split(".")[0] == spec["package"]):
        raise Refused("the exported application's package or module is not one of Keras' applications")
    if not isinstance(shapes, list) or len(shapes) > MAX_VARIABLES or not all(
            isinstance(s, list) and len(s) <= 8 and all(type(d) is int and 0 <= d <= 10**7 for d in s) for s in shapes):
        raise Refused("the exported model's variable shapes are not plain numbers")
    with zipfile.ZipFile(folder / "own.npz") as archive:
        if not set(archive.namelist()) <= {f"w{i}.npy" for i in range(len(shapes))}:
            raise Refused("own.npz holds other entries than the model's variables")
    return spec


def measure(entry: dict[str, Any], export_root: Path, plan: RunPlan, runner: Any,
            result: TrustedMeasurement) -> None:
    """Fills result.reference and result.weights, or raises Refused with the reason."""
    if entry.get("kind") != "keras_application":
        raise Refused(f"a keras.applications model exported as {str(entry.get('kind'))[:40]!r} is not re-measured")
    images = reference_images(plan)
    with tempfile.TemporaryDirectory(prefix="grader-clean-") as tmp:
        request, out = checked_request(entry, export_root, Path(tmp))
        spec = json.loads((request / "application.json").read_text())
        real = keras_assets.staged(spec["weights_file"], plan.cache_dir) if spec["weights_file"] else None
        if real is not None:  # else a stand-in, which the clean sandbox makes as the program's sandbox did
            place(real, request / "base.h5")
        names = [f"reference{i}" for i in range(len(images))]
        for name, (_, image, _, _) in zip(names, images):
            np.save(request / f"{name}.npy", image, allow_pickle=False)
        run_clean(request, out, plan, runner, {"kind": entry["kind"], "inputs": names})
        counts = array(out / "weights.npy", np.float64)
        result.weights = WeightsMatch(file=spec["weights_file"], parameters=int(counts[0]),
                                      from_file=int(counts[1]), near_file=int(counts[2]))
        result.reference = [read_output(out, name, reference, "classification") for name, reference in zip(names, images)]
