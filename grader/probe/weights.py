"""Pretrained weights served offline from the local cache.

torchvision fetches pretrained weights with `torch.hub.load_state_dict_from_url(url)`. In
the sandbox that call is answered from the cache instead, by the file's own name
(e.g. resnet50-0676ba61.pth):

* the real file, when faculty staged it (`grader data stage resnet50 FILE` puts it in
  ``<cache>/weights/`` after checking the sha256 prefix torch.hub names it by);
* otherwise a synthetic stand-in: a seeded random initialisation of the same architecture
  (same keys and shapes), generated on first use into ``<cache>/weights/standin/v<N>/``.

Either way torch.hub itself loads the file (an existing file is loaded without a hash
check, torch/hub.py load_state_dict_from_url), and every file served is reported through
a callback so that the trace says which were real and which were stand-ins. Downloads are
refused with a message that says how to stage the file.

Stdlib at import time; torch and torchvision are imported only when weights are wanted.
The catalogue is also read by the host (grader.data) to verify and stage files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

STANDIN_VERSION = 1
MANIFEST = "manifest.json"
HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: name-<sha256 prefix>.ext


@dataclass(frozen=True)
class WeightsFile:
    file_name: str  # torchvision's name for it, also its name in the cache
    model: str  # the name faculty stage it under: resnet50 | fasterrcnn
    enum: str  # the torchvision weights enum member it belongs to
    url: str

    @property
    def sha256_prefix(self) -> str:
        return HASH_IN_NAME.search(self.file_name).group(1)


CATALOGUE: dict[str, WeightsFile] = {w.file_name: w for w in (
    WeightsFile("resnet50-0676ba61.pth", "resnet50", "ResNet50_Weights.IMAGENET1K_V1",
                "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    WeightsFile("resnet50-11ad3fa6.pth", "resnet50", "ResNet50_Weights.IMAGENET1K_V2",
                "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
    WeightsFile("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", "fasterrcnn", "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
                "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"),
)}
MODELS = tuple(dict.fromkeys(w.model for w in CATALOGUE.values()))


class WeightsUnavailable(RuntimeError):
    """Pretrained weights the sandbox cannot serve (not in the catalogue): no download."""


@dataclass(frozen=True)
class Served:
    file_name: str
    path: Path
    source: str  # "real" (staged by faculty) | "standin" (synthetic)
    verified: bool | None = None  # real files: was the sha256 prefix checked when staged

    def describe(self) -> str:
        return f"{self.file_name} ({'real' if self.source == 'real' else 'synthetic stand-in'})"


def weights_dir(cache_dir: Path | str) -> Path:
    return Path(cache_dir) / "weights"


def staged_path(file_name: str, cache_dir: Path | str) -> Path:
    return weights_dir(cache_dir) / file_name


def read_manifest(cache_dir: Path | str) -> dict[str, Any]:
    try:
        data = json.loads((weights_dir(cache_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_name_of(url: str, file_name: str | None = None) -> str:
    return file_name or os.path.basename(url.split("?")[0])


def resolve(file_name: str, cache_dir: Path | str, scratch: Path | None = None) -> Served:
    """The staged real file if there is one, else the stand-in (made now if missing).
    `scratch` takes the stand-in when the cache cannot be written (a read-only mount)."""
    if file_name not in CATALOGUE:
        known = ", ".join(CATALOGUE)
        raise WeightsUnavailable(
            f"pretrained weights {file_name} are not available: the grading sandbox is offline and "
            f"serves only {known}")
    real = staged_path(file_name, cache_dir)
    if real.is_file():
        entry = read_manifest(cache_dir).get(file_name) or {}
        return Served(file_name, real, "real", entry.get("verified"))
    target = weights_dir(cache_dir) / "standin" / f"v{STANDIN_VERSION}" / file_name
    if not target.is_file():
        try:
            make_standin(CATALOGUE[file_name], target)
        except OSError:
            if scratch is None:
                raise
            target = Path(scratch) / f"v{STANDIN_VERSION}" / file_name
            if not target.is_file():
                make_standin(CATALOGUE[file_name], target)
    return Served(file_name, target, "standin")


def prepare_standins(cache_dir: Path | str) -> None:
    """Makes every missing stand-in now, on the host: a sandbox that mounts the cache
    read-only would otherwise make its own copy in every job."""
    for file_name in CATALOGUE:
        resolve(file_name, cache_dir)


# ---------------------------------------------------------------- stand-ins


def standin_state_dict(spec: WeightsFile) -> dict[str, Any]:
    """Same keys and shapes as the real file; seeded, so every cache gets the same bytes."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(20_000 + sorted(CATALOGUE).index(spec.file_name))
    if spec.model == "resnet50":
        return resnet50(weights=None).state_dict()
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    _detector_head(state)
    return state


