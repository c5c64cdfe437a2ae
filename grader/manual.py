"""Marks faculty enter by hand (Viva, Project, Demonstration, Report) and overrides of
automatic marks, kept in the gradebook with their full history.

Entries are appended, never updated: the current mark of a key is its latest entry, and
every earlier one stays as history with when and from where it came.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from grader.course import AttributeSpec, Rubrics
from grader.gradebook import Gradebook

SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_marks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    course     TEXT NOT NULL,
    usn        TEXT NOT NULL,
    assessment TEXT NOT NULL,
    program    INTEGER,
    attribute  TEXT NOT NULL,
    mark       REAL NOT NULL,
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL,
    entered_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS manual_marks_key ON manual_marks (course, usn, assessment, program, attribute);
"""
CSV_COLUMNS = ["usn", "assessment", "program", "attribute", "mark", "reason"]
# Entries that belong to no program, and the course table that gives their maxima.
STANDALONE = {"project": "project", "see_part_b": "see_part_b"}
CHANGE_OF_EXPERIMENT = "change_of_experiment"


class MarksError(ValueError):
    """A manual mark that cannot be accepted; the message says where and why."""


class ManualMark(BaseModel):
    course: str
    usn: str
    assessment: str  # record | internal | see | project | see_part_b
    program: int | None
    attribute: str
    mark: float
    kind: Literal["manual", "override"]
    reason: str = ""
    source: str
    entered_at: str = ""

    @property
    def key(self) -> tuple:
        return (self.course, self.usn, self.assessment, self.program, self.attribute)


def ensure_schema(book: Gradebook) -> None:
    book.db.executescript(SCHEMA)


def _table(rubrics: Rubrics, assessment: str) -> dict[str, AttributeSpec]:
    """The attributes an assessment's marks may have. Where the manual gives two tables
    (the internal test), a mark is accepted up to the larger maximum; the semester report
    then counts it against the table in use and lists any mark that does not fit."""
    course = rubrics.course
    if assessment in STANDALONE:
        return course.rubric_tables[STANDALONE[assessment]]
    if assessment in course.assessments:
        table = dict(course.table(assessment))
        for name, spec in course.table(assessment, alternative=True).items():
            if name not in table or spec.max > table[name].max:
                table[name] = spec
        return table
    raise MarksError(f"unknown assessment {assessment!r} (have: "
                     f"{', '.join(list(course.assessments) + list(STANDALONE))})")


def validate(rubrics: Rubrics, known_usns: set[str], usn: str, assessment: str, program: int | None,
             attribute: str, mark: float, reason: str, source: str) -> ManualMark:
    """One entry checked against the course's tables; raises MarksError naming the field."""
    usn = usn.strip().upper()
    if usn not in known_usns:
        raise MarksError(f"usn: unknown USN {usn!r} (not in the gradebook or roster)")
    table = _table(rubrics, assessment)
    if assessment in STANDALONE:
        if program is not None:
            raise MarksError(f"program: {assessment} marks belong to no program; leave it empty")
    elif program is None or program not in rubrics.programs:
        raise MarksError(f"program: unknown program {program!r} (have: {', '.join(map(str, sorted(rubrics.programs)))})")
    if assessment == "see" and attribute == CHANGE_OF_EXPERIMENT:
        if mark not in (0, 1):
            raise MarksError("mark: change_of_experiment is 1 (changed) or 0 (not changed)")
        return ManualMark(course=rubrics.course.course, usn=usn, assessment=assessment, program=program,
                          attribute=attribute, mark=mark, kind="manual", reason=reason, source=source)
    spec = table.get(attribute)
    if spec is None:
        raise MarksError(f"attribute: {attribute!r} is not part of {assessment} (have: {', '.join(table)})")
    if not 0 <= mark <= spec.max:
        raise MarksError(f"mark: {mark:g} is outside 0..{spec.max:g} for {attribute} ({assessment})")
    kind = "manual" if spec.manual else "override"
    if kind == "override" and not reason.strip():
        raise MarksError(f"reason: {attribute} is marked automatically; overriding it needs a reason")
    return ManualMark(course=rubrics.course.course, usn=usn, assessment=assessment, program=program,
                      attribute=attribute, mark=mark, kind=kind, reason=reason.strip(), source=source)


