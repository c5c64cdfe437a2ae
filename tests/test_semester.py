"""Course marks over the semester: averaging the weekly entries, reducing the internal test,
scaling SEE, rounding in one place, the pass rule, change of experiment, pending entries,
the alternative internal-test table and overrides. Results and manual marks are built by
hand: they are plain data."""

from __future__ import annotations

import pytest

from grader.course import Rounding, load_rubrics
from grader.manual import ManualMark
from grader.models import AttributeMark, CheckResult, GradeResult, Status
from grader.semester import (class_summary, latest_results, resolve_internal_table, scale, sheet_result,
                             student_marks)

COURSE = "20CSEL76"
USN = "1GA20CS001"


@pytest.fixture()
def rubrics():
    return load_rubrics(COURSE)


def graded(rubrics, program: int, assessment: str = "record", usn: str = USN, *, graded_at: str = "2024-01-01T10:00:00",
           mode: str = "full", flags: list[str] | None = None, dataset: str = "cifar10", **marks: float) -> GradeResult:
    """A result of `assessment` with the given automatic marks, stored as the pipeline stores
    them (attributes of the assessment's default table), with checks that score the same."""
    table = rubrics.course.table(assessment)
    checks, attributes = [], []
    for name, spec in table.items():
        if spec.manual:
            attributes.append(AttributeMark(attribute=name, max=spec.max, mark=None, manual=True))
            continue
        mark = marks[name]
        checks.append(CheckResult(id=f"{name}.measured", attribute=name, passed=True, score=mark / spec.max,
                                  weight=1.0))
        attributes.append(AttributeMark(attribute=name, max=spec.max, mark=mark, band=spec.band_of(mark)))
    return GradeResult(student=usn, name="Asha Rao", program=program, title=f"Program {program}", course=COURSE,
                       mode=mode, assessment=assessment, status=Status.ok,
                       marks={a.attribute: a.mark for a in attributes}, max={a.attribute: a.max for a in attributes},
                       attributes=attributes, checks=checks, flags=flags or [], dataset=dataset,
                       grade_key=f"{usn}-{assessment}-{program}-{graded_at}", graded_at=graded_at)


def manual(assessment: str, attribute: str, mark: float, program: int | None = None, *, usn: str = USN,
           kind: str = "manual", reason: str = "", entered_at: str = "2024-01-02T10:00:00") -> ManualMark:
    return ManualMark(course=COURSE, usn=usn, assessment=assessment, program=program, attribute=attribute, mark=mark,
                      kind=kind, reason=reason, source="test", entered_at=entered_at)


def complete(rubrics, *, record=((3, 4, 15, 4), (4, 5, 20, 5)), internal=(8, 15, 8), project=9,
             see=(8, 30, 9), part_b=(20, 8, 4), usn: str = USN):
    """Every entry of one student: weekly entries (program, writeup, execution, viva), the
    internal test (writeup, execution, viva), project, SEE Part A and Part B."""
    results, marks = [], []
    for program, w, e, v in record:
        results.append(graded(rubrics, program, usn=usn, writeup=w, execution=e))
        marks.append(manual("record", "viva", v, program, usn=usn))
    if internal:
        results.append(graded(rubrics, 3, "internal", usn=usn, writeup=internal[0], execution=internal[1]))
        marks.append(manual("internal", "viva", internal[2], 3, usn=usn))
    if project is not None:
        marks.append(manual("project", "project", project, usn=usn))
    if see:
        results.append(graded(rubrics, 4, "see", usn=usn, writeup=see[0], execution=see[1]))
        marks.append(manual("see", "viva", see[2], 4, usn=usn))
    if part_b:
        for name, value in zip(("demonstration", "report", "viva"), part_b):
            marks.append(manual("see_part_b", name, value, usn=usn))
    return results, marks


# ---------------------------------------------------------------- the arithmetic


