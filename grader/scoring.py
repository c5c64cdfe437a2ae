"""Turns check results into the manual's marks and bands.

An attribute's mark is its weighted check score times the attribute's maximum, rounded
by the course's rule; a failed check with a `gate` keeps the mark below that band (e.g. a
program that does not run cannot reach Execution "Satisfactory"). Manual attributes
(Viva) stay pending until faculty enter them.
"""

from __future__ import annotations

from grader.course import AttributeSpec, Course
from grader.models import AttributeMark, CheckResult


def attribute_mark(name: str, spec: AttributeSpec, checks: list[CheckResult], course: Course,
                   gates: dict[str, str | None]) -> AttributeMark:
    if spec.manual:
        return AttributeMark(attribute=name, max=spec.max, mark=None, manual=True)
    mine = [c for c in checks if c.attribute == name and c.weight > 0]
    total = sum(c.weight for c in mine)
    fraction = sum(c.weight * c.score for c in mine) / total if total else 0.0
    # The check's marks are scaled from the record table to this table's maximum.
    mark = course.rounding.apply(fraction * spec.max)
    capped_by = None
    for c in mine:
        band = gates.get(c.id)
        if not c.passed and band and band in spec.bands:
            ceiling = spec.band_ceiling_below(band)
            if mark > ceiling:
                mark, capped_by = ceiling, c.id
    return AttributeMark(attribute=name, max=spec.max, mark=mark, band=spec.band_of(mark),
                         capped_by=capped_by)


def score(checks: list[CheckResult], course: Course, gates: dict[str, str | None],
          assessment: str = "record", alternative_table: bool = False,
          program: int | None = None) -> list[AttributeMark]:
    table = course.table(assessment, alternative_table, program)
    return [attribute_mark(name, spec, checks, course, gates) for name, spec in table.items()]
