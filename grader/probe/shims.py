"""Sandbox shims installed before the student's code: scripted stdin, headless
matplotlib whose figures are kept, and a network guard. Stdlib only at import time."""

from __future__ import annotations

import builtins
import ipaddress
import socket
from pathlib import Path

from grader.probe.trace import Trace


class StdinExhausted(SystemExit):
    """Raised by input() when the rubric's scripted lines are used up: ends the program."""

    def __init__(self):
        super().__init__(0)


def install_stdin(lines: list[str], trace: Trace) -> None:
    queue = list(lines)
    trace["stdin"] = {"scripted": len(queue), "used": 0}

    def scripted_input(prompt: str = "") -> str:
        print(prompt, end="", flush=True)
        if not queue:
            trace.note("input() was called after the scripted lines ran out: the program was ended there")
            raise StdinExhausted()
        trace["stdin"]["used"] += 1
        line = queue.pop(0)
        print(line)
        return line

    builtins.input = scripted_input
    kernel = _ipython_kernel()
    if kernel is not None:  # ipykernel sets builtins.input to kernel.raw_input before each cell
        kernel.raw_input = scripted_input


def _ipython_kernel():
    import sys

    if "IPython" not in sys.modules:
        return None
    shell = sys.modules["IPython"].get_ipython()
    return getattr(shell, "kernel", None)


def install_matplotlib(artifacts: Path, trace: Trace) -> None:
    """Agg backend; plt.show() saves each open figure as a PNG artifact instead."""
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    def show(*args, **kwargs):
        for num in plt.get_fignums():
            if len(trace["figures"]) >= 20:
                trace.note("more than 20 figures: the rest were not kept")
                break
            name = f"figure{len(trace['figures']) + 1}.png"
            plt.figure(num).savefig(artifacts / name, dpi=80)
            trace["figures"].append(name)
        plt.close("all")
        trace.save()

    plt.show = show


def _is_local(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_network_guard(trace: Trace) -> None:
    """Refuses connections beyond loopback from Python code (the OS-level block, where the
    runner could set one up, also covers native code)."""
    original_connect = socket.socket.connect

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            trace.note(f"the program tried to open a network connection to {address!r}: refused")
            raise ConnectionRefusedError(f"network access is disabled while grading ({address!r})")
        return original_connect(sock, address)

    socket.socket.connect = connect
