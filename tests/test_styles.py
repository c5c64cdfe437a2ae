"""Sound models in any style are measured: each framework's probe installs itself when the
program imports that framework (no import order imposed, another framework's loaders served
whatever the rubric names), Keras models of any class (subclasses, custom layers) are
followed, a KNN's rows are traced to the served images through any scaling, normalisation or
layout, and a chatbot may be written in PyTorch. Each case of ../shared/cases/ of this kind is
graded for real, with further programs of the same kind."""

from __future__ import annotations

from pathlib import Path

import json
import os
import shutil
import subprocess
import sys
import textwrap

import nbformat
import numpy as np
import pytest

from conftest import PROJECT, check
from grader.models import Status
from grader.pipeline import grade
from grader.probe.sklearn_hooks import normalised_rows
from grader.runners.local import LocalRunner
from grader.submissions import single_job

CASES = Path(__file__).parent / "fixtures" / "cases"  # a copy of the project's cases, one per kind of fault
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason=f"{CASES} is not here")
GOOD = 10  # the manual's Execution band Good: 10-20


# ---------------------------------------------------------------- rows traced to served images


@pytest.fixture(scope="module")
def images():
    """Photograph-like uint8 images (N, 32, 32, 3): smooth, so many pixels share values."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, size=(600, 8, 8, 3)).astype(np.float64)
    return np.repeat(np.repeat(base, 4, axis=1), 4, axis=2).clip(0, 255).astype(np.uint8)


def channels_first(x):
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def test_normalize_then_flatten_channels_first_is_traced_in_order(images):
    mean, std = np.array([0.5, 0.5, 0.5]), np.array([0.5, 0.5, 0.5])
    rows = channels_first(((images[:200] / 255.0 - mean) / std).astype(np.float32))
    found = normalised_rows(rows, images)
    assert found is not None and (found[0] == np.arange(200)).all()
    assert "channels first" in found[1] and "in order" in found[1]


def test_standard_scaler_on_channels_last_rows_is_traced(images):
    from sklearn.preprocessing import StandardScaler

    flat = images.reshape(len(images), -1).astype(np.float32)
    rows = StandardScaler().fit(flat[300:]).transform(flat[:300])
    found = normalised_rows(rows, images)
    assert found is not None and (found[0] == np.arange(300)).all() and "channels last" in found[1]


def test_shuffled_subset_normalised_per_channel_is_traced_by_ranks(images):
    pick = np.random.default_rng(1).permutation(len(images))[:150]
    mean, std = np.array([0.49, 0.48, 0.45]), np.array([0.25, 0.24, 0.26])
    rows = channels_first(((images[pick] / 255.0 - mean) / std).astype(np.float32))
    found = normalised_rows(rows, images)
    assert found is not None and (found[0] == pick).all() and "any order" in found[1]


def test_rows_that_are_not_the_served_images_are_not_traced(images):
    rng = np.random.default_rng(2)
    assert normalised_rows(rng.normal(size=(100, images[0].size)), images) is None
    assert normalised_rows(np.zeros((100, images[0].size)), images) is None  # blank rows fit any image
    other = np.repeat(np.repeat(rng.integers(0, 256, (50, 8, 8, 3)), 4, 1), 4, 2).astype(np.uint8)
    assert normalised_rows(other.reshape(50, -1) / 255.0, images) is None


# ---------------------------------------------------------------- what each probe describes


def test_bidirectional_torch_lstm_reads_as_keras_bidirectional_lstm():
    from torch import nn

    from grader.probe.torch_hooks import describe_module

    two_way = describe_module("lstm", nn.LSTM(8, 8, bidirectional=True))
    assert (two_way["type"], two_way["wraps"], two_way["module"]) == ("Bidirectional", "LSTM", "LSTM")
    assert describe_module("gru", nn.GRU(8, 8))["type"] == "GRU"


def test_callback_base_of_a_model_class_defined_in_the_students_module():
    import keras

    from grader.probe.keras_hooks import callback_base

    student_class = type("SmallCNN", (keras.Model,), {"__module__": "__main__"})
    assert callback_base(student_class()) is keras.callbacks.Callback


# ---------------------------------------------------------------- probes install on import


def probe_session(tmp_path, program: str) -> dict:
    """Starts a session (whatever the rubric lists: nothing here), runs `program` in a fresh
    interpreter and returns the session's trace."""
    config = {"out_dir": str(tmp_path), "artifacts_dir": str(tmp_path), "mode": "quick", "frameworks": [],
              "cache_dir": str(tmp_path / "cache"), "quick_train": 100, "quick_test": 50, "epochs_cap": 1,
              "dataset": "cifar10"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    code = (f"from grader.probe import session\ns = session.start({str(tmp_path / 'config.json')!r})\n"
            + textwrap.dedent(program) + "\nsession.finish(s)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((tmp_path / "trace.json").read_text())


def test_probe_installs_when_the_program_imports_its_framework(tmp_path):
    trace = probe_session(tmp_path, """
        import sys
        assert "torch" not in sys.modules and "tensorflow" not in sys.modules
        from sklearn.neighbors import KNeighborsClassifier
        import numpy as np
        KNeighborsClassifier(1).fit(np.zeros((4, 2)), [0, 1, 0, 1])
        assert "torch" not in sys.modules and "tensorflow" not in sys.modules, "a probe imported a framework"
    """)
    assert trace["probes"] == ["sklearn"]
    assert trace["estimators"][0]["class"] == "KNeighborsClassifier"


def test_torch_then_torchvision_install_both_and_serve_the_dataset(tmp_path):
    trace = probe_session(tmp_path, """
        import torchvision
        train = torchvision.datasets.CIFAR10("data", train=True, download=True)
        assert len(train) == 100
    """)
    assert trace["probes"] == ["torch", "torchvision"]
    assert trace["dataset"]["name"] == "cifar10"


# ---------------------------------------------------------------- the cases, graded for real


@needs_cases
@pytest.mark.slow
def test_program1_with_a_keras_network_serves_keras_and_grades_both_parts(grade_file):
    r = grade_file(CASES / "p1_keras_network.py", program=1)
    assert r.status == Status.ok, r.status_message
    for check_id in ("knn.fitted", "knn.accuracy", "net.layers", "net.trained", "net.accuracy"):
        assert check(r, check_id).passed, check(r, check_id).message
    assert "Sequential: 3 fully-connected layers" in check(r, "net.layers").message
    assert "rows matched" in check(r, "knn.accuracy").evidence["how"]  # x/255 traced to the served images
    assert r.marks["execution"] >= GOOD


@needs_cases
@pytest.mark.slow
def test_knn_on_normalised_channel_first_rows_is_measured(grade_file):
    r = grade_file(CASES / "p1_knn_normalized.py", program=1)
    assert r.status == Status.ok, r.status_message
    knn = check(r, "knn.accuracy")
    assert knn.passed and "KNN measures" in knn.message, knn.message
    assert "channels first" in knn.evidence["how"]
    assert "part b (the 3-layer network) is missing" in check(r, "net.layers").message
    assert r.marks["execution"] < GOOD  # at most Satisfactory


@needs_cases
@pytest.mark.slow
def test_program3_in_pytorch_runs_and_is_not_full_marks(grade_file):
    r = grade_file(CASES / "p3_pytorch.py", program=3)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["probes"] == ["torch", "torchvision"]  # TensorFlow never imported
    assert r.marks["execution"] < 20
    framework = check(r, "framework.keras")
    assert not framework.passed and "not TensorFlow/Keras" in framework.message, framework.message
    assert "no convolution" not in check(r, "model.structure").message  # Conv2d is a convolution layer
    # re-measured by a clean sandbox that loaded torch alone (not one warmed with TensorFlow)
    assert r.run.trusted and r.run.trusted[0].error is None and r.run.trusted[0].kind == "torch_pt2"


@needs_cases
@pytest.mark.slow
def test_keras_model_subclass_gets_full_marks(grade_file):
    r = grade_file(CASES / "p3_subclassed_model.py", program=3)
    assert r.status == Status.ok, r.status_message
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}, [c.message for c in r.checks if not c.passed]


def grade_one_thread(source, program: int, folder, cache_dir, rubrics):
    """Grades a file with one compute thread, as `grader batch --jobs 2` runs each job on two
    cores: a small model trained one sample at a time runs many times slower when its
    framework's threads wait for a busy machine's cores, and that must not decide a verdict."""
    folder.mkdir()
    entry = folder / f"program{program}.py"
    shutil.copy(source, entry)
    job = single_job(entry, program, "20CSEL76", "quick")
    return grade(job, rubrics, LocalRunner(), cache_dir, folder / "artifacts", parallel_jobs=os.cpu_count() or 1)


@needs_cases
@pytest.mark.slow
def test_pytorch_chatbot_with_nltk_is_good(tmp_path, cache_dir, rubrics):
    r = grade_one_thread(CASES / "p7_torch_nltk_chatbot.py", 7, tmp_path / "sub", cache_dir, rubrics)
    assert r.status == Status.ok, r.status_message
    assert check(r, "framework.any_of").passed
    structure = check(r, "model.structure")
    assert structure.passed and "Bidirectional(LSTM)" in structure.message, structure.message
    assert check(r, "chat.replies").passed and check(r, "chat.loop").passed
    assert r.marks["execution"] >= GOOD


# ---------------------------------------------------------------- further programs of the kind


FUNCTIONAL_CUSTOM_LAYER = '''
import keras
from keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0


class Rescale(layers.Layer):
    """A custom layer: a learned scale per channel."""
    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


inputs = keras.Input((32, 32, 3))
x = Rescale()(inputs)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.MaxPooling2D()(x)
x = layers.Conv2D(64, 3, activation="relu")(x)
x = layers.MaxPooling2D()(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(layers.Dense(64, activation="relu")(x))
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
'''


@pytest.mark.slow
def test_functional_keras_model_with_a_custom_layer_gets_full_marks(grade_file):
    r = grade_file(FUNCTIONAL_CUSTOM_LAYER, program=3)
    assert r.status == Status.ok, r.status_message
    assert "Rescale" in check(r, "model.structure").evidence["layers"]
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}, [c.message for c in r.checks if not c.passed]


