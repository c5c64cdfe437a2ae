"""A student's marks over the whole course: CIE (record entries, internal test, project)
and SEE (Part A, Part B), pending entries, and pass or fail, from the course file alone.

Pure functions, no I/O: in go the course scheme (`Rubrics`), the gradebook's results
(latest per student, assessment and program), the faculty's manual marks and the roster's
names; out come pydantic models the course sheets, the class report and portal.csv render.

Every number of the scheme comes from course.yaml:

* Observation + Record (CIE component with ``aggregate: average``): the average of the
  weekly entries over the programs graded so far in the class. A program graded for some
  students but not (yet) for this one is a pending entry and counts as zero until it is
  graded, so a provisional average never rewards a missing submission.
* Internal assessment (CIE component with ``parts``): each part (the internal test, the
  project) is reduced to its ``reduce_to`` and the parts are added.
* SEE: the parts (Part A, Part B) are added and the sum is scaled from ``raw_max`` to
  ``scale_to``; a change of experiment makes Part A's ``change_of_experiment_zeroes``
  attribute zero.
* Averaging, reducing and scaling all go through `scale`, the one function that rounds
  (with `Rounding.apply`, the course's rule); totals add the rounded figures.
* Pass: CIE and SEE, each on its own, reach their fraction of the maximum (`pass_rule`),
  judged on the marks as awarded (after rounding). Pass or fail is only stated when every
  entry is in; until then the result is "PROVISIONAL".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from grader.course import AttributeSpec, Course, Rubrics
from grader.models import AttributeMark, GradeResult
from grader.reports.html import sheet_relpath
from grader.scoring import score

if TYPE_CHECKING:  # the faculty's marks; only their fields are used here
    from grader.manual import ManualMark  # noqa: F401

Source = Literal["automatic", "manual", "override", "zeroed", "pending"]
Result = Literal["PASS", "FAIL", "PROVISIONAL"]

CHANGE_OF_EXPERIMENT = "change_of_experiment"

ASSESSMENT_LABELS = {
    "record": "Observation + Record",
    "internal": "Internal test",
    "see": "SEE Part A",
    "project": "Project",
    "see_part_b": "SEE Part B (mini project)",
}


class ManualEntry(Protocol):
    """What is read of a manual mark (grader.manual.ManualMark)."""

    usn: str
    assessment: str
    program: int | None
    attribute: str
    mark: float
    kind: str
    reason: str
    source: str
    entered_at: str


# ---------------------------------------------------------------- the one rounding rule


def scale(course: Course, value: float, of: float, to: float) -> float:
    """`value` out of `of`, expressed out of `to` and rounded by the course's rule.

    The single place where averaged, "reduced to" and "scaled to" figures are rounded:
    the average of n entries is scale(sum, n × entry max, component max). Exact
    arithmetic (fractions) up to the rounding, so 6.5 is exactly 6.5 when it is rounded.
    """
    if of <= 0:
        return 0.0
    exact = Fraction(str(value)) * Fraction(str(to)) / Fraction(str(of))
    return course.rounding.apply(float(exact))


class PassLines(BaseModel):
    """Where a course's pass lines lie: on CIE and on SEE, or on the plain total alone."""

    name: str  # what the first total is called: "CIE", or the plain total's name
    first_max: float
    first: Fraction
    see: Fraction | None  # None: no SEE

    model_config = {"arbitrary_types_allowed": True}


def pass_lines(course: Course) -> PassLines:
    pr = course.pass_rule
    if course.total is not None:
        return PassLines(name=course.total.name, first_max=course.total.max,
                         first=threshold(pr.total_min_fraction, course.total.max), see=None)
    return PassLines(name="CIE", first_max=course.cie.max, first=threshold(pr.cie_min_fraction, course.cie.max),
                     see=threshold(pr.see_min_fraction, course.see.scale_to))


def threshold(fraction: float, maximum: float) -> Fraction:
    return Fraction(str(fraction)) * Fraction(str(maximum))


def meets(mark: float, fraction: float, maximum: float) -> bool:
    """mark >= fraction × maximum, exactly (at exactly the line is a pass)."""
    return Fraction(str(mark)) >= threshold(fraction, maximum)


# ---------------------------------------------------------------- models


