"""Benchmarks of the grading pipeline (CPU). Prints figures and writes them to
bench/results/pipeline.json (figures this run did not measure are kept from the last file).

1. Probe overhead: the manual's Program 3 on stand-in data (quick-mode data and epochs), run
   bare and as the local sandbox runs a job (`python -m grader.probe`, watchdog, capped
   output, the export copied out), without the clean sandbox of the trusted re-measurement
   (bench/bench_trust.py measures that step). Both sides get the job's environment; each
   graded run must end ok with the two epochs trained. The fixed start-up cost is measured
   the same way on a program that only imports TensorFlow:
       overhead = (graded - (graded_trivial - bare_trivial) - bare) / bare, on medians,
   for wall time and for CPU time (user + system of the whole process tree, which another
   program's load on a shared machine moves less than wall time). The probe's own time after
   the program (measuring the final model, exporting it) is read from each run's trace.
2. `grader check --json` on the manual's Program 3 in quick mode (static analysis, the job,
   the trusted re-measurement, the checks and the sheet): its median wall time, and the same
   wall-time overhead formula against the bare run, for the whole command.
3. `grader batch` on the sample class with --jobs 1 and --jobs 2, and a second run with
   nothing changed.

All runs are interleaved, so a slow spell of the machine hits every kind alike; the load
average is recorded with each.

Usage: python3 bench/bench_pipeline.py [--repeat 3] [--skip-batch]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import plan_for  # noqa: E402
from grader.runners.base import job_env  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.submissions import single_job  # noqa: E402

MANUAL_P3 = ROOT / "tests" / "fixtures" / "manual" / "program3.py"
RESULTS = ROOT / "bench" / "results"

BARE_RUNNER = """
import sys
sys.path.insert(0, {root!r})
from grader.probe import provider
served = provider.load("cifar10", cache_dir={cache!r}, quick=True, quick_train=5000, quick_test=1000)
import tensorflow as tf
tf.keras.datasets.cifar10.load_data = lambda: ((served.x_train, served.y_train), (served.x_test, served.y_test))
src = open(sys.argv[1]).read().replace("epochs=10", "epochs=2")
exec(compile(src, "program3.py", "exec"), {{"__name__": "__main__"}})
"""

TRIVIAL = "import tensorflow as tf\nfrom tensorflow import keras\n"
KINDS = ("bare", "sandbox", "check")


class JobAlone(LocalRunner):
    """The job alone: no clean sandbox started beside it (bench/bench_trust.py measures that step)."""

    def warm_up(self, plan) -> None:
        pass


def job_environment(cache: Path, home: Path) -> dict[str, str]:
    """The environment a graded job gets (grader.runners.local), for the bare runs too."""
    plan = plan_for(single_job(MANUAL_P3, 3, "20CSEL76", "quick"), load_rubrics(), cache)
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(job_env(plan, str(home), str(ROOT)))
    return env


def cpu_seconds() -> float:
    """User + system time of this process and of its children that have ended."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s of the whole process tree, stdout) of one command, which must succeed."""
    before, start = cpu_seconds(), time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    return time.perf_counter() - start, cpu_seconds() - before, done.stdout


def sandboxed(program: Path, cache: Path, artifacts: Path) -> tuple[float, float, dict]:
    """(wall s, CPU s, trace) of one job in the local sandbox, the runner's own work included."""
    job = single_job(program, 3, "20CSEL76", "quick")
    plan = plan_for(job, load_rubrics(), cache)
    before, start = cpu_seconds(), time.perf_counter()
    run = JobAlone().run(job, plan, artifacts)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - before
    if run.export_dir:
        shutil.rmtree(run.export_dir, ignore_errors=True)
    if run.status.value != "ok":
        raise RuntimeError(f"sandbox run of {program.name}: status {run.status.value}: {run.message}")
    return wall, cpu, run.trace or {}


def graded_check(program: Path, cache: Path, out: Path) -> tuple[float, float, str]:
    """`grader check --json` on one program (the whole command)."""
    return timed([sys.executable, "-m", "grader.cli", "check", str(program), "--program", "3", "--json",
                  "--out", str(out), "--cache", str(cache)])


def checked(program: Path, trace: dict) -> None:
    """Raises unless the graded Program 3 did the bare run's work: two epochs, one export."""
    fits = trace.get("fits") or [{}]
    if program == MANUAL_P3 and (fits[-1].get("epochs_run") != 2 or fits[-1].get("stopped_by_budget")
                                 or len(trace.get("exports") or []) != 1):
        raise RuntimeError(f"the graded run did not do the bare run's work: {fits[-1]}")


def run_kind(kind: str, program: Path, work: Path, cache: Path, env: dict) -> tuple[float, float, dict]:
    """(wall s, CPU s, the job's trace or {}) of one run of `kind`."""
    if kind == "bare":  # Program 3 with its data served as the probe serves it; the trivial one as it is
        script = [str(work / "bare.py")] if program == MANUAL_P3 else []
        return (*timed([sys.executable, *script, str(program)], env=env, cwd=work)[:2], {})
    if kind == "sandbox":
        wall, cpu, trace = sandboxed(program, cache, work / "artifacts")
        checked(program, trace)
        return wall, cpu, trace
    wall, cpu, out = graded_check(program, cache, work / "r")
    if json.loads(out)["status"] != "ok":
        raise RuntimeError(f"grader check of {program.name}: status {json.loads(out)['status']}")
    return wall, cpu, {}


