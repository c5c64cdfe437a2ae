"""A second course from rubric files: DLPRAC, the practical activities of
../shared/seeds/002_* (rubrics/DLPRAC/, reference/DLPRAC/). Graded for real: static analysis,
the local sandbox running Keras, the harness, scoring; the course's reports from results."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.course import Course, load_rubrics
from grader.models import AttributeMark, GradeResult, Status
from grader.pipeline import grade
from grader.runners.local import LocalRunner
from grader.semester import class_summary
from grader.submissions import class_jobs, programs_in, single_job

PROJECT = Path(__file__).resolve().parents[1]
REFERENCE = PROJECT / "reference" / "DLPRAC"
SEEDS = PROJECT.parent / "shared" / "seeds"
sys.path.insert(0, str(REFERENCE / "program4"))
from make_shapes import make  # noqa: E402  (the generated custom dataset)


@pytest.fixture(scope="module")
def dlprac():
    return load_rubrics("DLPRAC")


@pytest.fixture(scope="module")
def grade_dlprac(tmp_path_factory, dlprac):
    """grade_dlprac(source, program, data=None, **quick_limits) -> GradeResult: the source (a
    path or text) as programN.py or .ipynb in a folder of its own, with `data` (a folder to copy,
    or a callable that writes into the submission folder) beside it."""
    cache = tmp_path_factory.mktemp("cache")
    root = tmp_path_factory.mktemp("subs")

    def run(source, program: int, data=None, suffix: str = ".py", **limits) -> GradeResult:
        folder = root / f"sub{len(list(root.iterdir()))}"
        folder.mkdir()
        entry = folder / f"program{program}{suffix}"
        if isinstance(source, Path):
            shutil.copy(source, entry)
        else:
            entry.write_text(source)
        if callable(data):
            data(folder)
        elif data is not None:
            shutil.copytree(data, folder / Path(data).name)
        rubrics = load_rubrics("DLPRAC")
        for key, value in limits.items():
            setattr(rubrics.programs[program].limits.quick, key, value)
        job = single_job(folder, program, "DLPRAC", "quick")
        return grade(job, rubrics, LocalRunner(), cache, folder.parent / f"{folder.name}-artifacts")

    return run


def check(result: GradeResult, check_id: str):
    return next(c for c in result.checks if c.id == check_id)


def total(result: GradeResult) -> float:
    return sum(m for m in result.marks.values() if m is not None)


# ---------------------------------------------------------------- the course file


def test_course_validates_with_a_points_scheme(dlprac):
    course = dlprac.course
    assert course.scheme == "total" and course.cie is None and course.see is None
    assert course.total.max == 50 and course.pass_rule.total_min_fraction == 0.40
    for n in (1, 2, 3, 4):
        assert sum(a.max for a in course.table("record", program=n).values()) == 10
    assert set(course.table("record", program=5)) == {"define", "compile", "train", "generate"}
    assert sum(a.max for a in course.table("record", program=5).values()) == 10
    result = CliRunner().invoke(app, ["rubric", "validate", "--course", "DLPRAC"])
    assert result.exit_code == 0, result.output
    assert "programs 1, 2, 3, 4" in result.output


def test_the_20CSEL76_scheme_is_as_it_was():
    course = load_rubrics("20CSEL76").course
    assert course.scheme == "cie_see" and course.total is None
    assert course.cie.max == 50 and course.see.scale_to == 50
    assert course.table("record", program=5) == course.table("record")


def test_a_course_needs_one_scheme_and_its_pass_line(dlprac):
    data = dlprac.course.model_dump(by_alias=True, exclude_none=True)
    with pytest.raises(ValueError, match="total_min_fraction"):
        Course.model_validate({**data, "pass_rule": {"cie_min_fraction": 0.4}})
    no_total = {k: v for k, v in data.items() if k != "total"}
    with pytest.raises(ValueError, match="cie and see, or a total"):
        Course.model_validate(no_total)


# ---------------------------------------------------------------- reports without CIE/SEE


def result_for(usn: str, program: int, marks: dict[str, float], dlprac) -> GradeResult:
    table = dlprac.course.table("record", program=program)
    attrs = [AttributeMark(attribute=k, max=v.max, mark=marks[k], band=v.band_of(marks[k])) for k, v in table.items()]
    return GradeResult(student=usn, program=program, title=dlprac.programs[program].title, course="DLPRAC",
                       mode="quick", status=Status.ok, marks={a.attribute: a.mark for a in attrs},
                       max={a.attribute: a.max for a in attrs}, attributes=attrs, grade_key=f"{usn}-{program}")


def test_class_report_csv_and_sheets_have_no_cie_or_see(dlprac, tmp_path):
    from grader.reports.course_sheet import portal_rows, write_class_report, write_course_sheet

    steps = {"load": 2, "define": 2, "compile": 2, "train": 2, "evaluate": 2}
    results = [result_for("1DL01", 1, steps, dlprac), result_for("1DL01", 2, steps, dlprac),
               result_for("1DL02", 1, {k: 0 for k in steps} | {"load": 2, "define": 2}, dlprac),
               result_for("1DL02", 2, {k: 0 for k in steps}, dlprac)]
    summary = class_summary(dlprac, results, [], {"1DL01": "A", "1DL02": "B"})
    one, two = summary.students
    assert (one.cie, one.cie_max, one.cie_pass_mark, one.result) == (20, 50, 20, "PASS")
    assert (two.cie, two.result) == (4, "FAIL")
    rows = portal_rows(summary)
    assert rows[0] == ["USN", "Name", "Activity 1", "Activity 2", "Course total", "Result"]
    assert rows[1][2:] == ["10", "10", "20", "PASS"] and rows[2][2:] == ["4", "0", "4", "FAIL"]
    class_html = write_class_report(summary, tmp_path).read_text()
    sheet = write_course_sheet(one, tmp_path).read_text()
    for page in (class_html, sheet):
        assert "CIE" not in page and "SEE" not in page and "Semester End" not in page
        assert "Course total" in page
    assert "<th>Activity</th>" in sheet and "Internal test" not in sheet


def test_pass_line_is_the_totals(dlprac):
    steps = {"load": 2, "define": 2, "compile": 2, "train": 2, "evaluate": 2}
    results = [result_for("1DL03", p, steps, dlprac) for p in (1, 2)]
    student = class_summary(dlprac, results, []).students[0]
    assert student.cie == 20 and student.cie_meets and student.result == "PASS"
    low = [result_for("1DL04", 1, steps, dlprac), result_for("1DL04", 2, {**steps, "evaluate": 1}, dlprac)]
    student = class_summary(dlprac, low, []).students[0]
    assert student.cie == 19 and not student.cie_meets and student.result == "FAIL"
