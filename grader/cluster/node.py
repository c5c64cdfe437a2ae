"""What runs on a node for one job: its files checked against their content hash, the
node's grader, rubric, image and data checked against the driver's, the pipeline run in the
node's sandbox, and the artifacts packed for the trip back.

A node never touches the gradebook and never decides anything the driver did not key: a
node that differs refuses the job with the difference named (`TaskOutcome.refused`).
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import socket
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

from grader.cluster.models import ClusterJob, Fingerprint, NodeInfo, Sandbox, TaskOutcome
from grader.course import RubricError, Rubrics, load_rubrics
from grader.harness.registry import harness_version
from grader.paths import PACKAGE_DIR
from grader.pipeline import data_state, grade, grade_key
from grader.submissions import content_hash

HARNESS_PARTS = ("harness", "probe", "runners")  # hashed by harness_version, named apart


@lru_cache(maxsize=1)
def grader_version() -> str:
    """A hash of the grader's Python code outside what harness_version covers."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR)
        if "__pycache__" not in rel.parts and rel.parts[0] not in HARNESS_PARTS and rel.name != "static.py":
            h.update(str(rel).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def image_version(sandbox: Sandbox) -> str | None:
    """The definition hash of the sandbox image the job runs in (None for the local sandbox)."""
    if sandbox.kind != "docker":
        return None
    from grader.sandbox_image import IMAGES, definition_hash

    return definition_hash("slim" if sandbox.image == IMAGES["slim"] else "full")


def fingerprint(rubrics: Rubrics, program: int, cache_dir: Path, sandbox: Sandbox) -> Fingerprint:
    """This machine's versions of everything a grade key depends on, for one program."""
    return Fingerprint(python=platform.python_version(), grader=grader_version(), harness=harness_version(),
                       rubric=rubrics.version(program), data=data_state(rubrics, program, cache_dir),
                       image=image_version(sandbox))


def differences(expected: Fingerprint, actual: Fingerprint) -> list[str]:
    """'harness: node 1a2b…, driver 3c4d…' for each field that differs."""
    theirs, ours = expected.model_dump(), actual.model_dump()
    return [f"{name}: node {ours[name]}, driver {theirs[name]}" for name in theirs if theirs[name] != ours[name]]


def this_node() -> NodeInfo:
    import ray

    return NodeInfo(node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname(),
                    address=ray.util.get_node_ip_address())


def assigned_gpu() -> str | None:
    """The GPU id Ray gave this task (a share of one GPU), or None for a CPU-only job."""
    import ray

    ids = ray.get_gpu_ids()
    return str(ids[0]) if ids else None


def pack_files(folder: Path, files: list[str]) -> bytes:
    """The job's files as a zip archive, in the order given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for rel in files:
            archive.write(folder / rel, rel)
    return buffer.getvalue()


def unpack(archive: bytes, dest: Path) -> list[str]:
    """Extracts an archive made by pack_files or pack_artifacts into dest; returns its members.
    A member that would land outside dest raises ValueError."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        for name in names:
            target = (dest / name).resolve()
            if root not in target.parents:
                raise ValueError(f"archive member {name!r} would be written outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    return names


def pack_artifacts(folder: Path, max_bytes: int) -> tuple[bytes, list[str]]:
    """The job's artifacts (plain files) as a zip archive of at most max_bytes of content;
    returns (archive, names left out because the cap was reached)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) if folder.is_dir() else []
    if not files:
        return b"", []
    buffer, total, dropped = io.BytesIO(), 0, []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in files:
            rel = str(path.relative_to(folder))
            total += path.stat().st_size
            if total > max_bytes:
                dropped.append(rel)
                continue
            archive.write(path, rel)
    return buffer.getvalue(), dropped


# ------------------------------------------------------------------ the runner of this node

_docker_runners: dict[tuple, object] = {}  # one per worker process and configuration: the image check and
                                            # the GPU runtime check are done once


def make_runner(sandbox: Sandbox, gpu: str | None, labels: dict[str, str]):
    """The node's runner for this job: the local sandbox, or a Docker runner on the GPU Ray assigned."""
    if sandbox.kind == "local":
        from grader.runners.local import LocalRunner

        return LocalRunner()
    from grader.runners.docker import DockerRunner

    key = (sandbox.image, gpu, sandbox.per_gpu, sandbox.cpus)
    if key not in _docker_runners:
        _docker_runners[key] = DockerRunner(image=sandbox.image, gpus=gpu if gpu is not None else "none",
                                            per_gpu=sandbox.per_gpu if gpu is not None else 1, cpus=sandbox.cpus)
    runner = _docker_runners[key]
    runner.labels = labels
    return runner


# ------------------------------------------------------------------ one job

def grade_task(payload: str, files: bytes) -> tuple[str, bytes]:
    """The body of the Ray task: (TaskOutcome as JSON, artifacts archive). A refusal is an
    outcome; a fault of the grader raises (the driver reports it; nothing is stored)."""
    from grader.runners.docker import BATCH_LABEL, NODE_LABEL

    task = ClusterJob.model_validate_json(payload)
    node, gpu = this_node(), assigned_gpu()
    with tempfile.TemporaryDirectory(prefix="grader-task-") as tmp:
        work = Path(tmp)
        rubrics, job, problem = arrive(task, files, work / "submission")
        if problem:
            return TaskOutcome(node=node, gpu=gpu, refused=problem).model_dump_json(), b""
        runner = make_runner(task.sandbox, gpu, {NODE_LABEL: node.node_id, BATCH_LABEL: task.batch})
        try:
            result = grade(job, rubrics, runner, Path(task.cache_dir), work / "artifacts", key=task.key,
                           parallel_jobs=max(1, round((os.cpu_count() or 1) / task.sandbox.cpus)))
        finally:
            runner.close()  # its clean sandbox servers: a node leaves nothing running between tasks
        if result.run is not None:
            result.run.node = node.short
            if gpu is not None and task.sandbox.kind == "local":  # the job inherits CUDA_VISIBLE_DEVICES
                result.run.device = f"gpu {gpu}"
        archive, dropped = pack_artifacts(work / "artifacts", task.artifacts_max_bytes)
        if result.run is not None and dropped:
            result.run.artifacts = [a for a in result.run.artifacts if a not in dropped]
        outcome = TaskOutcome(node=node, gpu=gpu, result=result, archive_dropped=dropped)
        return outcome.model_dump_json(), archive


def arrive(task: ClusterJob, files: bytes, folder: Path):
    """The job as this node will grade it: (rubrics, job, None), or (None, None, why not)."""
    try:
        rubrics = load_rubrics(task.course, Path(task.rubrics_dir) if task.rubrics_dir else None)
    except RubricError as e:
        return None, None, f"this node cannot read the rubrics: {e}"
    rubrics.course.keras_flavour = task.keras_flavour
    if task.job.program not in rubrics.programs:
        return None, None, f"this node's rubrics have no program {task.job.program}"
    differ = differences(task.expected, fingerprint(rubrics, task.job.program, Path(task.cache_dir), task.sandbox))
    if differ:
        return None, None, "this node differs from the driver in " + "; ".join(differ)
    unpack(files, folder)
    job = task.job.model_copy(update={"folder": folder, "files": [Path(f) for f in task.files]})
    arrived = content_hash(folder, folder / job.entry, set(), job.files)
    if arrived != job.content_hash:
        return None, None, (f"the files arrived with content hash {arrived[:12]}, not the "
                            f"{job.content_hash[:12]} the job was keyed with")
    if grade_key(job, rubrics, Path(task.cache_dir)) != task.key:
        return None, None, "this node computes another grade key for the job (its grader differs)"
    return rubrics, job, None
