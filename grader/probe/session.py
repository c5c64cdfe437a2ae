"""What the probe installs before the student's code and does after it, shared by the two
ways a submission runs: a script in this process, or a notebook in a Jupyter kernel (where
`start` runs in a hidden first cell and `finish` in a hidden last one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.probe import colab, provider
from grader.probe.shims import install_matplotlib, install_network_guard, install_stdin
from grader.probe.trace import Trace


@dataclass
class Session:
    config: dict[str, Any]
    trace: Trace
    probe: Any = None  # the framework probe (KerasProbe), if the program's framework has one

    @property
    def phase(self) -> str:
        return self.probe.phase if self.probe else "running the program"


CURRENT: Session | None = None


def start(config_path: str) -> Session:
    global CURRENT
    config = json.loads(Path(config_path).read_text())
    trace = Trace(Path(config["out_dir"]) / "trace.json")
    trace["mode"] = config["mode"]
    trace.save()
    install_stdin(config.get("stdin", []), trace)
    install_matplotlib(Path(config["artifacts_dir"]), trace)
    install_network_guard(trace)
    colab.install(Path.cwd(), Path(config["artifacts_dir"]), trace)
    session = Session(config, trace)
    if config.get("framework") == "keras":
        from grader.probe.keras_hooks import KerasProbe

        session.probe = KerasProbe(trace, served_loader(config), config.get("epochs_cap"))
        session.probe.install(config.get("keras_flavour", "keras3"))
    CURRENT = session
    return session


def served_loader(config: dict[str, Any]):
    cache: dict[str, provider.Served] = {}

    def load_served(name: str) -> provider.Served:
        if name not in cache:
            cache[name] = provider.load(name, cache_dir=config["cache_dir"], quick=config["mode"] == "quick",
                                        quick_train=config["quick_train"], quick_test=config["quick_test"])
        return cache[name]

    return load_served


def finish(session: Session | None = None) -> None:
    """Measures the final model (never hiding the run's own result) and saves the trace."""
    session = session or CURRENT
    if session is None:
        return
    if session.probe is not None:
        from grader.probe.measure import measure

        try:
            m = measure(session.probe)
        except Exception as e:
            m = {"error": f"{type(e).__name__}: {e}"[:500]}
        if m:
            session.trace["measurements"].append(m)
    session.trace.save()
