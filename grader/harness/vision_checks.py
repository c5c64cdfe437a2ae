"""Checks for programs that use a pretrained model on an image (Programs 2 and 5): the
model and its weights, the head, eval mode, the student's own image, the detections, and
the final model on the harness's reference image.

They read the record of the framework that built the model: trace["torchvision"]
(grader.probe.torchvision_hooks) or, for `keras.applications` models,
trace["keras_applications"] (grader.probe.keras_assets), which has the same shape; and
trace["post_run"]["vision"] (grader.probe.vision: empty where the rubric's cross_check is off
and the model was exported). With stand-in weights a prediction means
nothing, so only what does not depend on the weights is judged: what was built and loaded,
the shapes, the modes, and whether outputs are well-formed. Those records are the program's
process's, so evidence: whether the pretrained weights were kept, the head's outputs and the
reference outputs are judged on the final model re-measured outside it, for either framework
(grader/trusted_vision.py, grader/trusted_keras_apps.py); without that re-measurement the
checks are kept below Good and flagged.

A classifier that keeps its pretrained ImageNet head and names the label it predicts
(`decode_predictions`, or the weights' own category list) classifies the given image as
the exercise asks: a rubric accepts that with `pretrained_head_ok`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from grader.harness.registry import Context, Outcome, check
from grader.harness.trust import not_exported
from grader.models import TrustedMeasurement
from grader.probe.keras_assets import APPLICATIONS
from grader.probe.vision import cross_check_on
from grader.static import STEP_NAMES, called_names, read_source


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ServedWeights(Loose):
    file: str
    source: str  # real | standin
    verified: bool | None = None
    model: str = ""
    for_model: int | None = None

    def describe(self) -> str:
        state = "real" if self.source == "real" else "synthetic stand-in: the real file is not staged"
        return f"{self.file} ({state})"


class ModelRecord(Loose):
    index: int
    factory: str
    task: str  # classification | detection
    requested: dict[str, Any] = {}
    loaded: list[ServedWeights] = []
    built: dict[str, Any] = {}
    final: dict[str, Any] | None = None
    labels: dict[str, Any] | None = None

    def asked(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.requested.items() if k != "positional")
        return f"{self.factory}({args})"


class Forward(Loose):
    model: int
    training: bool
    grad: bool = True
    input: Any = None
    output: dict[str, Any] | None = None


class ImageRead(Loose):
    path: str
    name: str
    size: list[int] | None = None
    reader: str = ""


class Decoded(Loose):
    index: int  # the arg-max of the scores decoded
    top: list[list[Any]] = []  # [wnid, name, score] as decode_predictions returned them


class VisionTrace(Loose):
    framework: str = "torchvision"
    version: str | None = None
    weights: list[ServedWeights] = []
    models: list[ModelRecord] = []
    forwards: list[Forward] = []
    forward_calls: int = 0
    images: list[ImageRead] = []
    decoded: list[Decoded] = []

    def calls_of(self, index: int) -> list[Forward]:
        return [f for f in self.forwards if f.model == index]


def vision(ctx: Context) -> VisionTrace:
    """The torchvision record, or the keras.applications one when only Keras built a model."""
    torchvision = ctx.trace.get("torchvision") or {}
    keras = ctx.trace.get("keras_applications") or {}
    if keras.get("models") and not torchvision.get("models"):
        return VisionTrace.model_validate({**keras, "framework": "keras"})
    return VisionTrace.model_validate(torchvision)


def stopped(ctx: Context, what: str = "building a pretrained model") -> Outcome:
    if ctx.run is None:
        return Outcome(False, "not run: the submission was rejected")
    if not ctx.trace:
        return Outcome(False, f"not judged: the program did not run ({ctx.run.message[:200]})",
                       hint="make the program run to the end first")
    return Outcome(False, f"not judged: the program stopped ({ctx.run.status.value}) before {what}; "
                          "see \"The program runs to the end\"", hint="make the program run to the end first")


def main_model(v: VisionTrace, task: str | None = None) -> ModelRecord | None:
    """The model the program ran last (of the task, if given), else the last one built."""
    candidates = [m for m in v.models if task is None or m.task == task]
    ran = [m for m in candidates if v.calls_of(m.index)]
    return (ran or candidates or [None])[-1]


# ---------------------------------------------------------------- the re-measurement

PRETRAINED_SHARE = 0.9  # of the parameters the served file has: the file's, or fine-tuned from it


def trusted_model(ctx: Context, v: VisionTrace) -> TrustedMeasurement | None:
    """The re-measurement of the final pretrained model, if the export got that far: the one of
    the framework whose record the checks read (grader/trusted_vision.py for torchvision,
    grader/trusted_keras_apps.py for keras.applications). A trace that names the other
    framework than the model exported finds none, and its checks are capped."""
    framework = "torchvision" if v.framework == "torchvision" else "keras_applications"
    found = [t for t in (ctx.run.trusted if ctx.run else []) if t.framework == framework]
    return found[-1] if found else None


def not_re_measured(t: TrustedMeasurement | None, what: str) -> Outcome:
    reason = t.error if t is not None and t.error else "the program's trace holds no exported model"
    return not_exported(what, reason, hint="make the program run to the end with its final model intact")


# ---------------------------------------------------------------- model and weights


@check("vision.model", "Builds the required pretrained model")
def model_built(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    task, factories = params.get("task", "classification"), params.get("factories") or []
    if not v.models:
        if ctx.ran_ok:
            return Outcome(False, "no model was built with a torchvision.models factory or keras.applications",
                           hint=params.get("hint", "build the model with torchvision.models"))
        return stopped(ctx)
    fitting = [m for m in v.models if m.task == task and (not factories or m.factory in factories)]
    built = ", ".join(f"{m.factory} ({m.task})" for m in v.models)
    if fitting:
        return Outcome(True, f"built {built}", evidence={"models": [m.factory for m in v.models]})
    wanted = " or ".join(factories) if factories else f"a {task} model"
    return Outcome(False, f"built {built}, not {wanted}: this program needs a {task} model",
                   hint=params.get("hint", f"use {wanted}"), evidence={"models": [m.factory for m in v.models]})


@check("vision.pretrained", "Loads pretrained weights")
def pretrained(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    model = main_model(v, params.get("task"))
    if model is None:
        return stopped(ctx) if not ctx.ran_ok else Outcome(False, "no pretrained model was built")
    own = [w for w in model.loaded if w.model == params.get("weights_of", w.model)]
    loaded_later = [w for w in v.weights if w.for_model is None]  # torch.load of a known file
    evidence = {"requested": model.requested, "loaded": [w.model_dump() for w in model.loaded + loaded_later]}
    if own or loaded_later:
        served = (own or loaded_later)[0]
        said = (f"{model.asked()} built with pretrained weights {served.describe()}" if own else
                f"{model.asked()}, then pretrained weights {served.describe()} loaded with torch.load")
        return weights_kept(ctx, v, said, evidence)
    if model.loaded:
        return Outcome(False, f"{model.asked()}: only the backbone is pretrained "
                              f"({', '.join(w.file for w in model.loaded)}); the model itself starts untrained",
                       hint=params.get("hint", ""), evidence=evidence)
    return Outcome(False, f"{model.asked()} starts from random weights: no pretrained weights were loaded",
                   hint=params.get("hint", "ask for the pretrained weights: weights=...DEFAULT (or pretrained=True)"),
                   evidence=evidence)


def weights_kept(ctx: Context, v: VisionTrace, said: str, evidence: dict[str, Any]) -> Outcome:
    """Passes when the exported model, outside the program, is mostly the served file's weights
    (or fine-tuned from them); the program's record of what was served is not enough."""
    if "vision" not in (ctx.rubric.probe or {}):  # a rubric without reference images exports no pretrained model
        return Outcome(True, said, evidence={**evidence, "source": "the program's own process (evidence only): "
                                             "this rubric has no reference images to re-measure the model on"})
    t = trusted_model(ctx, v)
    if t is None or t.error or t.weights is None:
        return not_re_measured(t, said)
    w = t.weights
    evidence = {**evidence, "re-measured weights": w.model_dump(), "source": "clean sandbox: the exported model "
                "against the host's copy of the served file"}
    if w.file and w.share >= PRETRAINED_SHARE:
        return Outcome(True, f"{said}; outside the program, {w.share:.0%} of the final model's parameters are "
                             f"{w.file}'s (or fine-tuned from them)", evidence=evidence)
    kept = (f"only {w.share:.0%} of the final model's parameters are the served file's or close to them "
            "(measured outside the program)")
    return Outcome(False, f"{said}, but {kept}", evidence=evidence,
                   hint="keep the pretrained weights: do not overwrite them with weights of your own",
                   flag=f"the program's process recorded pretrained weights, but {kept}")


