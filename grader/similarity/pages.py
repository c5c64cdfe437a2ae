"""A similarity run's files in the report folder: similarity/program<N>.json (read back by
the report step, which flags the mark sheets), similarity/program<N>.html (the ranked
table on its own page), and similarity/program<N>/<USN>--<USN>.html, one side-by-side page
per flagged pair with the shared code highlighted and the manual's code greyed.

Pages are self-contained (CSS inlined, no JavaScript); everything from a submission is
escaped by jinja2's autoescaping.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader.reports.csvout import atomic_write_bytes
from grader.reports.html import TEMPLATES_DIR, safe_component
from grader.similarity.models import Pair, SimilarityReport, Span, Submission

FOLDER = "similarity"
PLAIN, MANUAL, SHARED = 0, 1, 2  # how a character of code is shown
CLASSES = {PLAIN: "", MANUAL: "manual", SHARED: "shared"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def json_relpath(program: int) -> str:
    return f"{FOLDER}/program{program}.json"


def table_relpath(program: int) -> str:
    return f"{FOLDER}/program{program}.html"


def pair_relpath(program: int, pair: Pair) -> str:
    return f"{FOLDER}/program{program}/{safe_component(pair.a)}--{safe_component(pair.b)}.html"


def _href(target: str, page_rel: str) -> str:
    return quote(posixpath.relpath(target, posixpath.dirname(page_rel) or "."))


def _sheet_href(usn: str, program: int, page_rel: str, out_dir: Path) -> str | None:
    target = f"{safe_component(usn)}/program{program}.html"
    return _href(target, page_rel) if (out_dir / target).is_file() else None


# ---------------------------------------------------------------- the ranked table


def table_context(report: SimilarityReport, page_rel: str, out_dir: Path) -> dict[str, Any]:
    """What similarity_table.html shows for one program, links made relative to `page_rel`."""
    names = {s.student: s.name for s in report.submissions}
    rows = []
    for rank, pair in enumerate(report.flagged, 1):
        rows.append({"rank": rank, "p": pair, "name_a": names.get(pair.a, ""), "name_b": names.get(pair.b, ""),
                     "href": _href(pair.page, page_rel) if pair.page else None,
                     "sheet_a": _sheet_href(pair.a, report.program, page_rel, out_dir),
                     "sheet_b": _sheet_href(pair.b, report.program, page_rel, out_dir)})
    unflagged = [p for p in report.pairs if not p.flagged]
    return {"r": report, "rows": rows, "compared": len(report.pairs),
            "highest_unflagged": unflagged[0] if unflagged else None,
            "table_href": _href(table_relpath(report.program), page_rel)
            if page_rel != table_relpath(report.program) else None}


# ---------------------------------------------------------------- one pair, side by side


def code_lines(code: str, shared: list[Span], manual: list[Span]) -> list[dict[str, Any]]:
    """The code as numbered lines of (css class, text) runs: shared code over the manual's
    code over plain; indentation and comment lines (never fingerprinted) stay plain. Each
    line also says whether it holds shared code."""
    kind = bytearray(len(code))
    for spans, value in ((manual, MANUAL), (shared, SHARED)):
        for s in spans:
            start, end = max(s.start, 0), min(s.end, len(code))
            kind[start:end] = bytes([value]) * max(0, end - start)
    lines, pos = [], 0
    for number, text in enumerate(code.split("\n"), 1):
        indent = len(text) - len(text.lstrip())
        comment = text.lstrip().startswith("#")
        runs: list[tuple[str, str]] = []
        for k, ch in enumerate(text):
            cls = "" if comment or k < indent else CLASSES[kind[pos + k]]
            if runs and runs[-1][0] == cls:
                runs[-1] = (cls, runs[-1][1] + ch)
            else:
                runs.append((cls, ch))
        lines.append({"no": number, "runs": runs, "shared": any(c == "shared" for c, _ in runs)})
        pos += len(text) + 1
    while lines and not lines[-1]["runs"]:
        lines.pop()
    return lines


def pair_html(report: SimilarityReport, pair: Pair, out_dir: Path) -> str:
    page_rel = pair.page or pair_relpath(report.program, pair)
    sides = []
    for usn, share, lines, shared, manual in ((pair.a, pair.share_a, pair.shared_lines_a, pair.spans_a, pair.manual_a),
                                              (pair.b, pair.share_b, pair.shared_lines_b, pair.spans_b, pair.manual_b)):
        sub: Submission = report.submission(usn)
        sides.append({"s": sub, "share": share, "shared_lines": lines, "file": Path(sub.file).name,
                      "lines": code_lines(sub.code, shared, manual),
                      "sheet": _sheet_href(usn, report.program, page_rel, out_dir)})
    return _env().get_template("similarity_pair.html").render(
        page_title=f"{pair.a} and {pair.b} — program {report.program} similarity", r=report, p=pair, sides=sides,
        table_href=_href(table_relpath(report.program), page_rel),
        class_href=_href("class.html", page_rel) if (out_dir / "class.html").is_file() else None)


# ---------------------------------------------------------------- writing it all


def write_similarity(report: SimilarityReport, out_dir: Path) -> Path:
    """Write the run under out_dir/similarity/: its JSON (with the code of the students in
    flagged pairs, so that the pages can be drawn again from it) and its pages. Returns the
    table page's path."""
    out_dir = Path(out_dir)
    for pair in report.flagged:
        pair.page = pair_relpath(report.program, pair)
    kept = report.model_copy(deep=True)
    in_pairs = {u for p in report.flagged for u in (p.a, p.b)}
    for sub in kept.submissions:
        if sub.student not in in_pairs:
            sub.code = ""
    atomic_write_bytes(out_dir / json_relpath(report.program), kept.model_dump_json(indent=1).encode("utf-8"))
    return draw_pages(report, out_dir)


def draw_pages(report: SimilarityReport, out_dir: Path) -> Path:
    """The table page and one page per flagged pair (an earlier run's pair pages are
    removed), linked to the mark sheets and class report found in out_dir. Returns the
    table page's path."""
    out_dir = Path(out_dir)
    pages_dir = out_dir / FOLDER / f"program{report.program}"
    if pages_dir.is_dir():
        shutil.rmtree(pages_dir)
    pages_dir.mkdir(parents=True)
    for pair in report.flagged:
        pair.page = pair_relpath(report.program, pair)
        atomic_write_bytes(out_dir / pair.page, pair_html(report, pair, out_dir).encode("utf-8"))
    page_rel = table_relpath(report.program)
    html = _env().get_template("similarity.html").render(
        page_title=f"{report.course} — program {report.program}: similar submissions",
        sim=table_context(report, page_rel, out_dir),
        class_href=_href("class.html", page_rel) if (out_dir / "class.html").is_file() else None)
    return atomic_write_bytes(out_dir / page_rel, html.encode("utf-8"))


def load_reports(out_dir: Path, course: str | None = None) -> list[SimilarityReport]:
    """The similarity runs written under out_dir (of `course`, when given), by program.
    A file that cannot be read is left out: it only ever adds flags."""
    reports = []
    for path in sorted((Path(out_dir) / FOLDER).glob("program*.json")):
        try:
            report = SimilarityReport.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            continue
        if course is None or report.course == course:
            reports.append(report)
    return sorted(reports, key=lambda r: r.program)
