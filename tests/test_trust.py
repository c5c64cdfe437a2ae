"""Marks a student's code cannot forge: hostile programs that rewrite what the probe records
in their own process, each ending with no more marks than its real model earns, and a flag.

Each trains a tiny model on a few images (its real accuracy is far below the bar), then
attacks the record. The trusted figure comes from the exported model, re-measured in a clean
sandbox on images the program never received (grader/trusted.py).
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from grader.harness.trust import leak_margin
from grader.probe.leaks import served_review_share
from grader.trusted import Refused, check_knn, check_pt2, checked_keras_json
from conftest import PROJECT, check
from test_program6_torch import LSTM, program as torch_program

pytestmark = pytest.mark.slow

TINY = """
import numpy as np
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train[:64], y_train[:64], epochs=1, verbose=0)
"""

REPLACE_MEASURE = TINY + """
import sys
session = sys.modules["grader.probe.session"].CURRENT
for probe in session.probes:
    probe.measure = lambda: {"model": 0, "trained": True, "dataset": "cifar10", "accuracy": 0.93, "n": 1000}
for fit in session.trace["fits"]:
    fit["history"] = {"loss": [2.0, 1.0, 0.5], "accuracy": [0.5, 0.8, 0.93]}
print("Test accuracy: 0.93")
"""

REWRITE_THROUGH_GC = TINY + """
import gc
for obj in gc.get_objects():
    if type(obj).__name__ == "Trace":
        cls = type(obj)
        original = cls.save
        def save(self, original=original):
            self.data["measurements"] = [{"model": 0, "trained": True, "dataset": "cifar10", "accuracy": 0.95, "n": 1000}]
            self.data["exports"] = []
            for fit in self.data["fits"]:
                fit["history"] = {"loss": [2.0, 1.0, 0.4], "accuracy": [0.5, 0.9, 0.95]}
            original(self)
        cls.save = save
        break
"""

PREDICT_FROM_LABELS = TINY.replace("model = keras.Sequential(", """
class Oracle(keras.Sequential):
    def predict(self, x, *args, **kwargs):
        # answers from the served labels, matched by the image's bytes
        table = {bytes(np.asarray(img, dtype=np.float32).tobytes()[:64]): int(lab)
                 for img, lab in zip(x_test, y_test.reshape(-1))}
        return np.eye(10)[[table.get(bytes(np.asarray(img, dtype=np.float32).tobytes()[:64]), 0) for img in x]]

model = Oracle(""") + """
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
"""

TRAIN_ON_TEST = """
import numpy as np
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_test = x_test / 255.0
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_test, y_test, epochs=40, batch_size=32, verbose=0)
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
"""

PLANTED_PICKLE = TINY + """
import sys, zipfile, pickle, pathlib
class Payload:
    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path({marker!r}), "pwned"))
import importlib
export = importlib.import_module("grader.probe.export")
original = export.export_measured
def export_measured(probes, out_dir):
    entries = original(probes, out_dir)
    folder = out_dir / "export" / "0"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "model.pt2", "w") as z:
        z.writestr("m/data.pkl", pickle.dumps(Payload()))
        z.writestr("m/data/weights/model_weights_config.json", '{{"config": {{}}}}')
    for e in entries:
        e["kind"] = "torch_pt2"
    return entries
