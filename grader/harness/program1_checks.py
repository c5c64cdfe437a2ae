"""Checks for Program 1 (CIFAR-10 with a. KNN, b. a 3-layer neural network).

The two parts are judged separately: part a from the scikit-learn probe's record
(trace["estimators"] and the measurement with part "knn"), part b from the PyTorch or the
Keras probe's (trace["models"] / trace["fits"] and the network's measurement: part "net" from
the PyTorch probe, the Keras probe's model measurement otherwise).
"""

from __future__ import annotations

from typing import Any

from grader.harness.checks import PRINTED_ACC, PROGRESS_LINE, bar_score
from grader.harness import trust
from grader.harness.registry import Context, Outcome, check

FULLY_CONNECTED = {"Linear", "LazyLinear", "Dense"}
CONVOLUTION = {"Conv1d", "Conv2d", "Conv3d", "LazyConv2d", "Conv2D", "Conv1D"}
PART_A = "part a (KNN)"
PART_B = "part b (the 3-layer network)"


def part_of(m: dict[str, Any]) -> str | None:
    """A measurement's part: the probe names it, else a model's measurement (Keras) is the network's."""
    return m.get("part") or ("net" if "model" in m else None)


def part_measurement(ctx: Context, part: str) -> dict[str, Any] | None:
    found = [m for m in ctx.trace.get("measurements", []) if m and part_of(m) == part]
    return found[-1] if found else None


def knn_estimators(ctx: Context) -> list[dict[str, Any]]:
    return [e for e in ctx.trace.get("estimators", []) if e.get("part") == "knn"]


def network(ctx: Context) -> dict[str, Any] | None:
    """The network judged: the measured one, else the last one trained (a torch optimizer or
    Keras' fit)."""
    m = part_measurement(ctx, "net") or {}
    index = m.get("model")
    fits = ctx.fits
    if index is None and fits:
        index = fits[-1].get("model")
    models = ctx.models
    return models[index] if isinstance(index, int) and index < len(models) else None


def stopped_early(ctx: Context) -> Outcome | None:
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected")
    return None


# ---------------------------------------------------------------- part a: KNN


@check("knn.fitted", "a. A KNN classifier is trained and scored on test images")
def knn_fitted(ctx: Context, params: dict) -> Outcome:
    if (early := stopped_early(ctx)):
        return early
    knn = [e for e in knn_estimators(ctx) if e.get("fits")]
    if not knn:
        others = sorted({e["class"] for e in ctx.trace.get("estimators", []) if e.get("fits")})
        found = f"; it fitted {', '.join(others)} instead" if others else ""
        return Outcome(False, f"{PART_A} is missing: no KNeighborsClassifier was fitted{found}",
                       hint="part a: fit sklearn.neighbors.KNeighborsClassifier on the training images and "
                            "score it on the test images", evidence={"estimators": others})
    e = knn[-1]
    fit = e["fits"][-1]
    evidence = {"n_neighbors": e.get("params", {}).get("n_neighbors"), "training samples": fit.get("n"),
                "features": fit.get("features"), "calls": e.get("calls", [])[-3:]}
    held_out = [c for c in e.get("calls", []) if c.get("n") and c.get("split_part") != "train"]
    if not held_out:
        return Outcome(False, f"the KNN classifier was fitted on {fit.get('n')} samples but never scored "
                              "or asked to predict test samples", score=0.5, evidence=evidence,
                       hint="call knn.score(X_test, y_test) (or knn.predict(X_test)) on the held-out images")
    return Outcome(True, f"KNeighborsClassifier(n_neighbors={evidence['n_neighbors']}) fitted on "
                         f"{fit.get('n')} samples of {fit.get('features')} features, scored on "
                         f"{held_out[-1]['n']} test samples", evidence=evidence)


@check("knn.accuracy", "a. KNN's measured test accuracy reaches the bar")
def knn_accuracy(ctx: Context, params: dict) -> Outcome:
    if (early := stopped_early(ctx)):
        return early
    m = part_measurement(ctx, "knn")
    fig = trust.figure(ctx, m)
    if m is None or fig.accuracy is None:
        detail = (m or {}).get("error") or f"{PART_A} did not run"
        return Outcome(False, f"KNN accuracy could not be measured: {detail}", evidence=m or {},
                       hint="fit a KNN classifier and score it on held-out images")
    acc = fig.accuracy
    bar = params["bars"][ctx.data_source][ctx.job.mode]
    evidence = {"measured": acc, "threshold": bar, "reported by score()": m.get("reported"),
                "test samples": m.get("n"), "how": m.get("method"), "labels agree": m.get("labels_agree"),
                **fig.evidence}
    notes, flags = [], list(fig.flags)
    agree = m.get("labels_agree")
    if agree is not None and agree < 0.99:
        notes.append(f"only {agree:.0%} of the labels passed to score() are the images' true labels")
        flags.append("KNN scored against labels that do not belong to its test images")
    if not m.get("labels_verified", True):
        notes.append("the test rows could not be traced to the served data: scored on the program's own labels")
    note = f" ({'; '.join(notes)})" if notes else ""
    flag = "; ".join(flags) or None
    if fig.problem:
        return Outcome(False, f"KNN measures {acc:.1%}, but {fig.problem}{note}", evidence=evidence, flag=flag,
                       score=min(bar_score(acc, bar, ctx.chance), 0.5))
    if acc >= bar:
        return Outcome(True, f"KNN measures {acc:.1%} ≥ {bar:.0%} on {m.get('n')} test samples{note}",
                       evidence=evidence, flag=flag)
    return Outcome(False, f"KNN measures {acc:.1%}, below the bar of {bar:.0%}{note}",
                   score=bar_score(acc, bar, ctx.chance), evidence=evidence, flag=flag,
                   hint="standardise the features, keep each image with its label, and try a few n_neighbors")


