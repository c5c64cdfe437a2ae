"""Benchmark of `grader report`: rebuilding every report of a class from the gradebook.

Builds a synthetic gradebook of --students students × --programs weekly programs (results
made in code with plausible checks, and traces with training histories so every program
sheet draws its curve), one internal test and one SEE Part A per student, and manual marks
(Viva for most entries, project, SEE Part B, a few overrides and changes of experiment).
Then times `regenerate`:

* cold: into an empty folder (every program sheet drawn), median of --repeat runs;
* warm: again with nothing changed (program sheets left as they are), median of --repeat;
* after entering one program's Viva for the whole class (those sheets drawn again);
* the cost of one training-curve picture and of one program sheet.

Prints the figures and writes them to bench/results/report.json.

Usage: python3 bench/bench_report.py [--students 120] [--programs 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.course import load_rubrics  # noqa: E402
from grader.gradebook import Gradebook  # noqa: E402
from grader.manual import ManualMark, record  # noqa: E402
from grader.models import CheckResult, GradeResult, RunRecord, StaticReport, Status  # noqa: E402
from grader.report import regenerate  # noqa: E402
from grader.reports import training_curve_png, write_sheet  # noqa: E402
from grader.reports.curves import save_curve  # noqa: E402
from grader.scoring import score  # noqa: E402

RESULTS = ROOT / "bench" / "results"
COURSE = "20CSEL76"
TITLES = {1: "CIFAR-10 with KNN and a 3-layer network", 2: "Classify an image with a pre-trained model",
          3: "Train a CNN using Tensorflow and Keras", 4: "Improve the CNN by tuning hyperparameters",
          5: "Object detection with a CNN variant", 6: "Sentiment analysis using an RNN",
          7: "Autoencoder / GAN"}
CHECKS = [("static.parses", "writeup", 2), ("static.steps", "writeup", 2), ("static.current_api", "writeup", 1),
          ("run.completes", "execution", 4), ("model.trained", "execution", 2), ("model.structure", "execution", 3),
          ("training.loss_falls", "execution", 1), ("training.learns", "execution", 2),
          ("accuracy.threshold", "execution", 5), ("accuracy.printed_matches", "execution", 0)]


def _history(rng: random.Random, epochs: int) -> dict:
    acc = rng.uniform(0.35, 0.8)
    out = {"loss": [], "val_loss": [], "accuracy": [], "val_accuracy": []}
    for e in range(1, epochs + 1):
        f = e / epochs
        out["loss"].append(2.3 * (1 - 0.6 * f) + rng.uniform(-.05, .05))
        out["val_loss"].append(2.3 * (1 - 0.5 * f) + rng.uniform(-.05, .05))
        out["accuracy"].append(0.1 + (acc - 0.1) * f + rng.uniform(-.02, .02))
        out["val_accuracy"].append(0.1 + (acc - 0.12) * f + rng.uniform(-.02, .02))
    return out


def make_result(rng: random.Random, rubrics, usn: str, name: str, program: int, assessment: str,
                graded_at: str) -> GradeResult:
    quality = rng.random()
    checks = []
    for cid, attribute, weight in CHECKS:
        passed = rng.random() < 0.45 + 0.5 * quality
        flag = None
        if cid == "accuracy.printed_matches" and rng.random() < 0.03:
            passed, flag = False, "printed accuracy 0.99 differs from measured 0.41"
        checks.append(CheckResult(id=cid, title=cid.replace(".", " "), attribute=attribute, passed=passed,
                                  score=1.0 if passed else round(rng.uniform(0, .6), 2), weight=weight,
                                  message="ok" if passed else "not met", hint="" if passed else "look again",
                                  evidence={"measured": round(rng.random(), 3)}, flag=flag))
    gates = {c.id: c.gate for c in rubrics.programs[program].checks} if program in rubrics.programs else {}
    attrs = score(checks, rubrics.course, gates, assessment=assessment)
    epochs = rng.choice([5, 10, 20])
    trace = {"fits": [{"model": 0, "epochs_run": epochs, "history": _history(rng, epochs)}],
             "models": [{"class": "Sequential", "params": 122570, "optimizer": {"class": "Adam", "learning_rate": 0.001},
                         "loss": "sparse_categorical_crossentropy",
                         "layers": [{"type": "Conv2D", "name": "conv2d", "output_shape": [None, 30, 30, 32], "params": 896},
                                    {"type": "Dense", "name": "dense", "output_shape": [None, 10], "params": 650}]}]}
    return GradeResult(
        student=usn, name=name, program=program, title=TITLES.get(program, ""), course=COURSE, mode="quick",
        assessment=assessment, status=Status.ok, marks={a.attribute: a.mark for a in attrs},
        max={a.attribute: a.max for a in attrs}, attributes=attrs, checks=checks,
        flags=[c.flag for c in checks if c.flag], dataset="cifar10 (synthetic stand-in)",
        quick_limits={"epochs": 2, "train_images": 5000, "test_images": 1000, "timeout_s": 240},
        content_hash=f"{usn}{program}{assessment}", grade_key=f"{usn}-{assessment}-{program}",
        graded_at=graded_at,
        run=RunRecord(status=Status.ok, wall_s=rng.uniform(20, 90), stdout="Epoch 1/2\n" * 20, trace=trace),
        static=StaticReport(parses=True, steps={"load_data": True, "build_model": True, "compile": True,
                                                "train": True, "evaluate": True}, imports=["tensorflow"]))


def build_gradebook(path: Path, students: int, programs: int, artifacts: Path,
                    seed: int = 7) -> tuple[dict[str, str], int]:
    """The gradebook and, as grading leaves them, each job's artifacts (its training curve)."""
    rubrics = load_rubrics(COURSE)
    rng = random.Random(seed)
    roster = {f"1GA20CS{i:03d}": f"Student {i:03d}" for i in range(1, students + 1)}
    marks: list[ManualMark] = []
    n = 0

    def mm(usn, assessment, program, attribute, mark, kind="manual", reason=""):
        marks.append(ManualMark(course=COURSE, usn=usn, assessment=assessment, program=program, attribute=attribute,
                                mark=mark, kind=kind, reason=reason, source="bench", entered_at="2024-01-02T10:00:00"))

    with Gradebook(path) as book:
        for usn, name in roster.items():
            for p in range(1, programs + 1):
                result = make_result(rng, rubrics, usn, name, p, "record", f"2024-01-01T10:{p:02d}:00")
                book.put(result)
                save_curve(result.run.trace, artifacts / result.grade_key)
                n += 1
                if rng.random() < 0.9:
                    mm(usn, "record", p, "viva", rng.randint(0, 5))
            for assessment in ("internal", "see"):
                result = make_result(rng, rubrics, usn, name, rng.randint(1, programs), assessment,
                                     "2024-01-01T11:00:00")
                book.put(result)
                save_curve(result.run.trace, artifacts / result.grade_key)
                n += 1
            table_max = {"internal": 10, "see": 10}
            for assessment in ("internal", "see"):
                program = book.db.execute("SELECT program FROM results WHERE student=? AND assessment=?",
                                          (usn, assessment)).fetchone()[0]
                mm(usn, assessment, program, "viva", rng.randint(0, table_max[assessment]))
                if assessment == "see" and rng.random() < 0.05:
                    mm(usn, "see", program, "change_of_experiment", 1)
            mm(usn, "project", None, "project", rng.randint(3, 10))
            if rng.random() < 0.95:
                mm(usn, "see_part_b", None, "demonstration", rng.randint(8, 25))
                mm(usn, "see_part_b", None, "report", rng.randint(3, 10))
                mm(usn, "see_part_b", None, "viva", rng.randint(1, 5))
            if rng.random() < 0.05:
                mm(usn, "record", 1, "execution", 15, kind="override", reason="ran it again in the lab")
        record(book, marks)
    return roster, n


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=120)
    ap.add_argument("--programs", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rubrics = load_rubrics(COURSE)
    load_start = list(os.getloadavg())  # other work on the machine skews the figures
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        book = work / "gradebook.sqlite"
        t = time.perf_counter()
        roster, n = build_gradebook(book, args.students, args.programs, work / "artifacts")
        build_s = time.perf_counter() - t
        print(f"synthetic gradebook: {args.students} students × {args.programs} programs + internal + SEE "
              f"= {n} results ({build_s:.1f} s to build)")

        sample = make_result(random.Random(1), rubrics, "X", "X", 3, "record", "2024")
        curve = statistics.median(timed(lambda: training_curve_png(sample.run.trace)) for _ in range(5))
        one_sheet = statistics.median(timed(lambda: write_sheet(sample, work / "one")) for _ in range(5))

        cold, warm, stages = [], [], None
        for i in range(args.repeat):
            out = work / f"cold{i}"
            shutil.copy(book, out.with_suffix(".sqlite"))
            shutil.copytree(work / "artifacts", out / ".artifacts")  # what grading left behind
            t = time.perf_counter()
            outcome = regenerate(out.with_suffix(".sqlite"), rubrics, out, roster)
            cold.append(time.perf_counter() - t)
            stages = outcome.timings
            print(f"cold run {i + 1}: {cold[-1]:.2f} s ({outcome.program_sheets_drawn} program sheets drawn, "
                  f"{outcome.course_sheets} course sheets)")
        out = work / "cold0"
        for i in range(args.repeat):
            t = time.perf_counter()
            outcome = regenerate(out.with_suffix(".sqlite"), rubrics, out, roster)
            warm.append(time.perf_counter() - t)
            print(f"warm run {i + 1}: {warm[-1]:.2f} s ({outcome.program_sheets_drawn} drawn, "
                  f"{outcome.program_sheets_unchanged} unchanged)")
            warm_stages = outcome.timings
        # Faculty enter one program's Viva for the whole class: those sheets are drawn again.
        with Gradebook(out.with_suffix(".sqlite")) as gb:
            record(gb, [ManualMark(course=COURSE, usn=u, assessment="record", program=2, attribute="viva", mark=3,
                                   kind="manual", source="bench", entered_at="2024-01-03T10:00:00") for u in roster])
        t = time.perf_counter()
        outcome = regenerate(out.with_suffix(".sqlite"), rubrics, out, roster)
        after_viva = time.perf_counter() - t
        print(f"after one program's viva entered: {after_viva:.2f} s ({outcome.program_sheets_drawn} drawn)")

        figures = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average_at_start": load_start, "load_average_at_end": list(os.getloadavg())},
            "class": {"students": args.students, "programs": args.programs, "results": n},
            "curve_png_s": round(curve, 4),
            "program_sheet_s": round(one_sheet, 4),
            "cold_median_s": round(statistics.median(cold), 2),
            "cold_runs_s": [round(x, 2) for x in cold],
            "cold_stages_s": {k: round(v, 3) for k, v in (stages or {}).items()},
            "warm_median_s": round(statistics.median(warm), 2),
            "warm_runs_s": [round(x, 2) for x in warm],
            "warm_stages_s": {k: round(v, 3) for k, v in warm_stages.items()},
            "after_one_program_viva_s": round(after_viva, 2),
        }
        print(f"\none training-curve picture: {curve * 1000:.0f} ms; one program sheet (with its curve): "
              f"{one_sheet * 1000:.0f} ms")
        print(f"regenerate, cold (every sheet drawn): median {figures['cold_median_s']} s; stages "
              f"{figures['cold_stages_s']}")
        print(f"regenerate, warm (nothing changed): median {figures['warm_median_s']} s; stages "
              f"{figures['warm_stages_s']}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "report.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwritten: {RESULTS / 'report.json'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
