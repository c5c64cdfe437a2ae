"""Sandbox shims installed before the student's code: scripted stdin, headless
matplotlib whose figures are kept, and a network guard. Stdlib only at import time.

Offline by design: an asset the program asks for that the grader's cache neither holds nor
has a stand-in for ends the job with `AssetNotServed` ("the program asks for X from the
internet; stage it with `grader data stage X FILE`"), never with a raw URL error. The
guard raises it for any connection beyond loopback; a URL read with urllib whose file
faculty staged by name (`grader data stage NAME FILE`) is answered from the cache.
"""

from __future__ import annotations

import builtins
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

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
    """Agg backend; plt.show() saves each open figure as a PNG artifact instead. Installed
    when the program (or a framework) imports matplotlib: importing pyplot costs half a
    second, which a program that draws nothing should not pay."""
    import wrapt

    def headless(mpl: Any) -> None:
        mpl.use("Agg", force=True)

    def keep_figures(plt: Any) -> None:
        _keep_figures(plt, artifacts, trace)

    for hook, module in ((headless, "matplotlib"), (keep_figures, "matplotlib.pyplot")):
        wrapt.register_post_import_hook(_never_raising(hook, trace), module)


def _never_raising(hook: Any, trace: Trace) -> Any:
    """A post-import hook that notes its failure instead of failing the program's import."""
    def run(module: Any) -> None:
        try:
            hook(module)
        except Exception as e:
            trace.note(f"figures of {module.__name__} are not kept: {type(e).__name__}: {e}"[:500])

    return run


def _keep_figures(plt: Any, artifacts: Path, trace: Trace) -> None:
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


class AssetNotServed(RuntimeError):
    """The program asks for something from the internet that the grader does not serve.
    Not an OSError on purpose: urllib, requests and Keras would wrap an OSError in their own
    raw URL errors, and the job's message must say what to stage."""


class NetworkRefused(ConnectionRefusedError):
    """A socket connection or name lookup beyond loopback, refused. An OSError, as the OS's
    own refusal is, so that a program which handles an offline network goes on; its message
    still says what was asked for and what to stage."""


def asked_from_internet(what: str, stage_as: str | None = None, known: str = "") -> AssetNotServed:
    """The one message for an asset that is neither staged nor has a stand-in."""
    stage = (f"stage it with `grader data stage {stage_as} FILE`" if stage_as else
             "the grading sandbox is offline, so a program must not download at run time")
    extra = f" ({known})" if known else ""
    return AssetNotServed(f"the program asks for {what} from the internet{extra}; {stage}")


def url_file_name(url: str) -> str:
    """The file a URL names (its last path part), '' for a bare host."""
    path = url.split("?")[0].split("#")[0].rstrip("/")
    return path.rsplit("/", 1)[-1] if path.count("/") > 2 else ""


def _is_local(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str) or host in ("localhost", "", socket.gethostname()) or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def install_network_guard(trace: Trace) -> None:
    """Refuses connections beyond loopback from Python code (the OS-level block, where the
    runner could set one up, also covers native code), with a message that names what was
    asked for; urllib's URL reads are answered from files staged by name."""
    original_connect = socket.socket.connect
    original_getaddrinfo = socket.getaddrinfo

    def refuse(address: Any) -> NetworkRefused:
        trace.note(f"the program tried to open a network connection to {address!r}: refused")
        trace.save()
        return NetworkRefused(str(asked_from_internet(str(address[0] if isinstance(address, tuple) else address))))

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            raise refuse(address)
        return original_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_local(host):
            raise refuse(host)
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.getaddrinfo = getaddrinfo
    _install_url_guard(trace)


def _install_url_guard(trace: Trace) -> None:
    """urllib.request (urlopen, urlretrieve, every opener): a file staged under the URL's
    file name is returned from the cache; any other remote URL ends with AssetNotServed."""
    import urllib.request

    original_open = urllib.request.OpenerDirector.open

    def open_url(opener, fullurl, data=None, *args, **kwargs):
        url = fullurl if isinstance(fullurl, str) else getattr(fullurl, "full_url", "")
        if not url.lower().startswith(("http://", "https://", "ftp://")) or _local_url(url):
            return original_open(opener, fullurl, data, *args, **kwargs)
        name = url_file_name(url)
        staged = staged_file(name) if name else None
        if staged is not None:
            trace.note(f"{url} was read from the file staged as {name}")
            trace.save()
            return original_open(opener, staged.as_uri(), data, *args, **kwargs)
        trace.note(f"the program asked for {url}: refused (offline)")
        trace.save()
        raise asked_from_internet(url, name or None)

    urllib.request.OpenerDirector.open = open_url


def _local_url(url: str) -> bool:
    from urllib.parse import urlsplit

    return _is_local(urlsplit(url).hostname or "")


def staged_file(name: str) -> Path | None:
    """A file faculty staged by this name (grader.probe.keras_assets keeps them), if any."""
    from grader.probe import keras_assets

    cache = keras_assets.session_cache()
    return keras_assets.staged(name, cache) if cache else None
