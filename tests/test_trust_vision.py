"""Programs 2 and 5: the pretrained model the program ended with, re-run outside its process on
the host's reference images (grader/trusted_vision.py). Hostile programs that rewrite what the
probe records, swap in weights of their own or answer from a table of their own end with no
more marks than their real model earns, and a flag; the reference solutions keep full marks.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import PROJECT, check
from grader.models import Status
from grader.pipeline import grade
from grader.probe import vision
from grader.runners.local import LocalRunner
from grader.submissions import single_job
from grader.trusted import Refused
from grader.trusted_vision import check_torchvision

pytestmark = pytest.mark.slow

PROGRAM2 = (PROJECT / "reference" / "program2" / "solution.py").read_text()
PROGRAM5 = (PROJECT / "reference" / "program5" / "solution.py").read_text()
HEAD = "model.fc = nn.Linear(model.fc.in_features, len(CLASS_LABELS))\n"


@pytest.fixture()
def grade_with_image(tmp_path, cache_dir, rubrics):
    """grade_with_image(source, program, image): graded for real in the local sandbox, a drawn
    image beside the program under the name it opens."""

    def run(source: str, program: int, image: str, rubrics=rubrics):
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / f"program{program}.py").write_text(source)
        vision.drawn_image(7, 320, 240)[0].save(folder / image)
        job = single_job(folder / f"program{program}.py", program, "20CSEL76", "quick")
        return grade(job, rubrics, LocalRunner(), cache_dir, tmp_path / "artifacts")

    return run


def trusted(result):
    found = [t for t in result.run.trusted if t.framework == "torchvision"]
    assert found, result.run.trace.get("exports")
    return found[-1]


def flagged(result, words: str) -> bool:
    return any(words in f for f in result.flags)


# ---------------------------------------------------------------- honest programs


def test_reference_program2_is_re_measured_with_full_marks(grade_with_image):
    r = grade_with_image(PROGRAM2, 2, "cat.jpg")
    assert r.status == Status.ok and r.marks == {"writeup": 5, "execution": 20, "viva": None}, r.flags
    t = trusted(r)
    assert t.error is None and t.kind == "torchvision_state"
    assert [o.shape for o in t.reference] == [[1, 2]] and t.weights.share > 0.99
    # only the replaced head travelled: the pretrained tensors are the host's copy of the file
    files = r.run.trace["exports"][0]["files"]
    assert files["own.npz"]["bytes"] < 100_000
    inside = r.run.trace["post_run"]["vision"]["results"][0]["output"]["argmax"]
    assert t.reference[0].argmax == inside and not r.flags
    assert len(r.run.trace["torchvision"]["models"]) == 1  # the export's own build is not the program's
    assert "clean sandbox" in check(r, "vision.reference").evidence["source"]


def test_reference_program5_is_re_measured_with_full_marks(grade_with_image, rubrics):
    """With the cross-check on, the export reproduces the detector the program ran."""
    cross_checked = rubrics.model_copy(deep=True)
    cross_checked.programs[5].probe["vision"]["cross_check"] = True
    r = grade_with_image(PROGRAM5, 5, "street.jpg", rubrics=cross_checked)
    assert r.status == Status.ok and r.marks == {"writeup": 5, "execution": 20, "viva": None}, r.flags
    t = trusted(r)
    assert t.error is None and t.weights.from_file == t.weights.parameters > 0
    inside = r.run.trace["post_run"]["vision"]["results"][0]["output"]["images"][0]
    assert t.reference[0].detections["count"] == inside["count"] and not r.flags


PLANTED_PICTURE = """
import importlib, sys
from PIL import Image
session, probe_vision = sys.modules["grader.probe.session"].CURRENT, importlib.import_module("grader.probe.vision")
Image.new("RGB", (320, 240)).save(session.config["artifacts_dir"] + "/reference_detections1.png")
probe_vision.outside_only = lambda *a: False  # the reference run forced back in
probe_vision.run_model = lambda *a: {"output": {"kind": "detections", "images": [
    {"boxes_shape": [0, 4], "count": 0, "boxes": [], "labels": [], "scores": [], "labels_dtype": "torch.int64"}]}}
