"""`grader report`: every report of a class rebuilt from its gradebook, with the marks faculty
have entered since (Viva, Project, Demonstration, Report, overrides) merged in."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from grader.console import err, out
from grader.course import RubricError, load_rubrics
from grader.report import regenerate



class InternalTable(str, Enum):
    marks_distribution = "marks-distribution"
    internal_test_rubric = "internal-test-rubric"


def report(
    out_dir: Path = typer.Option(Path("reports"), "--out", help="The report folder: where grader batch wrote its "
                                 "sheets; everything is rewritten here."),
    gradebook: Optional[Path] = typer.Option(None, "--gradebook", help="The class's gradebook. Default: "
                                             "<out>/gradebook.sqlite."),
    course: str = typer.Option("20CSEL76", "--course", help="Course code: the folder under rubrics/ with "
                               "course.yaml (the CIE/SEE scheme) and programN.yaml."),
    internal_table: Optional[InternalTable] = typer.Option(
        None, "--internal-table", case_sensitive=False,
        help="Which of the manual's two internal-test tables marks the internal test: 'marks-distribution' "
             "(Writeup + Execution + Viva as in the Marks Distribution) or 'internal-test-rubric' (the "
             "Rubrics for Evaluation of Internal Test Part A). Default: the one course.yaml names. Every "
             "sheet says which was used."),
    roster: Optional[Path] = typer.Option(None, "--roster", help="roster.csv (usn,name) or the folder holding "
                                          "it: names for the sheets, and students with nothing graded yet."),
    rubrics_dir: Optional[Path] = typer.Option(None, "--rubrics", help="Use the course and rubric files in this "
                                               "folder instead of rubrics/<course>/."),
    force: bool = typer.Option(False, "--force", help="Draw every program sheet again, even those whose result, "
                               "manual marks and artifacts did not change since the last report."),
) -> None:
    """Rebuild every report from the gradebook: program sheets, index.html and marks.csv,
    each student's course mark sheet (<out>/<USN>/course.html: CIE, SEE, pass or not, what is
    still pending), class.html (distributions, students below the pass line, submissions
    flagged for review) and portal.csv for the university portal.

    Run it after entering marks with `grader marks`. Example: grader report --out reports/
    """
    try:
        rubrics = load_rubrics(course, rubrics_dir)
    except RubricError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    book = gradebook or out_dir / "gradebook.sqlite"
    if not book.is_file():
        err.print(f"[red]error:[/red] {book}: no gradebook here; run grader batch first or pass --gradebook",
                  highlight=False)
        raise typer.Exit(2)
    if roster is not None and not (roster / "roster.csv" if roster.is_dir() else roster).is_file():
        err.print(f"[red]error:[/red] {roster}: no roster.csv there", highlight=False)
        raise typer.Exit(2)
    try:
        outcome = regenerate(book, rubrics, out_dir, roster,
                             internal_table=internal_table.value if internal_table else None, force=force)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    counts = outcome.counts
    total_s = sum(outcome.timings.values())
    out.print(f"{outcome.students} student(s), {outcome.results} result(s); internal test table: "
              f"{outcome.internal_table}", highlight=False)
    out.print(f"Result: {counts.get('PASS', 0)} pass, {counts.get('FAIL', 0)} fail, "
              f"{counts.get('PROVISIONAL', 0)} provisional (entries pending)", highlight=False)
    out.print(f"Program sheets: {outcome.program_sheets_drawn} drawn, {outcome.program_sheets_unchanged} unchanged "
              f"({out_dir}/<USN>/program<N>.html; internal test and SEE under {out_dir}/internal/ and "
              f"{out_dir}/see/)", highlight=False)
    for failure in outcome.program_sheet_failures:
        err.print(f"[red]program sheet not written:[/red] {failure}", highlight=False)
    out.print(f"Course sheets: {outcome.course_sheets} ({out_dir}/<USN>/course.html)", highlight=False)
    out.print(f"Class report: {outcome.class_report}\nPortal CSV:   {outcome.portal_csv}\n"
              f"Index:        {outcome.index}\nMarks:        {outcome.marks_csv}", highlight=False)
    out.print(f"[dim]done in {total_s:.1f} s[/dim]")
