"""Course mark sheets, the class report and portal.csv, rebuilt from a gradebook and read
back as a reader sees them: in a real headless browser (Chromium) where there is one."""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from grader.course import load_rubrics
from grader.gradebook import Gradebook
from grader.manual import ManualMark, record
from grader.models import AttributeMark, CheckResult, GradeResult, RunRecord, Status
from grader.report import regenerate

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
COURSE = "20CSEL76"
ROSTER = {"1GA20CS001": "Asha Rao", "1GA20CS002": "Bhanu <b>Prakash</b>", "1GA20CS003": "Chitra",
          "1GA20CS004": "Deepak"}
needs_browser = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed: no headless "
                                   "browser to render the pages in")


def trace(epochs: int = 4) -> dict:
    return {"fits": [{"model": 0, "epochs_run": epochs, "history": {
        "loss": [2.0 - 0.3 * i for i in range(epochs)], "val_loss": [2.1 - 0.25 * i for i in range(epochs)],
        "accuracy": [0.2 + 0.1 * i for i in range(epochs)], "val_accuracy": [0.18 + 0.09 * i for i in range(epochs)]}}]}


def result(rubrics, usn: str, program: int, assessment: str = "record", *, flags=(), dataset="cifar10",
           **marks: float) -> GradeResult:
    table = rubrics.course.table(assessment)
    checks, attributes = [], []
    for name, spec in table.items():
        mark = None if spec.manual else marks[name]
        if not spec.manual:
            checks.append(CheckResult(id=f"{name}.measured", title=f"{name} measured", attribute=name, passed=True,
                                      score=mark / spec.max, weight=1.0, message="measured"))
        attributes.append(AttributeMark(attribute=name, max=spec.max, mark=mark, manual=spec.manual,
                                        band=None if mark is None else spec.band_of(mark)))
    return GradeResult(student=usn, name=ROSTER.get(usn, ""), program=program, title=f"Program {program} title",
                       course=COURSE, mode="full", assessment=assessment, status=Status.ok,
                       marks={a.attribute: a.mark for a in attributes}, max={a.attribute: a.max for a in attributes},
                       attributes=attributes, checks=checks, flags=list(flags), dataset=dataset,
                       grade_key=f"{usn}-{assessment}-{program}", graded_at="2024-01-01T10:00:00",
                       run=RunRecord(status=Status.ok, trace=trace()))


def mark(usn, assessment, attribute, value, program=None, kind="manual", reason="") -> ManualMark:
    return ManualMark(course=COURSE, usn=usn, assessment=assessment, program=program, attribute=attribute,
                      mark=value, kind=kind, reason=reason, source="test", entered_at="2024-01-02T10:00:00")


def build_class(book_path: Path, rubrics) -> None:
    """001 passes (with an override and a change of experiment), 002 has entries pending and a
    flagged stand-in result, 003 fails, 004 is on the roster with nothing graded."""
    results, marks = [], []
    for usn, (w, e, v), (iw, ie, iv), project, (sw, se, sv), part_b in [
        ("1GA20CS001", (4, 15, 4), (8, 15, 8), 9, (8, 30, 9), (20, 8, 4)),
        ("1GA20CS002", (5, 18, None), (6, 12, 6), None, (6, 20, 5), None),
        ("1GA20CS003", (1, 3, 0), (2, 2, 1), 1, (2, 5, 1), (3, 1, 1)),
    ]:
        for program in (3, 4):
            flagged = usn == "1GA20CS002" and program == 4
            results.append(result(rubrics, usn, program, writeup=w, execution=e,
                                  flags=["printed accuracy 0.99 differs from measured 0.41"] if flagged else (),
                                  dataset="cifar10 (synthetic stand-in)" if flagged else "cifar10"))
            if v is not None:
                marks.append(mark(usn, "record", "viva", v, program))
        results.append(result(rubrics, usn, 3, "internal", writeup=iw, execution=ie))
        marks.append(mark(usn, "internal", "viva", iv, 3))
        results.append(result(rubrics, usn, 4, "see", writeup=sw, execution=se))
        marks.append(mark(usn, "see", "viva", sv, 4))
        if project is not None:
            marks.append(mark(usn, "project", "project", project))
        if part_b:
            marks += [mark(usn, "see_part_b", k, x) for k, x in zip(("demonstration", "report", "viva"), part_b)]
    marks.append(mark("1GA20CS001", "record", "execution", 12, 4, kind="override",
                      reason="output copied from a classmate"))
    marks.append(mark("1GA20CS001", "see", "change_of_experiment", 1, 4))
    with Gradebook(book_path) as book:
        for r in results:
            book.put(r)
        record(book, marks)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    rubrics = load_rubrics(COURSE)
    root = tmp_path_factory.mktemp("course-reports")
    build_class(root / "gradebook.sqlite", rubrics)
    out = root / "reports"
    outcome = regenerate(root / "gradebook.sqlite", rubrics, out, ROSTER)
    return out, outcome


# ---------------------------------------------------------------- files and numbers


