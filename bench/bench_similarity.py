"""Benchmark of `grader similarity` on a generated class: 600 submissions of Program 4 with
10 planted copies.

Each student's program is generated from the manual's Program 4 the way students change it:
their own choice of data preparation, augmentation, network (blocks, filters, batch norm,
dropout), optimizer, callbacks, training loop, evaluation and plots, with numbers of their
own, in their own names, about a fifth as Colab notebooks (with `!pip` and `%` lines). Many
students pick the same idioms, so independent programs do share code (as real ones do).

The 10 planted copies take another student's program and disguise it: every name renamed,
functions reordered, numbers changed (epochs, batch size, learning rate), a few lines added
or removed, comments rewritten, and some are moved into a notebook.

Runs `grader similarity` on the class as faculty would (a fresh process), and reports its
wall time, its peak memory (the process's maximum resident set), the stages, and where each
planted pair ranks among all pairs. Targets: under 60 s and 1 GiB on 2 cores, all 10
planted pairs in the top 10. Writes bench/results/similarity.json.

With --check-all, every pair sharing a fingerprint is also compared exactly (in this
process, after the timed run; minutes) to show what comparing only the best pairs missed:
the pairs at or above the threshold that were not compared.

Usage: python3 bench/bench_similarity.py [--students 600] [--copies 10] [--seed 13] [--keep DIR] [--check-all]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROGRAM = 4
TARGET_S, TARGET_BYTES = 60.0, 2**30

# ---------------------------------------------------------------- one student's program

NAMES = {
    "x_train": ["x_train", "X_train", "train_images", "xtr", "train_x", "images_train"],
    "y_train": ["y_train", "Y_train", "train_labels", "ytr", "train_y", "labels_train"],
    "x_test": ["x_test", "X_test", "test_images", "xte", "test_x", "images_test"],
    "y_test": ["y_test", "Y_test", "test_labels", "yte", "test_y", "labels_test"],
    "model": ["model", "cnn", "net", "classifier", "my_model", "clf"],
    "history": ["history", "hist", "h", "log", "training", "H"],
    "datagen": ["datagen", "gen", "augmenter", "aug", "image_gen"],
}


def pick_names(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(v) for k, v in NAMES.items()}


def imports(rng: random.Random) -> list[str]:
    lines = [rng.choice(["import tensorflow as tf", "import tensorflow as tf  # TF 2.x"]),
             rng.choice(["from tensorflow import keras", "from tensorflow import keras\nfrom tensorflow.keras import layers"])]
    extra = ["import numpy as np", "import matplotlib.pyplot as plt", "import os", "import time",
             "from sklearn.metrics import classification_report", "import seaborn as sns",
             "from sklearn.metrics import confusion_matrix"]
    lines += rng.sample(extra, rng.randint(1, 4))
    rng.shuffle(lines)
    return lines


def load_data(rng: random.Random, n: dict[str, str]) -> list[str]:
    out = [f"({n['x_train']}, {n['y_train']}), ({n['x_test']}, {n['y_test']}) = keras.datasets.cifar10.load_data()"]
    if rng.random() < 0.4:
        out.append(rng.choice([f'print("train:", {n["x_train"]}.shape, "test:", {n["x_test"]}.shape)',
                               f"print({n['x_train']}.shape, {n['y_train']}.shape)",
                               f"print('Training samples:', len({n['x_train']}))"]))
    return out


def preprocess(rng: random.Random, n: dict[str, str]) -> tuple[list[str], bool]:
    """(lines, labels one-hot)"""
    xtr, xte = n["x_train"], n["x_test"]
    style = rng.randrange(4)
    if style == 0:
        out = [f'{xtr} = {xtr}.astype("float32") / 255.0', f'{xte} = {xte}.astype("float32") / 255.0']
    elif style == 1:
        out = [f"{xtr}, {xte} = {xtr} / 255.0, {xte} / 255.0"]
    elif style == 2:
        out = [f"mean = np.mean({xtr}, axis=(0, 1, 2, 3))", f"std = np.std({xtr}, axis=(0, 1, 2, 3))",
               f"{xtr} = ({xtr} - mean) / (std + {rng.choice(['1e-7', '1e-6', '0.0001'])})",
               f"{xte} = ({xte} - mean) / (std + 1e-7)"]
    else:
        out = [f"{xtr} = {xtr}.astype('float32')", f"{xte} = {xte}.astype('float32')",
               f"{xtr} /= {rng.choice(['255', '255.0', '255.'])}", f"{xte} /= 255"]
    onehot = rng.random() < 0.45
    if onehot:
        k = rng.choice(["10", "num_classes"])
        if k == "num_classes":
            out.insert(0, "num_classes = 10")
        out += [f"{n['y_train']} = keras.utils.to_categorical({n['y_train']}, {k})",
                f"{n['y_test']} = keras.utils.to_categorical({n['y_test']}, {k})"]
    return out, onehot


def augmentation(rng: random.Random, n: dict[str, str]) -> tuple[list[str], str]:
    """(lines, kind): kind is 'datagen', 'layers' or ''."""
    r = rng.random()
    if r < 0.45:
        opts = [f"rotation_range={rng.choice([10, 15, 20, 30])}", f"width_shift_range={rng.choice([0.1, 0.125, 0.2])}",
                f"height_shift_range={rng.choice([0.1, 0.125, 0.2])}", "horizontal_flip=True",
                f"zoom_range={rng.choice([0.1, 0.15, 0.2])}", f"shear_range={rng.choice([0.1, 0.2])}",
                "fill_mode='nearest'"]
        chosen = rng.sample(opts, rng.randint(2, 5))
        out = [f"{n['datagen']} = keras.preprocessing.image.ImageDataGenerator("]
        out += [f"    {o}," for o in chosen[:-1]] + [f"    {chosen[-1]}", ")", f"{n['datagen']}.fit({n['x_train']})"]
        return out, "datagen"
    if r < 0.75:
        parts = ['keras.layers.RandomFlip("horizontal")',
                 f"keras.layers.RandomRotation({rng.choice([0.05, 0.1, 0.15])})",
                 f"keras.layers.RandomTranslation({rng.choice([0.1, 0.125])}, {rng.choice([0.1, 0.125])})",
                 f"keras.layers.RandomZoom({rng.choice([0.1, 0.2])})",
                 f"keras.layers.RandomContrast({rng.choice([0.1, 0.2])})"]
        chosen = rng.sample(parts, rng.randint(1, 4))
        out = ["augment = keras.Sequential(["] + [f"    {p}," for p in chosen] + ["])"]
        return out, "layers"
    return [], ""


def conv_layers(rng: random.Random, indent: str) -> list[str]:
    blocks = rng.randint(2, 4)
    base = rng.choice([16, 32, 48, 64])
    act = rng.choice(["relu", "relu", "elu", "selu"])
    pad = rng.choice(['padding="same", ', "padding='same', ", ""])
    bn = rng.random() < 0.6
    double = rng.random() < 0.5
    drop = rng.random() < 0.6
    rates = [rng.choice([0.1, 0.2, 0.25, 0.3]) + 0.1 * i * rng.randint(0, 1) for i in range(blocks)]
    out = []
    for b in range(blocks):
        f = base * 2 ** b
        for _ in range(2 if double else 1):
            out.append(f"keras.layers.Conv2D({f}, ({rng.choice([3, 3, 5])}, 3), {pad}activation=\"{act}\"),")
            if bn:
                out.append("keras.layers.BatchNormalization(),")
        out.append(rng.choice(["keras.layers.MaxPooling2D((2, 2)),", "keras.layers.MaxPooling2D(pool_size=2),",
                               "keras.layers.MaxPool2D(),"]))
        if drop:
            out.append(f"keras.layers.Dropout({round(rates[b], 2)}),")
    head = rng.choice(["keras.layers.Flatten(),", "keras.layers.GlobalAveragePooling2D(),"])
    out.append(head)
    for _ in range(rng.randint(1, 2)):
        out.append(f"keras.layers.Dense({rng.choice([64, 128, 256, 512])}, activation=\"{act}\"),")
        if rng.random() < 0.7:
            out.append(f"keras.layers.Dropout({rng.choice([0.3, 0.4, 0.5])}),")
    out.append('keras.layers.Dense(10, activation="softmax")')
    return [indent + line for line in out]


def model_def(rng: random.Random, n: dict[str, str], aug: str) -> tuple[list[str], list[str]]:
    """(function definitions, main lines)."""
    first = ["keras.Input(shape=(32, 32, 3)),"] + (["augment,"] if aug == "layers" else [])
    if rng.random() < 0.5:  # in a function
        fname = rng.choice(["build_model", "create_model", "make_cnn", "get_model", "define_model"])
        body = ["    model = keras.Sequential(["] + ["        " + f for f in first] + conv_layers(rng, "        ")
        body += ["    ])", "    return model"]
        return [f"def {fname}():"] + body, [f"{n['model']} = {fname}()"]
    lines = [f"{n['model']} = keras.Sequential(["] + ["    " + f for f in first] + conv_layers(rng, "    ") + ["])"]
    return [], lines


def compile_lines(rng: random.Random, n: dict[str, str], onehot: bool) -> list[str]:
    lr = rng.choice(["0.001", "1e-3", "0.0005", "5e-4", "0.0001", "0.01", "0.002"])
    opt = rng.choice([f"keras.optimizers.Adam(learning_rate={lr})", f"keras.optimizers.Adam({lr})",
                      f"keras.optimizers.SGD(learning_rate={lr}, momentum={rng.choice([0.9, 0.95])})",
                      f"keras.optimizers.RMSprop(learning_rate={lr})", '"adam"', "'adam'",
                      f"tf.keras.optimizers.Adamax(learning_rate={lr})"])
    loss = "categorical_crossentropy" if onehot else "sparse_categorical_crossentropy"
    q = rng.choice(['"', "'"])
    if rng.random() < 0.5:
        return [f"{n['model']}.compile(optimizer={opt},", f"              loss={q}{loss}{q},",
                f"              metrics=[{q}accuracy{q}])"]
    return [f"{n['model']}.compile(loss={q}{loss}{q}, optimizer={opt}, metrics=[{q}accuracy{q}])"]


def callbacks(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """(function definitions, main lines, callback names)"""
    defs, lines, names = [], [], []
    if rng.random() < 0.5:
        lines.append(f"early = keras.callbacks.EarlyStopping(monitor={rng.choice(['val_loss', 'val_accuracy'])!r}, "
                     f"patience={rng.randint(3, 10)}, restore_best_weights=True)")
        names.append("early")
    if rng.random() < 0.35:
        lines.append(f"plateau = keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor={rng.choice([0.2, 0.5, 0.1])}, "
                     f"patience={rng.randint(2, 5)}, min_lr={rng.choice(['1e-5', '1e-6', '0.00001'])})")
        names.append("plateau")
    if rng.random() < 0.25:
        fname = rng.choice(["lr_schedule", "scheduler", "step_decay", "decay"])
        e1, e2 = sorted(rng.sample(range(5, 60, 5), 2))
        defs += [f"def {fname}(epoch{', lr' if rng.random() < 0.5 else ''}):",
                 f"    lr = {rng.choice(['0.001', '1e-3', '0.01'])}",
                 f"    if epoch > {e2}:", f"        lr *= {rng.choice([0.01, 0.05, 0.1])}",
                 f"    elif epoch > {e1}:", f"        lr *= {rng.choice([0.1, 0.5])}", "    return lr"]
        lines.append(f"lr_cb = keras.callbacks.LearningRateScheduler({fname})")
        names.append("lr_cb")
    if rng.random() < 0.2:
        lines.append(f"checkpoint = keras.callbacks.ModelCheckpoint({rng.choice(['best.h5', 'model.keras', 'cnn_best.h5'])!r}, "
                     "save_best_only=True)")
        names.append("checkpoint")
    return defs, lines, names


def fit_lines(rng: random.Random, n: dict[str, str], aug: str, cbs: list[str]) -> list[str]:
    epochs, batch = rng.choice([10, 15, 20, 25, 30, 50, 100]), rng.choice([32, 64, 128, 256])
    cb = f", callbacks=[{', '.join(cbs)}]" if cbs else ""
    val = rng.choice([f"validation_data=({n['x_test']}, {n['y_test']})", f"validation_split={rng.choice([0.1, 0.2])}"])
    if aug == "datagen":
        flow = f"{n['datagen']}.flow({n['x_train']}, {n['y_train']}, batch_size={batch})"
        if rng.random() < 0.5:
            flow += f", steps_per_epoch=len({n['x_train']}) // {batch}"
        val = f"validation_data=({n['x_test']}, {n['y_test']})"
        return [f"{n['history']} = {n['model']}.fit({flow},", f"    epochs={epochs}, {val}{cb})"]
    verbose = rng.choice(["", ", verbose=1", ", verbose=2"])
    return [f"{n['history']} = {n['model']}.fit({n['x_train']}, {n['y_train']}, batch_size={batch}, epochs={epochs},",
            f"    {val}{cb}{verbose})"]


def evaluate_lines(rng: random.Random, n: dict[str, str]) -> list[str]:
    m, xte, yte = n["model"], n["x_test"], n["y_test"]
    style = rng.randrange(4)
    if style == 0:
        return [f"test_loss, test_accuracy = {m}.evaluate({xte}, {yte})",
                'print(f"Test accuracy: {test_accuracy * 100:.2f}%")']
    if style == 1:
        return [f"scores = {m}.evaluate({xte}, {yte}, verbose=0)", "print('Test loss:', scores[0])",
                "print('Test accuracy:', scores[1])"]
    if style == 2:
        return [f"loss, acc = {m}.evaluate({xte}, {yte}, verbose={rng.choice([0, 1, 2])})",
                'print("Accuracy: %.2f%%" % (acc * 100))']
    return [f"results = {m}.evaluate({xte}, {yte}, batch_size={rng.choice([64, 128, 256])})",
            "print('test loss, test acc:', results)"]


def extras(rng: random.Random, n: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """(function definitions, main blocks) of the optional parts: plots, reports, saving."""
    defs, blocks = [], []
    h, m = n["history"], n["model"]
    if rng.random() < 0.55:
        keys = rng.choice([("accuracy", "val_accuracy"), ("loss", "val_loss")])
        plot = [f"plt.plot({h}.history['{keys[0]}'], label='train')",
                f"plt.plot({h}.history['{keys[1]}'], label='{rng.choice(['validation', 'val', 'test'])}')",
                f"plt.title('{rng.choice(['Model accuracy', 'Accuracy', 'Training curve', 'Loss'])}')",
                "plt.xlabel('epoch')", "plt.legend()", "plt.show()"]
        rng.shuffle(plot[2:5])
        if rng.random() < 0.4:
            fname = rng.choice(["plot_history", "show_curves", "plot_curves", "draw"])
            defs += [f"def {fname}({rng.choice(['history', 'hist', 'h'])}):"] + [
                "    " + line.replace(f"{h}.history", "history.history") for line in plot]
            blocks.append([f"{fname}({h})"])
        else:
            blocks.append(plot)
    if rng.random() < 0.35:
        blocks.append([f"pred = np.argmax({m}.predict({n['x_test']}), axis={rng.choice([1, -1])})",
                       rng.choice([f"print(classification_report({n['y_test']}.ravel(), pred))",
                                   f"cm = confusion_matrix({n['y_test']}.flatten(), pred)\nprint(cm)",
                                   f"print('first predictions', pred[:{rng.choice([5, 10, 20])}])"])])
    if rng.random() < 0.3:
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        k = rng.choice([9, 16, 25])
        side = int(k ** 0.5)
        blocks.append([f"class_names = {classes!r}", f"plt.figure(figsize=({side * 2}, {side * 2}))",
                       f"for i in range({k}):", f"    plt.subplot({side}, {side}, i + 1)",
                       f"    plt.imshow({n['x_test']}[i])", "    plt.axis('off')", "plt.show()"])
    if rng.random() < 0.3:
        blocks.append([f"{m}.save({rng.choice(['cifar10_cnn.h5', 'model.h5', 'program4.keras', 'improved.h5'])!r})"])
    if rng.random() < 0.4:
        blocks.append([f"{m}.summary()"])
    rng.shuffle(blocks)
    return defs, blocks


def student_program(rng: random.Random) -> str:
    n = pick_names(rng)
    aug_lines, aug = augmentation(rng, n)
    prep, onehot = preprocess(rng, n)
    model_defs, model_lines = model_def(rng, n, aug)
    cb_defs, cb_lines, cb_names = callbacks(rng)
    x_defs, x_blocks = extras(rng, n)
    defs = [d for d in (model_defs, cb_defs, x_defs) if d]
    rng.shuffle(defs)
    comment = rng.random() < 0.6
    sections = [imports(rng)]
    sections += [["\n".join(d)] for d in defs]
    body = [("# Load the CIFAR-10 dataset", load_data(rng, n)), ("# Preprocess the data", prep),
            ("# Data augmentation", aug_lines), ("# Define the model", model_lines),
            ("# Compile the model", compile_lines(rng, n, onehot)), ("# Callbacks", cb_lines),
            ("# Train", fit_lines(rng, n, aug, cb_names)), ("# Evaluate", evaluate_lines(rng, n))]
    for title, lines in body:
        if lines:
            sections.append(([title] if comment else []) + lines)
    sections += x_blocks
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


# ---------------------------------------------------------------- disguised copies


def disguise(src: str, rng: random.Random) -> str:
    """A copy as a student makes one: names renamed, functions reordered, numbers changed,
    a few lines added or dropped, comments rewritten."""
    renames = {}
    for pool in NAMES.values():
        for name in pool:
            renames[name] = rng.choice(["data_", "my_", "the_", "v_"]) + name.lower().strip("_")
    for fn in ("build_model", "create_model", "make_cnn", "get_model", "define_model", "plot_history",
               "show_curves", "plot_curves", "draw", "lr_schedule", "scheduler", "step_decay", "decay"):
        renames[fn] = fn + rng.choice(["_fn", "2", "_v1", "_new"])
    out = src
    for old, new in sorted(renames.items(), key=lambda kv: -len(kv[0])):
        out = re.sub(rf"(?<![\w.'\"]){re.escape(old)}(?![\w'\"])", new, out)
    out = re.sub(r"epochs=\d+", f"epochs={rng.choice([12, 18, 22, 40])}", out)
    out = re.sub(r"batch_size=\d+", f"batch_size={rng.choice([48, 96, 100])}", out)
    blocks = out.split("\n\n")
    defs = [k for k, b in enumerate(blocks) if b.startswith("def ")]
    if len(defs) > 1:  # reorder the function definitions among themselves
        moved = [blocks[k] for k in defs]
        rng.shuffle(moved)
        for k, b in zip(defs, moved):
            blocks[k] = b
    blocks = [re.sub(r"^# .*$", lambda m: rng.choice(["# step", "# ---", "#", m.group(0).upper()]), b, flags=re.M)
              for b in blocks]
    lines = "\n\n".join(blocks).split("\n")
    for _ in range(rng.randint(2, 4)):  # add a few lines of their own
        k = rng.randrange(1, len(lines))
        if not lines[k].startswith((" ", ")", "]")) and not lines[k - 1].rstrip().endswith((",", "(", "[")):
            lines.insert(k, rng.choice(["print('done')", "print('step ok')", "import sys",
                                        "print(tf.__version__)", "np.random.seed(42)"]))
    plain = [k for k, line in enumerate(lines) if line.startswith("print(") and "accuracy" not in line.lower()]
    if plain:  # and drop one
        del lines[rng.choice(plain)]
    return "\n".join(lines) + "\n"


def as_notebook(src: str, rng: random.Random) -> str:
    cells = [nbformat.v4.new_code_cell(rng.choice(["!pip install -q tensorflow", "%matplotlib inline",
                                                  "!nvidia-smi"]))]
    for block in src.split("\n\n"):
        if block.strip():
            cells.append(nbformat.v4.new_code_cell(block.strip()))
    if rng.random() < 0.5:
        cells.insert(1, nbformat.v4.new_markdown_cell("# Program 4\nImproving the CNN on CIFAR-10"))
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


# ---------------------------------------------------------------- the class


def make_class(root: Path, students: int, copies: int, seed: int) -> list[tuple[str, str]]:
    """Write the class under root; returns the planted pairs as (original USN, copy USN)."""
    rng = random.Random(seed)
    usns = [f"1GA20CS{k:03d}" for k in range(1, students + 1)]
    sources: dict[str, str] = {}
    copy_of: dict[str, str] = {}
    copiers = rng.sample(usns, copies)
    originals = rng.sample([u for u in usns if u not in copiers], copies)
    for usn in usns:
        if usn not in copiers:
            sources[usn] = student_program(rng)
    for original, copier in zip(originals, copiers):
        sources[copier] = disguise(sources[original], rng)
        copy_of[copier] = original
    for usn in usns:
        folder = root / usn
        folder.mkdir(parents=True)
        if rng.random() < 0.2:
            (folder / "program4.ipynb").write_text(as_notebook(sources[usn], rng))
        else:
            (folder / "program4.py").write_text(sources[usn])
    return [tuple(sorted((o, c))) for c, o in copy_of.items()]


def run_cli(root: Path, out: Path) -> tuple[float, int, str]:
    """(wall seconds, peak resident bytes, output) of `grader similarity` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "similarity", str(root), "--program", str(PROGRAM),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"grader similarity failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        print("warning: the peak memory of the run is not above an earlier child's", file=sys.stderr)
    return wall, peak_kib * 1024, proc.stdout