def _detector_head(state: dict[str, Any]) -> None:
    """A random box classifier scores every class near 1/91, so nothing clears a student's
    score threshold and no box is ever drawn. The stand-in's classifier instead favours two
    classes (cat 17, dog 18), so its detections exercise the program's drawing code; their
    positions are still meaningless."""
    import torch

    weight, bias = state["roi_heads.box_predictor.cls_score.weight"], state["roi_heads.box_predictor.cls_score.bias"]
    weight.mul_(0.01)
    bias.zero_()
    bias[17], bias[18] = 9.0, 7.0
    state["roi_heads.box_predictor.cls_score.bias"] = bias.to(torch.float32)


def make_standin(spec: WeightsFile, target: Path) -> None:
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.file_name}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        torch.save(standin_state_dict(spec), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # two jobs making it at once: the last one wins, both whole
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- serving in the sandbox


def install(cache_dir: Path | str, on_served: Callable[[Served, str], None], scratch: Path | None = None) -> None:
    """Answers torch.hub's weight loading from the cache and refuses downloads.
    `on_served(served, url)` is told of every file served."""
    import torch.hub
    import torch.utils.model_zoo

    original = torch.hub.load_state_dict_from_url

    def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location=None, progress: bool = True,
                                 check_hash: bool = False, file_name: str | None = None, weights_only: bool = False):
        served = resolve(file_name_of(url, file_name), cache_dir, scratch)
        on_served(served, url)
        # an existing file is loaded as it is: torch.hub checks the hash only on download
        return original(url, model_dir=str(served.path.parent), map_location=map_location, progress=False,
                        check_hash=False, file_name=served.path.name, weights_only=weights_only)

    def download_url_to_file(url: str, dst: str, *args, **kwargs) -> None:
        raise WeightsUnavailable(f"{url} was not downloaded: the grading sandbox is offline. "
                                 "Pretrained weights are served from the grader's cache "
                                 f"({', '.join(MODELS)}); faculty stage them with `grader data stage`.")

    torch.hub.load_state_dict_from_url = load_state_dict_from_url
    torch.utils.model_zoo.load_url = load_state_dict_from_url
    torch.hub.download_url_to_file = download_url_to_file
    _patch_torchvision(load_state_dict_from_url)


def _patch_torchvision(loader: Callable[..., Any]) -> None:
    try:
        import torchvision._internally_replaced_utils as replaced
        import torchvision.models._api as api
    except ImportError:  # torch without torchvision: torch.hub alone is patched
        return
    replaced.load_state_dict_from_url = loader
    api.load_state_dict_from_url = loader


def label_by_weights(trace: Any, weights: list[dict[str, Any]]) -> None:
    """A program without a dataset is labelled by the pretrained weights it was served
    (records with "file" and "source"), so that reports say when they were stand-ins."""
    current = trace["dataset"]
    if current is not None and current.get("kind") != "weights" or not weights:
        return
    served = list(dict.fromkeys((w["file"], w["source"]) for w in weights))
    names = ", ".join(f + (" (synthetic stand-in)" if src == "standin" else "") for f, src in served)
    trace["dataset"] = {"kind": "weights", "name": "pretrained weights",
                        "source": "standin" if any(src == "standin" for _, src in served) else "real",
                        "description": f"pretrained weights {names}"}
