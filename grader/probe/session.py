"""What the probe installs before the student's code and does after it, shared by the two
ways a submission runs: a script in this process, or a notebook in a Jupyter kernel (where
`start` runs in a hidden first cell and `finish` in a hidden last one).

A framework's probe installs itself when the program imports that framework (a post-import
hook), whatever the rubric names: the probe never imports a framework the program does not,
so it imposes no import order (TensorFlow imported before torch crashes some builds of the
pair), and a program that loads its data through another framework's loader is still served
and measured. The session's probe list grows as probes install; `finish` measures them all.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import wrapt

from grader.probe import colab, nlp_assets, provider
from grader.probe.shims import install_matplotlib, install_network_guard, install_stdin
from grader.probe.trace import Trace

IDLE = "running the program"


class Probe(Protocol):
    """What a framework probe offers the session. `phase` names what the program is doing
    (e.g. "model.fit") for error messages; `measure` runs after the program has ended and
    returns the harness's own measurement of the final model, or None."""

    phase: str

    def measure(self) -> dict[str, Any] | None: ...


def keras_probe(session: Session) -> Probe:
    from grader.probe.keras_hooks import KerasProbe

    probe = KerasProbe(session.trace, session.load_served, session.config.get("epochs_cap"))
    probe.install(session.config.get("keras_flavour", "keras3"))
    return probe


def torchvision_probe(session: Session) -> Probe:
    from grader.probe.torchvision_hooks import TorchvisionProbe

    probe = TorchvisionProbe(session.trace, session.config["cache_dir"])
    probe.install()
    return probe


def torch_probe(session: Session) -> Probe:
    from grader.probe.torch_hooks import TorchProbe

    probe = TorchProbe(session.trace, session.load_served, session.config.get("epochs_cap"))
    probe.install()
    return probe


def sklearn_probe(session: Session) -> Probe:
    from grader.probe.sklearn_hooks import SklearnProbe

    probe = SklearnProbe(session.trace, session.load_served, session.config.get("dataset"))
    probe.install()
    return probe


# framework name (as a rubric's `framework` names it) -> factory installing its probe
PROBES: dict[str, Callable[[Session], Probe]] = {"keras": keras_probe, "torchvision": torchvision_probe,
                                                 "torch": torch_probe, "sklearn": sklearn_probe}

# framework -> the top-level modules whose import installs its probe. The probe installs once
# every one of them that is being imported has finished (keras imports tensorflow, tf_keras
# imports tensorflow, torchvision imports torch: a probe never reads a half-imported module).
TRIGGERS: dict[str, tuple[str, ...]] = {"torch": ("torch",), "torchvision": ("torchvision",),
                                        "sklearn": ("sklearn",), "keras": ("keras", "tensorflow", "tf_keras")}

# finish() measures in this order, so the last measurement (the one a single-model program is
# judged on) is the Keras model's when a program trains with Keras and also imports torch.
MEASURE_ORDER = ("torch", "torchvision", "sklearn", "keras")


# What a rubric's `probe:` section may ask for after the program has run: section name ->
# module with `after_run(session, params) -> dict` (plain JSON, kept as trace["post_run"][name]).
AFTER_RUN: dict[str, str] = {"vision": "grader.probe.vision", "chat": "grader.probe.chat",
                             "image_folders": "grader.probe.image_folders", "gan": "grader.probe.gan"}


