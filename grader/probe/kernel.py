"""Runs a notebook cell by cell in a real Jupyter kernel (nbclient), with the probe
installed in the kernel by a hidden first cell and the model measured by a hidden last
one. A cell that fails, hangs or kills the kernel ends the run with a verdict naming the
cell (number and first line); the outputs of the cells that ran are kept in the executed
notebook, an artifact of the job."""

from __future__ import annotations

import fcntl
import json
import re
import socket
import struct
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.probe.notebook import read_notebook
from grader.probe.removed_api import explain_error
from grader.probe.trace import Trace

EXECUTED = "executed.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks
IPYTHON_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
EXITS = ("SystemExit", "StdinExhausted")


def loopback_up() -> None:
    """The kernel talks to this process over loopback, which is down in a new network
    namespace: bring it up (only loopback; nothing else exists there)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
    except OSError:
        pass  # not permitted here: the kernel then needs no help to reach loopback


def skip_shell_lines(nb) -> int:
    """`!pip install …` and `%magic` lines would install or change things: not run."""
    skipped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = []
        for line in cell.source.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("!", "%")):
                skipped += 1
                line = line[: len(line) - len(stripped)] + "pass  # skipped by the grader: " + stripped[:80]
            lines.append(line)
        cell.source = "\n".join(lines)
    return skipped


def first_line(cell) -> str:
    text = cell.source.strip()
    return text.splitlines()[0][:120] if text else ""


def run_notebook(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    entry = Path(config["entry"]).resolve()
    artifacts = Path(config["artifacts_dir"])
    nb = read_notebook(entry)  # older formats (nbformat 3) upgraded, as static analysis reads them
    skipped = skip_shell_lines(nb)
    cell_timeout = config.get("cell_timeout_s") or None
    loopback_up()
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=False,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(entry.parent)}})
    problem: dict | None = None
    ended = {"kind": "normal"}
    with client.setup_kernel():
        run_hidden(client, nb, f"import grader.probe.session as __grader\n"
                               f"__grader.start({str(Path(config_path).resolve())!r})\ndel __grader")
        code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        for number, (index, cell) in enumerate(code_cells, start=1):
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as e:
                if e.ename in EXITS:  # sys.exit() or the scripted stdin ran out: the program ended
                    ended = exit_of(e)
                    break
                problem = failed_cell(e, cell_timeout, started, number, cell)
            except CellTimeoutError as e:
                problem = failed_cell(e, cell_timeout, started, number, cell)
            except DeadKernelError:
                problem = cell_problem("DeadKernelError", "the kernel died while running it", number, cell)
            finally:
                echo_streams(cell)
            if problem:
                break
        if not problem or problem["type"] != "DeadKernelError":
            run_hidden(client, nb, "import grader.probe.session as __grader\n__grader.finish(namespace=get_ipython().user_ns)")
    nbformat.write(nb, artifacts / EXECUTED)
    trace = Trace(Path(config["out_dir"]) / "trace.json")
    trace.data = json.loads(trace.path.read_text())  # what the kernel recorded
    if skipped:
        trace.note(f"{skipped} shell/magic line(s) (! or %) were skipped, not run")
    trace["executed_notebook"] = EXECUTED
    trace["exception"] = problem
    trace["exit"] = {"kind": "exception"} if problem else ended
    trace.save()
    return 1 if problem else 0


def failed_cell(e, cell_timeout, started: float, number: int, cell) -> dict:
    timed_out = isinstance(e, CellTimeoutError) or (
        e.ename == "KeyboardInterrupt" and cell_timeout and time.monotonic() - started >= cell_timeout)
    if timed_out:  # nbclient interrupts the kernel at the timeout
        return cell_problem("CellTimeoutError", f"the cell did not finish within {cell_timeout:.0f} s", number, cell)
    return cell_problem(e.ename, f"{e.ename}: {e.evalue}", number, cell, str(e))


def exit_of(e: CellExecutionError) -> dict:
    """The trace's exit record for a cell that ended the program, as a script's would be."""
    if e.ename == "StdinExhausted":
        return {"kind": "stdin_exhausted"}
    code = e.evalue.strip()
    return {"kind": "sys.exit", "code": int(code) if code.lstrip("-").isdigit() else (code or None)}


def echo_streams(cell) -> None:
    """What the cell printed also goes to this process's output, as a script's would, so
    checks that read the program's output (printed accuracy, a chat loop) see it."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            (sys.stderr if out.get("name") == "stderr" else sys.stdout).write(out.get("text", ""))
    sys.stdout.flush()


def run_hidden(client: NotebookClient, nb, source: str) -> None:
    """Runs the probe's own code in the kernel; the cell is not kept in the notebook
    (nbclient writes each executed cell back into the notebook at its index)."""
    nb.cells.append(nbformat.v4.new_code_cell(source))
    try:
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1, store_history=False)
    finally:
        nb.cells.pop()


def cell_problem(kind: str, message: str, number: int, cell, detail: str = "") -> dict:
    detail = ANSI.sub("", detail)
    where = IPYTHON_LINE.search(detail)  # IPython's traceback: "Cell In[3], line 2"
    return {"type": kind, "message": message[:3000], "line": None, "code": None, "phase": "running the program",
            "cell": {"number": number, "first_line": first_line(cell),
                     "line_in_cell": int(where.group(1)) if where else None},
            "traceback": detail[-6000:], "removed_api": explain_error(message)}
