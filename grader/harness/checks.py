"""The checks. Each reads the static report and the probe's trace and says what it found
in words a student understands, with a hint when it fails. Rubrics pick and weigh them."""

from __future__ import annotations

import math
import re
from typing import Any

from grader.harness.printed import PROGRESS_LINE, printed_accuracy
from grader.harness import trust
from grader.harness.registry import Context, Outcome, check
from grader.static import STEP_NAMES

# Keras' default learning rates: a different value is a tuned rate.
DEFAULT_LR = {"Adam": 0.001, "AdamW": 0.001, "RMSprop": 0.001, "SGD": 0.01, "Adagrad": 0.001,
              "Adadelta": 0.001, "Adamax": 0.001, "Nadam": 0.001, "Ftrl": 0.001}
SCHEDULE_CALLBACKS = {"ReduceLROnPlateau", "LearningRateScheduler"}
# a number printed soon after "accuracy", never inside a list: [loss, accuracy] is read by
# grader.harness.printed, which knows the list's order from its label
PRINTED_ACC = re.compile(r"\bacc(?:uracy)?\b[^0-9\n\[]{0,25}?(\d+(?:\.\d+)?)\s*(%?)", re.I)


def not_run(ctx: Context) -> Outcome | None:
    """The common answer when the program did not get far enough to judge."""
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected", hint="")
    if not ctx.fits and not ctx.models:
        return Outcome(False, f"not judged: the program stopped ({ctx.run.status.value}) before building "
                              "a model; see \"The program runs to the end\"",
                       hint="make the program run to the end first")
    return None


def finite(values: list) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


# ---------------------------------------------------------------- writeup (static)


@check("static.parses", "The program parses")
def parses(ctx: Context, params: dict) -> Outcome:
    if ctx.static.parses:
        return Outcome(True, f"parses ({ctx.static.source_lines} lines)")
    e = ctx.static.syntax_error
    if e is None:  # rejected before analysis
        return Outcome(False, f"nothing to read: {ctx.job.rejected_reason or 'not submitted'}",
                       hint="submit the program as a .py script or a .ipynb notebook")
    where = ", ".join(p for p in (e.file, e.where()) if p)
    text = f": `{e.text.strip()}`" if e.text.strip() else ""
    fix = f"fix line {e.line}" + (f" of cell {e.cell}" if e.cell else "")
    return Outcome(False, f"syntax error in {where}: {e.message}{text}",
                   hint=f"{fix} and run it once before submitting" if e.line else
                   "save the notebook again from Jupyter or Colab",
                   evidence=e.model_dump())


@check("static.steps", "The program has the required steps")
def steps(ctx: Context, params: dict) -> Outcome:
    """params.steps: only these of the rubric's required steps (a rubric that marks each step
    under an attribute of its own names the step there)."""
    present = ctx.static.steps
    if present and params.get("steps"):
        present = {s: ok for s, ok in present.items() if s in params["steps"]}
    if not present:
        return Outcome(False, "could not look for the steps: the program does not parse", score=0.0)
    missing = [STEP_NAMES.get(s, s) for s, ok in present.items() if not ok]
    score = sum(present.values()) / len(present)
    if not missing:
        return Outcome(True, "all steps present: " + ", ".join(STEP_NAMES.get(s, s) for s in present),
                       evidence=present)
    return Outcome(False, "missing: " + ", ".join(missing), score=score,
                   hint="the manual's program does each of: " + ", ".join(STEP_NAMES.get(s, s) for s in present),
                   evidence=present)