class MarkCell(BaseModel):
    """One attribute of one entry (e.g. Viva of program 3's weekly entry)."""

    attribute: str
    label: str
    max: float
    mark: float | None  # the mark that counts; None = pending
    automatic: float | None = None  # what the grader measured (before an override)
    band: str | None = None
    source: Source
    manual: bool = False  # entered by faculty by design (Viva, Project, …)
    capped_by: str | None = None  # the check that kept the automatic mark below a band
    note: str = ""


class Entry(BaseModel):
    """One assessed piece: a program's weekly entry, the internal test, SEE Part A, the
    project or SEE Part B. Totals add the marks entered so far."""

    assessment: str  # record | internal | see | project | see_part_b
    label: str
    program: int | None = None
    title: str = ""
    table: str  # the course table its attributes come from
    cells: list[MarkCell]
    total: float
    max: float
    complete: bool
    graded: bool  # a graded result exists (always true for entries made only of manual marks)
    needs_result: bool = True
    status: str | None = None
    mode: str | None = None
    dataset: str = ""
    standin: bool = False
    flags: list[str] = Field(default_factory=list)
    sheet: str | None = None  # the program sheet, relative to the report folder
    grade_key: str = ""
    rescored: bool = False  # marks re-computed from the stored checks for this table
    change_of_experiment: bool = False

    def cell(self, attribute: str) -> MarkCell | None:
        return next((c for c in self.cells if c.attribute == attribute), None)

    def mark(self, attribute: str) -> float | None:
        cell = self.cell(attribute)
        return cell.mark if cell else None


class Part(BaseModel):
    """An entry brought to a maximum (internal test reduced to 10; SEE Part A as is)."""

    name: str
    source: str
    entry: Entry
    mark: float
    max: float
    provisional: bool
    rule: str = ""


class Component(BaseModel):
    """A CIE component: A (average of weekly entries) or B (internal test + project)."""

    key: str
    name: str
    max: float
    mark: float | None
    provisional: bool
    rule: str
    entries: list[Entry] = Field(default_factory=list)  # for an averaged component
    parts: list[Part] = Field(default_factory=list)  # for a component made of parts
    programs_graded: list[int] = Field(default_factory=list)


class OverrideNote(BaseModel):
    where: str
    attribute: str
    automatic: float | None
    mark: float
    reason: str
    source: str = ""
    entered_at: str = ""


class StudentCourseMarks(BaseModel):
    """A student's course marks. With the manual's scheme (`scheme` "cie_see") the cie_*
    fields hold CIE and the see_* fields SEE; with a plain points scheme ("total") the cie_*
    fields hold the course total (named `total_name`), and there is no SEE (empty, zero, met)."""

    course: str
    title: str
    usn: str
    name: str = ""
    scheme: Literal["cie_see", "total"] = "cie_see"
    total_name: str = "CIE"
    cie_components: list[Component]
    cie: float
    cie_max: float
    cie_provisional: bool
    see_parts: list[Part]
    see_raw: float
    see_raw_max: float
    see: float  # scaled
    see_max: float
    see_provisional: bool
    cie_pass_mark: float
    see_pass_mark: float
    cie_meets: bool
    see_meets: bool
    result: Result
    provisional: bool
    pending: list[str] = Field(default_factory=list)
    internal_table: str
    internal_table_label: str
    overrides: list[OverrideNote] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)

    def component(self, key: str) -> Component:
        return next(c for c in self.cie_components if c.key == key)

    @property
    def record(self) -> list[Entry]:
        """The weekly entries (of the averaged component)."""
        return [e for c in self.cie_components for e in c.entries]

    def entry(self, assessment: str) -> Entry | None:
        for c in self.cie_components:
            for e in [*c.entries, *(p.entry for p in c.parts)]:
                if e.assessment == assessment:
                    return e
        return next((p.entry for p in self.see_parts if p.entry.assessment == assessment), None)

    @property
    def below_pass_line(self) -> bool:
        return not (self.cie_meets and self.see_meets)

    @property
    def all_entries(self) -> list[Entry]:
        out = [e for c in self.cie_components for e in [*c.entries, *(p.entry for p in c.parts)]]
        return out + [p.entry for p in self.see_parts]


class Distribution(BaseModel):
    program: int
    title: str = ""
    max: float
    totals: list[float]  # entry totals of the students who submitted this program and were graded
    pending: int  # of those, entries still waiting for a manual mark
    missing: int  # students with no graded result for this program
    not_submitted: int = 0  # graded as missing: no file for this program (counts zero, not a failure)
    failed: int = 0  # submitted, but the program did not run to the end (error, timeout, …)


