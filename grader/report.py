"""Every report of a class, rebuilt from the gradebook alone: the program sheets
(<usn>/program<N>.html), index.html and marks.csv, the course sheets (<usn>/course.html),
class.html and portal.csv.

Manual marks (Viva, Project, …) and overrides entered since the last batch are merged
into every page, and so are the flags of the last similarity run (similarity/program<N>.json,
grader.similarity: flags for review, never a mark), whose pages are drawn again with links
to the sheets. A program sheet whose inputs (its result, the manual marks merged into it,
its artifacts, the code and templates that draw it) are unchanged since the last run is
left as it is; `force=True` draws them all again. Training curves are drawn once, when a
job is graded (see reports.curves.save_curve), not here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.course import Rubrics
from grader.gradebook import Gradebook
from grader.manual import current_marks
from grader.models import GradeResult
from grader.reports import write_index, write_marks_csv, write_sheet
from grader.reports.course_sheet import (class_pictures, course_sheet_relpath, write_class_report,
                                         write_course_sheet, write_portal_csv)
from grader.reports.csvout import atomic_write_bytes
from grader.reports.html import sheet_relpath
from grader.submissions import read_roster
from grader.semester import ClassSummary, Entry, class_summary, latest_results, sheet_result
from grader.similarity.flags import with_similarity_flags
from grader.similarity.pages import draw_pages, load_reports, table_context

STATE_FILE = ".report-state.json"
ARTIFACTS = ".artifacts"
# What shapes a program sheet besides its result: a change here draws every sheet again.
SHEET_CODE = [Path(__file__).parent / "reports" / name for name in
              ("html.py", "curves.py", "csvout.py", "templates/sheet.html", "templates/base.html",
               "templates/style.css")]


@dataclass
class ReportOutcome:
    out_dir: Path
    students: int = 0
    results: int = 0  # latest results, one per student, assessment and program
    program_sheets_drawn: int = 0
    program_sheets_unchanged: int = 0
    program_sheet_failures: list[str] = field(default_factory=list)  # sheets that could not be drawn, and why
    course_sheets: int = 0
    index: Path | None = None
    marks_csv: Path | None = None
    class_report: Path | None = None
    portal_csv: Path | None = None
    internal_table: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    summary: ClassSummary | None = None
    similarity_pages: list[Path] = field(default_factory=list)  # similarity/program<N>.html


def read_results(book: Gradebook, course: str) -> list[GradeResult]:
    rows = book.db.execute("SELECT result_json FROM results WHERE course = ?", (course,))
    return [GradeResult.model_validate_json(r[0]) for r in rows]


# ---------------------------------------------------------------- program sheets


def _code_version() -> str:
    h = hashlib.sha256()
    for path in SHEET_CODE:
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(path.name.encode())
    return h.hexdigest()[:16]


def _artifacts(out_dir: Path, result: GradeResult) -> Path | None:
    path = out_dir / ARTIFACTS / result.grade_key
    return path if result.grade_key and path.is_dir() else None


def _listing(folder: Path | None) -> str:
    if folder is None:
        return ""
    items = []
    for p in sorted(folder.rglob("*")):
        try:
            st = p.stat()
        except OSError:
            continue
        items.append(f"{p.relative_to(folder).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(items)


def _draw(result: GradeResult, out_dir: Path, artifacts: Path | None) -> str | None:
    """Draw one sheet; a sheet that cannot be drawn is named, and the others go on."""
    try:
        write_sheet(result, out_dir, artifacts_dir=artifacts)
    except Exception as e:  # noqa: BLE001 - one bad sheet must not stop the report
        return f"{result.student} program {result.program} ({result.assessment}): {type(e).__name__}: {e}"
    return None


def draw_program_sheets(sheets: list[tuple[GradeResult, Path | None]], out_dir: Path, *,
                        force: bool = False) -> tuple[int, int, list[str]]:
    """Write the program sheets whose inputs changed since the last run (all with `force`).
    Returns (drawn, unchanged, failures)."""
    state_path = out_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    version = _code_version()
    known = state.get("sheets", {}) if state.get("version") == version and not force else {}
    new_state: dict[str, list] = {}
    drawn: list[tuple[str, Path, str]] = []
    errors: list[str | None] = []
    unchanged = 0
    for result, artifacts in sheets:
        path = out_dir / sheet_relpath(result)
        rel = path.relative_to(out_dir).as_posix()
        body = result.model_dump_json()
        fingerprint = hashlib.sha256((body + "\0" + _listing(artifacts)).encode()).hexdigest()
        # unchanged: same inputs, and the file is still the one written then (nothing else rewrote it)
        if known.get(rel) == [fingerprint, _mtime(path)]:
            new_state[rel] = known[rel]
            unchanged += 1
            continue
        errors.append(_draw(result, out_dir, artifacts))
        drawn.append((rel, path, fingerprint))
    for (rel, path, fingerprint), error in zip(drawn, errors):
        if error is None:  # a sheet that failed is tried again next time
            new_state[rel] = [fingerprint, _mtime(path)]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(state_path, json.dumps({"version": version, "sheets": new_state}, indent=0).encode())
    failures = [e for e in errors if e]
    return len(drawn) - len(failures), unchanged, failures


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


# ---------------------------------------------------------------- everything


def regenerate(gradebook_path: Path, rubrics: Rubrics, out_dir: Path, roster: Mapping[str, str] | Path | None = None,
               *, internal_table: str | None = None, force: bool = False) -> ReportOutcome:
    """Rebuild every report of the course from the gradebook at `gradebook_path` into `out_dir`.

    roster: usn -> name, or a roster.csv (or the folder holding it); students on it with no
    result yet get a course sheet with everything pending. internal_table: the internal
    test's table (None: the course's default; see semester.resolve_internal_table).
    """
    out_dir = Path(out_dir)
    gradebook_path = Path(gradebook_path)
    if not gradebook_path.is_file():
        raise FileNotFoundError(f"{gradebook_path}: no gradebook here (grader batch writes one)")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    course = rubrics.course.course
    names = read_roster(roster) if isinstance(roster, (str, Path)) else dict(roster or {})
    with Gradebook(gradebook_path) as book:
        results = latest_results(read_results(book, course))
        manual = current_marks(book, course)
    similarity = load_reports(out_dir, course)  # flags for review only: marks stay as they are
    results = with_similarity_flags(results, similarity)
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    summary = class_summary(rubrics, results, manual, names, internal_table=internal_table)
    entries: dict[str, Entry] = {e.grade_key: e for s in summary.students for e in s.all_entries if e.grade_key}
    merged = [sheet_result(r, entries[r.grade_key]) if r.grade_key in entries else r for r in results]
    timings["marks"] = time.perf_counter() - t

    t = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn, unchanged, failures = draw_program_sheets([(r, _artifacts(out_dir, r)) for r in merged], out_dir,
                                                     force=force)
    timings["program_sheets"] = time.perf_counter() - t

    t = time.perf_counter()
    record = [r for r in merged if r.assessment == "record"]
    outcome = ReportOutcome(out_dir=out_dir, students=len(summary.students), results=len(results),
                            program_sheets_drawn=drawn, program_sheets_unchanged=unchanged,
                            program_sheet_failures=failures,
                            internal_table=summary.internal_table, counts=summary.counts, summary=summary)
    outcome.index = write_index(record, out_dir, title=f"{course} — {rubrics.course.title}")
    outcome.marks_csv = write_marks_csv(record, out_dir / "marks.csv")
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    outcome.portal_csv = write_portal_csv(summary, out_dir / "portal.csv")
    for student in summary.students:
        write_course_sheet(student, out_dir, generated=generated, durable=False)
    outcome.course_sheets = len(summary.students)
    timings["course_sheets"] = time.perf_counter() - t

    t = time.perf_counter()
    pictures = class_pictures(summary)
    outcome.class_report = write_class_report(
        summary, out_dir, pictures=pictures, generated=generated,
        similarity=[table_context(r, "class.html", out_dir) for r in similarity] if similarity else None)
    timings["class_report"] = time.perf_counter() - t

    t = time.perf_counter()
    outcome.similarity_pages = [draw_pages(r, out_dir) for r in similarity]  # links to the sheets drawn above
    timings["similarity"] = time.perf_counter() - t
    outcome.timings = timings
    return outcome


def course_sheet_path(out_dir: Path, usn: str) -> Path:
    return Path(out_dir) / course_sheet_relpath(usn)