export.export_measured = export_measured
"""


def assert_no_forged_marks(result):
    threshold = check(result, "accuracy.threshold")
    assert not threshold.passed, threshold.message
    assert result.marks["execution"] <= 9, result.marks  # below Good: what the real model earns
    return threshold


def test_measurement_replaced_from_sys_modules(grade_file):
    result = grade_file(REPLACE_MEASURE, 3)
    threshold = assert_no_forged_marks(result)
    assert threshold.evidence["in-process measurement"] == 0.93
    # the probe's own measurement never ran, so neither did its export: nothing trusted, capped
    assert "not re-measured outside the program's process" in threshold.message
    assert any("faculty review" in f for f in result.flags), result.flags


def test_trace_rewritten_through_gc(grade_file):
    result = grade_file(REWRITE_THROUGH_GC, 3)
    threshold = assert_no_forged_marks(result)
    assert "not re-measured outside the program's process" in threshold.message
    assert any("faculty review" in f for f in result.flags), result.flags


def test_predict_overridden_to_answer_from_the_labels(grade_file):
    result = grade_file(PREDICT_FROM_LABELS, 3)
    threshold = assert_no_forged_marks(result)
    assert result.run.trusted and result.run.trusted[0].kind == "keras_savedmodel"  # its own class: no JSON
    assert threshold.evidence["trusted accuracy"] < 0.5


def test_training_on_the_test_set_is_named(grade_file):
    result = grade_file(TRAIN_ON_TEST, 3)
    threshold = check(result, "accuracy.threshold")
    assert not threshold.passed and "trained on the test set" in threshold.message, threshold.message
    assert any("trained on the test set" in f for f in result.flags)
    assert result.run.trace["measurements"][-1]["fit_on_served_test"] == 1.0


def test_memorised_test_set_is_named_without_the_process_evidence(grade_file):
    """The trusted check does not rest on what the process recorded: the program hides its
    fit inputs from the probe, and the memorised test set still shows outside it."""
    hidden = TRAIN_ON_TEST + """
import sys
for probe in sys.modules["grader.probe.session"].CURRENT.probes:
    getattr(probe, "fit_inputs", {}).clear()
"""
    result = grade_file(hidden, 3, epochs=40, timeout_s=400)
    threshold = check(result, "accuracy.threshold")
    assert result.run.trace["measurements"][-1]["fit_on_served_test"] is None
    assert not threshold.passed and "trained on the test set" in threshold.message, threshold.message
    t = result.run.trusted[0]
    assert t.accuracy_served - t.accuracy_unseen > 0.10


def test_planted_pickle_is_never_loaded(grade_file, tmp_path):
    marker = tmp_path / "pwned.txt"
    result = grade_file(PLANTED_PICKLE.format(marker=str(marker)), 3)
    assert result.status.value == "ok", result.status_message
    assert_no_forged_marks(result)
    assert not marker.exists()
    assert "not data" in (result.run.trusted[0].error or "") or "pickled" in (result.run.trusted[0].error or "")


def test_honest_program_is_re_measured_and_agrees(grade_file):
    result = grade_file(TINY.replace("x_train[:64], y_train[:64], epochs=1", "x_train, y_train, epochs=2"), 3)
    t = result.run.trusted[0]
    assert t.error is None and t.kind == "keras_json" and t.n_unseen == 1000
    assert abs(t.accuracy_served - result.run.trace["measurements"][-1]["accuracy"]) < 1e-6
    assert abs(t.accuracy_served - t.accuracy_unseen) < 0.08
    assert not any("trusted figure counts" in f for f in result.flags)


def test_keras_on_the_torch_backend_is_re_measured(grade_file, monkeypatch):
    """KERAS_BACKEND reaches the sandbox: Keras 3 on PyTorch (a GPU machine without TensorFlow)
    trains, exports its functional model as JSON and is re-measured on that backend."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    functional = TINY.replace("from tensorflow import keras", "import keras").replace(
        'model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),',
        'inputs = keras.Input((32, 32, 3))\nlayers = [keras.layers.Conv2D(4, 3, activation="relu"),').replace(
        'keras.layers.Dense(10, activation="softmax")])',
        'keras.layers.Dense(10, activation="softmax")]\nx = inputs\nfor layer in layers:\n    x = layer(x)\n'
        'model = keras.Model(inputs, x)\nprint("backend:", keras.backend.backend())')
    result = grade_file(functional, 3)
    assert "backend: torch" in result.run.stdout, result.run.stdout[-500:]
    t = result.run.trusted[0]
    assert t.error is None and t.kind == "keras_json" and t.n_unseen == 1000, t
    assert abs(t.accuracy_served - result.run.trace["measurements"][-1]["accuracy"]) < 1e-6


# ---------------------------------------------------------------- Program 1's KNN

