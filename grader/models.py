"""Typed data that crosses module boundaries: jobs, run records, check results, marks.

Every arrow in the pipeline (submission -> static -> runner -> harness -> scoring ->
gradebook -> reports) passes one of these models, so each stage can be tested alone and
everything serialises to JSON.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["quick", "full"]


class Status(str, Enum):
    ok = "ok"
    error = "error"
    timeout = "timeout"
    oom = "oom"
    killed = "killed"
    rejected = "rejected"


class Job(BaseModel):
    """One submission of one student for one program, in one mode."""

    student: str
    name: str = ""
    program: int
    course: str
    mode: Mode = "quick"
    folder: Path  # the student's submission folder (copied into the sandbox)
    entry: Path | None = None  # the script or notebook to run, relative to folder
    files: list[Path] | None = None  # what to carry into the sandbox (relative); None = the whole folder
    content_hash: str = ""
    assessment: str = "record"  # record | internal | see: which table turns checks into marks
    rejected_reason: str | None = None  # set when the submission cannot be run at all


# ---------------------------------------------------------------- static analysis


NOT_SUBMITTED = "missing"  # the content hash of a job with no file for its program


class SyntaxProblem(BaseModel):
    file: str
    line: int | None  # in a notebook: the line within the cell
    text: str
    message: str
    cell: int | None = None  # a notebook's code cell, counted from 1
    cell_first_line: str = ""

    def where(self) -> str:
        """'line 10', or 'cell 1 (`from tensorflow import keras`), line 10' in a notebook."""
        cell = f"cell {self.cell} (`{self.cell_first_line}`)" if self.cell else ""
        line = f"line {self.line}" if self.line else ""
        return ", ".join(p for p in (cell, line) if p)


class StaticReport(BaseModel):
    parses: bool
    syntax_error: SyntaxProblem | None = None
    steps: dict[str, bool] = Field(default_factory=dict)  # step name -> present
    imports: list[str] = Field(default_factory=list)
    removed_apis: list[dict[str, Any]] = Field(default_factory=list)  # api, replacement, line
    source_lines: int = 0


# ---------------------------------------------------------------- one sandbox run


class ReferenceOutput(BaseModel):
    """A pretrained model's output on one of the host's reference images, computed in the clean
    sandbox (grader/trusted_vision.py): a classifier's scores, or a detector's boxes."""

    image: str
    size: list[int] = Field(default_factory=list)  # width, height in pixels
    shape: list[int] | None = None  # a classifier's output, e.g. [1, 2]
    finite: bool | None = None
    argmax: list[int] | None = None
    detections: dict[str, Any] | None = None  # as grader.probe.torchvision_hooks.describe_detections
    origin: str = ""  # "drawn" by the host, or a "photo" faculty staged
    objects: list[dict[str, Any]] = Field(default_factory=list)  # the image's known objects: {box, label}


class WeightsMatch(BaseModel):
    """How much of the exported model is the pretrained file the host serves (counted in
    parameters of the tensors the file has): taken verbatim from the host's copy, or the
    program's own tensors close to it (cosine >= NEAR, i.e. fine-tuned from it)."""

    file: str | None = None  # the served file the export names as its base
    parameters: int = 0  # of the model's tensors that the file also has
    from_file: int = 0
    near_file: int = 0

    @property
    def share(self) -> float:
        return (self.from_file + self.near_file) / self.parameters if self.parameters else 0.0


class GanJudgement(BaseModel):
    """What a GAN's generator makes, judged on the host (grader/gan_judge.py) from samples the
    clean sandbox generated on noise of a seed the program never saw."""

    n: int  # samples judged
    confident: float  # share classified as one digit with probability >= 0.9
    digits: int  # digits making up at least 2% of the samples
    evenness: float  # entropy of the digits' spread / log(10): 1 even, 0 one digit
    digit_counts: list[int]  # samples per digit (likeliest class)
    frechet: float  # Fréchet distance to real test digits in the classifier's features
    frechet_fresh: float | None = None  # the same for the same architecture freshly initialised (untrained)
    pixel_mean: float  # of the samples, pixels in [0, 1]
    pixel_std: float
    classifier_accuracy: float  # the reference classifier's, on the served test digits
    classifier_key: str  # its cache key (the data it was trained on)
    source: str  # real | standin: the data the classifier was trained on
    grid: str = ""  # base64 of the first 36 samples, uint8 36 x 28 x 28, for the mark sheet
    output_range: str = ""  # how the generator's outputs were mapped to [0, 1]


