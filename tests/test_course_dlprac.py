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
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seeds are not at {SEEDS}")
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


def test_marks_csv_and_index_show_the_courses_own_steps(dlprac, tmp_path):
    from grader.reports import write_index, write_marks_csv

    steps = {"load": 2, "define": 2, "compile": 1, "train": 2, "evaluate": 0}
    results = [result_for("1DL05", 1, steps, dlprac)]
    with write_marks_csv(results, tmp_path / "marks.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][6:11] == ["load", "define", "compile", "train", "evaluate"] and "writeup" not in rows[0]
    assert rows[1][6:13] == ["2", "2", "1", "2", "0", "7", "10"]
    index = write_index(results, tmp_path).read_text()
    assert "<th class=\"num\">Compile</th>" in index and "Writeup" not in index and "Viva" not in index


def test_pass_line_is_the_totals(dlprac):
    steps = {"load": 2, "define": 2, "compile": 2, "train": 2, "evaluate": 2}
    results = [result_for("1DL03", p, steps, dlprac) for p in (1, 2)]
    student = class_summary(dlprac, results, []).students[0]
    assert student.cie == 20 and student.cie_meets and student.result == "PASS"
    low = [result_for("1DL04", 1, steps, dlprac), result_for("1DL04", 2, {**steps, "evaluate": 1}, dlprac)]
    student = class_summary(dlprac, low, []).students[0]
    assert student.cie == 19 and not student.cie_meets and student.result == "FAIL"


# ---------------------------------------------------------------- reference solutions


@pytest.mark.parametrize("program", [1, 2, 3, 4])
def test_reference_solution_scores_full_marks(grade_dlprac, program):
    folder = REFERENCE / f"program{program}"
    r = grade_dlprac(folder / "solution.py", program, data=folder / "data" if program == 4 else None)
    failed = [(c.id, c.message) for c in r.checks if not c.passed]
    assert r.status == Status.ok and not failed, failed
    assert total(r) == 10 and set(r.marks) == {"load", "define", "compile", "train", "evaluate"}
    assert not r.flags


# ---------------------------------------------------------------- the seeds as activity 1


def code_paragraphs(text: str) -> list[list[str]]:
    """The code of a document that mixes code, prose and printed output: after each "In [n]:"
    marker (a notebook printed as text) or from the top, the paragraphs that still make valid
    Python when added; the first that does not (prose, output) ends the cell."""
    cells: list[list[str]] = []
    current: list[str] | None = None
    if not text.lstrip().startswith("In ["):
        current = []
        cells.append(current)
    for block in text.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("In ["):
            current = []
            cells.append(current)
            lines = lines[1:]
        if current is None or not lines:
            continue
        try:
            compile("\n".join(current + lines), "<cell>", "exec")
        except SyntaxError:
            current = None  # prose or printed output: the cell's code has ended
            continue
        current.extend(lines + [""])
    return [c for c in cells if any(line.strip() for line in c)]


@needs_seeds
def test_code_paragraphs_reads_both_seeds():
    cnn = code_paragraphs((SEEDS / "000_c3b61284e14396b7.txt").read_text())
    assert len(cnn) == 1 and "model.fit(" in "\n".join(cnn[0]) and "class SentimentDataset" not in "\n".join(cnn[0])
    cells = code_paragraphs((SEEDS / "001_c23501bd64553c33.txt").read_text())
    joined = ["\n".join(c) for c in cells]
    assert joined[0].startswith("import tensorflow as tf") and any("y_test = keras.utils" in c for c in joined)
    assert sum("model.fit(" in c for c in joined) == 2 and not any("Epoch 1/10" in c for c in joined)


@needs_seeds
def test_seed_000_as_submitted_is_no_program(grade_dlprac):
    """Verdict: the file as it stands is an article (a program, prose, a second snippet), not a
    program: it does not parse, nothing runs, every step is 0 but what static analysis sees."""
    r = grade_dlprac((SEEDS / "000_c3b61284e14396b7.txt").read_text(), 1)
    assert not check(r, "static.parses").passed and "syntax error" in check(r, "static.parses").message
    assert r.marks["load"] == 0 and r.marks["train"] == 0 and total(r) <= 2


@needs_seeds
def test_seed_000_mnist_cnn_scores_full_marks(grade_dlprac):
    """Verdict: its MNIST program (the code up to the prose) is a sound activity 1: MNIST
    loaded and scaled, a CNN with dense layers and a 10-way softmax, categorical cross-entropy
    on one-hot labels, trained, evaluated on the test set: 10/10. It validates on the test set
    (validation_data=(x_test, y_test)), which the activity does not forbid and costs nothing."""
    code = "\n".join(code_paragraphs((SEEDS / "000_c3b61284e14396b7.txt").read_text())[0])
    r = grade_dlprac(code, 1)
    failed = [(c.id, c.message) for c in r.checks if not c.passed]
    assert r.status == Status.ok and not failed, failed
    assert total(r) == 10


@needs_seeds
def test_seed_001_notebook_scores_full_marks_without_an_evaluate_step(grade_dlprac):
    """Verdict: the notebook's code cells, run top to bottom, load and scale MNIST, train an
    MLP, then reshape the images and train a CNN without pooling; the CNN is the final model
    measured (a CNN is more than the simple network asked for: no fault). It never evaluates
    on its own: the test accuracy it reports is fit's val_accuracy (validation_data=(x_test,
    y_test)). The missing evaluation step is named on the sheet; it is one of five parts of
    Evaluate, which still rounds to 2 of 2 (the harness measured the model, and it reaches the
    bar): 10/10. Its cells were run out of order (In [44..46], then [29], [36..38], [48..52]),
    but in file order they still work."""
    cells = code_paragraphs((SEEDS / "001_c23501bd64553c33.txt").read_text())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("\n".join(c).strip()) for c in cells])
    r = grade_dlprac(nbformat.writes(nb), 1, suffix=".ipynb")
    failed = [c.id for c in r.checks if not c.passed]
    assert r.status == Status.ok and failed == ["static.steps:evaluate"], failed
    assert "evaluate on the test set" in check(r, "static.steps:evaluate").message
    assert total(r) == 10 and check(r, "accuracy.threshold").passed
    model = next(m for m in r.run.trace["models"] if m["id"] == r.run.trace["fits"][-1]["model"])
    assert "Conv2D" in [layer["type"] for layer in model["layers"]]


