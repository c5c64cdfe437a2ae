"""Entry point inside the sandbox: `python -m grader.probe CONFIG.json`.

A script runs unchanged as __main__ in this process, with the probe installed first; a
notebook runs cell by cell in a real Jupyter kernel (grader.probe.kernel). Either way the
final model is measured and trace.json written.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from grader.probe import session as probe_session
from grader.probe.removed_api import explain_error
from grader.probe.shims import StdinExhausted
from grader.probe.trace import Trace


def exception_info(exc: BaseException, entry: str, phase: str) -> dict:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == entry]
    where = frames[-1] if frames else None
    message = f"{type(exc).__name__}: {exc}"
    return {
        "type": type(exc).__name__,
        "message": "\n".join(message.splitlines()[:20])[:3000],
        "line": where.lineno if where else None,
        "code": (where.line or "")[:300] if where else None,
        "phase": phase,
        "traceback": "".join(traceback.format_exception(exc))[-6000:],
        "removed_api": explain_error(message),
    }


def run_script(config_path: str) -> int:
    session = probe_session.start(config_path)
    trace: Trace = session.trace
    entry = str(Path(session.config["entry"]).resolve())
    sys.argv = [entry]
    sys.path.insert(0, os.getcwd())
    code = compile(Path(entry).read_text(encoding="utf-8", errors="replace"), entry, "exec")
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
        trace["exception"] = exception_info(e, entry, session.phase)
        trace["exit"] = {"kind": "exception"}
        status = 1
    finally:
        sys.stdout.flush()
        probe_session.finish(session, namespace)
    return status


def main(config_path: str) -> int:
    entry = json.loads(Path(config_path).read_text())["entry"]
    if entry.endswith(".ipynb"):
        from grader.probe.kernel import run_notebook

        return run_notebook(config_path)
    return run_script(config_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