def check_all(root: Path, report: dict) -> dict:
    """Compare every pair that shares a fingerprint exactly; name those at or above the
    threshold that the run did not compare."""
    sys.path.insert(0, str(ROOT))
    from grader.course import load_rubrics
    from grader.similarity.detect import find_similar
    from grader.submissions import class_jobs

    rubrics = load_rubrics(report["course"])
    spec = rubrics.course.similarity.model_copy(update={"compare_min": 10**9})
    t = time.perf_counter()
    full = find_similar(class_jobs(root, [PROGRAM], report["course"], "quick"), rubrics, PROGRAM, spec=spec)
    compared = {(p["a"], p["b"]) for p in report["pairs"]}
    missed = [{"a": p.a, "b": p.b, "similarity": p.similarity} for p in full.pairs
              if p.similarity >= report["threshold"] and (p.a, p.b) not in compared]
    return {"pairs_compared": len(full.pairs), "seconds": round(time.perf_counter() - t, 1),
            "above_threshold": sum(p.similarity >= report["threshold"] for p in full.pairs),
            "above_threshold_not_compared": missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=600)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--keep", type=Path, help="write the class and the reports here and keep them")
    ap.add_argument("--check-all", action="store_true", help="also compare every pair exactly (minutes)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    load_start = os.getloadavg()
    try:
        t = time.perf_counter()
        planted = make_class(work / "class", args.students, args.copies, args.seed)
        generate_s = time.perf_counter() - t
        wall, peak, stdout = run_cli(work / "class", work / "reports")
        report = json.loads((work / "reports" / "similarity" / f"program{PROGRAM}.json").read_text())
        exhaustive = check_all(work / "class", report) if args.check_all else None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    ranked = [(p["a"], p["b"]) for p in report["pairs"]]
    ranks = {f"{a}-{b}": (ranked.index((a, b)) + 1 if (a, b) in ranked else None) for a, b in planted}
    by_pair = {(p["a"], p["b"]): p for p in report["pairs"]}
    flagged = [p for p in report["pairs"] if p["flagged"]]
    independent = [p["similarity"] for p in report["pairs"] if (p["a"], p["b"]) not in planted]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": load_start, "load_average_at_end": os.getloadavg()},
        "command": f"grader similarity CLASS --program {PROGRAM} --out REPORTS",
        "class": {"students": args.students, "planted_copies": args.copies, "seed": args.seed,
                  "notebooks": sum(1 for s in report["submissions"] if s["file"].endswith(".ipynb")),
                  "generate_s": round(generate_s, 2)},
        "wall_s": round(wall, 2),
        "peak_memory_mib": round(peak / 2**20, 1),
        "stages_s": report["timings"],
        "pairs_total": report["pairs_total"],
        "pairs_compared_exactly": len(report["pairs"]),
        "fingerprinted": report["fingerprinted"],
        "threshold": report["threshold"],
        "flagged": len(flagged),
        "planted_ranks": ranks,
        "planted_similarity": {f"{a}-{b}": by_pair[(a, b)]["similarity"] if (a, b) in by_pair else None
                               for a, b in planted},
        "highest_independent_similarity": max(independent, default=0.0),
        "targets": {"wall_s": TARGET_S, "peak_memory_mib": TARGET_BYTES / 2**20, "planted_in_top": args.copies},
    }
    if exhaustive is not None:
        result["check_all"] = exhaustive
    top = sorted(r for r in ranks.values() if r)
    result["met"] = {"time": wall < TARGET_S, "memory": peak < TARGET_BYTES,
                     "planted_in_top": len(top) == args.copies and top[-1] <= args.copies}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "similarity.json").write_text(json.dumps(result, indent=2) + "\n")

    print(stdout.strip().split("\n")[0])
    print(f"{args.students} submissions ({result['class']['notebooks']} notebooks), {args.copies} planted copies")
    print(f"time {wall:.1f} s (target {TARGET_S:.0f}), peak memory {peak / 2**20:.0f} MiB "
          f"(target {TARGET_BYTES / 2**20:.0f}); stages {report['timings']}")
    print(f"pairs: {report['pairs_total']} in the class, {len(report['pairs'])} compared exactly, "
          f"{len(flagged)} flagged at {report['threshold']}")
    print("planted pairs rank: " + ", ".join(f"{k} #{v} ({result['planted_similarity'][k]})" for k, v in ranks.items()))
    print(f"most similar independent pair: {result['highest_independent_similarity']}")
    if exhaustive is not None:
        print(f"every pair compared exactly: {exhaustive['pairs_compared']} pairs in {exhaustive['seconds']} s, "
              f"{exhaustive['above_threshold']} at or above the threshold, not compared by the run: "
              f"{exhaustive['above_threshold_not_compared'] or 'none'}")
    print(f"targets met: {result['met']}")
    print(f"written to {RESULTS / 'similarity.json'}")


if __name__ == "__main__":
    main()