@dataclass
class Session:
    config: dict[str, Any]
    trace: Trace
    # the installed probes by framework, in the order the program imported the frameworks
    installed: dict[str, Probe] = field(default_factory=dict)
    # The program's global namespace once it has run (script: the exec namespace; notebook:
    # the kernel's user namespace), for harness checks that call the student's functions.
    namespace: dict[str, Any] | None = None
    installing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.load_served = served_loader(self.config)  # one cache: every probe sees the same arrays
        self.trace["probes"] = []  # the frameworks whose probes installed, in import order

    @property
    def probes(self) -> list[Probe]:
        return list(self.installed.values())

    @property
    def phase(self) -> str:
        busy = [p.phase for p in self.probes if p.phase != IDLE]
        return busy[0] if busy else IDLE

    def watch(self) -> None:
        """Installs each framework's probe when the program imports that framework (at once
        for a framework already imported, e.g. in a notebook kernel)."""
        for module in sorted({m for names in TRIGGERS.values() for m in names}):
            wrapt.register_post_import_hook(self.imported, module)

    def imported(self, module: Any) -> None:
        """A framework module finished importing: install the probes it completes. Never
        raises into the program's import; a probe that fails to install is noted."""
        name = getattr(module, "__name__", "")
        for framework, modules in TRIGGERS.items():
            if name in modules and framework not in self.installed and ready(modules, name):
                self.install(framework)
        for probe in self.probes:
            if hasattr(probe, "on_import"):
                guarded(self.trace, f"{type(probe).__name__} on import of {name}", probe.on_import, name)

    def install(self, framework: str) -> None:
        if framework in self.installing:  # the probe's own imports re-enter here
            return
        self.installing.add(framework)
        try:
            probe = guarded(self.trace, f"the {framework} probe", PROBES[framework], self)
        finally:
            self.installing.discard(framework)
        if probe is not None:
            self.installed[framework] = probe
            self.trace["probes"] = list(self.installed)
            self.trace.save()


def initializing(module: Any) -> bool:
    """Whether a module's import is still running (it is in sys.modules from its start)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def ready(modules: tuple[str, ...], finished: str) -> bool:
    """Whether none of a framework's modules is half-imported (`finished` has just finished)."""
    return not any(initializing(sys.modules[m]) for m in modules if m != finished and m in sys.modules)


def guarded(trace: Trace, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # the program's import must go on: it runs as it would without the probe
        trace.note(f"{what} could not be installed: {type(e).__name__}: {e}"[:500])
        trace.save()
        return None


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
    CURRENT = session
    session.watch()
    wrapt.register_post_import_hook(nlp_assets.hook(trace, config, "nltk"), "nltk")
    wrapt.register_post_import_hook(nlp_assets.hook(trace, config, "spacy"), "spacy")
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
    timing = session.trace["after_program_s"] = {}  # the probe's own time, by step (bench/bench_pipeline.py)
    timed(timing, "measure", measure_all, session)
    session.trace.save()  # what was measured survives a post-run step that hangs
    timed(timing, "export", export, session)
    session.trace.save()
    for name, params in (session.config.get("probe") or {}).items():
        session.trace["post_run"][name] = timed(timing, name, run_after, name, session, params)
        session.trace.save()


def timed(timing: dict[str, float], step: str, fn: Callable[..., Any], *args: Any) -> Any:
    clock = time.perf_counter()
    try:
        return fn(*args)
    finally:
        timing[step] = round(time.perf_counter() - clock, 3)


def measure_all(session: Session) -> None:
    for probe in measure_order(session):
        try:
            m = probe.measure()
        except Exception as e:
            m = {"error": f"{type(e).__name__}: {e}"[:500]}
        if m:
            session.trace["measurements"].append(m)


def measure_order(session: Session) -> list[Probe]:
    rank = {name: i for i, name in enumerate(MEASURE_ORDER)}
    return [session.installed[n] for n in sorted(session.installed, key=lambda n: rank.get(n, len(rank)))]


def export(session: Session) -> None:
    """The measured models, data-only, for the trusted re-measurement (grader/trusted.py)."""
    from grader.probe.export import export_measured

    try:
        session.trace["exports"] = export_measured(session.probes, Path(session.config["out_dir"]))
    except Exception as e:
        session.trace["exports"] = [{"error": f"{type(e).__name__}: {e}"[:500]}]


def run_after(name: str, session: Session, params: Any) -> dict[str, Any]:
    if name not in AFTER_RUN:
        return {"error": f"no post-run step named {name!r}"}
    try:
        return importlib.import_module(AFTER_RUN[name]).after_run(session, params)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:500]}
