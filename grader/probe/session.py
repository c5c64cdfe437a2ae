"""What the probe installs before the student's code and does after it, shared by the two
ways a submission runs: a script in this process, or a notebook in a Jupyter kernel (where
`start` runs in a hidden first cell and `finish` in a hidden last one)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from grader.probe import colab, provider
from grader.probe.shims import install_matplotlib, install_network_guard, install_stdin
from grader.probe.trace import Trace

IDLE = "running the program"


class Probe(Protocol):
    """What a framework probe offers the session. `phase` names what the program is doing
    (e.g. "model.fit") for error messages; `measure` runs after the program has ended and
    returns the harness's own measurement of the final model, or None."""

    phase: str

    def measure(self) -> dict[str, Any] | None: ...


def keras_probe(trace: Trace, config: dict[str, Any]) -> Probe:
    from grader.probe.keras_hooks import KerasProbe

    probe = KerasProbe(trace, served_loader(config), config.get("epochs_cap"))
    probe.install(config.get("keras_flavour", "keras3"))
    return probe


def torchvision_probe(trace: Trace, config: dict[str, Any]) -> Probe:
    from grader.probe.torchvision_hooks import TorchvisionProbe

    probe = TorchvisionProbe(trace, config["cache_dir"])
    probe.install()
    return probe


def torch_probe(trace: Trace, config: dict[str, Any]) -> Probe:
    from grader.probe.torch_hooks import TorchProbe

    probe = TorchProbe(trace, served_loader(config), config.get("epochs_cap"))
    probe.install()
    return probe


def sklearn_probe(trace: Trace, config: dict[str, Any]) -> Probe:
    from grader.probe.sklearn_hooks import SklearnProbe

    probe = SklearnProbe(trace, served_loader(config), config.get("dataset"))
    probe.install()
    return probe


# Installed in this order whatever order a rubric lists them in: torch (and torch._dynamo,
# which an optimizer step imports) loaded after TensorFlow crashes the process (SIGSEGV).
INSTALL_ORDER = ("torch", "torchvision", "sklearn", "keras")

# framework name (as a rubric's `framework` names it) -> factory installing its probe
PROBES: dict[str, Callable[[Trace, dict[str, Any]], Probe]] = {"keras": keras_probe,
                                                               "torchvision": torchvision_probe,
                                                               "torch": torch_probe,
                                                               "sklearn": sklearn_probe}


# What a rubric's `probe:` section may ask for after the program has run: section name ->
# module with `after_run(session, params) -> dict` (plain JSON, kept as trace["post_run"][name]).
AFTER_RUN: dict[str, str] = {"vision": "grader.probe.vision", "chat": "grader.probe.chat"}


@dataclass
class Session:
    config: dict[str, Any]
    trace: Trace
    probes: list[Probe] = field(default_factory=list)
    # The program's global namespace once it has run (script: the exec namespace; notebook:
    # the kernel's user namespace), for harness checks that call the student's functions.
    namespace: dict[str, Any] | None = None

    @property
    def phase(self) -> str:
        busy = [p.phase for p in self.probes if p.phase != IDLE]
        return busy[0] if busy else IDLE


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
    wanted = [name for name in config.get("frameworks", []) if name in PROBES]
    session.probes = [PROBES[name](trace, config) for name in sorted(wanted, key=INSTALL_ORDER.index)]
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


def finish(session: Session | None = None, namespace: dict[str, Any] | None = None) -> None:
    """Measures the final model(s) (never hiding the run's own result) and saves the trace."""
    session = session or CURRENT
    if session is None:
        return
    if namespace is not None:
        session.namespace = namespace
    for probe in session.probes:
        try:
            m = probe.measure()
        except Exception as e:
            m = {"error": f"{type(e).__name__}: {e}"[:500]}
        if m:
            session.trace["measurements"].append(m)
    session.trace.save()  # what was measured survives a post-run step that hangs
    for name, params in (session.config.get("probe") or {}).items():
        session.trace["post_run"][name] = run_after(name, session, params)
        session.trace.save()


def run_after(name: str, session: Session, params: Any) -> dict[str, Any]:
    if name not in AFTER_RUN:
        return {"error": f"no post-run step named {name!r}"}
    try:
        return importlib.import_module(AFTER_RUN[name]).after_run(session, params)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:500]}
