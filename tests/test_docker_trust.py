"""The trusted re-measurement in the Docker sandbox, against the real engine: the hostile
programs of test_trust.py run unchanged, each job in its container and each re-measurement in
a second, clean container of the same image, and end as they do in the local sandbox. That
clean container is a long-lived server per worker and framework (grader/runners/docker_clean.py),
tested here as test_clean_server.py tests the local one: real scikit-learn KNN requests.

The image is the CPU sandbox (TensorFlow, PyTorch and scikit-learn in CPU builds), built once
from sandbox/ and reused while it is current. It has no torchvision (sandbox/requirements-cpu.txt
says why), so Programs 2 and 5 are re-measured in Docker only with the full image. Skipped when
no engine is reachable, except where GRADER_REQUIRE_DOCKER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

docker = pytest.importorskip("docker", reason="the Docker SDK for Python is not installed")

from grader import sandbox_image  # noqa: E402
from grader.models import Status  # noqa: E402
from grader.runners.docker import JOB_LABEL, OWNER, DockerRunner  # noqa: E402
from grader.sandbox_image import SandboxError  # noqa: E402
from test_clean_server import knn_request, served_labels  # noqa: E402
from test_clean_server import plan as clean_plan  # noqa: E402

# The same tests, collected here a second time with the Docker runner below: the attacks the
# issue names (the measurement replaced, the trace rewritten, predict answering from the labels,
# training on the test set, a planted pickle) and a PyTorch model's record forged.
from test_trust import (  # noqa: E402,F401
    test_measurement_replaced_from_sys_modules,
    test_planted_pickle_is_never_loaded,
    test_predict_overridden_to_answer_from_the_labels,
    test_pytorch_chatbot_whose_record_claims_a_bidirectional_lstm_and_training,
    test_trace_rewritten_through_gc,
    test_training_on_the_test_set_is_named,
)

pytestmark = pytest.mark.slow

WHEELHOUSE = Path(os.environ.get("GRADER_WHEELHOUSE_CPU", Path.home() / ".cache" / "grader" / "wheelhouse-cpu"))


@pytest.fixture(scope="module")
def cpu_image() -> str:
    """The CPU sandbox image, built unless the engine's copy is current (a few minutes once)."""
    try:
        client = sandbox_image.engine(timeout=60)
    except SandboxError as e:
        if os.environ.get("GRADER_REQUIRE_DOCKER") == "1":
            pytest.fail(f"GRADER_REQUIRE_DOCKER=1 but {e}")
        pytest.skip(f"no Docker engine: {e}")
    name = sandbox_image.IMAGES["cpu"]
    if sandbox_image.image_state(client, name, "cpu") != "current":
        try:
            sandbox_image.download_wheels("cpu", WHEELHOUSE, log=lambda m: None)
        except SandboxError:
            if not any(WHEELHOUSE.glob("*.whl")):
                raise
        sandbox_image.build("cpu", wheelhouse=WHEELHOUSE, log=lambda m: None)
    return name


@pytest.fixture()
def runner(cpu_image, tmp_path) -> DockerRunner:
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    r = DockerRunner(image=cpu_image, jobs_dir=jobs)
    yield r
    r.close()


def test_jobs_here_run_in_containers(runner):
    """Guards the module's premise: the tests above grade through Docker, not the local sandbox."""
    assert isinstance(runner, DockerRunner) and runner.image == sandbox_image.IMAGES["cpu"]


# ---------------------------------------------------------------- the clean container server


def container_ids(client) -> list[str]:
    """This process's job and clean containers (a cluster node's are another owner's)."""
    return [c.id for c in client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={OWNER}"})]


def test_one_clean_container_serves_each_request_in_a_fork_of_its_own(runner, tmp_path):
    """Two students' models served by the same container (one import); each gets its own answers,
    a failing request is named and the next is served, and close() removes the container."""
    client = runner.client
    first, out1, y1 = knn_request(tmp_path / "a", seed=1)
    assert runner.remeasure(first, out1, clean_plan(tmp_path)) == (Status.ok, "")
    server = next(iter(runner.clean.servers.values()))
    broken, out2, _ = knn_request(tmp_path / "b", seed=2)
    (broken / "fit_images.npy").unlink()
    status, message = runner.remeasure(broken, out2, clean_plan(tmp_path))
    assert status == Status.error and "fit_images.npy" in message, message
    second, out3, y3 = knn_request(tmp_path / "c", seed=3)
    assert runner.remeasure(second, out3, clean_plan(tmp_path)) == (Status.ok, "")
    assert next(iter(runner.clean.servers.values())) is server and container_ids(client) == [server.cid]
    assert (served_labels(out1) == y1).all() and (served_labels(out3) == y3).all()
    assert not list((server.work / "in").iterdir())  # each request's files are removed after it
    runner.close()
    assert runner.clean.servers == {} and container_ids(client) == [] and not server.work.exists()


def test_a_clean_request_over_a_limit_ends_its_container(runner, tmp_path):
    """Over the time limit: stopped, its container removed. Over the memory limit (the
    container's, which holds the server and the child): oom. The next request gets a new one."""
    warm, out0, _ = knn_request(tmp_path / "warm", seed=1)
    assert runner.remeasure(warm, out0, clean_plan(tmp_path))[0] == Status.ok
    slow, out1, _ = knn_request(tmp_path / "a", seed=1, fit=40_000, images=4000)
    status, message = runner.remeasure(slow, out1, clean_plan(tmp_path, timeout_s=0.3))
    assert status == Status.timeout, message
    assert runner.clean.servers == {} and container_ids(runner.client) == []
    big, out2, _ = knn_request(tmp_path / "b", seed=1, fit=80_000, images=4000)
    status, message = runner.remeasure(big, out2, clean_plan(tmp_path, memory_mb=300))
    assert status == Status.oom and "300 MB" in message, message
    good, out3, y = knn_request(tmp_path / "c", seed=3)
    assert runner.remeasure(good, out3, clean_plan(tmp_path)) == (Status.ok, "")
    assert (served_labels(out3) == y).all()
