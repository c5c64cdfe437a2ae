"""`grader doctor`: is this machine ready to grade, and if not, what to do about each problem."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from grader import data
from grader.sandbox_image import IMAGES, SandboxError, engine, image_state


class Finding(BaseModel):
    topic: str
    state: Literal["ok", "note", "problem"]  # note: works, but worth knowing
    detail: str
    fix: str = ""


def check_engine() -> tuple[Finding, object | None]:
    try:
        client = engine(timeout=10)
    except SandboxError as e:
        return Finding(topic="Docker engine", state="problem", detail=str(e).split(". ")[0],
                       fix="start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or "
                           "grade in the local sandbox: grader batch --sandbox local"), None
    version = client.version().get("Version", "?")
    return Finding(topic="Docker engine", state="ok", detail=f"reachable (engine {version})"), client


def check_image(client, image: str) -> Finding:
    if client is None:
        return Finding(topic="Sandbox image", state="problem", detail=f"{image}: no engine to ask",
                       fix="start the Docker engine first")
    flavour = next((f for f, name in IMAGES.items() if name == image), "full")
    state = image_state(client, image, flavour)
    if state == "current":
        size = client.images.get(image).attrs.get("Size", 0) / 2**30
        return Finding(topic="Sandbox image", state="ok", detail=f"{image} is current ({size:.1f} GB)")
    return Finding(topic="Sandbox image", state="problem",
                   detail=f"{image} is {'not in the engine' if state == 'missing' else 'out of date with sandbox/'}",
                   fix="grader sandbox build   (offline: --wheelhouse DIR)")


def gpu_runtime(client) -> bool:
    runtimes = (client.info().get("Runtimes") or {}) if client is not None else {}
    return "nvidia" in runtimes or bool(shutil.which("nvidia-container-runtime-hook"))


def check_gpus(client) -> Finding:
    from grader.runners.docker import host_gpus

    gpus = host_gpus()
    if not gpus:
        return Finding(topic="GPU", state="note", detail="no GPU on this machine: jobs run on the CPU (--gpus none)")
    listed = ", ".join(f"GPU {i} ({mb / 1024:.0f} GB)" for i, mb in sorted(gpus.items()))
    if client is not None and not gpu_runtime(client):
        return Finding(topic="GPU", state="problem", detail=f"{listed}, but the Docker engine has no GPU runtime",
                       fix="install the NVIDIA Container Toolkit, run `sudo nvidia-ctk runtime configure "
                           "--runtime=docker` and restart the engine; or grade on the CPU with --gpus none")
    return Finding(topic="GPU", state="ok", detail=f"{listed}; containers can use them")


def check_data(cache_dir: Path) -> list[Finding]:
    found = []
    for s in data.status(cache_dir):
        found.append(_staged("Dataset", s.name, s.staged, s.verified, f"grader data stage {s.name} FILE"))
    for w in data.weights_status(cache_dir):
        found.append(_staged("Weights", w.file_name, w.staged, w.verified, f"grader data stage {w.name} FILE"))
    return found


def _staged(kind: str, name: str, staged: bool, verified: bool | None, fix: str) -> Finding:
    if not staged:
        return Finding(topic=f"{kind} {name}", state="note",
                       detail="not staged: jobs get a synthetic stand-in, and the sheets say so", fix=fix)
    if not verified:
        return Finding(topic=f"{kind} {name}", state="problem",
                       detail="staged, but its checksum was not verified", fix=f"{fix} (without --no-verify)")
    return Finding(topic=f"{kind} {name}", state="ok", detail="staged and verified")


def check_keras(flavour: str, course: str) -> Finding:
    what = "Keras 2 (tf-keras, TF_USE_LEGACY_KERAS=1)" if flavour == "legacy" else "Keras 3"
    return Finding(topic="Keras", state="ok", detail=f"course {course} uses {what} (keras_flavour: {flavour} "
                   "in course.yaml; --keras-flavour overrides it)")


def diagnose(cache_dir: Path, image: str, keras_flavour: str, course: str) -> list[Finding]:
    engine_finding, client = check_engine()
    return [engine_finding, check_image(client, image), check_gpus(client), *check_data(cache_dir),
            check_keras(keras_flavour, course)]
