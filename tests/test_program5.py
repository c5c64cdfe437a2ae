"""Program 5 (object detection with a pretrained Faster R-CNN), graded for real: the
manual's Colab program runs unchanged, the reference solution, a detector left in training
mode, a classifier instead of a detector, detections never computed; and the judgement of
detections (well-formed boxes, known objects only with real weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, PROJECT, check
from grader.harness.registry import Context
from grader.harness.vision_checks import detection_problems, known_objects
from grader.models import Job, RunRecord, StaticReport, Status
from grader.pipeline import grade
from grader.probe import vision
from grader.runners.local import LocalRunner
from grader.submissions import single_job

MANUAL = (FIXTURES / "manual" / "program5.py").read_text()
FASTER_RCNN = "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"


@pytest.fixture()
def grade_with_image(tmp_path, cache_dir, rubrics):
    """grade_with_image(source, image_name): graded for real in the local sandbox, a drawn
    320x240 JPEG beside the program under the name it opens."""

    def run(source: str, image: str):
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "program5.py").write_text(source)
        vision.drawn_image(11, 320, 240)[0].save(folder / image)
        job = single_job(folder / "program5.py", 5, "20CSEL76", "quick")
        return grade(job, rubrics, LocalRunner(), cache_dir, tmp_path / "artifacts")

    return run


def failed(result) -> list[str]:
    return [c.id for c in result.checks if not c.passed and c.weight > 0]


@pytest.mark.slow
def test_manual_program5_runs_unchanged_in_the_sandbox(grade_with_image, tmp_path):
    r = grade_with_image(MANUAL, "cat_dog.jpg")
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    notes = " ".join(r.run.trace["notes"])
    assert "drive.mount() was skipped" in notes and "cat_dog.jpg" in notes
    assert r.dataset == f"pretrained weights {FASTER_RCNN} (synthetic stand-in)"
    # cv2.imread read the Drive path too, and the annotated image was kept
    readers = {i["reader"] for i in r.run.trace["torchvision"]["images"]}
    assert readers == {"PIL.Image.open", "cv2.imread"}
    assert {"cv2_imshow1.png", "reference_detections1.png"} <= set(r.run.artifacts)
    assert (tmp_path / "artifacts" / "cv2_imshow1.png").stat().st_size > 1000
    known = check(r, "vision.known_objects")
    assert known.passed and known.weight == 0 and known.message.startswith("not judged: stand-in weights")


@pytest.mark.slow
def test_reference_solution_scores_full_marks(grade_with_image):
    r = grade_with_image((PROJECT / "reference" / "program5" / "solution.py").read_text(), "street.jpg")
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    valid = check(r, "vision.detections_valid")
    assert valid.evidence["image"] == [3, 240, 320] and valid.evidence["count"] > 0
    # the reference image ran once, outside the program (the rubric's cross_check is off);
    # the host drew the boxes that counted
    post = r.run.trace["post_run"]["vision"]
    assert post["task"] == "detection" and post["results"] == [] and post["cross_check"] is False
    assert "reference_detections1.png" in r.run.artifacts  # drawn by the host, not by the program's process
    assert not any(f.startswith("reference_detections") for f in r.run.trace["figures"])
    assert check(r, "vision.reference").evidence["in_process"].startswith("not run in the program's process")


def test_detector_left_in_training_mode(grade_with_image):
    r = grade_with_image(MANUAL.replace("model.eval()", "pass"), "cat_dog.jpg")
    assert r.status == Status.error and "targets should not be none when in training mode" in r.status_message
    c = check(r, "vision.eval_mode")
    assert not c.passed and c.message == "the prediction ran in training mode and failed"
    assert "model.eval()" in c.hint
    assert r.marks["execution"] <= 4  # a program that does not run stays below Satisfactory


CLASSIFIER = """
import torch
from PIL import Image
from torchvision import models, transforms

model = models.resnet50(weights=models.ResNet50_Weights.DEFAULT)
model.eval()
image = transforms.Compose([transforms.Resize(256), transforms.ToTensor()])(Image.open("cat_dog.jpg"))
with torch.no_grad():
    scores = model(image.unsqueeze(0))