# ---------------------------------------------------------------- part b: the network


@check("net.layers", "b. The network has three fully-connected layers")
def net_layers(ctx: Context, params: dict) -> Outcome:
    if (early := stopped_early(ctx)):
        return early
    model = network(ctx)
    if model is None:
        return Outcome(False, f"{PART_B} is missing: no network was trained (by a torch.optim optimizer "
                              "or Keras' fit)",
                       hint="part b: build a network of three fully-connected layers (nn.Linear, or Keras "
                            "Dense) and train it")
    want = params.get("fully_connected", 3)
    types = [layer.get("type", "") for layer in model.get("layers", [])]
    fc = [layer for layer in model.get("layers", []) if layer.get("type") in FULLY_CONNECTED]
    sizes = " → ".join(layer_size(l) for l in fc)
    evidence = {"layers": " → ".join(types), "fully connected": sizes, "params": model.get("params")}
    conv = [t for t in types if t in CONVOLUTION]
    if conv:
        return Outcome(False, f"{model.get('class')} has convolution layers ({', '.join(conv)}): part b asks for a "
                              "network of fully-connected layers only", score=0.5, evidence=evidence,
                       hint="part b is a plain 3-layer network: flatten the image and use three "
                            "fully-connected layers (nn.Linear or Dense)")
    if len(fc) != want:
        return Outcome(False, f"{model.get('class')} has {len(fc)} fully-connected layer(s), part b asks for {want}",
                       score=0.5 if fc else 0.0, evidence=evidence,
                       hint="use three fully-connected layers (nn.Linear or Dense): input (3072) → hidden → "
                            "hidden → 10 classes")
    out = fc[-1]["config"].get("units")
    if out != ctx.rubric.classes:
        return Outcome(False, f"the last layer has {out} outputs; CIFAR-10 has {ctx.rubric.classes} classes",
                       score=0.5, evidence=evidence, hint="the last layer needs one output per class (10)")
    return Outcome(True, f"{model.get('class')}: {want} fully-connected layers ({sizes})", evidence=evidence)


@check("net.trained", "b. The network is trained")
def net_trained(ctx: Context, params: dict) -> Outcome:
    if (early := stopped_early(ctx)):
        return early
    fits = ctx.fits
    if not fits:
        return Outcome(False, f"{PART_B} is missing: no network was trained (no torch.optim optimizer, no "
                              "Keras fit)",
                       hint="part b: train the network: optimizer.step() in a PyTorch loop, or model.fit in Keras")
    f = max(fits, key=progress)
    if f.get("framework") == "torch":
        return torch_trained(f)
    return keras_trained(ctx, f)


def progress(fit: dict[str, Any]) -> tuple[int, int]:
    return fit.get("epochs_run") or 0, fit.get("steps") or 0


def torch_trained(f: dict[str, Any]) -> Outcome:
    opt = f.get("optimizer") or {}
    evidence = {"optimizer": opt.get("class"), "learning_rate": opt.get("learning_rate"), "steps": f.get("steps"),
                "epochs": f.get("epochs_run"), "batches per epoch": f.get("batches_per_epoch")}
    if not f.get("steps"):
        return Outcome(False, f"a {opt.get('class', 'torch')} optimizer was created but never took a step: "
                              "optimizer.step() never ran, so the network kept its random weights",
                       evidence=evidence,
                       hint="in the loop: optimizer.zero_grad(); loss.backward(); optimizer.step()")
    capped = f" (capped at {f['epochs_capped_to']} in quick mode)" if f.get("epochs_capped_to") else ""
    epochs = f"{f['epochs_run']} epoch(s){capped}, " if f.get("epochs_run") else ""
    return Outcome(True, f"trained for {epochs}{f['steps']} optimizer steps with {opt.get('class')} "
                         f"(lr={opt.get('learning_rate')})", evidence=evidence)


