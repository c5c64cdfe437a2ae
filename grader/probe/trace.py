"""The probe's record of one run, written as plain JSON (never pickled).

It is rewritten after every event (fit, evaluate, exception), so a run that is killed
for time or memory still leaves what it had done so far.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

TRACE_VERSION = 1


def plain(value: Any, depth: int = 0) -> Any:
    """Turn numpy scalars, tuples and odd objects into JSON-safe values."""
    if depth > 12:
        return repr(value)[:200]
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:2000]
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # "nan", "inf"
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in list(value)[:10000]]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return plain(value.item(), depth + 1)  # numpy / tensor scalars
    if hasattr(value, "tolist") and getattr(value, "size", 10**9) <= 10000:
        return plain(value.tolist(), depth + 1)
    return repr(value)[:200]


class Trace:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "trace_version": TRACE_VERSION,
            "frameworks": {},
            "dataset": None,
            "models": [],
            "fits": [],
            "evaluations": [],
            "measurements": [],
            "post_run": {},
            "removed_api": [],
            "notes": [],
            "figures": [],
            "exception": None,
            "exit": None,
        }

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def note(self, text: str) -> None:
        if text not in self.data["notes"]:
            self.data["notes"].append(text)

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - self.started, 3)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(plain(self.data), allow_nan=False))
        os.replace(tmp, self.path)
