"""Entry point inside the sandbox: `python -m grader.probe CONFIG.json`.

Installs the shims and framework hooks, runs the student's script (or the code cells of
a notebook) unchanged as __main__, measures the final model, and writes trace.json.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from grader.probe import provider
from grader.probe.notebook import Cell, notebook_source
from grader.probe.removed_api import explain_error
from grader.probe.shims import StdinExhausted, install_matplotlib, install_network_guard, install_stdin
from grader.probe.trace import Trace


def record_exception(exc: BaseException, entry: str, trace: Trace, phase: str,
                     cells: list[Cell]) -> None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == entry]
    where = frames[-1] if frames else None
    message = f"{type(exc).__name__}: {exc}"
    info = {
        "type": type(exc).__name__,
        "message": "\n".join(message.splitlines()[:20])[:3000],
        "line": where.lineno if where else None,
        "code": (where.line or "")[:300] if where else None,
        "phase": phase,
        "traceback": "".join(traceback.format_exception(exc))[-6000:],
        "removed_api": explain_error(message),
    }
    if where and cells:
        start, number, first = max((c for c in cells if c.start_line <= where.lineno), default=cells[0])
        info["cell"] = {"number": number, "first_line": first[:120], "line_in_cell": where.lineno - start + 1}
    trace["exception"] = info


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    out = Path(config["out_dir"])
    artifacts = Path(config["artifacts_dir"])
    trace = Trace(out / "trace.json")
    trace["mode"] = config["mode"]
    trace.save()

    install_stdin(config.get("stdin", []), trace)
    install_matplotlib(artifacts, trace)
    install_network_guard(trace)

    served_cache: dict[str, provider.Served] = {}

    def load_served(name: str) -> provider.Served:
        if name not in served_cache:
            quick = config["mode"] == "quick"
            served_cache[name] = provider.load(
                name, cache_dir=config["cache_dir"], quick=quick,
                quick_train=config["quick_train"], quick_test=config["quick_test"])
        return served_cache[name]

    probe = None
    if config.get("framework") == "keras":
        from grader.probe.keras_hooks import KerasProbe

        probe = KerasProbe(trace, load_served, config.get("epochs_cap"))
        probe.install(config.get("keras_flavour", "keras3"))

    entry = str(Path(config["entry"]).resolve())
    cells: list[Cell] = []
    if entry.endswith(".ipynb"):
        source, cells, skipped = notebook_source(Path(entry))
        if skipped:
            trace.note(f"{skipped} shell/magic line(s) (! or %) were skipped, not run")
    else:
        source = Path(entry).read_text(encoding="utf-8", errors="replace")
    sys.argv = [entry]
    sys.path.insert(0, os.getcwd())
    code = compile(source, entry, "exec")
    namespace = {"__name__": "__main__", "__file__": entry, "__builtins__": __builtins__}
    status = 0
    try:
        exec(code, namespace)
        trace["exit"] = {"kind": "normal"}
    except StdinExhausted:
        trace["exit"] = {"kind": "stdin_exhausted"}
    except SystemExit as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == entry]
        trace["exit"] = {"kind": "sys.exit", "code": e.code if isinstance(e.code, int) else str(e.code),
                         "line": frames[-1].lineno if frames else None}
    except BaseException as e:  # the student's error, recorded for the harness
        record_exception(e, entry, trace, probe.phase if probe else "running the program", cells)
        trace["exit"] = {"kind": "exception"}
        status = 1
    finally:
        sys.stdout.flush()
        if probe is not None:
            from grader.probe.measure import measure

            try:
                m = measure(probe)
            except Exception as e:  # the measurement must never hide the run's result
                m = {"error": f"{type(e).__name__}: {e}"[:500]}
            if m:
                trace["measurements"].append(m)
        trace.save()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
