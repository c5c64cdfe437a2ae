"""The cost of the trusted re-measurement (grader/trusted.py): for each program's reference
solution in quick mode, the student's job in the local sandbox alone ("plain": as it ran
before the second step existed, so a rubric's reference images run in the program's process,
cross_check on), and the job followed by the second step (host checks, a clean sandbox loading the exported model and
predicting on the served and the unseen images, the host scoring them), in two settings:

* first job: a fresh runner, as `grader check` runs one job: the clean sandbox server starts
  beside the job (its framework import overlaps the student's run) and ends after it;
* batch job: a runner that has graded a job before, as in `grader batch`: its servers have
  imported the frameworks already, and the host holds its copies of the evaluation data.

Median of --repeat runs, interleaved; the overhead is (job + second step) / plain job - 1.
Writes bench/results/trust.json.

Targets (issue "marks a student's code cannot forge"): at most 15% more wall time per job and
no more than 3 s.

Usage: python3 bench/bench_trust.py [--repeat 3] [--programs 1,2,3,4,5,6,7]
[--case 2=tests/fixtures/cases/p2_keras_applications.py] [--sandbox docker --image grader-sandbox:cpu]
[--out bench/results/trust.json]. A --case is graded as that program (the files beside it come
with it), named in the results by its file's stem. In Docker the runs are on the CPU; the CPU
image has no torchvision, so there Programs 2 and 5 need the full image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import trusted  # noqa: E402
from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import plan_for  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.static import analyse  # noqa: E402
from grader.submissions import single_job  # noqa: E402

RE_MEASURED = (1, 2, 3, 4, 5, 6, 7)  # every program's final model is re-measured (Program 1: the KNN and the network)


def runner_class(sandbox: str, image: str | None):
    """A factory of the sandbox's runners (Docker: on the CPU, of the given image)."""
    if sandbox == "local":
        return LocalRunner
    from grader.runners.docker import DockerRunner

    class Docker(DockerRunner):
        def __init__(self):
            super().__init__(image=image, gpus="none")

    return Docker


def plain_runner(runner_type):
    """The job alone: no clean sandbox started beside it."""

    class Plain(runner_type):
        def warm_up(self, plan) -> None:
            pass

    return Plain()


def source(program: int, cases: dict[int, Path]) -> Path:
    """The program's file: a --case given for it, else its reference solution."""
    return cases.get(program) or ROOT / "reference" / f"program{program}" / "solution.py"


def plain(program: int, work: Path, rubrics, cases: dict[int, Path], runner_type) -> float:
    job = single_job(source(program, cases), program, "20CSEL76", "quick")
    plan = plan_for(job, rubrics, work / "cache")
    if "vision" in plan.probe:  # the program's process runs the reference images, as it did alone
        plan.probe = {**plan.probe, "vision": {**plan.probe["vision"], "cross_check": True}}
    start = time.perf_counter()
    runner = plain_runner(runner_type)
    run = runner.run(job, plan, work / f"plain{program}")
    runner.close()
    wall = time.perf_counter() - start
    if run.export_dir:
        shutil.rmtree(run.export_dir, ignore_errors=True)
    return wall


def one(program: int, work: Path, rubrics, runner: LocalRunner, cases: dict[int, Path]) -> tuple[float, float, dict]:
    job = single_job(source(program, cases), program, "20CSEL76", "quick")
    plan = plan_for(job, rubrics, work / "cache", imports=analyse(source(program, cases), []).imports)
    start = time.perf_counter()
    run = runner.run(job, plan, work / f"artifacts{program}")
    job_s = time.perf_counter() - start
    start = time.perf_counter()
    results = trusted.remeasure(run, plan, runner)
    second_s = time.perf_counter() - start
    if run.export_dir:
        shutil.rmtree(run.export_dir, ignore_errors=True)
    probe_s = (run.trace or {}).get("after_program_s") or {}
    return job_s, second_s, {"trusted": [r.model_dump() for r in results], "status": run.status.value,
                             "probe_after_program_s": probe_s}


