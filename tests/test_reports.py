"""Reports: mark sheets, class summary and marks.csv, read back as a reader would."""

from __future__ import annotations

import csv
import math
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.models import (AttributeMark, CheckResult, GradeResult, RunRecord, StaticReport,
                           Status, SyntaxProblem)
from grader.reports import training_curve_png, write_index, write_marks_csv, write_sheet

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX = {"writeup": 5.0, "execution": 20.0, "viva": 5.0}


class Page(HTMLParser):
    """Visible text, links, images and script elements of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts = 0
        self._skip = 0
        self.feed(html)
        self.close()
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "script":
            self.scripts += 1
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def read(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def attrs(writeup, execution, viva, *, capped_by=None):
    def band(mark, good, sat):
        if mark is None:
            return None
        return "Good" if mark >= good else "Satisfactory" if mark >= sat else "Poor"
    return [
        AttributeMark(attribute="writeup", max=5, mark=writeup, band=band(writeup, 4, 2)),
        AttributeMark(attribute="execution", max=20, mark=execution, band=band(execution, 10, 5),
                      capped_by=capped_by),
        AttributeMark(attribute="viva", max=5, mark=viva, band=band(viva, 3, 1), manual=True),
    ]


TRACE = {
    "models": [{
        "class": "Sequential",
        "params": 101770,
        "layers": [
            {"type": "Flatten", "name": "flatten", "output_shape": [None, 784], "params": 0,
             "config": {}},
            {"type": "Dense", "name": "dense", "output_shape": [None, 128], "params": 100480,
             "config": {"units": 128, "activation": "relu"}},
            {"type": "Dense", "name": "dense_1", "output_shape": [None, 10], "params": 1290,
             "config": {"units": 10, "activation": "softmax"}},
        ],
        "optimizer": {"class": "Adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    }],
    "fits": [
        {"model": 0, "epochs_run": 0, "history": {}},
        {"model": 0, "epochs_run": 3, "history": {
            "loss": [0.9, 0.5, None], "accuracy": [0.7, 0.85, 0.9],
            "val_loss": [0.6, float("nan"), 0.4], "val_accuracy": [0.8, 0.86, 0.88]}},
    ],
}


def ok_result() -> GradeResult:
    return GradeResult(
        student="1GA20CS001", name="Asha Rao", program=3, course="20CSEL76", mode="full",
        status=Status.ok, marks={"writeup": 5, "execution": 17, "viva": 4}, max=MAX,
        attributes=attrs(5, 17, 4),
        checks=[
            CheckResult(id="run.completes", title="The program runs to completion",
                        attribute="execution", passed=True, score=1.0, weight=4,
                        message="ran in 41 s", evidence={"exit_code": 0}),
            CheckResult(id="accuracy.threshold", title="Test accuracy reaches the bar",
                        attribute="execution", passed=False, score=0.5, weight=4,
                        message="measured accuracy 0.58 is below 0.65",
                        hint="Train for more epochs or add batch normalisation.",
                        evidence={"measured": 0.5812345, "threshold": 0.65,
                                  "per_class": {"cat": 0.41, "dog": [0.1, 0.2, {"x": 1}]},
                                  "log": "y" * 5000}),
        ],
        dataset="cifar10",
        graded_at="2024-03-01T10:00:00",
        run=RunRecord(status=Status.ok, wall_s=41.2, peak_memory_mb=1530.0,
                      stdout="Epoch 1/3\n<script>alert('pwned')</script>\nTest accuracy: 0.58\n",
                      stderr="", output_bytes=120, trace=TRACE,
                      protections={"network": "no network namespace", "gpu": "off: no GPU here"}),
        static=StaticReport(parses=True, steps={"load_data": True, "build_model": True,
                                                "evaluate": False}, source_lines=48),
    )


def error_result() -> GradeResult:
    return GradeResult(
        student="1GA20CS002", name="Bhavya K", program=3, course="20CSEL76", mode="quick",
        status=Status.error, status_message="NameError: name 'modle' is not defined",
        marks={"writeup": 2, "execution": 0, "viva": None}, max=MAX,
        attributes=attrs(2, 0, None, capped_by="run.completes"),
        checks=[CheckResult(id="run.completes", title="The program runs to completion",
                            attribute="execution", passed=False, score=0.0,
                            message="stopped with NameError",
                            hint="Check the spelling of `model` on line 12.")],
        dataset="cifar10",
        quick_limits={"epochs": 2, "train": 5000, "test": 1000, "title": "Train a CNN"},
        run=RunRecord(status=Status.error, message="NameError", exit_code=1, wall_s=3.0,
                      stderr="Traceback ...\nNameError: name 'modle' is not defined\n",
                      output_bytes=2_000_000, output_truncated=True, trace=None),
        static=StaticReport(parses=False, syntax_error=SyntaxProblem(
            file="program3.py", line=7, text="print 'hi'", message="Missing parentheses")),
    )


def standin_result() -> GradeResult:
    return GradeResult(
        student="1GA20CS003", name="<b>Chetan</b>", program=4, course="20CSEL76", mode="quick",
        status=Status.ok, marks={"writeup": 4, "execution": 12, "viva": 3}, max=MAX,
        attributes=attrs(4, 12, 3),
        flags=["printed accuracy 0.99 differs from measured 0.41"],
        dataset="cifar10 (synthetic stand-in)",
        run=RunRecord(status=Status.ok, wall_s=12.0, trace={"fits": [], "models": []}),
    )


def pending_result() -> GradeResult:
    return GradeResult(
        student="1GA20CS000", name="Deepa", program=4, course="20CSEL76", mode="full",
        status=Status.timeout, status_message="ran past the 300 s limit",
        marks={"writeup": 3, "execution": 6, "viva": None}, max=MAX,
        attributes=attrs(3, 6, None), dataset="cifar10",
    )


ALL = [ok_result, error_result, standin_result, pending_result]


# ---------------------------------------------------------------- mark sheets


def test_ok_sheet_shows_marks_checks_curve_and_model(tmp_path):
    path = write_sheet(ok_result(), tmp_path)
    assert path == tmp_path / "1GA20CS001" / "program3.html"
    page = read(path)
    assert "1GA20CS001" in page.text and "Asha Rao" in page.text and "20CSEL76" in page.text
    assert "17 / 20" in page.text and "5 / 5" in page.text
    assert "✓" in page.text and "✗" in page.text
    assert "Train for more epochs or add batch normalisation." in page.text
    assert "measured accuracy 0.58 is below 0.65" in page.text
    assert "0.5812" in page.text and "0.58123" not in page.text  # evidence is compact
    assert "y" * 400 not in page.text  # long evidence strings are truncated
    assert any(src.startswith("data:image/png;base64,") for src in page.images)
    assert "Sequential" in page.text and "101,770" in page.text and "Adam" in page.text
    assert "(None, 28, 28, 1)" not in page.text and "(None, 128)" in page.text
    assert "41.2 s" in page.text and "1,530 MB" in page.text
    assert "off: no GPU here" in page.text
    assert "full run" in page.text and "Synthetic stand-in data" not in page.text
    assert "Flagged for review" not in page.text


def test_passed_check_hides_hint(tmp_path):
    result = ok_result()
    result.checks[0].hint = "A HINT ONLY FOR FAILURES"
    assert "A HINT ONLY FOR FAILURES" not in read(write_sheet(result, tmp_path)).text


def test_student_output_is_escaped(tmp_path):
    raw = write_sheet(ok_result(), tmp_path).read_text(encoding="utf-8")
    assert "<script>" not in raw
    assert "&lt;script&gt;alert(" in raw
    page = Page(raw)
    assert page.scripts == 0
    assert "<script>alert('pwned')</script>" in page.text  # shown to the reader as text
    # a name with markup is escaped too
    raw = write_sheet(standin_result(), tmp_path).read_text(encoding="utf-8")
    assert "<b>Chetan</b>" not in raw and "&lt;b&gt;Chetan&lt;/b&gt;" in raw


def test_error_sheet(tmp_path):
    page = read(write_sheet(error_result(), tmp_path))
    assert "NameError: name 'modle' is not defined" in page.text
    assert "error" in page.text
    assert not any(src.startswith("data:image/png") for src in page.images)
    assert "Check the spelling of `model` on line 12." in page.text
    assert "capped at Poor by check The program runs to completion" in page.text
    assert "pending — entered by faculty" in page.text
    # quick mode and its limits, the program title
    assert "Quick preview" in page.text
    assert "epochs capped at: 2" in page.text and "training samples: 5000" in page.text
    assert "Train a CNN" in page.text
    # truncated output and the syntax error
    assert "Output truncated" in page.text and "2,000,000" in page.text
    assert "program3.py, line 7" in page.text and "print 'hi'" in page.text


def test_standin_sheet_has_banner_and_flags(tmp_path):
    page = read(write_sheet(standin_result(), tmp_path))
    assert "Synthetic stand-in data" in page.text
    assert "Flagged for review (1)" in page.text
    assert "printed accuracy 0.99 differs from measured 0.41" in page.text
    assert not page.images  # empty fits and models draw nothing


def test_pending_sheet(tmp_path):
    page = read(write_sheet(pending_result(), tmp_path))
    assert "pending — entered by faculty" in page.text
    assert "9 / 25" in page.text  # automatic marks
    assert "9 / 30" in page.text and "Viva pending" in page.text
    assert "timeout" in page.text and "ran past the 300 s limit" in page.text
    assert "The program was not run." in page.text


def test_sheet_without_attribute_rows_uses_marks(tmp_path):
    result = pending_result()
    result.attributes = []
    page = read(write_sheet(result, tmp_path))
    assert "3 / 5" in page.text and "6 / 20" in page.text
    assert "pending — entered by faculty" in page.text and "9 / 30" in page.text


def test_sheet_is_self_contained(tmp_path):
    raw = write_sheet(ok_result(), tmp_path).read_text(encoding="utf-8")
    page = Page(raw)
    assert "<style>" in raw and "@page" in raw
    assert not any(link.startswith(("http:", "https:", "//")) for link in page.links)
    assert 'rel="stylesheet"' not in raw


def test_artifacts_are_copied_and_shown(tmp_path):
    art = tmp_path / "job"
    (art / "figures").mkdir(parents=True)
    png = training_curve_png(TRACE)
    (art / "figures" / "fig1.png").write_bytes(png)
    (art / "executed.ipynb").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("reference solution")
    (art / "escape.png").symlink_to(secret)
    result = ok_result()
    result.run.artifacts = ["figures/fig1.png", "executed.ipynb", "escape.png", "../secret.txt",
                            "missing.png"]
    path = write_sheet(result, tmp_path / "out", artifacts_dir=art)
    files = path.parent / "program3_files"
    assert sorted(p.name for p in files.iterdir()) == ["executed.ipynb", "figures__fig1.png"]
    page = read(path)
    assert "program3_files/executed.ipynb" in page.links
    assert "program3_files/figures__fig1.png" in page.links
    assert len([s for s in page.images if s.startswith("data:image/png")]) == 2  # curve + figure
    # a re-run without artifacts leaves no stale files behind
    result.run.artifacts = []
    write_sheet(result, tmp_path / "out", artifacts_dir=None)
    assert not files.exists()


def test_student_id_cannot_escape_out_dir(tmp_path):
    result = pending_result()
    result.student = "../../etc"
    path = write_sheet(result, tmp_path / "out")
    assert path.resolve().is_relative_to((tmp_path / "out").resolve())


# ---------------------------------------------------------------- class summary


def test_index_links_counts_and_flags(tmp_path):
    results = [f() for f in ALL]
    for r in results[:3]:
        write_sheet(r, tmp_path)
    page = read(write_index(results, tmp_path, title="Program 3 and 4"))
    assert "Program 3 and 4" in page.text
    sheets = [link for link in page.links if link.endswith(".html")]
    assert sheets and all((tmp_path / link).is_file() for link in sheets)
    assert {"1GA20CS001/program3.html", "1GA20CS002/program3.html",
            "1GA20CS003/program4.html"} <= set(sheets)
    assert "1GA20CS000/program4.html" not in sheets  # not written yet
    for usn in ("1GA20CS000", "1GA20CS001", "1GA20CS002", "1GA20CS003"):
        assert usn in page.text
    assert "pending" in page.text
    assert "printed accuracy 0.99 differs from measured 0.41" in page.text
    assert "26 / 30" in page.text  # 5 + 17 + 4
    assert "flagged for review: 1" in page.text
    assert "NameError: name 'modle' is not defined" in page.text  # why it failed, at a glance
    raw = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<b>Chetan</b>" not in raw


def test_index_default_title_and_empty(tmp_path):
    page = read(write_index([ok_result()], tmp_path))
    assert "20CSEL76" in page.text and "program 3" in page.text
    page = read(write_index([], tmp_path))
    assert "No submission was flagged." in page.text


# ---------------------------------------------------------------- marks.csv


def test_marks_csv(tmp_path):
    path = write_marks_csv([f() for f in ALL], tmp_path / "out" / "marks.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["usn", "name", "program", "assessment", "mode", "status", "writeup", "execution",
                       "viva", "total", "max_total", "dataset", "flags"]
    body = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [(r["usn"], r["program"]) for r in body] == [
        ("1GA20CS000", "4"), ("1GA20CS001", "3"), ("1GA20CS002", "3"), ("1GA20CS003", "4")]
    first, ok = body[0], body[1]
    assert first["viva"] == "" and first["total"] == "9" and first["max_total"] == "30"
    assert first["status"] == "timeout" and first["mode"] == "full" and first["assessment"] == "record"
    assert ok["writeup"] == "5" and ok["execution"] == "17" and ok["viva"] == "4"
    assert ok["total"] == "26" and ok["name"] == "Asha Rao"
    assert body[3]["dataset"] == "cifar10 (synthetic stand-in)"
    assert body[3]["flags"] == "printed accuracy 0.99 differs from measured 0.41"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_marks_csv_neutralises_formulas(tmp_path):
    r = ok_result()
    r.name = "=HYPERLINK(\"http://x\")"
    path = write_marks_csv([r], tmp_path / "marks.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        row = list(csv.DictReader(fh))[0]
    assert row["name"].startswith("'=")


# ---------------------------------------------------------------- curves


def test_curve_png_from_last_fit_with_history():
    png = training_curve_png(TRACE)
    assert png is not None and png.startswith(PNG_MAGIC)
    only_loss = {"fits": [{"model": 0, "epochs_run": 1, "history": {"loss": [1.0]}}]}
    assert training_curve_png(only_loss).startswith(PNG_MAGIC)
    keras2 = {"fits": [{"history": {"acc": [0.1, 0.2], "val_acc": [0.1, 0.3]}}]}
    assert training_curve_png(keras2).startswith(PNG_MAGIC)


@pytest.mark.parametrize("trace", [
    None, {}, {"fits": []}, {"fits": "nonsense"}, {"fits": [None, {"history": None}]},
    {"fits": [{"history": {"loss": [], "accuracy": []}}]},
    {"fits": [{"history": {"loss": [None, float("nan")], "val_loss": ["x", math.inf]}}]},
])
def test_curve_none_when_nothing_to_draw(trace):
    assert training_curve_png(trace) is None


def test_curve_from_threads():
    out: list[bytes | None] = []
    threads = [threading.Thread(target=lambda: out.append(training_curve_png(TRACE)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and all(png and png.startswith(PNG_MAGIC) for png in out)
