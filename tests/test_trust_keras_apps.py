"""Program 2 written with keras.applications: the model the program ended with, re-run outside
its process on the host's reference images (grader/trusted_keras_apps.py). Programs that
rewrite what the probe records, replace the served weights or answer from a table of their own
end with no more marks than their real model earns, and a flag; honest ones keep their marks.
Graded for real in the local sandbox with real Keras; MobileNetV2 at 96 x 96 keeps them fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import PROJECT, check
from grader.models import Status
from grader.pipeline import grade
from grader.probe import vision
from grader.runners.local import LocalRunner
from grader.submissions import single_job
from grader.trusted import Refused, checked_keras_json
from grader.trusted_keras_apps import check_keras_application

pytestmark = pytest.mark.slow

CASE = (PROJECT / "tests" / "fixtures" / "cases" / "p2_keras_applications.py").read_text()

# MobileNetV2 without its top, a two-class head of the program's own (functional API)
SOLUTION = '''import numpy as np
import keras
from keras import layers
from keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input
from keras.utils import load_img, img_to_array

CLASS_LABELS = ["cat", "dog"]
base = MobileNetV2(weights="imagenet", include_top=False, input_shape=(96, 96, 3))
base.trainable = False
inputs = keras.Input((96, 96, 3))
features = layers.GlobalAveragePooling2D()(base(inputs, training=False))
model = keras.Model(inputs, layers.Dense(len(CLASS_LABELS), activation="softmax")(features))
image = img_to_array(load_img("cat.jpg", target_size=(96, 96)))
scores = model.predict(preprocess_input(np.expand_dims(image, 0)))
print("The image is classified as:", CLASS_LABELS[int(scores.argmax())])
'''

# MobileNetV2 with its own 1000-class ImageNet head, printed as if it had two classes
KEPT_HEAD = '''import numpy as np
from keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input
from keras.utils import load_img, img_to_array

CLASS_LABELS = ["cat", "dog"]
model = MobileNetV2(weights="imagenet", input_shape=(96, 96, 3))
image = img_to_array(load_img("cat.jpg", target_size=(96, 96)))
scores = model.predict(preprocess_input(np.expand_dims(image, 0)))
print("The image is classified as:", CLASS_LABELS[int(scores.argmax()) % 2])
'''


@pytest.fixture()
def grade_with_image(tmp_path, cache_dir, rubrics):
    """grade_with_image(source, image): Program 2 graded for real in the local sandbox, a drawn
    image beside it under the name it opens."""

    def run(source: str, image: str = "cat.jpg", rubrics=rubrics):
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "program2.py").write_text(source)
        vision.drawn_image(7, 320, 240)[0].save(folder / image)
        job = single_job(folder / "program2.py", 2, "20CSEL76", "quick")
        return grade(job, rubrics, LocalRunner(), cache_dir, tmp_path / "artifacts")

    return run


def trusted(result):
    found = [t for t in result.run.trusted if t.framework == "keras_applications"]
    assert found, result.run.trace.get("exports")
    return found[-1]


def flagged(result, words: str) -> bool:
    return any(words in f for f in result.flags)


def failed(result) -> list[tuple[str, str]]:
    return [(c.id, c.message) for c in result.checks if not c.passed and c.weight > 0]


# ---------------------------------------------------------------- honest programs


def test_case_resnet50_with_its_imagenet_head_is_re_measured_and_good(grade_with_image):
    """The application used whole: nothing of the program's own travels, the file's 25.6 M values
    come from the stand-in the clean sandbox makes, and its outputs are the program's."""
    r = grade_with_image(CASE, "street.jpg")
    assert r.status == Status.ok and failed(r) == [] and not r.flags, (failed(r), r.flags)
    assert r.marks["writeup"] >= 4 and r.marks["execution"] >= 10  # Good in both
    t = trusted(r)
    assert t.error is None and t.kind == "keras_application"
    assert t.weights.file == "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    assert t.weights.from_file == t.weights.parameters > 25_000_000
    assert [o.shape for o in t.reference] == [[1, 1000]]
    inside = r.run.trace["post_run"]["vision"]["results"][0]["output"]["argmax"]
    assert t.reference[0].argmax == inside
    assert r.run.trace["exports"][0]["files"]["own.npz"]["bytes"] < 1000  # no variable of its own
    assert "clean sandbox" in check(r, "vision.reference").evidence["source"]
    assert "outside the program, 100%" in check(r, "vision.pretrained").message