KNN = """
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.neighbors import KNeighborsClassifier
cifar10 = datasets.fetch_openml(name="CIFAR_10_small")
X, y = cifar10.data.astype("float32"), cifar10.target.astype("int")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)
knn = KNeighborsClassifier(n_neighbors=5)
knn.fit(X_train, y_train)
print("KNN Accuracy:", knn.score(X_test, y_test))
"""


def test_knn_is_re_measured_from_its_training_images(grade_file):
    """The manual's KNN (standardised feature by feature) is refitted outside the program from
    the served images it was fitted on, and scored on its held-out rows and on unseen images;
    a few rows predicted afterwards (to print them) are not taken for its test rows."""
    result = grade_file(KNN + 'print("first predictions:", knn.predict(X_test[:5]))\n', 1)
    t = next(t for t in result.run.trusted if t.part == "knn")
    assert t.error is None and t.kind == "sklearn_knn" and t.n_served == 1200 and t.n_unseen == 1000
    knn = [m for m in result.run.trace["measurements"] if m.get("part") == "knn"][-1]
    assert abs(t.accuracy_served - knn["accuracy"]) < 1e-6  # the same model on the same rows
    assert abs(t.accuracy_served - t.accuracy_unseen) < 0.08
    assert check(result, "knn.accuracy").passed


def test_knn_after_a_pca_is_re_measured_and_a_forged_projection_earns_no_more(grade_file):
    """Rows standardised and projected by a PCA before the KNN are traced back through both
    transformers, which travel as arrays; a program that replaces the PCA's components after
    scoring (a projection of its own in the export) gains nothing: the refitted KNN is what
    the exported arrays give, scored on images the program never saw."""
    pca = KNN.replace("X_test = scaler.transform(X_test)\n", "X_test = scaler.transform(X_test)\n"
                      "from sklearn.decomposition import PCA\npca = PCA(n_components=40, whiten=True)\n"
                      "X_train = pca.fit_transform(X_train)\nX_test = pca.transform(X_test)\n")
    result = grade_file(pca, 1)
    t = next(t for t in result.run.trusted if t.part == "knn")
    assert t.error is None and t.kind == "sklearn_knn" and t.n_unseen == 1000, t
    assert abs(t.accuracy_served - result.run.trace["measurements"][-1]["accuracy"]) < 0.02
    assert check(result, "knn.accuracy").passed

    forged = pca + "import numpy as np\npca.components_ = np.zeros_like(pca.components_)\n"
    result = grade_file(forged, 1)
    t = next(t for t in result.run.trusted if t.part == "knn")
    assert t.accuracy is not None and t.accuracy < 0.3, t  # every image projected to one point
    assert not check(result, "knn.accuracy").passed


def test_transformer_steps_other_than_data_are_refused(tmp_path):
    np.savez(tmp_path / "knn.npz", fit_labels=np.arange(3))
    (tmp_path / "knn.json").write_text(json.dumps({"n_neighbors": 5, "weights": "uniform", "metric": "minkowski",
                                                   "p": 2}))
    np.savez(tmp_path / "steps.npz", **{"0_mean": np.zeros(4), "0_components": np.zeros((2, 4)),
                                        "0_divisor": np.ones(2)})
    (tmp_path / "steps.json").write_text(json.dumps([{"op": "project"}]))
    check_knn(tmp_path)  # a projection from 4 features to 2: data
    (tmp_path / "steps.json").write_text(json.dumps([{"op": "eval", "code": "open('x', 'w')"}]))
    with pytest.raises(Refused, match="not one the grader applies"):
        check_knn(tmp_path)
    (tmp_path / "steps.json").write_text(json.dumps([{"op": "project"}, {"op": "affine"}]))
    with pytest.raises(Refused, match="lacks its arrays"):
        check_knn(tmp_path)