def test_everything_is_rebuilt_from_the_gradebook(built):
    out, outcome = built
    for rel in ["index.html", "marks.csv", "class.html", "portal.csv", "1GA20CS001/course.html",
                "1GA20CS004/course.html", "1GA20CS001/program3.html", "1GA20CS001/program4.html",
                "internal/1GA20CS001/program3.html", "see/1GA20CS001/program4.html"]:
        assert (out / rel).is_file(), rel
    assert outcome.students == 4 and outcome.course_sheets == 4 and outcome.results == 12
    assert outcome.program_sheets_drawn == 12
    assert outcome.counts == {"PASS": 1, "FAIL": 1, "PROVISIONAL": 2}


def test_portal_csv(built):
    out, _ = built
    rows = list(csv.reader((out / "portal.csv").open(newline="", encoding="utf-8")))
    assert rows[0] == ["USN", "Name", "Program 3", "Program 4", "CIE", "SEE", "Result"]
    by_usn = {r[0]: r for r in rows[1:]}
    # 001: entries 23 and 4+12+4 = 20 -> A 21.5 -> 22; internal 31/40 -> 8, project 9: CIE 39
    # SEE: Part A 0 (changed experiment) + 30 + 9 = 39, Part B 32 -> 71 -> 36
    assert by_usn["1GA20CS001"] == ["1GA20CS001", "Asha Rao", "23", "20", "39", "36", "PASS"]
    assert by_usn["1GA20CS002"][-1] == "PROVISIONAL"
    assert by_usn["1GA20CS003"][-1] == "FAIL"
    assert by_usn["1GA20CS004"] == ["1GA20CS004", "Deepak", "", "", "0", "0", "PROVISIONAL"]


def test_viva_entered_later_reaches_the_program_sheet_and_only_that_sheet_is_drawn(tmp_path):
    rubrics = load_rubrics(COURSE)
    build_class(tmp_path / "gradebook.sqlite", rubrics)
    out = tmp_path / "reports"
    regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER)
    sheet = out / "1GA20CS002" / "program3.html"
    assert "pending" in sheet.read_text()
    again = regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER)
    assert (again.program_sheets_drawn, again.program_sheets_unchanged) == (0, 12)
    with Gradebook(tmp_path / "gradebook.sqlite") as book:
        record(book, [mark("1GA20CS002", "record", "viva", 3, 3)])
    after = regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER)
    assert (after.program_sheets_drawn, after.program_sheets_unchanged) == (1, 11)
    assert "pending — entered by faculty" not in sheet.read_text()
    # the other internal-test table re-scores the internal tests: those sheets change
    alt = regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER, internal_table="internal-test-rubric")
    assert alt.internal_table == "internal_test_rubric" and alt.program_sheets_drawn == 3
    assert "internal_test_rubric" in (out / "1GA20CS001" / "course.html").read_text()


def test_missing_gradebook_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no gradebook"):
        regenerate(tmp_path / "nope.sqlite", load_rubrics(COURSE), tmp_path / "out")


# ---------------------------------------------------------------- in a real browser