@check("static.current_api", "Uses current Keras APIs")
def current_api(ctx: Context, params: dict) -> Outcome:
    """An API that fails here, or silently does something else (lr=), costs the mark; one
    that is deprecated but still runs is a hint on a passed check."""
    found = ctx.static.removed_apis
    if not ctx.static.parses:
        return Outcome(False, "could not be read", score=0.0)
    if not found:
        return Outcome(True, "no API that Keras 3 removed")
    failing = [f for f in found if api_costs(ctx, f)]
    running = [f for f in found if f not in failing]
    # a passed check shows no hint: the advice for what still runs goes in its message
    still = (f"deprecated but still runs here, no mark lost: {where_apis(running)}. A later Keras may drop it: "
             + " ".join(f"instead of {f['api']}, {f['replacement']}." for f in running)) if running else ""
    if not failing:
        return Outcome(True, still, evidence={"apis": found})
    return Outcome(False, f"uses APIs that Keras 3 removed or changed: {where_apis(failing)}"
                          + (f"; {still}" if still else ""),
                   hint=" ".join(f"Instead of {f['api']}: {f['replacement']}." for f in failing),
                   evidence={"apis": found})


def api_costs(ctx: Context, found: dict) -> bool:
    """A removed API costs the mark when it silently changes what the program does, or
    when the run stopped at it; one that ran (or that the run never reached) does not."""
    stopped_at = ((ctx.trace.get("exception") or {}).get("removed_api") or {}).get("api")
    return bool(found.get("silent")) or found["api"] == stopped_at


def where_apis(found: list[dict]) -> str:
    return "; ".join(f"{f['api']} ({where_in_source(f)})" for f in found)


def where_in_source(found: dict) -> str:
    """'line 12', or 'cell 3, line 2' in a notebook."""
    return (f"cell {found['cell']}, " if found.get("cell") else "") + f"line {found['line']}"


# ---------------------------------------------------------------- execution (run)


@check("run.completes", "The program runs to the end")
def completes(ctx: Context, params: dict) -> Outcome:
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected")
    if ctx.ran_ok:
        return Outcome(True, f"ran to the end in {ctx.run.wall_s:.0f} s")
    hints = {"timeout": "look for a loop that never ends, or lower the work done",
             "oom": "look for data copied again and again, or a much too large model or batch",
             "error": "run it yourself and fix the error shown"}
    exc = ctx.trace.get("exception") or {}
    return Outcome(False, f"{ctx.run.status.value}: {ctx.run.message}",
                   hint=hints.get(ctx.run.status.value, ""),
                   evidence={k: exc.get(k) for k in ("type", "line", "code", "phase") if exc.get(k)})


@check("framework.keras", "Uses TensorFlow / Keras")
def uses_keras(ctx: Context, params: dict) -> Outcome:
    frameworks = ctx.trace.get("frameworks", {})
    keras = models_of(ctx, "keras")
    if keras:
        return Outcome(True, f"Keras models built ({len(keras)})", evidence=frameworks)
    if ctx.models:
        built = ", ".join(sorted({FRAMEWORK_NAMES.get(m.get("framework", ""), m.get("framework", "?"))
                                  for m in ctx.models}))
        return Outcome(False, f"not TensorFlow/Keras: the model is built with {built}",
                       hint="this program must be written with TensorFlow and Keras")
    if {"tensorflow", "keras"} & set(ctx.static.imports):
        return Outcome(False, "imports TensorFlow/Keras but no Keras model was built",
                       hint="build the model with keras.Sequential or the functional API")
    return Outcome(False, "does not use TensorFlow/Keras (imports: " + (", ".join(ctx.static.imports) or "none") + ")",
                   hint="this program must be written with TensorFlow and Keras")


FRAMEWORK_NAMES = {"keras": "Keras", "torch": "PyTorch"}


def models_of(ctx: Context, framework: str) -> list[dict[str, Any]]:
    """The models built with a framework (the Keras probe's models carry no framework key)."""
    return [m for m in ctx.models if m.get("framework", "keras") == framework]


