"""Program 6 (sentiment analysis with an RNN on IMDB): the provider's IMDB, Keras'
load_data semantics, and the program graded for real."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES, PROJECT, check
from grader.models import Status
from grader.probe import provider


@pytest.fixture(scope="module")
def quick_imdb(tmp_path_factory):
    return provider.load("imdb", cache_dir=tmp_path_factory.mktemp("c"), quick=True,
                         quick_train=600, quick_test=600)


def test_quick_imdb_is_balanced_equal_sized_and_deterministic(quick_imdb, tmp_path):
    s = quick_imdb
    assert s.source == "standin" and s.describe() == "imdb (synthetic stand-in)"
    assert len(s.x_train) == len(s.x_test) == 600  # X_train + X_test must work
    assert s.x_train.dtype == object and isinstance(s.x_train[0], list)
    assert np.bincount(s.y_test).tolist() == [300, 300] and s.y_train.dtype == np.int64
    assert s.info()["classes"] == 2
    lengths = [len(r) for r in s.x_train]
    assert 30 <= min(lengths) and max(lengths) <= 400
    again = provider.load("imdb", cache_dir=tmp_path, quick=True, quick_train=600, quick_test=600)
    assert all(a == b for a, b in zip(s.x_train, again.x_train))
    assert (s.y_train == again.y_train).all()


def test_load_data_follows_keras_semantics(quick_imdb):
    s = quick_imdb
    (xt, yt), (xs, ys) = provider.imdb_load_data(s, num_words=1000)
    assert xt.dtype == object and len(xt) == len(xs) == 600
    assert all(r[0] == 1 for r in xt)  # start_char first
    assert max(max(r) for r in xt) <= 999 and min(min(r) for r in xt) >= 1
    (raw_t, _), _ = provider.imdb_load_data(s, start_char=None, index_from=0)
    # same shuffle (seed 113): ids are offset by index_from=3, rare ones become oov_char=2
    for a, b in zip(xt[:50], raw_t[:50]):
        assert a[1:] == [w + 3 if w + 3 < 1000 else 2 for w in b]
    (xk, yk), _ = provider.imdb_load_data(s, seed=7)
    assert not (yk == yt).all() and sorted(yk) == sorted(yt)  # another shuffle, same reviews
    (xm, ym), (xsm, ysm) = provider.imdb_load_data(s, maxlen=100)
    assert 0 < len(xm) < 600 and all(len(r) < 100 for r in xm) and len(ym) == len(xm)
    (xo, _), _ = provider.imdb_load_data(s, num_words=50, oov_char=None, skip_top=5)
    assert all(5 <= w < 50 for r in xo for w in r)


def test_word_index_matches_the_reviews(quick_imdb):
    index = provider.imdb_word_index(quick_imdb)
    assert index["the"] == 1 and len(index) == provider.IMDB_VOCAB
    assert sorted(index.values()) == list(range(1, provider.IMDB_VOCAB + 1))
    words = {i + 3: w for w, i in index.items()}
    (xt, yt), _ = provider.imdb_load_data(quick_imdb)
    text = [[words.get(i, "?") for i in r[1:]] for r in xt]
    pos = np.mean([sum(w in ("great", "excellent", "best") for w in t) for t, y in zip(text, yt) if y == 1])
    neg = np.mean([sum(w in ("great", "excellent", "best") for w in t) for t, y in zip(text, yt) if y == 0])
    assert pos > neg  # positive words are commoner in positive reviews


# ---------------------------------------------------------------- graded for real


@pytest.mark.slow
def test_reference_solution_scores_full_marks(grade_file):
    r = grade_file(PROJECT / "reference" / "program6" / "solution.py", 6)
    failed = [(c.id, c.message) for c in r.checks if not c.passed and c.weight > 0]
    assert r.status == Status.ok, r.status_message
    assert failed == []
    assert r.marks == {"writeup": 5, "execution": 20, "viva": None}
    assert r.dataset == "imdb (synthetic stand-in)"
    assert r.run.trace["fits"][-1]["epochs_capped_to"] == 1


@pytest.mark.slow
def test_manual_program6_as_printed(grade_file):
    r = grade_file(FIXTURES / "manual" / "program6.py", 6)
    assert r.status == Status.ok, r.status_message
    assert "Loaded dataset with 2000 training samples, 2000 test samples" in r.run.stdout
    printed = check(r, "accuracy.printed_matches")
    assert printed.passed and abs(printed.evidence["printed"] - printed.evidence["measured"]) < 0.01
    assert check(r, "model.structure").passed and check(r, "model.loss_matches_output").passed
    api = check(r, "static.current_api")  # input_length still runs in Keras 3 (a warning): a hint, no mark lost
    assert api.passed and "input_length" in api.message and "still runs" in api.message
    assert r.marks["writeup"] == 5


@pytest.mark.slow
def test_model_without_recurrent_layer_fails_structure(grade_file):
    src = (FIXTURES / "manual" / "program6.py").read_text().replace(
        "model.add(SimpleRNN(100))", "from keras.layers import Flatten\nmodel.add(Flatten())")
    r = grade_file(src, 6)
    assert r.status == Status.ok, r.status_message
    c = check(r, "model.structure")
    assert not c.passed and "no recurrent layer" in c.message and "SimpleRNN" in c.message
    assert "recurrent layer" in c.hint