SETTINGS = ("first_job", "batch_job")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--programs", default=",".join(map(str, RE_MEASURED)))
    ap.add_argument("--case", action="append", default=[], help="PROGRAM=PATH: grade this file as the program")
    ap.add_argument("--sandbox", choices=("local", "docker"), default="local")
    ap.add_argument("--image", default=None, help="the Docker sandbox image (default: the full image)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "trust.json"))
    args = ap.parse_args()
    runner_type = runner_class(args.sandbox, args.image)
    cases = {int(c.split("=", 1)[0]): Path(c.split("=", 1)[1]).resolve() for c in args.case}
    programs = [int(p) for p in args.programs.split(",") if p] if not cases else sorted(cases)
    rubrics, batch_runner = load_rubrics(), runner_type()
    plains: dict[int, list[float]] = {p: [] for p in programs}
    jobs = {(s, p): [] for s in SETTINGS for p in programs}
    seconds = {(s, p): [] for s in SETTINGS for p in programs}
    last: dict[int, dict] = {}
    load = []
    with tempfile.TemporaryDirectory(prefix="grader-bench-trust-") as tmp:
        for program in programs:  # the batch runner grades each program once before it is timed
            one(program, Path(tmp), rubrics, batch_runner, cases)
        for repeat in range(args.repeat):
            for program in programs:  # interleaved, so a slow spell of the machine hits all
                load.append(os.getloadavg()[0])
                order = ["plain", *SETTINGS]
                turn = repeat % len(order)
                order = order[turn:] + order[:turn]  # rotated: no setting always runs first
                for setting in order:
                    if setting == "plain":
                        plains[program].append(plain(program, Path(tmp), rubrics, cases, runner_type))
                        continue
                    runner = batch_runner if setting == "batch_job" else runner_type()
                    job_s, second_s, last[program] = one(program, Path(tmp), rubrics, runner, cases)
                    if setting == "first_job":
                        runner.close()
                    jobs[setting, program].append(job_s)
                    seconds[setting, program].append(second_s)
        batch_runner.close()
    rows = {}
    for p in programs:
        plain_s = statistics.median(plains[p])
        t = (last[p]["trusted"] or [{}])[0]
        row = {"plain_job_s": round(plain_s, 2), "runs_plain_job_s": [round(v, 2) for v in plains[p]]}
        for setting in SETTINGS:
            job_s, second_s = statistics.median(jobs[setting, p]), statistics.median(seconds[setting, p])
            overhead = (job_s + second_s) / plain_s - 1
            row[setting] = {"job_s": round(job_s, 2), "second_step_s": round(second_s, 2), "overhead": round(overhead, 3),
                            "added_s": round(job_s + second_s - plain_s, 2),
                            "runs_job_s": [round(v, 2) for v in jobs[setting, p]],
                            "runs_second_step_s": [round(v, 2) for v in seconds[setting, p]]}
            print(f"program {p}, {setting.replace('_', ' ')}: plain job {plain_s:5.1f} s; job {job_s:5.1f} s + second "
                  f"step {second_s:4.1f} s = {overhead:+.0%} ({job_s + second_s - plain_s:+.1f} s)")
        row.update({"kind": t.get("kind"), "accuracy_served": t.get("accuracy_served"),
                    "accuracy_unseen": t.get("accuracy_unseen"), "error": t.get("error"),
                    "source": str(source(p, cases).relative_to(ROOT)) if source(p, cases).is_relative_to(ROOT)
                    else source(p, cases).name, "probe_after_program_s": last[p]["probe_after_program_s"]})
        print(f"program {p}: {t.get('kind')}, served {t.get('accuracy_served')}, unseen {t.get('accuracy_unseen')}"
              f"{'  ERROR ' + str(t.get('error')) if t.get('error') else ''}")
        rows[str(p)] = row
    out = Path(args.out).resolve()
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "load_avg_at_each_run": [round(v, 2) for v in load]},
                               "sandbox": args.sandbox, "image": args.image if args.sandbox == "docker" else None,
                               "repeat": args.repeat, "programs": rows}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
