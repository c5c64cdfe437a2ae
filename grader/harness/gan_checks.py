"""Checks of a GAN that generates MNIST-like digits (course DLPRAC, activity 5).

Structure and training are read from the program's process (grader/probe/gan.py and the
train_on_batch record of grader/probe/keras_batches.py; for a GAN trained by fit() through a
train_step of its own, the wrapper's optimizers and its fit's per-epoch history): evidence the
program could rewrite.
What the generator makes is judged outside it (grader/trusted_gan.py): samples generated in a
clean sandbox on noise of a seed the program never saw, judged on the host by the grader's own
MNIST classifier. Those figures decide the sample checks, and they corroborate the training
record: a record of a trained generator whose samples are still an untrained generator's is
not credited, and is flagged.

Bars (params.bars) are given per data source (standin | real) and mode (quick | full), from the
reference GAN and an untrained generator (rubrics/DLPRAC/program5.yaml says where each came from).
"Untrained" is measured per program: the clean sandbox also runs the generator's architecture
freshly initialised, and a generator whose samples are not clearly closer to real digits than
those is taken as untrained (params.untrained_ratio).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.harness.registry import Context, Outcome, check
from grader.models import GanJudgement, TrustedMeasurement

UNTRAINED_RATIO = 0.8  # default of params.untrained_ratio
SAMPLE_TOLERANCE = 0.05  # pixel mean / spread (in [0, 1]) by which the process's samples may differ


def record(ctx: Context) -> dict[str, Any]:
    """The probe's post-run GAN record (empty when it did not run)."""
    return ((ctx.trace.get("post_run") or {}).get("gan")) or {}


def trusted(ctx: Context) -> TrustedMeasurement | None:
    """The generator's trusted measurement, if one was attempted."""
    found = [t for t in (ctx.run.trusted if ctx.run else []) if t.part == "generator"]
    return found[-1] if found else None


def judgement(ctx: Context) -> tuple[GanJudgement | None, str]:
    """(the trusted judgement, or None with why not)."""
    t = trusted(ctx)
    if t is None:
        why = record(ctx).get("error") or ((record(ctx).get("export") or {}).get("error")) or \
            "the program's generator was not exported"
        return None, f"no samples judged: {why}"
    if t.gan is None:
        return None, f"no samples judged: {t.error or 'the clean sandbox gave none'}"
    return t.gan, ""


def untrained(ctx: Context, params: dict[str, Any]) -> GanJudgement | None:
    """The trusted judgement when it shows an untrained generator: its samples no closer to real
    digits than untrained_ratio x those of its architecture freshly initialised; else None."""
    j, _ = judgement(ctx)
    ratio = float(params.get("untrained_ratio", UNTRAINED_RATIO))
    if j is not None and j.frechet_fresh and j.frechet >= ratio * j.frechet_fresh:
        return j
    return None


def bar(ctx: Context, params: dict[str, Any], name: str) -> float:
    """The rubric's bar `name` for this job's data source and mode."""
    return float(params["bars"][ctx.data_source][ctx.job.mode][name])


def evidence(j: GanJudgement) -> dict[str, Any]:
    return {k: v for k, v in j.model_dump().items() if k != "grid"}


@check("gan.structure", "A generator (noise → 28×28 image, bounded) and a discriminator (image → one score)")
def structure(ctx: Context, params: dict) -> Outcome:
    rec = record(ctx)
    gen, disc = rec.get("generator"), rec.get("discriminator")
    bounded = set(params.get("bounded", ["tanh", "sigmoid"]))
    found = []
    if gen:
        found.append(f"generator {gen.get('name')!r}: noise of {gen.get('latent')} → {gen.get('output')}, "
                     f"output activation {gen.get('activation')}")
    if disc:
        found.append(f"discriminator {disc.get('name')!r}: {disc.get('input')} → {disc.get('output')}")
    ok_gen = bool(gen) and gen.get("activation") in bounded
    score = 0.5 * bool(gen) + 0.25 * ok_gen + 0.25 * bool(disc)
    if gen and disc and ok_gen:
        return Outcome(True, "; ".join(found), evidence=rec)
    missing = ([] if gen else ["a generator (a model from a noise vector to 28×28 = 784 values)"]) + \
        ([] if not gen or ok_gen else [f"a bounded output for the generator ({', '.join(sorted(bounded))}), "
                                       f"not {gen.get('activation')}"]) + \
        ([] if disc else ["a discriminator (a model from a 28×28 image to one score)"])
    return Outcome(False, "missing: " + "; ".join(missing) + (f" (found {'; '.join(found)})" if found else ""),
                   score=score, evidence=rec,
                   hint="the generator maps noise (e.g. 100 numbers) to a 28×28 image through a tanh (or sigmoid) "
                        "output; the discriminator maps an image to one sigmoid score")