@check("framework.any_of", "Uses one of the allowed frameworks")
def uses_any_of(ctx: Context, params: dict) -> Outcome:
    allowed = params.get("frameworks", ["keras"])
    names = " or ".join(FRAMEWORK_NAMES.get(f, f) for f in allowed)
    for framework in allowed:
        built = models_of(ctx, framework)
        if built:
            classes = ", ".join(sorted({m.get("class", "model") for m in built}))
            return Outcome(True, f"{FRAMEWORK_NAMES.get(framework, framework)} model(s) built: {classes}",
                           evidence={"framework": framework, **ctx.trace.get("frameworks", {})})
    return Outcome(False, f"no {names} model was built (imports: " + (", ".join(ctx.static.imports) or "none") + ")",
                   hint=f"this program must be written with {names}")


@check("model.trained", "The model is trained")
def trained(ctx: Context, params: dict) -> Outcome:
    # A PyTorch loop over hand-made batches has optimizer steps but no DataLoader pass to count.
    done = [f for f in ctx.fits if f.get("epochs_run", 0) > 0 or f.get("steps", 0) > 0]
    t, why = trust.exported_chatbot(ctx)
    if done and (t is not None or why is not None):
        return chatbot_trained(t, why, done[-1])
    if done:
        f = done[-1]
        evidence = {k: f.get(k) for k in ("epochs_requested", "epochs_run", "steps", "batch_size", "validation")}
        if not f.get("epochs_run"):
            return Outcome(True, f"trained for {f['steps']} optimizer steps (no full pass over the training "
                                 "data to count epochs by)", evidence=evidence)
        capped = f" (capped from {f['epochs_requested']} in quick mode)" if f.get("epochs_capped_to") else ""
        return Outcome(True, f"trained for {f['epochs_run']} epoch(s){capped}", evidence=evidence)
    if ctx.fits:
        return Outcome(False, "model.fit was called but no epoch finished", hint="see the error above")
    if ctx.models:
        m = ctx.models[-1]
        return Outcome(False, f"the model ({m.get('class', 'model')}) was built but never trained: "
                              "no model.fit call ran",
                       hint="call model.fit(x_train, y_train, epochs=…) before evaluating")
    return not_run(ctx) or Outcome(False, "no model was trained")


def chatbot_trained(t: Any, why: str | None, fit: dict[str, Any]) -> Outcome:
    """A chatbot's training judged outside the program: its loss on the rows it was fitted on
    against a fresh model's (the epochs the process recorded are evidence only)."""
    done = f"{fit['epochs_run']} epoch(s)" if fit.get("epochs_run") else f"{fit.get('steps')} optimizer steps"
    said = f"{done} recorded in the program's process"
    if t is None or t.loss_error:
        return trust.not_exported(said, why or t.loss_error)
    if t.loss is None:
        return Outcome(True, f"{said} (it was not fitted on arrays, so its loss was not measured outside it)",
                       evidence={"source": "the program's own process (evidence only)"})
    # Keras: the same architecture freshly initialised; PyTorch: a uniform guess, ln(classes)
    fresh = "a uniform guess's" if t.framework == "torch" else "a fresh model's"
    evidence = {"loss on its training rows": t.loss, fresh: t.loss_fresh,
                "source": "clean sandbox: the exported model on the rows it was fitted on"}
    if t.loss <= trust.TRAINED_RATIO * t.loss_fresh:
        return Outcome(True, f"{said}; outside it the model's loss on its training rows is {t.loss:.3f}, "
                             f"{fresh} {t.loss_fresh:.3f}", evidence=evidence)
    problem = (f"{said}, but outside it the model's loss on its training rows is {t.loss:.3f}, no lower than "
               f"{fresh} {t.loss_fresh:.3f}")
    return Outcome(False, problem, evidence=evidence, flag=problem,
                   hint="train the model on the encoded lines (model.fit) and keep the trained model")