def test_knn_forged_or_fitted_on_its_test_rows_earns_no_more(grade_file):
    """Two attacks on part a: predict() answering from the labels (the in-process figure is
    forged, the refitted KNN is not), and a KNN fitted on its own held-out rows (it scores far
    higher on them than on images it never saw)."""
    oracle = KNN.replace("knn = KNeighborsClassifier(n_neighbors=5)", """
class KNeighborsOracle(KNeighborsClassifier):
    def predict(self, X):
        return y_test.to_numpy() if len(X) == len(y_test) else super().predict(X)
knn = KNeighborsOracle(n_neighbors=5)""")
    result = grade_file(oracle, 1)
    knn = check(result, "knn.accuracy")
    assert [m for m in result.run.trace["measurements"] if m.get("part") == "knn"][-1]["accuracy"] == 1.0
    assert knn.evidence["trusted accuracy"] < 0.75, knn.message  # what the real KNN earns
    assert any("trusted figure counts" in f for f in result.flags), result.flags

    # a KNN of the program's own making in the export (better images, more of them) is refused
    replaced = KNN.replace("knn.fit(X_train, y_train)", "knn.fit(X_train[:100], y_train[:100])") + """
import importlib, json, numpy as np
export = importlib.import_module("grader.probe.export")
def write_better(measured, folder, preprocess):
    (folder / "knn.json").write_text(json.dumps({"n_neighbors": 5, "weights": "distance", "metric": "minkowski", "p": 2}))
    np.savez(folder / "knn.npz", fit_images=np.zeros((10, 32, 32, 3), np.uint8), fit_labels=np.arange(10))
    return "sklearn_knn"
export.WRITERS["sklearn"] = write_better
"""
    result = grade_file(replaced, 1)
    knn = check(result, "knn.accuracy")
    assert not knn.passed and "not re-measured" in knn.message, knn.message

    leaked = KNN.replace("knn.fit(X_train, y_train)", "import numpy as np\n"
                         "knn.fit(np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test]))")
    result = grade_file(leaked, 1)
    knn = check(result, "knn.accuracy")
    assert not knn.passed and "trained on the test set" in knn.message, knn.message
    assert result.marks["execution"] <= 9


# ---------------------------------------------------------------- Program 6's recurrent models

REVIEWS = """
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data()  # every word: no num_words
vocab = max(max(r) for r in list(x_train) + list(x_test)) + 1
x_train = keras.utils.pad_sequences(x_train, maxlen=120, padding="post")
x_test = keras.utils.pad_sequences(x_test, maxlen=120, padding="post")
model = keras.Sequential([keras.Input((120,)), keras.layers.Embedding(vocab, 16), keras.layers.LSTM(8),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
"""


def test_recurrent_model_is_re_measured_on_unseen_reviews(grade_file):
    """A Keras LSTM on padded reviews: the host pads its own copy of the reviews as the program
    did and unseen ones encoded by the program's load_data arguments (without num_words, ids
    bounded as load_data bounded them); the clean sandbox runs it."""
    result = grade_file(REVIEWS, 6)
    t = result.run.trusted[0]
    assert t.error is None and t.kind == "keras_json" and t.n_unseen == t.n_served > 0, t
    assert result.run.trace["exports"][0]["preprocess"]["padding"] == "post"
    assert abs(t.accuracy_served - result.run.trace["measurements"][-1]["accuracy"]) < 1e-6
    assert abs(t.accuracy_served - t.accuracy_unseen) < 0.08


def test_recurrent_model_whose_measurement_is_replaced_is_capped(grade_file):
    result = grade_file(REVIEWS + """
import sys
for probe in sys.modules["grader.probe.session"].CURRENT.probes:
    probe.measure = lambda: {"model": 0, "trained": True, "dataset": "imdb", "accuracy": 0.97, "n": 2000}
""", 6)
    threshold = check(result, "accuracy.threshold")
    assert not threshold.passed and "not re-measured outside the program's process" in threshold.message
    assert result.marks["execution"] <= 9 and any("faculty review" in f for f in result.flags)


TORCH_LIMITS = {"train": 2000, "test": 1000}
UNTRAINED_LSTM = torch_program(LSTM).replace("lr=0.005", "lr=0.0")  # steps, learns nothing: about 50%


