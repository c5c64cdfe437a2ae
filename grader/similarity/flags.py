"""Similarity flags on the students' mark sheets: "similar to 1GA20CS027's program 4: 0.93".

A flag asks faculty to look; it never changes a mark. It is put on a result only while
the result is of the very content that was compared (same content hash), so a student
who hands in new work is not flagged for the old.
"""

from __future__ import annotations

from collections import defaultdict

from grader.models import GradeResult
from grader.similarity.models import Pair, SimilarityReport


def flag_text(usn: str, program: int, pair: Pair) -> str:
    """The flag on `usn`'s sheet for one flagged pair."""
    text = f"similar to {pair.other(usn)}'s program {program}: {pair.similarity:.2f}"
    return text + " (identical files)" if pair.identical else text


def flags_by_submission(reports: list[SimilarityReport]) -> dict[tuple[str, int, str], list[str]]:
    """(usn, program, content hash) -> the similarity flags of that submission."""
    flags: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for report in reports:
        hashes = {s.student: s.content_hash for s in report.submissions}
        for pair in report.flagged:
            for usn in (pair.a, pair.b):
                flags[(usn, report.program, hashes.get(usn, ""))].append(flag_text(usn, report.program, pair))
    return flags


def with_similarity_flags(results: list[GradeResult], reports: list[SimilarityReport]) -> list[GradeResult]:
    """The results, those of a flagged submission as copies with its flags added (marks,
    checks and everything else as they were)."""
    flags = flags_by_submission(reports)
    if not flags:
        return results
    out = []
    for r in results:
        extra = [f for f in flags.get((r.student, r.program, r.content_hash), []) if f not in r.flags]
        out.append(r.model_copy(update={"flags": [*r.flags, *extra]}) if extra else r)
    return out
