"""Program 2 (a pretrained ResNet-50 classifies the student's own image), graded for real,
and pretrained weights served offline: stand-ins, staged real files, downloads refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import FIXTURES, PROJECT, check
from grader import data
from grader.cli_data import app as data_app
from grader.models import Status
from grader.pipeline import data_state, grade
from grader.probe import vision, weights
from grader.runners.local import LocalRunner
from grader.submissions import single_job

MANUAL = (FIXTURES / "manual" / "program2.py").read_text()
# The manual's program with its two printing slips fixed: the f-string quoted, and the
# placeholder path replaced by the student's image.
REPAIRED = (MANUAL.replace("print(fThe image is classified as: {predicted_class})",
                           "print(f'The image is classified as: {predicted_class}')")
            .replace("'/...../Path to Cat1.jpg'", "'cat.jpg'"))
RESNET_V1 = "resnet50-0676ba61.pth"


@pytest.fixture()
def grade_with_image(tmp_path, cache_dir, rubrics):
    """grade_with_image(source, image_name, cache=None): the program graded for real in the
    local sandbox, a drawn 320x240 image beside it under the name the program opens."""

    def run(source: str, image: str, cache: Path | None = None):
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "program2.py").write_text(source)
        vision.drawn_image(7, 320, 240)[0].save(folder / image)
        job = single_job(folder / "program2.py", 2, "20CSEL76", "quick")
        return grade(job, rubrics, LocalRunner(), cache or cache_dir, tmp_path / "artifacts")

    return run


def failed(result) -> list[tuple[str, str]]:
    return [(c.id, c.message) for c in result.checks if not c.passed and c.weight > 0]


# ---------------------------------------------------------------- graded for real


def test_manual_program2_as_printed_does_not_parse(grade_file):
    r = grade_file(FIXTURES / "manual" / "program2.py", 2)
    assert r.status == Status.error and r.status_message.startswith("SyntaxError")
    assert "(not run)" in r.status_message
    parses = check(r, "static.parses")
    assert not parses.passed and parses.evidence["line"] == MANUAL.count("\n")  # the last line
    assert "fThe image is classified as" in parses.message
    assert r.marks == {"writeup": 0, "execution": 0, "viva": None}


def test_manual_program2_repaired_scores_full_marks(grade_with_image):
    r = grade_with_image(REPAIRED, "cat.jpg")
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert "pretrained=True" in check(r, "vision.pretrained").message
    printed = check(r, "vision.prediction_printed")
    assert printed.evidence["label"] in ("cat", "dog") and printed.evidence["label"] in r.run.stdout


def test_reference_solution_scores_full_marks(grade_with_image):
    r = grade_with_image((PROJECT / "reference" / "program2" / "solution.py").read_text(), "cat.jpg")
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert r.dataset == f"pretrained weights {RESNET_V1} (synthetic stand-in)"
    assert "stand-in" in check(r, "vision.pretrained").message
    assert check(r, "vision.head").evidence["final"] == {"path": "fc", "class": "Linear",
                                                          "in_features": 2048, "out_features": 2}
    ref = r.run.trace["post_run"]["vision"]["results"][0]
    assert ref["origin"] == "drawn" and ref["output"]["shape"] == [1, 2]
    # the harness's own call on the reference image is not counted as the program's
    assert r.run.trace["torchvision"]["forward_calls"] == 1


def test_untrained_resnet_loses_the_good_band(grade_with_image):
    r = grade_with_image(REPAIRED.replace("resnet50(pretrained=True)", "resnet50(pretrained=False)"), "cat.jpg")
    assert r.status == Status.ok, r.status_message
    c = check(r, "vision.pretrained")
    assert not c.passed and "random weights" in c.message and "weights=" in c.hint
    assert [cid for cid, _ in failed(r)] == ["vision.pretrained"]
    assert r.marks["execution"] <= 9  # gated below Good
    assert r.run.trace["torchvision"]["weights"] == []  # nothing was served


def test_head_not_replaced_is_named(grade_with_image):
    src = REPAIRED.replace("model.fc = nn.Linear(num_features, 2)", "")
    r = grade_with_image(src, "cat.jpg")
    c = check(r, "vision.head")
    assert not c.passed and "still has 1000 outputs" in c.message and "not 2" in c.message
    assert "nn.Linear(model.fc.in_features, 2)" in c.hint
    assert r.marks["execution"] <= 9


FINE_TUNE = """for _ in range(2):
    optimizer.zero_grad()
    criterion(model(image), torch.tensor([0])).backward()
    optimizer.step()