@pytest.mark.parametrize("attack", [
    # the probe's own labelling of the outputs answers from load_data's labels
    """
import sys
sys.modules["grader.probe.torch_hooks"].review_labels = lambda pred, loss_fn: np.asarray(y_test)
""",
    # the probe's measurement replaced outright: nothing is exported
    """
import sys
for probe in sys.modules["grader.probe.session"].CURRENT.probes:
    probe.measure = lambda: {"model": 0, "trained": True, "dataset": "imdb", "accuracy": 0.97, "n": 1000}
"""], ids=["labels-from-load-data", "measure-replaced"])
def test_pytorch_lstm_whose_measurement_is_rewritten_earns_no_more(grade_file, attack):
    result = grade_file("import numpy as np\n" + UNTRAINED_LSTM + attack, 6, **TORCH_LIMITS)
    threshold = assert_no_forged_marks(result)
    if "review_labels" in attack:  # measured in the process as 100%, re-measured outside it
        assert threshold.evidence["in-process measurement"] == 1.0
        assert threshold.evidence["trusted accuracy"] < 0.55 and result.run.trusted[0].kind == "torch_pt2"
        assert any("the trusted figure counts" in f for f in result.flags), result.flags
    else:
        assert "not re-measured outside the program's process" in threshold.message
        assert any("faculty review" in f for f in result.flags), result.flags


def test_pytorch_lstm_trained_on_the_test_reviews_is_named(grade_file):
    """Trained on x_test (and the process's own evidence of it hidden): the re-measured model
    scores far higher on the test reviews it was served than on reviews it never saw."""
    leaked = torch_program(LSTM).replace("dataset = SentimentDataset(x_train, y_train)",
                                         "dataset = SentimentDataset(x_test, y_test)") + """
import sys
for probe in sys.modules["grader.probe.session"].CURRENT.probes:
    getattr(probe, "first_inputs", {}).clear()
"""
    result = grade_file(leaked, 6, epochs=3, train_budget_s=600, timeout_s=600, **TORCH_LIMITS)
    threshold = check(result, "accuracy.threshold")
    assert not threshold.passed and "trained on the test set" in threshold.message, threshold.message
    assert result.marks["execution"] <= 9 and any("trained on the test set" in f for f in result.flags)
    assert result.run.trace["measurements"][-1]["fit_on_served_test"] is None
    t = result.run.trusted[0]
    assert t.accuracy_served - t.accuracy_unseen > leak_margin(t)


def test_fair_program_loading_the_reviews_twice_keeps_full_marks(grade_file):
    """A second load_data call (every word, to count the vocabulary) after the one the model is
    fed, and the test reviews passed as validation data: described from the call the model was
    fed, re-measured, not capped."""
    source = (PROJECT / "reference" / "program6" / "solution.py").read_text()
    first = "(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=vocabulary_size)\n"
    assert first in source and "validation_split=0.2" in source
    source = source.replace(first, first + (
        "(every_word, _), _ = keras.datasets.imdb.load_data()\n"
        "print('Distinct words:', len({w for review in every_word for w in review}))\n"))
    result = grade_file(source.replace("validation_split=0.2", "validation_data=(x_test, y_test)"), 6)
    t = result.run.trusted[0]
    assert t.error is None and t.kind == "keras_json", t
    assert result.run.trace["exports"][0]["load_args"] == {"num_words": 10000, "skip_top": 0, "seed": 113,
                                                           "start_char": 1, "oov_char": 2, "index_from": 3}
    assert result.run.trace["measurements"][-1]["fit_on_served_test"] == 0.0
    assert result.marks == {"writeup": 5, "execution": 20, "viva": None}, [
        (c.id, c.message) for c in result.checks if not c.passed]
    assert not any("trained on the test set" in f for f in result.flags)