class Dom(HTMLParser):
    """Visible text, links and images of a page as the browser serialised it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self.images: list[dict[str, str]] = []
        self.scripts = 0
        self._skip = 0
        self.feed(html)
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self.scripts += 1
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True, text=True, timeout=90, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def rendered(page: Path) -> Dom:
    return Dom(chromium(page, "--dump-dom").stdout)


def screenshot(page: Path, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    chromium(page, f"--screenshot={target}", "--window-size=1240,1754", "--hide-scrollbars")
    assert target.is_file() and target.stat().st_size > 10_000
    return target


@needs_browser
def test_course_sheet_of_a_student_who_passed(built):
    out, _ = built
    page = out / "1GA20CS001" / "course.html"
    dom = rendered(page)
    text = dom.text
    assert "1GA20CS001" in text and "Asha Rao" in text and "20CSEL76" in text
    assert "Deep Learning Laboratory with Mini Project" in text
    assert "CIE 50 39" in text and "SEE (scaled) 50 36" in text and "Total 100 75" in text
    assert "PASS" in text and "PROVISIONAL" not in text and "pending" not in text
    assert "A = average of 2 weekly entries (programs 3, 4) so far, out of 30 22 / 30" in text
    assert "SEE raw 71 / 100" in text and "SEE scaled to 50: at or above the pass line (20) 36 / 50" in text
    assert "change of experiment" in text
    assert "Overrides by faculty" in text and "output copied from a classmate" in text
    assert "internal_marks_distribution" in text
    assert "Signature of the Faculty" in text and "Signature of the HOD" in text and "Date:" in text
    assert dom.scripts == 0
    sheets = [link for link in dom.links if link.endswith("program3.html") or link.endswith("program4.html")]
    assert "program3.html" in sheets and "../see/1GA20CS001/program4.html" in sheets
    for link in sheets:
        assert (page.parent / unquote(link)).resolve().is_file(), link
    screenshot(page, "course_sheet_pass.png")


@needs_browser
def test_course_sheet_with_pending_entries(built):
    out, _ = built
    dom = rendered(out / "1GA20CS002" / "course.html")
    text = dom.text
    assert "1GA20CS002" in text and "Bhanu <b>Prakash</b>" in text  # escaped, shown as typed
    assert "PROVISIONAL" in text and "provisional" in text
    assert "Program 3: Viva" in text and "Project" in text and "pending" in text
    assert "flagged for review" in text and "stand-in data" in text
    screenshot(out / "1GA20CS002" / "course.html", "course_sheet_pending.png")


@needs_browser
def test_course_sheet_of_a_student_who_failed(built):
    out, _ = built
    text = rendered(out / "1GA20CS003" / "course.html").text
    assert "1GA20CS003" in text and "Chitra" in text and "FAIL" in text and "below the pass line" in text


@needs_browser
def test_course_sheet_prints_on_a4(built, tmp_path):
    out, _ = built
    page = out / "1GA20CS001" / "course.html"
    assert "size: A4" in page.read_text()
    pdf = tmp_path / "course.pdf"
    chromium(page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    assert pages == 1  # a complete sheet, signatures included, fits one page
    # A4 is 595 x 842 points
    assert b"/MediaBox [0 0 595" in data or b"/MediaBox [0 0 594.9" in data


@needs_browser
def test_class_report(built):
    out, _ = built
    page = out / "class.html"
    dom = rendered(page)
    text = dom.text
    assert "class report" in text and "20CSEL76" in text
    pictures = [img for img in dom.images if img.get("src", "").startswith("data:image/png;base64,")]
    assert len(pictures) >= 2 and all(img.get("alt") for img in pictures)
    assert "Below the pass line (3)" in text and "1GA20CS003 Chitra 6 / 50 7 / 50 FAIL" in text
    assert "Flagged for review (1)" in text and "printed accuracy 0.99 differs from measured 0.41" in text
    assert "Measured on synthetic stand-in data" in text
    for usn in ROSTER:
        assert usn in text
    assert "1GA20CS001/course.html" in dom.links and "portal.csv" in dom.links and "index.html" in dom.links
    assert dom.scripts == 0
    screenshot(page, "class_report.png")


@needs_browser
def test_program_sheet_shows_the_entered_viva(built):
    out, _ = built
    page = out / "1GA20CS001" / "program3.html"
    text = rendered(page).text
    assert "1GA20CS001" in text and "Viva 4 / 5" in text
    screenshot(page, "program_sheet.png")


def test_a_program_sheet_rewritten_by_someone_else_is_drawn_again(tmp_path):
    rubrics = load_rubrics(COURSE)
    build_class(tmp_path / "gradebook.sqlite", rubrics)
    out = tmp_path / "reports"
    regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER)
    sheet = out / "1GA20CS001" / "program3.html"
    sheet.write_text("stale")
    again = regenerate(tmp_path / "gradebook.sqlite", rubrics, out, ROSTER)
    assert again.program_sheets_drawn == 1 and "Viva" in sheet.read_text()


def test_a_sheet_that_cannot_be_drawn_is_named_and_the_rest_goes_on(tmp_path, monkeypatch):
    import grader.report as report_mod

    real = report_mod.write_sheet

    def flaky(result, out_dir, **kw):
        if result.student == "1GA20CS003" and result.program == 3 and result.assessment == "record":
            raise OSError("disk full")
        return real(result, out_dir, **kw)

    monkeypatch.setattr(report_mod, "write_sheet", flaky)
    rubrics = load_rubrics(COURSE)
    build_class(tmp_path / "gradebook.sqlite", rubrics)
    outcome = regenerate(tmp_path / "gradebook.sqlite", rubrics, tmp_path / "reports", ROSTER)
    assert outcome.program_sheet_failures == ["1GA20CS003 program 3 (record): OSError: disk full"]
    assert outcome.program_sheets_drawn == 11 and outcome.course_sheets == 4
    assert (tmp_path / "reports" / "class.html").is_file()


def test_report_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from grader.cli_report import report

    app = typer.Typer()
    app.command("report")(report)
    app.command("other")(lambda: None)  # two commands, so "report" is named as under `grader`
    runner = CliRunner()
    help_text = runner.invoke(app, ["report", "--help"]).output
    assert "--internal-table" in help_text and "portal.csv" in help_text
    rubrics = load_rubrics(COURSE)
    build_class(tmp_path / "gradebook.sqlite", rubrics)
    out = tmp_path / "reports"
    done = runner.invoke(app, ["report", "--out", str(out), "--gradebook", str(tmp_path / "gradebook.sqlite"),
                               "--internal-table", "internal-test-rubric"])
    assert done.exit_code == 0, done.output
    assert "internal_test_rubric" in done.output and str(out / "class.html") in done.output
    assert (out / "1GA20CS001" / "course.html").is_file()
    missing = runner.invoke(app, ["report", "--out", str(tmp_path / "elsewhere")])
    assert missing.exit_code == 2 and "no gradebook" in missing.output
    wrong = runner.invoke(app, ["report", "--out", str(out), "--internal-table", "record"])
    assert wrong.exit_code == 2