# ---------------------------------------------------------------- activity 4: what goes wrong

SHAPES = REFERENCE / "program4" / "data"
BASE = '''
from tensorflow import keras
train_ds = keras.utils.image_dataset_from_directory("data", validation_split=0.25, subset="training",
                                                    seed=1, image_size=(32, 32), batch_size=16)
val_ds = keras.utils.image_dataset_from_directory("data", validation_split=0.25, subset="validation",
                                                  seed=1, image_size=(32, 32), batch_size=16)
base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
base.trainable = False
'''


def test_transfer_without_its_new_head_is_caught(grade_dlprac):
    """The head is built but never attached: the model trained is the base with pooling, whose
    512 features are taken for 512 classes."""
    code = BASE + '''
head = keras.layers.Dense(3, activation="softmax")  # never called on the base's output
model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Rescaling(1 / 255), base,
                          keras.layers.GlobalAveragePooling2D()])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=2)
print(model.evaluate(val_ds))
'''
    r = grade_dlprac(code, 4, data=SHAPES, epochs=2)
    head = check(r, "transfer.head")
    assert not head.passed and "no new head" in head.message and "Dense(3" in head.hint
    define = next(a for a in r.attributes if a.attribute == "define")
    assert define.band == "Satisfactory" and define.mark == 1  # the base's two checks pass, the head's fails


def test_missing_image_folder_gets_a_clear_error(grade_dlprac):
    r = grade_dlprac(BASE, 4)  # no data/ beside the program
    loaded = check(r, "images.loaded")
    assert r.status == Status.error and not loaded.passed
    assert "reads its images from 'data'" in loaded.message and "no such folder" in loaded.message
    assert "program4.py" in loaded.message and "data/<class>/*.jpg" in loaded.hint
    assert r.marks["load"] <= 1


def split_shapes(folder: Path) -> None:
    make(folder, per_class=24, split=True)


def test_evaluating_on_the_training_folder_is_caught(grade_dlprac):
    """train/ and val/ folders through flow_from_directory; the program evaluates (and prints)
    on train/, where the model has seen every image. The probe measures on val/ all the same."""
    code = '''
from tensorflow import keras
gen = keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
train = gen.flow_from_directory("train", target_size=(32, 32), batch_size=16, class_mode="sparse")
val = gen.flow_from_directory("val", target_size=(32, 32), batch_size=16, class_mode="sparse")
base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
base.trainable = False
model = keras.Sequential([keras.Input(shape=(32, 32, 3)), base, keras.layers.GlobalAveragePooling2D(),
                          keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train, epochs=3)
loss, acc = model.evaluate(train)
print(f"Test accuracy: {acc:.4f}")
'''
    r = grade_dlprac(code, 4, data=split_shapes, epochs=3)
    assert check(r, "images.loaded").passed
    own = check(r, "images.evaluated_on_validation")
    assert not own.passed and "evaluates on its training images ('train')" in own.message
    assert any("evaluated on its training images" in f for f in r.flags)
    measured = check(r, "images.accuracy").evidence
    assert measured["images"] == 18 and "validation images as the loader gave them" in measured["through"]


