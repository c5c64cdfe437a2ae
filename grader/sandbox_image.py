"""The Docker sandbox image: what defines it (sandbox/), whether the engine's copy is
current, and building it without a registry or network inside the build.

No registry is needed: the base image is made from Debian with debootstrap when it is not
in the engine, and the frameworks are installed from a wheelhouse the host downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel

from grader.paths import PACKAGE_DIR, PROJECT_DIR

SANDBOX_DIR = PROJECT_DIR / "sandbox"
BASE_IMAGE = "grader-base:bookworm"
# full: the CUDA builds (faculty's GPU machines); cpu: CPU builds of TensorFlow, PyTorch and
# scikit-learn, no torchvision or tf-keras (sandbox/requirements-cpu.txt says why); slim: no framework.
IMAGES = {"full": "grader-sandbox:latest", "cpu": "grader-sandbox:cpu", "slim": "grader-sandbox:slim"}
HASH_LABEL = "org.grader.sandbox.hash"
SANDBOX_UID = 10001  # the image's non-root user
DEBIAN_MIRROR = os.environ.get("GRADER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
VERSION_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "torchvision", "scikit-learn",
                    "opencv-python-headless", "numpy", "matplotlib", "nbclient", "ipykernel")

Flavour = Literal["full", "cpu", "slim"]
Log = Callable[[str], None]


class SandboxError(Exception):
    """A problem with the engine or the image, worded with the fix."""


class BuildResult(BaseModel):
    image: str
    flavour: Flavour
    definition: str  # hash of what defines the image (sandbox/ and the probe)
    size_mb: float
    seconds: float
    reused: bool  # the image was already current: nothing was built
    versions: dict[str, str]


def engine(timeout: int = 30):
    """A client of a reachable Docker engine, or SandboxError saying how to get one."""
    try:
        import docker
    except ImportError as e:
        raise SandboxError("the Docker SDK for Python is not installed: pip install docker") from e
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as e:
        raise SandboxError(
            f"no Docker engine is reachable ({type(e).__name__}: {str(e)[:200]}). Start one "
            "(`sudo systemctl start docker`, or `sudo dockerd &` where there is no systemd), or "
            "grade in the local sandbox with --sandbox local") from e


def probe_sources() -> list[Path]:
    """The grader files that go into the image: the package marker and the probe."""
    probe = sorted(p for p in (PACKAGE_DIR / "probe").rglob("*.py") if "__pycache__" not in p.parts)
    return [PACKAGE_DIR / "__init__.py", *probe]


def definition_files(flavour: Flavour) -> list[Path]:
    return [SANDBOX_DIR / "Dockerfile", SANDBOX_DIR / f"requirements-{flavour}.txt", SANDBOX_DIR / "sitecustomize.py"]


def definition_hash(flavour: Flavour) -> str:
    """Changes whenever the image's environment changes (the base excepted). The probe is not
    part of it: the Docker runner mounts the host's probe over the image's copy, so that the
    probe in the container is always the one whose trace the host's harness reads."""
    h = hashlib.sha256(flavour.encode())
    for path in definition_files(flavour):
        h.update(str(path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def image_state(client, image: str, flavour: Flavour) -> Literal["missing", "stale", "current"]:
    from docker.errors import ImageNotFound

    try:
        labels = client.images.get(image).labels or {}
    except ImageNotFound:
        return "missing"
    return "current" if labels.get(HASH_LABEL) == definition_hash(flavour) else "stale"


def make_base(client, name: str = BASE_IMAGE, log: Log = print) -> None:
    """Debian bookworm (minbase) with Python 3.11 and venv, imported as an image."""
    if not shutil.which("debootstrap"):
        raise SandboxError(f"the base image {name} is not in the engine and none can be pulled here: "
                           "install debootstrap (`apt-get install debootstrap`) so that it can be made, "
                           "or name an image the engine has with --base")
    if os.geteuid() != 0:
        raise SandboxError(f"making the base image {name} with debootstrap needs root: run "
                           "`sudo grader sandbox build` once, or name an image the engine has with --base")
    with tempfile.TemporaryDirectory(prefix="grader-base-") as tmp:
        root, tarball = Path(tmp) / "root", Path(tmp) / "root.tar"
        log(f"making {name} with debootstrap (Debian bookworm, about a minute)")
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
              str(root), DEBIAN_MIRROR])
        _run(["tar", "-C", str(root), "-cf", str(tarball), "."])
        repository, _, tag = name.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag or "latest")


