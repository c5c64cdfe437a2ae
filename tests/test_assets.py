"""Assets a program asks the internet for, served offline: keras.applications weights and
the ImageNet class index, NLTK data and spaCy pipelines, Colab's files.upload()/download();
what is neither staged nor has a stand-in ends the job with what to stage. Graded for real
in the local sandbox, with real Keras, NLTK and spaCy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, check
from grader.models import Status
from grader.pipeline import grade
from grader.runners.local import LocalRunner
from grader.submissions import single_job

CASES = Path(__file__).parent / "fixtures" / "cases"  # a copy of the project's cases, one per kind of fault


@pytest.fixture()
def grade_folder(tmp_path, cache_dir, rubrics):
    """grade_folder(program, entry_name, source_or_path, *extra_files, cache=None): the
    program graded for real in the local sandbox, with the extra files beside it."""

    def run(program: int, name: str, source, *extra: Path, cache: Path | None = None):
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        entry = folder / name
        if isinstance(source, Path):
            shutil.copy(source, entry)
        else:
            entry.write_text(source)
        for path in extra:
            shutil.copy(path, folder / path.name)
        job = single_job(entry, program, "20CSEL76", "quick")
        return grade(job, rubrics, LocalRunner(), cache or cache_dir, tmp_path / "artifacts")

    return run


def failed(result) -> list[tuple[str, str]]:
    return [(c.id, c.message) for c in result.checks if not c.passed and c.weight > 0]


# ---------------------------------------------------------------- keras.applications


def test_case_p2_keras_applications_is_good_on_standin_weights(grade_folder):
    r = grade_folder(2, "program2.py", CASES / "p2_keras_applications.py", CASES / "street.jpg")
    assert r.status == Status.ok, r.status_message
    assert failed(r) == []
    assert r.marks["writeup"] >= 4 and r.marks["execution"] >= 10  # Good in both
    pretrained = check(r, "vision.pretrained")
    assert "ResNet50(weights=imagenet" in pretrained.message and "stand-in" in pretrained.message
    assert "decode_predictions" in check(r, "vision.head").message
    printed = check(r, "vision.prediction_printed")
    assert printed.evidence["label"].startswith("standin_class_") and printed.evidence["label"] in r.run.stdout
    assert "street.jpg" in check(r, "vision.own_image").message
    dataset = r.run.trace["dataset"]
    assert dataset["source"] == "standin" and "synthetic stand-in" in dataset["description"]
    served = r.run.trace["keras_applications"]["files"]
    assert [(f["file"], f["source"]) for f in served] == [("imagenet_class_index.json", "standin")]


# ---------------------------------------------------------------- Colab's files


def test_case_p5_colab_upload_runs_on_the_submissions_photo(grade_folder):
    r = grade_folder(5, "program5.ipynb", CASES / "p5_colab_upload.ipynb", CASES / "street.jpg")
    assert r.status == Status.ok, r.status_message
    assert "uploaded street.jpg" in r.run.stdout
    notes = r.run.trace["notes"]
    assert any("files.upload() returned the submission's own files: street.jpg" in n for n in notes)
    assert r.run.trace["downloads"] == ["download_result.jpg"]
    assert "download_result.jpg" in r.run.trace["figures"]
    assert check(r, "vision.own_image").passed and check(r, "vision.boxes_drawn").passed
    assert r.marks["execution"] >= 10


# ---------------------------------------------------------------- further members of the kind


KERAS_SERVED = """
import json, sys
from pathlib import Path
import keras
from grader.probe import keras_assets
from grader.probe.shims import AssetNotServed
from grader.probe.trace import Trace
trace = Trace(Path(sys.argv[1]) / "trace.json")
keras_assets.install(trace, ("keras",), cache_dir=sys.argv[2], scratch=Path(sys.argv[1]) / "scratch")
from keras.applications import VGG16
first = VGG16(include_top=False, weights="imagenet", input_shape=(64, 64, 3))
again = VGG16(include_top=False, weights="imagenet", input_shape=(64, 64, 3))
bare = VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))
out = {"same": all(bool((a.numpy() == b.numpy()).all()) for a, b in zip(first.weights, again.weights)),
       "shapes": [list(w.shape) for w in first.weights] == [list(w.shape) for w in bare.weights],
       "record": trace["keras_applications"]["weights"], "refused": []}
for call in (lambda: keras.datasets.fashion_mnist.load_data(),
             lambda: keras.utils.get_file("flower_photos.tgz", "https://example.org/flower_photos.tgz"),
             lambda: keras.applications.imagenet_utils.decode_predictions(__import__("numpy").ones((1, 1000)))):
    try:
        call()
    except AssetNotServed as e:
        out["refused"].append(str(e))
