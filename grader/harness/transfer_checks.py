"""Transfer learning on a custom dataset (DLPRAC activity 4): the student's own images in
folders, loaded by the program (trace["image_folders"], grader/probe/image_folders.py); a
pretrained keras.applications base (trace["keras_applications"]) frozen or fine-tuned on
purpose; a new head with one output per class folder; the final model measured by the probe
on the validation images after the program.

Every figure here comes from the program's process (the probe in it): evidence, not a
re-measurement outside it (see grader/harness/registry.py BASIS).
"""

from __future__ import annotations

from typing import Any

from grader.harness.checks import not_run
from grader.harness.printed import printed_accuracy
from grader.harness.registry import Context, Outcome, check
from grader.harness.vision_checks import stopped

LOADERS = "image_dataset_from_directory, ImageDataGenerator.flow_from_directory or torchvision's ImageFolder"
FINE_TUNE_LR = 1e-4  # a pretrained base trained at this rate or below is fine-tuned on purpose


def folders(ctx: Context) -> list[dict[str, Any]]:
    return ctx.trace.get("image_folders") or []


def class_names(ctx: Context) -> list[str]:
    """The classes of the custom dataset: the class folders of its training images."""
    found = [r for r in folders(ctx) if r.get("exists") and r.get("class_names")]
    training = [r for r in found if r.get("role") == "training"] or found
    return training[0]["class_names"] if training else []


def post_run(ctx: Context) -> dict[str, Any]:
    return (ctx.trace.get("post_run") or {}).get("image_folders") or {}


# ---------------------------------------------------------------- load


@check("images.loaded", "The custom images are loaded from their class folders")
def images_loaded(ctx: Context, params: dict) -> Outcome:
    calls = folders(ctx)
    if not calls:
        if ctx.run is None or not ctx.trace:
            return stopped(ctx, "loading its images")
        return Outcome(False, f"the program loads no image folder with {LOADERS}",
                       hint="put your images in data/<class>/*.jpg beside the program and load them with "
                            "keras.utils.image_dataset_from_directory('data', …)")
    missing = [r for r in calls if not r.get("exists")]
    if missing:
        r = missing[0]
        held = ", ".join(r.get("beside") or []) or "nothing else"
        return Outcome(False, f"the program reads its images from '{r['directory']}' ({r['loader']}), but the "
                              f"submission has no such folder (beside the program: {held})",
                       hint=f"submit the images with the program: {local_path(r['directory'])}/<class>/*.jpg "
                            "beside it, one folder per class (or train/ and val/ folders, each with one folder "
                            "per class); a Colab or Drive path is read from the folder of the same name in the "
                            "submission",
                       evidence={"calls": calls})
    names = class_names(ctx)
    per_class = next((r["per_class"] for r in calls if r.get("class_names") == names), {})
    empty = [c for c, n in per_class.items() if not n]
    if len(names) < 2 or empty:
        why = f"classes with no image: {', '.join(empty)}" if empty else f"only {len(names)} class folder"
        return Outcome(False, f"the images in '{calls[0]['directory']}' are not a classification dataset ({why})",
                       hint="one folder per class, each with its images", evidence={"calls": calls})
    roles = {r.get("role") for r in calls}
    evidence = {"classes": names, "images per class": per_class, "calls": calls}
    images = sum(sum(pc.values()) for pc in {r["directory"]: r.get("per_class") or {} for r in calls}.values())
    if "validation" not in roles:
        return Outcome(False, f"{images} images of {len(names)} classes loaded, but none kept "
                              "apart for validation", score=0.5, evidence=evidence,
                       hint="keep some images apart: validation_split=0.2 with subset='training' and "
                            "subset='validation', or a val/ folder")
    return Outcome(True, f"{images} images of {len(names)} classes ({', '.join(names)}) loaded "
                         f"with {calls[0]['loader']}, with validation images kept apart", evidence=evidence)


def local_path(directory: str) -> str:
    """Where in the submission a folder the program reads should be: a Colab or Drive path
    without its /content/drive/MyDrive/ (or /content/) root."""
    for root in ("/content/drive/MyDrive/", "/content/drive/My Drive/", "/content/"):
        if directory.startswith(root):
            return directory[len(root):]
    return directory


# ---------------------------------------------------------------- define


def base_model(ctx: Context) -> dict[str, Any] | None:
    """The pretrained keras.applications model the program built last."""
    models = (ctx.trace.get("keras_applications") or {}).get("models") or []
    return models[-1] if models else None


