"""One submission through the pipeline: static analysis -> sandbox run -> checks -> marks.

`grade` is what `grader check` calls; `grader batch` calls it for every job (see batch.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from grader import data as datasets
from grader import trusted, trusted_vision
from grader.course import Rubrics
from grader.harness.judge import judge
from grader.harness.registry import harness_version
from grader.probe import provider
from grader.reports.curves import save_curve
from grader.models import GradeResult, Job, RunRecord, StaticReport, Status
from grader.runners.base import RunPlan, Runner
from grader.scoring import score
from grader.static import analyse


def plan_for(job: Job, rubrics: Rubrics, cache_dir: Path, parallel_jobs: int = 1,
             imports: list[str] | None = None) -> RunPlan:
    """The sandbox's plan for the job; `imports` (static analysis) only choose what starts ahead."""
    rubric = rubrics.program(job.program)
    limits = rubric.limits
    return RunPlan(
        entry=str(job.entry), mode=job.mode, frameworks=rubric.frameworks,
        keras_flavour=rubrics.course.keras_flavour, dataset=rubric.dataset, probe=rubric.probe,
        epochs_cap=limits.quick.epochs, quick_train=limits.quick.train, quick_test=limits.quick.test,
        train_budget_s=limits.quick.train_budget_s,
        stdin=rubric.stdin, timeout_s=limits.quick.timeout_s if job.mode == "quick" else limits.full.timeout_s,
        cell_timeout_s=limits.quick.cell_timeout_s if job.mode == "quick" else limits.full.cell_timeout_s,
        memory_mb=limits.memory_mb, output_kb=limits.output_kb, cache_dir=str(cache_dir),
        cpu_threads=max(1, (os.cpu_count() or 1) // parallel_jobs) if parallel_jobs > 1 else None,
        imports=list(imports or []))


def quick_limits(job: Job, rubrics: Rubrics) -> dict:
    if job.mode != "quick":
        return {}
    rubric = rubrics.program(job.program)
    q = rubric.limits.quick
    served = {"train_images": q.train, "test_images": q.test} if rubric.dataset else {}  # no data, no subset
    budget = {"train_budget_s": q.train_budget_s} if q.train_budget_s else {}  # shown on the sheet as a cap
    return {"epochs": q.epochs, **served, **budget, "timeout_s": q.timeout_s}


def data_state(rubrics: Rubrics, program: int, cache_dir: Path) -> str:
    """Which data the job is served: the staged file's checksum, or the stand-in."""
    if "torchvision" in rubrics.program(program).frameworks:  # staged weights change the marks too
        return f"{_dataset_state(rubrics, program, cache_dir)}|{datasets.weights_state(cache_dir)}"
    return _dataset_state(rubrics, program, cache_dir)


def _dataset_state(rubrics: Rubrics, program: int, cache_dir: Path) -> str:
    name = rubrics.program(program).dataset
    if name is None:
        return "no-dataset"
    staged = {s.name: s for s in datasets.status(cache_dir)}.get(name)
    if not staged or not staged.staged:
        return f"{name}:standin:v{provider.STANDIN_VERSION}"
    stat = Path(staged.path).stat()
    return f"{name}:staged:{stat.st_size}:{stat.st_mtime_ns}"


def grade_key(job: Job, rubrics: Rubrics, cache_dir: Path) -> str:
    parts = [job.student, job.content_hash, str(job.program), job.course, job.mode, job.assessment, rubrics.version(job.program)
             if job.program in rubrics.programs else "no-rubric", harness_version(),
             rubrics.course.keras_flavour, data_state(rubrics, job.program, cache_dir)
             if job.program in rubrics.programs else ""]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def rejected_run(job: Job) -> RunRecord:
    return RunRecord(status=Status.rejected, message=job.rejected_reason or "")


def unparsable_run(static: StaticReport) -> RunRecord:
    """A program that does not parse is not run: Python would stop at the same line."""
    e = static.syntax_error
    where = f" in {e.where()}: `{e.text.strip()}`" if e.line else ""
    return RunRecord(status=Status.error, message=f"SyntaxError: {e.message}{where} (not run)")


def run_and_remeasure(job: Job, plan: RunPlan, runner: Runner, artifacts_to: Path) -> RunRecord:
    """The student's run, then the trusted re-measurement of what it exported (grader/trusted.py)."""
    run = runner.run(job, plan, artifacts_to)
    if plan.dataset:
        run.data_source = "real" if provider.is_staged(plan.dataset, plan.cache_dir) else "standin"
    try:
        if run.export_dir and hasattr(runner, "remeasure"):
            run.trusted = trusted.remeasure(run, plan, runner)
            trusted_vision.draw_detections(run, plan, artifacts_to)
    finally:
        if run.export_dir:
            shutil.rmtree(run.export_dir, ignore_errors=True)
            run.export_dir = None
    return run


def grade(job: Job, rubrics: Rubrics, runner: Runner, cache_dir: Path, artifacts_to: Path,
          key: str | None = None, parallel_jobs: int = 1) -> GradeResult:
    rubric = rubrics.program(job.program)
    if job.rejected_reason:
        static, run = StaticReport(parses=False), rejected_run(job)
    else:
        static = analyse(job.folder / job.entry, rubric.required_steps)
        run = (run_and_remeasure(job, plan_for(job, rubrics, cache_dir, parallel_jobs, static.imports), runner,
                                  artifacts_to)
               if static.parses else unparsable_run(static))
    checks = judge(job, rubric, static, run if run.status != Status.rejected else None)
    gates = {c.id: c.gate for c in rubric.checks}
    attributes = score(checks, rubrics.course, gates, job.assessment, program=job.program)
    trace = run.trace or {}
    save_curve(trace, artifacts_to)
    dataset = trace.get("dataset") or {}
    flags = [c.flag for c in checks if c.flag] + [n for n in trace.get("notes", []) if "network" in n]
    return GradeResult(
        student=job.student, name=job.name, program=job.program, title=rubric.title, course=job.course,
        mode=job.mode, assessment=job.assessment, status=run.status, status_message=run.message,
        marks={a.attribute: a.mark for a in attributes}, max={a.attribute: a.max for a in attributes},
        attributes=attributes, checks=checks, flags=flags,
        dataset=dataset.get("description", ""), quick_limits=quick_limits(job, rubrics),
        content_hash=job.content_hash, grade_key=key or grade_key(job, rubrics, cache_dir),
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        run=run, static=static)


def to_json(result: GradeResult) -> str:
    return json.dumps(result.public(), indent=2, ensure_ascii=False)
