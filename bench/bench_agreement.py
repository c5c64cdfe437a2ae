"""Does a quick preview tell the student the band the full run gives?

Grades every reference solution (reference/programN/solution.py), every sample-class
submission (submissions/<USN>/programN.*) and every case of ../shared/cases in quick mode and
in full mode, and reports how often the Execution bands agree (target: every program that is
Good in the full run is Good in its preview). Writes bench/results/agreement.json and prints
the table.

Full mode on a laptop CPU takes hours per program (50000 images, the program's own epochs), so
`--full-train N` runs a *reduced full* instead: the program's own epochs (no epoch cap, no
training-time budget), the full run's accuracy bars and time limit, on a stratified subset of
N training and `--full-test` test samples of the stand-in. The quick-mode machinery serves the
subset, so batch normalisation's quick-mode momentum applies there too; the table says which
full was run. `--full-timeout` bounds each full run (a run past it counts as "not finished",
not as a disagreement).

    python3 bench/bench_agreement.py --programs 3,4,6 --modes quick
    python3 bench/bench_agreement.py --programs 4 --only p4_datagen --full-train 5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.course import load_rubrics  # noqa: E402
from grader.pipeline import grade  # noqa: E402
from grader.runners.local import LocalRunner  # noqa: E402
from grader.submissions import single_job  # noqa: E402

CASES = ROOT.parent / "shared" / "cases"
RESULTS = ROOT / "bench" / "results" / "agreement.json"
RUNNABLE = (".py", ".ipynb")


def programs_to_grade(programs: list[int], only: str | None) -> list[dict]:
    """(name, program, folder to copy, entry file) for each reference, submission and case."""
    items = []
    for n in programs:
        ref = ROOT / "reference" / f"program{n}" / "solution.py"
        if ref.is_file():
            items.append({"name": f"reference/program{n}", "kind": "reference", "program": n, "file": ref})
        for path in sorted((ROOT / "submissions").glob(f"*/program{n}.*")):
            if path.suffix in RUNNABLE:
                items.append({"name": f"submissions/{path.parent.name}/{path.name}", "kind": "submission",
                              "program": n, "file": path})
        for path in sorted(CASES.glob(f"p{n}_*")):
            if path.suffix in RUNNABLE:
                items.append({"name": f"cases/{path.name}", "kind": "case", "program": n, "file": path})
    wanted = [w for w in (only or "").split(",") if w]
    return [i for i in items if not wanted or any(w in i["name"] for w in wanted)]


def stage(item: dict, into: Path) -> Path:
    """A fresh folder with the program and its companions (images, data), as graded."""
    folder = into / item["name"].replace("/", "_")
    folder.mkdir(parents=True)
    src = item["file"]
    companions = [p for p in src.parent.iterdir() if p.is_file() and p.suffix not in RUNNABLE]
    for p in companions:
        shutil.copy(p, folder / p.name)
    entry = folder / (f"program{item['program']}{src.suffix}" if item["kind"] != "submission" else src.name)
    shutil.copy(src, entry)
    return entry


def reduced_full(rubrics, program: int, train: int, test: int, timeout_s: float | None) -> None:
    """Turn a program's quick limits into the reduced full run described above."""
    rubric = rubrics.programs[program]
    q, full = rubric.limits.quick, rubric.limits.full
    q.epochs, q.train, q.test, q.train_budget_s = 100_000, train, test, None
    q.timeout_s = timeout_s or full.timeout_s
    q.cell_timeout_s = full.cell_timeout_s and min(full.cell_timeout_s, q.timeout_s)
    if rubric.thresholds:
        for by_mode in (rubric.thresholds.real, rubric.thresholds.standin):
            by_mode.quick = by_mode.full
    for check in rubric.checks:  # nested bars (e.g. Program 1's KNN) follow the same rule
        bars = check.params.get("thresholds") or check.params.get("bars")
        if isinstance(bars, dict):
            for by_mode in bars.values():
                if isinstance(by_mode, dict) and "full" in by_mode:
                    by_mode["quick"] = by_mode["full"]