# PyTorch's names for the layers a rubric names in Keras' terms: the structure is judged
# whatever the framework (whether the framework is the one asked for is its own check).
KERAS_NAMES = {"Conv1d": "Conv1D", "Conv2d": "Conv2D", "MaxPool2d": "MaxPooling2D", "AvgPool2d": "AveragePooling2D",
               "AdaptiveAvgPool2d": "GlobalAveragePooling2D", "AdaptiveMaxPool2d": "GlobalMaxPooling2D",
               "BatchNorm2d": "BatchNormalization", "BatchNorm1d": "BatchNormalization", "RNN": "SimpleRNN"}


def layer_types(model: dict[str, Any]) -> list[str]:
    """Layer types in Keras' terms (PyTorch's Conv2d counts as Conv2D)."""
    return [KERAS_NAMES.get(layer.get("type", ""), layer.get("type", "")) for layer in model.get("layers", [])]


def layer_label(layer: dict[str, Any]) -> str:
    """'Bidirectional(LSTM)' for a wrapper, so a rubric can require what is wrapped."""
    kind = layer.get("type", "")
    return f"{kind}({layer['wraps']})" if layer.get("wraps") else kind


OUTPUT_LAYERS = ("Dense", "Linear")


def output_matches(want: dict[str, Any], kind: str, units: Any, act: Any) -> bool:
    """An output spec names a layer type (default Dense), units and an activation. Units left
    out (e.g. a next-word model: one unit per word) fix only the activation; a torch Linear has
    no activation of its own (the loss or forward() applies it): its spec gives none."""
    if kind != want.get("layer", "Dense") or want.get("units") not in (None, units):
        return False
    return "activation" not in want or act == want["activation"]


@check("model.structure", "The model has the required structure")
def structure(ctx: Context, params: dict) -> Outcome:
    model = ctx.main_model
    if model is None:
        return not_run(ctx) or Outcome(False, "no model to inspect")
    t, why = trust.exported_chatbot(ctx)
    if why is not None:
        return trust.not_exported("the model's layers", why)
    if t is not None:  # a chatbot's layers as its exported architecture gives them
        model = {"layers": t.layers, "params": model.get("params")}
    types = layer_types(model)
    labels = [layer_label(l) for l in model.get("layers", [])]
    problems, found = [], {}
    for req in params.get("require", []):
        hits = [b for t, b in zip(types, labels) if t in req["any_of"] or b in req["any_of"]]
        found[req["name"]] = hits
        if not hits:
            problems.append(f"no {req['name']} layer (one of {', '.join(req['any_of'])}; "
                            f"the model has {' → '.join(labels) or 'no layers'})")
    want = params.get("output")
    accepted = params.get("outputs_any_of") or ([want] if want else [])
    dense = [l for l in model.get("layers", []) if l.get("type") in OUTPUT_LAYERS]
    if accepted:
        want = want or accepted[0]
        last = dense[-1] if dense else {}
        kind = last.get("type", "Dense")
        units, act = last.get("config", {}).get("units"), last.get("config", {}).get("activation")
        found["output"] = {"layer": kind, "units": units, "activation": act}
        if not any(output_matches(w, kind, units, act) for w in accepted):
            linear = " or ".join(str(w.get("units", "n")) for w in accepted if w.get("layer") == "Linear")
            torch_too = f" (in PyTorch: Linear(…, {linear}))" if linear else ""
            found_text = f"{kind}({units}, {act})" if last else "no Dense or Linear layer"
            problems.append(f"the output layer should be Dense({want.get('units', 'n')}, "
                            f"activation='{want['activation']}'){torch_too}, found {found_text}")
    total = len(params.get("require", [])) + (1 if accepted else 0)
    score = (total - len(problems)) / total if total else 1.0
    evidence = {"layers": " → ".join(labels), "params": model.get("params"), **found}
    if t is not None:
        evidence["source"] = ("clean sandbox: the layers of the exported program's graph, not the program's record"
                              if t.framework == "torch" else
                              "host: the layers of the exported Keras architecture (JSON), not the program's record")
    if problems:
        return Outcome(False, "; ".join(problems), score=score, evidence=evidence,
                       hint=params.get("hint", "a CNN for CIFAR-10 needs convolution and pooling layers "
                                                       "and a 10-way softmax output"))
    return Outcome(True, f"{len(types)} layers: " + " → ".join(labels), evidence=evidence)


