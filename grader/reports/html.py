"""HTML mark sheets (one per student and program) and the class summary page.

Each page is one self-contained file (CSS inlined, the training curve embedded as a data:
URI, no JavaScript), so a sheet can be emailed on its own. Everything that comes from a
submission or a run is escaped by jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
import statistics
from collections import Counter
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader.models import AttributeMark, CheckResult, GradeResult, Status
from grader.reports.csvout import atomic_write_bytes, attribute_columns, format_mark, review_flags, sort_results
from grader.reports.curves import ACCURACY_KEYS, curve_png, last_fit_with_history
from grader.reports.gan_figure import gan_figure

TEMPLATES_DIR = Path(__file__).with_name("templates")

STATUS_TEXT = {
    Status.ok: "The program ran to completion.",
    Status.error: "The program stopped with an error.",
    Status.timeout: "The program ran past its time limit and was stopped.",
    Status.oom: "The program ran out of memory and was stopped.",
    Status.killed: "The program was stopped by the sandbox.",
    Status.rejected: "The submission could not be run.",
}

# Labels for the limits of a quick preview (keys of GradeResult.quick_limits).
LIMIT_LABELS = {
    "epochs": "epochs capped at",
    "max_epochs": "epochs capped at",
    "train": "training samples",
    "train_samples": "training samples",
    "train_subset": "training samples",
    "test": "test samples",
    "test_samples": "test samples",
    "test_subset": "test samples",
    "timeout_s": "time limit (s)",
    "train_budget_s": "training capped at (s)",
    "memory_mb": "memory limit (MB)",
}

OUTPUT_TAIL_CHARS = 20_000  # at most this much of stdout and of stderr is shown
MAX_ARTIFACTS = 100
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
EMBED_IMAGE_BYTES = 1024 * 1024  # figures up to this size are embedded in the sheet
EMBED_TOTAL_BYTES = 6 * 1024 * 1024
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".svg": "image/svg+xml", ".webp": "image/webp"}
IMAGE_SUFFIXES = set(IMAGE_TYPES)


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mark"] = format_mark
    return env


def _render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


# ---------------------------------------------------------------- paths


def safe_component(text: str) -> str:
    """A file-name-safe form of a student id (USN): letters, digits, '.', '_', '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return cleaned[:100] or "unknown"


def sheet_relpath(result: GradeResult) -> str:
    """Where write_sheet puts a result's sheet, relative to out_dir (POSIX form): weekly
    (record) entries at <usn>/program<N>.html, the internal test and SEE under a folder of
    their own so that they never overwrite the weekly sheet."""
    rel = f"{safe_component(result.student)}/program{result.program}.html"
    return rel if result.assessment == "record" else f"{safe_component(result.assessment)}/{rel}"


# ---------------------------------------------------------------- compact values