def test_printing_an_accuracy_it_did_not_measure_is_flagged(grade_dlprac):
    """Also: the program reads its images from Google Drive, as written in Colab; the folder of
    that name in the submission is read instead."""
    code = BASE.replace('"data"', '"/content/drive/MyDrive/data"') + '''
model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Rescaling(1 / 255), base,
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=1)
model.evaluate(val_ds)
print("Test accuracy: 99.50%")  # written by hand
'''
    r = grade_dlprac(code, 4, data=SHAPES, epochs=1)
    own = check(r, "images.evaluated_on_validation")
    assert not own.passed and "prints accuracy 99.50%" in own.message
    assert any("prints accuracy 99.50%" in f for f in r.flags)
    assert check(r, "images.accuracy").evidence["measured"] < 0.9
    assert check(r, "images.loaded").passed
    assert "/content/drive/MyDrive/data was read from the submission's data/" in r.run.trace["notes"]


# ---------------------------------------------------------------- the sample classes


def test_the_sample_class_of_each_course_is_its_own():
    """submissions/DLPRAC/ is DLPRAC's class: 20CSEL76's default run does not take it for a
    student, and it is found on its own with its roster."""
    students = {j.student for j in class_jobs(PROJECT / "submissions", [3], "20CSEL76", "quick")}
    assert "DLPRAC" not in students and len(students) == 7
    assert programs_in(PROJECT / "submissions") == [1, 2, 3, 4, 5, 6, 7]
    jobs = class_jobs(PROJECT / "submissions" / "DLPRAC", [4], "DLPRAC", "quick")
    assert [(j.student, j.name) for j in jobs] == [("1DL22CS001", "Asha Menon"), ("1DL22CS002", "Bharath Kumar"),
                                                   ("1DL22CS003", "Chitra Das")]


def test_labels_rewritten_in_the_evaluation_pipeline_are_caught(grade_dlprac):
    """The program evaluates on a validation pipeline whose labels are the model's own
    predictions: Keras' evaluate says 100%, and so would any measurement through that pipeline.
    The probe counts the labels the folders give the same images and finds them changed."""
    code = BASE + '''
import tensorflow as tf
model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Rescaling(1 / 255), base,
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=1)
agreeing = val_ds.map(lambda x, y: (x, tf.argmax(model(x), axis=-1, output_type=tf.int32)))
print("Test accuracy:", model.evaluate(agreeing)[1])
'''
    r = grade_dlprac(code, 4, data=SHAPES, epochs=1)
    acc = check(r, "images.accuracy")
    assert not acc.passed and "labels its images" in acc.message
    assert any("validation labels changed by the program" in f for f in r.flags)
    evaluate = next(a for a in r.attributes if a.attribute == "evaluate")
    assert evaluate.band != "Good"


def test_distinct_digits_are_not_taken_for_test_digits():
    """The leak evidence orders pixels spread over the whole image: the first rows of every
    digit are blank, and ordering them made a third of the reference's training digits look
    like served test digits."""
    import numpy as np

    from grader.probe.leaks import served_test_share
    from grader.probe.provider import _render_mnist

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 3000)
    train = (_render_mnist(labels[:2000], rng) * 255).astype("uint8")
    test = (_render_mnist(labels[2000:], rng) * 255).astype("uint8")
    assert served_test_share(train / 255.0, test) == 0.0
    assert served_test_share(test[:500] / 255.0, test) == 1.0


HEAD = '''
model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Rescaling(1 / 255), base,
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
'''


@pytest.mark.parametrize("training, passed, said", [
    # the head first on the frozen base, then the whole model at a small rate: on purpose
    ('''model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=1)
base.trainable = True
model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=1)
''', True, "frozen, then fine-tuned at a small learning rate"),
    # the base unfrozen and trained at Adam's default rate: its pretrained weights overwritten
    ('''base.trainable = True
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=1)
''', False, "train at a learning rate of 0.001"),
])
def test_the_base_is_frozen_or_fine_tuned_on_purpose(grade_dlprac, training, passed, said):
    r = grade_dlprac(BASE + HEAD + training + "model.evaluate(val_ds)\n", 4, data=SHAPES, epochs=1)
    base = check(r, "transfer.base")
    assert base.passed is passed and said in base.message, base.message