class TrustedMeasurement(BaseModel):
    """A model's accuracy measured outside the student's process (grader/trusted.py): the
    model the program exported, checked by the host, run in a clean sandbox on images, and
    scored by the host against labels that sandbox never saw."""

    model: int | None = None  # the model's index in the trace
    part: str | None = None  # Program 1: "net"
    framework: str = ""
    kind: str = ""  # keras_json | keras_savedmodel | torch_pt2 | sklearn_knn | torchvision_state | keras_application
    accuracy: float | None = None  # the figure that counts: unseen images where there are any
    accuracy_served: float | None = None  # on the test images the program was served
    accuracy_unseen: float | None = None  # on images the program never received
    n_served: int = 0
    n_unseen: int = 0
    unseen: str = ""  # where the unseen images came from
    test_set_visible: bool = False  # a full run on real data: every test image was served
    error: str | None = None  # why there is no trusted figure
    wall_s: float = 0.0
    reference: list[ReferenceOutput] = Field(default_factory=list)  # a pretrained model's outputs (Programs 2, 5)
    weights: WeightsMatch | None = None  # a pretrained model's weights against the served file
    layers: list[dict[str, Any]] = Field(default_factory=list)  # a chatbot's, read from its exported JSON
    loss: float | None = None  # a chatbot's loss on the rows it was fitted on
    loss_fresh: float | None = None  # the same architecture's, freshly initialised
    loss_error: str | None = None  # why the loss could not be measured outside the program
    gan: GanJudgement | None = None  # a GAN generator's samples, judged (grader/trusted_gan.py)


class RunRecord(BaseModel):
    """What came out of the sandbox: verdict, capped output, the probe's trace."""

    status: Status
    message: str = ""
    exit_code: int | None = None
    wall_s: float = 0.0
    peak_memory_mb: float | None = None
    stdout: str = ""
    stderr: str = ""
    output_bytes: int = 0  # total bytes written to stdout+stderr, before capping
    output_truncated: bool = False
    trace: dict[str, Any] | None = None  # the probe's trace.json, validated as plain JSON
    artifacts: list[str] = Field(default_factory=list)  # paths relative to the job's artifact dir
    protections: dict[str, str] = Field(default_factory=dict)  # protection -> how / "off: why"
    sandbox: str = "local"
    device: str = "cpu"
    node: str | None = None  # on a cluster: the node that ran the job ('host (node id)')
    trusted: list[TrustedMeasurement] = Field(default_factory=list)  # re-measured in a clean sandbox
    data_source: str | None = None  # real | standin, as the host's cache says (not the program's trace)
    export_dir: str | None = Field(default=None, exclude=True)  # host copy of the exported models, transient


# ---------------------------------------------------------------- harness and scoring


class CheckResult(BaseModel):
    id: str
    title: str = ""
    attribute: str = ""  # writeup | execution | ...
    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    weight: float = 0.0
    message: str = ""
    hint: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    flag: str | None = None  # something faculty should review


class AttributeMark(BaseModel):
    attribute: str
    max: float
    mark: float | None  # None = pending (entered by faculty)
    band: str | None = None
    manual: bool = False
    capped_by: str | None = None  # the check that kept the mark below a band
    override_reason: str | None = None  # faculty replaced the automatic mark, and why


class GradeResult(BaseModel):
    """The result object of DESIGN.md, plus what the reports need."""

    student: str
    name: str = ""
    program: int
    title: str = ""
    course: str
    mode: Mode
    assessment: str = "record"
    status: Status
    status_message: str = ""
    marks: dict[str, float | None]
    max: dict[str, float]
    attributes: list[AttributeMark] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    dataset: str = ""
    quick_limits: dict[str, Any] = Field(default_factory=dict)
    content_hash: str = ""
    grade_key: str = ""
    graded_at: str = ""
    run: RunRecord | None = None
    static: StaticReport | None = None

    @property
    def total(self) -> float:
        return sum(v for v in self.marks.values() if v is not None)

    @property
    def missing(self) -> bool:
        """No file was submitted for this program: missing work, not a program that failed."""
        return self.content_hash == NOT_SUBMITTED

    @property
    def outcome(self) -> str:
        """The status as faculty see it: 'missing' for work not submitted, else the run's status."""
        return "missing" if self.missing else self.status.value

    @property
    def total_max(self) -> float:
        return sum(self.max.values())

    def public(self) -> dict[str, Any]:
        """The stable machine-readable result (`grader check --json`)."""
        return self.model_dump(
            mode="json",
            include={"student", "program", "course", "mode", "status", "status_message",
                     "marks", "max", "checks", "flags", "dataset", "quick_limits",
                     "assessment", "content_hash"},
            exclude={"checks": {"__all__": {"evidence"}}},
        )
