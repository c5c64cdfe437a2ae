"""Training loops and data pipelines of the program's own making: Keras' train_on_batch and
test_on_batch recorded as a fit and an evaluation; tf.data pipelines read again for the measurement."""

from __future__ import annotations

import pytest

from conftest import check

pytestmark = pytest.mark.slow

# CIFAR-10 scaled to [0, 1] and a small CNN: what every program here trains its own way
DATA_AND_MODEL = """
import numpy as np
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train, x_test = x_train.astype("float32") / 255.0, x_test.astype("float32") / 255.0
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
                          keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
"""

LOOP = DATA_AND_MODEL + """
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
for epoch in range(EPOCHS):
    order = np.random.permutation(len(x_train))
    for start in range(0, len(x_train), 64):
        idx = order[start:start + 64]
        loss, acc = model.train_on_batch(x_train[idx], y_train[idx])
    print("epoch", epoch + 1, "loss", loss, "accuracy", acc)
print("test loss and accuracy:", model.test_on_batch(x_test, y_test))
"""


def test_a_train_on_batch_loop_is_a_fit(grade_file):
    result = grade_file(LOOP.replace("EPOCHS", "5"), 3, train=1000, epochs=2)
    fit = result.run.trace["fits"][-1]
    assert fit["loop"] == "train_on_batch" and fit["epochs_run"] == 2 and fit["epochs_capped_to"] == 2, fit
    assert fit["steps"] == 2 * 16 and len(fit["history"]["loss"]) == len(fit["history"]["accuracy"]) == 2
    assert fit["history"]["loss"][1] < fit["history"]["loss"][0]
    assert result.run.stdout.count("epoch ") == 5  # the loop ran on past the cap, without training
    for check_id in ("static.steps", "model.trained", "training.loss_falls", "training.learns"):
        assert check(result, check_id).passed, check(result, check_id).message
    t = result.run.trusted[0]
    assert t.error is None and t.kind == "keras_json"
    assert result.run.trace["measurements"][-1]["method"].startswith("the test inputs the program passed")


def test_one_batch_is_trained_but_not_a_falling_loss(grade_file):
    one = LOOP.replace("for epoch in range(EPOCHS):", "for epoch in range(1):").replace(
        "range(0, len(x_train), 64)", "range(0, 64, 64)")
    result = grade_file(one, 3, train=1000, epochs=2)
    fit = result.run.trace["fits"][-1]
    assert fit["steps"] == 1 and fit["epochs_run"] == 0 and len(fit["history"]["loss"]) == 1
    assert check(result, "model.trained").passed and "1 optimizer steps" in check(result, "model.trained").message
    assert not check(result, "accuracy.threshold").passed


PIPELINE = """
import tensorflow as tf
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
def prep(x, y):
    return tf.cast(x, tf.float32) / 255.0, y
train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1000).map(prep).batch(64)
test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).map(prep).batch(256)
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
                          keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, epochs=3, validation_data=test_ds)
print("Test accuracy:", model.evaluate(test_ds)[1])
"""


def test_a_model_fed_tf_data_pipelines_is_measured(grade_file):
    """The evaluation pipeline yields the served test images in order: they are the test inputs."""
    result = grade_file(PIPELINE, 3, train=1000, epochs=2)
    m = result.run.trace["measurements"][-1]
    assert m.get("accuracy") is not None and m["method"].startswith("the test inputs the program passed"), m
    t = result.run.trusted[0]
    assert t.error is None and abs(t.accuracy_served - m["accuracy"]) < 1e-6
    assert check(result, "training.learns").passed, check(result, "training.learns").message


def test_a_shuffled_evaluation_pipeline_falls_back_on_the_training_scaling(grade_file):
    shuffled = PIPELINE.replace(".map(prep).batch(256)", ".shuffle(1000).map(prep).batch(256)")
    result = grade_file(shuffled, 3, train=1000, epochs=2)
    m = result.run.trace["measurements"][-1]
    assert m.get("accuracy") is not None and m["method"].startswith("served test images scaled like"), m


TAPE = DATA_AND_MODEL + """
import tensorflow as tf
loss_fn = keras.losses.SparseCategoricalCrossentropy()
optimizer = keras.optimizers.Adam()

def train_step(xb, yb):
    with tf.GradientTape() as tape:
        loss = loss_fn(yb, model(xb, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

for epoch in range(3):
    for start in range(0, len(x_train), 50):
        loss = train_step(x_train[start:start + 50], y_train[start:start + 50])
    print("epoch", epoch + 1, "loss", float(loss))
pred = np.argmax(model(x_test), axis=1)
print("Test accuracy:", (pred == y_test.ravel()).mean())
"""


def test_a_gradient_tape_loop_is_a_fit(grade_file):
    """Steps, the loss of each epoch from the loss object, the loss's name for the output check,
    and model(x_test) as the test inputs."""
    result = grade_file(TAPE, 3, train=1000, epochs=2)
    fit = result.run.trace["fits"][-1]
    assert fit["loop"] == "GradientTape" and fit["steps"] == 60 and fit["epochs_run"] == 3, fit
    assert len(fit["history"]["loss"]) == 3 and fit["history"]["loss"][2] < fit["history"]["loss"][0]
    assert result.run.trace["models"][fit["model"]]["class"] == "Sequential"
    for check_id in ("static.steps", "model.trained", "model.loss_matches_output", "training.loss_falls",
                     "training.learns"):
        assert check(result, check_id).passed, check(result, check_id).message
    assert result.run.trace["measurements"][-1]["method"].startswith("the test inputs the program passed")
    assert result.run.trusted[0].error is None


def test_a_tf_function_step_is_counted_and_its_loss_not_judged(grade_file):
    compiled = TAPE.replace("def train_step(xb, yb):", "@tf.function\ndef train_step(xb, yb):")
    result = grade_file(compiled, 3, train=1000, epochs=2)
    fit = result.run.trace["fits"][-1]
    assert fit["steps"] == 60 and fit["epochs_run"] == 3 and fit["history"] == {}, fit
    assert "tf.function" in fit["loss_unobserved"]
    falls = check(result, "training.loss_falls")
    assert falls.passed and falls.message.startswith("not judged"), falls.message
    assert check(result, "model.trained").passed and check(result, "training.learns").passed
