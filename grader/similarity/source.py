"""The code a similarity run compares: a script as it is, a notebook's code cells with
shell (`!pip …`) and magic (`%matplotlib …`) lines left out, and the manual's code for a
program (the course's template/), which no pair is counted for. The grader's reference
solutions are not taken out: students never see them, so two programs that share one are a
pair to look at.
"""

from __future__ import annotations

from pathlib import Path

from grader.probe.notebook import NotebookError, read_notebook

CODE_SUFFIXES = (".py", ".ipynb")


class SourceError(ValueError):
    """The file cannot be read as code; the message says why."""


def notebook_code(path: Path) -> str:
    """A notebook's code cells joined, each under a `# cell N` comment (comments are not
    fingerprinted, so the markers only help a reader); shell and magic lines are left out.
    Raises SourceError for a file that is not a notebook."""
    try:
        nb = read_notebook(path)
    except NotebookError as e:
        raise SourceError(str(e)) from e
    parts, number = [], 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number += 1
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        kept = [line for line in src.splitlines() if not line.lstrip().startswith(("!", "%"))]
        if any(line.strip() for line in kept):
            parts.append(f"# cell {number}\n" + "\n".join(kept).rstrip() + "\n")
    return "\n".join(parts)


def read_code(path: Path) -> str:
    """The code of a script or notebook, lines stripped of trailing spaces.
    Raises SourceError when it cannot be read."""
    path = Path(path)
    if path.suffix == ".ipynb":
        code = notebook_code(path)
    else:
        try:
            code = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError(f"{path.name}: cannot read as UTF-8 text ({e})") from e
    return "\n".join(line.rstrip() for line in code.splitlines()) + "\n"


def manual_files(program: int, course_folder: Path, extra: list[Path] = ()) -> list[Path]:
    """The code every student was given for `program`, taken out before pairs are counted:
    the course's template/program<N>.py|.ipynb (or every script and notebook in a
    template/program<N>/ folder) and `extra` files or folders."""
    found: list[Path] = []
    template = Path(course_folder) / "template"
    for candidate in [template / f"program{program}", *map(Path, extra)]:
        if candidate.is_dir():
            found += sorted(p for p in candidate.rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file())
        elif candidate.is_file():
            found.append(candidate)
    found += sorted(p for p in template.glob(f"program{program}.*") if p.suffix in CODE_SUFFIXES)
    return list(dict.fromkeys(found))