# torch imported first; TensorFlow after it; a torch optimizer step after both (the pair's crash)
TORCH_BEFORE_TENSORFLOW = '''
import torch
import tensorflow as tf
from tensorflow.keras import layers

torch.manual_seed(0)
w = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
(w - 1).pow(2).sum().backward()
opt.step()

(x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
model = tf.keras.Sequential([layers.Input((32, 32, 3)), layers.Conv2D(32, 3, activation="relu"),
                             layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
'''


@pytest.mark.slow
def test_torch_imported_before_tensorflow_runs_and_the_keras_model_is_judged(grade_file):
    r = grade_file(TORCH_BEFORE_TENSORFLOW, program=3)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["probes"][0] == "torch" and "keras" in r.run.trace["probes"]
    assert check(r, "accuracy.threshold").passed, check(r, "accuracy.threshold").message
    assert r.marks["execution"] == 20, [c.message for c in r.checks if not c.passed]


KNN_STANDARDISED = '''
import numpy as np
from keras.datasets import cifar10
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

(x_train, y_train), (x_test, y_test) = cifar10.load_data()
scaler = StandardScaler()
x_train = scaler.fit_transform(x_train.reshape(len(x_train), -1))
x_test = scaler.transform(x_test.reshape(len(x_test), -1))
knn = KNeighborsClassifier(n_neighbors=5).fit(x_train, y_train.ravel())
print("KNN accuracy:", knn.score(x_test, y_test.ravel()))
'''


@pytest.mark.slow
def test_knn_on_standardised_channel_last_rows_is_measured_on_true_labels(grade_file):
    r = grade_file(KNN_STANDARDISED, program=1)
    assert r.status == Status.ok, r.status_message
    knn = check(r, "knn.accuracy")
    assert "KNN measures" in knn.message, knn.message
    assert "rows matched" in knn.evidence["how"] and "channels last" in knn.evidence["how"]
    assert knn.evidence["labels agree"] == 1.0


@needs_cases
@pytest.mark.slow
def test_probes_install_on_import_in_a_notebook_kernel(grade_file, tmp_path):
    source = (CASES / "p1_knn_normalized.py").read_text()
    head, tail = source.split("def as_arrays", 1)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(head),
                                         nbformat.v4.new_code_cell("def as_arrays" + tail)])
    path = tmp_path / "program1.ipynb"
    nbformat.write(nb, path)
    r = grade_file(path, program=1)
    assert r.status == Status.ok, r.status_message
    assert set(r.run.trace["probes"]) == {"torch", "torchvision", "sklearn"}
    assert "KNN measures" in check(r, "knn.accuracy").message