def compact(value: Any, *, limit: int = 160, depth: int = 0) -> str:
    """A short one-line rendering of a JSON-like value (nested dicts/lists, floats)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, str):
        text = " ".join(value.split()) if "\n" in value else value
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if isinstance(value, dict):
        if depth >= 2:
            return "{…}"
        items = list(value.items())
        parts = [f"{k}: {compact(v, limit=60, depth=depth + 1)}" for k, v in items[:10]]
        if len(items) > 10:
            parts.append(f"… (+{len(items) - 10} more)")
        text = "{" + ", ".join(parts) + "}" if depth else ", ".join(parts)
    elif isinstance(value, (list, tuple)):
        if depth >= 2:
            return "[…]"
        parts = [compact(v, limit=40, depth=depth + 1) for v in value[:8]]
        if len(value) > 8:
            parts.append(f"… (+{len(value) - 8} more)")
        text = "[" + ", ".join(parts) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit * 2 else text[: limit * 2 - 1] + "…"


def _shape(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join("None" if v is None else str(v) for v in value) + ")"
    return "—" if value is None else str(value)


def _count(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _humanize(key: str) -> str:
    return key.replace("_", " ").replace(".", " ").strip()


def _tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[-limit:], True


# ---------------------------------------------------------------- sheet context


def _attribute_rows(result: GradeResult) -> list[AttributeMark]:
    if result.attributes:
        return list(result.attributes)
    keys = list(result.max) + [k for k in result.marks if k not in result.max]
    return [AttributeMark(attribute=k, max=result.max.get(k, 0.0), mark=result.marks.get(k),
                          manual=result.marks.get(k) is None) for k in keys]


def _marks(result: GradeResult) -> dict[str, Any]:
    titles = {c.id: (c.title or c.id) for c in result.checks}
    rows = []
    auto_mark = auto_max = total_mark = total_max = 0.0
    pending = []
    automatic = []
    for attr in _attribute_rows(result):
        note = ""
        if attr.mark is None:
            pending.append(attr.attribute)
        elif attr.manual:
            note = "entered by faculty"
        if attr.capped_by:
            check = titles.get(attr.capped_by, attr.capped_by)
            cap = f"capped at {attr.band}" if attr.band else "capped"
            note = f"{cap} by check {check}"
            if check != attr.capped_by:
                note += f" ({attr.capped_by})"
        if attr.override_reason:
            note = f"overridden by faculty: {attr.override_reason}"
        rows.append({
            "name": _humanize(attr.attribute).capitalize(),
            "mark": (None if attr.mark is None
                     else f"{format_mark(attr.mark)} / {format_mark(attr.max)}"),
            "band": attr.band or "",
            "note": note,
            "manual": attr.manual,
        })
        total_max += attr.max
        if attr.mark is not None:
            total_mark += attr.mark
        if not attr.manual:
            automatic.append(_humanize(attr.attribute).capitalize())
            auto_max += attr.max
            auto_mark += attr.mark or 0.0
    return {
        "rows": rows,
        "auto": f"{format_mark(auto_mark)} / {format_mark(auto_max)}",
        "total": f"{format_mark(total_mark)} / {format_mark(total_max)}",
        "pending": [_humanize(p) for p in pending],
        "automatic": automatic,
    }


def _check_row(check: CheckResult) -> dict[str, Any]:
    return {
        "passed": check.passed,
        "title": check.title or check.id,
        "id": check.id if check.title else "",
        "attribute": _humanize(check.attribute).capitalize(),
        "score": f"{check.score * 100:.0f}%",
        "message": check.message,
        "hint": "" if check.passed else check.hint,
        "flag": check.flag or "",
        "evidence": [(str(k), compact(v)) for k, v in check.evidence.items()],
    }


def _models(trace: dict[str, Any] | None) -> list[dict[str, Any]]:
    models = trace.get("models") if isinstance(trace, dict) else None
    out = []
    for i, model in enumerate(models if isinstance(models, list) else []):
        if not isinstance(model, dict):
            continue
        opt = model.get("optimizer")
        optimizer = ""
        if isinstance(opt, dict):
            optimizer = str(opt.get("class") or "")
            lr = opt.get("learning_rate")
            if lr is not None:
                optimizer += f" (learning rate {compact(lr)})"
        elif opt:
            optimizer = compact(opt)
        metrics = model.get("metrics")
        layers = []
        raw_layers = model.get("layers")
        for j, layer in enumerate(raw_layers if isinstance(raw_layers, list) else []):
            if not isinstance(layer, dict):
                continue
            config = layer.get("config")
            layers.append({
                "index": j + 1,
                "type": str(layer.get("type") or "—"),
                "name": str(layer.get("name") or ""),
                "shape": _shape(layer.get("output_shape")),
                "params": _count(layer.get("params")),
                "config": compact(config, limit=120) if isinstance(config, dict) and config else "",
            })
        out.append({
            "index": i + 1,
            "cls": str(model.get("class") or "model"),
            "params": _count(model.get("params")) if model.get("params") is not None else "",
            "optimizer": optimizer,
            "loss": compact(model.get("loss")) if model.get("loss") else "",
            "metrics": compact(metrics) if metrics else "",
            "layers": layers,
        })
    return out


def _last(history: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        values = history.get(key)
        if isinstance(values, list):
            for v in reversed(values):
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    return compact(float(v))
    return ""


def _fits(trace: dict[str, Any] | None) -> list[dict[str, Any]]:
    fits = trace.get("fits") if isinstance(trace, dict) else None
    out = []
    for i, fit in enumerate(fits if isinstance(fits, list) else []):
        if not isinstance(fit, dict):
            continue
        history = fit.get("history") if isinstance(fit.get("history"), dict) else {}
        model = fit.get("model")
        out.append({
            "index": i + 1,
            "model": model + 1 if isinstance(model, int) and not isinstance(model, bool) else "—",
            "epochs": _count(fit.get("epochs_run")),
            "loss": _last(history, ("loss",)),
            "accuracy": _last(history, ACCURACY_KEYS),
            "val_loss": _last(history, ("val_loss",)),
            "val_accuracy": _last(history, tuple(f"val_{k}" for k in ACCURACY_KEYS)),
        })
    return out


def _curve(trace: dict[str, Any] | None, artifacts_dir: Path | None) -> dict[str, str] | None:
    png = curve_png(trace, artifacts_dir)
    if png is None:
        return None
    fit = last_fit_with_history(trace) or {}
    caption = "Loss and accuracy per epoch, training (blue) and validation (orange)"
    details = []
    if isinstance(fit.get("model"), int):
        details.append(f"model {fit['model'] + 1}")
    if fit.get("epochs_run") is not None:
        details.append(f"{compact(fit.get('epochs_run'))} epochs run")
    if details:
        caption += ", last training run (" + ", ".join(details) + ")"
    return {"src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "caption": caption + "."}


def _run(result: GradeResult) -> dict[str, Any] | None:
    run = result.run
    if run is None:
        return None
    stdout, stdout_cut = _tail(run.stdout)
    stderr, stderr_cut = _tail(run.stderr)
    return {
        "status": run.status.value,
        "message": run.message,
        "exit_code": "" if run.exit_code is None else str(run.exit_code),
        "wall": _duration(run.wall_s),
        "memory": "" if run.peak_memory_mb is None else f"{run.peak_memory_mb:,.0f} MB",
        "sandbox": run.sandbox,
        "device": run.device,
        "node": run.node,
        "protections": [
            {"name": _humanize(name), "how": how, "off": how.strip().lower().startswith("off")}
            for name, how in run.protections.items()
        ],
        "stdout": stdout,
        "stderr": stderr,
        "stdout_cut": stdout_cut,
        "stderr_cut": stderr_cut,
        "tail_chars": f"{OUTPUT_TAIL_CHARS:,}",
        "truncated": run.output_truncated,
        "output_bytes": f"{run.output_bytes:,}",
    }


def _static(result: GradeResult) -> dict[str, Any] | None:
    static = result.static
    if static is None:
        return None
    removed = []
    for item in static.removed_apis:
        if not isinstance(item, dict):
            continue
        text = f"{item.get('api', '?')}"
        if item.get("line") is not None:
            text += f" ({'cell ' + str(item['cell']) + ', ' if item.get('cell') else ''}line {item['line']})"
        if item.get("replacement"):
            text += f": use {item['replacement']}"
        removed.append(text)
    return {
        "parses": static.parses,
        "syntax_error": static.syntax_error.model_dump() if static.syntax_error else None,
        "steps": [{"name": _humanize(k), "present": bool(v)} for k, v in static.steps.items()],
        "removed": removed,
        "imports": ", ".join(static.imports),
        "source_lines": static.source_lines,
    }


def _limits(result: GradeResult) -> list[tuple[str, str]]:
    return [(LIMIT_LABELS.get(k, _humanize(k)), compact(v))
            for k, v in result.quick_limits.items() if k != "title"]


# ---------------------------------------------------------------- artifacts


def _artifact_sources(result: GradeResult, artifacts_dir: Path) -> list[Path]:
    """The job's artifacts that exist as regular files inside artifacts_dir."""
    root = artifacts_dir.resolve()
    candidates = [root / rel for rel in (result.run.artifacts if result.run else [])]
    out: list[Path] = []
    for cand in candidates:
        try:
            real = cand.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue  # a path or link that leads outside the job's folder
            if real.stat().st_size > MAX_ARTIFACT_BYTES:
                continue
        except OSError:
            continue
        if real not in out:
            out.append(real)
        if len(out) >= MAX_ARTIFACTS:
            break
    return out