def techniques(ctx: Context, model: dict[str, Any]) -> dict[str, str]:
    """Improvements over the plain Program 3 CNN, each with what shows it."""
    found: dict[str, str] = {}
    types = layer_types(model)
    aug = [l["type"] for l in model.get("layers", []) if l.get("augmentation")]
    fit_aug = [f["inputs"].get("augmentation_from") for f in ctx.fits if f.get("inputs", {}).get("augmentation_from")]
    if aug or fit_aug:
        found["data augmentation"] = ", ".join(aug + fit_aug)
    for layer, name in (("BatchNormalization", "batch normalisation"), ("Dropout", "dropout")):
        if layer in types:
            found[name] = f"{types.count(layer)} {layer} layer(s)"
    if any(l.get("config", {}).get("kernel_regularizer") for l in model.get("layers", [])):
        found["weight regularisation"] = "kernel_regularizer"
    opt = model.get("optimizer") or {}
    lr = opt.get("learning_rate")
    if isinstance(lr, dict):
        found["learning-rate schedule"] = lr.get("schedule", "schedule")
    elif isinstance(lr, (int, float)) and opt.get("class") in DEFAULT_LR and not math.isclose(lr, DEFAULT_LR[opt["class"]], rel_tol=1e-3):
        found["tuned learning rate"] = f"{opt['class']} learning_rate={lr:g} (default {DEFAULT_LR[opt['class']]:g})"
    callbacks = {c for f in ctx.fits for c in f.get("callbacks", [])}
    if callbacks & SCHEDULE_CALLBACKS:
        found["learning-rate schedule"] = ", ".join(sorted(callbacks & SCHEDULE_CALLBACKS))
    if "EarlyStopping" in callbacks:
        found["early stopping"] = "EarlyStopping callback"
    convs = sum(t.startswith("Conv") for t in types)
    if convs >= 2:
        found["deeper network"] = f"{convs} convolution layers"
    return found


@check("model.improvement", "Improves on the Program 3 model")
def improvement(ctx: Context, params: dict) -> Outcome:
    model = ctx.main_model
    if model is None:
        return not_run(ctx) or Outcome(False, "no model to inspect")
    found = techniques(ctx, model)
    ignored_lr = [a for a in ctx.static.removed_apis if a["api"].startswith("optimizer argument lr")]
    note = (" Note: lr= is not a learning rate in this Keras: the optimizer trained with "
            f"{(model.get('optimizer') or {}).get('learning_rate')}." if ignored_lr and ctx.fits else "")
    need = params.get("min_techniques", 1)
    if len(found) >= need:
        return Outcome(True, "improvements: " + "; ".join(f"{k} ({v})" for k, v in found.items()) + note,
                       evidence=found)
    return Outcome(False, "no improvement over the Program 3 CNN was found" + note, score=len(found) / need,
                   hint="add data augmentation, batch normalisation, dropout, a tuned learning rate or a "
                        "learning-rate schedule, and say in a comment which one you chose",
                   evidence=found)


@check("model.loss_matches_output", "The loss fits the output layer")
def loss_matches(ctx: Context, params: dict) -> Outcome:
    model = ctx.main_model
    if model is not None and model.get("framework") == "torch":
        return torch_loss_matches(ctx, model)
    if model is None or not model.get("loss"):
        return not_run(ctx) or Outcome(False, "the model was never compiled with a loss")
    loss = str(model["loss"]).lower()
    dense = [l for l in model.get("layers", []) if l.get("type") == "Dense"]
    units = dense[-1].get("config", {}).get("units") if dense else None
    act = dense[-1].get("config", {}).get("activation") if dense else None
    if "binary" in loss and units and units > 1:
        return Outcome(False, f"loss '{model['loss']}' is for two classes, but the output is a "
                              f"{units}-way {act}: the model learns the wrong objective and 'accuracy' "
                              "then reports binary accuracy",
                       hint="use loss='sparse_categorical_crossentropy' with integer labels "
                            "(or 'categorical_crossentropy' with one-hot labels)",
                       evidence={"loss": model["loss"], "output_units": units, "activation": act})
    return Outcome(True, f"loss '{model['loss']}' fits a {units}-unit {act} output",
                   evidence={"loss": model["loss"], "output_units": units})


