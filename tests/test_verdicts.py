"""Verdicts an examiner would give: no student accused or docked for what is not wrong
(printed figures read only when unambiguous, deprecated APIs that still run are a hint),
notebooks read as notebooks (old formats upgraded, syntax errors named by cell), and a
class's missing work shown as missing, not as failure. Each case of ../shared/cases/ that
these kinds cover is graded for real, with a further program of each kind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import PROJECT, check
from grader.batch import run_batch, summary, summary_line
from grader.harness.printed import printed_accuracies, printed_accuracy
from grader.models import Status
from grader.runners.local import LocalRunner
from grader.static import analyse
from grader.submissions import class_jobs, other_course, programs_in, read_roster, single_job

CASES = Path(__file__).parent / "fixtures" / "cases"  # a copy of the project's cases, one per kind of fault
STEPS = ["load_data", "build_model", "compile", "train", "evaluate"]
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason=f"{CASES} is not here")


# ---------------------------------------------------------------- printed accuracy


@pytest.mark.parametrize("printed, accuracy", [
    ("Test loss and accuracy: [2.06, 0.384]", 0.384),  # p4_datagen_flow.py: [loss, accuracy]
    ("Test loss, Test accuracy: [2.0611, 0.3840]", 0.384),
    ("loss, acc = (2.06, 0.384)", 0.384),
    ("Accuracy and loss: [0.384, 2.06]", 0.384),
    ("Test accuracy: 0.384", 0.384),
    ("Test accuracy: 38.40%", 0.384),
    ("Accuracy = 38.4 %", 0.384),
    ("Test Accuracy is 38.4", 0.384),
    ("Test loss: 2.06, Test accuracy: 0.384", 0.384),
    ("{'loss': 2.06, 'accuracy': 0.384}", 0.384),
    ("test_acc: 0.384", 0.384),
    ("Test accuracy: np.float64(0.384)", 0.384),
    ("Accuracy: tensor(0.3840, device='cuda:0')", 0.384),
    ("Accuracy of the network on the 10000 test images: 38 %", 0.38),
    ("Accuracy (k=3): 0.384", 0.384),
])
def test_unambiguous_accuracy_is_read(printed, accuracy):
    found = printed_accuracy(printed + "\n")
    assert found is not None and found.value == pytest.approx(accuracy)


@pytest.mark.parametrize("printed", [
    "Accuracy: [2.06, 0.384]",  # print("Accuracy:", model.evaluate(...)): which entry is the accuracy?
    "[2.06, 0.384]",
    "Test accuracy and loss: 0.384",  # one number for two names
    "Train accuracy: 0.95",
    "Training accuracy: 95%",
    "Validation accuracy: 0.61",
    "Top-5 accuracy: 0.91",
    "Balanced accuracy: 0.40",
    "Accuracy for class: plane is 57.6 %",
    "Test loss: 2.06",
    "Accuracy: 140",  # not a proportion
    "313/313 ━━━━━━━━━━━━━━━━━━━━ 1s 3ms/step - accuracy: 0.3840 - loss: 2.0611",
])
def test_ambiguous_or_other_figures_are_not_read(printed):
    assert printed_accuracy(printed + "\n") is None


def test_the_test_accuracy_is_chosen_over_per_class_lines():
    out = ("Accuracy of the network on the 10000 test images: 54 %\n"
           "Accuracy of plane : 61 %\nAccuracy of car : 70 %\nAccuracy of truck : 48 %\n")
    assert printed_accuracy(out).value == pytest.approx(0.54)
    # differently labelled accuracies, none said to be the test's: no guess
    assert printed_accuracy("Accuracy of plane : 61 %\nAccuracy of car : 70 %\n") is None
    # the same print repeated (a loop over runs): the last one
    assert printed_accuracy("Accuracy: 0.30\nAccuracy: 0.41\n").value == pytest.approx(0.41)
    assert [p.value for p in printed_accuracies("loss: 2.0 accuracy: 0.5\n")] == [0.5]


# ---------------------------------------------------------------- removed APIs


def test_removed_api_found_in_a_notebook_names_its_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Program 4"),
        nbformat.v4.new_code_cell("from tensorflow import keras"),
        nbformat.v4.new_code_cell("import numpy as np\nfrom tensorflow.keras.preprocessing.image import ImageDataGenerator")])
    nbformat.write(nb, tmp_path / "program4.ipynb")
    r = analyse(tmp_path / "program4.ipynb", STEPS)
    assert [(a["cell"], a["line"], a["silent"]) for a in r.removed_apis] == [(2, 2, False)]


# ---------------------------------------------------------------- notebooks read as notebooks


def v3_notebook(*sources: str) -> dict:
    """A notebook as an old IPython saved it: nbformat 3, cells inside worksheets, `input`."""
    cells = [{"cell_type": "heading", "level": 1, "metadata": {}, "source": "Program"}]
    cells += [{"cell_type": "code", "collapsed": False, "input": src, "language": "python", "metadata": {},
               "outputs": []} for src in sources]
    return {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0,
            "worksheets": [{"cells": cells, "metadata": {}}]}


def test_old_notebook_is_accepted_and_its_syntax_error_named_by_cell(tmp_path):
    path = tmp_path / "program6.ipynb"
    path.write_text(json.dumps(v3_notebook("import numpy as np\nx = np.zeros(3)",
                                           "%matplotlib inline\nfor i in range(3):\n    print i")))
    job = single_job(path, None, "20CSEL76", "quick")
    assert job.rejected_reason is None
    e = analyse(path, STEPS).syntax_error
    assert (e.cell, e.line, e.text, e.cell_first_line) == (2, 3, "    print i", "%matplotlib inline")
    assert e.where() == "cell 2 (`%matplotlib inline`), line 3"


def test_indentation_error_in_a_current_notebook_is_named_by_cell(tmp_path, rubrics):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("!pip install tensorflow\nimport tensorflow as tf"),
        nbformat.v4.new_markdown_cell("Load the data"),
        nbformat.v4.new_code_cell("(x, y), _ = tf.keras.datasets.cifar10.load_data()"),
        nbformat.v4.new_code_cell("def build():\n    m = tf.keras.Sequential()\n  return m")])
    nbformat.write(nb, tmp_path / "program3.ipynb")
    r = analyse(tmp_path / "program3.ipynb", STEPS)
    assert not r.parses and (r.syntax_error.cell, r.syntax_error.line) == (3, 3)
    assert r.syntax_error.text == "  return m"


def test_syntax_error_in_a_script_keeps_its_line(tmp_path):
    p = tmp_path / "program3.py"
    p.write_text("import os\n\nprint 'hello'\n")
    e = analyse(p, STEPS).syntax_error
    assert (e.cell, e.line, e.text) == (None, 3, "print 'hello'") and e.where() == "line 3"


@needs_cases
def test_case_python2_cell_names_cell_line_and_code(grade_file):
    r = grade_file(CASES / "p3_python2_cell.ipynb", 3)
    c = check(r, "static.parses")
    assert not c.passed
    assert "cell 1 (`from tensorflow import keras`), line 10" in c.message
    assert 'print "Test accuracy:"' in c.message and '"cells"' not in c.message
    assert r.status == Status.error and r.run.trace is None  # not run: Python would stop there too


@needs_cases
@pytest.mark.slow
def test_case_nbformat3_notebook_graded_like_any_other(grade_file):
    r = grade_file(CASES / "p3_nbformat3.ipynb", 3)
    assert r.status == Status.ok, r.status_message
    assert check(r, "static.parses").passed and check(r, "static.steps").passed
    assert r.run.trace.get("executed_notebook")
    assert r.marks["writeup"] == 5 and r.marks["execution"] == 20, [
        (c.id, c.message) for c in r.checks if not c.passed]


# ---------------------------------------------------------------- graded for real: kind 4


@needs_cases
@pytest.mark.slow
def test_case_datagen_flow_neither_accused_nor_docked(grade_file):
    """p4_datagen_flow.py prints [loss, accuracy] and uses ImageDataGenerator (which still runs)."""
    r = grade_file(CASES / "p4_datagen_flow.py", 4, epochs=1, train=2000, test=500)
    assert r.status == Status.ok, r.status_message
    printed = check(r, "accuracy.printed_matches")
    assert printed.passed and printed.evidence["printed"] == pytest.approx(printed.evidence["measured"], abs=0.02)
    assert not any("printed accuracy" in f for f in r.flags)
    api = check(r, "static.current_api")
    assert api.passed and "ImageDataGenerator" in api.message and "still runs" in api.message
    assert "RandomFlip" in api.message  # the replacement is still named on the sheet
    assert r.marks["writeup"] == 5


PROGRAM3_AMBIGUOUS_PRINT = """
from tensorflow import keras
from tensorflow.keras import layers
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
model = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(16, 3, activation="relu"),
                          layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=1, verbose=0)
