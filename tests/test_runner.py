"""The local sandbox itself, on small programs that need no framework: scripted stdin,
kept figures, network namespace, output capping, process-tree limits, cleanup."""

from __future__ import annotations

import glob
import os
import tempfile
import textwrap
from pathlib import Path

import pytest

from grader.models import Job, Status
from grader.runners.base import RunPlan
from grader.runners.local import LocalRunner, namespaces


def run(tmp_path: Path, source: str, **plan_overrides):
    folder = tmp_path / "sub"
    folder.mkdir(exist_ok=True)
    (folder / "program3.py").write_text(textwrap.dedent(source))
    job = Job(student="t", program=3, course="20CSEL76", folder=folder, entry=Path("program3.py"))
    plan = dict(entry="program3.py", mode="quick", frameworks=[], dataset="cifar10", epochs_cap=2,
                quick_train=100, quick_test=100, timeout_s=30, memory_mb=2048, output_kb=64,
                cache_dir=str(tmp_path / "cache"))
    plan.update(plan_overrides)
    return LocalRunner().run(job, RunPlan(**plan), tmp_path / "artifacts")


def test_scripted_stdin_ends_an_input_loop(tmp_path):
    r = run(tmp_path, """
        while True:
            text = input("you: ")
            print("bot:", text.upper())
    """, stdin=["hello", "bye"])
    assert r.status == Status.ok
    assert "bot: HELLO" in r.stdout and "bot: BYE" in r.stdout
    assert r.trace["exit"] == {"kind": "stdin_exhausted"}
    assert r.trace["stdin"] == {"scripted": 2, "used": 2}


def test_figures_are_kept_as_pictures(tmp_path):
    r = run(tmp_path, """
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3], [3, 1, 2])
        plt.title("loss")
        plt.show()
    """)
    assert r.status == Status.ok and r.artifacts == ["figure1.png"]
    assert (tmp_path / "artifacts" / "figure1.png").read_bytes()[:4] == b"\x89PNG"
    assert r.trace["figures"] == ["figure1.png"]


def test_job_sees_where_the_gpu_driver_is_and_nothing_else_of_the_host(tmp_path, monkeypatch):
    """A CUDA build finds the driver through LD_LIBRARY_PATH on hosts that keep it outside the
    system's folders (without it the job trains on the CPU); other host variables stay out."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.setenv("GRADER_HOST_SECRET", "gradebook")
    r = run(tmp_path, """
        import os
        print([os.environ.get(k) for k in ("LD_LIBRARY_PATH", "KERAS_BACKEND", "GRADER_HOST_SECRET")])
    """)
    assert "['/usr/local/nvidia/lib64', 'torch', None]" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(namespaces() is None, reason="this OS does not permit a network namespace")
def test_job_has_no_network_interface_but_loopback(tmp_path):
    r = run(tmp_path, """
        import socket
        print([name for _, name in socket.if_nameindex()])
    """)
    assert r.status == Status.ok and "['lo']" in r.stdout
    assert "namespace" in r.protections["network"]


def test_output_is_capped_head_and_tail(tmp_path):
    r = run(tmp_path, """
        for i in range(200000):
            print(f"line {i:06d} " + "x" * 40)
    """, output_kb=16)
    assert r.status == Status.ok and r.output_truncated
    assert r.stdout.startswith("line 000000") and "line 199999" in r.stdout
    assert len(r.stdout) < 20_000 and r.output_bytes > 9_000_000


@pytest.mark.skipif(namespaces() is None, reason="needs a PID namespace")
def test_children_cannot_outlive_the_job(tmp_path):
    marker = tmp_path / "still-alive"
    r = run(tmp_path, f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c",
            "import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).write_text('x')"],
            start_new_session=True)
        print("parent done")
    """)
    assert r.status == Status.ok
    import time
    time.sleep(4)
    assert not marker.exists()  # the background child was killed with the job


def test_too_many_processes_are_stopped(tmp_path):
    r = run(tmp_path, """
        import subprocess, sys, time
        procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(40)]
        time.sleep(30)
    """, max_processes=10)
    assert r.status == Status.killed and "more than 10 processes" in r.message


def test_job_folder_is_removed(tmp_path):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "grader-job-*")))
    run(tmp_path, "open('scratch.txt', 'w').write('x')\n")
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "grader-job-*")))
    assert after <= before
    assert not (tmp_path / "sub" / "scratch.txt").exists()  # the student's folder is untouched


def test_reference_solutions_are_not_importable(tmp_path):
    r = run(tmp_path, """
        import importlib.util, sys
        print("reference importable:", importlib.util.find_spec("reference") is not None)
        print("probe importable:", importlib.util.find_spec("grader.probe") is not None)
    """)
    assert "reference importable: False" in r.stdout and "probe importable: True" in r.stdout


def test_colab_notebook_idioms_run_unchanged(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").mkdir()
    (tmp_path / "sub" / "data" / "labels.txt").write_text("cat\ndog\n")
    r = run(tmp_path, """
        from google.colab import drive
        from google.colab.patches import cv2_imshow
        import numpy as np, os
        drive.mount('/content/drive')
        path = '/content/drive/MyDrive/Lab/labels.txt'
        print(os.path.exists(path), open(path).read().split())
        cv2_imshow(np.zeros((8, 8, 3), dtype=np.uint8))
        import google.protobuf  # the real google namespace still imports
    """)
    assert r.status == Status.ok, r.stderr[-2000:]
    assert "True ['cat', 'dog']" in r.stdout and "Mounted at /content/drive" in r.stdout
    assert r.artifacts == ["cv2_imshow1.png"]
    notes = " ".join(r.trace["notes"])
    assert "drive.mount() was skipped" in notes and "data/labels.txt" in notes