def test_complete_student_adds_up_as_the_manual_says(rubrics):
    results, marks = complete(rubrics)
    m = student_marks(rubrics, USN, results, marks)
    # A: entries 4+15+4 = 23 and 5+20+5 = 30 -> average 26.5 -> 27 (half up)
    assert [e.total for e in m.record] == [23, 30]
    assert m.component("A").mark == 27 and m.component("A").max == 30
    # B: internal 8+15+8 = 31 of 40 -> 7.75 -> 8; project 9 of 10 -> 9; B = 17
    internal = m.component("B").parts[0]
    assert (internal.entry.total, internal.entry.max, internal.mark, internal.max) == (31, 40, 8, 10)
    assert m.component("B").mark == 17 and m.component("B").max == 20
    assert (m.cie, m.cie_max) == (44, 50)
    # SEE: Part A 8+30+9 = 47 of 60, Part B 20+8+4 = 32 of 40 -> 79 of 100 -> 39.5 -> 40 of 50
    assert [p.mark for p in m.see_parts] == [47, 32]
    assert (m.see_raw, m.see_raw_max, m.see, m.see_max) == (79, 100, 40, 50)
    assert m.result == "PASS" and not m.provisional and m.pending == []
    assert m.internal_table == "internal_marks_distribution"
    assert "internal_marks_distribution" in m.internal_table_label and "= 40" in m.internal_table_label


def test_average_is_over_the_programs_graded_so_far(rubrics):
    results, marks = complete(rubrics, record=((3, 4, 15, 4), (4, 5, 20, 5), (5, 2, 10, 1)))
    m = student_marks(rubrics, USN, results, marks)
    # (23 + 30 + 13) / 3 = 22 exactly
    assert m.component("A").mark == 22
    assert "3, 4, 5" in m.component("A").rule
    assert any("average of the weekly entries" in r and "graded so far" in r for r in m.rules)


def test_a_program_graded_for_the_class_but_not_this_student_is_pending_and_counts_zero(rubrics):
    results, marks = complete(rubrics)
    m = student_marks(rubrics, USN, results, marks, programs=[3, 4, 5])
    assert [e.program for e in m.record] == [3, 4, 5]
    missing = m.record[2]
    assert not missing.graded and missing.total == 0 and not missing.complete
    assert "Program 5: not graded yet (Writeup, Execution)" in m.pending
    assert "Program 5: Viva" in m.pending
    # (23 + 30 + 0) / 3 = 17.67 -> 18
    assert m.component("A").mark == 18 and m.component("A").provisional
    assert m.result == "PROVISIONAL"


def test_internal_test_is_reduced_40_to_10_half_up(rubrics):
    # 8 + 10 + 8 = 26 of 40 -> 6.5 -> 7 (half up; half to even would say 6)
    results, marks = complete(rubrics, internal=(8, 10, 8))
    m = student_marks(rubrics, USN, results, marks)
    assert m.component("B").parts[0].mark == 7


def test_see_is_scaled_100_to_50(rubrics):
    # Part A 10+40+10 = 60, Part B 25+10+5 = 40 -> 100 -> 50; then 3+9+1 + 0+0+0 = 13 -> 6.5 -> 7
    results, marks = complete(rubrics, see=(10, 40, 10), part_b=(25, 10, 5))
    assert student_marks(rubrics, USN, results, marks).see == 50
    results, marks = complete(rubrics, see=(3, 9, 1), part_b=(0, 0, 0))
    m = student_marks(rubrics, USN, results, marks)
    assert (m.see_raw, m.see) == (13, 7)


def test_all_rounding_goes_through_the_course_rule(rubrics, monkeypatch):
    calls = []
    original = Rounding.apply

    def spy(self, value):
        calls.append(value)
        return original(self, value)

    monkeypatch.setattr(Rounding, "apply", spy)
    results, marks = complete(rubrics, internal=(8, 10, 8))
    student_marks(rubrics, USN, results, marks)
    # A (average), internal reduced, project reduced, SEE scaled: once each
    assert sorted(calls) == sorted([26.5, 6.5, 9.0, 39.5])

    rubrics.course.rounding = Rounding(mode="half_even", decimals=0)
    m = student_marks(rubrics, USN, results, marks)
    assert m.component("A").mark == 26 and m.component("B").parts[0].mark == 6 and m.see == 40
    assert any("half to even" in r for r in m.rules)


