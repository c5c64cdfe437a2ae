"""A whole class: jobs in parallel, each result stored the moment it is finished, progress
with failures and ETA, then the similarity report (grader.similarity, unless switched off)
and every report rebuilt from the gradebook (grader.report).

Interrupted (Ctrl-C, a crash, a power cut) and run again, it grades only what is not in
the gradebook yet; an unchanged submission is never graded twice.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Protocol

from grader.course import Rubrics
from grader.gradebook import Gradebook
from grader.models import GradeResult, Job
from grader.pipeline import grade, grade_key
from grader.report import ARTIFACTS, regenerate
from grader.runners.base import Runner
from grader.similarity.models import SimilarityReport


@dataclass
class BatchOutcome:
    results: list[GradeResult] = field(default_factory=list)
    graded: int = 0  # run now
    reused: int = 0  # found in the gradebook
    interrupted: bool = False
    index: Path | None = None
    csv: Path | None = None
    course_report: Path | None = None
    internal_errors: list[str] = field(default_factory=list)  # grader failures: not stored, retried next run
    similarity: list[SimilarityReport] = field(default_factory=list)  # one per program; empty when switched off
    similarity_error: str | None = None  # why the similarity report could not be made


class Progress:
    """What a batch reports while it runs (the CLI draws it; tests count it)."""

    def start(self, total: int, reused: int) -> None: ...
    def done(self, result: GradeResult, reused: bool = False) -> None: ...
    def failed_job(self, job: Job, error: Exception) -> None: ...  # a grader fault: not stored, graded next run
    def stop(self) -> None: ...


def artifacts_dir(out: Path, key: str) -> Path:
    return out / ARTIFACTS / key


class Engine(Protocol):
    """Where jobs run: a thread pool on this host (PoolEngine) or a cluster
    (grader.cluster.engine.RayEngine). An engine grades and hands results back; the batch
    stores them: it is the only writer of the gradebook."""

    parallel: int  # how many jobs to keep submitted at once

    def submit(self, job: Job, key: str, artifacts_to: Path) -> Hashable: ...

    def finished(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, GradeResult | Exception]]:
        """The handles done within `timeout` seconds, each with its result or the grader's fault."""
        ...

    def cancel(self) -> None:
        """Stops every job now (Ctrl-C); their partial results are not stored."""
        ...

    def close(self) -> None: ...


class PoolEngine:
    """Jobs in a thread pool on this host, each through `grade` with the given runner."""

    def __init__(self, rubrics: Rubrics, runner: Runner, cache_dir: Path, parallel: int = 2,
                 on_interrupt: Callable[[], None] | None = None):
        self.rubrics, self.runner, self.cache_dir = rubrics, runner, cache_dir
        self.parallel = max(1, parallel)
        self.on_interrupt = on_interrupt
        self.pool = ThreadPoolExecutor(max_workers=self.parallel)

    def submit(self, job: Job, key: str, artifacts_to: Path) -> Future:
        return self.pool.submit(grade, job, self.rubrics, self.runner, self.cache_dir, artifacts_to, key=key,
                                parallel_jobs=self.parallel)

    def finished(self, handles: list[Future], timeout: float) -> list[tuple[Future, GradeResult | Exception]]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [(f, f.result() if f.exception() is None or not isinstance(f.exception(), Exception)
                 else f.exception()) for f in done]  # (anything but an Exception is raised here)

    def cancel(self) -> None:
        if self.on_interrupt:
            self.on_interrupt()  # stops the sandboxes
        self.pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        getattr(self.runner, "close", lambda: None)()  # its clean sandbox servers