"""


def test_detector_judged_and_drawn_outside_whatever_its_process_says(grade_with_image, tmp_path):
    """Program 5's rubric leaves the reference image to the clean sandbox: a program that plants
    a black picture under the reference picture's name and forces an in-process run that finds
    nothing is judged, and drawn, on the model it exported."""
    r = grade_with_image(PROGRAM5 + PLANTED_PICTURE, 5, "street.jpg")
    assert r.run.trace["post_run"]["vision"]["results"][0]["output"]["images"][0]["count"] == 0  # the forgery
    t = trusted(r)
    assert t.error is None and t.reference[0].detections["count"] > 0
    ref = check(r, "vision.reference")
    assert ref.passed and f"{t.reference[0].detections['count']} detection(s)" in ref.message, ref.message
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert ref.evidence["in_process"].startswith("not run in the program's process")
    picture = np.asarray(Image.open(tmp_path / "artifacts" / "reference_detections1.png").convert("RGB"))
    red = (picture == [255, 0, 0]).all(axis=-1).sum()
    assert red > 100, red  # the host's drawing of the re-measured boxes, not the planted black nor the forgery's


def test_a_head_of_the_programs_own_making_travels_whole(grade_with_image):
    """nn.Sequential(Dropout, Linear) is no head resnet50() builds: the module goes as a .pt2."""
    r = grade_with_image(PROGRAM2.replace(HEAD, "model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(2048, 2))\n"),
                         2, "cat.jpg")
    t = trusted(r)
    assert t.error is None and t.kind == "torchvision_pt2" and t.reference[0].shape == [1, 2]
    assert t.weights.share == 1.0 and t.weights.parameters > 23_000_000  # the file's tensors (its fc aside)
    assert r.marks["execution"] == 20, [(c.id, c.message) for c in r.checks if not c.passed]


# ---------------------------------------------------------------- hostile programs

NOT_REPLACED = PROGRAM2.replace(HEAD, "").replace("CLASS_LABELS[predicted]", "CLASS_LABELS[predicted % 2]")

FORGED_FROM_SYS_MODULES = NOT_REPLACED + """
import importlib, sys
hooks, probe_vision = sys.modules["grader.probe.torchvision_hooks"], importlib.import_module("grader.probe.vision")
measure = hooks.TorchvisionProbe.measure
def forged(self):
    measure(self)
    for rec in self.record["models"]:
        rec["final"]["head"].update(out_features=2)
        rec["final"]["head_replaced"] = True
hooks.TorchvisionProbe.measure = forged
probe_vision.run_model = lambda *a: {"output": {"kind": "tensor", "shape": [1, 2], "argmax": [0], "finite": True}}
"""


def test_head_and_reference_outputs_forged_from_sys_modules(grade_with_image):
    """A 1000-class head described as 2-class, and the reference run answered by the program."""
    r = grade_with_image(FORGED_FROM_SYS_MODULES, 2, "cat.jpg")
    assert r.status == Status.ok, r.status_message
    assert r.run.trace["post_run"]["vision"]["results"][0]["output"]["shape"] == [1, 2]  # the forgery, in process
    head, ref = check(r, "vision.head"), check(r, "vision.reference")
    assert not head.passed and "gives 1000 outside it" in head.message, head.message
    assert not ref.passed and "expected [1, 2]" in ref.message, ref.message
    assert r.marks["execution"] <= 9 and flagged(r, "the re-measured outputs count")


def test_forward_answering_from_a_table(grade_with_image):
    """The program's own forward answers two classes from a table; the model it exports cannot."""
    r = grade_with_image(NOT_REPLACED.replace("model.eval()", """import types
TABLE = {0: torch.tensor([[0.1, 0.9]])}
model.forward = types.MethodType(lambda self, x: TABLE[0].expand(len(x), 2), model)
model.eval()"""), 2, "cat.jpg")
    assert r.run.trace["post_run"]["vision"]["results"][0]["output"]["shape"] == [1, 2]
    ref = check(r, "vision.reference")
    assert not ref.passed and "[1, 1000]" in ref.message, ref.message
    assert flagged(r, "the re-measured outputs count") and r.marks["execution"] <= 9