def keras_trained(ctx: Context, f: dict[str, Any]) -> Outcome:
    models = ctx.models
    model = models[f["model"]] if isinstance(f.get("model"), int) and f["model"] < len(models) else {}
    opt = model.get("optimizer") or {}
    evidence = {"optimizer": opt.get("class"), "learning_rate": opt.get("learning_rate"),
                "epochs": f.get("epochs_run"), "epochs requested": f.get("epochs_requested"),
                "batch size": f.get("batch_size")}
    if not f.get("epochs_run"):
        return Outcome(False, "model.fit was called but no epoch finished", evidence=evidence,
                       hint="see the error above")
    capped = f" (capped from {f['epochs_requested']} in quick mode)" if f.get("epochs_capped_to") else ""
    return Outcome(True, f"trained for {f['epochs_run']} epoch(s){capped} with model.fit "
                         f"({opt.get('class', 'optimizer')}, lr={opt.get('learning_rate')})", evidence=evidence)


def layer_size(layer: dict[str, Any]) -> str:
    """'3072→512' for nn.Linear, '512' for Dense (Keras records the units only)."""
    config = layer.get("config", {})
    if "in_features" in config:
        return f"{config['in_features']}→{config.get('out_features', '?')}"
    return str(config.get("units", "?"))


@check("net.accuracy", "b. The network's measured test accuracy reaches the bar")
def net_accuracy(ctx: Context, params: dict) -> Outcome:
    if (early := stopped_early(ctx)):
        return early
    m = part_measurement(ctx, "net")
    fig = trust.figure(ctx, m)
    if m is None or fig.accuracy is None:
        detail = (m or {}).get("error") or f"{PART_B} did not run"
        # A trained network the harness could not measure may be the harness's limit: review it.
        review = "the network was trained but could not be measured: faculty should review" \
            if (m or {}).get("trained") else None
        return Outcome(False, f"the network's accuracy could not be measured: {detail}", evidence=m or {},
                       hint="train the network on CIFAR-10 (torchvision.datasets.CIFAR10 or "
                            "keras.datasets.cifar10) and evaluate it on the test set",
                       flag=review)
    acc = fig.accuracy
    bar = ctx.rubric.threshold(ctx.data_source, ctx.job.mode)
    evidence = {"measured": acc, "threshold": bar, "test images": m.get("n"), "how": m.get("method"),
                "data": ctx.data_source, "mode": ctx.job.mode, **fig.evidence}
    flag = "; ".join(fig.flags) or None
    if not m.get("trained", True):
        return Outcome(False, f"the network was never trained: it measures {acc:.1%} with its random weights",
                       score=0.0, evidence=evidence, hint="call optimizer.step() after loss.backward()", flag=flag)
    if fig.problem:
        return Outcome(False, f"the network measures {acc:.1%}, but {fig.problem}", flag=flag, evidence=evidence,
                       score=min(bar_score(acc, bar, ctx.chance), 0.5))
    if acc >= bar:
        return Outcome(True, f"the network measures {acc:.1%} ≥ {bar:.0%}", evidence=evidence, flag=flag)
    return Outcome(False, f"the network measures {acc:.1%}, below the bar of {bar:.0%}",
                   score=bar_score(acc, bar, ctx.chance), evidence=evidence, flag=flag,
                   hint="normalise the inputs, keep images with their labels, train for more epochs")


# ---------------------------------------------------------------- what the program prints


def printed_by_part(stdout: str) -> dict[str, tuple[float, str]]:
    """The last accuracy printed for each part: lines naming KNN are part a's, others part b's."""
    found: dict[str, tuple[float, str]] = {}
    for line in stdout.splitlines():
        if PROGRESS_LINE.search(line):
            continue
        for m in PRINTED_ACC.finditer(line):
            value = float(m.group(1)) / (100 if m.group(2) == "%" or float(m.group(1)) > 1 else 1)
            if 0 <= value <= 1:
                found["knn" if "knn" in line.lower() or "neighbo" in line.lower() else "net"] = (value, line.strip()[:120])
    return found


@check("parts.printed_match", "The printed accuracies are what the models achieve")
def printed_match(ctx: Context, params: dict) -> Outcome:
    printed = printed_by_part(ctx.run.stdout if ctx.run else "")
    tolerance = params.get("tolerance", 0.02)
    compared, wrong = {}, []
    for part, (value, line) in printed.items():
        m = part_measurement(ctx, part) or {}
        if m.get("accuracy") is None:
            continue
        compared[part] = {"printed": value, "measured": m["accuracy"], "line": line}
        if abs(value - m["accuracy"]) > tolerance:
            wrong.append(f"{'KNN' if part == 'knn' else 'the network'} prints {value:.2%} (\"{line}\") "
                         f"but measures {m['accuracy']:.2%}")
    if wrong:
        return Outcome(False, "; ".join(wrong), evidence=compared,
                       hint="print the accuracy the model computes on the test set, not a number written by hand",
                       flag="printed accuracy differs from the measured one: " + "; ".join(wrong))
    if not compared:
        return Outcome(True, "no printed accuracy to compare with a measurement")
    return Outcome(True, "; ".join(f"{'KNN' if p == 'knn' else 'network'} prints {c['printed']:.2%}, measured "
                                   f"{c['measured']:.2%}" for p, c in compared.items()), evidence=compared)
