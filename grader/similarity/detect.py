"""One program's similarity run over a class: read each submission's code, take out the
manual's code, fingerprint each distinct file once, rank all pairs by one sparse product,
compare exactly only the best of them, and flag those at or above the course's threshold.

Identical files are always listed; students who all hand in the manual's program unchanged
are named apart and never paired (what they share is what they were given).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint

from grader.course import Rubrics, SimilaritySpec
from grader.models import NOT_SUBMITTED, Job
from grader.paths import PROJECT_DIR
from grader.similarity.fingerprints import (FingerprintCache, boilerplate_hashes, code_hash, compare,
                                            fingerprint)
from grader.similarity.models import Pair, SimilarityReport, Span, Submission
from grader.similarity.rank import rank
from grader.similarity.source import SourceError, manual_files, read_code


def find_similar(jobs: list[Job], rubrics: Rubrics, program: int, *, extra_manual: list[Path] = (),
                 spec: SimilaritySpec | None = None) -> SimilarityReport:
    """Compare the submissions of `program` among `jobs` (one per student; missing work is
    left out). extra_manual: more files or folders of given code to take out. spec: the
    settings (default: the course's `similarity:`). Never raises for a bad submission:
    it is listed in `skipped` with the reason."""
    spec = spec or rubrics.course.similarity
    report = SimilarityReport(course=rubrics.course.course, program=program,
                              title=rubrics.programs[program].title if program in rubrics.programs else "",
                              generated=datetime.now().strftime("%Y-%m-%d %H:%M"), threshold=spec.threshold,
                              min_shared_lines=spec.min_shared_lines, noise=spec.noise, guarantee=spec.guarantee)
    with _timed(report, "read"):
        report.submissions, report.skipped = _read_submissions(jobs, program)
        manual = _read_manual(program, rubrics.folder, list(extra_manual), report)
    with _timed(report, "fingerprint"):
        fps = _fingerprint(report, manual, spec)
    with _timed(report, "rank"):
        candidates = _candidates(report, fps, spec)
    with _timed(report, "compare"):
        subs = report.submissions
        report.pairs = sorted((_compare(subs[i], subs[j], fps[i], fps[j], e, spec) for (i, j), e in candidates.items()),
                              key=lambda p: (-p.similarity, -p.shared_lines, p.a, p.b))
        _mark_manual_code(report, manual, spec)
    return report


@contextmanager
def _timed(report: SimilarityReport, stage: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    report.timings[stage] = round(time.perf_counter() - t, 3)


def _fingerprint(report: SimilarityReport, manual: dict[str, str], spec: SimilaritySpec) -> list[CodeFingerprint]:
    """Each submission's fingerprints with the manual's taken out, in report.submissions'
    order; files too short to hold one match are moved to `skipped`, and those with nothing
    left of their own are named in `manual_only`."""
    cache = FingerprintCache(spec, boilerplate_hashes(list(manual.values()), spec))
    fps = [cache.get(s.code, s.code_hash) for s in report.submissions]
    kept = []
    for sub, fp in zip(report.submissions, fps):
        if len(fp.filtered_code) < spec.noise:
            report.skipped.append(f"{sub.student}: {Path(sub.file).name} is too short to compare "
                                  f"({sub.lines} line{'' if sub.lines == 1 else 's'} of code)")
            continue
        sub.own_fingerprints = len(fp.hashes)
        kept.append((sub, fp))
    report.submissions = [sub for sub, _ in kept]
    report.fingerprinted = len(cache)
    report.manual_only = [s.student for s in report.submissions if s.own_fingerprints == 0]
    return [fp for _, fp in kept]


# A pair whose estimate is at least this share of the threshold is compared exactly whatever
# its rank: the estimate (shared fingerprints) runs below the exact figure (shared
# characters, where every match counts its whole length), so clusters of copies in a small
# class are not cut off by the count.
ESTIMATE_MARGIN = 0.75


def _candidates(report: SimilarityReport, fps: list[CodeFingerprint],
                spec: SimilaritySpec) -> dict[tuple[int, int], float]:
    """(i, j) -> estimate of the pairs to compare exactly: the best by one sparse product,
    and every pair of identical files."""
    n = len(report.submissions)
    report.pairs_total = n * (n - 1) // 2
    ranking = rank([fp.hashes for fp in fps])
    top = ranking.top(max(spec.compare_min, spec.compare_per_submission * n), at_least=spec.threshold * ESTIMATE_MARGIN)
    candidates = {(i, j): e for i, j, e in top}
    for i, j in _identical(report.submissions):
        candidates.setdefault((i, j), 1.0)
    return candidates


def _read_submissions(jobs: list[Job], program: int) -> tuple[list[Submission], list[str]]:
    subs, skipped = [], []
    for job in sorted((j for j in jobs if j.program == program), key=lambda j: j.student):
        if job.entry is None or job.content_hash == NOT_SUBMITTED:
            continue
        path = Path(job.folder) / job.entry
        try:
            code = read_code(path)
        except SourceError as e:
            skipped.append(f"{job.student}: {e}")
            continue
        subs.append(Submission(student=job.student, name=job.name, file=str(path), content_hash=job.content_hash,
                               code_hash=code_hash(code), lines=_code_lines(code), code=code))
    return subs, skipped


def _read_manual(program: int, course_folder: Path, extra: list[Path], report: SimilarityReport) -> dict[str, str]:
    """file name -> code of the manual's code for the program; unreadable files are skipped."""
    manual = {}
    for path in manual_files(program, course_folder, list(extra)):
        try:
            manual[str(path)] = read_code(path)
        except SourceError as e:
            report.skipped.append(f"given code {path}: {e}")
    report.boilerplate = [_shown(Path(f)) for f in manual]
    return manual


def _shown(path: Path) -> str:
    """A path as a reader knows it: relative to the project when it lies inside it."""
    try:
        return path.resolve().relative_to(PROJECT_DIR).as_posix()
    except ValueError:
        return str(path)


def _identical(subs: list[Submission]) -> list[tuple[int, int]]:
    """Pairs of submissions with the same code and code of their own (identical files are
    always listed; the manual's program handed in unchanged is not a pair)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(subs):
        if s.own_fingerprints:
            groups[s.code_hash].append(k)
    return [pair for members in groups.values() for pair in combinations(members, 2)]


def _compare(a: Submission, b: Submission, fp_a: CodeFingerprint, fp_b: CodeFingerprint, estimate: float,
             spec: SimilaritySpec) -> Pair:
    share_a, share_b, spans_a, spans_b = compare(fp_a, fp_b)
    identical = a.code_hash == b.code_hash
    if identical:  # every own fingerprint is shared: the figure is exact, whatever rounding says
        share_a = share_b = 1.0
    pair = Pair(a=a.student, b=b.student, similarity=round(max(share_a, share_b), 4), share_a=round(share_a, 4),
                share_b=round(share_b, 4), shared_lines_a=shared_lines(a.code, spans_a),
                shared_lines_b=shared_lines(b.code, spans_b), estimate=round(estimate, 4), identical=identical)
    pair.flagged = identical or (pair.similarity >= spec.threshold and pair.shared_lines >= spec.min_shared_lines)
    if pair.flagged:
        pair.spans_a = [Span(start=s, end=e) for s, e in spans_a]
        pair.spans_b = [Span(start=s, end=e) for s, e in spans_b]
    return pair


def _code_lines(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def shared_lines(code: str, spans: list[tuple[int, int]]) -> int:
    """Lines of code (not blank, not only a comment) with shared characters on them."""
    if not spans:
        return 0
    starts, is_code = _line_table(code)
    touched: set[int] = set()
    for start, end in spans:
        first, last = np.searchsorted(starts, [start, max(end - 1, start)], side="right") - 1
        touched.update(range(int(first), int(last) + 1))
    return sum(1 for k in touched if k < len(is_code) and is_code[k])


@lru_cache(maxsize=1024)
def _line_table(code: str) -> tuple[np.ndarray, tuple[bool, ...]]:
    """(offset where each line starts, whether each line is code) of one text."""
    starts = np.array([0] + [m.end() for m in re.finditer("\n", code)])
    lines = code.split("\n")
    return starts, tuple(bool(x.strip()) and not x.lstrip().startswith("#") for x in lines)


def _mark_manual_code(report: SimilarityReport, manual: dict[str, str], spec: SimilaritySpec) -> None:
    """For the flagged pairs' pages: where each side's code is the manual's (shown, not counted)."""
    flagged = report.flagged
    if not flagged or not manual:
        return
    manual_fps = [fingerprint(code, spec, window=1) for code in manual.values()]
    cache: dict[str, list[Span]] = {}

    def manual_spans(sub: Submission) -> list[Span]:
        if sub.code_hash not in cache:
            whole = fingerprint(sub.code, spec, window=1)
            found = [span for m in manual_fps for span in compare(whole, m)[2]]
            cache[sub.code_hash] = [Span(start=s, end=e) for s, e in _union(found)]
        return cache[sub.code_hash]

    for pair in flagged:
        pair.manual_a = manual_spans(report.submission(pair.a))
        pair.manual_b = manual_spans(report.submission(pair.b))


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]