def overhead(times: dict[str, list[float]], graded: str) -> dict:
    """Start-up and the overhead beyond it of `graded` against bare, on medians."""
    m = {k: statistics.median(v) for k, v in times.items()}
    startup = m[f"{graded}_trivial"] - m["bare_trivial"]
    return {"fixed_startup_s": round(startup, 2),
            "overhead_beyond_startup_pct": round(100 * (m[graded] - startup - m["bare"]) / m["bare"], 1)}


def rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def measure(repeat: int, cache: Path, work: Path) -> dict:
    (work / "bare.py").write_text(BARE_RUNNER.format(root=str(ROOT), cache=str(cache)))
    trivial = work / "program3_trivial.py"
    trivial.write_text(TRIVIAL)
    (work / "home").mkdir()
    env = job_environment(cache, work / "home")
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    steps: dict[str, list[float]] = {}  # the probe's own steps after Program 3 (trace "after_program_s")
    load = []
    for _ in range(repeat):  # interleaved so that machine noise hits every kind alike
        for program, suffix in ((MANUAL_P3, ""), (trivial, "_trivial")):
            for kind in KINDS:
                load.append(round(os.getloadavg()[0], 2))
                w, c, trace = run_kind(kind, program, work, cache, env)
                wall.setdefault(kind + suffix, []).append(w)
                cpu.setdefault(kind + suffix, []).append(c)
                if kind == "sandbox" and program == MANUAL_P3:
                    for step, seconds in trace["after_program_s"].items():
                        steps.setdefault(step, []).append(seconds)
    return summary(wall, cpu, load, steps)


def figures(times: dict[str, list[float]], graded: str, unit: str = "s", prefix: str = "") -> dict:
    """Every run, the medians, the start-up and the overhead beyond it, for one graded kind."""
    names = ("bare", graded, "bare_trivial", f"{graded}_trivial")
    out = {f"{k}_{unit}": rounded(times[k]) for k in names}
    out[f"median_bare_{unit}"] = round(statistics.median(times["bare"]), 2)
    out[f"median_graded_{unit}"] = round(statistics.median(times[graded]), 2)
    out.update({prefix + k: v for k, v in overhead(times, graded).items()})
    return out


def summary(wall: dict[str, list[float]], cpu: dict[str, list[float]], load: list[float],
            steps: dict[str, list[float]]) -> dict:
    """CPU figures for the job only: the whole command kills the clean sandbox it started for
    the trivial program, and a killed process's CPU time is not counted."""
    probe = {"graded": "the job in the local sandbox, without the trusted re-measurement",
             **figures(wall, "sandbox"), **figures(cpu, "sandbox", "cpu_s", "cpu_"),
             "median_after_program_s": {k: round(statistics.median(v), 3) for k, v in steps.items()}}
    check = {"graded": "grader check --json, the whole command (with the trusted re-measurement)",
             **figures(wall, "check")}
    return {"load_avg_at_each_run": load, "probe_overhead": probe, "check_overhead": check,
            "check_json_program3_quick": {"runs_s": rounded(wall["check"]),
                                          "median_s": round(statistics.median(wall["check"]), 2)}}


def batch_wall(cache: Path, jobs: int, dest: Path) -> float:
    return timed([sys.executable, "-m", "grader.cli", "batch", str(ROOT / "submissions"), "--jobs", str(jobs),
                  "--out", str(dest), "--cache", str(cache)])[0]


def batch_times(work: Path, cache: Path) -> dict:
    out = {}
    for jobs in (1, 2):
        dest = work / f"reports-j{jobs}"
        shutil.rmtree(dest, ignore_errors=True)
        out[f"jobs{jobs}_s"] = round(batch_wall(cache, jobs, dest), 1)
    out["speedup_jobs2_over_jobs1"] = round(out["jobs1_s"] / out["jobs2_s"], 2)
    out["unchanged_rerun_s"] = round(batch_wall(cache, 2, work / "reports-j2"), 2)
    return out


def previous(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--only-batch", action="store_true", help="measure the batch speed-up only")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    cache = work / "cache"
    measured: dict = {}
    try:
        graded_check(MANUAL_P3, cache, work / "r")  # warm-up: builds the stand-in cache
        if not args.only_batch:
            measured.update(measure(args.repeat, cache, work))
        if not args.skip_batch:
            measured["batch_sample_class"] = batch_times(work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("pipeline-batch.json" if args.only_batch else "pipeline.json")
    stamp = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat}
    results = {**previous(path), "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    results.update({k: {**v, **stamp} if isinstance(v, dict) else v for k, v in measured.items()})
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(measured, indent=2))


if __name__ == "__main__":
    main()
