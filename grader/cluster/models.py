"""What crosses the wire between the driver and a node: typed, serialised as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from grader.models import GradeResult, Job

ARTIFACTS_MAX_BYTES = 20 * 2**20  # the most one job's artifacts archive may carry back


class Fingerprint(BaseModel):
    """What a grade key depends on beyond the submission: a node must match the driver's."""

    python: str  # major.minor.patch (Ray itself needs the same on every node)
    grader: str  # the grader's code outside the harness
    harness: str  # harness, probe, runners, static analysis (grader.harness.registry.harness_version)
    rubric: str  # course.yaml and the program's rubric (Rubrics.version)
    data: str  # the staged data's state, or the stand-in's version (pipeline.data_state)
    image: str | None = None  # the sandbox image's definition hash (Docker only)


class Sandbox(BaseModel):
    """How a node runs the job: the runner and the resources Ray granted it."""

    kind: Literal["local", "docker"] = "local"
    image: str | None = None
    per_gpu: int = 1  # jobs sharing one GPU; the container's memory share follows it
    gpu: bool = False  # the job asked Ray for a (share of a) GPU
    cpus: float = 1.0  # the container's CPU quota, the same as the task's num_cpus


class ClusterJob(BaseModel):
    """One job as a node receives it; its files travel beside it as a zip archive."""

    job: Job
    key: str  # the driver's grade key
    files: list[str]  # the archive's members, in the order the content hash was taken
    course: str
    rubrics_dir: str | None = None  # None: the rubrics/ folder of the node's grader
    keras_flavour: str
    cache_dir: str  # the dataset cache, at the same path on every node
    sandbox: Sandbox = Field(default_factory=Sandbox)
    batch: str  # labels the batch's containers, for the sweep
    expected: Fingerprint
    artifacts_max_bytes: int = ARTIFACTS_MAX_BYTES


class NodeInfo(BaseModel):
    node_id: str
    host: str
    address: str

    @property
    def short(self) -> str:
        """'grader-2 (3f9a1c2e)': the name a person sees."""
        return f"{self.host} ({self.node_id[:8]})"


class TaskOutcome(BaseModel):
    """A node's answer: a result to store, or a refusal (an infrastructure error, never a mark)."""

    node: NodeInfo
    gpu: str | None = None  # the GPU id Ray assigned, which the container was given
    result: GradeResult | None = None
    refused: str | None = None  # why the node would not grade the job
    archive_dropped: list[str] = Field(default_factory=list)  # artifacts over the size cap, left behind
