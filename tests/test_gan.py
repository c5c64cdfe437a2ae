"""DLPRAC activity 5 (a GAN that generates MNIST-like digits), each program graded for real: the
local sandbox, real Keras, the generator exported and run in the clean sandbox on noise of the
host's seed, its samples judged on the host by the grader's own MNIST classifier.

Programs: the reference solution; a GAN whose generator is never trained; one trained on one
digit alone (it can only make that digit: mode collapse); one whose discriminator is never
frozen in the stacked model; a hostile one whose generator never learns (a learning rate of 0)
and which rewrites, in its own process, the recorded losses and its sample summary; and a GAN
in keras.io's train_step pattern (tests/fixtures/gan/train_step.py), with variants whose
generator update also changes the discriminator, or never changes the generator.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES, PROJECT, check
from grader.course import load_rubrics
from grader.models import Status
from grader.pipeline import grade
from grader.runners.local import LocalRunner
from grader.submissions import single_job

REFERENCE = PROJECT / "reference" / "DLPRAC" / "program5" / "solution.py"
SOURCE = REFERENCE.read_text()
TORCH_SOURCE = (PROJECT / "reference" / "DLPRAC" / "program5" / "solution_torch.py").read_text()

# A short run (the reference's loop, fewer steps): enough for the probe's records, seconds of training.
SHORT = SOURCE.replace("STEPS = 800", "STEPS = 120")


def variant(old: str, new: str, source: str = SHORT) -> str:
    assert old in source, old
    return source.replace(old, new)


NEVER_TRAINED = variant("    g_loss = gan.train_on_batch(", "    g_loss = 0.0 * gan.test_on_batch(")
ONE_DIGIT = variant("(x_train, _), (_, _) = mnist.load_data()",
                    "(x_train, y_train), (_, _) = mnist.load_data()\nx_train = x_train[y_train == 1]")
NOT_FROZEN = variant("    discriminator.trainable = False\n", "", variant(
    "discriminator.trainable = False\ngan =", "gan ="))
HOSTILE = variant("gan.compile(optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5)",
                  "gan.compile(optimizer=keras.optimizers.Adam(0.0, beta_1=0.5)") + '''
import sys
_Trace = sys.modules["grader.probe.trace"].Trace
_save = _Trace.save


def _forged_save(self):
    for fit in self.data.get("fits", []):
        fit["step_loss"] = [1.0 - 0.001 * i for i in range(len(fit.get("step_loss") or []))]
    gan_record = self.data.get("post_run", {}).get("gan")
    if isinstance(gan_record, dict) and "samples" in gan_record:
        gan_record["samples"] = {"n": 1000, "pixel_mean": 0.13, "pixel_std": 0.3}
        gan_record["judgement"] = {"confident": 1.0, "digits": 10, "frechet": 0.1}
    _save(self)


_Trace.save = _forged_save
'''


# PyTorch, a short run whose generator's optimizer also holds the discriminator's parameters.
TORCH_SHARED = variant("opt_g = torch.optim.Adam(generator.parameters(),",
                       "opt_g = torch.optim.Adam(list(generator.parameters()) + list(discriminator.parameters()),",
                       TORCH_SOURCE.replace("STEPS = 800", "STEPS = 120"))

# keras.io's pattern: a keras.Model subclass with its own train_step, trained with fit(); the short
# variants take one epoch (86 steps of 128 in quick mode), enough for the probe's records.
TRAIN_STEP = (FIXTURES / "gan" / "train_step.py").read_text()
TRAIN_STEP_SHORT = variant("EPOCHS = 10", "EPOCHS = 1", TRAIN_STEP)
G_UPDATE = ("        grads = tape.gradient(g_loss, self.painter.trainable_weights)\n"
            "        self.painter_opt.apply_gradients(zip(grads, self.painter.trainable_weights))\n")
BOTH_UPDATE = ("        both = self.painter.trainable_weights + self.judge.trainable_weights\n"
               "        grads = tape.gradient(g_loss, both)\n"
               "        self.painter_opt.apply_gradients(zip(grads, both))\n")
TRAIN_STEP_NOT_FROZEN = variant(G_UPDATE, BOTH_UPDATE, TRAIN_STEP_SHORT)
TRAIN_STEP_LR0 = variant("painter_opt=keras.optimizers.Adam(5e-4,", "painter_opt=keras.optimizers.Adam(0.0,",
                         TRAIN_STEP_SHORT)
TRAIN_STEP_NO_G = variant(G_UPDATE, "        grads = tape.gradient(g_loss, self.painter.trainable_weights)\n",
                          TRAIN_STEP_SHORT)


@pytest.fixture(scope="module")
def dlprac():
    return load_rubrics("DLPRAC")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, dlprac):
    """graded(name, source) -> GradeResult, each program graded once for the module."""
    cache = tmp_path_factory.mktemp("cache")
    results = {}

    def run(name: str, source: str):
        if name not in results:
            folder = tmp_path_factory.mktemp(name)
            (folder / "program5.py").write_text(source)
            job = single_job(folder / "program5.py", 5, "DLPRAC", "quick")
            results[name] = grade(job, dlprac, LocalRunner(), cache, folder / "artifacts")
        return results[name]

    return run


def failed(result) -> set[str]:
    return {c.id for c in result.checks if not c.passed and c.weight > 0}


def band(result, attribute: str = "train") -> str | None:
    return next(a.band for a in result.attributes if a.attribute == attribute)


def test_reference_scores_full_marks_judged_outside_the_program(graded, dlprac):
    r = graded("reference", SOURCE)
    assert r.status == Status.ok, r.status_message
    assert not failed(r), [(c.id, c.message) for c in r.checks if not c.passed]
    assert r.marks == r.max, (r.marks, r.max)
    judged = [t for t in r.run.trusted if t.part == "generator"]
    assert judged and judged[0].gan is not None and judged[0].gan.n == 1000
    assert check(r, "gan.frechet").evidence["figure from"].startswith("clean sandbox")
    assert not r.flags


def test_generator_never_trained_fails_alternation_and_samples(graded):
    r = graded("never_trained", NEVER_TRAINED)
    assert r.status == Status.ok, r.status_message
    assert {"gan.alternation", "gan.frechet"} <= failed(r)
    assert "generator" in check(r, "gan.alternation").message
    assert band(r) != "Good"
    assert not r.flags  # nothing forged: the record and the samples agree


def test_one_digit_is_named_mode_collapse(graded):
    r = graded("one_digit", ONE_DIGIT)
    assert r.status == Status.ok, r.status_message
    assert "gan.diversity" in failed(r)
    assert check(r, "gan.diversity").message.startswith("mode collapse")
    j = [t for t in r.run.trusted if t.part == "generator"][0].gan
    assert max(j.digit_counts) / j.n > 0.8


def test_discriminator_not_frozen_in_stacked_model(graded):
    r = graded("not_frozen", NOT_FROZEN)
    assert r.status == Status.ok, r.status_message
    assert "gan.frozen" in failed(r)
    assert "not frozen" in check(r, "gan.frozen").message
    assert check(r, "gan.structure").passed and check(r, "gan.alternation").passed is not None


def test_hostile_rewrites_earn_nothing_and_are_flagged(graded):
    hostile = graded("hostile", HOSTILE)
    honest = graded("never_trained", NEVER_TRAINED)
    assert hostile.status == Status.ok, hostile.status_message
    assert sum(hostile.marks.values()) <= sum(honest.marks.values()), (hostile.marks, honest.marks)
    assert band(hostile) != "Good"
    assert {"gan.alternation", "gan.frechet"} <= failed(hostile)
    assert any("disagrees" in f for f in hostile.flags), hostile.flags
    assert any("unlike its exported generator" in f for f in hostile.flags), hostile.flags
    # the forged losses did reach the record: the marks ignored them
    fits = hostile.run.trace["fits"]
    assert any(f.get("step_loss", [None])[:2] == [1.0, 0.999] for f in fits)


def test_pytorch_gan_judged_outside_and_shared_optimizer_named(graded):
    """A PyTorch GAN: both networks found, the generator exported as a torch.export program and
    judged outside the program; an optimizer over both networks is named."""
    r = graded("torch_shared", TORCH_SHARED)
    assert r.status == Status.ok, r.status_message
    assert check(r, "gan.structure").passed and check(r, "gan.alternation").passed
    assert "gan.frozen" in failed(r)
    assert "optimizer also holds the discriminator" in check(r, "gan.frozen").message
    judged = [t for t in r.run.trusted if t.part == "generator"]
    assert judged and judged[0].kind == "torch_pt2" and judged[0].gan is not None and judged[0].gan.n == 1000


def test_sheet_shows_the_samples_and_both_losses(graded, tmp_path):
    from grader.reports.gan_figure import gan_figure, losses
    from grader.reports.html import write_sheet

    r = graded("reference", SOURCE)
    assert len(losses(r.run.trace, "discriminator")) >= 100 and len(losses(r.run.trace, "stacked")) >= 100
    figure = gan_figure(r)
    assert figure and figure["src"].startswith("data:image/png;base64,")
    sheet = write_sheet(r, tmp_path).read_text()
    assert "What the GAN generates" in sheet and figure["src"][:200] in sheet


def test_train_step_gan_full_marks_whatever_its_names(graded):
    """keras.io's pattern, every name unusual: both networks found, two optimizers stepping
    together through the wrapper's fit, the generator's optimizer holding only its weights."""
    r = graded("train_step", TRAIN_STEP)
    assert r.status == Status.ok, r.status_message
    assert not failed(r), [(c.id, c.message) for c in r.checks if not c.passed]
    assert r.marks == r.max, (r.marks, r.max)
    alt = check(r, "gan.alternation")
    assert alt.evidence["discriminator_steps"] == alt.evidence["generator_steps"] >= 50
    assert alt.evidence["generator_optimizer"] == "painter_opt" and "per epoch" in alt.message
    assert "painter_opt" in check(r, "gan.frozen").message
    assert not r.flags
    from grader.reports.gan_figure import epoch_losses, gan_figure

    curves = epoch_losses(r.run.trace)
    assert set(curves) == {"loss_judge", "loss_painter"} and all(len(v) == 10 for v in curves.values())
    assert gan_figure(r) is not None


def test_train_step_gan_updating_the_discriminator_in_the_generator_step_fails_frozen(graded):
    """The generator's gradients applied over both networks' weights: the failure is named."""
    r = graded("train_step_not_frozen", TRAIN_STEP_NOT_FROZEN)
    assert r.status == Status.ok, r.status_message
    assert check(r, "gan.structure").passed and check(r, "gan.alternation").passed
    assert "gan.frozen" in failed(r)
    msg = check(r, "gan.frozen").message
    assert "not frozen" in msg and "painter_opt" in msg and "of the discriminator's weights" in msg


@pytest.mark.parametrize("name, source, why", [("train_step_lr0", TRAIN_STEP_LR0, "learning rate of 0"),
                                               ("train_step_no_g", TRAIN_STEP_NO_G, "fewer than 50 steps")],
                         ids=["learning_rate_0", "optimizer_never_applied"])
def test_train_step_gan_whose_generator_never_changes_is_not_credited(graded, name, source, why):
    """The generator's optimizer at a learning rate of 0, or never applied: untrained samples,
    alternation failed with its reason, the train attribute not Good."""
    r = graded(name, source)
    assert r.status == Status.ok, r.status_message
    assert {"gan.alternation", "gan.frechet"} <= failed(r)
    assert why in check(r, "gan.alternation").message, check(r, "gan.alternation").message
    assert band(r) != "Good"


def test_judgement_separates_real_digits_from_noise_and_one_digit(tmp_path):
    """The host's classifier, on the served digits themselves, on uniform noise and on one
    image repeated: the three figures rank them as they should."""
    from grader import gan_judge

    clf = gan_judge.reference_classifier(tmp_path)
    assert clf.accuracy > 0.9
    again = gan_judge.reference_classifier(tmp_path)  # from the cache: the same weights
    assert again.key == clf.key and np.array_equal(again.w["w0"], clf.w["w0"])
    real = gan_judge.real_features(clf, tmp_path)
    served = gan_judge.served_mnist(tmp_path)
    digits = gan_judge.judge(served.x_test[:1000], clf, real)
    noise = gan_judge.judge(np.random.default_rng(0).random((1000, 28, 28)), clf, real)
    one = gan_judge.judge(np.repeat(served.x_test[:1], 1000, axis=0), clf, real)
    assert digits.digits == 10 and digits.evenness > 0.95 and digits.confident > 0.9
    assert digits.frechet < 0.05 * noise.frechet and digits.frechet < 0.05 * one.frechet
    assert one.digits == 1 and one.evenness == 0.0