def _copy_artifacts(result: GradeResult, artifacts_dir: Path | None,
                    files_dir: Path) -> list[dict[str, Any]]:
    if files_dir.is_dir() and not files_dir.is_symlink():
        shutil.rmtree(files_dir)
    elif files_dir.exists() or files_dir.is_symlink():
        files_dir.unlink()
    if artifacts_dir is None or not Path(artifacts_dir).is_dir():
        return []
    root = Path(artifacts_dir).resolve()
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    embedded = 0
    for src in _artifact_sources(result, Path(artifacts_dir)):
        rel = src.relative_to(root)
        stem = "__".join(safe_component(part) for part in rel.with_suffix("").parts)
        suffix = re.sub(r"[^A-Za-z0-9.]", "", src.suffix.lower())[:10]
        name, n = stem + suffix, 1
        while name in used:
            n += 1
            name = f"{stem}_{n}{suffix}"
        used.add(name)
        files_dir.mkdir(parents=True, exist_ok=True)
        dest = files_dir / name
        try:
            shutil.copyfile(src, dest)
        except OSError:
            continue
        href = quote(f"{files_dir.name}/{name}")
        item = {"name": rel.as_posix(), "href": href, "image": src.suffix.lower() in IMAGE_SUFFIXES,
                "src": href, "kind": "notebook" if suffix == ".ipynb" else suffix.lstrip(".")}
        size = dest.stat().st_size
        if item["image"] and size <= EMBED_IMAGE_BYTES and embedded + size <= EMBED_TOTAL_BYTES:
            mime = IMAGE_TYPES.get(suffix, "application/octet-stream")
            data = base64.b64encode(dest.read_bytes()).decode("ascii")
            item["src"] = f"data:{mime};base64,{data}"
            embedded += size
        out.append(item)
    return out