def test_scale_is_exact_up_to_the_rounding(rubrics):
    course = rubrics.course
    assert scale(course, 39, 100, 50) == 20  # 19.5 -> 20
    assert scale(course, 26.5, 30, 30) == 27
    assert scale(course, 0.1 + 0.2, 1, 1) == 0  # 0.30000000000000004, not a half
    assert scale(course, 5, 0, 10) == 0


# ---------------------------------------------------------------- the pass rule


def at_the_line(rubrics, internal_viva: float):
    # A: (3+8+1) twice -> 12; internal 10+10+viva of 40, reduced to 10; project 0;
    # SEE Part A 5+20+5 = 30, Part B 5+3+2 = 10 -> 40 of 100 -> 20 of 50
    results, marks = complete(rubrics, record=((3, 3, 8, 1), (4, 3, 8, 1)), internal=(10, 10, internal_viva),
                              project=0, see=(5, 20, 5), part_b=(5, 3, 2))
    return student_marks(rubrics, USN, results, marks)


def test_pass_at_exactly_40_percent(rubrics):
    m = at_the_line(rubrics, 10)  # internal 30 of 40 -> 7.5 -> 8: CIE = 12 + 8 = 20 of 50
    assert (m.cie, m.see) == (20, 20) and (m.cie_pass_mark, m.see_pass_mark) == (20, 20)
    assert m.cie_meets and m.see_meets and m.result == "PASS" and not m.below_pass_line


def test_one_mark_below_40_percent_fails(rubrics):
    m = at_the_line(rubrics, 9)  # internal 29 of 40 -> 7.25 -> 7: CIE = 19 of 50
    assert m.cie == 19 and not m.cie_meets and m.see_meets
    assert m.result == "FAIL" and m.below_pass_line


def test_cie_and_see_each_count_on_their_own(rubrics):
    # a high CIE does not carry a low SEE: 19 of 50 in SEE fails
    results, marks = complete(rubrics, see=(5, 20, 3), part_b=(5, 3, 2))  # 38 -> 19
    m = student_marks(rubrics, USN, results, marks)
    assert m.cie >= 40 and m.see == 19 and m.result == "FAIL"


# ---------------------------------------------------------------- change of experiment


def test_change_of_experiment_zeroes_part_a_writeup(rubrics):
    results, marks = complete(rubrics)
    marks.append(manual("see", "change_of_experiment", 1, 4))
    m = student_marks(rubrics, USN, results, marks)
    part_a = m.see_parts[0].entry
    assert part_a.change_of_experiment
    writeup = part_a.cell("writeup")
    assert writeup.mark == 0 and writeup.automatic == 8 and writeup.source == "zeroed"
    assert "change of experiment" in writeup.note
    # Part A 0+30+9 = 39, Part B 32 -> 71 -> 35.5 -> 36
    assert (m.see_parts[0].mark, m.see_raw, m.see) == (39, 71, 36)
    # only Part A: the weekly entries and the internal test keep their writeup
    assert m.record[0].mark("writeup") == 4 and m.component("B").parts[0].entry.mark("writeup") == 8


def test_change_of_experiment_entry_of_zero_changes_nothing(rubrics):
    results, marks = complete(rubrics)
    marks.append(manual("see", "change_of_experiment", 0, 4))
    m = student_marks(rubrics, USN, results, marks)
    assert m.see_parts[0].entry.mark("writeup") == 8 and not m.see_parts[0].entry.change_of_experiment


# ---------------------------------------------------------------- pending and provisional


