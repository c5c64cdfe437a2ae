"""The cost of judging a GAN's samples on the host (grader/gan_judge.py): training the reference
MNIST classifier once (a cold cache: the served data loaded, the numpy network trained, saved),
loading it from the cache, the real digits' features, and judging 1000 generated samples
(probabilities, digit spread, Fréchet distance). Median of --repeat runs, each cold training in
a fresh cache folder. Writes bench/results/gan.json.

With --bars, also the figures the rubric's bars come from: the reference GAN
(reference/DLPRAC/program5/solution.py) and the same program with its generator never trained (the
stacked model's train_on_batch replaced by test_on_batch), each graded in quick mode for real
(local sandbox, clean sandbox, host judgement), on the data the cache serves (stand-in unless
real MNIST is staged). Written to bench/results/gan_bars.json.

Usage: python3 bench/bench_gan.py [--repeat 3] [--bars] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import gan_judge  # noqa: E402


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def once(samples: np.ndarray) -> dict[str, float]:
    """One cold and one warm pass, seconds by step."""
    with tempfile.TemporaryDirectory(prefix="bench-gan-") as cache:
        _, load_s = timed(gan_judge.served_mnist, cache)  # the stand-in rendered (or the staged file read)
        clf, train_s = timed(gan_judge.reference_classifier, cache)  # served data (cached by then) + training
        _, cached_s = timed(gan_judge.reference_classifier, cache)
        real, real_s = timed(gan_judge.real_features, clf, cache)
        verdict, judge_s = timed(gan_judge.judge, samples, clf, real)
    return {"serve_data_s": load_s, "train_classifier_s": train_s, "load_cached_classifier_s": cached_s,
            "real_features_s": real_s, "judge_1000_s": judge_s, "classifier_accuracy": clf.accuracy,
            "source": clf.source, "frechet_of_served_digits": verdict.frechet}


def bars(cache: Path) -> dict:
    """The judgement of the reference GAN and of an untrained generator, graded in quick mode."""
    from grader.course import load_rubrics
    from grader.pipeline import grade
    from grader.runners.local import LocalRunner
    from grader.submissions import single_job

    source = (ROOT / "reference" / "DLPRAC" / "program5" / "solution.py").read_text()
    programs = {"reference": source,
                "untrained_generator": source.replace("    g_loss = gan.train_on_batch(", "    g_loss = 0.0 * gan.test_on_batch(")}
    out = {}
    for name, text in programs.items():
        folder = Path(tempfile.mkdtemp(prefix=f"bench-gan-{name}-"))
        (folder / "program5.py").write_text(text)
        start = time.perf_counter()
        result = grade(single_job(folder / "program5.py", 5, "DLPRAC", "quick"), load_rubrics("DLPRAC"),
                       LocalRunner(), cache, folder / "artifacts")
        judged = [t.gan for t in result.run.trusted if t.part == "generator" and t.gan]
        out[name] = {"wall_s": round(time.perf_counter() - start, 1), "status": result.status.value,
                     "marks": result.marks, "failed": [c.id for c in result.checks if not c.passed],
                     "judgement": judged[0].model_dump(exclude={"grid"}) if judged else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bars", action="store_true")
    parser.add_argument("--cache", type=Path, default=None, help="grader cache dir for --bars (default: a fresh one)")
    args = parser.parse_args()
    if args.bars:
        figures = bars(args.cache or Path(tempfile.mkdtemp(prefix="bench-gan-cache-")))
        (ROOT / "bench" / "results" / "gan_bars.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
    with tempfile.TemporaryDirectory() as cache:  # 1000 "generated" samples: served test digits
        samples = gan_judge.served_mnist(cache).x_test[:1000]
    runs = [once(samples) for _ in range(args.repeat)]
    keys = [k for k in runs[0] if k.endswith("_s")]
    out = {
        "what": "host-side GAN sample judgement (grader/gan_judge.py), median of runs",
        "repeat": args.repeat,
        "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in keys},
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        "classifier": {"train_images": gan_judge.TRAIN_IMAGES, "epochs": gan_judge.EPOCHS,
                       "hidden": list(gan_judge.HIDDEN), "accuracy": runs[0]["classifier_accuracy"],
                       "source": runs[0]["source"]},
        "machine": {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
                    "python": platform.python_version()},
    }
    path = ROOT / "bench" / "results" / "gan.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["median"], indent=2))


if __name__ == "__main__":
    main()
