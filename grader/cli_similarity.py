"""`grader similarity`: which students' programs share more code than the manual gave them.
A thin layer over grader.similarity.run.run_similarity and grader.report.regenerate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from grader.console import err, out
from grader.course import RubricError, load_rubrics
from grader.similarity.models import SimilarityReport
from grader.submissions import SubmissionError, class_jobs, programs_in, read_roster


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


def similarity(
    folder: Path = typer.Argument(Path("submissions"), help="Class folder: one subfolder per student named by USN "
                                  "(the same folder grader batch grades)."),
    program: Optional[list[int]] = typer.Option(None, "--program", "-p", help="Program(s) to compare; repeat for "
                                                "several. Default: every program found."),
    out_dir: Path = typer.Option(Path("reports"), "--out", help="The report folder. The pages go to "
                                 "<out>/similarity/; where grader batch has left a gradebook there, the class "
                                 "report and the mark sheets are rebuilt with the pairs flagged."),
    manual: Optional[list[Path]] = typer.Option(None, "--manual", help="More code every student was given (a file "
                                                "or a folder of .py/.ipynb), not counted; repeat for several. "
                                                "Always taken out: rubrics/<course>/template/program<N>.* and "
                                                "reference/program<N>/."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=0.01, max=1.0, help="Flag pairs at or "
                                              "above this similarity (0-1) for this run. Default: similarity."
                                              "threshold in course.yaml."),
    course: str = typer.Option("20CSEL76", "--course", help="Course code: the folder under rubrics/ with course.yaml."),
    rubrics_dir: Optional[Path] = typer.Option(None, "--rubrics", help="Use the course and rubric files in this "
                                               "folder instead of rubrics/<course>/."),
) -> None:
    """Rank every pair of students by how much of their own code they share, the manual's code
    (the course's template/) taken out; scripts and notebooks alike,
    so renamed variables, reordered functions and code moved into a notebook still match.
    Writes <out>/similarity/program<N>.html (the ranked table) and a side-by-side page per
    flagged pair; with a gradebook in <out>, the class report lists the pairs and both mark
    sheets carry the flag. Marks never change: faculty decide (grader marks set ... --reason).

    Example: grader similarity submissions/ --program 4 --out reports/
    """
    from grader.similarity.run import run_similarity  # copydetect and scipy: loaded only here

    try:
        rubrics = load_rubrics(course, rubrics_dir)
        programs = program or [p for p in programs_in(folder) if p in rubrics.programs]
        for p in programs:
            rubrics.program(p)
        jobs = class_jobs(folder, programs, course, "quick")
    except (SubmissionError, RubricError) as e:
        _fail(str(e))
    if not programs:
        _fail(f"{folder}: no program files found (program<N>.py or .ipynb in each student's folder)")
    for path in manual or []:
        if not path.exists():
            _fail(f"{path}: no such file or folder (--manual)")
    spec = rubrics.course.similarity
    if threshold is not None:
        spec = spec.model_copy(update={"threshold": threshold})
    reports = run_similarity(jobs, rubrics, out_dir, programs, extra_manual=list(manual or []), spec=spec)
    for report in reports:
        _print_report(report, out_dir)
    book = out_dir / "gradebook.sqlite"
    if book.is_file():
        from grader.report import regenerate

        outcome = regenerate(book, rubrics, out_dir, read_roster(folder))
        out.print(f"Class report: {outcome.class_report} (flags on both students' mark sheets)", highlight=False)
    else:
        out.print(f"[dim]No gradebook in {out_dir}: mark sheets and the class report come with grader batch.[/dim]",
                  highlight=False)


def _print_report(report: SimilarityReport, out_dir: Path) -> None:
    flagged = report.flagged
    out.print(f"\n[bold]Program {report.program}[/bold]: {len(report.submissions)} submissions, "
              f"{report.pairs_total} pairs, {len(flagged)} flagged (similarity {report.threshold:.2f} or more, "
              f"or identical) in {sum(report.timings.values()):.1f} s", highlight=False)
    if flagged:
        table = Table("rank", "pair", "similarity", "shared lines", "", box=None, pad_edge=False)
        for rank, p in enumerate(flagged, 1):
            table.add_row(str(rank), f"{p.a} — {p.b}", f"{p.similarity:.2f}", str(p.shared_lines),
                          "identical files" if p.identical else "")
        out.print(table)
    if report.manual_only:
        out.print(f"The manual's program with nothing of their own (not paired): {', '.join(report.manual_only)}",
                  highlight=False)
    for skipped in report.skipped:
        err.print(f"[yellow]not compared:[/yellow] {skipped}", highlight=False)
    out.print(f"Similar pairs: {out_dir / 'similarity' / f'program{report.program}.html'}", highlight=False)
