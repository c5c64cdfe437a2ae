"""`grader marks`: Viva, Project, Demonstration and Report entered by faculty, and
overrides of automatic marks (with a reason). Every entry keeps when and where it came from."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Optional

import typer

from grader.console import err, out
from grader.course import RubricError, load_rubrics
from grader.gradebook import Gradebook
from grader.manual import MarksError, history, import_csv, known_usns, record, template_rows, validate
from grader.submissions import SubmissionError, read_roster

app = typer.Typer(help="Marks entered by faculty (Viva, Project, Demonstration, Report) and overrides of "
                       "automatic marks. Entries are never overwritten: a changed mark keeps its history.",
                  no_args_is_help=True)

GradebookOpt = typer.Option(Path("reports/gradebook.sqlite"), "--gradebook", help="The class's gradebook (written by grader batch).")
RosterOpt = typer.Option(None, "--roster", help="roster.csv (usn,name): students known besides those already graded.")
CourseOpt = typer.Option("20CSEL76", "--course", help="Course code (folder under rubrics/).")


def _open(gradebook: Path, course: str, roster: Optional[Path]):
    if not gradebook.is_file():
        err.print(f"[red]error:[/red] {gradebook}: no gradebook here; run grader batch first or pass --gradebook")
        raise typer.Exit(2)
    try:
        rubrics = load_rubrics(course)
        names = read_roster(roster) if roster else {}
    except (RubricError, SubmissionError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    return Gradebook(gradebook), rubrics, names


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="CSV with columns usn,assessment,program,attribute,mark,reason. "
                                          "assessment: record (default), internal, see, project or see_part_b; "
                                          "program: empty for project and see_part_b; attribute: viva, project, "
                                          "demonstration, report, or writeup/execution to override (reason required); "
                                          "see + change_of_experiment = 1 zeroes Part A's writeup."),
    gradebook: Path = GradebookOpt, roster: Optional[Path] = RosterOpt, course: str = CourseOpt,
) -> None:
    """Import marks from a CSV: all rows or none. Print a template with `grader marks template`."""
    book, rubrics, names = _open(gradebook, course, roster)
    with book:
        try:
            marks = import_csv(book, rubrics, file, names)
        except MarksError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(1)
    out.print(f"Imported {len(marks)} mark(s) from {file}.")


@app.command("set")
def set_cmd(
    usn: str = typer.Argument(..., help="The student's USN."),
    marks: list[str] = typer.Argument(..., help="attribute=mark pairs, e.g. viva=4 (or execution=15 with --reason)."),
    program: Optional[int] = typer.Option(None, "--program", "-p", help="Program number (not for project / see_part_b)."),
    assessment: str = typer.Option("record", "--assessment", help="record, internal, see, project or see_part_b."),
    reason: str = typer.Option("", "--reason", help="Why: required when overriding an automatic mark."),
    gradebook: Path = GradebookOpt, roster: Optional[Path] = RosterOpt, course: str = CourseOpt,
) -> None:
    """Enter marks for one student, e.g. grader marks set 1GA20CS001 --program 4 viva=4"""
    book, rubrics, names = _open(gradebook, course, roster)
    with book:
        entries = []
        try:
            known = known_usns(book, rubrics.course.course, names)
            for pair in marks:
                attribute, sep, value = pair.partition("=")
                if not sep:
                    raise MarksError(f"{pair!r}: write attribute=mark, e.g. viva=4")
                try:
                    mark = float(value)
                except ValueError:
                    raise MarksError(f"{pair!r}: {value!r} is not a number") from None
                entries.append(validate(rubrics, known, usn, assessment, program, attribute.strip().lower(),
                                        mark, reason, "grader marks set"))
            record(book, entries)
        except MarksError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(1)
    for m in entries:
        out.print(f"{m.usn} {m.assessment} program {m.program or '-'}: {m.attribute} = {m.mark:g} ({m.kind})")


@app.command("template")
def template_cmd(gradebook: Path = GradebookOpt, course: str = CourseOpt) -> None:
    """Print a CSV of the manual marks still pending, ready to fill in and import."""
    book, rubrics, _ = _open(gradebook, course, None)
    with book:
        csv.writer(sys.stdout).writerows(template_rows(book, rubrics))


@app.command("history")
def history_cmd(usn: str = typer.Argument(..., help="The student's USN."),
                gradebook: Path = GradebookOpt, course: str = CourseOpt) -> None:
    """Every mark entered for a student, oldest first, with when and from where."""
    book, rubrics, _ = _open(gradebook, course, None)
    with book:
        entries = history(book, rubrics.course.course, usn)
    if not entries:
        out.print(f"No marks entered for {usn.upper()}.")
    for m in entries:
        why = f"  reason: {m.reason}" if m.reason else ""
        out.print(f"{m.entered_at}  {m.assessment:<10} program {m.program or '-':<3} {m.attribute:<14} "
                  f"{m.mark:>5g}  {m.kind:<8} from {m.source}{why}", highlight=False)