print("detected class:", scores.argmax(1).item())
"""


def test_a_classifier_is_not_a_detector(grade_with_image):
    r = grade_with_image(CLASSIFIER, "cat_dog.jpg")
    assert r.status == Status.ok, r.status_message
    model = check(r, "vision.model")
    assert not model.passed and "resnet50 (classification)" in model.message and "fasterrcnn" in model.hint
    assert "no detections were computed" in check(r, "vision.detections_valid").message
    assert not check(r, "vision.boxes_drawn").passed
    assert r.marks["execution"] <= 9  # gated below Good


@pytest.mark.slow
def test_detections_never_computed(grade_with_image):
    cut = MANUAL.index("print(\"test_image_tensor: \\n\"")
    r = grade_with_image(MANUAL[:cut], "cat_dog.jpg")  # stops after making the tensor
    assert r.status == Status.ok, r.status_message
    own = check(r, "vision.own_image")
    assert not own.passed and "never completed a call" in own.message
    assert not check(r, "vision.detections_valid").passed
    assert "draws no boxes" in check(r, "vision.boxes_drawn").message
    # the harness still runs the final model on its reference image
    assert check(r, "vision.reference").passed
    assert set(failed(r)) == {"static.steps", "vision.eval_mode", "vision.own_image", "vision.detections_valid",
                             "vision.boxes_drawn"}


# ---------------------------------------------------------------- judging detections


def test_detection_problems_are_named():
    good = {"boxes_shape": [2, 4], "boxes": [[1, 2, 30, 40], [5, 5, 9, 9]], "labels_dtype": "torch.int64",
            "labels": [17, 18], "scores": [0.9, 0.4]}
    assert detection_problems(good, 240, 320) == []
    bad = dict(good, boxes=[[30, 2, 1, 40], [5, 5, 400, 9]], labels_dtype="torch.float32", scores=[0.4, 0.9])
    problems = " | ".join(detection_problems(bad, 240, 320))
    assert "x1 < x2" in problems and "outside the 320x240 image" in problems
    assert "not one integer per box" in problems and "not sorted" in problems
    assert detection_problems(dict(good, boxes_shape=[2, 5]), 240, 320) == ["boxes have shape [2, 5], not N x 4"]
    assert "[0, 1]" in detection_problems(dict(good, scores=[1.5, 0.2]), 240, 320)[0]


def context_with(trace: dict, rubrics) -> Context:
    job = Job(student="s", program=5, course="20CSEL76", folder=Path("."))
    return Context(job=job, rubric=rubrics.programs[5], static=StaticReport(parses=True),
                   run=RunRecord(status=Status.ok, trace=trace))


def test_known_objects_judged_only_with_real_weights_and_a_photo(rubrics):
    photo = {"image": "street.jpg", "origin": "photo", "size": [320, 240],
             "objects": [{"box": [10, 10, 110, 110], "label": "dog"}, {"box": [200, 50, 300, 150], "label": "cat"}],
             "output": {"kind": "detections", "images": [{"boxes": [[12, 8, 108, 112], [0, 0, 20, 20]]}]}}
    served = {"file": FASTER_RCNN, "source": "real", "model": "fasterrcnn", "for_model": 0}
    trace = {"torchvision": {"models": [{"index": 0, "factory": "fasterrcnn_resnet50_fpn", "task": "detection",
                                         "loaded": [served]}], "weights": [served]},
             "post_run": {"vision": {"model": 0, "task": "detection", "results": [photo]}}}
    real = known_objects(context_with(trace, rubrics), {"iou": 0.5})
    assert not real.passed and real.score == 0.5 and real.message == "1 of 2 known object(s) found with IoU ≥ 0.5"
    served["source"] = "standin"
    standin = known_objects(context_with(trace, rubrics), {})
    assert standin.passed and standin.message.startswith("not judged: stand-in weights")
    served["source"] = "real"
    photo["origin"] = "drawn"
    drawn = known_objects(context_with(trace, rubrics), {})
    assert drawn.passed and "no annotated reference photo" in drawn.message
