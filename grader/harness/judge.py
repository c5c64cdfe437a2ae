"""Runs the checks a rubric names over (static report, run record) -> CheckResults."""

from __future__ import annotations

from grader.course import ProgramRubric
from grader.harness.registry import Context, Outcome, basis, check_fn
from grader.models import CheckResult, Job, RunRecord, StaticReport


def judge(job: Job, rubric: ProgramRubric, static: StaticReport, run: RunRecord | None) -> list[CheckResult]:
    ctx = Context(job=job, rubric=rubric, static=static, run=run)
    results = []
    for spec in rubric.checks:
        title, fn = check_fn(spec.id)
        try:
            out = fn(ctx, spec.params)
        except Exception as e:  # a harness bug must not cost the student marks silently
            out = Outcome(False, f"the check itself failed ({type(e).__name__}: {e}); faculty should review",
                          flag=f"check {spec.id} failed internally")
        score = out.score if out.score is not None else float(out.passed)
        results.append(CheckResult(
            id=spec.id, title=title, attribute=spec.attribute, passed=out.passed,
            score=round(max(0.0, min(1.0, score)), 4), weight=spec.weight, message=out.message,
            hint="" if out.passed else out.hint, evidence={**out.evidence, "figure from": basis(spec.id)},
            flag=out.flag))
    return results
