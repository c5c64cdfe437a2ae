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


class SyntaxProblem(BaseModel):
    file: str
    line: int | None
    text: str
    message: str


class StaticReport(BaseModel):
    parses: bool
    syntax_error: SyntaxProblem | None = None
    steps: dict[str, bool] = Field(default_factory=dict)  # step name -> present
    imports: list[str] = Field(default_factory=list)
    removed_apis: list[dict[str, Any]] = Field(default_factory=list)  # api, replacement, line
    source_lines: int = 0


# ---------------------------------------------------------------- one sandbox run


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