# the loss as its backward node names it -> the nn loss a student writes
TORCH_LOSSES = {"NllLossBackward0": "CrossEntropyLoss (or NLLLoss)",
                "BinaryCrossEntropyWithLogitsBackward0": "BCEWithLogitsLoss",
                "BinaryCrossEntropyBackward0": "BCELoss", "MseLossBackward0": "MSELoss"}


def torch_loss_matches(ctx: Context, model: dict[str, Any]) -> Outcome:
    """BCELoss / BCEWithLogitsLoss want one output unit, CrossEntropyLoss (seen as NllLoss) two
    or more: CrossEntropyLoss over a single unit is always zero and nothing is learned."""
    fits = [f for f in ctx.fits if f.get("model") == model.get("id") and f.get("loss_fn")]
    loss_fn = fits[-1]["loss_fn"] if fits else None
    linear = [l for l in model.get("layers", []) if l.get("type") == "Linear"]
    units = linear[-1].get("config", {}).get("units") if linear else None
    evidence = {"loss_fn": loss_fn, "output_units": units}
    if loss_fn is None or units is None:
        return Outcome(True, "the loss or the output layer could not be seen: not judged", evidence=evidence)
    if "BinaryCrossEntropy" in loss_fn and units > 1:
        return Outcome(False, f"a binary loss ({TORCH_LOSSES.get(loss_fn, loss_fn)}) on a {units}-unit output",
                       hint="use nn.CrossEntropyLoss with a 2-unit output, or a 1-unit output with "
                            "nn.BCEWithLogitsLoss", evidence=evidence)
    if "Nll" in loss_fn and units == 1:
        return Outcome(False, "CrossEntropyLoss on a 1-unit output: the loss is always zero and nothing "
                              "is learned", hint="use nn.BCEWithLogitsLoss with one output unit, or two units",
                       evidence=evidence)
    return Outcome(True, f"loss {TORCH_LOSSES.get(loss_fn, loss_fn)} fits a {units}-unit Linear output",
                   evidence=evidence)


@check("training.loss_falls", "The training loss falls")
def loss_falls(ctx: Context, params: dict) -> Outcome:
    losses = finite(ctx.history.get("loss", []))
    unobserved = loss_unobserved(ctx)
    if unobserved and not losses:
        return Outcome(True, f"not judged: {unobserved}", evidence={"steps": ctx.fits[-1].get("steps")})
    if len(losses) < 2:
        if not ctx.fits:
            return not_run(ctx) or Outcome(False, "no training to judge")
        if not losses:
            return Outcome(False, "no epoch finished: there is no loss to judge")
        return Outcome(True, "only one epoch was run: the trend cannot be judged", evidence={"loss": losses})
    if losses[-1] < losses[0] * 0.98:
        return Outcome(True, f"loss fell from {losses[0]:.3f} to {losses[-1]:.3f}", evidence={"loss": losses})
    return Outcome(False, f"loss did not fall ({losses[0]:.3f} → {losses[-1]:.3f})",
                   hint="check the learning rate and that inputs are scaled (e.g. /255)",
                   evidence={"loss": losses})


def loss_unobserved(ctx: Context) -> str | None:
    """Why the last training's losses could not be recorded (a step compiled with tf.function)."""
    return ctx.fits[-1].get("loss_unobserved") if ctx.fits else None