def known_usns(book: Gradebook, course: str, roster: dict[str, str] | None = None) -> set[str]:
    rows = book.db.execute("SELECT DISTINCT student FROM results WHERE course = ?", (course,))
    return {r[0] for r in rows} | set(roster or {})


def record(book: Gradebook, marks: list[ManualMark]) -> None:
    """Appends entries in one transaction: all of them or none."""
    ensure_schema(book)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cur = book.db.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.executemany(
            "INSERT INTO manual_marks (course, usn, assessment, program, attribute, mark, kind, reason, source, "
            "entered_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(m.course, m.usn, m.assessment, m.program, m.attribute, m.mark, m.kind, m.reason, m.source,
              m.entered_at or now) for m in marks])
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def import_csv(book: Gradebook, rubrics: Rubrics, path: Path, roster: dict[str, str] | None = None) -> list[ManualMark]:
    """Imports a whole file or nothing: every problem is reported with file, row and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise MarksError(f"{path}: cannot read ({e.strerror})") from e
    reader = csv.DictReader(text.splitlines())
    header = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header and c != "reason"]
    if missing:
        raise MarksError(f"{path}: row 1: missing column(s) {', '.join(missing)} (need: {', '.join(CSV_COLUMNS)})")
    known = known_usns(book, rubrics.course.course, roster)
    marks, problems = [], []
    for row_number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        try:
            marks.append(_row(rubrics, known, row, f"{path.name} row {row_number}"))
        except MarksError as e:
            column = str(e).split(":", 1)[0]
            problems.append(f"{path}: row {row_number}, column {column}: {str(e).split(': ', 1)[-1]}")
    if problems:
        raise MarksError("nothing imported; fix these and import again:\n" + "\n".join(problems))
    if not marks:
        raise MarksError(f"{path}: no rows to import")
    record(book, marks)
    return marks


def _row(rubrics: Rubrics, known: set[str], row: dict[str, str], source: str) -> ManualMark:
    program = row.get("program", "")
    try:
        program_n = int(program) if program else None
    except ValueError:
        raise MarksError(f"program: {program!r} is not a program number") from None
    try:
        mark = float(row.get("mark", ""))
    except ValueError:
        raise MarksError(f"mark: {row.get('mark')!r} is not a number") from None
    return validate(rubrics, known, row.get("usn", ""), row.get("assessment", "") or "record", program_n,
                    row.get("attribute", "").lower(), mark, row.get("reason", ""), source)


def current_marks(book: Gradebook, course: str) -> list[ManualMark]:
    """The latest entry of each key."""
    ensure_schema(book)
    rows = book.db.execute(
        "SELECT course, usn, assessment, program, attribute, mark, kind, reason, source, entered_at "
        "FROM manual_marks WHERE id IN (SELECT MAX(id) FROM manual_marks WHERE course = ? "
        "GROUP BY usn, assessment, program, attribute) ORDER BY usn, assessment, program, attribute", (course,))
    return [_mark(r) for r in rows]


def history(book: Gradebook, course: str, usn: str) -> list[ManualMark]:
    ensure_schema(book)
    rows = book.db.execute(
        "SELECT course, usn, assessment, program, attribute, mark, kind, reason, source, entered_at "
        "FROM manual_marks WHERE course = ? AND usn = ? ORDER BY id", (course, usn.upper()))
    return [_mark(r) for r in rows]


def _mark(r: tuple) -> ManualMark:
    keys = ("course", "usn", "assessment", "program", "attribute", "mark", "kind", "reason", "source", "entered_at")
    return ManualMark(**dict(zip(keys, r)))


def template_rows(book: Gradebook, rubrics: Rubrics) -> list[list[str]]:
    """A CSV to fill in: one row per manual mark still pending for each graded submission."""
    course = rubrics.course.course
    have = {m.key for m in current_marks(book, course)}
    rows = [CSV_COLUMNS]
    graded = book.db.execute("SELECT DISTINCT student, assessment, program FROM results WHERE course = ? "
                             "ORDER BY student, assessment, program", (course,))
    for usn, assessment, program in graded:
        for attribute, spec in _table(rubrics, assessment).items():
            if spec.manual and (course, usn, assessment, program, attribute) not in have:
                rows.append([usn, assessment, str(program), attribute, "", ""])
    return rows

