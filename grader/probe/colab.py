"""Lets notebooks written in Google Colab run unchanged in the sandbox.

* `from google.colab import drive; drive.mount(...)` succeeds and mounts nothing;
* `google.colab.patches.cv2_imshow(img)` keeps the image as an artifact picture;
* a path under /content/drive/MyDrive/… (or /content/…) that does not exist resolves to
  the file of the same name in the student's submission folder;
* `google.colab.files.upload()` returns the submission's own files ({name: bytes}, the
  program itself left out), as if the student had picked them: the photo they uploaded
  in Colab is in the submission;
* `google.colab.files.download(path)` keeps the file as an artifact (a picture is shown
  with the figures).

Each use is noted in the trace so that the report can say what was done for the student.
"""

from __future__ import annotations

import builtins
import importlib
import io
import os
import sys
import types
from pathlib import Path

from grader.probe.trace import Trace

COLAB_ROOTS = ("/content/drive/MyDrive/", "/content/drive/My Drive/", "/content/")


UPLOAD_MAX_BYTES = 50 * 2**20  # files.upload() returns no more than this, in all
PROGRAM_SUFFIXES = (".py", ".ipynb")
PICTURES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


def install(submission: Path, artifacts: Path, trace: Trace) -> None:
    _install_modules(artifacts, trace)
    _install_files(submission, artifacts, trace)
    _install_paths(submission, trace)


def _install_modules(artifacts: Path, trace: Trace) -> None:
    try:
        google = importlib.import_module("google")  # the real namespace (google.protobuf, …)
    except ImportError:
        google = types.ModuleType("google")
        google.__path__ = []
    colab = types.ModuleType("google.colab")
    drive = types.ModuleType("google.colab.drive")
    patches = types.ModuleType("google.colab.patches")

    def mount(mountpoint: str = "/content/drive", *args, **kwargs) -> None:
        trace.note("drive.mount() was skipped: files under /content/drive are taken from the submission folder")
        print(f"Mounted at {mountpoint}")

    def cv2_imshow(image) -> None:
        import numpy as np

        kept = [f for f in trace["figures"] if f.startswith("cv2_imshow")]
        name = f"cv2_imshow{len(kept) + 1}.png"
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[2] == 3:
            array = array[:, :, ::-1]  # OpenCV images are BGR
        try:
            from PIL import Image

            Image.fromarray(array.astype("uint8")).save(artifacts / name)
            trace["figures"].append(name)
            trace.save()
        except Exception as e:  # a picture that cannot be kept must not stop the program
            trace.note(f"cv2_imshow could not keep an image: {type(e).__name__}: {e}")

    drive.mount = mount
    drive.flush_and_unmount = lambda *a, **k: None
    patches.cv2_imshow = cv2_imshow
    colab.drive, colab.patches = drive, patches
    google.colab = colab
    sys.modules.update({"google": google, "google.colab": colab, "google.colab.drive": drive,
                        "google.colab.patches": patches})


def _install_files(submission: Path, artifacts: Path, trace: Trace) -> None:
    files = types.ModuleType("google.colab.files")

    def upload(*args, **kwargs) -> dict[str, bytes]:
        uploaded = submission_files(submission)
        names = ", ".join(uploaded) or "none"
        trace.note(f"files.upload() returned the submission's own files: {names}")
        trace.save()
        for name in uploaded:
            print(f"Saving {name} to {name}")
        return uploaded

    def download(filename: str) -> None:
        keep_download(Path(filename), artifacts, trace)

    files.upload, files.download = upload, download
    sys.modules["google.colab"].files = files
    sys.modules["google.colab.files"] = files


PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def submission_files(submission: Path) -> dict[str, bytes]:
    """The submission's files at its top level, pictures first (what these programs upload),
    the program itself, hidden files and empty files left out."""
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(submission.iterdir(), key=lambda p: (p.suffix.lower() not in PICTURE_SUFFIXES, p.name)):
        if (path.name.startswith(".") or not path.is_file() or path.is_symlink()
                or path.suffix.lower() in PROGRAM_SUFFIXES):
            continue
        size = path.stat().st_size
        if size == 0:
            continue
        if total + size > UPLOAD_MAX_BYTES:
            break
        out[path.name] = path.read_bytes()
        total += size
    return out


def keep_download(path: Path, artifacts: Path, trace: Trace) -> None:
    """files.download(path): the file is kept as an artifact named download_<name>."""
    import shutil

    if not path.is_file():
        raise FileNotFoundError(f"Cannot find file: {path}")  # as Colab says it
    name = f"download_{path.name}"
    try:
        shutil.copyfile(path, artifacts / name)
    except OSError as e:
        trace.note(f"files.download({path.name}) could not be kept: {e}")
        trace.save()
        return
    downloads = trace.data.setdefault("downloads", [])
    if name not in downloads:
        downloads.append(name)
    if path.suffix.lower() in PICTURES and name not in trace["figures"]:
        trace["figures"].append(name)
    trace.note(f"files.download({path.name}) was kept as {name}")
    trace.save()


def _install_paths(submission: Path, trace: Trace) -> None:
    original_open = builtins.open
    original_exists, original_isfile = os.path.exists, os.path.isfile

    def resolve(path):
        if not isinstance(path, (str, os.PathLike)):
            return path
        text = os.fspath(path)
        if not isinstance(text, str) or not text.startswith(COLAB_ROOTS) or original_exists(text):
            return path
        matches = sorted(submission.rglob(Path(text).name))
        if not matches:
            return path
        trace.note(f"{text} was read from the submission's {matches[0].relative_to(submission)}")
        return str(matches[0])

    def colab_open(file, *args, **kwargs):
        return original_open(resolve(file), *args, **kwargs)

    builtins.open = io.open = colab_open
    os.path.exists = lambda p: original_exists(resolve(p))
    os.path.isfile = lambda p: original_isfile(resolve(p))
