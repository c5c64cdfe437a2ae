"""Submissions graded for real: static analysis, TensorFlow in the local sandbox, the
harness and scoring. Each bad input ends its own job with a clear verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, PROJECT, check
from grader.models import Status

BAD = FIXTURES / "bad"
MANUAL = FIXTURES / "manual"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("program", [3, 4])
def test_reference_solution_scores_full_marks(grade_file, program):
    r = grade_file(PROJECT / "reference" / f"program{program}" / "solution.py", program)
    failed = [(c.id, c.message) for c in r.checks if not c.passed and c.weight > 0]
    assert r.status == Status.ok, r.status_message
    assert failed == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert r.dataset == "cifar10 (synthetic stand-in)"
    fit = r.run.trace["fits"][-1]
    assert fit["epochs_capped_to"] == 2 and fit["epochs_run"] == 2  # quick mode, as the rubric says
    assert r.run.trace["dataset"]["n_train"] == 5000


def test_manual_program3_as_printed(grade_file):
    r = grade_file(MANUAL / "program3.py", 3)
    assert r.status == Status.ok
    acc = check(r, "accuracy.threshold")
    assert acc.passed, acc.message
    printed = check(r, "accuracy.printed_matches")
    assert printed.passed and abs(printed.evidence["printed"] - printed.evidence["measured"]) < 0.01
    assert check(r, "model.structure").passed
    assert r.marks["execution"] == 20 and r.marks["writeup"] == 5


def test_manual_program4_as_printed_under_keras3_names_the_removed_api(grade_file):
    r = grade_file(MANUAL / "program4.py", 4)
    # tensorflow.keras under Keras 3 still has the deprecated ImageDataGenerator, so the
    # program stops at Adam(lr=...) on line 33
    assert r.status == Status.error
    assert "{'lr': 0.001} at line 33" in r.status_message and "was removed in Keras 3" in r.status_message
    assert "learning_rate=" in r.status_message  # the replacement is named
    api = check(r, "static.current_api")
    assert not api.passed and "lr=" in api.message and "learning_rate" in api.hint
    # ImageDataGenerator still runs there: named, with its replacement, but no mark lost for it
    assert "ImageDataGenerator" in api.message and "RandomFlip" in api.message and "RandomFlip" not in api.hint
    assert r.marks["execution"] <= 4  # did not run: Poor band


def test_manual_program4_as_printed_under_legacy_keras(grade_file, rubrics):
    rubrics.course.keras_flavour = "legacy"
    r = grade_file(MANUAL / "program4.py", 4, rubrics=rubrics)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["frameworks"]["keras_flavour"] == "legacy"
    improvement = check(r, "model.improvement")
    assert improvement.passed
    for technique in ("data augmentation", "batch normalisation", "dropout"):
        assert technique in improvement.evidence
    assert improvement.evidence["data augmentation"] == "ImageDataGenerator"
    # tf-keras accepts lr= but ignores it: the student is told which rate really trained
    assert "lr= is not a learning rate" in improvement.message
    assert not check(r, "static.current_api").passed
    # As in the manual's own printed run (accuracy 0.10 while the loss falls, 9.03% test):
    # under tf-keras the reported accuracy stays at chance while the loss falls. Whether the
    # model itself learned varies from run to run; the mismatch is named either way.
    learns = check(r, "training.learns")
    assert "do not match" in learns.message
    assert max(learns.evidence["reported training accuracy"]) < 0.15


# ---------------------------------------------------------------- diagnoses


def test_binary_crossentropy_on_ten_way_softmax_is_named(grade_file):
    src = (MANUAL / "program3.py").read_text().replace('"sparse_categorical_crossentropy"', '"binary_crossentropy"')
    r = grade_file(src, 3)
    c = check(r, "model.loss_matches_output")
    assert not c.passed and "binary_crossentropy" in c.message and "10-way softmax" in c.message
    assert r.marks["execution"] <= 9


def test_loss_falls_while_accuracy_at_chance_names_a_mismatch(grade_file):
    r = grade_file(BAD / "loss_falls_chance.py", 3)
    assert r.status == Status.ok
    learns = check(r, "training.learns")
    assert not learns.passed and "do not match" in learns.message
    assert not check(r, "accuracy.threshold").passed
    assert r.marks["execution"] <= 9  # gated below Good


def test_printed_accuracy_contradicted_by_measurement_is_flagged(grade_file):
    src = (MANUAL / "program3.py").read_text().replace(
        'print(f"Test accuracy: {test_accuracy * 100:.2f}%")', 'print("Test accuracy: 99.00%")')
    r = grade_file(src, 3)
    c = check(r, "accuracy.printed_matches")
    assert not c.passed and c.evidence["printed"] == 0.99
    assert any("printed accuracy 0.99 differs from measured" in f for f in r.flags)


def test_never_trained_model_is_named(grade_file):
    r = grade_file(BAD / "never_trained.py", 3)
    c = check(r, "model.trained")
    assert not c.passed and "never trained" in c.message
    acc = check(r, "accuracy.threshold")
    assert not acc.passed and "untrained" in acc.message
    assert r.marks["execution"] <= 9


# ---------------------------------------------------------------- bad input


def test_syntax_error_is_reported_with_line_and_not_run(grade_file):
    r = grade_file(BAD / "syntax_error.py", 3)
    assert r.status == Status.error and "SyntaxError" in r.status_message and "line" in r.status_message
    assert r.run.trace is None  # never executed
    assert r.marks["writeup"] <= 1 and r.marks["execution"] <= 4


def test_missing_package_is_named(grade_file):
    r = grade_file(BAD / "missing_package.py", 3)
    assert r.status == Status.error
    assert "nonexistent_dl_helpers" in r.status_message and "not installed" in r.status_message


def test_shape_mismatch_mid_training_says_where(grade_file):
    r = grade_file(BAD / "shape_mismatch.py", 3)
    assert r.status == Status.error
    assert "during model.fit" in r.status_message and "line 21" in r.status_message
    exc = r.run.trace["exception"]
    assert "10" in exc["message"] and "5" in exc["message"]  # the two shapes


def test_infinite_loop_times_out(grade_file):
    r = grade_file(BAD / "infinite_loop.py", 3, timeout_s=20)
    assert r.status == Status.timeout and "20 s" in r.status_message
    assert 20 <= r.run.wall_s < 40


def test_memory_hog_is_stopped_as_oom(grade_file):
    r = grade_file(BAD / "memory_hog.py", 3, memory_mb=1200)
    assert r.status == Status.oom and "1200 MB" in r.status_message
    assert r.run.peak_memory_mb > 1000


def test_two_gigabytes_of_output_is_capped(grade_file):
    r = grade_file(BAD / "huge_output.py", 3)
    assert r.run.output_bytes > 2 * 10**9
    assert r.run.output_truncated and len(r.run.stdout) < 300_000
    assert "bytes of output not kept" in r.run.stdout
    assert r.status == Status.error and "before training" in r.status_message  # sys.exit(0), no model


def test_exit_before_training(grade_file):
    r = grade_file(BAD / "exit_before_training.py", 3)
    assert r.status == Status.error and "sys.exit(0) at line 20 before training" in r.status_message


@pytest.mark.parametrize("name, reason", [("wrong_type.txt", "not a Python script"),
                                          ("not_json.ipynb", "not JSON")])
def test_unrunnable_files_are_rejected(grade_file, name, reason):
    r = grade_file(BAD / name, 3, name=f"program3{Path(name).suffix}")
    assert r.status == Status.rejected and reason in r.status_message
    assert r.marks["writeup"] == 0 and r.marks["execution"] == 0


def test_empty_folder_is_rejected(tmp_path, cache_dir, rubrics):
    from grader.pipeline import grade
    from grader.runners.local import LocalRunner
    from grader.submissions import single_job

    job = single_job(tmp_path, 3, "20CSEL76", "quick")
    r = grade(job, rubrics, LocalRunner(), cache_dir, tmp_path / "a")
    assert r.status == Status.rejected and "no file for program 3" in r.status_message


# ---------------------------------------------------------------- notebooks and full mode


def notebook(cells: list[str]):
    import nbformat

    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))


def test_notebook_runs_its_code_cells_and_skips_shell_lines(grade_file):
    source = (MANUAL / "program3.py").read_text().split("# Define a simple CNN model")
    nb = notebook(["!pip install tensorflow\n%matplotlib inline\n" + source[0], "# Define a simple CNN model" + source[1]])
    r = grade_file(nb, 3, name="program3.ipynb")
    assert r.status == Status.ok, r.status_message
    assert any("2 shell/magic line(s)" in n for n in r.run.trace["notes"])
    assert check(r, "accuracy.threshold").passed


def test_notebook_error_names_the_cell(grade_file):
    nb = notebook(["from tensorflow import keras\n(x, y), (xt, yt) = keras.datasets.cifar10.load_data()",
                   "print(x.shape)", "x = x / 255.0\nmodel = keras.Sequential([keras.layers.Dense(10)])\nmodel.fitt(x, y)"])
    r = grade_file(nb, 3, name="program3.ipynb")
    assert r.status == Status.error
    assert "in cell 3 ('x = x / 255.0'), line 3" in r.status_message and "fitt" in r.status_message


def test_full_mode_serves_all_data_and_keeps_the_epochs(grade_file):
    src = """
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.AveragePooling2D(8), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train / 255.0, y_train, epochs=3, batch_size=512, verbose=2)
print(model.evaluate(x_test / 255.0, y_test, verbose=0))
"""
    r = grade_file(src, 3, mode="full")
    assert r.status == Status.ok, r.status_message
    assert r.mode == "full" and r.quick_limits == {}
    assert r.run.trace["dataset"]["n_train"] == 50000 and r.run.trace["dataset"]["n_test"] == 10000
    fit = r.run.trace["fits"][0]
    assert fit["epochs_run"] == 3 and "epochs_capped_to" not in fit
    assert check(r, "accuracy.threshold").evidence["mode"] == "full"


def test_notebook_cell_that_never_ends_is_named_and_earlier_outputs_kept(grade_file, tmp_path):
    import nbformat

    nb = notebook(["print('first cell ran')", "import time\nwhile True:\n    time.sleep(0.1)", "print('never')"])
    r = grade_file(nb, 3, name="program3.ipynb", cell_timeout_s=8)
    assert r.status == Status.timeout, r.status_message
    assert "did not finish within 8 s in cell 2 ('import time')" in r.status_message
    assert "executed.ipynb" in r.run.artifacts
    executed = nbformat.read(tmp_path / "artifacts" / "executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "first cell ran\n"
    assert executed.cells[2].outputs == []


def test_notebook_sys_exit_ends_the_program_as_in_a_script(grade_file):
    nb = notebook(["print('before')", "import sys\nsys.exit(3)", "print('after')"])
    r = grade_file(nb, 3, name="program3.ipynb")
    assert r.status == Status.error and "called sys.exit(3)" in r.status_message
    assert "before" in r.run.stdout and "after" not in r.run.stdout  # cell output reaches the run's output


def test_notebook_kernel_death_is_named(grade_file):
    nb = notebook(["print('ok')", "import os\nos._exit(3)"])
    r = grade_file(nb, 3, name="program3.ipynb")
    assert r.status == Status.error
    assert "the kernel died" in r.status_message and "cell 2 ('import os')" in r.status_message