def ensure_base(client, base: str | None, log: Log = print) -> str:
    from docker.errors import ImageNotFound

    name = base or BASE_IMAGE
    try:
        client.images.get(name)
    except ImageNotFound:
        if base:  # named by the user: never replaced by one of ours
            raise SandboxError(f"the base image {base} is not in the engine and no registry is reachable: "
                               "load it (`docker load -i FILE`), or leave out --base to make one") from None
        make_base(client, name, log)
    return name


def download_wheels(flavour: Flavour, dest: Path, log: Log = print) -> Path:
    """The host fetches the wheels (the build itself has no network)."""
    dest.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {flavour} wheels into {dest}")
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
          "--only-binary=:all:", "-d", str(dest), "-r", str(SANDBOX_DIR / f"requirements-{flavour}.txt")])
    return dest


def assemble_context(flavour: Flavour, wheelhouse: Path, dest: Path) -> Path:
    """The build context: the Dockerfile and its inputs, the wheels linked rather than copied."""
    dest.mkdir(parents=True)
    for name in ("Dockerfile", f"requirements-{flavour}.txt", "sitecustomize.py"):
        shutil.copy2(SANDBOX_DIR / name, dest / name)
    for src in probe_sources():
        target = dest / "grader" / src.relative_to(PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    wheels = dest / "wheels"
    wheels.mkdir()
    found = sorted(wheelhouse.glob("*.whl"))
    if not found:
        raise SandboxError(f"{wheelhouse}: no wheels in this folder (fill it with "
                           f"`pip download -d {wheelhouse} -r sandbox/requirements-{flavour}.txt`)")
    for whl in found:
        try:
            os.link(whl, wheels / whl.name)
        except OSError:
            shutil.copy2(whl, wheels / whl.name)
    return dest


def build(flavour: Flavour = "full", base: str | None = None, wheelhouse: Path | None = None,
          tag: str | None = None, force: bool = False, log: Log = print) -> BuildResult:
    """Builds the image unless the engine's copy is already current (force: always)."""
    client = engine(timeout=3600)  # a silent build step (pip installing TensorFlow) takes minutes
    image, digest, started = tag or IMAGES[flavour], definition_hash(flavour), time.monotonic()
    if not force and image_state(client, image, flavour) == "current":
        return _result(client, image, flavour, digest, time.monotonic() - started, reused=True)
    base_name = ensure_base(client, base, log)
    with tempfile.TemporaryDirectory(prefix="grader-build-") as tmp:
        if wheelhouse is None:
            wheelhouse = download_wheels(flavour, Path(tmp) / "wheelhouse", log)
        elif not Path(wheelhouse).is_dir():
            raise SandboxError(f"{wheelhouse}: the wheelhouse folder does not exist")
        context = assemble_context(flavour, Path(wheelhouse), Path(tmp) / "context")
        _docker_build(client, context, image, {"BASE": base_name, "FLAVOUR": flavour, "SANDBOX_HASH": digest}, log)
    return _result(client, image, flavour, digest, time.monotonic() - started, reused=False)


def _docker_build(client, context: Path, image: str, args: dict[str, str], log: Log) -> None:
    tail: list[str] = []
    for chunk in client.api.build(path=str(context), tag=image, buildargs=args, rm=True, forcerm=True,
                                  network_mode="none", decode=True):
        if "error" in chunk:
            raise SandboxError(f"building {image} failed: {chunk['error'].strip()}\n" + "".join(tail[-20:]))
        text = chunk.get("stream", "")
        if text:
            tail.append(text)
            if text.startswith("Step "):
                log(text.strip())


def _result(client, image: str, flavour: Flavour, digest: str, seconds: float, reused: bool) -> BuildResult:
    size = client.images.get(image).attrs.get("Size", 0)
    return BuildResult(image=image, flavour=flavour, definition=digest, size_mb=round(size / 2**20, 1),
                       seconds=round(seconds, 1), reused=reused, versions=versions(client, image))


def versions(client, image: str) -> dict[str, str]:
    """Python's and each framework's version inside the image (absent ones left out)."""
    script = ("import importlib.metadata as m, json, platform\nv = {'python': platform.python_version()}\n"
              f"for n in {list(VERSION_PACKAGES)!r}:\n"
              "    try: v[n] = m.version(n)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(v))")
    out = client.containers.run(image, ["python", "-c", script], network_mode="none", remove=True,
                                stderr=False)
    return json.loads(out.decode().strip().splitlines()[-1])


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxError(f"{' '.join(cmd[:3])} … failed (exit {done.returncode}): "
                           + (done.stderr or done.stdout).strip()[-1500:])