def test_pending_manual_entries_make_totals_provisional(rubrics):
    results, marks = complete(rubrics)
    marks = [m for m in marks if not (m.assessment == "record" and m.program == 4)
             and m.assessment != "project" and m.attribute != "report"]
    m = student_marks(rubrics, USN, results, marks)
    assert m.result == "PROVISIONAL" and m.provisional
    assert "Program 4: Viva" in m.pending and "Project" in m.pending
    assert any(p.startswith("SEE Part B") and "Report" in p for p in m.pending)
    viva = m.record[1].cell("viva")
    assert viva.mark is None and viva.source == "pending"
    # totals add what is entered: entry 4 is 25 of 30 so far
    assert m.record[1].total == 25 and not m.record[1].complete
    assert m.cie_provisional and m.see_provisional
    assert m.component("B").parts[1].mark == 0 and m.component("B").parts[1].provisional


def test_missing_assessments_are_pending(rubrics):
    results, marks = complete(rubrics, internal=None, see=None)
    m = student_marks(rubrics, USN, results, marks)
    assert "Internal test: not graded yet (Writeup, Execution)" in m.pending
    assert "Internal test: Viva" in m.pending
    assert "SEE Part A: not graded yet (Writeup, Execution)" in m.pending
    assert m.result == "PROVISIONAL"


def test_a_student_with_nothing_yet_is_all_pending(rubrics):
    s = class_summary(rubrics, [graded(rubrics, 3, usn="1GA20CS002", writeup=5, execution=20)], [],
                      roster={"1ga20cs001": "Asha Rao"})
    m = next(x for x in s.students if x.usn == USN)
    assert m.name == "Asha Rao" and m.cie == 0 and m.see == 0 and m.result == "PROVISIONAL"
    assert "Program 3: not graded yet (Writeup, Execution)" in m.pending


# ---------------------------------------------------------------- internal test tables


def test_alternative_internal_table_rescores_from_the_stored_checks(rubrics):
    results, marks = complete(rubrics, internal=(8, 15, 4))
    m = student_marks(rubrics, USN, results, marks, internal_table="internal-test-rubric")
    entry = m.component("B").parts[0].entry
    assert m.internal_table == entry.table == "internal_test_rubric" and entry.rescored
    # writeup 8/10 -> 4/5; execution 15/20 -> 22.5/30 -> 23 (the scorer's rounding)
    assert [(c.attribute, c.mark, c.max) for c in entry.cells] == [("writeup", 4, 5), ("execution", 23, 30),
                                                                  ("viva", 4, 5)]
    assert entry.max == 40 and m.component("B").parts[0].mark == 8  # 31 of 40 -> 7.75 -> 8
    assert "internal_test_rubric" in m.internal_table_label and "Execution 30" in m.internal_table_label
    assert any("internal_test_rubric" in r for r in m.rules)
    # the default table keeps the stored marks
    default = student_marks(rubrics, USN, results, marks).component("B").parts[0].entry
    assert not default.rescored and default.mark("execution") == 15


def test_internal_table_names(rubrics):
    c = rubrics.course
    assert resolve_internal_table(c, None) == "internal_marks_distribution"
    assert resolve_internal_table(c, "marks-distribution") == "internal_marks_distribution"
    assert resolve_internal_table(c, "internal-test-rubric") == "internal_test_rubric"
    assert resolve_internal_table(c, "internal_test_rubric") == "internal_test_rubric"
    with pytest.raises(ValueError, match="marks-distribution"):
        resolve_internal_table(c, "record")


def test_a_manual_mark_outside_the_table_is_not_counted(rubrics):
    results, marks = complete(rubrics, internal=(8, 15, 8))  # viva 8 fits 10, not the other table's 5
    m = student_marks(rubrics, USN, results, marks, internal_table="internal-test-rubric")
    assert m.component("B").parts[0].entry.mark("viva") is None
    assert any("viva 8 lies outside 0..5" in p for p in m.problems)


# ---------------------------------------------------------------- overrides


