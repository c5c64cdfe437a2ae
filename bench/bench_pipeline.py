"""Benchmarks of the grading pipeline (CPU). Prints figures and writes them to
bench/results/pipeline.json.

1. Probe overhead: the manual's Program 3 on stand-in data (quick-mode data and epochs),
   run bare and under the grader; median of --repeat runs each. The fixed start-up cost
   is measured the same way on a program that only imports TensorFlow.
2. `grader check --json` on the manual's Program 3 in quick mode: median wall time.
3. `grader batch` on the sample class with --jobs 1 and --jobs 2, and a second run with
   nothing changed.

Usage: python3 bench/bench_pipeline.py [--repeat 3] [--skip-batch]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANUAL_P3 = ROOT / "tests" / "fixtures" / "manual" / "program3.py"
RESULTS = ROOT / "bench" / "results"

BARE_RUNNER = """
import sys, time
sys.path.insert(0, {root!r})
from grader.probe import provider
served = provider.load("cifar10", cache_dir={cache!r}, quick=True, quick_train=5000, quick_test=1000)
import tensorflow as tf
tf.keras.datasets.cifar10.load_data = lambda: ((served.x_train, served.y_train), (served.x_test, served.y_test))
src = open({program!r}).read().replace("epochs=10", "epochs=2")
exec(compile(src, "program3.py", "exec"), {{"__name__": "__main__"}})
"""
TRIVIAL = "import tensorflow as tf\nfrom tensorflow import keras\n"


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def graded_time(program: Path, cache: Path, out: Path) -> float:
    """Wall time of `grader check` on one program (the whole command)."""
    return timed([sys.executable, "-m", "grader.cli", "check", str(program), "--program", "3", "--json",
                  "--out", str(out), "--cache", str(cache)])


def probe_overhead(repeat: int, cache: Path, work: Path) -> dict:
    bare_script = work / "bare.py"
    bare_script.write_text(BARE_RUNNER.format(root=str(ROOT), cache=str(cache), program=str(MANUAL_P3)))
    trivial = work / "program3_trivial.py"
    trivial.write_text(TRIVIAL)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    bare, graded, bare_trivial, graded_trivial = [], [], [], []
    for _ in range(repeat):  # interleaved so that machine noise hits both alike
        bare.append(timed([sys.executable, str(bare_script)], env=env, cwd=work))
        graded.append(graded_time(MANUAL_P3, cache, work / "r"))
        bare_trivial.append(timed([sys.executable, str(trivial)], env=env, cwd=work))
        graded_trivial.append(graded_time(trivial, cache, work / "r"))
    startup = statistics.median(graded_trivial) - statistics.median(bare_trivial)
    overhead = (statistics.median(graded) - startup - statistics.median(bare)) / statistics.median(bare)
    return {
        "bare_program3_s": bare, "graded_program3_s": graded,
        "bare_tf_import_only_s": bare_trivial, "graded_tf_import_only_s": graded_trivial,
        "median_bare_s": round(statistics.median(bare), 2), "median_graded_s": round(statistics.median(graded), 2),
        "fixed_startup_s": round(startup, 2), "overhead_beyond_startup_pct": round(100 * overhead, 1),
    }


def batch_times(work: Path, cache: Path) -> dict:
    out = {}
    for jobs in (1, 2):
        dest = work / f"reports-j{jobs}"
        shutil.rmtree(dest, ignore_errors=True)
        out[f"jobs{jobs}_s"] = round(timed([sys.executable, "-m", "grader.cli", "batch", str(ROOT / "submissions"),
                                            "--jobs", str(jobs), "--out", str(dest), "--cache", str(cache)]), 1)
    out["speedup_jobs2_over_jobs1"] = round(out["jobs1_s"] / out["jobs2_s"], 2)
    out["unchanged_rerun_s"] = round(timed([sys.executable, "-m", "grader.cli", "batch", str(ROOT / "submissions"),
                                            "--jobs", "2", "--out", str(work / "reports-j2"), "--cache", str(cache)]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--only-batch", action="store_true", help="measure the batch speed-up only")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    cache = work / "cache"
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    try:
        graded_time(MANUAL_P3, cache, work / "r")  # warm-up: builds the stand-in cache
        if not args.only_batch:
            results["probe_overhead"] = probe_overhead(args.repeat, cache, work)
            checks = [graded_time(MANUAL_P3, cache, work / "r") for _ in range(args.repeat)]
            results["check_json_program3_quick"] = {"runs_s": checks, "median_s": round(statistics.median(checks), 2)}
        if not args.skip_batch:
            results["batch_sample_class"] = batch_times(work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "pipeline-batch.json" if args.only_batch else "pipeline.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
