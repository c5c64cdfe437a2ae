"""A notebook's code cells as one script, for reading it without running it (static
analysis, and the check that a notebook can be run at all). Stdlib only. Shell and magic
lines (`!pip install …`, `%matplotlib …`) become `pass` so that the script parses."""

from __future__ import annotations

import json
from pathlib import Path


class NotebookError(ValueError):
    """Not a notebook we can run; the message says why."""


def notebook_source(path: Path) -> tuple[str, int]:
    """(script, number of skipped shell/magic lines)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise NotebookError(f"{Path(path).name} is not a valid notebook: not JSON ({e})") from e
    if not isinstance(nb, dict) or "cells" not in nb:
        raise NotebookError(f"{Path(path).name} is not a notebook in nbformat 4 (no 'cells' list)")
    if int(nb.get("nbformat", 0)) < 4:
        raise NotebookError(f"{Path(path).name} uses the old notebook format {nb.get('nbformat')}: "
                            "open and save it in a current Jupyter or Colab")
    lines: list[str] = []
    skipped = 0
    code_cells = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]
    if not code_cells:
        raise NotebookError(f"{Path(path).name} has no code cells")
    for cell in code_cells:
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        for line in src.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("!", "%")):
                skipped += 1
                line = line[: len(line) - len(stripped)] + "pass  # skipped: " + stripped[:60].replace("\n", " ")
            lines.append(line)
        lines.append("")
    return "\n".join(lines), skipped