@check("vision.head", "The final layer fits the task's classes")
def head_fits(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    model = main_model(v, "classification")
    if model is None:
        return stopped(ctx) if not ctx.ran_ok else Outcome(False, "no classification model was built")
    if model.final is None:
        return stopped(ctx, "its final model could be inspected")
    classes = int(params.get("classes", ctx.rubric.classes))
    head, first = model.final.get("head") or {}, model.built.get("head") or {}
    out, inputs = head.get("out_features"), head.get("in_features")
    evidence = {"built": first, "final": head, "replaced": model.final.get("head_replaced")}
    outside = trusted_width(ctx, v)
    if outside is not None and out is not None and outside != out:
        problem = (f"the program's process described the head with {out} outputs, but the exported model gives "
                   f"{outside} outside it")
        return Outcome(False, problem, evidence={**evidence, "outputs outside the program": outside}, flag=problem)
    where = head.get("path", "the head")
    # a backbone built without its top (include_top=False) has no layer that fixes the head's inputs
    fits = first.get("in_features") is None or inputs == first.get("in_features")
    if out == classes and fits:
        return Outcome(True, f"model.{where} is {head.get('class')}({inputs} → {out}): one output per class",
                       evidence=evidence)
    fix = (f"model.{where} = nn.Linear(model.{where}.in_features, {classes})" if v.framework == "torchvision" else
           f"a Dense({classes}) layer on the model without its top (include_top=False)")
    kept = out == first.get("out_features") and not model.final.get("head_replaced")
    named = label_named(v, model)
    if kept and params.get("pretrained_head_ok") and model.loaded and named:
        return Outcome(True, f"keeps the pretrained model's own {out}-class head ({where}) and names the class "
                             f"it predicts ({named})", evidence=evidence)
    if kept:
        also = (" or keep the pretrained head and print the class it names "
                "(decode_predictions, or the weights' categories)") if params.get("pretrained_head_ok") else ""
        return Outcome(False, f"model.{where} still has {out} outputs (the pretrained model's own classes), "
                              f"not {classes}: it was not replaced", hint=f"replace it: {fix}{also}",
                       evidence=evidence)
    if not fits:
        return Outcome(False, f"model.{where} takes {inputs} inputs, but the backbone gives {first.get('in_features')}",
                       hint=f"use the backbone's feature count: {fix}", evidence=evidence)
    return Outcome(False, f"model.{where} has {out} outputs, but the task has {classes} classes",
                   hint=fix, evidence=evidence)


def trusted_width(ctx: Context, v: VisionTrace) -> int | None:
    """The classes the re-measured classifier gives on the reference images, if it was."""
    t = trusted_model(ctx, v)
    shapes = [r.shape for r in (t.reference if t else []) if r.shape and len(r.shape) == 2]
    return shapes[-1][1] if shapes else None


# ---------------------------------------------------------------- the student's image


def image_calls(v: VisionTrace, model: ModelRecord) -> list[Forward]:
    """The model's calls on images (not the harness's own)."""
    return [f for f in v.calls_of(model.index) if f.input is not None]


@check("vision.eval_mode", "The model is in evaluation mode when it predicts")
def eval_mode(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    model = main_model(v, params.get("task"))
    calls = image_calls(v, model) if model else []
    if not calls:
        return stopped(ctx, "running the model") if not ctx.ran_ok else Outcome(
            False, "not judged: the model was never run on an image", hint="run the model on the image")
    # Calls in training mode before the last one may be fine-tuning; the prediction is the last.
    training = sum(f.training for f in calls[:-1])
    earlier = f" ({training} earlier call(s) in training mode)" if training else ""
    if not calls[-1].training:
        return Outcome(True, f"model.eval() was in force for the prediction{earlier}",
                       evidence={"calls": len(calls), "training_calls": training})
    failed = " and failed" if calls[-1].output is None else ""
    return Outcome(False, f"the prediction ran in training mode{failed}{earlier}",
                   hint="call model.eval() before predicting: dropout and batch norm behave differently "
                        "in training mode, and a detector in training mode wants targets and returns losses",
                   evidence={"calls": len(calls), "training_calls": training + 1})


def submission_names(ctx: Context) -> set[str]:
    files = ctx.job.files if ctx.job.files is not None else [
        p.relative_to(ctx.job.folder) for p in ctx.job.folder.rglob("*") if p.is_file()]
    return {Path(f).name for f in files}


@check("vision.own_image", "The model is run on the student's own image")
def own_image(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    task = params.get("task", "classification")
    model = main_model(v, task)
    if model is None:
        return stopped(ctx) if not ctx.ran_ok else Outcome(False, f"no {task} model was built")
    mine = submission_names(ctx)
    read = [i for i in v.images if i.name in mine]
    done = [f for f in image_calls(v, model) if f.output is not None]
    evidence = {"images_read": [i.model_dump() for i in v.images], "calls": len(done)}
    if not read:
        listed = ", ".join(i.name for i in v.images) or "none"
        return Outcome(False, f"no image from the submission was read (images read: {listed})",
                       hint="put your image beside the program and open it by that name (or its Colab path)",
                       evidence=evidence)
    if not done:
        return Outcome(False, f"{read[0].name} was read, but the model never completed a call on it",
                       hint="run the model on the image tensor: outputs = model(image)", evidence=evidence)
    last = done[-1].output or {}
    if task == "detection" and last.get("kind") != "detections":
        return Outcome(False, f"the model returned {last.get('kind')}, not detections", evidence=evidence)
    size = "x".join(map(str, read[-1].size or []))
    what = ("detections for" if task == "detection" else "a prediction of shape "
            f"{last.get('shape')} for")
    return Outcome(True, f"{read[-1].name} ({size}) read and the model gave {what} it", evidence=evidence)


@check("vision.prediction_printed", "The predicted class is printed")
def prediction_printed(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    model = main_model(v, "classification")
    calls = [f for f in image_calls(v, model) if (f.output or {}).get("argmax")] if model else []
    if not calls:
        return stopped(ctx, "predicting") if not ctx.ran_ok else Outcome(
            False, "not judged: no prediction was made", hint="run the model on the image first")
    index = calls[-1].output["argmax"][0]
    stdout = ctx.run.stdout if ctx.run else ""
    labels = (model.labels or {}).get("values") or []
    decoded = next((d for d in reversed(v.decoded) if d.index == index and d.top), None)
    if decoded is not None:
        label = str(decoded.top[0][1])
        if re.search(rf"\b{re.escape(label)}\b", stdout):
            return Outcome(True, f"the model chose class {index}, and the program printed its name {label!r} "
                                 "(decode_predictions)", evidence={"index": index, "label": label})
        return Outcome(False, f"the model chose class {index} ({label!r} by decode_predictions), but the program "
                              "did not print it", hint="print the decoded class name",
                       evidence={"index": index, "label": label})
    if labels and index < len(labels):
        label = labels[index]
        if re.search(rf"\b{re.escape(label)}\b", stdout):
            return Outcome(True, f"the model chose class {index}, and the program printed its name {label!r}",
                           evidence={"index": index, "label": label, "labels": model.labels})
        return Outcome(False, f"the model chose class {index} ({label!r} in {model.labels['name']}), but the "
                              "program did not print it", hint="print the predicted class name",
                       evidence={"index": index, "label": label})
    if re.search(r"class|predict|label", stdout, re.I):
        return Outcome(True, f"the model chose class {index}; the program printed a prediction "
                             "(no list of class names fits the model's outputs, so the name was not matched)",
                       evidence={"index": index})
    return Outcome(False, f"the model chose class {index}, but the program printed no prediction",
                   hint="map the index to a class name (e.g. class_labels[predicted.item()]) and print it",
                   evidence={"index": index})


# ---------------------------------------------------------------- detections


def detection_problems(det: dict[str, Any], height: int | None, width: int | None) -> list[str]:
    """What is wrong with one image's detections, in words; empty when well-formed."""
    problems = []
    shape, boxes = det.get("boxes_shape"), det.get("boxes") or []
    scores, labels = det.get("scores") or [], det.get("labels") or []
    if shape is None or len(shape) != 2 or shape[1] != 4:
        return [f"boxes have shape {shape}, not N x 4"]
    bad = [b for b in boxes if not (b[0] < b[2] and b[1] < b[3])]
    if bad:
        problems.append(f"{len(bad)} box(es) without x1 < x2 and y1 < y2, e.g. {bad[0]}")
    if height and width:
        outside = [b for b in boxes if min(b) < -0.5 or b[2] > width + 0.5 or b[3] > height + 0.5]
        if outside:
            problems.append(f"{len(outside)} box(es) outside the {width}x{height} image, e.g. {outside[0]}")
    if "int" not in str(det.get("labels_dtype", "")) or len(labels) != len(boxes):
        problems.append(f"labels are {det.get('labels_dtype')} ({len(labels)} for {len(boxes)} boxes), "
                        "not one integer per box")
    if len(scores) != len(boxes) or any(not 0 <= s <= 1 for s in scores):
        problems.append("scores are not one probability in [0, 1] per box")
    elif any(a < b for a, b in zip(scores, scores[1:])):
        problems.append("scores are not sorted from the most to the least confident")
    return problems


@check("vision.detections_valid", "The detections are well-formed")
def detections_valid(ctx: Context, params: dict) -> Outcome:
    v = vision(ctx)
    model = main_model(v, "detection")
    done = [f for f in image_calls(v, model) if (f.output or {}).get("kind") == "detections"] if model else []
    if not done:
        return stopped(ctx, "detecting objects") if not ctx.ran_ok else Outcome(
            False, "no detections were computed: the detector was never run on an image",
            hint="run the detector on the image: predictions = model([image_tensor])")
    call = done[-1]
    det = call.output["images"][0]
    size = call.input[0] if isinstance(call.input, list) and call.input and isinstance(call.input[0], list) else None
    height, width = (size[-2], size[-1]) if size and len(size) == 3 else (None, None)
    problems = detection_problems(det, height, width)
    evidence = {"count": det.get("count"), "image": size, "labels": det.get("labels", [])[:20],
                "scores": det.get("scores", [])[:20]}
    if problems:
        return Outcome(False, "; ".join(problems), evidence=evidence)
    return Outcome(True, f"{det.get('count', 0)} detection(s) on the {width}x{height} image: boxes N x 4 inside it, "
                         "integer labels, scores in [0, 1] sorted", evidence=evidence)


@check("vision.boxes_drawn", "The detections are drawn and shown")
def boxes_drawn(ctx: Context, params: dict) -> Outcome:
    if not ctx.trace:
        return stopped(ctx, "drawing")
    shown = [f for f in ctx.trace.get("figures", []) if not f.startswith("reference_")]
    draws = ctx.static.steps.get("draw_boxes", False)
    if draws and shown:
        return Outcome(True, f"boxes drawn, {len(shown)} picture(s) shown: {', '.join(shown[:5])}",
                       evidence={"figures": shown})
    if not draws:
        return Outcome(False, "the program draws no boxes (no cv2.rectangle or draw_bounding_boxes)",
                       hint="draw each box with cv2.rectangle and show the image (cv2_imshow or plt.imshow)",
                       evidence={"figures": shown})
    return Outcome(False, "boxes are drawn but no picture was shown",
                   hint="show the annotated image with cv2_imshow(image) or plt.imshow + plt.show()")


# ---------------------------------------------------------------- the reference image


def reference_results(ctx: Context) -> tuple[dict[str, Any] | None, str]:
    post = (ctx.trace.get("post_run") or {}).get("vision")
    if post is None:
        return None, "the reference images were not run (the program did not get that far)"
    if post.get("error"):
        return None, post["error"]
    return post, ""


def weights_source(ctx: Context, index: int | None) -> str:
    v = vision(ctx)
    model = next((m for m in v.models if m.index == index), None)
    loaded = (model.loaded if model else []) or [w for w in v.weights if w.for_model is None]
    return "real" if loaded and all(w.source == "real" for w in loaded) else "standin"


@check("vision.reference", "The final model runs on the harness's reference image")
def reference(ctx: Context, params: dict) -> Outcome:
    post, why = reference_results(ctx)
    if post is None:
        return Outcome(False, f"not judged: {why}", hint="make the program run to the end first")
    t = trusted_model(ctx, vision(ctx))
    if t is None or t.error or not t.reference:
        return not_re_measured(t, "the final model on the reference images")
    outside = {**post, "results": [trusted_result(r) for r in t.reference],
               "task": "detection" if any(r.detections is not None for r in t.reference) else "classification"}
    outcome = judge_reference(ctx, outside, params)
    outcome.evidence["source"] = "clean sandbox: the exported model on the host's reference images"
    if not cross_check_on(ctx.rubric.probe.get("vision") or {}):  # left to the clean sandbox alone
        outcome.evidence["in_process"] = "not run in the program's process (the rubric's cross_check is off)"
        return outcome
    differ = disagreement(post, outside)
    if differ:
        outcome.flag = (f"the program's process reported {differ[0]} on the reference image, the exported model "
                        f"gives {differ[1]} outside it: the re-measured outputs count")
    return outcome


def trusted_result(r: Any) -> dict[str, Any]:
    """A re-measured output in the shape of the in-process record's results."""
    out = ({"kind": "detections", "images": [r.detections]} if r.detections is not None else
           {"kind": "tensor", "shape": r.shape, "finite": r.finite, "argmax": r.argmax})
    return {"image": r.image, "size": r.size, "output": out, "origin": r.origin, "objects": r.objects}


COUNT_MARGIN = 0.1  # detections near the score floor may come and go with float rounding


def summary(result: dict[str, Any]) -> tuple[str, int | None]:
    """(the output in words, a detector's count or None)."""
    out = result.get("output") or {}
    if result.get("error"):
        return "an error", None
    if out.get("kind") == "detections":
        count = (out["images"][0] or {}).get("count", 0)
        return f"{count} detection(s)", count
    return f"output {out.get('shape')} (class {(out.get('argmax') or [None])[0]})", None


def disagreement(inside: dict[str, Any], outside: dict[str, Any]) -> tuple[str, str] | None:
    """(what the process reported, what the re-measurement gives) for the first image they differ on."""
    if len(inside.get("results", [])) != len(outside["results"]):
        return f"{len(inside.get('results', []))} result(s)", f"{len(outside['results'])}"
    for a, b in zip(inside.get("results", []), outside["results"]):
        (said_a, count_a), (said_b, count_b) = summary(a), summary(b)
        if count_a is not None and count_b is not None:
            if abs(count_a - count_b) > COUNT_MARGIN * max(count_a, count_b, 10):
                return said_a, said_b
        elif said_a != said_b:
            return said_a, said_b
    return None


def judge_reference(ctx: Context, post: dict[str, Any], params: dict) -> Outcome:
    """The reference outputs (in the in-process record's shape) judged: shape, finite, detections."""
    classes = reference_classes(ctx, post, int(params.get("classes", ctx.rubric.classes)), params)
    problems, said = [], []
    for r in post.get("results", []):
        if r.get("error"):
            problems.append(f"{r['image']}: {r['error']}")
            continue
        out = r["output"]
        if post["task"] == "detection":
            det = out["images"][0]
            w, h = r["size"]
            problems += [f"{r['image']}: {p}" for p in detection_problems(det, h, w)]
            said.append(f"{r['image']}: {det.get('count', 0)} detection(s)")
        elif out.get("shape") != [1, classes] or not out.get("finite"):
            problems.append(f"{r['image']}: output {out.get('shape')} (finite: {out.get('finite')}), "
                            f"expected [1, {classes}]")
        else:
            said.append(f"{r['image']}: class {out['argmax'][0]}")
    caveat = (" (stand-in weights: the prediction itself is not judged)"
              if weights_source(ctx, post.get("model")) == "standin" else "")
    if problems:
        return Outcome(False, "; ".join(problems), hint=params.get("hint", ""), evidence=post)
    return Outcome(True, "; ".join(said) + caveat, evidence={"results": said, "model": post.get("model")})


def reference_classes(ctx: Context, post: dict[str, Any], classes: int, params: dict) -> int:
    """The outputs the final model must give: the task's classes, or the pretrained head's
    when the rubric accepts a kept head and the program names its labels."""
    if not params.get("pretrained_head_ok"):
        return classes
    v = vision(ctx)
    model = next((m for m in v.models if m.index == post.get("model")), None)
    if model is None or model.final is None or model.final.get("head_replaced") or not label_named(v, model):
        return classes
    built = (model.built.get("head") or {}).get("out_features")
    return built if built and (model.final.get("head") or {}).get("out_features") == built else classes


def label_named(v: VisionTrace, model: ModelRecord) -> str:
    """How the program names the class a kept pretrained head predicts ("" when it does not):
    decode_predictions on its scores, or a list of names that fits every output."""
    outputs = ((model.final or {}).get("head") or {}).get("out_features")
    if v.decoded:
        return "decode_predictions"
    if model.labels and outputs and len(model.labels.get("values") or []) >= min(outputs, 100):
        return f"the list {model.labels.get('name')}"
    return ""


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@check("vision.known_objects", "Known objects on a real reference photo are found (IoU ≥ 0.5)")
def known_objects(ctx: Context, params: dict) -> Outcome:
    post, why = reference_results(ctx)
    if post is None:
        return Outcome(False, f"not judged: {why}", score=0.0)
    if weights_source(ctx, post.get("model")) != "real":
        return Outcome(True, "not judged: stand-in weights (the real Faster R-CNN weights are not staged), "
                             "so what the detector finds means nothing; no marks depend on it")
    t = trusted_model(ctx, vision(ctx))
    results = [trusted_result(r) for r in t.reference] if t and not t.error and t.reference else post.get("results", [])
    photos = [r for r in results if r.get("origin") == "photo" and r.get("objects")]
    if not photos:
        return Outcome(True, "not judged: no annotated reference photo is staged (drawn shapes are not "
                             "objects a COCO detector knows); no marks depend on it")
    threshold = float(params.get("iou", 0.5))
    found, total = 0, 0
    for r in photos:
        det = r["output"]["images"][0] if "output" in r else {}
        for obj in r["objects"]:
            total += 1
            found += any(iou(obj["box"], box) >= threshold for box in det.get("boxes", []))
    return Outcome(found == total, f"{found} of {total} known object(s) found with IoU ≥ {threshold}",
                   score=found / total, evidence={"found": found, "total": total})


# ---------------------------------------------------------------- steps, either framework


# What a Keras program of this kind calls for each step (a keras.applications model).
KERAS_STEPS: dict[str, set[str]] = {
    "build_model": set(APPLICATIONS) | {"Sequential", "Model"},
    "read_image": {"load_img", "open", "imread", "image_dataset_from_directory"},
    "preprocess": {"preprocess_input", "img_to_array", "resize", "Rescaling", "Resizing"},
    "predict": {"predict", "predict_on_batch"},
}
KERAS_STEP_NAMES = {"build_model": "build the pretrained model (keras.applications)", "read_image": "read the image",
                    "preprocess": "prepare the image for the model (img_to_array, preprocess_input)",
                    "predict": "predict with the model (model.predict)"}
KERAS_IMPORTS = {"keras", "tensorflow", "tf_keras"}


def keras_program(ctx: Context) -> bool:
    imports = set(ctx.static.imports)
    return bool(imports & KERAS_IMPORTS) and not imports & {"torch", "torchvision"}


@check("vision.steps", "The program has the required steps")
def vision_steps(ctx: Context, params: dict) -> Outcome:
    """The rubric's required steps for a torchvision program; for a Keras one, the same
    steps in Keras' terms (a keras.applications model, its preprocess_input, predict)."""
    if not ctx.static.parses:
        return Outcome(False, "could not look for the steps: the program does not parse", score=0.0)
    if keras_program(ctx):
        present = keras_steps(ctx)
        names = KERAS_STEP_NAMES
    else:
        present, names = ctx.static.steps, STEP_NAMES
    missing = [names.get(s, s) for s, ok in present.items() if not ok]
    if not missing:
        return Outcome(True, "all steps present: " + ", ".join(names.get(s, s) for s in present), evidence=present)
    return Outcome(False, "missing: " + ", ".join(missing), score=sum(present.values()) / max(1, len(present)),
                   hint="the program does each of: " + ", ".join(names.get(s, s) for s in present), evidence=present)


def keras_steps(ctx: Context) -> dict[str, bool]:
    import ast

    entry = ctx.job.folder / ctx.job.entry if ctx.job.entry else None
    try:
        calls = called_names(ast.parse(read_source(entry)[0])) if entry else set()
    except Exception:  # unreadable here: the writeup's parse check says so
        calls = set()
    return {step: bool(names & calls) for step, names in KERAS_STEPS.items()}
