"""Course mark sheets (one per student: CIE, SEE, pass or not), the class report with its
distributions, and portal.csv for the university portal.

Pages are self-contained (CSS inlined, pictures embedded as data: URIs, no JavaScript) and
print on A4. The class pictures are drawn once per report with matplotlib's Agg canvas
(never pyplot). Everything that comes from a submission, the roster or a faculty entry is
escaped by jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import csv
import io
import posixpath
import statistics
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from grader.reports.csvout import atomic_write_bytes, format_mark
from grader.reports.html import TEMPLATES_DIR, safe_component
from grader.semester import ClassSummary, Entry, StudentCourseMarks

PORTAL_RESULT = {"PASS": "PASS", "FAIL": "FAIL", "PROVISIONAL": "PROVISIONAL"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HIST_BINS = 10  # bars per histogram


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["mark"] = format_mark
    return env


def course_sheet_relpath(usn: str) -> str:
    """Where a student's course sheet lies, relative to the report folder."""
    return f"{safe_component(usn)}/course.html"


def _href(target: str | None, page_rel: str, out_dir: Path) -> str | None:
    """A link from the page at `page_rel` to `target` (both relative to out_dir), when the
    target exists."""
    if not target or not (out_dir / target).is_file():
        return None
    return quote(posixpath.relpath(target, posixpath.dirname(page_rel) or "."))