def run_batch(jobs: list[Job], rubrics: Rubrics, runner: Runner | None, out: Path, cache_dir: Path,
              jobs_in_parallel: int = 2, progress: Progress | None = None,
              gradebook_path: Path | None = None,
              on_interrupt: Callable[[], None] | None = None, similarity: bool = True,
              engine: Engine | None = None) -> BatchOutcome:
    """Grade `jobs` into the gradebook (out/gradebook.sqlite unless given), then, with
    `similarity`, compare each program's submissions across the class, then rebuild every
    report under `out`. Jobs run on `engine`, by default a pool of `jobs_in_parallel`
    threads using `runner`. A fault of the grader costs one job (named in
    `internal_errors`) or the similarity report (`similarity_error`), never the batch."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress()
    outcome = BatchOutcome()
    keyed = [(job, grade_key(job, rubrics, cache_dir)) for job in jobs]
    engine = engine or PoolEngine(rubrics, runner, cache_dir, jobs_in_parallel, on_interrupt)
    with Gradebook(gradebook_path or out / "gradebook.sqlite") as book:
        known = book.known_keys([k for _, k in keyed])
        todo = [(j, k) for j, k in keyed if k not in known]
        results: dict[str, GradeResult] = {k: book.get(k) for _, k in keyed if k in known}
        outcome.reused = len(results)
        progress.start(len(keyed), outcome.reused)
        for r in results.values():
            progress.done(r, reused=True)
        pending: dict[Hashable, tuple[Job, str]] = {}
        try:
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < engine.parallel:
                    job, key = queue.pop(0)
                    pending[engine.submit(job, key, artifacts_dir(out, key))] = (job, key)
                for handle, result in engine.finished(list(pending), timeout=0.5):
                    job, key = pending.pop(handle)
                    if isinstance(result, Exception):  # a fault of the grader, not the student: the batch goes on
                        outcome.internal_errors.append(f"{job.student} program {job.program}: "
                                                       f"{type(result).__name__}: {result}")
                        progress.failed_job(job, result)
                        continue
                    book.put(result)  # committed before anything else happens
                    results[key] = result
                    outcome.graded += 1
                    progress.done(result)
        except KeyboardInterrupt:
            outcome.interrupted = True
            engine.cancel()
            raise
        finally:
            engine.close()
            progress.stop()
    outcome.results = [results[k] for _, k in keyed if k in results]
    if similarity:
        outcome.similarity = _similarity(jobs, rubrics, out, outcome)
    report = regenerate(gradebook_path or out / "gradebook.sqlite", rubrics, out,
                        roster={j.student: j.name for j in jobs})
    outcome.index, outcome.csv, outcome.course_report = report.index, report.marks_csv, report.class_report
    return outcome


def _similarity(jobs: list[Job], rubrics: Rubrics, out: Path, outcome: BatchOutcome) -> list[SimilarityReport]:
    """The class's similarity report; a failure is named and the batch's reports still come out."""
    from grader.similarity.run import run_similarity  # copydetect and scipy: loaded only when used

    try:
        return run_similarity(jobs, rubrics, out)
    except Exception as e:  # noqa: BLE001 - a fault here must not cost the graded class its reports
        outcome.similarity_error = f"{type(e).__name__}: {e}"
        return []


def summary(outcome: BatchOutcome) -> dict[str, int]:
    """Results by outcome: ok, error, timeout, … and, apart from those, missing (no file)."""
    counts: dict[str, int] = {}
    for r in outcome.results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def summary_line(outcome: BatchOutcome) -> str:
    """'Graded 40, reused 9: 30 ok, 4 failed (3 error, 1 timeout), 15 missing'."""
    counts = summary(outcome)
    failed = {k: v for k, v in sorted(counts.items()) if k not in ("ok", "missing")}
    parts = [f"{counts.get('ok', 0)} ok"]
    if failed:
        parts.append(f"{sum(failed.values())} failed ({', '.join(f'{v} {k}' for k, v in failed.items())})")
    if counts.get("missing"):
        parts.append(f"{counts['missing']} missing")
    return f"Graded {outcome.graded}, reused {outcome.reused}: " + ", ".join(parts)
