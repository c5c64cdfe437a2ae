"""Lets notebooks written in Google Colab run unchanged in the sandbox.

* `from google.colab import drive; drive.mount(...)` succeeds and mounts nothing;
* `google.colab.patches.cv2_imshow(img)` keeps the image as an artifact picture;
* a path under /content/drive/MyDrive/… (or /content/…) that does not exist resolves to
  the file of the same name in the student's submission folder.

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


def install(submission: Path, artifacts: Path, trace: Trace) -> None:
    _install_modules(artifacts, trace)
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