"""


def test_fine_tuning_then_eval_passes_and_forgetting_eval_is_named(grade_with_image):
    tuned = grade_with_image(REPAIRED.replace("model.eval()", FINE_TUNE + "model.eval()"), "cat.jpg")
    assert tuned.status == Status.ok, tuned.status_message
    c = check(tuned, "vision.eval_mode")
    assert c.passed and c.message == "model.eval() was in force for the prediction (2 earlier call(s) in training mode)"
    forgot = grade_with_image(REPAIRED.replace("model.eval()", FINE_TUNE), "cat.jpg")
    c = check(forgot, "vision.eval_mode")
    assert not c.passed and c.message == "the prediction ran in training mode (2 earlier call(s) in training mode)"
    assert not check(forgot, "vision.steps").passed and forgot.marks["execution"] < 20


def test_weights_loaded_from_the_manuals_drive_path(grade_with_image):
    """The manual's commented-out line loads resnet50-0676ba61.pth from Google Drive with
    torch.load: the known file is served from the cache."""
    src = REPAIRED.replace(
        "model = models.resnet50(pretrained=True)",
        "model = models.resnet50()\nmodel.load_state_dict(torch.load("
        "'/content/drive/MyDrive/20CSEL76-LAB Programs/resnet50-0676ba61.pth'))")
    r = grade_with_image(src, "cat.jpg")
    assert r.status == Status.ok, r.status_message
    c = check(r, "vision.pretrained")
    assert c.passed and c.message.startswith(f"resnet50(), then pretrained weights {RESNET_V1} (synthetic stand-in")
    assert "loaded with torch.load" in c.message and "100% of the final model" in c.message
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}


def test_image_missing_from_the_submission(grade_with_image):
    r = grade_with_image(REPAIRED, "other.jpg")  # the program opens cat.jpg
    assert r.status == Status.error and "FileNotFoundError" in r.status_message
    assert not check(r, "vision.own_image").passed
    assert check(r, "vision.pretrained").passed  # what it did before the error still counts


# ---------------------------------------------------------------- weights served offline


def test_standin_has_torchvision_shapes_and_is_the_same_everywhere(tmp_path):
    from torchvision.models import resnet50

    a = weights.resolve(RESNET_V1, tmp_path / "a")
    b = weights.resolve(RESNET_V1, tmp_path / "b")
    assert a.source == "standin" and a.path.is_file() and "stand-in" in a.describe()
    sa, sb = torch.load(a.path, weights_only=True), torch.load(b.path, weights_only=True)
    expected = {k: v.shape for k, v in resnet50().state_dict().items()}
    assert {k: v.shape for k, v in sa.items()} == expected
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_unknown_weights_are_refused():
    with pytest.raises(weights.WeightsUnavailable, match="offline"):
        weights.resolve("resnet18-f37072fd.pth", "/nonexistent")


SERVE = """
import json, sys, torch, torchvision
from grader.probe import weights
served = []
weights.install(sys.argv[1], lambda s, url: served.append([s.file_name, s.source]))
model = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.DEFAULT)
out = {"served": served, "fc": model.fc.out_features}
for call in (lambda: torch.hub.download_url_to_file("https://example.org/x.pth", "x.pth"),
             lambda: torchvision.models.resnet18(weights="DEFAULT")):
    try:
        call()
    except weights.WeightsUnavailable as e:
        out.setdefault("refused", []).append(str(e))