def one_run(item: dict, mode: str, args, cache: Path, work: Path) -> dict:
    rubrics = load_rubrics()
    grade_mode = mode
    if mode == "full" and args.full_train:
        reduced_full(rubrics, item["program"], args.full_train, args.full_test, args.full_timeout)
        grade_mode = "quick"
    elif mode == "full" and args.full_timeout:
        rubrics.programs[item["program"]].limits.full.timeout_s = args.full_timeout
    entry = stage(item, work / mode)
    job = single_job(entry, item["program"], "20CSEL76", grade_mode)
    start = time.monotonic()
    result = grade(job, rubrics, LocalRunner(), cache, work / mode / "artifacts")
    seconds = round(time.monotonic() - start, 1)
    execution = next((a for a in result.attributes if a.attribute == "execution"), None)
    fits = (result.run.trace or {}).get("fits", []) if result.run else []
    accuracy = next((c.evidence.get("measured") for c in result.checks
                     if c.id == "accuracy.threshold" and isinstance(c.evidence, dict)), None)
    return {"status": result.status.value, "execution": execution.mark if execution else None,
            "band": execution.band if execution else None, "accuracy": accuracy, "seconds": seconds,
            "epochs_run": [f.get("epochs_run") for f in fits],
            "stopped_by_budget": any(f.get("stopped_by_budget") for f in fits),
            "failed": [c.id for c in result.checks if not c.passed]}


def summarise(rows: list[dict]) -> dict:
    both = [r for r in rows if r.get("quick") and r.get("full") and r["full"]["status"] != "timeout"]
    agree = [r for r in both if r["quick"]["band"] == r["full"]["band"]]
    good_full = [r for r in both if r["full"]["band"] == "Good"]
    return {"compared": len(both), "bands_agree": len(agree),
            "good_in_full": len(good_full),
            "good_in_full_and_quick": sum(r["quick"]["band"] == "Good" for r in good_full),
            "disagree": [r["name"] for r in both if r not in agree],
            "quick_only_good": sum(1 for r in rows if r.get("quick") and r["quick"]["band"] == "Good"),
            "quick_runs": sum(1 for r in rows if r.get("quick"))}


def table(rows: list[dict]) -> str:
    lines = [f"{'program':58} {'quick':>22} {'full':>22}"]
    for r in rows:
        cells = []
        for mode in ("quick", "full"):
            m = r.get(mode)
            acc = f"{m['accuracy']:.0%}" if m and isinstance(m.get("accuracy"), float) else "-"
            cells.append(f"{m['band'] or m['status']} {acc} {m['seconds']:.0f}s" if m else "—")
        lines.append(f"{r['name'][:58]:58} {cells[0]:>22} {cells[1]:>22}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", default="1,2,3,4,5,6,7", help="comma-separated program numbers")
    ap.add_argument("--modes", default="quick,full")
    ap.add_argument("--only", help="grade only the programs whose name contains one of these (comma-separated)")
    ap.add_argument("--limit", type=int, help="at most this many programs")
    ap.add_argument("--full-train", type=int, help="reduced full: this many training samples")
    ap.add_argument("--full-test", type=int, default=1000)
    ap.add_argument("--full-timeout", type=float, help="seconds a full run may take")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--merge", action="store_true", help="keep the rows of --out not graded now")
    args = ap.parse_args()
    items = programs_to_grade([int(p) for p in args.programs.split(",")], args.only)[: args.limit]
    modes = args.modes.split(",")
    previous = json.loads(args.out.read_text()) if args.merge and args.out.is_file() else {}
    rows = {r["name"]: r for r in previous.get("rows", [])}
    with tempfile.TemporaryDirectory(prefix="agreement-") as tmp:
        cache = Path(tmp) / "cache"
        for item in items:
            row = rows.setdefault(item["name"], {"name": item["name"], "program": item["program"],
                                                 "kind": item["kind"]})
            for mode in modes:
                work = Path(tempfile.mkdtemp(dir=tmp))
                row[mode] = one_run(item, mode, args, cache, work)
                row[mode]["full_kind"] = (f"reduced: {args.full_train} train / {args.full_test} test samples"
                                          if mode == "full" and args.full_train else mode)
                row[mode]["load_average"] = [round(x, 2) for x in os.getloadavg()]
                print(item["name"], mode, row[mode], flush=True)
                out = write(args.out, rows, previous)  # after every run: an interrupted bench keeps its rows
    print(table(out["rows"]))
    print(json.dumps(out["summary"], indent=2))


def write(path: Path, rows: dict, previous: dict) -> dict:
    ordered = sorted(rows.values(), key=lambda r: (r["program"], r["kind"], r["name"]))
    runs = previous.get("runs", []) + [{"argv": sys.argv[1:], "finished": time.strftime("%Y-%m-%d %H:%M"),
                                        "load_average": [round(x, 2) for x in os.getloadavg()]}]
    out = {"what": "Execution band of quick preview against full run", "machine": platform.platform(),
           "cpus": os.cpu_count(), "runs": runs, "summary": summarise(ordered), "rows": ordered}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