def base_layers(base: dict[str, Any]) -> set[str]:
    return {name for name, _ in (base.get("built") or {}).get("children", [])}


@check("transfer.base", "The pretrained base is frozen, or fine-tuned on purpose")
def base_frozen(ctx: Context, params: dict) -> Outcome:
    base = base_model(ctx)
    if base is None:
        return not_run(ctx) or Outcome(False, "no keras.applications model (e.g. VGG16) was built",
                                       hint="keras.applications.VGG16(weights='imagenet', include_top=False, …)")
    if not base.get("pretrained"):
        return Outcome(False, f"{base.get('factory')} starts from random weights: nothing is transferred",
                       hint="ask for the pretrained weights: weights='imagenet'")
    fits = [f for f in ctx.fits if f.get("weights")]
    if not fits:
        return not_run(ctx) or Outcome(False, "the model was never trained, so nothing says how the base is used")
    names, limit = base_layers(base), float(params.get("max_fine_tune_lr", FINE_TUNE_LR))
    how = []
    for f in fits:
        training = [n for n in f["weights"].get("trainable_layers", []) if n in names]
        lr = learning_rate(ctx, f.get("model"))
        if not training:
            how.append(("frozen", None, lr))
        elif lr is not None and lr <= limit:
            how.append(("fine-tuned", len(training), lr))
        else:
            how.append(("trained as new", len(training), lr))
    evidence = {"fits": [{"base": h, "base layers training": n, "learning rate": lr} for h, n, lr in how]}
    bad = [h for h in how if h[0] == "trained as new"]
    if bad:
        _, n, lr = bad[0]
        rate = f"{lr:g}" if lr is not None else "an unknown rate"
        return Outcome(False, f"{n} layers of the pretrained {base.get('factory')} train at a learning rate of "
                              f"{rate}: its pretrained weights are overwritten as if it were new",
                       hint=f"freeze the base (base.trainable = False) and train the new head; to fine-tune it "
                            f"afterwards, unfreeze its top layers and compile with a small rate (≤ {limit:g})",
                       evidence=evidence)
    words = {"frozen": "frozen", "fine-tuned": "fine-tuned at a small learning rate"}
    said = ", then ".join(dict.fromkeys(words[h] for h, _, _ in how))
    return Outcome(True, f"the pretrained {base.get('factory')} base is {said}", evidence=evidence)


def learning_rate(ctx: Context, model: int | None) -> float | None:
    record = ctx.models[model] if model is not None and model < len(ctx.models) else {}
    lr = (record.get("optimizer") or {}).get("learning_rate")
    return float(lr) if isinstance(lr, (int, float)) else None


@check("transfer.head", "A new head with one output per class folder")
def new_head(ctx: Context, params: dict) -> Outcome:
    model = ctx.main_model
    if model is None:
        return not_run(ctx) or Outcome(False, "no model to inspect")
    names = class_names(ctx)
    if not names:
        return Outcome(False, "no class folders were loaded, so the head cannot be judged against them",
                       hint="see \"The custom images are loaded from their class folders\"")
    base = base_model(ctx)
    inside = base_layers(base) if base else set()
    out = model.get("output") or {}
    units = (out.get("config") or {}).get("units")
    evidence = {"output layer": out.get("name"), "units": units, "class folders": names,
                "base": base.get("factory") if base else None}
    if out.get("type") not in ("Dense", "Linear") or out.get("name") in inside:
        last = (model.get("layers") or [{}])[-1]
        return Outcome(False, f"no new head: the model ends with the base's own {last.get('type', 'layer')} "
                              f"({last.get('name', '?')}), not a new Dense layer for the {len(names)} classes",
                       hint=f"put a new head on the base: GlobalAveragePooling2D(), then "
                            f"Dense({len(names)}, activation='softmax'), and train that model", evidence=evidence)
    if units != len(names) and not (units == 1 and len(names) == 2):
        return Outcome(False, f"the head has {units} outputs, but the dataset has {len(names)} class folders "
                              f"({', '.join(names)})", hint=f"Dense({len(names)}, activation='softmax')",
                       evidence=evidence)
    return Outcome(True, f"a new {out.get('type')}({units}) head on the base: one output per class "
                         f"({', '.join(names)})", evidence=evidence)


# ---------------------------------------------------------------- evaluate


