"""`grader check --course DLPRAC` in quick mode on each activity's reference solution, as a
student would run it (local sandbox, stand-in data and weights unless staged), median of
--repeat runs, interleaved. The activities are data: bench/dlprac_activities.json (a solution
and the files it needs beside it). Prints each time with the marks it gave and writes
bench/results/dlprac.json.

Usage: python3 bench/bench_dlprac.py [--repeat 3] [--programs 1,4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACTIVITIES = ROOT / "bench" / "dlprac_activities.json"
TARGET_S = 90.0


def submission(activity: dict, work: Path) -> Path:
    """A folder holding the solution as programN.py and what it needs beside it."""
    folder = work / f"activity{activity['program']}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        shutil.copy(ROOT / activity["solution"], folder / f"program{activity['program']}.py")
        for extra in activity.get("with", []):
            src = ROOT / extra
            (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / src.name)
    return folder


def graded(activity: dict, work: Path) -> tuple[float, dict]:
    program = activity["program"]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(submission(activity, work)),
                           "--course", "DLPRAC", "--program", str(program), "--json",
                           "--out", str(work / f"out{program}"), "--cache", str(work / "cache")],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"activity {program}: grader check failed:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--programs", default="", help="comma-separated activity numbers (default: all listed)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dlprac.json", help="where to write")
    args = ap.parse_args()
    wanted = {int(p) for p in args.programs.split(",") if p}
    activities = [a for a in json.loads(ACTIVITIES.read_text())["activities"] if not wanted or a["program"] in wanted]
    times: dict[int, list[float]] = {a["program"]: [] for a in activities}
    last: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="grader-bench-dlprac-") as tmp:
        for _ in range(args.repeat):
            for activity in activities:  # interleaved, so a slow spell of the machine hits all
                wall, result = graded(activity, Path(tmp))
                times[activity["program"]].append(wall)
                last[activity["program"]] = result
    rows = {}
    for program, runs in times.items():
        r = last[program]
        median = statistics.median(runs)
        rows[str(program)] = {"median_s": round(median, 2), "runs_s": [round(t, 2) for t in runs],
                              "under_target": median < TARGET_S, "status": r["status"], "marks": r["marks"],
                              "max": r["max"], "dataset": r.get("dataset", "")}
        print(f"Activity {program}: median {median:6.1f} s  runs {rows[str(program)]['runs_s']}  {r['status']}  "
              f"marks {r['marks']}")
    out = args.out
    out.write_text(json.dumps({"what": "grader check --course DLPRAC, quick mode, reference solution of each activity",
                               "repeat": args.repeat, "target_s": TARGET_S, "machine": platform.platform(),
                               "cpus": os.cpu_count(), "load_at_end": os.getloadavg()[0],
                               "activities": rows}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