def test_reference_keras_solution_scores_full_marks(grade_with_image):
    r = grade_with_image(SOLUTION)
    assert r.status == Status.ok and r.marks == {"writeup": 5, "execution": 20, "viva": None}, failed(r)
    t = trusted(r)
    assert t.error is None and [o.shape for o in t.reference] == [[1, 2]] and t.weights.share == 1.0
    # only the head travelled (1280 x 2 + 2 values): the backbone is the host's stand-in
    assert r.run.trace["exports"][0]["files"]["own.npz"]["bytes"] < 20_000
    assert t.reference[0].argmax == r.run.trace["post_run"]["vision"]["results"][0]["output"]["argmax"]
    assert not r.flags


def test_without_the_cross_check_the_reference_image_runs_only_outside(grade_with_image, rubrics):
    """A rubric that turns the cross-check off: the program's process does not run the reference
    image (an exported model), and the re-measured outputs are judged without a comparison."""
    outside_only = rubrics.model_copy(deep=True)
    outside_only.programs[2].probe["vision"]["cross_check"] = False
    r = grade_with_image(SOLUTION, rubrics=outside_only)
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}, failed(r)
    post = r.run.trace["post_run"]["vision"]
    assert post["results"] == [] and post["cross_check"] is False and post["model"] == 0
    assert post["framework"] == "keras"
    ref = check(r, "vision.reference")
    assert ref.passed and "clean sandbox" in ref.evidence["source"] and "in_process" in ref.evidence
    assert [o.shape for o in trusted(r).reference] == [[1, 2]]


def test_reference_keras_solution_under_tf_keras(grade_with_image, rubrics):
    """The same program through tensorflow.keras on a course that runs tf-keras (legacy)."""
    rubrics.course.keras_flavour = "legacy"
    r = grade_with_image(SOLUTION.replace("import keras\n", "from tensorflow import keras\n")
                         .replace("from keras", "from tensorflow.keras"))
    assert r.run.trace["frameworks"]["keras_flavour"] == "legacy"
    assert r.run.trace["exports"][0]["preprocess"]["module"].startswith("tf_keras.")
    t = trusted(r)
    assert t.error is None and [o.shape for o in t.reference] == [[1, 2]] and t.weights.share == 1.0
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None} and not r.flags, failed(r)


# ---------------------------------------------------------------- hostile programs

FORGED = KEPT_HEAD + '''
import gc, sys
for obj in gc.get_objects():
    if type(obj).__name__ == "Trace":
        for rec in obj["keras_applications"]["models"]:
            rec["final"]["head"].update(out_features=2)
            rec["final"]["head_replaced"] = True
        break
assets = sys.modules["grader.probe.keras_assets"]
assets.KerasAssets.reference = lambda self, session, params: {
    "model": 0, "task": "classification", "framework": "keras",
    "results": [{"image": "shapes-320x240", "origin": "drawn", "size": [320, 240], "objects": [],
                 "output": {"kind": "tensor", "shape": [1, 2], "argmax": [1], "finite": True}}]}
'''


