"""Entry point inside the sandbox: `python -m grader.probe CONFIG.json`.

A script runs unchanged as __main__ in this process, with the probe installed first; a
notebook runs cell by cell in a real Jupyter kernel (grader.probe.kernel). Either way the
final model is measured and trace.json written.

A script's process then ends as Python's own exit ends it (its threads joined, its atexit
handlers run, its output flushed) without the interpreter's teardown, which with TensorFlow
or PyTorch loaded takes a second or more and leaves nothing the grader reads.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import traceback
from atexit import _run_exitfuncs
from os import _exit
from pathlib import Path
from threading import current_thread, enumerate as all_threads

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


def is_notebook(config_path: str) -> bool:
    return json.loads(Path(config_path).read_text())["entry"].endswith(".ipynb")


def main(config_path: str) -> int:
    if is_notebook(config_path):
        from grader.probe.kernel import run_notebook

        return run_notebook(config_path)
    return run_script(config_path)


def join_threads() -> None:
    """Waits for the program's non-daemon threads, as the interpreter does before exiting."""
    current = current_thread()
    while True:
        alive = [t for t in all_threads() if t is not current and not t.daemon and t.is_alive()]
        if not alive:
            return
        for thread in alive:
            thread.join()


def exit_now(status: int) -> None:
    """Python's exit without the teardown: threads joined, atexit handlers run, Python's and
    C's buffered output flushed, then the process ends with `status`. What it calls is bound
    when the probe starts, before the program could replace it."""
    join_threads()
    _run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # a stream the program closed or replaced
            pass
    try:
        ctypes.CDLL(None).fflush(None)  # what native code printed
    except Exception:
        pass
    _exit(status if isinstance(status, int) else 1)


if __name__ == "__main__":
    if is_notebook(sys.argv[1]):
        sys.exit(main(sys.argv[1]))
    exit_now(main(sys.argv[1]))
