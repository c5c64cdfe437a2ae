"""The trusted re-measurement in the Docker sandbox, against the real engine: the hostile
programs of test_trust.py run unchanged, each job in its container and each re-measurement in
a second, clean container of the same image, and end as they do in the local sandbox.

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
from grader.runners.docker import DockerRunner  # noqa: E402
from grader.sandbox_image import SandboxError  # noqa: E402

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
    return DockerRunner(image=cpu_image, jobs_dir=jobs)


def test_jobs_here_run_in_containers(runner):
    """Guards the module's premise: the tests above grade through Docker, not the local sandbox."""
    assert isinstance(runner, DockerRunner) and runner.image == sandbox_image.IMAGES["cpu"]
