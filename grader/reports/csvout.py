"""marks.csv for the university portal, and small helpers shared by the reports."""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from grader.models import GradeResult

DEFAULT_ATTRIBUTES = ["writeup", "execution", "viva"]
COLUMNS = ["usn", "name", "program", "assessment", "mode", "status", *DEFAULT_ATTRIBUTES,
           "total", "max_total", "dataset", "flags"]

# A cell that starts with one of these is read as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def format_mark(value: float | None) -> str:
    """17.0 -> "17", 4.5 -> "4.5", None -> ""."""
    if value is None:
        return ""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(f):
        return str(f)
    return f"{f:.2f}".rstrip("0").rstrip(".")


def review_flags(result: GradeResult) -> list[str]:
    """The result's flags and those of its checks, without repeats, in order."""
    seen: dict[str, None] = {}
    for flag in [*result.flags, *(c.flag for c in result.checks if c.flag)]:
        if flag and flag not in seen:
            seen[flag] = None
    return list(seen)


def sort_results(results: Iterable[GradeResult]) -> list[GradeResult]:
    """By USN, then program, then mode (stable for equal keys)."""
    return sorted(results, key=lambda r: (r.student.casefold(), r.student, r.program, r.assessment, r.mode))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _text_cell(value: str) -> str:
    value = value.replace("\r\n", " ").replace("\n", " ")
    return "'" + value if value.startswith(_FORMULA_START) else value


def attribute_columns(results: Iterable[GradeResult]) -> list[str]:
    """The attributes the results are marked on, in order (20CSEL76: writeup, execution, viva;
    a course of its own: its steps); the default when no result has any."""
    found: dict[str, None] = {}
    for r in results:
        for key in r.max:
            found.setdefault(key, None)
    return list(found) or list(DEFAULT_ATTRIBUTES)


def _row(result: GradeResult, attributes: list[str]) -> list[str]:
    marks = result.marks
    return [
        result.student,
        _text_cell(result.name),
        str(result.program),
        result.assessment,
        result.mode,
        result.outcome,  # "missing" where no file was submitted
        *(format_mark(marks.get(a)) for a in attributes),
        format_mark(result.total),
        format_mark(result.total_max),
        _text_cell(result.dataset),
        _text_cell(" | ".join(review_flags(result))),
    ]


def write_marks_csv(results: list[GradeResult], path: Path) -> Path:
    """One row per result, sorted by USN then program; viva empty while pending.

    `flags` holds the review flags joined by " | ". Text cells that a spreadsheet would
    read as a formula are prefixed with an apostrophe. Written atomically.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    attributes = attribute_columns(results)
    writer.writerow([*COLUMNS[:6], *attributes, *COLUMNS[-4:]])
    for result in sort_results(results):
        writer.writerow(_row(result, attributes))
    return atomic_write_bytes(Path(path), buf.getvalue().encode("utf-8"))