def test_weights_swapped_after_loading(grade_with_image):
    r = grade_with_image(PROGRAM2.replace("model.eval()", """for p in model.parameters():
    torch.nn.init.normal_(p, std=0.02)
model.eval()"""), 2, "cat.jpg")
    pretrained = check(r, "vision.pretrained")
    assert r.run.trace["torchvision"]["models"][0]["loaded"]  # the process saw the file served
    assert not pretrained.passed and "served file's" in pretrained.message, pretrained.message
    assert trusted(r).weights.share < 0.1
    assert r.marks["execution"] <= 9 and flagged(r, "recorded pretrained weights")


def test_detector_whose_record_claims_pretrained_weights(grade_with_image):
    """An untrained Faster R-CNN whose trace is rewritten (through gc) to say the COCO file was loaded."""
    untrained = PROGRAM5.replace("fasterrcnn_resnet50_fpn(weights=weights)",
                                 "fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)")
    r = grade_with_image(untrained + """
import gc
for obj in gc.get_objects():
    if type(obj).__name__ == "Trace":
        original = type(obj).save
        def save(self, original=original):
            for rec in (self.data.get("torchvision") or {}).get("models", []):
                if not rec["loaded"]:
                    rec["loaded"].append({"file": "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", "source": "standin",
                                          "model": "fasterrcnn", "for_model": 0})
            original(self)
        type(obj).save = save
        break
""", 5, "street.jpg")
    pretrained = check(r, "vision.pretrained")
    assert not pretrained.passed and "served file's" in pretrained.message, pretrained.message
    assert r.marks["execution"] <= 9 and flagged(r, "recorded pretrained weights")


# ---------------------------------------------------------------- exports that fail


def test_export_that_fails_or_is_too_large_keeps_the_other_results(grade_with_image):
    no_head = grade_with_image(NOT_REPLACED.replace("model.eval()", "model.fc = nn.Identity()\nmodel.eval()"), 2,
                               "cat.jpg")
    ref = check(no_head, "vision.reference")
    assert "not re-measured" in ref.message and "head could not be described" in ref.message, ref.message
    assert check(no_head, "run.completes").passed and check(no_head, "vision.own_image").passed
    assert flagged(no_head, "faculty review") and no_head.marks["writeup"] == 5

    big = grade_with_image(NOT_REPLACED.replace("models.resnet50(weights=ResNet50_Weights.IMAGENET1K_V1)",
                                            "models.vgg16(weights=None)")
                           .replace("model.eval()", "model.classifier[6] = nn.Linear(4096, 2)\nmodel.eval()"), 2,
                           "cat.jpg")
    ref = check(big, "vision.reference")
    assert "larger than 256 MB" in ref.message, ref.message
    assert check(big, "run.completes").passed and check(big, "vision.head").passed


# ---------------------------------------------------------------- the host's file checks (no sandbox)


def write_export(folder, spec, arrays):
    (folder / "model.json").write_text(json.dumps(spec))
    np.savez(folder / "own.npz", **arrays)


SPEC = {"factory": "resnet50", "task": "classification", "num_classes": 2, "weights_file": "resnet50-0676ba61.pth",
        "keys": ["fc.weight", "fc.bias"]}


def test_torchvision_export_checks(tmp_path):
    write_export(tmp_path, SPEC, {"fc.weight": np.zeros((2, 4), np.float32)})
    assert check_torchvision(tmp_path, "torchvision_state")["factory"] == "resnet50"
    for bad, words in ((dict(SPEC, weights_file="my-own.pth"), "does not serve"),
                       (dict(SPEC, factory="os.system"), "plain values"),
                       (dict(SPEC, num_classes=2.5), "plain values"),
                       (dict(SPEC, keys=["../x"]), "plain names"),
                       (dict(SPEC, code="print()"), "expected one")):
        write_export(tmp_path, bad, {})
        with pytest.raises(Refused, match=words):
            check_torchvision(tmp_path, "torchvision_state")
    write_export(tmp_path, SPEC, {"other": np.zeros(2)})
    with pytest.raises(Refused, match="other entries"):
        check_torchvision(tmp_path, "torchvision_state")
    with zipfile.ZipFile(tmp_path / "model.pt2", "w") as z:
        z.writestr("m/data.pkl", b"\x80\x04 a pickle")
    with pytest.raises(Refused, match="without other files"):
        check_torchvision(tmp_path, "torchvision_pt2")
    (tmp_path / "own.npz").unlink()
    with pytest.raises(Refused):
        check_torchvision(tmp_path, "torchvision_pt2")
