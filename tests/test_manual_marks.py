"""Marks entered by faculty: validated against the course's tables, imported all-or-nothing,
kept with their history, and merged into the results (overrides with their reason)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader.course import load_rubrics
from grader.gradebook import Gradebook
from grader.manual import MarksError, current_marks, history, import_csv, template_rows
from grader.semester import class_summary, sheet_result
from grader.models import AttributeMark, GradeResult, Status

RUBRICS = load_rubrics()


def result(usn: str, program: int, execution: float = 17) -> GradeResult:
    attrs = [AttributeMark(attribute="writeup", max=5, mark=5, band="Good"),
             AttributeMark(attribute="execution", max=20, mark=execution, band="Good"),
             AttributeMark(attribute="viva", max=5, mark=None, manual=True)]
    return GradeResult(student=usn, program=program, course="20CSEL76", mode="quick", status=Status.ok,
                       marks={a.attribute: a.mark for a in attrs}, max={a.attribute: a.max for a in attrs},
                       attributes=attrs, grade_key=f"{usn}-{program}", graded_at="2026-11-21T10:00:00+00:00")


@pytest.fixture()
def book(tmp_path):
    with Gradebook(tmp_path / "gradebook.sqlite") as b:
        for usn in ("1GA20CS001", "1GA20CS002"):
            for p in (3, 4):
                b.put(result(usn, p))
        yield b


def write(tmp_path, text):
    path = tmp_path / "marks.csv"
    path.write_text(text)
    return path


def test_import_and_current_marks(book, tmp_path):
    f = write(tmp_path, "usn,assessment,program,attribute,mark,reason\n"
                        "1GA20CS001,record,3,viva,4,\n"
                        "1ga20cs002,,4,viva,5,\n"
                        "1GA20CS001,project,,project,8,\n")
    imported = import_csv(book, RUBRICS, f)
    assert len(imported) == 3
    current = {(m.usn, m.assessment, m.program, m.attribute): m.mark for m in current_marks(book, "20CSEL76")}
    assert current == {("1GA20CS001", "record", 3, "viva"): 4, ("1GA20CS002", "record", 4, "viva"): 5,
                       ("1GA20CS001", "project", None, "project"): 8}
    assert imported[0].source == "marks.csv row 2"


def test_bad_rows_import_nothing_and_are_named(book, tmp_path):
    f = write(tmp_path, "usn,assessment,program,attribute,mark\n"
                        "1GA20CS001,record,3,viva,4\n"
                        "1GA20CS001,record,3,viva,6\n"
                        "1GA20CS999,record,3,viva,3\n"
                        "1GA20CS002,record,9,viva,3\n"
                        "1GA20CS002,record,3,viva,four\n")
    with pytest.raises(MarksError) as e:
        import_csv(book, RUBRICS, f)
    text = str(e.value)
    assert "nothing imported" in text
    assert "row 3, column mark: 6 is outside 0..5" in text
    assert "row 4, column usn: unknown USN '1GA20CS999'" in text
    assert "row 5, column program: unknown program 9" in text
    assert "row 6, column mark: 'four' is not a number" in text
    assert current_marks(book, "20CSEL76") == []  # the valid row 2 was not imported either


def test_missing_column_is_named(book, tmp_path):
    with pytest.raises(MarksError, match="missing column.*mark"):
        import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute\n1GA20CS001,record,3,viva\n"))


def test_override_needs_a_reason_and_is_merged_with_it(book, tmp_path):
    with pytest.raises(MarksError, match="needs a reason"):
        import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark\n1GA20CS001,record,3,execution,12\n"))
    import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark,reason\n"
                                              "1GA20CS001,record,3,execution,12,copied the reference output\n"
                                              "1GA20CS001,record,3,viva,3,\n"))
    results = [result("1GA20CS001", 3), result("1GA20CS002", 3)]
    summary = class_summary(RUBRICS, results, current_marks(book, "20CSEL76"), {})
    entries = {e.grade_key: e for s in summary.students for e in s.all_entries}
    merged, untouched = (sheet_result(r, entries[r.grade_key]) for r in results)
    execution = next(a for a in merged.attributes if a.attribute == "execution")
    assert (execution.mark, execution.band, execution.override_reason) == (12, "Good", "copied the reference output")
    assert merged.marks == {"writeup": 5, "execution": 12, "viva": 3}
    assert untouched.marks["viva"] is None


def test_changed_mark_keeps_history(book, tmp_path):
    header = "usn,assessment,program,attribute,mark\n"
    import_csv(book, RUBRICS, write(tmp_path, header + "1GA20CS001,record,4,viva,2\n"))
    import_csv(book, RUBRICS, write(tmp_path, header + "1GA20CS001,record,4,viva,5\n"))
    assert [m.mark for m in history(book, "20CSEL76", "1GA20CS001")] == [2, 5]
    assert [m.mark for m in current_marks(book, "20CSEL76")] == [5]


def test_see_part_b_and_change_of_experiment(book, tmp_path):
    import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark\n"
                                              "1GA20CS001,see_part_b,,demonstration,20\n"
                                              "1GA20CS001,see,3,change_of_experiment,1\n"))
    with pytest.raises(MarksError, match="outside 0..25"):
        import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark\n1GA20CS001,see_part_b,,demonstration,26\n"))
    with pytest.raises(MarksError, match="belong to no program"):
        import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark\n1GA20CS001,project,3,project,5\n"))


def test_template_lists_pending_viva(book):
    rows = template_rows(book, RUBRICS)
    assert rows[0] == ["usn", "assessment", "program", "attribute", "mark", "reason"]
    assert ["1GA20CS001", "record", "3", "viva", "", ""] in rows and len(rows) == 5


def test_cli_set_and_errors(book):
    path = str(book.path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "grader.cli", "marks", *a, "--gradebook", path],  # noqa: E731
                                    capture_output=True, text=True)
    ok = run("set", "1GA20CS001", "--program", "4", "viva=4")
    assert ok.returncode == 0 and "viva = 4" in ok.stdout
    too_high = run("set", "1GA20CS001", "--program", "4", "viva=7")
    assert too_high.returncode == 1 and "outside 0..5" in too_high.stderr
    unknown = run("set", "1GA20CS777", "--program", "4", "viva=3")
    assert unknown.returncode == 1 and "unknown USN" in unknown.stderr
    shown = run("history", "1GA20CS001")
    assert "viva" in shown.stdout and "grader marks set" in shown.stdout


def test_internal_marks_accept_either_table_of_the_manual(book, tmp_path):
    # 10/20/10 (marks distribution) and 5/30/5 (internal-test rubric): execution up to 30
    book.put(result("1GA20CS001", 3).model_copy(update={"assessment": "internal", "grade_key": "int-1"}))
    import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark,reason\n"
                                              "1GA20CS001,internal,3,execution,25,re-run in the lab\n"
                                              "1GA20CS001,internal,3,viva,9,\n"))
    with pytest.raises(MarksError, match="outside 0..30"):
        import_csv(book, RUBRICS, write(tmp_path, "usn,assessment,program,attribute,mark,reason\n"
                                                  "1GA20CS001,internal,3,execution,31,x\n"))