print("Accuracy:", model.evaluate(x_test, y_test, verbose=0))
"""


@pytest.mark.slow
def test_a_list_printed_as_the_accuracy_is_not_read(grade_file):
    r = grade_file(PROGRAM3_AMBIGUOUS_PRINT, 3, train=1000, test=300)
    assert r.status == Status.ok, r.status_message
    printed = check(r, "accuracy.printed_matches")
    assert printed.passed and "unambiguously" in printed.message and "printed" not in printed.evidence
    assert not any("printed accuracy" in f for f in r.flags)


@pytest.mark.slow
def test_removed_api_that_fails_costs_the_mark_and_names_it(grade_file):
    src = PROGRAM3_AMBIGUOUS_PRINT.replace("from tensorflow.keras import layers",
                                           "from tensorflow.keras import layers\nfrom keras.utils import np_utils")
    r = grade_file(src, 3)
    assert r.status == Status.error and "np_utils" in r.status_message
    api = check(r, "static.current_api")
    assert not api.passed and "np_utils" in api.message and "keras.utils.to_categorical" in api.hint
    assert r.marks["writeup"] == 4


PROGRAM6_INPUT_LENGTH = """
from tensorflow import keras
from tensorflow.keras.layers import Embedding, LSTM, Dense
(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=5000)
x_train = keras.utils.pad_sequences(x_train, maxlen=100)
x_test = keras.utils.pad_sequences(x_test, maxlen=100)
model = keras.Sequential([Embedding(5000, 16, input_length=100), LSTM(16), Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
print("Test loss and accuracy:", model.evaluate(x_test, y_test, verbose=0))
"""


@pytest.mark.slow
def test_deprecated_argument_that_still_runs_is_a_hint_and_the_list_is_read(grade_file):
    r = grade_file(PROGRAM6_INPUT_LENGTH, 6)
    assert r.status == Status.ok, r.status_message
    api = check(r, "static.current_api")
    assert api.passed and "input_length" in api.message and "Keras 3 infers it" in api.message
    printed = check(r, "accuracy.printed_matches")
    assert printed.passed and printed.evidence["printed"] == pytest.approx(printed.evidence["measured"], abs=0.02)
    assert r.marks["writeup"] == 5


# ---------------------------------------------------------------- faculty's view of a class


@pytest.fixture()
def small_class(tmp_path) -> Path:
    root = tmp_path / "class"
    for usn in ("1GA20CS001", "1GA20CS002"):
        (root / usn).mkdir(parents=True)
    (root / "1GA20CS001" / "program3.py").write_text("import os\nprint 'not Python 3'\n")  # fails, not run
    (root / "1GA20CS002" / "program3.py").write_text("raise RuntimeError('stopped early')\n")  # fails when run
    (root / "1GA20CS002" / "program4.py").write_text("import os\n\nprint 'x'\n")
    (root / "roster.csv").write_text("usn,name\n1GA20CS001,Asha Rao\n1GA20CS002,Vikram Shetty\n")
    return root  # 1GA20CS001 has no program 4: missing


def test_missing_work_is_counted_apart_from_failures(small_class, tmp_path, rubrics, cache_dir):
    out = tmp_path / "reports"
    outcome = run_batch(class_jobs(small_class, [3, 4], "20CSEL76", "quick"), rubrics, LocalRunner(), out,
                        cache_dir, jobs_in_parallel=2)
    by_job = {(r.student, r.program): r for r in outcome.results}
    assert by_job[("1GA20CS001", 4)].missing and by_job[("1GA20CS001", 4)].outcome == "missing"
    assert not by_job[("1GA20CS002", 3)].missing and by_job[("1GA20CS002", 3)].outcome == "error"
    assert summary(outcome) == {"error": 3, "missing": 1}
    assert summary_line(outcome).endswith("0 ok, 3 failed (3 error), 1 missing")

    index = (out / "index.html").read_text()
    assert '<span class="badge status-missing">missing</span> 1' in index
    assert '<span class="badge status-error">error</span> 3' in index
    rows = {(r["usn"], r["program"]): r for r in csv.DictReader((out / "marks.csv").open())}
    assert rows[("1GA20CS001", "4")]["status"] == "missing" and rows[("1GA20CS002", "4")]["status"] == "error"

    dist = {d.program: d for d in outcome_summary(out, rubrics).distributions}
    assert (dist[4].not_submitted, dist[4].failed, len(dist[4].totals)) == (1, 1, 1)
    assert (dist[3].not_submitted, dist[3].failed) == (0, 2)
    report = (out / "class.html").read_text()
    assert "<th class=\"num\">Missing</th>" in report


def outcome_summary(out: Path, rubrics):
    from grader.report import regenerate

    return regenerate(out / "gradebook.sqlite", rubrics, out).summary


def test_batch_to_a_log_prints_a_line_per_finished_job(small_class, tmp_path, cache_dir):
    out = tmp_path / "reports"
    env = {**os.environ, "TERM": "dumb", "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "batch", str(small_class), "--program", "3",
                           "--program", "4", "--out", str(out), "--cache", str(cache_dir)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=PROJECT)
    assert proc.returncode == 0, proc.stderr
    log = proc.stderr.splitlines()
    jobs = [line for line in log if " program " in line and line.startswith("[")]
    assert len(jobs) == 4, proc.stderr
    assert any(line.endswith("1GA20CS001 program 4: missing") for line in jobs)
    failed = next(line for line in jobs if "1GA20CS002 program 3" in line)
    assert ": error (" in failed and "stopped early" in failed and "execution 0/20" in failed
    assert failed.rstrip().endswith(" s")  # how long it ran
    assert "3 failed (3 error), 1 missing" in proc.stdout


def test_sample_class_looks_like_a_class():
    folder = PROJECT / "submissions"
    roster = read_roster(folder)
    students = sorted(p.name for p in folder.iterdir() if p.is_dir() and not other_course(p))  # not DLPRAC/
    assert sorted(roster) == students and all(roster.values())
    programs = programs_in(folder)
    assert programs == [1, 2, 3, 4, 5, 6, 7]
    jobs = class_jobs(folder, programs, "20CSEL76", "quick")
    per_student = {s: sum(1 for j in jobs if j.student == s and not j.rejected_reason) for s in students}
    assert all(n >= 5 for n in per_student.values()), per_student  # most programs each
    missing = [j for j in jobs if j.content_hash == "missing"]
    assert 0 < len(missing) <= len(jobs) // 5
    notebooks = [j for j in jobs if j.entry and j.entry.suffix == ".ipynb"]
    assert notebooks and all(not j.rejected_reason for j in notebooks)