class FlaggedSubmission(BaseModel):
    usn: str
    name: str = ""
    assessment: str
    label: str
    program: int | None
    reasons: list[str]
    standin: bool = False
    sheet: str | None = None


class ClassSummary(BaseModel):
    """The class's marks; with a plain points scheme (`scheme` "total") the cie_* fields hold
    the course total and there is no SEE (see StudentCourseMarks)."""

    course: str
    title: str
    scheme: Literal["cie_see", "total"] = "cie_see"
    total_name: str = "CIE"
    internal_table: str
    internal_table_label: str
    programs: list[int]
    students: list[StudentCourseMarks]
    distributions: list[Distribution]
    cie_max: float
    see_max: float
    cie_pass_mark: float
    see_pass_mark: float
    flagged: list[FlaggedSubmission]
    standin: dict[str, int] = Field(default_factory=dict)  # entry label -> results on stand-in data
    counts: dict[str, int] = Field(default_factory=dict)  # PASS / FAIL / PROVISIONAL
    pass_rule: str = ""
    rules: list[str] = Field(default_factory=list)

    @property
    def below_pass_line(self) -> list[StudentCourseMarks]:
        return [s for s in self.students if s.below_pass_line]


# ---------------------------------------------------------------- helpers


def fmt(value: float | Fraction | None) -> str:
    """17.0 -> "17", 4.5 -> "4.5" (for the rule texts)."""
    if value is None:
        return ""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def humanize(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def assessment_label(name: str, program: int | None = None, course: Course | None = None) -> str:
    label = ASSESSMENT_LABELS.get(name, humanize(name))
    spec = course.assessments.get(name) if course is not None else None
    if name == "record" and program is not None:
        return f"{spec.entry_label if spec and spec.entry_label else 'Program'} {program}"
    return label


def table_label(course: Course, table: str) -> str:
    """'internal_marks_distribution: Writeup 10 + Execution 20 + Viva 10 = 40'."""
    if not table:
        return ""
    specs = course.rubric_tables[table]
    parts = " + ".join(f"{humanize(k)} {fmt(v.max)}" for k, v in specs.items())
    return f"{table}: {parts} = {fmt(sum(v.max for v in specs.values()))}"


def resolve_internal_table(course: Course, choice: str | None) -> str:
    """The internal test's table: None = the course's default; else a table name or a short
    form ('marks-distribution', 'internal-test-rubric') of the default or its alternative."""
    spec = course.assessments.get("internal")
    if spec is None:  # a course without an internal test (a plain points scheme)
        if choice:
            raise ValueError(f"course {course.course} has no internal test, so no table {choice!r} for it")
        return ""
    allowed = [t for t in (spec.table, spec.alternative) if t]
    if choice is None or choice == "":
        return spec.table
    wanted = choice.strip().lower().replace("-", "_")
    for name in allowed:
        if wanted in (name, f"internal_{name}") or name == f"internal_{wanted}":
            return name
    raise ValueError(f"unknown internal test table {choice!r} (have: "
                     + ", ".join(n.removeprefix("internal_").replace("_", "-") for n in allowed) + ")")


def latest_results(results: Iterable[GradeResult]) -> list[GradeResult]:
    """The latest result per (student, assessment, program): by graded_at, and a full run
    before a quick preview graded at the same moment."""
    best: dict[tuple[str, str, int], GradeResult] = {}
    for r in results:
        key = (r.student.upper(), r.assessment, r.program)
        cur = best.get(key)
        if cur is None or (r.graded_at, r.mode == "full") > (cur.graded_at, cur.mode == "full"):
            best[key] = r
    return sorted(best.values(), key=lambda r: (r.student.upper(), r.assessment, r.program))


def _gates(rubrics: Rubrics, program: int) -> dict[str, str | None]:
    rubric = rubrics.programs.get(program)
    return {c.id: c.gate for c in rubric.checks} if rubric else {}


def _stored_fits(result: GradeResult, assessment: str, table: dict[str, AttributeSpec]) -> bool:
    return (result.assessment == assessment
            and {k: float(v) for k, v in result.max.items()} == {k: float(v.max) for k, v in table.items()})


def automatic_marks(result: GradeResult, rubrics: Rubrics, assessment: str, table_name: str
                    ) -> tuple[dict[str, AttributeMark], bool]:
    """The result's marks for `table_name`: as stored when the result was scored with that
    table, else re-scored from its stored checks. Returns (marks by attribute, re-scored)."""
    course = rubrics.course
    table = course.rubric_tables[table_name]
    if _stored_fits(result, assessment, table):
        stored = {a.attribute: a for a in result.attributes}
        if not stored:
            stored = {k: AttributeMark(attribute=k, max=result.max[k], mark=result.marks.get(k),
                                       manual=table[k].manual,
                                       band=None if result.marks.get(k) is None
                                       else table[k].band_of(result.marks[k]))
                      for k in table}
        return stored, False
    spec = course.assessments[assessment]
    alternative = table_name != spec.table and table_name == spec.alternative
    rescored = score(result.checks, course, _gates(rubrics, result.program), assessment=assessment,
                     alternative_table=alternative, program=result.program)
    return {a.attribute: a for a in rescored}, True


# ---------------------------------------------------------------- one entry


def build_entry(rubrics: Rubrics, assessment: str, table_name: str, result: GradeResult | None,
                program: int | None, manual: list[ManualEntry], *, change_of_experiment: bool = False,
                needs_result: bool = True, overrides: list[OverrideNote] | None = None,
                problems: list[str] | None = None) -> Entry:
    """One entry from its graded result (if any) and the manual marks for it.

    `manual` holds only the rows of this entry. Automatic attributes come from the result
    (pending while there is none) unless an override replaces them; manual attributes are
    pending until entered. A change of experiment zeroes the course's named attribute.
    """
    course = rubrics.course
    table = course.rubric_tables[table_name]
    overrides = overrides if overrides is not None else []
    problems = problems if problems is not None else []
    label = assessment_label(assessment, program, course)
    auto: dict[str, AttributeMark] = {}
    rescored = False
    if result is not None:
        auto, rescored = automatic_marks(result, rubrics, assessment, table_name)
    rows: dict[str, ManualEntry] = {}
    for m in sorted(manual, key=lambda m: m.entered_at or ""):
        if m.attribute == CHANGE_OF_EXPERIMENT:
            continue
        spec = table.get(m.attribute)
        if spec is None:
            problems.append(f"{label}: a mark for {m.attribute!r} was entered, but {table_name} has no such "
                            f"attribute (have: {', '.join(table)}); not counted")
            continue
        if not 0 <= m.mark <= spec.max:
            problems.append(f"{label}: {m.attribute} {fmt(m.mark)} lies outside 0..{fmt(spec.max)} of "
                            f"{table_name}; not counted")
            continue
        rows[m.attribute] = m
    zeroes = course.see.change_of_experiment_zeroes if change_of_experiment and course.see else None

    cells: list[MarkCell] = []
    for name, spec in table.items():
        measured = auto.get(name)
        automatic = None if spec.manual or measured is None else measured.mark
        row = rows.get(name)
        note = ""
        capped_by = None
        if row is not None and (row.kind == "override" or not spec.manual):
            mark, source = row.mark, "override"
            note = f"override: {row.reason}" if row.reason else "override"
            overrides.append(OverrideNote(where=label, attribute=name, automatic=automatic, mark=row.mark,
                                          reason=row.reason, source=row.source, entered_at=row.entered_at))
        elif row is not None:
            mark, source, note = row.mark, "manual", "entered by faculty"
        elif spec.manual:
            mark, source, note = None, "pending", "pending: entered by faculty"
        elif automatic is not None:
            mark, source = automatic, "automatic"
            if measured is not None and measured.capped_by:
                capped_by = measured.capped_by
                note = f"capped by check {measured.capped_by}"
        else:
            mark, source, note = None, "pending", "pending: not graded yet"
        if zeroes == name:
            if source == "override":
                overrides.pop()
                problems.append(f"{label}: the override of {name} ({fmt(row.mark)}) does not count: the change "
                                f"of experiment makes {name} zero")
            mark, source = 0.0, "zeroed"
            note = f"change of experiment: {humanize(name)} made zero"
        cells.append(MarkCell(attribute=name, label=humanize(name), max=spec.max, mark=mark,
                              automatic=automatic, band=None if mark is None else spec.band_of(mark),
                              source=source, manual=spec.manual, capped_by=capped_by, note=note))

    title = ""
    if result is not None:
        title = result.title
    if not title and program is not None and program in rubrics.programs:
        title = rubrics.programs[program].title
    return Entry(
        assessment=assessment, label=label, program=program, title=title, table=table_name, cells=cells,
        total=float(sum(Fraction(str(c.mark)) for c in cells if c.mark is not None)),
        max=sum(c.max for c in cells), complete=all(c.mark is not None for c in cells),
        graded=result is not None or not needs_result, needs_result=needs_result,
        status=result.outcome if result else None, mode=result.mode if result else None,
        dataset=result.dataset if result else "", standin=bool(result and "stand-in" in result.dataset),
        flags=_review_flags(result) if result else [],
        sheet=sheet_relpath(result) if result else None, grade_key=result.grade_key if result else "",
        rescored=rescored, change_of_experiment=change_of_experiment)


def _review_flags(result: GradeResult) -> list[str]:
    seen: dict[str, None] = {}
    for flag in [*result.flags, *(c.flag for c in result.checks if c.flag)]:
        if flag:
            seen.setdefault(flag, None)
    return list(seen)


def _pending_items(entry: Entry) -> list[str]:
    where = entry.label if entry.program is None or entry.assessment == "record" \
        else f"{entry.label} (program {entry.program})"
    if entry.needs_result and not entry.graded:
        missing = [c.label for c in entry.cells if c.mark is None and not c.manual]
        manual = [c.label for c in entry.cells if c.mark is None and c.manual]
        text = f"{where}: not graded yet" + (f" ({', '.join(missing)})" if missing else "")
        return [text] + ([f"{where}: {', '.join(manual)}"] if manual else [])
    names = [c.label for c in entry.cells if c.mark is None]
    if not names:
        return []
    if len(entry.cells) == 1 and names[0].lower() == entry.label.lower():
        return [entry.label]
    return [f"{where}: {', '.join(names)}"]


# ---------------------------------------------------------------- one student


def _rows_for(manual: list[ManualEntry], assessment: str, program: int | None, *,
              any_program: bool = False) -> list[ManualEntry]:
    return [m for m in manual if m.assessment == assessment
            and (any_program or m.program is None or m.program == program)]


def _pick(results: list[GradeResult], assessment: str, label: str, problems: list[str]) -> GradeResult | None:
    """The one graded program of an assessment that has one (internal test, SEE Part A)."""
    mine = [r for r in results if r.assessment == assessment]
    if not mine:
        return None
    mine.sort(key=lambda r: (r.graded_at, r.mode == "full"))
    if len({r.program for r in mine}) > 1:
        problems.append(f"{label}: results for programs {', '.join(str(r.program) for r in mine)}; "
                        f"the latest (program {mine[-1].program}) counts")
    return mine[-1]


def _entry_for(rubrics: Rubrics, source: str, results: list[GradeResult], manual: list[ManualEntry],
               internal_table: str, overrides: list[OverrideNote], problems: list[str]) -> Entry:
    """The single entry a CIE part or SEE part comes `from`: an assessment of one program
    (internal, see), or a course table of manual marks (project, see_part_b)."""
    course = rubrics.course
    if source in course.assessments:
        label = assessment_label(source)
        result = _pick(results, source, label, problems)
        rows_all = [m for m in manual if m.assessment == source]
        program = result.program if result else next((m.program for m in rows_all if m.program is not None), None)
        rows = _rows_for(manual, source, program)
        for m in rows_all:
            if m not in rows and m.attribute != CHANGE_OF_EXPERIMENT:
                problems.append(f"{label}: {m.attribute} {fmt(m.mark)} was entered for program {m.program}, but "
                                f"the {label.lower()} graded is program {program}; not counted")
        table = internal_table if source == "internal" else course.assessments[source].table
        coe = source == "see" and any(m.attribute == CHANGE_OF_EXPERIMENT and m.mark for m in rows_all)
        return build_entry(rubrics, source, table, result, program, rows, change_of_experiment=coe,
                           overrides=overrides, problems=problems)
    if source in course.rubric_tables:
        return build_entry(rubrics, source, source, None, None, _rows_for(manual, source, None, any_program=True),
                           needs_result=False, overrides=overrides, problems=problems)
    raise ValueError(f"course.yaml names {source!r}, which is neither an assessment nor a table")


def pass_rule_text(course: Course) -> str:
    pr, see = course.pass_rule, course.see
    if course.total is not None:
        return (f"Pass: at least {fmt(Fraction(str(pr.total_min_fraction)) * 100)}% of the "
                f"{course.total.name.lower()} ({fmt(threshold(pr.total_min_fraction, course.total.max))} of "
                f"{fmt(course.total.max)}), on the marks as awarded. Until every entry is in, the result is "
                f"provisional.")
    return (f"Pass: at least {fmt(Fraction(str(pr.cie_min_fraction)) * 100)}% in CIE "
            f"({fmt(threshold(pr.cie_min_fraction, course.cie.max))} of {fmt(course.cie.max)}) and at least "
            f"{fmt(Fraction(str(pr.see_min_fraction)) * 100)}% in SEE "
            f"({fmt(threshold(pr.see_min_fraction, see.scale_to))} of {fmt(see.scale_to)}), each on its own, "
            f"on the marks as awarded. Until every entry is in, the result is provisional.")


def rules(course: Course, programs: list[int], internal_table: str) -> list[str]:
    """The rules a sheet states, in words, with the course's numbers."""
    r = course.rounding
    how = "half up" if r.mode == "half_up" else "half to even"
    places = "whole marks" if r.decimals == 0 else f"{r.decimals} decimal place{'s' if r.decimals > 1 else ''}"
    out = []
    for comp in course.components:
        if comp.from_ and comp.aggregate == "sum":
            listed = ", ".join(map(str, programs)) if programs else "none yet"
            out.append(f"{comp.key} ({comp.name}, out of {fmt(comp.max)}) adds the entries of the programs graded "
                       f"so far in this class ({listed}); a program not yet graded for a student counts as zero "
                       f"until it is.")
        elif comp.from_ and comp.aggregate == "average":
            entry_max = sum(v.max for v in course.table(comp.from_).values())
            listed = ", ".join(map(str, programs)) if programs else "none yet"
            out.append(f"{comp.key} ({comp.name}, out of {fmt(comp.max)}) is the average of the weekly entries "
                       f"(each out of {fmt(entry_max)}) over the programs graded so far in this class "
                       f"({listed}); a program not yet graded for a student counts as zero until it is.")
        elif comp.parts:
            bits = []
            for p in comp.parts:
                if p.from_ == "internal":
                    tmax = sum(v.max for v in course.rubric_tables[internal_table].values())
                else:
                    tmax = sum(v.max for v in course.rubric_tables[p.from_].values()) \
                        if p.from_ in course.rubric_tables else p.reduce_to
                bits.append(f"{assessment_label(p.from_).lower()} ({fmt(tmax)} reduced to {fmt(p.reduce_to)})")
            out.append(f"{comp.key} ({comp.name}, out of {fmt(comp.max)}) = " + " + ".join(bits) + ".")
    see = course.see
    if see is not None:
        out.append(f"SEE = " + " + ".join(f"{p.name} ({fmt(p.max)})" for p in see.parts)
                   + f" = {fmt(see.raw_max)}, scaled to {fmt(see.scale_to)}. A change of experiment makes "
                   f"Part A's {see.change_of_experiment_zeroes} zero.")
    out.append(f"Every average, reduction and scaling is rounded {how} to {places}, once; totals add the "
               f"rounded figures.")
    out.append(pass_rule_text(course))
    if internal_table:
        out.append(f"Internal test marked with the table {table_label(course, internal_table)}.")
    return out


def student_marks(rubrics: Rubrics, usn: str, results: list[GradeResult], manual: list[ManualEntry],
                  programs: list[int] | None = None, name: str = "", internal_table: str | None = None
                  ) -> StudentCourseMarks:
    """One student's course marks.

    `results`: this student's results, latest per (assessment, program); `manual`: this
    student's current manual marks; `programs`: the programs graded so far in the class (the
    weekly entries averaged), default the student's own.
    """
    course = rubrics.course
    table_internal = resolve_internal_table(course, internal_table)
    overrides: list[OverrideNote] = []
    problems: list[str] = []
    pending: list[str] = []
    mine = [r for r in results if r.student.upper() == usn.upper()]
    rows = [m for m in manual if m.usn.upper() == usn.upper()]
    name = name or next((r.name for r in mine if r.name), "")

    components: list[Component] = []
    for comp in course.components:
        if comp.from_ and comp.aggregate:
            graded = sorted({r.program for r in mine if r.assessment == comp.from_})
            progs = sorted(set(programs if programs is not None else graded)
                           | {m.program for m in rows if m.assessment == comp.from_ and m.program is not None})
            entries = []
            for p in progs:
                result = next((r for r in mine if r.assessment == comp.from_ and r.program == p), None)
                entry = build_entry(rubrics, comp.from_, course.table_name(comp.from_, program=p), result, p,
                                    _rows_for(rows, comp.from_, p), overrides=overrides, problems=problems)
                entries.append(entry)
                pending += _pending_items(entry)
            total = sum(Fraction(str(e.total)) for e in entries)
            if not entries:
                mark = None
            elif comp.aggregate == "average":
                mark = scale(course, float(total), sum(e.max for e in entries), comp.max)
            else:
                mark = scale(course, float(total), comp.max, comp.max)
            if not entries:
                pending.append(f"{comp.name}: no program graded yet")
            components.append(Component(
                key=comp.key, name=comp.name, max=comp.max, mark=mark,
                provisional=not entries or not all(e.complete for e in entries),
                rule=(f"average of {len(entries)} weekly entr{'y' if len(entries) == 1 else 'ies'} "
                      f"(programs {', '.join(map(str, progs))}) so far, out of {fmt(comp.max)}"
                      if entries else "no program graded yet"),
                entries=entries, programs_graded=progs))
        else:
            parts = []
            for part in comp.parts:
                entry = _entry_for(rubrics, part.from_, mine, rows, table_internal, overrides, problems)
                pending += _pending_items(entry)
                reduced = scale(course, entry.total, entry.max, part.reduce_to)
                parts.append(Part(name=entry.label, source=part.from_, entry=entry, mark=reduced,
                                  max=part.reduce_to, provisional=not entry.complete,
                                  rule=f"{fmt(entry.total)} of {fmt(entry.max)} reduced to {fmt(part.reduce_to)}"))
            components.append(Component(
                key=comp.key, name=comp.name, max=comp.max,
                mark=float(sum(Fraction(str(p.mark)) for p in parts)),
                provisional=any(p.provisional for p in parts),
                rule=" + ".join(f"{p.name.lower()} {fmt(p.mark)}/{fmt(p.max)}" for p in parts), parts=parts))
    cie = float(sum(Fraction(str(c.mark)) for c in components if c.mark is not None))
    cie_provisional = any(c.provisional for c in components)

    see_parts = []
    for part in (course.see.parts if course.see else []):
        entry = _entry_for(rubrics, part.from_, mine, rows, table_internal, overrides, problems)
        pending += _pending_items(entry)
        mark = entry.total if entry.max == part.max else scale(course, entry.total, entry.max, part.max)
        see_parts.append(Part(name=part.name, source=part.from_, entry=entry, mark=mark, max=part.max,
                              provisional=not entry.complete,
                              rule=f"{fmt(entry.total)} of {fmt(entry.max)}"))
    see_raw = float(sum(Fraction(str(p.mark)) for p in see_parts))
    see_scaled = scale(course, see_raw, course.see.raw_max, course.see.scale_to) if course.see else 0.0
    see_provisional = any(p.provisional for p in see_parts)

    lines = pass_lines(course)
    cie_ok = Fraction(str(cie)) >= lines.first
    see_ok = lines.see is None or Fraction(str(see_scaled)) >= lines.see
    provisional = cie_provisional or see_provisional
    result: Result = "PROVISIONAL" if provisional else ("PASS" if cie_ok and see_ok else "FAIL")
    progs = next((c.programs_graded for c in components if c.entries or c.programs_graded), [])
    return StudentCourseMarks(
        course=course.course, title=course.title, usn=usn, name=name, scheme=course.scheme,
        total_name=lines.name, cie_components=components, cie=cie, cie_max=lines.first_max,
        cie_provisional=cie_provisional,
        see_parts=see_parts, see_raw=see_raw, see_raw_max=course.see.raw_max if course.see else 0.0,
        see=see_scaled, see_max=course.see.scale_to if course.see else 0.0, see_provisional=see_provisional,
        cie_pass_mark=float(lines.first), see_pass_mark=float(lines.see or 0),
        cie_meets=cie_ok, see_meets=see_ok, result=result, provisional=provisional, pending=pending,
        internal_table=table_internal, internal_table_label=table_label(course, table_internal),
        overrides=overrides, problems=problems, rules=rules(course, progs, table_internal))


# ---------------------------------------------------------------- the class


def class_summary(rubrics: Rubrics, results: Iterable[GradeResult], manual: Iterable[ManualEntry],
                  roster: Mapping[str, str] | None = None, internal_table: str | None = None) -> ClassSummary:
    """Every student's course marks and the class's figures.

    Students: those on the roster, those with a result and those with a manual mark. The
    weekly entries averaged are the programs graded so far for anyone in the class.
    """
    course = rubrics.course
    table_internal = resolve_internal_table(course, internal_table)
    results = [r for r in latest_results(results) if r.course == course.course]
    manual = [m for m in manual if getattr(m, "course", course.course) == course.course]
    roster = {k.strip().upper(): v for k, v in (roster or {}).items()}
    by_student: dict[str, list[GradeResult]] = {}
    for r in results:
        by_student.setdefault(r.student.upper(), []).append(r)
    rows_by_student: dict[str, list[ManualEntry]] = {}
    for m in manual:
        rows_by_student.setdefault(m.usn.upper(), []).append(m)
    averaged = [c.from_ for c in course.components if c.from_ and c.aggregate]
    programs = sorted({r.program for r in results if r.assessment in averaged}
                      | {m.program for m in manual if m.assessment in averaged and m.program is not None})
    usns = sorted(set(roster) | set(by_student) | set(rows_by_student))
    students = [student_marks(rubrics, usn, by_student.get(usn, []), rows_by_student.get(usn, []),
                              programs=programs, name=roster.get(usn, ""), internal_table=table_internal)
                for usn in usns]

    distributions = []
    for p in programs:
        entries = [e for s in students for e in s.record if e.program == p]
        graded = [e for e in entries if e.graded and e.status != "missing"]
        title = next((e.title for e in graded if e.title), "")
        distributions.append(Distribution(
            program=p, title=title, max=max((e.max for e in entries), default=0.0),
            totals=[e.total for e in graded], pending=sum(1 for e in graded if not e.complete),
            missing=sum(1 for e in entries if not e.graded),
            not_submitted=sum(1 for e in entries if e.status == "missing"),
            failed=sum(1 for e in graded if e.status not in (None, "ok"))))

    flagged: list[FlaggedSubmission] = []
    standin: dict[str, int] = {}
    for s in students:
        for e in s.all_entries:
            if e.standin:
                standin[e.label] = standin.get(e.label, 0) + 1
            if e.flags:
                flagged.append(FlaggedSubmission(usn=s.usn, name=s.name, assessment=e.assessment, label=e.label,
                                                 program=e.program, reasons=e.flags, standin=e.standin,
                                                 sheet=e.sheet))
    counts = {k: sum(1 for s in students if s.result == k) for k in ("PASS", "FAIL", "PROVISIONAL")}
    lines = pass_lines(course)
    return ClassSummary(
        course=course.course, title=course.title, scheme=course.scheme, total_name=lines.name,
        internal_table=table_internal,
        internal_table_label=table_label(course, table_internal), programs=programs, students=students,
        distributions=distributions, cie_max=lines.first_max, see_max=course.see.scale_to if course.see else 0.0,
        cie_pass_mark=float(lines.first), see_pass_mark=float(lines.see or 0),
        flagged=flagged, standin=standin, counts=counts,
        pass_rule=pass_rule_text(course), rules=rules(course, programs, table_internal))


# ---------------------------------------------------------------- program sheets


def sheet_result(result: GradeResult, entry: Entry) -> GradeResult:
    """A copy of `result` for its program sheet, with the marks the course sheet counts for
    it: re-scored for the table in use, manual marks filled in, overrides and a change of
    experiment applied (their reason kept where the model can hold it)."""
    reason_field = "override_reason" in AttributeMark.model_fields
    attributes = []
    for cell in entry.cells:
        extra = {}
        if reason_field and cell.source in ("override", "zeroed"):
            extra["override_reason"] = cell.note.removeprefix("override: ")
        attributes.append(AttributeMark(attribute=cell.attribute, max=cell.max, mark=cell.mark, band=cell.band,
                                        manual=cell.manual, capped_by=cell.capped_by, **extra))
    return result.model_copy(update={
        "attributes": attributes,
        "marks": {a.attribute: a.mark for a in attributes},
        "max": {a.attribute: a.max for a in attributes},
    })