def generator_trainer(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The model whose training updates the generator: Keras' stacked model, or PyTorch's
    generator itself (its own optimizer)."""
    return rec.get("stacked") or (rec.get("generator") if rec.get("framework") == "torch" else None)


def loop_of(ctx: Context, role: dict[str, Any] | None) -> dict[str, Any] | None:
    """The training record that steps the model in `role` (Keras: its train_on_batch loop; PyTorch: its
    optimizer's), None when it was never trained."""
    if not role or role.get("model") is None:
        return None
    index = role.get("fit")  # PyTorch: the record of the role's own optimizer, tied by the probe
    if isinstance(index, int) and 0 <= index < len(ctx.fits) and ctx.fits[index].get("steps"):
        return ctx.fits[index]
    fits = [f for f in ctx.fits if f.get("model") == role["model"] and f.get("steps")]
    return fits[-1] if fits else None


@check("gan.alternation", "Both networks are trained in alternation, their losses recorded per step")
def alternation(ctx: Context, params: dict) -> Outcome:
    rec = record(ctx)
    min_steps, max_ratio = int(params.get("min_steps", 50)), float(params.get("max_ratio", 5))
    if rec.get("wrapper"):
        d_steps, g_steps, ev, passed = wrapper_steps(ctx, rec["wrapper"])
    else:
        d_loop, g_loop = loop_of(ctx, rec.get("discriminator")), loop_of(ctx, generator_trainer(rec))
        d_steps, g_steps = (d_loop or {}).get("steps", 0), (g_loop or {}).get("steps", 0)
        ev = {"discriminator_steps": d_steps, "generator_steps": g_steps,
              "discriminator_step_losses": len((d_loop or {}).get("step_loss") or []),
              "generator_step_losses": len((g_loop or {}).get("step_loss") or [])}
        passed = f"discriminator {d_steps} and generator {g_steps} steps, each loss recorded per step"
    hint = ("each step: train the discriminator on real and generated digits (train_on_batch), then the stacked "
            "model (generator → frozen discriminator) on noise labelled real (PyTorch: the discriminator's optimizer "
            "steps, then the generator's; a train_step of your own: the discriminator's optimizer applied to its "
            "weights, then the generator's to the generator's)")
    if d_steps < min_steps or g_steps < min_steps:
        via = "its optimizer in the train_step" if rec.get("wrapper") else "the stacked model"
        who = [n for n, s in (("the discriminator", d_steps), (f"the generator (through {via})", g_steps))
               if s < min_steps]
        return Outcome(False, f"{' and '.join(who)} trained for fewer than {min_steps} steps "
                              f"(discriminator {d_steps}, generator {g_steps})", hint=hint, evidence=ev)
    if max(d_steps, g_steps) > max_ratio * min(d_steps, g_steps):
        return Outcome(False, f"the two networks were not trained in alternation: discriminator {d_steps} steps, "
                              f"generator {g_steps}", hint=hint, evidence=ev)
    j = untrained(ctx, params)
    if j is not None and ev.get("generator_learning_rate") == 0:  # the record itself explains the samples
        return Outcome(False, f"the generator's optimizer ({ev.get('generator_optimizer') or 'unnamed'}) took "
                              f"{g_steps} steps at a learning rate of 0: the generator never changed, and its samples "
                              f"are an untrained generator's (Fréchet distance {j.frechet:.1f}, freshly initialised "
                              f"{j.frechet_fresh:.1f})",
                       hint="give the generator's optimizer a learning rate above 0 (e.g. Adam(2e-4, beta_1=0.5))",
                       evidence={**ev, "frechet": j.frechet, "frechet_fresh": j.frechet_fresh})
    if j is not None:
        return Outcome(False, f"the record shows {g_steps} generator steps, but its samples are an untrained "
                              f"generator's: Fréchet distance {j.frechet:.1f}, the same architecture freshly "
                              f"initialised {j.frechet_fresh:.1f} (a trained one is below "
                              f"{params.get('untrained_ratio', UNTRAINED_RATIO):g} of that)",
                       hint="make sure the stacked model's training reaches the generator (a learning rate above 0, "
                            "the generator's layers trainable)",
                       evidence={**ev, "frechet": j.frechet, "frechet_fresh": j.frechet_fresh},
                       flag=f"GAN: the recorded training ({g_steps} generator steps) disagrees with the samples of "
                            f"the exported generator (those of an untrained one): review the run")
    return Outcome(True, passed, evidence=ev)


@check("gan.frozen", "The discriminator is frozen inside the stacked model (or the generator's own update)")
def frozen(ctx: Context, params: dict) -> Outcome:
    exp = record(ctx).get("frozen")
    if not exp or exp.get("error"):
        return Outcome(False, f"could not tell: {(exp or {}).get('error') or 'no stacked model holding the discriminator'}",
                       hint="build the generator's training model as generator → discriminator, with "
                            "discriminator.trainable = False before compiling it", evidence=exp or {})
    if exp.get("discriminator_changed") and record(ctx).get("framework") == "torch":
        return Outcome(False, "the generator's optimizer also holds the discriminator's parameters: the generator's "
                              "step is not frozen for the discriminator, and teaches it to call fakes real",
                       hint="give each network its own optimizer: Adam(generator.parameters()) and "
                            "Adam(discriminator.parameters())", evidence=exp)
    if exp.get("discriminator_changed") and record(ctx).get("wrapper"):
        return Outcome(False, f"the generator's update is not frozen for the discriminator: in "
                              f"{wrapper_name(record(ctx))}'s train_step the optimizer that updates the generator "
                              f"({exp.get('generator_optimizer') or 'unnamed'}) also updates "
                              f"{exp.get('discriminator_weights')} of the discriminator's weights, so the generator's "
                              f"step also teaches the discriminator to call fakes real",
                       hint="apply the generator's gradients to generator.trainable_weights only (the tape's "
                            "gradient of the generator's loss with respect to the generator's weights)",
                       evidence=exp)
    if exp.get("discriminator_changed"):
        return Outcome(False, "a training step of the stacked model changed the discriminator's weights: it is not "
                              "frozen there, so the generator's step also teaches the discriminator to call fakes real",
                       hint="set discriminator.trainable = False before compiling the stacked model", evidence=exp)
    if record(ctx).get("framework") == "torch":
        return Outcome(True, "the generator's optimizer holds none of the discriminator's parameters", evidence=exp)
    if record(ctx).get("wrapper"):
        opt = exp.get("generator_optimizer") or "unnamed"
        return Outcome(True, f"no stacked model: in {wrapper_name(record(ctx))}'s train_step the generator's optimizer "
                             f"({opt}) updates only the generator's weights, so the generator's step leaves the "
                             f"discriminator unchanged", evidence=exp)
    return Outcome(True, "a training step of the stacked model left the discriminator's weights unchanged",
                   evidence=exp)


@check("gan.balance", "Neither network wins outright")
def balance(ctx: Context, params: dict) -> Outcome:
    rec = record(ctx)
    if rec.get("wrapper"):
        return balance_per_epoch(ctx, params, rec)
    d = (loop_of(ctx, rec.get("discriminator")) or {}).get("step_loss") or []
    g = (loop_of(ctx, generator_trainer(rec)) or {}).get("step_loss") or []
    d, g = [v for v in d if isinstance(v, (int, float))], [v for v in g if isinstance(v, (int, float))]
    if len(d) < 20 or len(g) < 20:
        return Outcome(False, "too few recorded steps to tell", evidence={"d": len(d), "g": len(g)})
    if untrained(ctx, params) is not None:  # the record is the program's; the samples say nothing was learned
        return Outcome(False, "not credited: the recorded losses are of a generator whose samples are an untrained "
                              "one's (see the alternation check)", evidence={"d": len(d), "g": len(g)})
    tail = max(5, len(d) // 10)
    d_end, g_start, g_end = float(np.mean(d[-tail:])), float(np.mean(g[:tail])), float(np.mean(g[-tail:]))
    ev = {"discriminator_loss_end": round(d_end, 4), "generator_loss_start": round(g_start, 4),
          "generator_loss_end": round(g_end, 4)}
    if d_end < float(params.get("d_loss_floor", 0.05)) and g_end > g_start:
        return Outcome(False, f"the discriminator won outright: its loss fell to {d_end:.3f} while the generator's "
                              f"grew from {g_start:.2f} to {g_end:.2f}",
                       hint="weaken the discriminator (fewer units, dropout, a lower learning rate, label smoothing) "
                            "or train the generator more often", evidence=ev)
    return Outcome(True, f"discriminator loss ends at {d_end:.3f}, generator loss {g_start:.2f} → {g_end:.2f}",
                   evidence=ev)


def wrapper_name(rec: dict[str, Any]) -> str:
    w = rec.get("wrapper") or {}
    return f"the {w.get('class')} model" if w.get("class") else "the wrapper model"


def wrapper_fit(ctx: Context, wrapper: dict[str, Any]) -> dict[str, Any] | None:
    """The last fit of the model whose train_step trains both networks."""
    fits = [f for f in ctx.fits if f.get("model") == wrapper.get("model") and f.get("loop") is None]
    return fits[-1] if fits else None


def loss_series(fit: dict[str, Any] | None) -> dict[str, list[float]]:
    """The fit's history: each per-epoch series of numbers, by the name the program gave it."""
    out = {}
    for name, values in ((fit or {}).get("history") or {}).items():
        nums = [v for v in values if isinstance(v, (int, float))] if isinstance(values, list) else []
        if nums:
            out[str(name)] = nums
    return out


def wrapper_steps(ctx: Context, wrapper: dict[str, Any]) -> tuple[int, int, dict[str, Any], str]:
    """(discriminator steps, generator steps, evidence, the passing message) of a train_step GAN: the
    step counts of the optimizer that updates only the discriminator's weights and of the one that
    updates the generator's, both counted during the wrapper's fit; its losses per epoch."""
    opts = wrapper.get("optimizers") or []
    d_opts = [o for o in opts if o.get("discriminator_weights") and not o.get("generator_weights")]
    g_opts = [o for o in opts if o.get("generator_weights")]
    fit = wrapper_fit(ctx, wrapper)
    d_steps = max((o.get("iterations") or 0 for o in d_opts), default=0) if fit else 0
    g_steps = max((o.get("iterations") or 0 for o in g_opts), default=0) if fit else 0
    losses = loss_series(fit)
    ev = {"wrapper": wrapper.get("class"), "fit": bool(fit), "fit_epochs": (fit or {}).get("epochs_run", 0),
          "discriminator_steps": d_steps, "generator_steps": g_steps,
          "discriminator_optimizer": (d_opts[0] if d_opts else {}).get("name"),
          "generator_optimizer": (g_opts[0] if g_opts else {}).get("name"),
          "generator_learning_rate": (g_opts[0] if g_opts else {}).get("learning_rate"),
          "losses_per_epoch": sorted(losses), "loss_unit": "epoch (the fit's history), not step"}
    named = " and ".join(repr(k) for k in sorted(losses)) or "none"
    passed = (f"{wrapper_name({'wrapper': wrapper})}'s fit ({ev['fit_epochs']} epochs) updated the discriminator "
              f"{d_steps} and the generator {g_steps} times, each with its own optimizer in its train_step; losses "
              f"{named} recorded per epoch (the fit's history), not per step")
    return d_steps, g_steps, ev, passed


def balance_per_epoch(ctx: Context, params: dict, rec: dict[str, Any]) -> Outcome:
    """gan.balance for a train_step GAN: its fit's per-epoch losses (whatever their names): one
    falling below d_loss_floor while another grows is one network winning outright."""
    series = loss_series(wrapper_fit(ctx, rec["wrapper"]))
    series = {k: v for k, v in series.items() if len(v) >= 2}
    ev = {"losses_per_epoch": {k: [round(x, 4) for x in v[-5:]] for k, v in series.items()}, "unit": "epoch"}
    if len(series) < 2:
        return Outcome(False, "too few recorded losses to tell: the fit's history needs two losses over at least "
                              "two epochs", evidence=ev,
                       hint="return both losses from train_step (e.g. {\"d_loss\": ..., \"g_loss\": ...}) and "
                            "train for two epochs or more")
    if untrained(ctx, params) is not None:
        return Outcome(False, "not credited: the recorded losses are of a generator whose samples are an untrained "
                              "one's (see the alternation check)", evidence=ev)
    floor = float(params.get("d_loss_floor", 0.05))
    for low, values in series.items():
        rising = [k for k, v in series.items() if k != low and v[-1] > v[0]]
        if values[-1] < floor and rising:
            return Outcome(False, f"one network won outright: the loss {low!r} fell to {values[-1]:.3f} while "
                                  f"{rising[0]!r} grew from {series[rising[0]][0]:.2f} to {series[rising[0]][-1]:.2f} "
                                  f"(per epoch, the fit's history)",
                           hint="weaken the discriminator (fewer units, dropout, a lower learning rate, label "
                                "smoothing) or train the generator more often", evidence=ev)
    ends = ", ".join(f"{k} {v[0]:.2f} → {v[-1]:.2f}" for k, v in sorted(series.items()))
    return Outcome(True, f"per-epoch losses (the fit's history): {ends}; none fell below {floor:g} while another "
                         f"grew", evidence=ev)


@check("gan.digits", "The generated samples look like digits")
def digits(ctx: Context, params: dict) -> Outcome:
    j, why = judgement(ctx)
    if j is None:
        return Outcome(False, why, hint="the generator must be a Keras model from noise to a 28×28 image")
    need = bar(ctx, params, "confident")
    flag = sample_disagreement(ctx, j)
    ev = evidence(j)
    msg = (f"{j.confident:.0%} of {j.n} samples (generated outside the program) are classified as one digit with "
           f"high confidence; bar {need:.0%}")
    if j.confident >= need:
        return Outcome(True, msg, evidence=ev, flag=flag)
    return Outcome(False, msg, score=max(0.0, j.confident / need) * 0.5, evidence=ev, flag=flag,
                   hint="train longer, or check that the generator's output is scaled like the images it learns from")


@check("gan.diversity", "All ten digits appear, evenly (no mode collapse)")
def diversity(ctx: Context, params: dict) -> Outcome:
    j, why = judgement(ctx)
    if j is None:
        return Outcome(False, why)
    need_digits, need_even = int(bar(ctx, params, "digits")), bar(ctx, params, "evenness")
    msg = (f"{j.digits} of the ten digits appear (each at least 2% of the samples), evenness {j.evenness:.2f} "
           f"(1 = even); bars {need_digits} digits, evenness {need_even:.2f}")
    if j.digits >= need_digits and j.evenness >= need_even:
        return Outcome(True, msg, evidence=evidence(j))
    top = int(np.argmax(j.digit_counts))
    collapse = j.digits <= int(params.get("collapse_digits", 3))
    return Outcome(False, ("mode collapse: " if collapse else "") + msg +
                   f"; the commonest digit, {top}, is {j.digit_counts[top] / j.n:.0%} of them",
                   score=0.0 if collapse else 0.5, evidence=evidence(j),
                   hint="mode collapse: the generator found one digit that fools the discriminator; try label "
                        "smoothing, dropout in the discriminator, a lower learning rate or more noise dimensions")


@check("gan.frechet", "The samples are close to real digits (Fréchet distance)")
def frechet(ctx: Context, params: dict) -> Outcome:
    j, why = judgement(ctx)
    if j is None:
        return Outcome(False, why)
    most = bar(ctx, params, "frechet")
    msg = (f"Fréchet distance {j.frechet:.1f} to real test digits in the reference classifier's features "
           f"(lower is closer); bar {most:g}")
    if j.frechet <= most:
        return Outcome(True, msg, evidence=evidence(j))
    return Outcome(False, msg, score=float(np.clip(most / max(j.frechet, 1e-9), 0, 1)) * 0.5, evidence=evidence(j),
                   hint="the samples' spread differs from real digits': train longer or balance the two networks")


def sample_disagreement(ctx: Context, j: GanJudgement) -> str | None:
    """A flag when the program's process reports samples unlike the exported generator's."""
    own = record(ctx).get("samples") or {}
    if own.get("error") or "pixel_mean" not in own:
        return None
    try:
        off = max(abs(float(own["pixel_mean"]) - j.pixel_mean), abs(float(own["pixel_std"]) - j.pixel_std))
    except (TypeError, ValueError):
        off = float("inf")
    if off <= SAMPLE_TOLERANCE:
        return None
    return (f"GAN: the program's process reports samples (pixel mean {own.get('pixel_mean')}, spread "
            f"{own.get('pixel_std')}) unlike its exported generator's ({j.pixel_mean}, {j.pixel_std}): review the run")
