"""`grader check` in quick mode for each program of the course: the reference solution of
every program that has a rubric and a reference, graded by the CLI as a student would run
it (local sandbox, stand-in data unless staged), median of --repeat runs, interleaved.
Prints each time with the marks it gave and writes bench/results/programs.json.

Usage: python3 bench/bench_programs.py [--repeat 3] [--programs 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUBRICS = ROOT / "rubrics" / "20CSEL76"
TARGET_S = 90.0


def available_programs() -> list[int]:
    return sorted(int(p.stem.removeprefix("program")) for p in RUBRICS.glob("program*.yaml")
                  if (ROOT / "reference" / p.stem / "solution.py").is_file())


def graded(program: int, work: Path) -> tuple[float, dict]:
    out = work / f"out{program}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check",
                           str(ROOT / "reference" / f"program{program}" / "solution.py"),
                           "--program", str(program), "--json", "--out", str(out),
                           "--cache", str(work / "cache")], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"program {program}: grader check failed:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--programs", default="", help="comma-separated program numbers (default: all)")
    args = ap.parse_args()
    programs = [int(p) for p in args.programs.split(",") if p] or available_programs()
    times: dict[int, list[float]] = {p: [] for p in programs}
    last: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="grader-bench-programs-") as tmp:
        for _ in range(args.repeat):
            for program in programs:  # interleaved, so a slow spell of the machine hits all
                wall, result = graded(program, Path(tmp))
                times[program].append(wall)
                last[program] = result
    rows = {}
    for program in programs:
        r = last[program]
        rows[str(program)] = {
            "median_s": round(statistics.median(times[program]), 2),
            "runs_s": [round(t, 2) for t in times[program]], "under_target": statistics.median(times[program]) < TARGET_S,
            "status": r["status"], "marks": r["marks"], "max": r["max"], "dataset": r.get("dataset", ""),
        }
        print(f"Program {program}: median {rows[str(program)]['median_s']:6.1f} s  runs {rows[str(program)]['runs_s']}  "
              f"{r['status']}  marks {r['marks']}")
    out = ROOT / "bench" / "results" / "programs.json"
    out.write_text(json.dumps({"what": "grader check, quick mode, reference solution of each program",
                               "repeat": args.repeat, "target_s": TARGET_S, "machine": platform.platform(),
                               "cpus": __import__("os").cpu_count(), "programs": rows}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
