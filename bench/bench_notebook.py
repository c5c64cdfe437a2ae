"""Notebook overhead: the manual's Program 3 graded as a script and as a notebook (the
same code in two cells, run in a Jupyter kernel), quick mode, median of --repeat runs
each, interleaved. Also the kernel's start-up: a one-cell notebook against a one-line
script. Prints the figures and writes bench/results/notebook.json.

Usage: python3 bench/bench_notebook.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MANUAL_P3 = ROOT / "tests" / "fixtures" / "manual" / "program3.py"


def graded(path: Path, cache: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader.cli", "check", str(path), "--program", "3", "--json",
                    "--out", str(out), "--cache", str(cache)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def as_notebook(source: str, path: Path) -> Path:
    head, tail = source.split("# Define a simple CNN model")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(head),
                                         nbformat.v4.new_code_cell("# Define a simple CNN model" + tail)])
    nbformat.write(nb, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grader-bench-nb-"))
    cache = work / "cache"
    try:
        script = work / "script" / "program3.py"
        script.parent.mkdir()
        shutil.copy(MANUAL_P3, script)
        (work / "nb").mkdir()
        notebook = as_notebook(MANUAL_P3.read_text(), work / "nb" / "program3.ipynb")
        tiny_py = work / "tiny" / "program3.py"
        tiny_py.parent.mkdir()
        tiny_py.write_text("x = 1\n")
        tiny_nb = work / "tinynb" / "program3.ipynb"
        tiny_nb.parent.mkdir()
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tiny_nb)
        graded(script, cache, work / "r")  # warm-up: builds the stand-in cache
        runs = {"script": [], "notebook": [], "tiny_script": [], "tiny_notebook": []}
        for _ in range(args.repeat):
            for name, path in (("script", script), ("notebook", notebook), ("tiny_script", tiny_py),
                               ("tiny_notebook", tiny_nb)):
                runs[name].append(round(graded(path, cache, work / "r"), 2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    startup = med["tiny_notebook"] - med["tiny_script"]
    results = {
        "runs_s": runs, "median_s": {k: round(v, 2) for k, v in med.items()},
        "kernel_startup_s": round(startup, 2),
        "notebook_over_script_ratio": round(med["notebook"] / med["script"], 3),
        "notebook_over_script_beyond_startup_pct": round(100 * (med["notebook"] - startup - med["script"]) / med["script"], 1),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "notebook.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
