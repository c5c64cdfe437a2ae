"""Course and rubric files: pydantic models, loading, and errors that name file and field.

`course.yaml` holds the marks scheme of the manual; `programN.yaml` holds, per program,
which checks feed which attribute, their weights and gates, thresholds and limits.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.paths import RUBRICS_DIR


class RubricError(Exception):
    """A rubric or course file is missing or malformed; the message names file and field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- course.yaml


class AttributeSpec(Strict):
    max: float = Field(gt=0)
    bands: dict[str, tuple[float, float]] = Field(default_factory=dict)  # name -> [lo, hi]
    manual: bool = False

    @model_validator(mode="after")
    def _bands_fit(self) -> "AttributeSpec":
        for name, (lo, hi) in self.bands.items():
            if not 0 <= lo <= hi <= self.max:
                raise ValueError(f"band {name} [{lo}, {hi}] must lie within 0..{self.max}")
        return self

    def band_of(self, mark: float) -> str | None:
        for name, (lo, hi) in self.bands.items():
            if lo <= mark <= hi:
                return name
        return None

    def band_ceiling_below(self, band: str) -> float:
        """The highest mark of the bands ranked below `band` (bands listed best first)."""
        names = list(self.bands)
        lower = names[names.index(band) + 1:]
        return max((self.bands[n][1] for n in lower), default=0.0)


class Rounding(Strict):
    mode: Literal["half_up", "half_even"] = "half_up"
    decimals: int = Field(default=0, ge=0, le=2)

    def apply(self, value: float) -> float:
        quantum = Decimal(1).scaleb(-self.decimals)
        how = ROUND_HALF_UP if self.mode == "half_up" else ROUND_HALF_EVEN
        return float(Decimal(str(value)).quantize(quantum, rounding=how))


class PassRule(Strict):
    """A CIE/SEE course (20CSEL76) passes on each of CIE and SEE on its own; a course with a
    plain points scheme (`total:`) on its total."""

    cie_min_fraction: float | None = Field(default=None, ge=0, le=1)
    see_min_fraction: float | None = Field(default=None, ge=0, le=1)
    total_min_fraction: float | None = Field(default=None, ge=0, le=1)


class AssessmentSpec(Strict):
    table: str
    alternative: str | None = None
    # program -> table, for programs whose attributes differ from the others' (a course
    # whose steps differ by activity); the others use `table`.
    by_program: dict[int, str] = Field(default_factory=dict)
    # What one entry is called on the sheets ("Program 3", "Activity 3"); None: the default.
    entry_label: str | None = None


class CiePart(Strict):
    from_: str = Field(alias="from")
    reduce_to: float


class CieComponent(Strict):
    name: str
    key: str
    max: float
    from_: str | None = Field(default=None, alias="from")
    aggregate: Literal["average", "sum"] | None = None
    parts: list[CiePart] = Field(default_factory=list)


class Cie(Strict):
    max: float
    components: list[CieComponent]

    @model_validator(mode="after")
    def _adds_up(self) -> "Cie":
        total = sum(c.max for c in self.components)
        if total != self.max:
            raise ValueError(f"components add up to {total}, not max {self.max}")
        return self


class SeePart(Strict):
    name: str
    from_: str = Field(alias="from")
    max: float


class See(Strict):
    max: float
    raw_max: float
    parts: list[SeePart]
    scale_to: float
    change_of_experiment_zeroes: str

    @model_validator(mode="after")
    def _adds_up(self) -> "See":
        total = sum(p.max for p in self.parts)
        if total != self.raw_max:
            raise ValueError(f"parts add up to {total}, not raw_max {self.raw_max}")
        return self


class Total(Cie):
    """A plain points scheme: the course total made of components (e.g. the sum of the
    activities' marks), with no CIE/SEE split."""

    name: str = "Total"


class SimilaritySpec(Strict):
    """How `grader similarity` pairs a class's submissions of one program. It only flags pairs
    for faculty review; it never changes a mark. Lengths are in characters of copydetect's
    filtered code (names become one letter, comments and spaces are dropped), where a line of
    code is some 10-30 characters."""

    threshold: float = Field(default=0.7, gt=0, le=1)  # a pair at or above this is flagged ...
    min_shared_lines: int = Field(default=5, ge=1)  # ... when it shares at least this many lines
    noise: int = Field(default=50, ge=5)  # shortest match that counts (copydetect's noise_t)
    guarantee: int = Field(default=50, ge=5)  # a match this long is always found (guarantee_t)
    # Pairs compared exactly, after all are ranked: the best max(compare_min,
    # compare_per_submission x submissions), and any pair whose estimate is near the threshold.
    compare_per_submission: int = Field(default=2, ge=1)
    compare_min: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _guarantee_covers_noise(self) -> "SimilaritySpec":
        if self.guarantee < self.noise:
            raise ValueError(f"guarantee {self.guarantee} must be at least noise {self.noise}")
        return self