# ---------------------------------------------------------------- public API


def write_sheet(result: GradeResult, out_dir: Path, *, artifacts_dir: Path | None = None) -> Path:
    """Write out_dir/<student>/program<N>.html, the student's mark sheet, and return its path.

    Artifacts of the job found in `artifacts_dir` (figures, the executed notebook) are
    copied into out_dir/<student>/program<N>_files/ and linked; small figures are also
    embedded so the sheet stays readable on its own.
    """
    out_dir = Path(out_dir)
    path = out_dir / sheet_relpath(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    files_dir = path.with_name(f"program{result.program}_files")
    artifacts = _copy_artifacts(result, artifacts_dir, files_dir)
    trace = result.run.trace if result.run else None
    title = result.title or result.quick_limits.get("title")
    context = {
        "r": result,
        "page_title": f"{result.student} — program {result.program}",
        "program_title": str(title) if title else "",
        "status": result.status.value,
        "status_text": STATUS_TEXT.get(result.status, ""),
        "standin": "stand-in" in result.dataset,
        "limits": _limits(result),
        "marks": _marks(result),
        "checks": [_check_row(c) for c in result.checks],
        "passed": sum(1 for c in result.checks if c.passed),
        "flags": review_flags(result),
        "curve": _curve(trace, artifacts_dir),
        "gan": gan_figure(result),
        "fits": _fits(trace),
        "models": _models(trace),
        "run": _run(result),
        "static": _static(result),
        "artifacts": artifacts,
    }
    html = _render("sheet.html", **context)
    return atomic_write_bytes(path, html.encode("utf-8"))


def _stats(values: list[float]) -> dict[str, str]:
    if not values:
        return {"n": "0", "mean": "—", "median": "—", "min": "—", "max": "—"}
    return {
        "n": str(len(values)),
        "mean": f"{statistics.fmean(values):.2f}",
        "median": format_mark(statistics.median(values)),
        "min": format_mark(min(values)),
        "max": format_mark(max(values)),
    }


def _automatic(result: GradeResult) -> tuple[float, float]:
    """(mark, max) over the attributes the grader marks itself (not entered by faculty)."""
    rows = [a for a in _attribute_rows(result) if not a.manual]
    return sum(a.mark or 0.0 for a in rows), sum(a.max for a in rows)


def _mark_cell(result: GradeResult, key: str) -> str:
    if key not in result.marks and key not in result.max:
        return "—"
    mark = result.marks.get(key)
    return "pending" if mark is None else format_mark(mark)


def write_index(results: list[GradeResult], out_dir: Path, *, title: str = "") -> Path:
    """Write out_dir/index.html: the class summary with a link to each sheet on disk."""
    out_dir = Path(out_dir)
    ordered = sort_results(results)
    columns = attribute_columns(ordered)
    rows = []
    flagged = []
    for r in ordered:
        rel = sheet_relpath(r)
        href = quote(rel) if (out_dir / rel).is_file() else None
        flags = review_flags(r)
        rows.append({
            "usn": r.student,
            "name": r.name,
            "program": r.program,
            "mode": r.mode,
            "status": r.outcome,
            "status_message": r.status_message,
            "status_short": compact(r.status_message, limit=80),
            "marks": [{"key": k, "cell": "—" if r.missing else _mark_cell(r, k)} for k in columns],
            "total": "—" if r.missing else f"{format_mark(r.total)} / {format_mark(r.total_max)}",
            "flags": len(flags),
            "standin": "stand-in" in r.dataset,
            "href": href,
        })
        if flags:
            flagged.append({"usn": r.student, "name": r.name, "program": r.program,
                            "href": href, "flags": flags})

    counts = Counter(r.outcome for r in ordered)
    status_counts = [(s, counts[s]) for s in [*(s.value for s in Status), "missing"] if counts[s]]
    submitted = [r for r in ordered if not r.missing]  # marks of the work handed in

    keys = list(columns)
    stats = []
    for key in keys:
        values = [r.marks[key] for r in submitted if r.marks.get(key) is not None]
        if values or any(key in r.max for r in ordered):
            stats.append({"name": _humanize(key).capitalize(), **_stats(values)})
    auto = [_automatic(r) for r in submitted]
    auto_maxima = sorted({m for _, m in auto})
    stats.append({"name": "Automatic marks" + (f" (of {format_mark(auto_maxima[0])})"
                                               if len(auto_maxima) == 1 else ""),
                  **_stats([m for m, _ in auto])})
    maxima = sorted({r.total_max for r in submitted})
    stats.append({"name": "Total" + (f" (of {format_mark(maxima[0])})" if len(maxima) == 1 else ""),
                  **_stats([r.total for r in submitted])})

    courses = sorted({r.course for r in ordered if r.course})
    programs = sorted({r.program for r in ordered})
    if not title:
        title = "Class summary"
        if courses:
            title += " — " + ", ".join(courses)
        if len(programs) == 1:
            title += f", program {programs[0]}"
    context = {
        "page_title": title,
        "title": title,
        "rows": rows,
        "columns": [_humanize(k).capitalize() for k in columns],
        "status_counts": status_counts,
        "stats": stats,
        "flagged": flagged,
        "pending_viva": sum(1 for r in submitted if "viva" in r.max and r.marks.get("viva") is None),
        "standin": any("stand-in" in r.dataset for r in ordered),
        "quick": any(r.mode == "quick" for r in ordered),
        "generated": datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    html = _render("index.html", **context)
    return atomic_write_bytes(out_dir / "index.html", html.encode("utf-8"))
