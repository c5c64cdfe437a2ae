"""A similarity run over a class, as `grader similarity` and the end of `grader batch` do
it: per program, compare the submissions and write the JSON and pages under the report
folder. Returns the reports; the caller rebuilds the class report and mark sheets from the
gradebook (grader.report.regenerate), which puts the flags on them.
"""

from __future__ import annotations

from pathlib import Path

from grader.course import Rubrics, SimilaritySpec
from grader.models import Job
from grader.similarity.detect import find_similar
from grader.similarity.models import SimilarityReport
from grader.similarity.pages import write_similarity


def run_similarity(jobs: list[Job], rubrics: Rubrics, out_dir: Path, programs: list[int] | None = None, *,
                   extra_manual: list[Path] = (), spec: SimilaritySpec | None = None) -> list[SimilarityReport]:
    """Compare each program's submissions among `jobs` (default: every program in them) and
    write similarity/program<N>.json and its pages under out_dir."""
    programs = sorted(set(programs if programs is not None else (j.program for j in jobs)))
    reports = []
    for program in programs:
        report = find_similar(jobs, rubrics, program, extra_manual=list(extra_manual), spec=spec)
        write_similarity(report, out_dir)
        reports.append(report)
    return reports