def test_pytorch_model_fed_reviews_padded_batch_by_batch_is_capped_with_the_reason(grade_file):
    """Test reviews padded per batch to its longest review: measured in the process, but no one
    padding describes them for the clean sandbox, so the figure is capped and says why."""
    evaluation = """    for batch in DataLoader(SentimentDataset(x_test, y_test), batch_size=64):
        correct += (PREDICTED == batch['label']).sum().item()"""
    per_batch = """    for i in range(0, len(raw_test), 8):  # of 8 reviews, often none of the longest (401 ids)
        text = nn.utils.rnn.pad_sequence([torch.tensor(r) for r in raw_test[i:i + 8]], batch_first=True)
        correct += (model(text).argmax(1) == torch.tensor(y_test[i:i + 8])).sum().item()"""
    source = torch_program(LSTM)
    assert evaluation.replace("PREDICTED", LSTM["PREDICTED"]) in source
    source = source.replace(evaluation.replace("PREDICTED", LSTM["PREDICTED"]), per_batch).replace(
        "x_test = pad_sequences(x_test, maxlen=100)", "raw_test = x_test\nx_test = pad_sequences(x_test, maxlen=100)")
    result = grade_file(source, 6, **TORCH_LIMITS)
    assert result.run.trace["measurements"][-1]["accuracy"] is not None
    assert "padded batch by batch" in (result.run.trusted[0].error or ""), result.run.trusted
    threshold = check(result, "accuracy.threshold")
    assert not threshold.passed and "not re-measured outside the program's process" in threshold.message
    assert any("faculty review" in f for f in result.flags), result.flags


def test_training_rows_found_among_the_padded_test_reviews():
    test = np.arange(40, dtype=np.int32).reshape(10, 4)
    assert served_review_share(test[[2, 5]].astype(np.float32), test) == 1.0  # a float copy of two test rows
    assert served_review_share(np.vstack([test[:1], test[:3] + 100]).astype(np.int64), test) == 0.25
    assert served_review_share(test[:, :3], test) is None  # another padded length


# ---------------------------------------------------------------- the host's file checks (no sandbox)


def test_a_functional_model_is_exported_as_json_and_accepted(tmp_path):
    """A functional model's JSON names the tensors between layers (__keras_tensor__): data, not
    code. It travels as JSON, which every Keras backend loads, not as a SavedModel."""
    import keras

    from grader.probe.export import write_keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    assert write_keras({"object": model}, tmp_path) == "keras_json"
    assert "__keras_tensor__" in checked_keras_json(tmp_path)


def test_keras_json_with_a_lambda_or_own_class_is_refused(tmp_path):
    layer = {"module": "keras.layers", "class_name": "Lambda", "config": {"function": "..."}}
    (tmp_path / "model.json").write_text(json.dumps({"class_name": "Sequential", "config": {"layers": [layer]}}))
    with pytest.raises(Refused, match="Lambda"):
        checked_keras_json(tmp_path)
    own = {"module": None, "class_name": "MyLayer", "config": {}}
    (tmp_path / "model.json").write_text(json.dumps({"class_name": "Sequential", "config": {"layers": [own]},
                                                     "compile_config": {"optimizer": "Adam"}}))
    with pytest.raises(Refused, match="MyLayer"):
        checked_keras_json(tmp_path)