MISMATCH = ("the loss, the labels and the accuracy metric do not match (e.g. a binary loss on 10 "
            "classes, one-hot labels with a sparse metric, or labels shuffled apart from their images)")


@check("training.learns", "Accuracy is above chance")
def learns(ctx: Context, params: dict) -> Outcome:
    measured = ctx.measured_accuracy
    reported = finite(ctx.history.get("accuracy", []) or ctx.history.get("acc", []))
    acc, source = (measured, "measured test accuracy") if measured is not None else \
        ((reported[-1], "training accuracy") if reported else (None, ""))
    if acc is None:
        return not_run(ctx) or Outcome(False, "no accuracy could be measured", evidence=ctx.measurement or {})
    if measured is not None and not ctx.measurement.get("trained", True):
        return Outcome(False, f"the model was never trained: it measures {acc:.1%} as it was built",
                       hint="train the model before evaluating it", score=0.0)
    margin = params.get("margin", 0.05)
    losses = finite(ctx.history.get("loss", []))
    falling = len(losses) >= 2 and losses[-1] < losses[0] * 0.95
    evidence = {source: round(acc, 4), "reported training accuracy": reported, "chance": round(ctx.chance, 4),
                "loss": losses}
    at_chance = lambda a: a <= ctx.chance + margin  # noqa: E731
    if not at_chance(acc):
        if falling and reported and at_chance(reported[-1]) and measured is not None:
            # The manual's own Program 4 run shows this: the printed accuracy is not the model's.
            return Outcome(True, f"the model learned ({source} {acc:.1%}), but the accuracy Keras reported "
                                 f"while training stayed at chance ({reported[-1]:.1%}) as the loss fell "
                                 f"({losses[0]:.3f} → {losses[-1]:.3f}): {MISMATCH}; the accuracy it prints "
                                 "is not the model's",
                           evidence=evidence, flag="reported training accuracy at chance while the loss falls")
        return Outcome(True, f"{source} {acc:.1%} is well above chance ({ctx.chance:.0%})", evidence=evidence)
    if falling:
        return Outcome(False, f"the loss falls ({losses[0]:.3f} → {losses[-1]:.3f}) while {source} stays at "
                              f"chance ({acc:.1%}): {MISMATCH}",
                       hint="check that the loss matches the label format and the output layer, and that "
                            "labels stay paired with their images",
                       evidence=evidence, score=0.0)
    return Outcome(False, f"{source} {acc:.1%} is at chance ({ctx.chance:.0%}): the model learned nothing",
                   hint="check the learning rate, input scaling and labels", evidence=evidence, score=0.0)


@check("training.finite", "No NaN or infinite loss")
def no_nan(ctx: Context, params: dict) -> Outcome:
    losses = ctx.history.get("loss", [])
    if not losses and loss_unobserved(ctx):
        return Outcome(True, f"not judged: {loss_unobserved(ctx)}")
    if not losses:
        return not_run(ctx) or Outcome(False, "no training history to check")
    bad = [i + 1 for i, v in enumerate(losses) if not (isinstance(v, (int, float)) and math.isfinite(v))]
    if bad:
        return Outcome(False, f"the loss became NaN or infinite at epoch {bad[0]}",
                       hint="lower the learning rate; check inputs for NaN and scale them",
                       evidence={"loss": losses})
    return Outcome(True, "all losses finite")


@check("training.generalisation_gap", "Train and validation accuracy stay close")
def gap(ctx: Context, params: dict) -> Outcome:
    hist = ctx.history
    train = finite(hist.get("accuracy", []) or hist.get("acc", []))
    val = finite(hist.get("val_accuracy", []) or hist.get("val_acc", []))
    if not train or not val:
        return Outcome(True, "no validation accuracy recorded: the gap cannot be judged",
                       evidence={"validation": bool(val)})
    g = train[-1] - val[-1]
    evidence = {"train_accuracy": round(train[-1], 4), "val_accuracy": round(val[-1], 4), "gap": round(g, 4)}
    if g > params.get("max_gap", 0.15):
        return Outcome(False, f"training accuracy {train[-1]:.1%} is far above validation accuracy "
                              f"{val[-1]:.1%}: the model overfits",
                       hint="add dropout, augmentation or regularisation, or stop earlier", evidence=evidence)
    return Outcome(True, f"gap between training and validation accuracy is {g:+.1%}", evidence=evidence)