def _write(path: Path, text: str, durable: bool) -> Path:
    data = text.encode("utf-8")
    if durable:
        return atomic_write_bytes(path, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- one student


def _entry_row(entry: Entry, page_rel: str, out_dir: Path) -> dict[str, Any]:
    return {
        "e": entry,
        "href": _href(entry.sheet, page_rel, out_dir),
        "quick": entry.mode == "quick",
        "status_bad": entry.status not in (None, "ok"),
    }


def _columns(entries: list[Entry]) -> list[dict[str, Any]]:
    """The attributes of a component's entries, in order, each once (entries marked with
    different tables, e.g. a course whose last activity has steps of its own, share a table);
    `max` is None where the entries' maxima differ (each cell then shows its own)."""
    columns: dict[str, dict[str, Any]] = {}
    for e in entries:
        for c in e.cells:
            col = columns.setdefault(c.attribute, {"attribute": c.attribute, "label": c.label, "max": c.max})
            if col["max"] != c.max:
                col["max"] = None
    return list(columns.values())


def course_sheet_html(marks: StudentCourseMarks, out_dir: Path, generated: str | None = None) -> str:
    out_dir = Path(out_dir)
    page_rel = course_sheet_relpath(marks.usn)
    comps = []
    for comp in marks.cie_components:
        comps.append({
            "c": comp,
            "entries": [_entry_row(e, page_rel, out_dir) for e in comp.entries],
            "columns": _columns(comp.entries),
            "entry_word": comp.entries[0].label.rsplit(" ", 1)[0] if comp.entries else "Program",
            "parts": [{"p": p, **_entry_row(p.entry, page_rel, out_dir)} for p in comp.parts],
        })
    see_parts = [{"p": p, **_entry_row(p.entry, page_rel, out_dir)} for p in marks.see_parts]
    return _env().get_template("course_sheet.html").render(
        page_title=f"{marks.usn} — {marks.course} course mark sheet",
        m=marks, comps=comps, see_parts=see_parts,
        class_href=posixpath.relpath("class.html", posixpath.dirname(page_rel)),
        total=marks.cie + marks.see, total_max=marks.cie_max + marks.see_max,
        generated=generated or datetime.now().strftime("%Y-%m-%d %H:%M"))


def write_course_sheet(marks: StudentCourseMarks, out_dir: Path, *, generated: str | None = None,
                       durable: bool = True) -> Path:
    """Write out_dir/<usn>/course.html and return its path."""
    out_dir = Path(out_dir)
    path = out_dir / course_sheet_relpath(marks.usn)
    return _write(path, course_sheet_html(marks, out_dir, generated), durable)


# ---------------------------------------------------------------- class pictures


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hist(ax, values: list[float], maximum: float, title: str, line: float | None = None) -> None:
    bins = [maximum * i / HIST_BINS for i in range(HIST_BINS + 1)]
    if values:
        ax.hist([min(max(v, 0.0), maximum) for v in values], bins=bins, color="#1f5fa8",
                edgecolor="white", linewidth=0.6)
    else:
        ax.text(0.5, 0.5, "no marks yet", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="#5b6670")
    if line is not None:
        ax.axvline(line, color="#b3261e", linestyle="--", linewidth=1.2)
    ax.set_xlim(0, maximum)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_ylabel("students", fontsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, axis="y", alpha=0.3)


def class_pictures(summary: ClassSummary) -> list[dict[str, str]]:
    """The class's distributions as embedded PNGs: the weekly entries per program (one
    picture of small multiples) and CIE and SEE with their pass lines."""
    pictures = []
    dists = summary.distributions
    word = next((e.label.rsplit(" ", 1)[0] for st in summary.students for e in st.record), "Program")
    if dists:
        cols = min(4, len(dists))
        rows = -(-len(dists) // cols)
        fig = Figure(figsize=(2.6 * cols, 2.1 * rows), dpi=100)
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, d in zip(axes.flat, dists):
            missing = f", {d.not_submitted} missing" if d.not_submitted else ""
            _hist(ax, d.totals, d.max, f"{word} {d.program} (n={len(d.totals)}{missing}, of {format_mark(d.max)})")
        for ax in list(axes.flat)[len(dists):]:
            ax.set_visible(False)
        fig.tight_layout()
        pictures.append({
            "src": _png(fig),
            "alt": "Histograms of the weekly entry totals, one per program: "
                   + "; ".join(f"program {d.program}: {len(d.totals)} graded" for d in dists),
            "caption": "Weekly entry totals per program of the work submitted (marks entered so far; entries "
                       "with a pending Viva count what is entered; missing work is counted apart).",
        })
    if summary.scheme == "total":
        pictures.append(_total_picture(summary))
        return pictures
    fig = Figure(figsize=(7.6, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_cie, ax_see = fig.subplots(1, 2)
    _hist(ax_cie, [s.cie for s in summary.students], summary.cie_max,
          f"CIE (of {format_mark(summary.cie_max)}; dashed: pass line)", summary.cie_pass_mark)
    _hist(ax_see, [s.see for s in summary.students], summary.see_max,
          f"SEE scaled (of {format_mark(summary.see_max)}; dashed: pass line)", summary.see_pass_mark)
    fig.tight_layout()
    pictures.append({
        "src": _png(fig),
        "alt": f"Histograms of CIE and SEE marks of {len(summary.students)} students with the pass lines",
        "caption": f"CIE and SEE (scaled) of the class; the dashed line is the pass line "
                   f"({format_mark(summary.cie_pass_mark)} and {format_mark(summary.see_pass_mark)}). "
                   "Provisional marks count what is entered so far.",
    })
    return pictures


def _total_picture(summary: ClassSummary) -> dict[str, str]:
    """A plain points scheme's one total, with its pass line."""
    name = summary.total_name
    fig = Figure(figsize=(3.8, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    _hist(fig.subplots(1, 1), [s.cie for s in summary.students], summary.cie_max,
          f"{name} (of {format_mark(summary.cie_max)}; dashed: pass line)", summary.cie_pass_mark)
    fig.tight_layout()
    return {"src": _png(fig),
            "alt": f"Histogram of the {name.lower()} of {len(summary.students)} students with the pass line",
            "caption": f"{name} of the class; the dashed line is the pass line "
                       f"({format_mark(summary.cie_pass_mark)}). Provisional marks count what is entered so far."}


# ---------------------------------------------------------------- the class report


def _stats(values: list[float]) -> dict[str, str]:
    if not values:
        return {"n": "0", "mean": "—", "median": "—", "min": "—", "max": "—"}
    return {"n": str(len(values)), "mean": f"{statistics.fmean(values):.2f}",
            "median": format_mark(statistics.median(values)), "min": format_mark(min(values)),
            "max": format_mark(max(values))}


def class_report_html(summary: ClassSummary, out_dir: Path, pictures: list[dict[str, str]] | None = None,
                      generated: str | None = None, similarity: list[dict[str, Any]] | None = None) -> str:
    """similarity: one table per program (grader.similarity.pages.table_context); None: no
    similarity run, and no section."""
    out_dir = Path(out_dir)
    page_rel = "class.html"
    students = []
    for s in summary.students:
        comps = {c.key: c for c in s.cie_components}
        students.append({"s": s, "comps": comps,
                         "href": _href(course_sheet_relpath(s.usn), page_rel, out_dir)})
    keys = [(c.key, c.name, c.max) for c in summary.students[0].cie_components] if summary.students else []
    stats = [{"name": f"Program {d.program}" + (f": {d.title}" if d.title else ""),
              "of": d.max, **_stats(d.totals), "pending": d.pending, "missing": d.missing,
              "not_submitted": d.not_submitted, "failed": d.failed}
             for d in summary.distributions]
    stats.append({"name": summary.total_name, "of": summary.cie_max, **_stats([s.cie for s in summary.students]),
                  "pending": sum(1 for s in summary.students if s.cie_provisional), "missing": 0,
                  "not_submitted": "", "failed": ""})
    if summary.scheme == "cie_see":
        stats.append({"name": "SEE (scaled)", "of": summary.see_max, **_stats([s.see for s in summary.students]),
                  "pending": sum(1 for s in summary.students if s.see_provisional), "missing": 0,
                  "not_submitted": "", "failed": ""})
    flagged = [{"f": f, "href": _href(f.sheet, page_rel, out_dir)} for f in summary.flagged]
    below = [{"s": s, "href": _href(course_sheet_relpath(s.usn), page_rel, out_dir)}
             for s in summary.below_pass_line]
    return _env().get_template("class_report.html").render(
        page_title=f"{summary.course} — class report", c=summary, students=students, keys=keys,
        stats=stats, flagged=flagged, below=below,
        pictures=pictures if pictures is not None else class_pictures(summary),
        index_href="index.html" if (out_dir / "index.html").is_file() else None,
        portal_href="portal.csv" if (out_dir / "portal.csv").is_file() else None,
        generated=generated or datetime.now().strftime("%Y-%m-%d %H:%M"), similarity=similarity or [])


def write_class_report(summary: ClassSummary, out_dir: Path, *, pictures: list[dict[str, str]] | None = None,
                       generated: str | None = None, similarity: list[dict[str, Any]] | None = None) -> Path:
    """Write out_dir/class.html and return its path."""
    out_dir = Path(out_dir)
    return _write(out_dir / "class.html", class_report_html(summary, out_dir, pictures, generated, similarity), True)


# ---------------------------------------------------------------- portal.csv


def _text_cell(value: str) -> str:
    value = " ".join(value.splitlines())
    return "'" + value if value.startswith(_FORMULA_START) else value


def portal_rows(summary: ClassSummary) -> list[list[str]]:
    """With a plain points scheme the columns after the programs are the total and the result."""
    cie_see = summary.scheme == "cie_see"
    totals = ["CIE", "SEE"] if cie_see else [summary.total_name]
    entry = "Program"
    for s in summary.students:
        entry = next((e.label.rsplit(" ", 1)[0] for e in s.record), entry)
    header = ["USN", "Name", *(f"{entry} {p}" for p in summary.programs), *totals, "Result"]
    rows = [header]
    for s in summary.students:
        record = {e.program: e for e in s.record}
        marks = [format_mark(s.cie), format_mark(s.see)] if cie_see else [format_mark(s.cie)]
        rows.append([
            _text_cell(s.usn), _text_cell(s.name),
            *(format_mark(record[p].total) if p in record and record[p].graded else "" for p in summary.programs),
            *marks, PORTAL_RESULT[s.result],
        ])
    return rows


def write_portal_csv(summary: ClassSummary, path: Path) -> Path:
    """portal.csv: USN, name, each program's weekly entry total (empty when not graded), CIE,
    SEE (scaled) and PASS / FAIL / PROVISIONAL. Written atomically."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(portal_rows(summary))
    return atomic_write_bytes(Path(path), buf.getvalue().encode("utf-8"))
