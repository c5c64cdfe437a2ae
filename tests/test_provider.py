"""The offline dataset provider: layout, determinism, caching, subsets, learnability."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from grader.probe import provider
from grader.probe.provider import ProviderError, Served, canonical_labels, load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAYOUT = {
    # name: (x per-sample shape, y per-sample shape, n_train, n_test)
    "cifar10": ((32, 32, 3), (1,), 50000, 10000),
    "mnist": ((28, 28), (), 60000, 10000),
}


def _check_layout(s: Served, n_train: int, n_test: int) -> None:
    image, label, _, _ = LAYOUT[s.name]
    assert s.x_train.shape == (n_train,) + image
    assert s.y_train.shape == (n_train,) + label
    assert s.x_test.shape == (n_test,) + image
    assert s.y_test.shape == (n_test,) + label
    for a in (s.x_train, s.y_train, s.x_test, s.y_test):
        assert a.dtype == np.uint8
    for y in (s.y_train, s.y_test):
        assert y.min() >= 0 and y.max() <= 9


def _per_class(y: np.ndarray) -> list[int]:
    return np.bincount(y.reshape(-1), minlength=10).tolist()


@pytest.fixture(scope="module")
def full_cache(tmp_path_factory):
    """One cache folder with both full-size stand-ins generated once (timed)."""
    cache = tmp_path_factory.mktemp("cache")
    timings = {}
    served = {}
    for name in ("cifar10", "mnist"):
        t0 = time.perf_counter()
        served[name] = load(name, cache_dir=cache, quick=False, quick_train=0, quick_test=0)
        timings[name] = time.perf_counter() - t0
    print(f"\nfull stand-in generation + caching: {timings}")
    return cache, served


# ------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_full_standin_layout(full_cache, name):
    _, served = full_cache
    s = served[name]
    _, _, n_train, n_test = LAYOUT[name]
    _check_layout(s, n_train, n_test)
    assert s.source == "standin" and s.quick is False
    assert s.describe() == f"{name} (synthetic stand-in)"
    # balanced classes, labels shuffled (not sorted), images not constant
    assert _per_class(s.y_train) == [n_train // 10] * 10
    assert _per_class(s.y_test) == [n_test // 10] * 10
    assert (np.diff(s.y_train.reshape(-1)[:100].astype(int)) != 0).any()
    assert s.x_train[:100].std() > 10


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_quick_standin_layout_and_stratification(tmp_path, name):
    s = load(name, cache_dir=tmp_path, quick=True, quick_train=500, quick_test=120)
    _check_layout(s, 500, 120)
    assert s.source == "standin" and s.quick is True
    assert _per_class(s.y_train) == [50] * 10
    assert _per_class(s.y_test) == [12] * 10
    # quick mode never writes a full-size cache file
    assert not (tmp_path / "standin").exists()


def test_quick_count_not_a_multiple_of_ten(tmp_path):
    s = load("mnist", cache_dir=tmp_path, quick=True, quick_train=23, quick_test=7)
    _check_layout(s, 23, 7)
    assert _per_class(s.y_train) == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert _per_class(s.y_test) == [1] * 7 + [0] * 3


def test_info_is_plain_json(tmp_path):
    s = load("cifar10", cache_dir=tmp_path, quick=True, quick_train=20, quick_test=10)
    info = json.loads(json.dumps(s.info()))
    assert info == {
        "name": "cifar10",
        "source": "standin",
        "quick": True,
        "n_train": 20,
        "n_test": 10,
        "classes": 10,
        "description": "cifar10 (synthetic stand-in)",
    }


def test_canonical_labels_is_flat_int64_copy(tmp_path):
    s = load("cifar10", cache_dir=tmp_path, quick=True, quick_train=20, quick_test=30)
    labels = canonical_labels(s)
    assert labels.dtype == np.int64 and labels.shape == (30,)
    assert (labels == s.y_test[:, 0]).all()
    labels[:] = 99
    assert s.y_test.max() <= 9


def test_unknown_name(tmp_path):
    with pytest.raises(ProviderError, match="unknown dataset"):
        load("imagenet", cache_dir=tmp_path, quick=True, quick_train=10, quick_test=10)


# ---------------------------------------------------------------- determinism and cache


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_quick_standin_is_deterministic(tmp_path, name):
    kw = dict(cache_dir=tmp_path, quick=True, quick_train=200, quick_test=50)
    a, b = load(name, seed=3, **kw), load(name, seed=3, **kw)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(a, key).tobytes() == getattr(b, key).tobytes()
    c = load(name, seed=4, **kw)
    assert a.x_train.tobytes() != c.x_train.tobytes()
    # train and test are different samples
    assert not np.array_equal(a.x_train[:50], a.x_test)


def test_full_standin_cache_is_reused(full_cache, monkeypatch):
    cache, served = full_cache
    path = provider.standin_path("cifar10", cache, seed=0)
    assert path.is_file()
    assert path.name == f"cifar10-seed0-v{provider.STANDIN_VERSION}.npz"
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # no leftovers

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached stand-in should have been read")

    monkeypatch.setattr(provider, "_standin", no_generation)
    t0 = time.perf_counter()
    again = load("cifar10", cache_dir=cache, quick=False, quick_train=0, quick_test=0)
    print(f"\ncached cifar10 stand-in load: {time.perf_counter() - t0:.2f}s")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(again, key).tobytes() == getattr(served["cifar10"], key).tobytes()


def test_damaged_cache_file_is_regenerated(tmp_path, monkeypatch):
    # Small "full" size so this stays fast; the logic is the same.
    small = provider._Spec((28, 28), (), 60, 20)
    monkeypatch.setitem(provider.SPECS, "mnist", small)
    first = load("mnist", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    path = provider.standin_path("mnist", tmp_path)
    path.write_bytes(b"not a zip file")
    second = load("mnist", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    assert second.x_train.tobytes() == first.x_train.tobytes()
    assert np.load(path)["x_train"].shape == (60, 28, 28)


def test_read_only_cache_still_serves(tmp_path, monkeypatch):
    monkeypatch.setitem(provider.SPECS, "mnist", provider._Spec((28, 28), (), 30, 10))

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(provider, "_save_atomic", refuse)
    s = load("mnist", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    _check_layout(s, 30, 10)


# ------------------------------------------------------------------------- real data


def _write_fake_real(cache, name, n_train, n_test, *, flat_labels=False, seed=0):
    rng = np.random.default_rng(seed)
    image, label, _, _ = LAYOUT[name]
    # deliberately imbalanced classes: class c appears c+3 times (train)
    y_train = np.concatenate([np.full(c + 3, c) for c in range(10)])[:n_train]
    y_test = np.arange(n_test) % 10
    rng.shuffle(y_train)
    shape = (lambda n: (n,)) if flat_labels else (lambda n: (n,) + label)
    arrays = {
        "x_train": rng.integers(0, 256, (len(y_train),) + image, dtype=np.uint8),
        "y_train": y_train.astype(np.uint8).reshape(shape(len(y_train))),
        "x_test": rng.integers(0, 256, (n_test,) + image, dtype=np.uint8),
        "y_test": y_test.astype(np.uint8).reshape(shape(n_test)),
    }
    (cache / "datasets").mkdir(parents=True, exist_ok=True)
    np.savez(cache / "datasets" / f"{name}.npz", **arrays)
    return arrays


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_real_data_is_preferred(tmp_path, name):
    arrays = _write_fake_real(tmp_path, name, 75, 30)
    s = load(name, cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    assert s.source == "real"
    assert s.describe() == name
    assert s.info()["source"] == "real"
    for key, value in arrays.items():
        assert getattr(s, key).tobytes() == value.tobytes()
    assert not (tmp_path / "standin").exists()


def test_real_data_quick_subset_is_stratified_and_deterministic(tmp_path):
    arrays = _write_fake_real(tmp_path, "cifar10", 75, 60)
    kw = dict(cache_dir=tmp_path, quick=True, quick_train=30, quick_test=20, seed=1)
    s = load("cifar10", **kw)
    _check_layout(s, 30, 20)
    assert s.source == "real" and s.quick
    assert _per_class(s.y_train) == [3] * 10
    assert _per_class(s.y_test) == [2] * 10
    # every served image is one of the real ones, with its own label
    index = {arrays["x_train"][i].tobytes(): arrays["y_train"][i, 0] for i in range(75)}
    for x, y in zip(s.x_train, s.y_train[:, 0]):
        assert index[x.tobytes()] == y
    assert len({x.tobytes() for x in s.x_train}) == 30  # no duplicates
    again = load("cifar10", **kw)
    assert again.x_train.tobytes() == s.x_train.tobytes()
    assert again.x_test.tobytes() == s.x_test.tobytes()


def test_real_labels_are_normalised_to_keras_layout(tmp_path):
    _write_fake_real(tmp_path, "cifar10", 40, 10, flat_labels=True)
    s = load("cifar10", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    _check_layout(s, 40, 10)


def test_malformed_real_file_is_an_error(tmp_path):
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ProviderError, match="lacks"):
        load("mnist", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)
    np.savez(
        tmp_path / "datasets" / "mnist.npz",
        x_train=np.zeros((3, 32, 32), np.uint8),
        y_train=np.zeros(3, np.uint8),
        x_test=np.zeros((3, 32, 32), np.uint8),
        y_test=np.zeros(3, np.uint8),
    )
    with pytest.raises(ProviderError, match="shape"):
        load("mnist", cache_dir=tmp_path, quick=False, quick_train=0, quick_test=0)


# ---------------------------------------------------------------------- learnability


def _manual_cnn(keras, input_shape):
    """The manual's simple CNN."""
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(32, (3, 3), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_cifar10_standin_is_learnable_but_labels_matter(tmp_path):
    keras = pytest.importorskip("keras")
    s = load("cifar10", cache_dir=tmp_path, quick=True, quick_train=5000, quick_test=1000)
    x_train = s.x_train.astype("float32") / 255.0
    x_test = s.x_test.astype("float32") / 255.0
    y_train = s.y_train.reshape(-1).astype("int64")
    y_test = canonical_labels(s)
    shuffled = np.random.default_rng(1).permutation(y_train)

    results = {}
    for label, y in (("labels", y_train), ("shuffled", shuffled)):
        keras.utils.set_random_seed(0)
        t0 = time.perf_counter()
        model = _manual_cnn(keras, (32, 32, 3))
        model.fit(x_train, y, epochs=2, batch_size=32, verbose=0)
        _, acc = model.evaluate(x_test, y_test, verbose=0)
        results[label] = (float(acc), time.perf_counter() - t0)
    print(
        "\ncifar10 stand-in, manual CNN, 2 epochs on 5000: "
        + ", ".join(f"{k}: acc {a:.3f} in {t:.1f}s" for k, (a, t) in results.items())
    )
    assert results["labels"][0] > 0.5
    assert results["shuffled"][0] < 0.2


@pytest.mark.slow
def test_mnist_standin_is_learnable_by_a_small_mlp(tmp_path):
    keras = pytest.importorskip("keras")
    s = load("mnist", cache_dir=tmp_path, quick=True, quick_train=5000, quick_test=1000)
    x_train = s.x_train.astype("float32") / 255.0
    x_test = s.x_test.astype("float32") / 255.0
    y_test = canonical_labels(s)
    results = {}
    shuffled = np.random.default_rng(1).permutation(s.y_train)
    for label, y in (("labels", s.y_train), ("shuffled", shuffled)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        model.fit(x_train, y, epochs=2, batch_size=32, verbose=0)
        results[label] = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print(f"\nmnist stand-in, MLP, 2 epochs on 5000: {results}")
    assert results["labels"] > 0.8
    assert results["shuffled"] < 0.2