@check("accuracy.threshold", "Measured test accuracy reaches the bar")
def threshold(ctx: Context, params: dict) -> Outcome:
    m = ctx.measurement or {}
    fig = trust.figure(ctx, ctx.measurement)
    acc = fig.accuracy
    if acc is None:
        detail = m.get("error", "")
        return not_run(ctx) or Outcome(False, "the test accuracy could not be measured" + (f": {detail}" if detail else ""),
                                       evidence=m, flag=m.get("review"))
    bar = ctx.rubric.threshold(ctx.data_source, ctx.job.mode)
    score = bar_score(acc, bar, ctx.chance)
    evidence = {"measured": acc, "threshold": bar, "data": ctx.data_source, "mode": ctx.job.mode,
                "test_images": m.get("n"), "how": m.get("method"), **fig.evidence}
    flag = "; ".join(fig.flags) or None
    if not m.get("trained", True):
        return Outcome(False, f"measured {acc:.1%} on an untrained model", score=0.0, evidence=evidence,
                       hint="train the model before evaluating it", flag=flag)
    if fig.problem:
        return Outcome(False, f"measured test accuracy {acc:.1%}, but {fig.problem}", score=min(score, 0.5),
                       hint="train on the training set only, and let the program run to its end", evidence=evidence,
                       flag=flag)
    if acc >= bar:
        return Outcome(True, f"measured test accuracy {acc:.1%} ≥ {bar:.0%}", evidence=evidence, flag=flag)
    return Outcome(False, f"measured test accuracy {acc:.1%} is below the bar of {bar:.0%}", score=score,
                   hint="train longer, improve the model, or check the preprocessing", evidence=evidence, flag=flag)


def bar_score(acc: float, bar: float, chance: float) -> float:
    """Partial credit below the bar: the share of the way from chance to the bar."""
    return max(0.0, min(1.0, (acc - chance) / (bar - chance))) if bar > chance else float(acc >= bar)


@check("accuracy.printed_matches", "The printed accuracy is what the model achieves")
def printed_matches(ctx: Context, params: dict) -> Outcome:
    acc = served_accuracy(ctx)
    printed = printed_accuracy(ctx.run.stdout if ctx.run else "")
    if printed is None:
        return Outcome(True, "the program prints no test accuracy of its own that can be read unambiguously")
    value, line = printed.value, printed.line
    if acc is None:
        return Outcome(True, f"prints {value:.2%}; nothing was measured to compare with", evidence={"line": line})
    evidence = {"printed": value, "measured": acc, "line": line}
    if abs(value - acc) > params.get("tolerance", 0.02):
        return Outcome(False, f"prints accuracy {value:.2%} (\"{line}\") but the model measures {acc:.2%}",
                       hint="print the value model.evaluate returns, not a number written by hand",
                       evidence=evidence, flag=f"printed accuracy {value:.2f} differs from measured {acc:.2f}")
    return Outcome(True, f"prints {value:.2%}, measured {acc:.2%}", evidence=evidence)


def served_accuracy(ctx: Context) -> float | None:
    """The model's accuracy on the test images the program itself was served, the ones its
    printed figure is about (not images it never received): the trusted figure on them,
    else the probe's measurement."""
    m = ctx.measurement
    t = ctx.trusted_for(m)
    if t is not None and t.accuracy_served is not None:
        return t.accuracy_served
    return m.get("accuracy") if m and m.get("accuracy") is not None else ctx.measured_accuracy
