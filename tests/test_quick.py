"""Quick previews that agree with the full run: the training-time budget (Keras and PyTorch),
batch normalisation's running statistics in a short run, the stand-in's classes under the
usual augmentations, and the cases that disagreed (p4_datagen_flow, p6_stacked_bilstm)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import check
from grader.course import Limits, RubricError, load_rubrics
from grader.models import Status
from grader.probe import provider
from grader.probe.budget import TrainBudget

CASES = Path(__file__).parent / "fixtures" / "cases"  # a copy of the project's cases, one per kind of fault


# ---------------------------------------------------------------- the rubric declares it


def test_budget_must_leave_time_within_the_quick_limit():
    Limits.Quick(epochs=1, train=10, test=10, timeout_s=60, train_budget_s=30)
    with pytest.raises(ValueError, match="train_budget_s"):
        Limits.Quick(epochs=1, train=10, test=10, timeout_s=60, train_budget_s=60)


def test_every_training_program_declares_a_budget():
    rubrics = load_rubrics()
    for n in (1, 3, 4, 6, 7):
        q = rubrics.program(n).limits.quick
        assert q.train_budget_s and q.train_budget_s < q.timeout_s, n


def test_invalid_budget_in_a_rubric_names_the_field(tmp_path):
    shutil.copytree(load_rubrics().folder, tmp_path, dirs_exist_ok=True)
    p3 = tmp_path / "program3.yaml"
    p3.write_text(p3.read_text().replace("train_budget_s: 40", "train_budget_s: -1"))
    with pytest.raises(RubricError, match="limits.quick.train_budget_s"):
        load_rubrics(folder=tmp_path)


def test_budget_clock_pauses_between_fits():
    b = TrainBudget(1000)
    b.start()
    b.pause()
    first = b.elapsed()
    assert b.elapsed() == first and not b.spent()
    tiny = TrainBudget(1e-9)
    assert not tiny.spent()  # the clock has not started: no training yet
    tiny.start()
    assert tiny.spent() and tiny.spent_after is not None


# ---------------------------------------------------------------- Keras, in process


def _keras_model(batchnorm: bool = False):
    import keras

    layers = [keras.Input((8,)), keras.layers.Dense(16, activation="relu")]
    layers += [keras.layers.BatchNormalization()] if batchnorm else []
    model = keras.Sequential(layers + [keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model


def test_keras_fit_stops_inside_its_first_epoch_when_the_budget_is_used():
    from grader.probe.keras_hooks import budget_callback

    model = _keras_model()
    record: dict = {}
    budget = TrainBudget(1e-9)  # used up by the first batch
    x, y = np.random.rand(640, 8), np.random.randint(0, 2, 640)
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0,
                        callbacks=[budget_callback(model, record, budget)])
    assert len(history.history["loss"]) == 1  # the epoch under way ends; no later one starts
    assert record["stopped_by_budget"]["epoch"] == 1
    assert record["stopped_by_budget"]["batches_in_epoch"] == 1
    assert "time budget" in record["cap"]


def test_quick_batchnorm_speeds_running_statistics_and_says_so():
    from grader.probe.keras_hooks import QUICK_BN_MOMENTUM, quick_batchnorm

    model = _keras_model(batchnorm=True)
    record: dict = {}
    quick_batchnorm(model, record, _NullTrace())
    bn = [l for l in model.layers if type(l).__name__ == "BatchNormalization"][0]
    assert bn.momentum == QUICK_BN_MOMENTUM
    assert record["quick_batchnorm"] == {"layers": 1, "momentum": QUICK_BN_MOMENTUM, "was": [0.99]}


class _NullTrace(dict):
    def __init__(self):
        super().__init__()
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


# ---------------------------------------------------------------- the stand-in under augmentation


def test_standin_class_survives_the_usual_augmentations(tmp_path):
    """A small CNN trained on plain stand-in images classifies flipped, shifted, rotated and
    zoomed test images nearly as well as plain ones, as it would photographs."""
    import keras
    from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D

    s = provider.load("cifar10", cache_dir=tmp_path, quick=True, quick_train=3000, quick_test=500)
    x, xt = s.x_train / 255.0, s.x_test / 255.0
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), Conv2D(32, 3, activation="relu"), MaxPooling2D(),
                              Conv2D(64, 3, activation="relu"), MaxPooling2D(), Flatten(),
                              Dense(64, activation="relu"), Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, s.y_train, epochs=3, batch_size=64, verbose=0)
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=1),
                                keras.layers.RandomTranslation(0.1, 0.1, seed=2),
                                keras.layers.RandomRotation(20 / 360, seed=3),
                                keras.layers.RandomZoom(0.1, seed=4)])
    moved = np.asarray(augment(xt, training=True))
    plain = model.evaluate(xt, s.y_test, verbose=0)[1]
    augmented = model.evaluate(moved, s.y_test, verbose=0)[1]
    assert plain > 0.6
    assert augmented > plain - 0.12, (plain, augmented)


# ---------------------------------------------------------------- graded for real

BIG_LSTM = '''
from tensorflow import keras
from tensorflow.keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=10000)
x_train = keras.utils.pad_sequences(x_train, maxlen=200)
x_test = keras.utils.pad_sequences(x_test, maxlen=200)
model = keras.Sequential([keras.Input((200,)), layers.Embedding(10000, 64),
                          layers.LSTM(128), layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
# one long epoch: small batches
model.fit(x_train, y_train, epochs=1, batch_size=4)
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])
'''


def test_keras_lstm_in_one_long_epoch_is_stopped_by_the_budget_and_measured(grade_file):
    r = grade_file(BIG_LSTM, 6, train=2000, test=600, train_budget_s=3)
    assert r.status == Status.ok, r.status_message
    fit = r.run.trace["fits"][-1]
    assert fit["stopped_by_budget"]["epoch"] == 1
    assert fit["stopped_by_budget"]["batches_in_epoch"] < 500  # 2000 reviews in batches of 4: far over 3 s
    assert fit["epochs_run"] == 1 and fit["history"]["loss"]
    assert check(r, "accuracy.threshold").evidence["measured"] is not None
    assert r.quick_limits["train_budget_s"] == 3


TORCH_LSTM = '''
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from keras.datasets import imdb
from keras.preprocessing.sequence import pad_sequences

torch.manual_seed(0)
(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
x_train, x_test = pad_sequences(x_train, maxlen=200), pad_sequences(x_test, maxlen=200)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10000, 64)
        self.rnn = nn.LSTM(64, 128, batch_first=True)
        self.fc = nn.Linear(128, 2)

    def forward(self, x):
        out, _ = self.rnn(self.emb(x))
        return self.fc(out[:, -1, :])


model = Net()
opt = torch.optim.Adam(model.parameters(), lr=0.003)
loss_fn = nn.CrossEntropyLoss()
train = DataLoader(TensorDataset(torch.tensor(x_train), torch.tensor(y_train)), batch_size=4, shuffle=True)
for epoch in range(2):
    for xb, yb in train:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    print("epoch", epoch + 1, "done")
model.eval()
with torch.no_grad():
    pred = model(torch.tensor(x_test)).argmax(1).numpy()
print("Test accuracy:", (pred == y_test).mean())
'''


def test_torch_lstm_in_one_long_epoch_is_stopped_by_the_budget_and_measured(grade_file):
    # 500 batches of 4 take far longer than the 2 s budget on any CPU
    r = grade_file(TORCH_LSTM, 6, train=2000, test=600, train_budget_s=2)
    assert r.status == Status.ok, r.status_message
    fit = r.run.trace["fits"][-1]
    assert fit["stopped_by_budget"]["epoch"] == 1 and fit["epochs_run"] == 1
    assert fit["stopped_by_budget"]["batches_in_epoch"] < 500
    assert "time budget" in fit["cap"]
    assert "epoch 2 done" in r.run.stdout  # the program's loop still ran to its end
    assert check(r, "accuracy.threshold").evidence["measured"] is not None


def test_only_a_quick_run_gets_the_budget(tmp_path, monkeypatch):
    from grader.probe import budget, session
    from grader.runners.base import RunPlan, probe_config

    def config(mode):
        plan = RunPlan(entry="p.py", mode=mode, frameworks=["keras"], dataset="imdb", epochs_cap=1,
                       train_budget_s=30, quick_train=10, quick_test=10, timeout_s=60, memory_mb=512,
                       output_kb=8, cache_dir=str(tmp_path))
        return probe_config(plan, tmp_path / "p.py", tmp_path, tmp_path)

    assert config("full")["train_budget_s"] is None
    for mode, expected in (("quick", 30.0), ("full", None)):
        monkeypatch.setattr(session, "CURRENT", session.Session(config(mode), _NullTrace()))
        got = budget.from_session()
        assert (got.seconds if got else None) == expected
        assert budget.from_session() is got  # one budget for every probe of a run


# ---------------------------------------------------------------- the cases


@pytest.mark.slow
def test_case_p4_datagen_flow_preview_is_good(grade_file):
    r = grade_file(CASES / "p4_datagen_flow.py", 4)
    assert r.status == Status.ok, r.status_message
    acc = check(r, "accuracy.threshold")
    assert acc.passed, acc.message
    assert next(a for a in r.attributes if a.attribute == "execution").band == "Good"
    assert r.run.trace["fits"][-1]["quick_batchnorm"]["momentum"] == 0.9


@pytest.mark.slow
def test_case_p6_stacked_bilstm_preview_finishes_measured_and_good(grade_file):
    r = grade_file(CASES / "p6_stacked_bilstm.py", 6)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["fits"][-1].get("stopped_by_budget")
    acc = check(r, "accuracy.threshold")
    assert acc.passed, acc.message
    assert next(a for a in r.attributes if a.attribute == "execution").band == "Good"