print(json.dumps(out))
"""


def test_weights_are_served_from_the_cache_and_downloads_refused(tmp_path):
    done = subprocess.run([sys.executable, "-c", SERVE, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=PROJECT)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["served"] == [["resnet50-11ad3fa6.pth", "standin"]]  # DEFAULT is IMAGENET1K_V2
    assert out["fc"] == 1000
    assert len(out["refused"]) == 2 and "offline" in out["refused"][0] and "resnet18" in out["refused"][1]


# ---------------------------------------------------------------- staging real files


@pytest.fixture()
def weights_file(tmp_path, monkeypatch) -> Path:
    """A small file, and a catalogue entry named by its sha256 prefix as torch.hub names files."""
    path = tmp_path / "download.pth"
    torch.save({"w": torch.arange(6.0)}, path)
    prefix = data.file_digests(path)["sha256"][:8]
    name = f"resnet50-{prefix}.pth"
    monkeypatch.setitem(weights.CATALOGUE, name, weights.WeightsFile(
        name, "resnet50", "ResNet50_Weights.TEST", f"https://download.pytorch.org/models/{name}"))
    return path


def test_stage_verifies_the_hash_prefix(weights_file, tmp_path):
    cache = tmp_path / "cache"
    staged = data.stage_weights("resnet50", weights_file, cache)
    assert staged.verified and staged.file_name.startswith("resnet50-") and staged.path.is_file()
    assert staged.path.read_bytes() == weights_file.read_bytes()
    served = weights.resolve(staged.file_name, cache)
    assert (served.source, served.verified) == ("real", True)
    status = {s.file_name: s for s in data.weights_status(cache)}
    assert status[staged.file_name].staged and status[staged.file_name].verified
    assert not status[RESNET_V1].staged


def test_stage_rejects_a_wrong_hash(tmp_path):
    bad = tmp_path / RESNET_V1
    bad.write_bytes(b"not the weights")
    with pytest.raises(data.DataError, match="checksum mismatch.*resnet50-0676ba61.pth"):
        data.stage_weights("resnet50", bad, tmp_path / "cache")
    assert not (tmp_path / "cache" / "weights" / RESNET_V1).exists()
    with pytest.raises(data.DataError, match="unknown weights"):
        data.stage_weights("vgg16", bad, tmp_path / "cache")


def test_unverified_staging_needs_torchvision_name(tmp_path):
    renamed = tmp_path / "my_weights.pth"
    renamed.write_bytes(b"x")
    with pytest.raises(data.DataError, match="keep torchvision's file name"):
        data.stage_weights("resnet50", renamed, tmp_path / "cache", verify=False)


def test_cli_stage_and_status(weights_file, tmp_path):
    cache = tmp_path / "cache"
    runner = CliRunner()
    bad = tmp_path / RESNET_V1
    bad.write_bytes(b"not the weights")
    refused = runner.invoke(data_app, ["stage", "resnet50", str(bad), "--cache", str(cache)])
    assert refused.exit_code == 1 and "checksum mismatch" in refused.output
    ok = runner.invoke(data_app, ["stage", "resnet50", str(weights_file), "--cache", str(cache)])
    assert ok.exit_code == 0 and "verified: yes" in ok.output
    status = runner.invoke(data_app, ["status", "--cache", str(cache)])
    lines = [line for line in status.output.splitlines() if "resnet50-" in line]
    assert any("staged, verified" in line for line in lines)
    assert any(RESNET_V1 in line and "not staged" in line for line in lines)


def test_staged_weights_are_served_as_real_and_change_the_grade_key(grade_with_image, tmp_path, rubrics):
    """Faculty stage a file under torchvision's name without verification (here: the
    stand-in's bytes); the sandbox then serves it as the real file."""
    cache = tmp_path / "staged-cache"
    before = data_state(rubrics, 2, cache)
    standin = weights.resolve(RESNET_V1, tmp_path / "scratch").path
    renamed = tmp_path / RESNET_V1
    renamed.write_bytes(standin.read_bytes())
    data.stage_weights("resnet50", renamed, cache, verify=False)
    assert data_state(rubrics, 2, cache) != before
    r = grade_with_image(REPAIRED, "cat.jpg", cache=cache)
    assert r.status == Status.ok, r.status_message
    assert r.dataset == f"pretrained weights {RESNET_V1}"
    assert f"{RESNET_V1} (real)" in check(r, "vision.pretrained").message
    assert "stand-in" not in check(r, "vision.reference").message
    assert not (cache / "weights" / "standin").exists()  # nothing was made up


def test_drawn_reference_images_match_the_kept_pngs(rubrics):
    from PIL import Image
    import numpy as np

    for program in (2, 5):
        spec = rubrics.programs[program].probe["vision"]["images"][0]
        drawn, objects = vision.drawn_image(spec["seed"], spec["width"], spec["height"])
        kept = PROJECT / "reference" / f"program{program}" / f"{spec['name']}.png"
        assert np.array_equal(np.asarray(Image.open(kept)), np.asarray(drawn)), kept
        assert json.loads(kept.with_suffix(".json").read_text())["objects"] == objects
