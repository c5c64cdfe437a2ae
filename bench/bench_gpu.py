"""The GPU path, measured on a machine with an NVIDIA GPU and no TensorFlow (PyTorch only).
Prints figures and writes them to bench/results/gpu.json.

1. A PyTorch Program 3 that trains on the GPU (bench/gpu/program3_torch_cuda.py), graded in
   the local sandbox in quick mode and in full mode on stand-in CIFAR-10: status, marks, the
   device the program reports, its peak GPU memory, and the trusted re-measurement (the model
   is exported to run anywhere and re-measured in the clean sandbox).
2. Keras 3 on its PyTorch backend (KERAS_BACKEND=torch) on the GPU: a sample student's
   Program 3 that imports keras alone, graded in quick mode.
3. `--per-gpu 2` packing: the Docker runner's GpuSlots hands four jobs one GPU, at most two
   at a time; each job is a process started as a container's is (sandbox/sitecustomize.py on
   its path, the share the runner sets in GRADER_GPU_MEMORY_FRACTION). Each takes 40% of
   the device (inside its share), then asks for 20% more (past it: refused with an
   out-of-memory error), then trains a small network. Recorded: the most jobs a device held
   at once, each job's outcome, and the wall time of the four jobs at --per-gpu 2 against
   --per-gpu 1.

Usage: python3 bench/bench_gpu.py [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import grade  # noqa: E402
from grader.runners.docker import GpuSlots, host_gpus  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.submissions import single_job  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TORCH_P3 = ROOT / "bench" / "gpu" / "program3_torch_cuda.py"
KERAS_P3 = ROOT / "submissions" / "1GA20CS027" / "program3.py"  # imports keras alone

SHARE_JOB = """
import time, torch
total = torch.cuda.get_device_properties(0).total_memory
inside = torch.empty(int(total * 0.40), dtype=torch.uint8, device="cuda")
try:
    past = torch.empty(int(total * 0.20), dtype=torch.uint8, device="cuda")
    refused = False
except torch.OutOfMemoryError:
    refused = True
net = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10)).cuda()
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x = torch.randn(2048, 4096, device="cuda")
started = time.perf_counter()
for _ in range(400):
    opt.zero_grad()
    net(x).square().mean().backward()
    opt.step()
torch.cuda.synchronize()
print({"past_share_refused": refused, "train_s": round(time.perf_counter() - started, 2)})
"""


def grade_one(path: Path, program: int, mode: str, env: dict[str, str], cache: Path) -> dict:
    """Grades one file in the local sandbox: the figures of section 1 or 2."""
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        job = single_job(path, program, "20CSEL76", mode)
        started = time.monotonic()
        result = grade(job, load_rubrics(), LocalRunner(), cache, Path(tempfile.mkdtemp()))
        wall = time.monotonic() - started
    finally:
        for k, v in previous.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    run = result.run
    lines = [line for line in run.stdout.splitlines() if line.startswith(("device:", "peak GPU", "Test accuracy"))]
    trusted = [t.model_dump(include={"kind", "accuracy", "accuracy_served", "accuracy_unseen", "n_unseen",
                                     "error", "wall_s"}) for t in run.trusted]
    return {"file": str(path.relative_to(ROOT)), "mode": mode, "env": env, "status": result.status.value,
            "marks": result.marks, "wall_s": round(wall, 1), "program_said": lines, "trusted": trusted,
            "in_process_accuracy": [m.get("accuracy") for m in run.trace.get("measurements", [])],
            "backend": next((line for line in run.stdout.splitlines() if "backend" in line.lower()), None),
            "failed_checks": [c.id for c in result.checks if not c.passed], "flags": result.flags}


def packing(per_gpu: int, jobs: int = 4) -> dict:
    """Section 3: `jobs` share-limited processes through GpuSlots at `per_gpu`."""
    slots = GpuSlots(["0"], per_gpu, host_gpus())
    holding, most, lock = [0], [0], threading.Lock()

    def job(_: int) -> dict:
        share = slots.acquire()
        with lock:
            holding[0] += 1
            most[0] = max(most[0], holding[0])
        try:
            env = dict(os.environ, PYTHONPATH=str(ROOT / "sandbox"), CUDA_VISIBLE_DEVICES=share.device)
            if share.jobs_per_gpu > 1:
                env["GRADER_GPU_MEMORY_FRACTION"] = f"{0.95 / share.jobs_per_gpu:.3f}"
            done = subprocess.run([sys.executable, "-c", SHARE_JOB], env=env, capture_output=True, text=True)
            tail = (done.stdout or done.stderr).strip().splitlines()[-1:]
            return {"rc": done.returncode, "said": tail[0] if tail else ""}
        finally:
            with lock:
                holding[0] -= 1
            slots.release(share)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(job, range(jobs)))
    return {"per_gpu": per_gpu, "jobs": jobs, "most_on_one_gpu": most[0], "wall_s": round(time.monotonic() - started, 1),
            "outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-full", action="store_true", help="leave out the full-mode run")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device here")
    cache = Path(tempfile.mkdtemp(prefix="grader-gpu-cache-"))
    figures = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "gpus": host_gpus()}
    figures["jobs"], figures["packing"] = [], []
    for path, program, mode, env in ((TORCH_P3, 3, "quick", {}), (KERAS_P3, 3, "quick", {"KERAS_BACKEND": "torch"})):
        figures["jobs"].append(grade_one(path, program, mode, env, cache))
        save(figures, figures["jobs"][-1])
    for per_gpu in (2, 1):
        figures["packing"].append(packing(per_gpu))
        save(figures, figures["packing"][-1])
    figures["packing_speedup"] = round(figures["packing"][1]["wall_s"] / figures["packing"][0]["wall_s"], 2)
    save(figures, {"packing speed-up at --per-gpu 2": figures["packing_speedup"]})
    if not args.skip_full:
        figures["jobs"].append(grade_one(TORCH_P3, 3, "full", {}, cache))
        save(figures, figures["jobs"][-1])


def save(figures: dict, latest: dict) -> None:
    """Prints the latest figure and writes all so far (a run cut short keeps what it measured)."""
    print(json.dumps(latest), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for folder in {RESULTS, Path(os.environ.get("OUT", RESULTS))}:
        (folder / "gpu.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