class Course(Strict):
    course: str
    title: str
    keras_flavour: Literal["keras3", "legacy"] = "keras3"
    similarity: SimilaritySpec = SimilaritySpec()
    rounding: Rounding = Rounding()
    pass_rule: PassRule
    rubric_tables: dict[str, dict[str, AttributeSpec]]
    # Which table each assessment uses; a course that only grades programs needs no more
    # than the default (each program's entry marked with the table `record`).
    assessments: dict[str, AssessmentSpec] = Field(
        default_factory=lambda: {"record": AssessmentSpec(table="record")})
    # Either the manual's CIE and SEE (both), or a plain total: one scheme, not both.
    cie: Cie | None = None
    see: See | None = None
    total: Total | None = None

    @model_validator(mode="after")
    def _tables_exist(self) -> "Course":
        if "record" not in self.assessments:
            raise ValueError("assessments: the programs' entries need an assessment named 'record'")
        for name, a in self.assessments.items():
            for table in filter(None, [a.table, a.alternative, *a.by_program.values()]):
                if table not in self.rubric_tables:
                    raise ValueError(f"assessment {name!r} names unknown table {table!r}")
        return self

    @model_validator(mode="after")
    def _one_scheme(self) -> "Course":
        pr = self.pass_rule
        if self.total is not None:
            if self.cie is not None or self.see is not None:
                raise ValueError("a course has either cie and see, or a total, not both")
            if pr.total_min_fraction is None:
                raise ValueError("pass_rule: a course with a total needs total_min_fraction")
            return self
        if self.cie is None or self.see is None:
            raise ValueError("the marks scheme needs cie and see, or a total")
        if pr.cie_min_fraction is None or pr.see_min_fraction is None:
            raise ValueError("pass_rule: a course with cie and see needs cie_min_fraction and see_min_fraction")
        return self

    @property
    def scheme(self) -> Literal["cie_see", "total"]:
        return "total" if self.total is not None else "cie_see"

    @property
    def components(self) -> list[CieComponent]:
        """The components the course total is made of: CIE's, or the plain total's."""
        return (self.total or self.cie).components

    def table_name(self, assessment: str, alternative: bool = False, program: int | None = None) -> str:
        spec = self.assessments[assessment]
        if program is not None and program in spec.by_program and not alternative:
            return spec.by_program[program]
        return spec.alternative if alternative and spec.alternative else spec.table

    def table(self, assessment: str, alternative: bool = False,
              program: int | None = None) -> dict[str, AttributeSpec]:
        return self.rubric_tables[self.table_name(assessment, alternative, program)]


# ---------------------------------------------------------------- programN.yaml


class Limits(Strict):
    class Quick(Strict):
        epochs: int = Field(ge=1)
        train: int = Field(ge=10)
        test: int = Field(ge=10)
        timeout_s: float = Field(gt=0)
        cell_timeout_s: float | None = Field(default=None, gt=0)  # notebooks: one cell at most
        # Seconds of training the whole quick run may use (all fits together): when they are
        # used the probe stops training cleanly, keeps what finished and measures. None: epochs only.
        train_budget_s: float | None = Field(default=None, gt=0)

        @model_validator(mode="after")
        def _budget_fits(self) -> "Limits.Quick":
            if self.train_budget_s is not None and self.train_budget_s >= self.timeout_s:
                raise ValueError(f"train_budget_s {self.train_budget_s} must leave time within "
                                 f"timeout_s {self.timeout_s} (loading, measuring)")
            return self

    class Full(Strict):
        timeout_s: float = Field(gt=0)
        cell_timeout_s: float | None = Field(default=None, gt=0)

    quick: Quick
    full: Full
    memory_mb: int = Field(ge=256)
    output_kb: int = Field(ge=1)


class Thresholds(Strict):
    class ByMode(Strict):
        full: float = Field(ge=0, le=1)
        quick: float = Field(ge=0, le=1)

    real: ByMode
    standin: ByMode


class CheckSpec(Strict):
    id: str
    attribute: str
    weight: float = Field(ge=0)
    gate: str | None = None  # band the attribute cannot reach when this check fails
    params: dict[str, Any] = Field(default_factory=dict)


Framework = Literal["keras", "torch", "torchvision", "sklearn", "any"]


