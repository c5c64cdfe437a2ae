"""What the probe leaves out to stay cheap still behaves as before: a script's process ends
without the interpreter's teardown but with its threads joined, its atexit handlers run and
its output flushed; matplotlib and tf_keras are set up only when the program imports them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from grader.models import Job, Status
from grader.probe import leaks
from grader.runners.base import RunPlan
from grader.runners.local import LocalRunner


def run(tmp_path: Path, source: str, frameworks: list[str] | None = None):
    folder = tmp_path / "sub"
    folder.mkdir(exist_ok=True)
    (folder / "program3.py").write_text(textwrap.dedent(source))
    job = Job(student="t", program=3, course="20CSEL76", folder=folder, entry=Path("program3.py"))
    plan = RunPlan(entry="program3.py", mode="quick", frameworks=frameworks or [], dataset="cifar10", epochs_cap=2,
                   quick_train=100, quick_test=100, timeout_s=120, memory_mb=4096, output_kb=64,
                   cache_dir=str(tmp_path / "cache"))
    return LocalRunner().run(job, plan, tmp_path / "artifacts")


def test_a_script_ends_as_python_would_without_the_teardown(tmp_path):
    r = run(tmp_path, """
        import atexit, sys, threading, time

        def late():
            time.sleep(0.5)
            print("thread finished")

        threading.Thread(target=late).start()
        atexit.register(lambda: print("atexit ran"))
        sys.stdout.write("buffered, no newline")
        print("matplotlib imported:", "matplotlib" in sys.modules, file=sys.stderr)
    """)
    assert r.status == Status.ok and r.trace["exit"] == {"kind": "normal"} and r.exit_code == 0
    assert "thread finished" in r.stdout and "atexit ran" in r.stdout
    assert r.stdout.index("thread finished") < r.stdout.index("atexit ran")
    assert "buffered, no newline" in r.stdout
    assert "matplotlib imported: False" in r.stderr  # nothing imported it: the probe did not either


def test_an_error_still_ends_with_status_one(tmp_path):
    r = run(tmp_path, "raise ValueError('broken')\n")
    assert r.exit_code == 1 and r.trace["exception"]["type"] == "ValueError"


def test_tf_keras_is_served_when_a_keras3_program_imports_it_later(tmp_path):
    r = run(tmp_path, """
        import sys
        import keras
        print("tf_keras before:", "tf_keras" in sys.modules)
        import tf_keras
        print("served:", "grader" in (tf_keras.datasets.cifar10.load_data.__doc__ or ""))
        print("keras served:", "grader" in (keras.datasets.cifar10.load_data.__doc__ or ""))
    """, frameworks=["keras"])
    assert r.status == Status.ok, r.stderr[-2000:]
    assert "tf_keras before: False" in r.stdout
    assert "served: True" in r.stdout and "keras served: True" in r.stdout


def test_leak_signatures_are_each_rows_pixel_order():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    expected = [np.argsort(row, kind="stable").astype(np.int16).tobytes()
                for row in images[..., 0].reshape(20, -1)[:, :leaks.PIXELS]]
    assert leaks.signatures(images) == expected
    assert leaks.signatures(images.astype(np.float32) / 255) == expected
    assert leaks.served_test_share(images[:5].astype(np.float32) / 255, images) == 1.0
