"""The driver's side of a cluster batch: each job one Ray task, with the resources its
sandbox will use, its files beside it; each answer turned back into a GradeResult (and its
artifacts, written atomically under the job's grade key) for the batch to store.

Ray re-runs a task whose worker or node died (`max_retries`) and delivers one result per
task, so a job is stored once. A student program's failure is a result, never an exception,
so it is never retried; a fault of the grader is an exception, not retried and not stored.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable

from grader.cluster import ClusterError, require_ray
from grader.cluster.models import ClusterJob, Sandbox, TaskOutcome
from grader.cluster.node import fingerprint, grade_task, pack_files, unpack
from grader.course import Rubrics
from grader.models import GradeResult, Job
from grader.pipeline import grade
from grader.submissions import entries_by_program, folder_files

NODE_RETRIES = 3  # how often a job is re-run after its worker or node died
SLOTS_REFRESH_S = 5.0
CANCEL_GRACE_S = 10.0  # how long cancelled jobs may take to end by themselves before their workers are killed


class NodeRefused(Exception):
    """A node would not grade a job (its versions differ, the files arrived changed)."""


@dataclass
class ClusterOptions:
    """How the batch asks for a cluster (the CLI's --cluster, --sandbox, --gpus, --per-gpu)."""

    address: str = "auto"  # 'auto' (the cluster `ray start` made here), HOST:PORT, or 'local' (a throw-away one)
    sandbox: str = "local"
    image: str | None = None
    gpus: str = "auto"  # auto | all | none: Ray chooses which GPU
    per_gpu: int = 1
    cpus: float = 1.0  # CPU cores per job: Ray's num_cpus and the container's quota
    rubrics_dir: Path | None = None
    pin_node: str | None = None  # grade on this node only (a node id), e.g. to try one node


def connect(address: str) -> bool:
    """Joins the Ray cluster at `address` unless this process already has; returns whether
    this call connected (so that close() disconnects). ClusterError when none answers."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    if address not in ("auto", "local"):
        _check_reachable(address)
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"no Ray cluster answers at {address!r} ({str(e).splitlines()[0][:200]}). Start one with "
                           "`ray start --head` on this machine (then --cluster auto), or give its address as "
                           "--cluster HOST:6379") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Ray retries an address that does not answer for minutes: fail in seconds instead."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--cluster must be 'auto', 'local' or HOST:PORT (e.g. 10.0.0.1:6379), not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(f"no Ray cluster answers at {address!r} ({e}). Start the head with `ray start --head` "
                           "there, and check that the firewall lets this machine reach the port") from None


def relative_files(job: Job) -> list[str]:
    """The files that travel with a job: those its content hash covers, in that order (a
    student's other programs stay behind)."""
    others = set() if job.files is not None else {p for n, p in entries_by_program(job.folder).items()
                                                  if n != job.program}
    return [str(p.relative_to(job.folder)) for p in folder_files(job.folder, job.files) if p not in others]


def store_artifacts(archive: bytes, dest: Path) -> None:
    """Writes a job's artifacts under dest all at once: unpacked beside it, then renamed."""
    if not archive:
        return
    part = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        unpack(archive, part)
        shutil.rmtree(dest, ignore_errors=True)  # an earlier, unstored attempt
        os.replace(part, dest)
    finally:
        shutil.rmtree(part, ignore_errors=True)


class RayEngine:
    """Runs a batch's jobs as Ray tasks (see the module's docstring)."""

    def __init__(self, rubrics: Rubrics, cache_dir: Path, options: ClusterOptions):
        self.ray = require_ray()
        self.rubrics, self.cache_dir, self.options = rubrics, Path(cache_dir), options
        self.owns_connection = connect(options.address)
        self.batch = uuid.uuid4().hex[:12]
        try:
            self.sandbox = self._sandbox()
        except ClusterError:
            self.close()
            raise
        # max_calls=0 keeps a worker for the next task (for GPU tasks Ray would start a fresh
        # process per task, about a second each)
        self.task = self.ray.remote(max_calls=0)(grade_task)
        self.waiting: dict[Any, Path] = {}  # ObjectRef -> where its artifacts go
        self.local: dict[str, GradeResult | Exception] = {}  # graded here (no sandbox needed)
        self._slots, self._slots_at = 0, -SLOTS_REFRESH_S
        self.swept = self.sweep(None)  # containers left by an earlier batch whose owner died

    def _sandbox(self) -> Sandbox:
        from grader.sandbox_image import IMAGES

        gpus = self.options.gpus.strip().lower()
        if gpus not in ("auto", "all", "none"):
            raise ClusterError("on a cluster Ray chooses each job's GPU: --gpus must be 'auto', 'all' or 'none', "
                               f"not {self.options.gpus!r}")
        cluster_gpus = self.ray.cluster_resources().get("GPU", 0)
        if gpus == "all" and not cluster_gpus:
            raise ClusterError("--gpus all: no node of the cluster offers a GPU; grade on the CPU with --gpus none")
        if self.options.per_gpu < 1 or self.options.cpus <= 0:
            raise ClusterError("--per-gpu must be at least 1 and --cpus-per-job more than 0")
        image = (self.options.image or IMAGES["full"]) if self.options.sandbox == "docker" else None
        return Sandbox(kind=self.options.sandbox, image=image, per_gpu=self.options.per_gpu,
                       gpu=gpus == "all" or (gpus == "auto" and cluster_gpus > 0), cpus=self.options.cpus)

    @property
    def parallel(self) -> int:
        """Jobs kept submitted: twice the jobs the cluster can run at once (re-read every few s)."""
        if time.monotonic() - self._slots_at > SLOTS_REFRESH_S:
            cpus = self.ray.cluster_resources().get("CPU", 0)
            self._slots, self._slots_at = max(2, 2 * int(cpus // self.options.cpus)), time.monotonic()
        return self._slots

    def resources(self, job: Job) -> dict[str, Any]:
        """Ray's admission for one job: the container's CPU and memory limits, a 1/K share of a GPU."""
        memory_mb = self.rubrics.program(job.program).limits.memory_mb
        opts: dict[str, Any] = dict(num_cpus=self.options.cpus, memory=memory_mb * 2**20,
                                    num_gpus=1 / self.options.per_gpu if self.sandbox.gpu else 0,
                                    max_retries=NODE_RETRIES, retry_exceptions=False)
        if self.options.pin_node:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.options.pin_node, soft=False)
        return opts

    def submit(self, job: Job, key: str, artifacts_to: Path) -> Hashable:
        if job.rejected_reason:  # nothing to run: graded here, where the gradebook is
            handle = f"local:{key}"
            self.local[handle] = grade(job, self.rubrics, None, self.cache_dir, artifacts_to, key=key)
            return handle
        files = relative_files(job)
        task = ClusterJob(job=job, key=key, files=files, course=job.course,
                          rubrics_dir=str(self.options.rubrics_dir.resolve()) if self.options.rubrics_dir else None,
                          keras_flavour=self.rubrics.course.keras_flavour, cache_dir=str(self.cache_dir.resolve()),
                          sandbox=self.sandbox, batch=self.batch,
                          expected=fingerprint(self.rubrics, job.program, self.cache_dir, self.sandbox))
        ref = self.task.options(**self.resources(job)).remote(task.model_dump_json(), pack_files(job.folder, files))
        self.waiting[ref] = artifacts_to
        return ref

    def finished(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, GradeResult | Exception]]:
        done = [(h, self.local.pop(h)) for h in handles if h in self.local]
        refs = [h for h in handles if h in self.waiting]
        if refs:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0 if done else timeout)
            done += [(ref, self._answer(ref)) for ref in ready]
        return done

    def _answer(self, ref) -> GradeResult | Exception:
        """The task's result with its artifacts in place, or the exception to report."""
        dest = self.waiting.pop(ref)
        try:
            text, archive = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:  # the grader's code raised on the node
            return e.cause if isinstance(e.cause, Exception) else e
        except self.ray.exceptions.RayError as e:  # the node or worker died more than NODE_RETRIES times
            return ClusterError(f"the job was lost with its node or worker: {str(e).splitlines()[0][:300]}")
        outcome = TaskOutcome.model_validate_json(text)
        if outcome.refused:
            return NodeRefused(f"node {outcome.node.short} refused the job: {outcome.refused}")
        store_artifacts(archive, dest)
        return outcome.result

    def sweep(self, batch: str | None):
        """Docker jobs' containers removed on every node: this batch's (at a cancel), and any
        whose owner is gone. (The local sandbox leaves no container.)"""
        from grader.cluster.sweep import sweep_cluster

        return sweep_cluster(batch) if self.sandbox.kind == "docker" else []

    def cancel(self) -> None:
        """Every task cancelled: first by interrupting it (a job removes its own container),
        then, for those still running after CANCEL_GRACE_S, by killing its worker; then every
        node swept of this batch's containers, which a killed worker cannot remove."""
        refs = list(self.waiting)
        for force in (False, True):
            for ref in refs:
                self.ray.cancel(ref, force=force)
            if refs:
                _, refs = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        self.swept = self.sweep(self.batch)
        self.waiting.clear()

    def close(self) -> None:
        if self.owns_connection and self.ray.is_initialized():
            self.ray.shutdown()
