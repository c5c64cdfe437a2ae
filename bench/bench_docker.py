"""Benchmarks of the Docker sandbox. Prints figures and writes them to bench/results/docker.json.

1. Per-job container overhead: a trivial program graded from start to graded result
   (static analysis, container created, run, removed, checks, marks), median of --repeat
   runs, next to the same in the local sandbox. Target: a median under 2 s. On the slim
   image (the sandbox's own cost), and on the full image with Program 3's Keras probe
   (which imports TensorFlow whatever the program does).
2. The manual's Program 3 in quick mode, graded in Docker (full image) and locally:
   median wall times and their ratio. Needs the full image (skipped with --slim-only).
3. With --build: the full image built from scratch (--wheelhouse: offline): seconds and size.

Usage: python3 bench/bench_docker.py [--repeat 10] [--build] [--wheelhouse DIR] [--slim-only]
(the slim image must exist: `grader sandbox build --slim`)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import sandbox_image  # noqa: E402
from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import grade  # noqa: E402
from grader.runners.docker import DockerRunner  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.submissions import single_job  # noqa: E402

MANUAL_P3 = ROOT / "tests" / "fixtures" / "manual" / "program3.py"
RESULTS = ROOT / "bench" / "results"
TRIVIAL = "print('hello')\n"


def graded_seconds(runner, source: Path, work: Path, cache: Path, repeat: int, framework: str | None = None) -> list[float]:
    rubrics = load_rubrics()
    if framework:
        rubrics.programs[3].framework = framework
    times = []
    for i in range(repeat):
        folder = work / f"job{i}-{runner.name}"
        folder.mkdir(parents=True)
        (folder / "program3.py").write_text(source.read_text())
        job = single_job(folder / "program3.py", 3, "20CSEL76", "quick")
        started = time.perf_counter()
        result = grade(job, rubrics, runner, cache, work / "artifacts")
        times.append(time.perf_counter() - started)
        if result.run and result.run.status.value not in ("ok",):
            raise SystemExit(f"{runner.name}: {result.run.status.value}: {result.run.message}")
    return times


def overhead(repeat: int, image: str, work: Path, cache: Path) -> dict:
    """A trivial program graded in Docker and locally. On the slim image the rubric's framework
    probe is left out (it has no framework): what remains is the sandbox's own cost."""
    trivial = work / "trivial.py"
    trivial.write_text(TRIVIAL)
    framework = "any" if image == sandbox_image.IMAGES["slim"] else None
    docker_s = graded_seconds(DockerRunner(image=image, gpus="none"), trivial, work / f"docker-{framework}", cache,
                              repeat, framework)
    local_s = graded_seconds(LocalRunner(), trivial, work / f"local-{framework}", cache, repeat, framework)
    return {"image": image, "framework_probe": framework or "keras (as program 3's rubric says)", "repeat": repeat,
            "docker_median_s": round(statistics.median(docker_s), 2),
            "local_median_s": round(statistics.median(local_s), 2),
            "docker_all_s": [round(t, 2) for t in docker_s], "target_s": 2.0}


def program3(repeat: int, image: str, work: Path, cache: Path) -> dict:
    docker_s = graded_seconds(DockerRunner(image=image, gpus="none"), MANUAL_P3, work / "p3-docker", cache, repeat)
    local_s = graded_seconds(LocalRunner(), MANUAL_P3, work / "p3-local", cache, repeat)
    d, loc = statistics.median(docker_s), statistics.median(local_s)
    return {"image": image, "repeat": repeat, "docker_median_s": round(d, 1), "local_median_s": round(loc, 1),
            "ratio_docker_over_local": round(d / loc, 2)}


def build(wheelhouse: Path | None) -> dict:
    result = sandbox_image.build("full", wheelhouse=wheelhouse, force=True, log=lambda line: None)
    return {"image": result.image, "seconds": result.seconds, "size_mb": result.size_mb,
            "offline_wheelhouse": wheelhouse is not None, "versions": result.versions}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--build", action="store_true", help="build the full image from scratch first")
    parser.add_argument("--wheelhouse", type=Path, help="install from this folder (offline build)")
    parser.add_argument("--slim-only", action="store_true", help="overhead on the slim image only")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures: dict = {"cores": os.cpu_count(), "load_average_at_start": round(os.getloadavg()[0], 1)}
    previous = RESULTS / "docker.json"
    if previous.is_file() and "build" in json.loads(previous.read_text()):
        figures["build"] = json.loads(previous.read_text())["build"]  # kept until the next --build
    if args.build:
        figures["build"] = build(args.wheelhouse)
        print("image build:", figures["build"])
    full = sandbox_image.IMAGES["full"]
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        figures["overhead"] = overhead(args.repeat, sandbox_image.IMAGES["slim"], work, cache)
        print("per-job overhead, no framework:", figures["overhead"])
        if not args.slim_only:
            figures["overhead_keras"] = overhead(args.repeat, full, work, cache)
            print("per-job overhead, Keras probe:", figures["overhead_keras"])
            figures["program3_quick"] = program3(max(1, args.repeat // 5), full, work, cache)
            print("program 3 quick:", figures["program3_quick"])
    (RESULTS / "docker.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