def test_override_replaces_the_automatic_mark_and_keeps_its_reason(rubrics):
    results, marks = complete(rubrics)
    marks.append(manual("record", "execution", 12, 4, kind="override", reason="output copied from a classmate"))
    m = student_marks(rubrics, USN, results, marks)
    cell = m.record[1].cell("execution")
    assert (cell.mark, cell.automatic, cell.source) == (12, 20, "override")
    assert "output copied from a classmate" in cell.note
    assert [(o.where, o.attribute, o.automatic, o.mark, o.reason) for o in m.overrides] == [
        ("Program 4", "execution", 20, 12, "output copied from a classmate")]
    assert m.record[1].total == 22  # 5 + 12 + 5

    sheet = sheet_result(results[1], m.record[1])  # what the program sheet shows
    assert sheet.marks == {"writeup": 5, "execution": 12, "viva": 5}
    assert results[1].marks["execution"] == 20  # the stored result is not touched


def test_an_override_stands_in_for_a_missing_result(rubrics):
    marks = [manual("record", "writeup", 4, 3, kind="override", reason="graded on paper"),
             manual("record", "execution", 16, 3, kind="override", reason="graded on paper"),
             manual("record", "viva", 3, 3)]
    m = student_marks(rubrics, USN, [], marks)
    assert m.record[0].complete and m.record[0].total == 23 and not m.record[0].graded


# ---------------------------------------------------------------- the class


def test_latest_result_per_student_assessment_and_program(rubrics):
    old = graded(rubrics, 3, writeup=1, execution=5, graded_at="2024-01-01T10:00:00")
    new = graded(rubrics, 3, writeup=5, execution=20, graded_at="2024-01-05T10:00:00")
    quick = graded(rubrics, 3, writeup=2, execution=2, graded_at="2024-01-05T10:00:00", mode="quick")
    internal = graded(rubrics, 3, "internal", writeup=5, execution=5)
    assert latest_results([new, old, quick, internal]) == [internal, new]


def test_class_summary(rubrics):
    a_results, a_marks = complete(rubrics)
    b_results, b_marks = complete(rubrics, usn="1GA20CS002", record=((3, 1, 2, 0), (4, 1, 2, 0)), internal=(1, 1, 1),
                                  project=1, see=(1, 1, 1), part_b=(1, 1, 1))
    b_results[0] = b_results[0].model_copy(update={"flags": ["printed accuracy 0.99 differs from measured 0.41"],
                                                   "dataset": "cifar10 (synthetic stand-in)"})
    s = class_summary(rubrics, a_results + b_results, a_marks + b_marks,
                      roster={USN: "Asha Rao", "1GA20CS002": "Bhanu Prakash", "1GA20CS003": "Chitra"})
    assert [x.usn for x in s.students] == [USN, "1GA20CS002", "1GA20CS003"]
    assert s.counts == {"PASS": 1, "FAIL": 1, "PROVISIONAL": 1}
    assert s.programs == [3, 4] and [d.program for d in s.distributions] == [3, 4]
    assert s.distributions[0].totals == [23, 3] and s.distributions[0].missing == 1
    assert [(f.usn, f.program, f.reasons) for f in s.flagged] == [
        ("1GA20CS002", 3, ["printed accuracy 0.99 differs from measured 0.41"])]
    assert s.standin == {"Program 3": 1}
    assert [x.usn for x in s.below_pass_line] == ["1GA20CS002", "1GA20CS003"]
    assert s.internal_table == "internal_marks_distribution"


def test_a_mark_entered_for_another_program_than_the_one_tested_is_named(rubrics):
    results, marks = complete(rubrics, internal=(8, 15, 8))
    marks = [m if m.assessment != "internal" else m.model_copy(update={"program": 4}) for m in marks]
    m = student_marks(rubrics, USN, results, marks)
    assert m.component("B").parts[0].entry.mark("viva") is None and "Internal test (program 3): Viva" in m.pending
    assert any("entered for program 4" in p and "program 3" in p for p in m.problems)


def test_change_of_experiment_wins_over_an_override_of_the_same_attribute(rubrics):
    results, marks = complete(rubrics)
    marks += [manual("see", "change_of_experiment", 1, 4),
              manual("see", "writeup", 9, 4, kind="override", reason="re-marked")]
    m = student_marks(rubrics, USN, results, marks)
    assert m.see_parts[0].entry.mark("writeup") == 0 and m.overrides == []
    assert any("does not count" in p and "change of experiment" in p for p in m.problems)
