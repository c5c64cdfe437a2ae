"""A notebook's code cells, for reading it without running it (static analysis, and the
check that a notebook can be run at all). Notebooks are read with the notebook library,
which upgrades older formats (nbformat 3's worksheets) to nbformat 4 as the kernel runner
does. Shell and magic lines (`!pip install …`, `%matplotlib …`) become `pass` so that
each cell parses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat


class NotebookError(ValueError):
    """Not a notebook we can run; the message says why."""


@dataclass
class CodeCell:
    number: int  # counting code cells only, from 1, as the kernel runner names them
    source: str  # shell and magic lines replaced by `pass`
    first_line: str


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook as nbformat 4, whatever format it was saved in."""
    name = Path(path).name
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise NotebookError(f"{name} is not a valid notebook: not JSON ({e})") from e
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw):
        raise NotebookError(f"{name} is not a Jupyter notebook (no cells)")
    try:
        return nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as e:  # noqa: BLE001 - the library raises many kinds for a broken file
        raise NotebookError(f"{name} is not a notebook Jupyter can read: {e}") from e


def first_line(source: str) -> str:
    text = source.strip()
    return text.splitlines()[0][:120] if text else ""


def code_cells(path: Path) -> tuple[list[CodeCell], int]:
    """(the code cells, number of skipped shell/magic lines)."""
    nb = read_notebook(path)
    cells, skipped = [], 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        lines = []
        for line in src.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("!", "%")):
                skipped += 1
                line = line[: len(line) - len(stripped)] + "pass  # skipped: " + stripped[:60]
            lines.append(line)
        cells.append(CodeCell(len(cells) + 1, "\n".join(lines), first_line(src)))
    if not cells:
        raise NotebookError(f"{Path(path).name} has no code cells")
    return cells, skipped


def notebook_source(path: Path) -> tuple[str, int]:
    """(the code cells joined as one script, number of skipped shell/magic lines)."""
    cells, skipped = code_cells(path)
    return "\n".join(c.source + "\n" for c in cells), skipped
