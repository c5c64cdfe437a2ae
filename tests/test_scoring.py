"""Marks from check results: weights, rounding, bands and gates, pending manual marks."""

from grader.course import load_rubrics
from grader.models import CheckResult
from grader.scoring import score

COURSE = load_rubrics().course


def c(id, attribute, passed, weight, s=None):
    return CheckResult(id=id, attribute=attribute, passed=passed, score=float(passed) if s is None else s, weight=weight)


def marks(checks, gates=None):
    return {a.attribute: a for a in score(checks, COURSE, gates or {})}


def test_all_passed_gives_full_marks_and_viva_pending():
    m = marks([c("a", "writeup", True, 2), c("b", "execution", True, 3)])
    assert (m["writeup"].mark, m["writeup"].band) == (5, "Good")
    assert (m["execution"].mark, m["execution"].band) == (20, "Good")
    assert m["viva"].mark is None and m["viva"].manual


def test_weighted_partial_score_is_rounded_half_up():
    # 3 of 4 weight passed on writeup: 0.75 * 5 = 3.75 -> 4
    m = marks([c("a", "writeup", True, 3), c("b", "writeup", False, 1)])
    assert m["writeup"].mark == 4
    # execution: 0.5 * 20 = 10 exactly
    m = marks([c("a", "execution", True, 1), c("b", "execution", False, 1)])
    assert m["execution"].mark == 10 and m["execution"].band == "Good"


def test_gate_keeps_mark_below_the_band():
    checks = [c("run", "execution", True, 4), c("acc", "execution", False, 1, s=0.2)]
    assert marks(checks)["execution"].mark == 17
    gated = marks(checks, {"acc": "Good"})["execution"]
    assert (gated.mark, gated.band, gated.capped_by) == (9, "Satisfactory", "acc")
    failed_run = [c("run", "execution", False, 4), c("x", "execution", True, 6)]
    m = marks(failed_run, {"run": "Satisfactory"})["execution"]
    assert (m.mark, m.band) == (4, "Poor")


def test_zero_weight_checks_do_not_count():
    m = marks([c("a", "execution", True, 1), c("advice", "execution", False, 0)])
    assert m["execution"].mark == 20