def test_record_rewritten_to_claim_a_two_class_head(grade_with_image):
    """The 1000-class head described (through gc) as a replaced 2-class one, and the reference
    step answered by the program (through sys.modules): the exported model gives 1000 outside."""
    r = grade_with_image(FORGED)
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["keras_applications"]["models"][0]["final"]["head"]["out_features"] == 2  # the forgery
    assert r.run.trace["post_run"]["vision"]["results"][0]["output"]["shape"] == [1, 2]
    head, ref = check(r, "vision.head"), check(r, "vision.reference")
    assert not head.passed and "gives 1000 outside it" in head.message, head.message
    assert not ref.passed and "expected [1, 2]" in ref.message, ref.message
    assert r.marks["execution"] <= 9 and flagged(r, "the re-measured outputs count")


def test_weights_reinitialised_after_loading(grade_with_image):
    """The served file was loaded (the process saw it), then every backbone variable replaced."""
    r = grade_with_image(SOLUTION.replace("base.trainable = False\n", '''base.trainable = False
rng = np.random.default_rng(0)
for w in base.weights:
    w.assign(rng.normal(0, 0.02, w.shape).astype("float32"))
'''))
    assert r.run.trace["keras_applications"]["models"][0]["loaded"]  # the process saw the file served
    pretrained = check(r, "vision.pretrained")
    assert not pretrained.passed and "served file's" in pretrained.message, pretrained.message
    assert trusted(r).weights.share < 0.1
    assert r.marks["execution"] <= 9 and flagged(r, "recorded pretrained weights")


TABLED = '''import numpy as np
import keras
from keras import layers
from keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input
from keras.utils import load_img, img_to_array

CLASS_LABELS = ["cat", "dog"]
TABLE = np.array([[0.3, 0.7]], dtype="float32")


class Tabled(keras.Sequential):
    def predict(self, x, *args, **kwargs):  # answers from a table, whatever the image
        return np.repeat(TABLE, len(x), axis=0)


base = MobileNetV2(weights="imagenet", include_top=False, input_shape=(96, 96, 3))
model = Tabled([keras.Input((96, 96, 3)), base, layers.GlobalAveragePooling2D(), layers.Dense(2, activation="softmax")])
image = preprocess_input(np.expand_dims(img_to_array(load_img("cat.jpg", target_size=(96, 96))), 0))
model(image)
scores = model.predict(image)
print("The image is classified as:", CLASS_LABELS[int(scores.argmax())])
'''


def test_model_subclass_answering_from_a_table_is_not_exported(grade_with_image):
    """A model class of the program's own cannot be rebuilt outside it: the export fails with
    the reason named, the checks that rest on the re-measurement are capped below Good and
    flagged, and the other results are kept."""
    r = grade_with_image(TABLED)
    assert r.status == Status.ok, r.status_message
    entry = r.run.trace["exports"][0]
    assert "not Keras' own: Tabled" in entry["error"], entry
    ref, pretrained = check(r, "vision.reference"), check(r, "vision.pretrained")
    assert not ref.passed and "not re-measured" in ref.message and "Tabled" in ref.message, ref.message
    assert not pretrained.passed and "not re-measured" in pretrained.message, pretrained.message
    assert check(r, "run.completes").passed and check(r, "vision.own_image").passed
    assert r.marks["writeup"] == 5 and r.marks["execution"] <= 9 and flagged(r, "faculty review")


# ---------------------------------------------------------------- the host's file checks (no sandbox)

SPEC = {"application": ["mobilenetv2_1.00_96"], "weights_file": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5",
        "package": "keras", "module": "keras.src.applications.mobilenet_v2", "shapes": [[1280, 2], [2]]}


def write_export(folder, spec, arrays):
    (folder / "application.json").write_text(json.dumps(spec))
    np.savez(folder / "own.npz", **arrays)