@check("images.accuracy", "Accuracy on the student's own validation images reaches the bar")
def images_accuracy(ctx: Context, params: dict) -> Outcome:
    p = post_run(ctx)
    if p.get("accuracy") is None:
        why = p.get("error") or "the probe did not get to measure it"
        return not_run(ctx) or Outcome(False, f"not measured: {why}",
                                       hint="train the model on the training images and keep validation images")
    acc, n = p["accuracy"], p.get("n")
    chance = 1.0 / max(2, len(class_names(ctx)))
    bar = ctx.rubric.threshold(ctx.data_source, ctx.job.mode)
    evidence = {"measured": acc, "images": n, "through": p.get("via"), "bar": bar, "chance": round(chance, 4),
                "labels seen": p.get("labels")}
    wrong = labels_changed(ctx, p)
    if wrong:
        return Outcome(False, f"measured {acc:.1%} on {n} validation images, but {wrong}", evidence=evidence,
                       flag=f"validation labels changed by the program: {wrong}",
                       hint="keep the labels the loader gives (one per class folder)")
    if acc >= bar:
        return Outcome(True, f"measured {acc:.1%} on the {n} validation images (bar {bar:.0%}, chance "
                             f"{chance:.0%})", evidence=evidence)
    score = max(0.0, (acc - chance) / (bar - chance)) if bar > chance else 0.0
    return Outcome(False, f"measured {acc:.1%} on the {n} validation images, below the bar of {bar:.0%} "
                          f"(chance {chance:.0%})", score=min(score, 0.5), evidence=evidence,
                   hint="train longer, or check the images reach the model as it expects them (size, scaling)")


def labels_changed(ctx: Context, p: dict[str, Any]) -> str | None:
    """The labels the measurement saw, class by class, against those the loader gives the same
    images from their folders (the same images give the same counts, whatever the order): a
    pipeline that rewrites its labels (e.g. to the model's own predictions) shows here."""
    seen, truth = p.get("labels") or {}, p.get("labels_from_folders")
    if not seen or not truth:
        return None
    if sum(seen.values()) == sum(truth.values()) and seen != truth:
        return (f"the pipeline it was measured through labels its images {dict(seen)} per class where their "
                f"folders say {dict(truth)}")
    return None


@check("images.evaluated_on_validation", "The program evaluates on its validation images")
def evaluated_on_validation(ctx: Context, params: dict) -> Outcome:
    p, calls = post_run(ctx), folders(ctx)
    if not p or not calls:
        return not_run(ctx) or Outcome(False, "no image folder was loaded")
    model = p.get("model")
    root = (p.get("evaluated_on") or {}).get(str(model))
    evaluated = [e for e in ctx.trace.get("evaluations", []) if e.get("model") == model and e.get("kind") == "evaluate"]
    if not evaluated:
        return Outcome(False, "the program never evaluates the trained model",
                       hint="model.evaluate(val_ds) on the validation images")
    if root is None or not 0 <= root < len(calls):
        return Outcome(False, "the program evaluates on data that does not come from its image folders",
                       hint="model.evaluate(val_ds) on the validation images", score=0.5)
    r = calls[root]
    where = f"'{r['directory']}'" + (f", subset {r['subset']}" if r.get("subset") else "")
    if r.get("role") != "validation":
        return Outcome(False, f"the program evaluates on its training images ({where}): accuracy there says "
                              "nothing about images the model has not seen",
                       hint="evaluate on the validation images (subset='validation', or the val/ folder)",
                       evidence={"evaluated on": r}, flag=f"evaluated on its training images ({where})")
    return evaluated_ok(ctx, p, where, params)


def evaluated_ok(ctx: Context, p: dict[str, Any], where: str, params: dict) -> Outcome:
    """Evaluated on the validation images; the accuracy it prints is compared with the probe's."""
    printed = printed_accuracy(ctx.run.stdout if ctx.run else "")
    acc = p.get("accuracy")
    if printed is not None and acc is not None and abs(printed.value - acc) > params.get("tolerance", 0.02):
        problem = f"prints accuracy {printed.value:.2%} (\"{printed.line}\") but the model measures {acc:.2%}"
        return Outcome(False, f"evaluates on its validation images ({where}), but {problem}",
                       hint="print the value model.evaluate returns, not a number written by hand",
                       evidence={"printed": printed.value, "measured": acc}, flag=problem)
    said = f"; prints {printed.value:.2%}, measured {acc:.2%}" if printed is not None and acc is not None else ""
    return Outcome(True, f"evaluates on its validation images ({where}){said}")
