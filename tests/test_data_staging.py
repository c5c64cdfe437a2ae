"""Staging the real dataset files faculty downloaded (host side) and the `data` CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from grader import data
from grader.cli_data import app
from grader.data import DataError, stage, status
from grader.probe import provider

CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def _batch(n: int, offset: int) -> dict:
    """A CIFAR batch as the official pickles hold it: rows are R plane, G plane, B plane."""
    rng = np.random.default_rng(offset)
    rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in (np.arange(n) + offset) % 10],
        b"data": rows,
        b"filenames": [f"img_{offset + i}.png".encode() for i in range(n)],
    }


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def make_cifar_tarball(path: Path, *, train_sizes=(4, 3, 4, 2, 5), test_size=6, skip=()):
    """A tiny tarball in the exact cifar-10-python.tar.gz layout. Returns the batches."""
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        offset = 0
        for i, n in enumerate(train_sizes, start=1):
            batches[f"data_batch_{i}"] = _batch(n, offset)
            offset += n
        batches["test_batch"] = _batch(test_size, 1000)
        for name, batch in batches.items():
            if name not in skip:
                _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
        # Other members of the real archive: never unpickled. This one would fail if it were.
        _add(tar, "cifar-10-batches-py/batches.meta", b"\x80\x02cno_such_module\ntrap\nq\x00.")
        _add(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
    return batches


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def tarball(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    batches = make_cifar_tarball(path)
    return path, batches


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


# ------------------------------------------------------------------------------ cifar10


def test_stage_cifar10_layout_and_channel_order(tarball, cache):
    path, batches = tarball
    staged = stage("cifar10", path, cache, verify=False)
    assert staged.path == cache / "datasets" / "cifar10.npz"
    assert (staged.n_train, staged.n_test) == (18, 6)
    assert staged.verified is False
    assert staged.sha256 == hashlib.sha256(staged.path.read_bytes()).hexdigest()
    assert staged.path.stat().st_mode & 0o777 == 0o644  # readable by the sandbox's user

    with np.load(staged.path, allow_pickle=False) as z:
        assert sorted(z.files) == ["x_test", "x_train", "y_test", "y_train"]
        x_train, y_train = z["x_train"], z["y_train"]
        x_test, y_test = z["x_test"], z["y_test"]
    assert x_train.shape == (18, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (18, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (6, 32, 32, 3) and y_test.shape == (6, 1)

    # batches 1..5 in order, then pixel (row, col, channel) = row of the channel-first data
    rows = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    labels = np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    assert (y_train[:, 0] == labels).all()
    for i, r, c, ch in [(0, 0, 0, 0), (0, 0, 0, 2), (5, 3, 7, 1), (17, 31, 30, 2), (9, 16, 0, 0)]:
        assert x_train[i, r, c, ch] == rows[i, ch * 1024 + r * 32 + c]
    assert (x_train == rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)).all()
    test_rows = batches["test_batch"][b"data"]
    assert (x_test[2, :, :, 1] == test_rows[2, 1024:2048].reshape(32, 32)).all()
    assert (y_test[:, 0] == batches["test_batch"][b"labels"]).all()


def test_stage_writes_manifest(tarball, cache):
    path, _ = tarball
    staged = stage("cifar10", path, cache, verify=False)
    manifest = json.loads((cache / "datasets" / "manifest.json").read_text())
    entry = manifest["cifar10"]
    assert entry["verified"] is False
    assert entry["sha256"] == staged.sha256
    assert entry["source_file"] == "cifar-10-python.tar.gz"
    assert entry["source_checksum"] == f"md5:{_md5(path)}"
    assert entry["staged_at"]
    assert not [p for p in (cache / "datasets").iterdir() if p.name.endswith(".tmp")]


def test_checksum_mismatch_names_expected_and_actual(tarball, cache):
    path, _ = tarball
    with pytest.raises(DataError) as err:
        stage("cifar10", path, cache)
    message = str(err.value)
    assert str(path) in message
    assert CIFAR_MD5 in message
    assert _md5(path) in message
    assert "cifar-10-python.tar.gz" in message and "https://www.cs.toronto.edu" in message
    assert not (cache / "datasets" / "cifar10.npz").exists()
    assert not (cache / "datasets" / "manifest.json").exists()


def test_matching_checksum_is_recorded_as_verified(tarball, cache, monkeypatch):
    path, _ = tarball
    src = data.SOURCES["cifar10"]
    monkeypatch.setitem(data.SOURCES, "cifar10", dataclasses.replace(src, digest=_md5(path)))
    staged = stage("cifar10", path, cache)
    assert staged.verified is True
    assert {s.name: s.verified for s in status(cache)} == {"cifar10": True, "mnist": None, "imdb": None,
                                                           "imdb_word_index": None}


def test_missing_file(cache, tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        stage("cifar10", tmp_path / "nowhere.tar.gz", cache)
    assert "cifar-10-python.tar.gz" in str(err.value)
    with pytest.raises(DataError, match="directory"):
        stage("mnist", tmp_path, cache)


def test_unknown_name(tarball, cache):
    path, _ = tarball
    with pytest.raises(DataError, match="unknown dataset 'fashion'"):
        stage("fashion", path, cache)
    assert data.canonical_name("CIFAR-10") == "cifar10"


def test_tarball_missing_a_batch(tmp_path, cache):
    path = tmp_path / "cifar-10-python.tar.gz"
    make_cifar_tarball(path, skip=("test_batch",))
    with pytest.raises(DataError, match="test_batch"):
        stage("cifar10", path, cache, verify=False)
    assert not (cache / "datasets" / "cifar10.npz").exists()


def test_not_a_tarball(tmp_path, cache):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match="not a readable tar archive"):
        stage("cifar10", path, cache, verify=False)


def test_foreign_objects_in_a_batch_are_refused(tmp_path, cache):
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            _add(tar, f"cifar-10-batches-py/data_batch_{i}", pickle.dumps(_batch(2, i), protocol=2))
        # loads the global os.system (without calling it) if anything but arrays were allowed
        _add(tar, "cifar-10-batches-py/test_batch", b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(DataError, match="refused"):
        stage("cifar10", path, cache, verify=False)
    assert not (cache / "datasets").exists() or not list((cache / "datasets").iterdir())


def test_failed_restage_keeps_the_earlier_file(tarball, cache, tmp_path):
    path, _ = tarball
    first = stage("cifar10", path, cache, verify=False)
    before = first.path.read_bytes()
    manifest_before = (cache / "datasets" / "manifest.json").read_text()
    broken = tmp_path / "broken.tar.gz"
    make_cifar_tarball(broken, skip=("data_batch_3",))
    with pytest.raises(DataError):
        stage("cifar10", broken, cache, verify=False)
    assert first.path.read_bytes() == before
    assert (cache / "datasets" / "manifest.json").read_text() == manifest_before
    left = sorted(p.name for p in (cache / "datasets").iterdir())
    assert left == ["cifar10.npz", "manifest.json"]


def test_staged_cifar10_is_served_by_the_provider(tarball, cache):
    path, _ = tarball
    stage("cifar10", path, cache, verify=False)
    served = provider.load("cifar10", cache_dir=cache, quick=False, quick_train=0, quick_test=0)
    assert served.source == "real"
    assert served.describe() == "cifar10"
    with np.load(cache / "datasets" / "cifar10.npz") as z:
        assert (served.x_train == z["x_train"]).all()
        assert (served.y_test == z["y_test"]).all()


# -------------------------------------------------------------------------------- mnist


def _fake_mnist(path: Path, *, flat=True) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(12) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(5) % 10).astype(np.int64 if flat else np.uint8),
    }
    np.savez_compressed(path, **arrays)
    return arrays


def test_stage_mnist(tmp_path, cache):
    src = tmp_path / "mnist.npz"
    arrays = _fake_mnist(src)
    with pytest.raises(DataError) as err:
        stage("mnist", src, cache)
    assert MNIST_SHA256 in str(err.value)
    assert hashlib.sha256(src.read_bytes()).hexdigest() in str(err.value)
    assert "storage.googleapis.com" in str(err.value)

    staged = stage("mnist", src, cache, verify=False)
    assert (staged.n_train, staged.n_test) == (12, 5)
    with np.load(staged.path, allow_pickle=False) as z:
        assert z["x_train"].shape == (12, 28, 28) and z["x_train"].dtype == np.uint8
        assert z["y_test"].shape == (5,) and z["y_test"].dtype == np.uint8
        assert (z["x_test"] == arrays["x_test"]).all()
        assert (z["y_test"] == arrays["y_test"]).all()
    assert {s.name: (s.staged, s.verified) for s in status(cache)} == {
        "cifar10": (False, None),
        "mnist": (True, False),
        "imdb": (False, None),
        "imdb_word_index": (False, None),
    }


def test_mnist_with_wrong_layout(tmp_path, cache):
    src = tmp_path / "mnist.npz"
    np.savez(src, x_train=np.zeros((2, 32, 32), np.uint8), y_train=np.zeros(2, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="x_train has shape"):
        stage("mnist", src, cache, verify=False)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npz"):
        stage("mnist", tmp_path / "junk.npz", cache, verify=False)


# --------------------------------------------------------------------- status / defaults


def test_status_of_an_empty_cache(cache):
    rows = status(cache)
    assert [(r.name, r.staged, r.verified) for r in rows] == [
        ("cifar10", False, None),
        ("mnist", False, None),
        ("imdb", False, None),
        ("imdb_word_index", False, None),
    ]
    assert rows[0].path == cache / "datasets" / "cifar10.npz"


def test_status_of_a_file_not_in_the_manifest(cache):
    (cache / "datasets").mkdir(parents=True)
    (cache / "datasets" / "mnist.npz").write_bytes(b"")
    assert {r.name: (r.staged, r.verified) for r in status(cache)}["mnist"] == (True, None)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "c"))
    assert data.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GRADER_CACHE")
    assert data.default_cache_dir() == Path.home() / ".cache" / "grader"


# ---------------------------------------------------------------------------------- CLI


runner = CliRunner()


def test_cli_checksum_error_exits_1(tarball, cache):
    path, _ = tarball
    result = runner.invoke(app, ["stage", "cifar10", str(path), "--cache", str(cache)])
    assert result.exit_code == 1
    assert "checksum mismatch" in result.output
    assert CIFAR_MD5 in result.output and _md5(path) in result.output
    assert "Traceback" not in result.output


def test_cli_stage_no_verify_and_status(tarball, cache):
    path, _ = tarball
    args = ["stage", "cifar10", str(path), "--no-verify", "--cache", str(cache)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "staged cifar10: 18 training and 6 test samples" in result.output
    assert "NO" in result.output
    result = runner.invoke(app, ["status", "--cache", str(cache)])
    assert result.exit_code == 0
    assert "cifar10  staged, NOT verified" in result.output
    assert "mnist    not staged" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["stage", "svhn", "x.tar.gz"], "unknown dataset"),
        (["stage", "mnist", "missing/mnist.npz"], "does not exist"),
    ],
)
def test_cli_bad_input_exits_1(cache, args, message):
    result = runner.invoke(app, args + ["--cache", str(cache)])
    assert result.exit_code == 1
    assert message in result.output


def test_cli_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "stage" in result.output and "status" in result.output
    result = runner.invoke(app, ["stage", "--help"])
    assert result.exit_code == 0
    assert "--no-verify" in result.output and "cifar-10-python.tar.gz" in result.output


# ---------------------------------------------------------------- IMDB


def make_imdb(path: Path, n: int = 12) -> None:
    """A tiny file in the layout of Keras' imdb.npz: ragged reviews as object arrays."""
    reviews = np.empty(n, dtype=object)
    reviews[:] = [list(range(1, 5 + i)) for i in range(n)]
    labels = (np.arange(n) % 2).astype(np.int64)
    np.savez(path, x_train=reviews, y_train=labels, x_test=reviews[: n // 2], y_test=labels[: n // 2])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_staged_imdb_and_word_index_are_served_as_real(tmp_path, cache, monkeypatch):
    make_imdb(tmp_path / "imdb.npz")
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({"great": 1, "film": 2}))
    monkeypatch.setitem(data.SOURCES, "imdb", dataclasses.replace(data.SOURCES["imdb"], digest=_sha256(tmp_path / "imdb.npz")))
    staged = stage("imdb", tmp_path / "imdb.npz", cache)
    assert (staged.n_train, staged.n_test, staged.verified) == (12, 6, True)
    words = stage("imdb-word-index", tmp_path / "imdb_word_index.json", cache, verify=False)
    assert words.path == cache / "datasets" / "imdb_word_index.json" and words.n_train == 2
    served = provider.load("imdb", cache_dir=cache, quick=False, quick_train=10, quick_test=10)
    assert served.source == "real" and [len(r) for r in served.x_train[:3]] == [4, 5, 6]
    assert provider.imdb_word_index(served) == {"great": 1, "film": 2}
    assert {s.name: s.verified for s in status(cache)}["imdb_word_index"] is False


def test_imdb_is_never_unpickled_unverified(tmp_path, cache):
    make_imdb(tmp_path / "imdb.npz")
    with pytest.raises(DataError, match="only the official file"):
        stage("imdb", tmp_path / "imdb.npz", cache, verify=False)
    with pytest.raises(DataError, match="checksum mismatch"):
        stage("imdb", tmp_path / "imdb.npz", cache)
    assert not (cache / "datasets" / "imdb.npz").exists()


def test_word_index_must_map_words_to_ranks(tmp_path, cache):
    (tmp_path / "imdb_word_index.json").write_text(json.dumps(["great", "film"]))
    with pytest.raises(DataError, match="word -> integer rank"):
        stage("imdb_word_index", tmp_path / "imdb_word_index.json", cache, verify=False)