def test_keras_application_export_checks(tmp_path):
    write_export(tmp_path, SPEC, {"w0": np.zeros((1280, 2), np.float32)})
    assert check_keras_application(tmp_path)["package"] == "keras"
    for bad, words in ((dict(SPEC, weights_file="../../etc/passwd"), "no Keras weights file"),
                       (dict(SPEC, weights_file="model.pkl"), "no Keras weights file"),
                       (dict(SPEC, module="os"), "not one of Keras' applications"),
                       (dict(SPEC, module="tf_keras.src.applications.resnet"), "not one of Keras' applications"),
                       (dict(SPEC, package="numpy"), "not one of Keras' applications"),
                       (dict(SPEC, application=["a/b"]), "layer names"),
                       (dict(SPEC, shapes=[[1280.5, 2]]), "plain numbers"),
                       (dict(SPEC, code="print()"), "expected one")):
        write_export(tmp_path, bad, {})
        with pytest.raises(Refused, match=words):
            check_keras_application(tmp_path)
    write_export(tmp_path, SPEC, {"w2": np.zeros(2)})  # no third variable
    with pytest.raises(Refused, match="other entries"):
        check_keras_application(tmp_path)


def test_layers_of_keras_applications_own_are_taken_only_from_their_module(tmp_path):
    """ConvNeXt's LayerScale crosses for a keras.applications export, from Keras' module alone."""
    def layer(module):
        return {"class_name": "Functional", "config": {"layers": [
            {"class_name": "LayerScale", "module": module, "config": {"init_values": 1e-6, "projection_dim": 8}}]}}

    (tmp_path / "model.json").write_text(json.dumps(layer("keras.src.applications.convnext")))
    assert "LayerScale" in checked_keras_json(tmp_path, application=True)
    with pytest.raises(Refused, match="LayerScale"):  # not for another kind of export
        checked_keras_json(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps(layer("__main__")))
    with pytest.raises(Refused, match="LayerScale"):
        checked_keras_json(tmp_path, application=True)


REAL_FILE = '''import json, sys
from pathlib import Path
import numpy as np
import keras
from grader.clean.__main__ import remeasure
from grader.probe import keras_assets

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
app = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
keras_assets.seed_weights(app, "a file faculty staged")  # values no stand-in has
keras_assets.save_h5(app, str(folder / "base.h5"), "keras")
model = keras.Sequential([keras.Input((96, 96, 3)), app, keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(2)])
(folder / "model.json").write_text(model.to_json())
(folder / "application.json").write_text(json.dumps({
    "application": [app.name], "weights_file": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5",
    "package": "keras", "module": "keras.src.applications.mobilenet_v2",
    "shapes": [list(v.shape) for v in model.weights]}))
n = len(model.weights)
np.savez(folder / "own.npz", **{f"w{n - 2}": model.weights[-2].numpy(), f"w{n - 1}": model.weights[-1].numpy()})
image = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
np.save(folder / "reference0.npy", image)
(folder / "request.json").write_text(json.dumps({"kind": "keras_application", "inputs": ["reference0"]}))
remeasure(str(folder / "request.json"), str(out))
from PIL import Image
x = keras.applications.mobilenet_v2.preprocess_input(np.asarray(Image.fromarray(image).resize((96, 96)), "float32")[None])
print(json.dumps({"expected": model.predict(x, verbose=0).tolist(), "got": np.load(out / "reference0.npy").tolist(),
                  "counts": np.load(out / "weights.npy").tolist()}))
'''


def test_a_staged_file_is_loaded_into_the_application_as_keras_loads_it(tmp_path):
    """The clean sandbox's own entry point on a request with base.h5 (a file in Keras' layout
    whose values no stand-in has) and a head of the program's own: the outputs are the model's."""
    folder, out = tmp_path / "request", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    (tmp_path / "make.py").write_text(REAL_FILE)
    done = subprocess.run([sys.executable, str(tmp_path / "make.py"), str(folder), str(out)], capture_output=True,
                          text=True, cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert np.allclose(result["got"], result["expected"], atol=1e-5) and np.shape(result["got"]) == (1, 2)
    parameters, from_file, near_file = result["counts"]
    assert parameters == from_file > 2_000_000 and near_file == 0
