"""The local runner's clean sandbox server (`python -m grader.clean --serve`): one process per
worker and framework imports the framework once, and each re-measurement runs in a fork of it.
Real scikit-learn KNN requests, real processes; the limits are the job's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader.models import Status
from grader.runners.base import RunPlan, warm_frameworks
from grader.runners.local import LocalRunner

FLAT = {"layout": "flattened channels last", "scale": [1 / 255] * 3, "shift": [0.0] * 3}


def plan(tmp_path: Path, **overrides) -> RunPlan:
    values = dict(entry="program1.py", mode="quick", frameworks=["sklearn"], dataset="cifar10", epochs_cap=2,
                  quick_train=100, quick_test=100, timeout_s=60, memory_mb=2048, output_kb=64,
                  max_processes=32, cache_dir=str(tmp_path / "cache"))
    return RunPlan(**(values | overrides))


def knn_request(folder: Path, seed: int, fit: int = 200, images: int = 40) -> tuple[Path, Path, np.ndarray]:
    """A 1-NN over random 8x8 images whose label is their brightest channel; (request, out,
    the labels of the images to predict)."""
    rng = np.random.default_rng(seed)
    request, out = folder / "request", folder / "out"
    request.mkdir(parents=True)
    out.mkdir()
    x = rng.integers(0, 256, (fit + images, 8, 8, 3), dtype=np.uint8)
    y = x.reshape(len(x), -1, 3).mean(axis=1).argmax(axis=1)
    (request / "knn.json").write_text(json.dumps({"n_neighbors": 1}))
    np.savez(request / "knn.npz", fit_labels=y[:fit])
    np.save(request / "fit_images.npy", x[:fit])
    np.save(request / "served.npy", x[:images])  # fitted rows: a 1-NN names each exactly
    (request / "request.json").write_text(json.dumps({"kind": "sklearn_knn", "preprocess": FLAT,
                                                      "inputs": ["served"]}))
    return request, out, y[:images]


def served_labels(out: Path) -> np.ndarray:
    return np.load(out / "served.npy", allow_pickle=False).argmax(axis=1)


@pytest.fixture
def runner():
    r = LocalRunner()
    yield r
    r.close()


def test_one_server_serves_each_request_in_a_fork_of_its_own(runner, tmp_path):
    """Two students' models, one after the other, served by the same server process: each
    gets its own answers, the second as a fresh runner gives them."""
    first, out1, y1 = knn_request(tmp_path / "a", seed=1)
    assert runner.remeasure(first, out1, plan(tmp_path)) == (Status.ok, "")
    server = next(iter(runner.servers.values()))
    second, out2, y2 = knn_request(tmp_path / "b", seed=2)
    assert runner.remeasure(second, out2, plan(tmp_path)) == (Status.ok, "")
    assert next(iter(runner.servers.values())) is server and server.alive()  # imported once
    assert (served_labels(out1) == y1).all() and (served_labels(out2) == y2).all()
    fresh = LocalRunner()
    try:
        again, out3, _ = knn_request(tmp_path / "c", seed=2)
        assert fresh.remeasure(again, out3, plan(tmp_path)) == (Status.ok, "")
    finally:
        fresh.close()
    assert np.array_equal(np.load(out2 / "served.npy"), np.load(out3 / "served.npy"))


def test_a_failing_request_is_named_and_the_server_serves_the_next(runner, tmp_path):
    request, out, _ = knn_request(tmp_path / "a", seed=1)
    (request / "fit_images.npy").unlink()
    status, message = runner.remeasure(request, out, plan(tmp_path))
    assert status == Status.error and "fit_images.npy" in message, message
    server = next(iter(runner.servers.values()))
    good, out2, y = knn_request(tmp_path / "b", seed=3)
    assert runner.remeasure(good, out2, plan(tmp_path)) == (Status.ok, "")
    assert next(iter(runner.servers.values())) is server and (served_labels(out2) == y).all()


def test_a_request_over_the_memory_limit_ends_with_its_server(runner, tmp_path):
    """The job's memory limit counts the child's memory above the idle server's (the import
    counts while a first request waits for it): a KNN over 40 000 rows breaks 60 MB, the server
    is ended and the next request gets a new one."""
    warm, out0, _ = knn_request(tmp_path / "warm", seed=1)
    assert runner.remeasure(warm, out0, plan(tmp_path))[0] == Status.ok  # the server has imported scikit-learn
    request, out, _ = knn_request(tmp_path / "a", seed=1, fit=40_000, images=4000)
    status, message = runner.remeasure(request, out, plan(tmp_path, memory_mb=60))
    assert status == Status.oom and "60 MB" in message, message
    assert runner.servers == {}
    good, out2, y = knn_request(tmp_path / "b", seed=3)
    assert runner.remeasure(good, out2, plan(tmp_path)) == (Status.ok, "")
    assert (served_labels(out2) == y).all()


def test_a_request_over_the_time_limit_is_stopped(runner, tmp_path):
    warm, out0, _ = knn_request(tmp_path / "warm", seed=1)
    assert runner.remeasure(warm, out0, plan(tmp_path))[0] == Status.ok  # the server has imported scikit-learn
    request, out, _ = knn_request(tmp_path / "a", seed=1, fit=40_000, images=4000)
    status, message = runner.remeasure(request, out, plan(tmp_path, timeout_s=0.3))
    assert status == Status.timeout, message
    assert runner.servers == {}


def test_close_ends_the_servers(tmp_path):
    runner = LocalRunner()
    request, out, _ = knn_request(tmp_path / "a", seed=1)
    assert runner.remeasure(request, out, plan(tmp_path))[0] == Status.ok
    server = next(iter(runner.servers.values()))
    runner.close()
    assert runner.servers == {} and not server.alive()


@pytest.mark.parametrize("frameworks, dataset, imports, probe, servers", [
    (["sklearn", "torch"], "cifar10", ["sklearn", "torch"], {}, ["torch", "sklearn"]),  # Program 1
    (["keras", "torch"], "imdb", ["tensorflow"], {}, ["keras"]),
    (["keras", "torch"], "imdb", ["torch", "numpy"], {}, ["torch"]),  # a PyTorch student of Program 6
    (["keras", "torch"], None, ["tensorflow"], {"chat": {}}, ["keras"]),  # a chatbot is exported too
    (["keras", "torch"], None, ["torch"], {"chat": {}}, ["torch"]),
    (["keras", "torch"], None, ["json", "time"], {"chat": {}}, []),  # a chatbot of no framework exports nothing
    (["torchvision", "keras"], None, ["tensorflow"], {"vision": {}}, ["keras"]),  # keras.applications
    (["torchvision"], None, ["torch", "torchvision"], {"vision": {}}, ["torchvision"]),
    (["keras"], None, ["tensorflow"], {}, []),  # nothing is exported: no server
])
def test_the_servers_started_beside_a_job_are_those_its_export_will_need(tmp_path, frameworks, dataset, imports,
                                                                         probe, servers):
    assert warm_frameworks(plan(tmp_path, frameworks=frameworks, dataset=dataset, imports=imports,
                                probe=probe)) == servers
