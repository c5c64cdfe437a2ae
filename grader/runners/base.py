"""What every runner is given (RunPlan) and how a run's outcome becomes a verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from grader.models import Job, RunRecord, Status

TRACE_MAX_BYTES = 5 * 1024 * 1024


class RunPlan(BaseModel):
    """Everything the sandbox needs besides the submission, derived from the rubric."""

    entry: str  # relative to the submission folder
    mode: Literal["quick", "full"]
    frameworks: list[str]  # the probes to install: keras, torch, sklearn, ...
    keras_flavour: str = "keras3"
    dataset: str | None
    probe: dict[str, Any] = {}  # the rubric's post-run work for the probe
    epochs_cap: int | None
    quick_train: int
    quick_test: int
    stdin: list[str] = []
    timeout_s: float
    cell_timeout_s: float | None = None  # notebooks: the most one cell may take
    memory_mb: int
    output_kb: int
    max_processes: int = 256
    cpu_threads: int | None = None  # compute threads per job (frameworks' thread pools); None = all cores
    cache_dir: str


class Runner(Protocol):
    name: str

    def run(self, job: Job, plan: RunPlan, artifacts_to: Path) -> RunRecord: ...


def probe_config(plan: RunPlan, entry: Path, out_dir: Path, artifacts_dir: Path) -> dict[str, Any]:
    return {
        "entry": str(entry), "mode": plan.mode, "frameworks": plan.frameworks,
        "keras_flavour": plan.keras_flavour, "dataset": plan.dataset,
        "epochs_cap": plan.epochs_cap if plan.mode == "quick" else None,
        "quick_train": plan.quick_train, "quick_test": plan.quick_test, "stdin": plan.stdin,
        "cell_timeout_s": plan.cell_timeout_s, "probe": plan.probe,
        "cache_dir": plan.cache_dir, "out_dir": str(out_dir), "artifacts_dir": str(artifacts_dir),
    }


def read_trace(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The probe's trace as plain JSON (never unpickled), size-capped."""
    if not path.is_file():
        return None, "no trace"
    if path.stat().st_size > TRACE_MAX_BYTES:
        return None, f"trace larger than {TRACE_MAX_BYTES} bytes: ignored"
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        return None, f"unreadable trace: {e}"
    return (data, "") if isinstance(data, dict) else (None, "trace is not an object")


def verdict(trace: dict[str, Any] | None, returncode: int | None,
            stderr_tail: str) -> tuple[Status, str]:
    """The status of a run that ended by itself (not killed by a watchdog)."""
    if trace is None:
        tail = stderr_tail.strip().splitlines()[-3:]
        return Status.error, ("the program ended before the grader could record anything"
                              + (f": {' / '.join(tail)}" if tail else ""))
    exc = trace.get("exception")
    if exc:
        where = f" at line {exc['line']}" if exc.get("line") else ""
        if exc.get("cell"):
            cell = exc["cell"]
            where = f" in cell {cell['number']} ({cell['first_line']!r})"
            if cell.get("line_in_cell"):
                where += f", line {cell['line_in_cell']}"
        if exc.get("type") == "CellTimeoutError":
            return Status.timeout, f"{exc['message']}{where}"
        during = f" during {exc['phase']}" if exc.get("phase") and exc["phase"] != "running the program" else ""
        first = exc["message"].splitlines()[0] if exc["message"] else exc["type"]
        msg = f"{first}{where}{during}"
        if exc.get("type") == "DeadKernelError":
            msg += " (it crashed or was stopped)"
        if exc.get("type") in ("ModuleNotFoundError", "ImportError"):
            msg += " (that package is not installed in the grading sandbox)"
        if exc.get("removed_api"):
            api = exc["removed_api"]
            msg += f". {api['api']} was removed in Keras 3: use {api['replacement']}"
        return Status.error, msg
    end = trace.get("exit") or {}
    if not end:
        return Status.error, ("the program ended abruptly (e.g. os._exit or a crash of the "
                              f"Python process, exit code {returncode})")
    if end.get("kind") == "sys.exit":
        code = end.get("code")
        line = f" at line {end['line']}" if end.get("line") else ""
        if code not in (0, None):
            return Status.error, f"the program called sys.exit({code!r}){line}"
        if not trace.get("fits"):
            return Status.error, f"the program called sys.exit(0){line} before training any model"
    return Status.ok, ""