def test_pt2_with_a_pickled_tensor_or_entry_is_refused(tmp_path):
    path = tmp_path / "model.pt2"
    config = {"config": {"w": {"path_name": "weight_0", "use_pickle": True}}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data/weights/model_weights_config.json", json.dumps(config))
        z.writestr("m/data/weights/weight_0", np.zeros(4, np.float32).tobytes())
    with pytest.raises(Refused, match="pickled"):
        check_pt2(path)
    config["config"]["w"]["use_pickle"] = False
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data/weights/model_weights_config.json", json.dumps(config))
        z.writestr("m/data/weights/weight_0", np.zeros(4, np.float32).tobytes())
        z.writestr("m/data/sample_inputs/model.pt", b"PK\x03\x04 not empty")
    with pytest.raises(Refused, match="not data"):
        check_pt2(path)


def test_pt2_with_a_second_weights_config_naming_a_pickle_is_refused(tmp_path):
    """A config file of the right name in the wrong place must not make a pickle count as a tensor."""
    path = tmp_path / "model.pt2"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data/weights/model_weights_config.json", json.dumps({"config": {}}))
        z.writestr("m/data/sample_inputs/x_weights_config.json",
                   json.dumps({"config": {"w": {"path_name": "model.pt", "use_pickle": False}}}))
        z.writestr("m/data/sample_inputs/model.pt", b"\x80\x04 a pickle")
    with pytest.raises(Refused):
        check_pt2(path)


# ---------------------------------------------------------------- Program 7's chatbot

CHATBOT = (PROJECT / "reference" / "program7" / "solution.py").read_text()
# The trace's record rewritten through gc as it is saved: every LSTM described as Bidirectional(LSTM).
CLAIM_BIDIRECTIONAL = """
import gc
for obj in gc.get_objects():
    if type(obj).__name__ == "Trace":
        original = type(obj).save
        def save(self, original=original):
            for m in self.data["models"]:
                for layer in m.get("layers", []):
                    if layer.get("type") == "LSTM":
                        layer.update(type="Bidirectional", wraps="LSTM")
            original(self)
        type(obj).save = save
        break
"""


def test_chatbot_layers_and_training_are_read_from_the_export(grade_file):
    result = grade_file(CHATBOT, 7)
    t = next(t for t in result.run.trusted if t.part == "chatbot")
    assert t.error is None and [layer["type"] for layer in t.layers] == ["Embedding", "Bidirectional", "Dense"]
    assert t.loss < 0.8 * t.loss_fresh
    assert result.marks["execution"] == 20, [(c.id, c.message) for c in result.checks if not c.passed]
    assert "exported Keras architecture" in check(result, "model.structure").evidence["source"]
    assert "only be observed there" in check(result, "chat.replies").evidence["figure from"]


def test_chatbot_whose_record_claims_a_bidirectional_lstm_and_training(grade_file):
    """A one-way LSTM described (through gc) as Bidirectional(LSTM), its trained weights thrown
    away after fit: the exported architecture and its loss outside the process tell."""
    one_way = CHATBOT.replace("layers.Bidirectional(layers.LSTM(32))", "layers.LSTM(32)") + """
model.set_weights(keras.models.clone_model(model).get_weights())
""" + CLAIM_BIDIRECTIONAL
    result = grade_file(one_way, 7)
    structure, trained = check(result, "model.structure"), check(result, "model.trained")
    assert result.run.trace["models"][0]["layers"][1]["type"] == "Bidirectional"  # the forgery, in process
    assert not structure.passed and "no bidirectional LSTM" in structure.message, structure.message
    assert not trained.passed and "no lower than a fresh model's" in trained.message, trained.message
    assert result.marks["execution"] <= 9 and any("fresh model" in f for f in result.flags), result.flags


TORCH_CHATBOT = """
import random
import torch
from torch import nn
intents = {"greeting": (["hi there", "hello", "good morning", "hey"], ["Hello!", "Hi, how can I help?"]),
           "goodbye": (["bye", "see you later", "goodbye now"], ["Goodbye!", "See you soon."]),
           "thanks": (["thanks a lot", "thank you", "that helps"], ["You're welcome.", "Any time."])}
tags = list(intents)
vocab = {w: i + 1 for i, w in enumerate(sorted({w for pats, _ in intents.values() for p in pats for w in p.split()}))}
def encode(s):
    ids = [vocab.get(w, 0) for w in s.lower().split()][:3]
    return ids + [0] * (3 - len(ids))
class IntentNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(len(vocab) + 1, 16)
        self.lstm = nn.LSTM(16, 16, batch_first=True, bidirectional=True)
        self.out = nn.Linear(32, len(tags))
    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(h[:, -1])
net = IntentNet()
opt = torch.optim.Adam(net.parameters(), lr=0.02)
x = torch.tensor([encode(p) for t, (pats, _) in intents.items() for p in pats])
y = torch.tensor([tags.index(t) for t, (pats, _) in intents.items() for p in pats])
loss_fn = nn.CrossEntropyLoss()
for epoch in range(150):
    opt.zero_grad()
    loss_fn(net(x), y).backward()
    opt.step()
def reply(text):
    with torch.no_grad():
        return random.choice(intents[tags[net(torch.tensor([encode(text)])).argmax().item()]][1])
while True:
    line = input("You: ")
    if line.strip().lower() == "quit":
        break
    print("Bot:", reply(line))
"""


def test_pytorch_chatbot_layers_and_training_are_read_from_its_exported_graph(grade_file):
    """A PyTorch chatbot travels as a torch.export program traced for its training batches'
    shape: its layers come from the program's graph, its training from its loss on those rows."""
    result = grade_file(TORCH_CHATBOT, 7)
    t = next(t for t in result.run.trusted if t.part == "chatbot")
    assert t.error is None and t.kind == "torch_pt2", t
    assert [layer["type"] for layer in t.layers] == ["Embedding", "Bidirectional", "Linear"], t.layers
    assert t.layers[1] == {"type": "Bidirectional", "wraps": "LSTM", "config": {"units": 16}}
    assert t.loss < 0.8 * t.loss_fresh and abs(t.loss_fresh - np.log(3)) < 1e-3
    structure, trained = check(result, "model.structure"), check(result, "model.trained")
    assert structure.passed and "exported program's graph" in structure.evidence["source"], structure.message
    assert trained.passed, trained.message


TORCH_CHATBOT_FORGED = TORCH_CHATBOT.replace("bidirectional=True", "bidirectional=False").replace(
    "nn.Linear(32,", "nn.Linear(16,").replace("lr=0.02", "lr=0.0") + CLAIM_BIDIRECTIONAL


def test_pytorch_chatbot_whose_record_claims_a_bidirectional_lstm_and_training(grade_file):
    """A one-way LSTM that never learns (learning rate 0), described through gc as
    Bidirectional(LSTM): the exported graph and its loss outside the process tell."""
    result = grade_file(TORCH_CHATBOT_FORGED, 7)
    structure, trained = check(result, "model.structure"), check(result, "model.trained")
    assert any(layer.get("type") == "Bidirectional" for layer in result.run.trace["models"][0]["layers"])
    assert not structure.passed and "no bidirectional LSTM" in structure.message, structure.message
    assert not trained.passed and "no lower than a uniform guess's" in trained.message, trained.message
    assert result.marks["execution"] <= 9 and any("uniform guess" in f for f in result.flags), result.flags


BAG_OF_WORDS_CHATBOT = """
import numpy as np
import torch
from torch import nn
patterns = {"greeting": ["hi there", "hello", "good morning"], "goodbye": ["bye", "see you later"],
            "thanks": ["thanks a lot", "thank you"]}
tags = list(patterns)
words = sorted({w for ps in patterns.values() for p in ps for w in p.split()})
bag = lambda s: np.array([float(w in s.split()) for w in words], dtype=np.float32)
x = torch.tensor(np.stack([bag(p) for ps in patterns.values() for p in ps]))
y = torch.tensor([tags.index(t) for t, ps in patterns.items() for _ in ps])
model = nn.Sequential(nn.Linear(len(words), 8), nn.ReLU(), nn.Linear(8, len(tags)))
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for _ in range(100):
    opt.zero_grad()
    nn.CrossEntropyLoss()(model(x), y).backward()
    opt.step()
def get_response(text):
    return tags[model(torch.tensor(bag(text))[None]).argmax().item()]
"""


def test_pytorch_chatbot_on_bag_of_words_vectors_is_re_measured(grade_file):
    """The common tutorial chatbot (bag-of-words vectors into linear layers) is traced and
    re-measured too: trained by the figure outside, and its structure fails for what it is
    (no embedding, no bidirectional LSTM), not for a missing export."""
    result = grade_file(BAG_OF_WORDS_CHATBOT, 7)
    t = next(t for t in result.run.trusted if t.part == "chatbot")
    assert t.error is None and [layer["type"] for layer in t.layers] == ["Linear", "Linear"], t
    assert check(result, "model.trained").passed, check(result, "model.trained").message
    structure = check(result, "model.structure")
    assert not structure.passed and "no bidirectional LSTM" in structure.message, structure.message
    assert "not re-measured" not in structure.message