class ProgramRubric(Strict):
    program: int = Field(ge=1)
    title: str
    # The framework(s) the program uses; the probe for each is installed. A list where the
    # program has parts in several (Program 1: scikit-learn and PyTorch).
    framework: Framework | list[Framework]
    dataset: str | None = None  # None: the program brings its own data (a chatbot's corpus, an image)
    classes: int = Field(ge=2)
    required_steps: list[str]
    limits: Limits
    stdin: list[str] = Field(default_factory=list)
    thresholds: Thresholds | None = None  # required when a check judges accuracy
    # Passed to the probe as they are: what it does after the program has run (e.g. the
    # prompts to put to a chatbot's response function, the reference images to classify).
    probe: dict[str, Any] = Field(default_factory=dict)
    checks: list[CheckSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_unique(self) -> "ProgramRubric":
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"check {check.id!r} is named twice: give the second a name of its own "
                                 f"({check.id}:something)")
            seen.add(check.id)
        return self

    @model_validator(mode="after")
    def _thresholds_for_accuracy(self) -> "ProgramRubric":
        if self.thresholds is None and any(c.id.startswith("accuracy.") for c in self.checks):
            raise ValueError("an accuracy check needs thresholds (real and standin, full and quick)")
        return self

    @property
    def frameworks(self) -> list[str]:
        return [self.framework] if isinstance(self.framework, str) else list(self.framework)

    def threshold(self, source: str, mode: str) -> float:
        by_mode = self.thresholds.real if source == "real" else self.thresholds.standin
        return getattr(by_mode, mode)


# ---------------------------------------------------------------- loading


class Rubrics(BaseModel):
    """One course's course file and program rubrics, with a content hash for the gradebook."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    folder: Path
    course: Course
    programs: dict[int, ProgramRubric]
    digests: dict[str, str]  # file name -> sha256 of its bytes

    def program(self, number: int) -> ProgramRubric:
        if number not in self.programs:
            known = ", ".join(map(str, sorted(self.programs))) or "none"
            raise RubricError(f"{self.folder}: no rubric for program {number} (have: {known})")
        return self.programs[number]

    def version(self, program: int) -> str:
        """Changes whenever the course file or this program's rubric changes."""
        h = hashlib.sha256(self.digests["course.yaml"].encode())
        h.update(self.digests[f"program{program}.yaml"].encode())
        return h.hexdigest()[:16]


# Top-level sections of course.yaml that never change a mark: editing them must not make
# every result in the gradebook stale (the digest feeds each result's grade key).
NOT_GRADING = ("similarity",)


def grading_bytes(raw: bytes) -> bytes:
    """The file without its top-level NOT_GRADING sections (and the blank lines just before
    them), so that a file without such a section hashes as it always did."""
    kept: list[bytes] = []
    skipping = False
    for line in raw.splitlines(keepends=True):
        top_level = line[:1] not in (b" ", b"\t", b"#", b"\n", b"\r", b"")
        if top_level:
            skipping = line.split(b":", 1)[0].strip().decode(errors="replace") in NOT_GRADING
            if skipping:
                while kept and not kept[-1].strip():
                    kept.pop()
        if not skipping:
            kept.append(line)
    return b"".join(kept)


def _read_yaml(path: Path) -> tuple[Any, str]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RubricError(f"{path}: cannot read ({e.strerror})") from e
    try:
        return yaml.safe_load(raw), hashlib.sha256(grading_bytes(raw)).hexdigest()
    except yaml.YAMLError as e:
        raise RubricError(f"{path}: not valid YAML: {e}") from e


def _validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  field {field}: {err['msg']}")
        raise RubricError(f"{path}: invalid {model.__name__}:\n" + "\n".join(lines)) from e


def load_rubrics(course: str = "20CSEL76", folder: Path | None = None) -> Rubrics:
    folder = Path(folder) if folder else RUBRICS_DIR / course
    if not folder.is_dir():
        raise RubricError(f"{folder}: no such rubric folder for course {course}")
    data, digest = _read_yaml(folder / "course.yaml")
    course_model = _validate(Course, data, folder / "course.yaml")
    digests = {"course.yaml": digest}
    programs: dict[int, ProgramRubric] = {}
    for path in sorted(folder.glob("program*.yaml")):
        data, digest = _read_yaml(path)
        rubric = _validate(ProgramRubric, data, path)
        _check_attributes(rubric, course_model, path)
        programs[rubric.program] = rubric
        digests[path.name] = digest
    return Rubrics(folder=folder, course=course_model, programs=programs, digests=digests)


def _check_attributes(rubric: ProgramRubric, course: Course, path: Path) -> None:
    """Each check must feed an attribute the record table grades automatically."""
    from grader.harness.registry import check_fn  # the check library, to catch typos in ids
    from grader.probe.session import AFTER_RUN

    for name in rubric.probe:
        if name not in AFTER_RUN:
            raise RubricError(f"{path}: field probe.{name}: no post-run step named {name!r} "
                              f"(have: {', '.join(AFTER_RUN) or 'none'})")

    table = course.table("record", program=rubric.program)
    for i, check in enumerate(rubric.checks):
        spec = table.get(check.attribute)
        if spec is None or spec.manual:
            raise RubricError(f"{path}: field checks.{i}.attribute: {check.attribute!r} is not an "
                              f"automatic attribute (have: {', '.join(k for k, v in table.items() if not v.manual)})")
        if check.gate and check.gate not in spec.bands:
            raise RubricError(f"{path}: field checks.{i}.gate: unknown band {check.gate!r} "
                              f"(have: {', '.join(spec.bands)})")
        if check_fn(check.id) is None:
            raise RubricError(f"{path}: field checks.{i}.id: no check named {check.id!r}")