print(json.dumps(out))
"""


def run_keras_served(tmp_path: Path, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", KERAS_SERVED, str(tmp_path), str(cache)], capture_output=True,
                          text=True, timeout=300, cwd=PROJECT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_vgg16_without_top_gets_seeded_standin_weights_and_unknown_files_are_named(tmp_path):
    out = run_keras_served(tmp_path, tmp_path / "cache")
    assert out["same"] and out["shapes"]  # seeded: the same file twice, the architecture's shapes
    files = [(w["file"], w["source"], w["model"]) for w in out["record"]]
    assert files == [("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "standin", "VGG16")] * 2
    assert (tmp_path / "cache" / "keras" / "standin" / "v1" / "keras" / files[0][0]).is_file()
    fashion, flowers = out["refused"]
    assert fashion.startswith("the program asks for train-labels-idx1-ubyte.gz (https://")
    assert "from the internet; stage it with `grader data stage train-labels-idx1-ubyte.gz FILE`" in fashion
    assert "`grader data stage flower_photos.tgz FILE`" in flowers


def test_staged_class_index_is_checked_against_the_checksum_keras_knows(tmp_path):
    from typer.testing import CliRunner

    from grader.cli_data import app as data_app

    fake = tmp_path / "imagenet_class_index.json"
    fake.write_text(json.dumps({str(i): [f"n{i:08d}", f"thing{i}"] for i in range(1000)}))
    cache = tmp_path / "cache"
    runner = CliRunner()
    refused = runner.invoke(data_app, ["stage", "imagenet_class_index.json", str(fake), "--cache", str(cache)])
    assert refused.exit_code == 1 and "checksum mismatch" in refused.output
    assert "neither its md5" in refused.output and not (cache / "files" / fake.name).exists()
    staged = runner.invoke(data_app, ["stage", "imagenet_class_index.json", str(fake), "--no-verify",
                                      "--cache", str(cache)])
    assert staged.exit_code == 0 and "verified: NO" in staged.output, staged.output
    status = runner.invoke(data_app, ["status", "--cache", str(cache)])
    assert "imagenet_class_index.json" in status.output and "staged, NOT verified" in status.output
    out = run_keras_served(tmp_path, cache)  # decode_predictions reads the staged file: not Keras' own
    assert "does not match the checksum Keras knows" in out["refused"][2]


NLP_PROGRAM = """import nltk
import spacy
from nltk.corpus import stopwords
nltk.download('punkt')
nltk.download('stopwords')
words = nltk.word_tokenize("Hello there, Dr. Smith. The bot is ready!")
print("tokens", words)
print("stop", [w for w in words if w.lower() in stopwords.words('english')])
nlp = spacy.load("en_core_web_sm")
print("sentences", [s.text for s in nlp("Hi there. How are you?").sents])
"""


def test_nltk_and_spacy_data_are_served_and_labelled_as_standins(grade_file):
    r = grade_file(NLP_PROGRAM, 7)
    assert r.status == Status.ok, r.status_message
    assert "tokens ['Hello', 'there', ',', 'Dr.', 'Smith', '.', 'The', 'bot', 'is', 'ready', '!']" in r.run.stdout
    assert "stop ['there', 'The', 'is']" in r.run.stdout
    assert "sentences ['Hi there.', 'How are you?']" in r.run.stdout
    served = {(a["kind"], a["name"], a["source"]) for a in r.run.trace["nlp_assets"]}
    assert served == {("NLTK", "punkt", "standin"), ("NLTK", "stopwords", "standin"),
                      ("spaCy", "en_core_web_sm", "standin")}
    assert "synthetic stand-in" in r.run.trace["dataset"]["description"]


def test_what_is_not_served_ends_the_job_with_what_to_stage(grade_file):
    src = ("import nltk\nnltk.download('brown')\n")
    r = grade_file(src, 7)
    assert r.status == Status.error
    assert "the program asks for NLTK's 'brown' data from the internet; stage it with " \
           "`grader data stage nltk:brown FILE`" in r.status_message
    src = "import urllib.request\nurllib.request.urlretrieve('https://example.org/data/glove.6B.zip', 'g.zip')\n"
    r = grade_file(src, 7)
    assert r.status == Status.error and "URLError" not in r.status_message
    assert "the program asks for https://example.org/data/glove.6B.zip from the internet; " \
           "stage it with `grader data stage glove.6B.zip FILE`" in r.status_message


def test_staged_nltk_package_is_served_as_real(tmp_path):
    import zipfile

    from typer.testing import CliRunner

    from grader.cli_data import app as data_app
    from grader.probe import nlp_assets
    from grader.probe.trace import Trace

    package = tmp_path / "stopwords.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("stopwords/english", "alpha\nbeta\n")
    cache = tmp_path / "cache"
    result = CliRunner().invoke(data_app, ["stage", "nltk:stopwords", str(package), "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(data_app, ["status", "--cache", str(cache)])
    assert any(line.split()[:2] == ["nltk", "stopwords"] and "staged" in line for line in status.output.splitlines())
    import nltk

    trace = Trace(tmp_path / "trace.json")
    assets = nlp_assets.NlpAssets(trace, cache, scratch=tmp_path / "scratch")
    assets.install_nltk(nltk)
    try:
        assert nltk.download("stopwords", quiet=True) is True
        from nltk.corpus import stopwords

        assert stopwords.words("english") == ["alpha", "beta"]
        assert trace["nlp_assets"] == [{"kind": "NLTK", "name": "stopwords", "source": "real"}]
    finally:
        nltk.data.path.remove(str(cache / "nltk_data"))


def test_colab_upload_gives_pictures_first_and_never_an_empty_file(tmp_path):
    from grader.probe.colab import submission_files

    (tmp_path / "program5.ipynb").write_text("{}")
    (tmp_path / "a_notes.txt").write_text("notes")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "street.jpg").write_bytes(b"\xff\xd8 a picture")
    assert list(submission_files(tmp_path)) == ["street.jpg", "a_notes.txt"]
