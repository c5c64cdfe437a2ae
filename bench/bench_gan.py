"""The cost of judging a GAN's samples on the host (grader/gan_judge.py): training the reference
MNIST classifier once (a cold cache: the served data loaded, the numpy network trained, saved),
loading it from the cache, the real digits' features, and judging 1000 generated samples
(probabilities, digit spread, Fréchet distance). Median of --repeat runs, each cold training in
a fresh cache folder. Writes bench/results/gan.json.

Usage: python3 bench/bench_gan.py [--repeat 3]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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
