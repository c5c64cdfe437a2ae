"""Copied work across a class: programs written for the purpose (a copy with renamed
variables, one with reordered functions, a script pasted into a notebook, the manual's
program handed in unchanged, programs built on the manual, independent solutions), ranked
and flagged; the flags on the mark sheets and the class report; the pages in a browser."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES
from grader.batch import run_batch
from grader.cli import app
from grader.course import load_rubrics
from grader.gradebook import Gradebook
from grader.models import AttributeMark, GradeResult, RunRecord, Status
from grader.report import regenerate
from grader.similarity import detect
from grader.similarity.detect import find_similar
from grader.similarity.fingerprints import FingerprintCache, boilerplate_hashes
from grader.similarity.pages import load_reports
from grader.similarity.rank import rank
from grader.similarity.run import run_similarity
from grader.similarity.source import notebook_code, read_code
from grader.submissions import class_jobs
from test_course_reports import needs_browser, rendered, screenshot

SIM = FIXTURES / "similarity"
COURSE = "20CSEL76"
# USN -> the program that student hands in for Program 4
CLASS = {
    "1GA20CS001": "original.py",
    "1GA20CS002": "renamed.py",  # 001's program, every name renamed
    "1GA20CS003": "reordered.py",  # 001's program, functions in another order
    "1GA20CS004": "notebook.ipynb",  # 001's program pasted into a notebook, with !pip and % lines
    "1GA20CS005": "manual_unchanged.py",  # the manual's Program 4 as printed
    "1GA20CS006": "manual_unchanged.py",  # ... handed in by a second student too
    "1GA20CS007": "independent_1.py",
    "1GA20CS008": "independent_2.py",
    "1GA20CS009": "manual_extended_1.py",  # the manual's program and code of their own
    "1GA20CS010": "manual_extended_2.py",  # the manual's program and other code of their own
}
COPIES = {("1GA20CS001", "1GA20CS002"), ("1GA20CS001", "1GA20CS003"), ("1GA20CS001", "1GA20CS004"),
          ("1GA20CS002", "1GA20CS003"), ("1GA20CS002", "1GA20CS004"), ("1GA20CS003", "1GA20CS004")}


def make_class(root: Path, plan: dict[str, str] = CLASS) -> Path:
    for usn, name in plan.items():
        (root / usn).mkdir(parents=True)
        shutil.copy(SIM / name, root / usn / f"program4{Path(name).suffix}")
    (root / "1GA20CS011").mkdir()  # handed in nothing
    (root / "1GA20CS012").mkdir()
    (root / "1GA20CS012" / "program4.ipynb").write_text("{not a notebook")
    (root / "roster.csv").write_text("usn,name\n1GA20CS001,Asha Rao\n1GA20CS002,Bhanu <b>Prakash</b>\n")
    return root


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    return make_class(tmp_path_factory.mktemp("similarity") / "class")


@pytest.fixture(scope="module")
def report(klass):
    return find_similar(class_jobs(klass, [4], COURSE, "quick"), load_rubrics(COURSE), 4)


def pair(report, a: str, b: str):
    return next((p for p in report.pairs if {p.a, p.b} == {a, b}), None)


# ---------------------------------------------------------------- what is flagged


def test_copy_with_renamed_variables_is_flagged(report):
    p = pair(report, "1GA20CS001", "1GA20CS002")
    assert p.flagged and p.similarity >= 0.9 and p.shared_lines >= 50 and not p.identical


def test_copy_with_reordered_functions_is_flagged(report):
    p = pair(report, "1GA20CS001", "1GA20CS003")
    assert p.flagged and p.similarity >= 0.9 and p.shared_lines >= 50


def test_script_copied_into_a_notebook_is_flagged(report):
    p = pair(report, "1GA20CS001", "1GA20CS004")
    assert p.flagged and p.similarity >= 0.9
    code = report.submission("1GA20CS004").code
    assert "!pip" not in code and "%matplotlib" not in code and "%%time" not in code
    assert "def load_cifar" in code and "# cell 3" in code


def test_only_the_copies_are_flagged_and_they_rank_first(report):
    flagged = {(p.a, p.b) for p in report.flagged}
    assert flagged == COPIES
    assert {(p.a, p.b) for p in report.pairs[:len(COPIES)]} == COPIES
    assert [p.similarity for p in report.pairs] == sorted((p.similarity for p in report.pairs), reverse=True)


def test_the_manual_program_handed_in_unchanged_is_not_paired(report):
    assert report.manual_only == ["1GA20CS005", "1GA20CS006"]
    assert all("1GA20CS005" not in (p.a, p.b) and "1GA20CS006" not in (p.a, p.b) for p in report.pairs)
    assert "rubrics/20CSEL76/template/program4.py" in report.boilerplate
    assert not any(b.startswith("reference/") for b in report.boilerplate)  # students never see those


def test_programs_built_on_the_manual_are_not_paired_for_the_manual(report, klass, monkeypatch):
    assert pair(report, "1GA20CS009", "1GA20CS010") is None or not pair(report, "1GA20CS009", "1GA20CS010").flagged
    # The same class with nothing taken out: the manual's code alone pairs them
    monkeypatch.setattr(detect, "manual_files", lambda *a, **k: [])
    bare = find_similar(class_jobs(klass, [4], COURSE, "quick"), load_rubrics(COURSE), 4)
    assert pair(bare, "1GA20CS005", "1GA20CS006").identical
    assert pair(bare, "1GA20CS005", "1GA20CS010").flagged


def test_independent_solutions_are_not_flagged(report):
    for usn in ("1GA20CS007", "1GA20CS008"):
        assert not any(p.flagged for p in report.pairs if usn in (p.a, p.b))
    assert all(p.similarity < 0.35 for p in report.pairs if (p.a, p.b) not in COPIES)


def test_identical_files_are_always_listed(tmp_path):
    """Two students who add the same two lines to the manual's program: too little to pass
    the shared-lines bar, but identical files are listed whatever the figures say."""
    root = tmp_path / "class"
    manual = (SIM / "manual_unchanged.py").read_text()
    for usn in ("1GA20CS101", "1GA20CS102"):
        (root / usn).mkdir(parents=True)
        (root / usn / "program4.py").write_text(manual + 'model.save("cifar10_improved.keras")\nmodel.summary()\n')
    rubrics = load_rubrics(COURSE)
    rubrics.course.similarity.min_shared_lines = 50
    got = find_similar(class_jobs(root, [4], COURSE, "quick"), rubrics, 4)
    assert [(p.a, p.b, p.identical, p.flagged, p.similarity) for p in got.pairs] == [
        ("1GA20CS101", "1GA20CS102", True, True, 1.0)]
    assert got.pairs[0].shared_lines < 50


def test_unreadable_and_missing_work_is_named_not_fatal(report):
    assert report.skipped == ["1GA20CS012: program4.ipynb is not a valid notebook: not JSON "
                              "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"]
    assert "1GA20CS011" not in {s.student for s in report.submissions}
    assert len(report.submissions) == 10 and report.pairs_total == 45


def test_files_too_short_to_compare_are_named(tmp_path):
    root = make_class(tmp_path / "class", {"1GA20CS001": "original.py", "1GA20CS002": "renamed.py"})
    (root / "1GA20CS003").mkdir()
    (root / "1GA20CS003" / "program4.py").write_text("print('hello')\n")
    got = find_similar(class_jobs(root, [4], COURSE, "quick"), load_rubrics(COURSE), 4)
    assert "1GA20CS003: program4.py is too short to compare (1 line of code)" in got.skipped
    assert [s.student for s in got.submissions] == ["1GA20CS001", "1GA20CS002"] and got.manual_only == []


# ---------------------------------------------------------------- how it works


def test_each_distinct_file_is_fingerprinted_once(report):
    assert report.fingerprinted == len({s.code_hash for s in report.submissions}) == 9
    cache = FingerprintCache(load_rubrics(COURSE).course.similarity, boilerplate_hashes([], load_rubrics(COURSE)
                                                                                         .course.similarity))
    code = read_code(SIM / "original.py")
    assert cache.get(code) is cache.get(code) and len(cache) == 1


def test_ranking_counts_shared_fingerprints_in_one_product():
    sets = [{1, 2, 3, 4}, {3, 4, 5}, {9}, {1, 2, 3, 4, 5, 6, 7, 8}, set()]
    ranking = rank(sets)
    got = {(int(i), int(j)): int(s) for i, j, s in zip(ranking.i, ranking.j, ranking.shared)}
    brute = {(i, j): len(sets[i] & sets[j]) for i in range(len(sets)) for j in range(i + 1, len(sets))
             if sets[i] & sets[j]}
    assert got == brute
    assert (int(ranking.i[0]), int(ranking.j[0]), float(ranking.estimate[0])) == (0, 3, 1.0)
    assert ranking.top(1) == [(0, 3, 1.0)] and len(ranking.top(1, at_least=0.6)) == 3


def test_notebook_code_leaves_out_shell_and_magic_lines():
    code = notebook_code(SIM / "notebook.ipynb")
    assert "pip install" not in code and "%matplotlib" not in code and "%%time" not in code
    assert not any(line.lstrip().startswith(("!", "%")) for line in code.splitlines())
    assert code.startswith("# cell 2\nimport numpy as np")  # cell 1 held only shell and magic lines


def test_threshold_lives_in_course_yaml_and_does_not_regrade(tmp_path):
    folder = tmp_path / COURSE
    shutil.copytree(load_rubrics(COURSE).folder, folder)
    before = load_rubrics(COURSE, folder)
    assert before.course.similarity.threshold == 0.7
    text = (folder / "course.yaml").read_text()
    (folder / "course.yaml").write_text(text.replace("threshold: 0.70", "threshold: 0.55"))
    after = load_rubrics(COURSE, folder)
    assert after.course.similarity.threshold == 0.55
    assert after.version(4) == before.version(4)  # results in the gradebook stay current
    (folder / "course.yaml").write_text(text.split("\nsimilarity:")[0])
    default = load_rubrics(COURSE, folder)
    assert default.course.similarity.threshold == 0.7 and default.version(4) == before.version(4)


# ---------------------------------------------------------------- reports


def result_for(job, rubrics, execution: float = 15.0) -> GradeResult:
    table = rubrics.course.table("record")
    attributes = [AttributeMark(attribute=k, max=spec.max, mark=None if spec.manual else min(execution, spec.max),
                                manual=spec.manual) for k, spec in table.items()]
    return GradeResult(student=job.student, name=job.name, program=4, title="Improve the CNN", course=COURSE,
                       mode="quick", status=Status.ok, marks={a.attribute: a.mark for a in attributes},
                       max={a.attribute: a.max for a in attributes}, attributes=attributes,
                       content_hash=job.content_hash, grade_key=f"{job.student}-4",
                       graded_at="2024-01-01T10:00:00", run=RunRecord(status=Status.ok))


@pytest.fixture(scope="module")
def reports_dir(klass, tmp_path_factory):
    """A graded class (results made in code), its similarity run, and every report."""
    out = tmp_path_factory.mktemp("reports")
    rubrics = load_rubrics(COURSE)
    jobs = class_jobs(klass, [4], COURSE, "quick")
    with Gradebook(out / "gradebook.sqlite") as book:
        for job in jobs:
            if job.entry is not None:
                stale = job.student == "1GA20CS003"  # graded before the student handed in new work
                book.put(result_for(job.model_copy(update={"content_hash": "old"}) if stale else job, rubrics))
    regenerate(out / "gradebook.sqlite", rubrics, out, klass)
    marks_before = (out / "marks.csv").read_text()
    run_similarity(jobs, rubrics, out, [4])
    outcome = regenerate(out / "gradebook.sqlite", rubrics, out, klass)
    return out, outcome, marks_before


def test_flags_on_both_mark_sheets_and_marks_unchanged(reports_dir):
    out, outcome, marks_before = reports_dir
    sheet = (out / "1GA20CS001" / "program4.html").read_text()
    assert "similar to 1GA20CS002&#39;s program 4: 1.00" in sheet
    assert "similar to 1GA20CS004&#39;s program 4: 1.00" in sheet
    assert "similar to 1GA20CS001&#39;s program 4: 1.00" in (out / "1GA20CS002" / "program4.html").read_text()
    assert "similar to" not in (out / "1GA20CS007" / "program4.html").read_text()
    assert "similar to" not in (out / "1GA20CS005" / "program4.html").read_text()
    # a result of other content than the one compared is not flagged
    assert "similar to" not in (out / "1GA20CS003" / "program4.html").read_text()
    marks = [{k: v for k, v in row.items() if k != "flags"} for row in csv.DictReader((out / "marks.csv").open())]
    before = [{k: v for k, v in row.items() if k != "flags"} for row in csv.DictReader(marks_before.splitlines())]
    assert marks == before
    assert outcome.similarity_pages == [out / "similarity" / "program4.html"]
    assert load_reports(out, COURSE)[0].program == 4


@needs_browser
def test_class_report_ranks_the_pairs(reports_dir):
    out, _, _ = reports_dir
    dom = rendered(out / "class.html")
    text = dom.text
    assert "Similar submissions (6 pairs)" in text
    assert "1 1GA20CS001 Asha Rao — 1GA20CS002 Bhanu <b>Prakash</b> 4 1.00 62 compare" in text
    assert "1GA20CS005, 1GA20CS006" in text and "1GA20CS012: program4.ipynb is not a valid notebook" in text
    assert "similar to 1GA20CS002's program 4: 1.00" in text  # in "Flagged for review" too
    assert "similarity/program4/1GA20CS001--1GA20CS002.html" in dom.links
    assert "1GA20CS001/program4.html" in dom.links and dom.scripts == 0
    screenshot(out / "class.html", "class_report_similarity.png")
    page = (out / "similarity" / "program4.html").read_text()  # the same table on a page of its own
    assert "Similar submissions: program 4" in page and "grader marks set" in page
    assert "rubrics/20CSEL76/template/program4.py" in page and "1GA20CS001--1GA20CS002.html" in page


@needs_browser
def test_side_by_side_page(reports_dir):
    out, _, _ = reports_dir
    page = out / "similarity" / "program4" / "1GA20CS001--1GA20CS004.html"
    html = page.read_text()
    dom = rendered(page)
    text = dom.text
    assert "1GA20CS001 and 1GA20CS004: similarity 1.00" in text and "For faculty review" in text
    assert "program4.py" in text and "program4.ipynb" in text and "Asha Rao" in text
    assert html.count('class="shared"') > 40 and dom.scripts == 0
    assert "../../1GA20CS001/program4.html" in dom.links and "../program4.html" in dom.links
    assert "../../class.html" in dom.links
    screenshot(page, "similarity_pair.png")


@needs_browser
def test_side_by_side_page_greys_the_manual_code(tmp_path):
    root = make_class(tmp_path / "class", {"1GA20CS101": "manual_extended_1.py", "1GA20CS102": "manual_extended_1.py"})
    rubrics = load_rubrics(COURSE)
    [got] = run_similarity(class_jobs(root, [4], COURSE, "quick"), rubrics, tmp_path / "out", [4])
    assert got.flagged[0].identical and got.flagged[0].manual_a
    page = tmp_path / "out" / "similarity" / "program4" / "1GA20CS101--1GA20CS102.html"
    assert 'class="manual"' in page.read_text()
    text = rendered(page).text
    assert "identical files" in text and "datagen.fit(x_train)" in text


# ---------------------------------------------------------------- the command line and the batch


def test_cli_similarity(klass, tmp_path):
    r = subprocess.run([sys.executable, "-m", "grader.cli", "similarity", str(klass), "--program", "4",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "10 submissions, 45 pairs, 6 flagged" in r.stdout and "1GA20CS001 — 1GA20CS002" in r.stdout
    assert "not compared: 1GA20CS012" in r.stderr
    assert (tmp_path / "out" / "similarity" / "program4.html").is_file()
    assert len(list((tmp_path / "out" / "similarity" / "program4").glob("*.html"))) == 6
    bad = CliRunner().invoke(app, ["similarity", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "not a folder" in bad.output


class NotRun:
    """A runner that runs nothing: the batch's own steps are what is tested."""

    name = "none"

    def run(self, job, plan, artifacts_to):
        return RunRecord(status=Status.error, message="not run in this test")


def test_batch_ends_with_the_similarity_report(tmp_path, cache_dir):
    root = make_class(tmp_path / "class", {u: CLASS[u] for u in ("1GA20CS001", "1GA20CS002", "1GA20CS007")})
    rubrics = load_rubrics(COURSE)
    out = tmp_path / "reports"
    outcome = run_batch(class_jobs(root, [4], COURSE, "quick"), rubrics, NotRun(), out, cache_dir)
    assert outcome.similarity_error is None
    assert [(p.a, p.b) for p in outcome.similarity[0].flagged] == [("1GA20CS001", "1GA20CS002")]
    assert "similar to 1GA20CS002&#39;s program 4" in (out / "1GA20CS001" / "program4.html").read_text()
    assert "Similar submissions (1 pair)" in (out / "class.html").read_text()

    off = tmp_path / "reports-off"
    quiet = run_batch(class_jobs(root, [4], COURSE, "quick"), rubrics, NotRun(), off, cache_dir, similarity=False)
    assert quiet.similarity == [] and not (off / "similarity").exists()
    assert "Similar submissions" not in (off / "class.html").read_text()
