"""The library of checks a rubric can name, and the context each check reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Callable

from grader.course import ProgramRubric
from grader.models import Job, RunRecord, StaticReport, Status, TrustedMeasurement
from grader.paths import PACKAGE_DIR


@dataclass
class Outcome:
    passed: bool
    message: str
    score: float | None = None  # defaults to 1.0 / 0.0 from passed
    hint: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    flag: str | None = None


@dataclass
class Context:
    job: Job
    rubric: ProgramRubric
    static: StaticReport
    run: RunRecord | None

    @cached_property
    def trace(self) -> dict[str, Any]:
        return (self.run.trace if self.run and self.run.trace else {}) or {}

    @property
    def ran_ok(self) -> bool:
        return bool(self.run and self.run.status == Status.ok)

    @property
    def fits(self) -> list[dict[str, Any]]:
        return self.trace.get("fits", [])

    @property
    def models(self) -> list[dict[str, Any]]:
        return self.trace.get("models", [])

    @cached_property
    def measurement(self) -> dict[str, Any] | None:
        ms = [m for m in self.trace.get("measurements", []) if m]
        return ms[-1] if ms else None

    @property
    def measured_accuracy(self) -> float | None:
        """The trusted figure (measured outside the student's process) when there is one,
        else the probe's in-process measurement (evidence only: see grader.harness.trust)."""
        m = self.measurement
        t = self.trusted_for(m)
        if t is not None and t.accuracy is not None:
            return t.accuracy
        return m.get("accuracy") if m else None

    def trusted_for(self, measurement: dict[str, Any] | None) -> TrustedMeasurement | None:
        """The trusted re-measurement of the model an in-process measurement is about."""
        if not measurement or not self.run:
            return None
        framework = measurement.get("framework", "keras")
        found = [t for t in self.run.trusted if t.model == measurement.get("model") and t.framework == framework]
        return found[-1] if found else None

    @cached_property
    def main_model(self) -> dict[str, Any] | None:
        """The model the harness judges: the measured one, else the last fitted, else the last."""
        index = (self.measurement or {}).get("model")
        if index is None and self.fits:
            index = self.fits[-1]["model"]
        if index is None and self.models:
            index = len(self.models) - 1
        return self.models[index] if index is not None and index < len(self.models) else None

    @property
    def history(self) -> dict[str, list]:
        for fit in reversed(self.fits):
            if fit.get("history"):
                return fit["history"]
        return {}

    @property
    def data_source(self) -> str:
        if self.run and self.run.data_source:  # the host's own knowledge of the cache
            return self.run.data_source
        return (self.trace.get("dataset") or {}).get("source", "standin")

    @property
    def chance(self) -> float:
        return 1.0 / self.rubric.classes


CheckFn = Callable[[Context, dict[str, Any]], Outcome]
CHECKS: dict[str, tuple[str, CheckFn]] = {}  # id -> (title, function)


# Which side of the trust boundary (grader/trusted.py) each check's figure comes from, shown
# with its evidence; the first prefix that matches counts. Checks whose figure is measured in
# the clean sandbox also name it in their own evidence ("source").
BASIS = (
    (("static.", "vision.steps"), "host: the submission's source"),
    (("run.",), "host: its watch of the run (exit status, time, memory)"),
    (("accuracy.threshold", "knn.accuracy", "net.accuracy", "training.learns"),
     "clean sandbox: the exported model re-measured on data the program never received, where it could be "
     "(image classifiers, the KNN, Keras and PyTorch models of padded reviews)"),
    (("accuracy.printed", "parts.printed"), "the program's printed output, against the re-measured figure"),
    (("chat.",), "the program's process: a chatbot's replies can only be observed there"),
    (("model.structure", "model.trained"),
     "the program's process, except a chatbot's (Program 7): its layers read from the exported model (Keras: its "
     "architecture on the host; PyTorch: its graph in the clean sandbox), its training from its loss in the clean "
     "sandbox"),
    (("vision.reference", "vision.pretrained", "vision.head"),
     "clean sandbox: a torchvision or keras.applications model exported and re-run on the host's reference "
     "images, its weights compared with the host's copy of the served file"),
    (("vision.",), "the program's process: what the probe saw the program build, read and print"),
    (("images.", "transfer."),
     "the program's process: its image folders, its base and head, and the probe's measurement on its validation "
     "images there (not yet re-measured outside it)"),
    (("gan.digits", "gan.diversity", "gan.frechet"),
     "clean sandbox: the exported generator run on noise the program never saw; its samples judged on the host "
     "by the grader's own MNIST classifier"),
    (("gan.",),
     "the program's process: what the probe recorded there (roles, losses per step, a stacked model's training "
     "step tried once), not credited when the clean sandbox's samples are an untrained generator's"),
    (("",), "the program's process: what the probe recorded there (evidence the program could rewrite)"),
)


def basis(check_id: str) -> str:
    """Where a check's figure comes from: the host, the clean sandbox or the program's process."""
    return next(text for prefixes, text in BASIS if check_id.startswith(prefixes))


def check_fn(spec_id: str) -> tuple[str, CheckFn] | None:
    """The check a rubric's id names. "static.steps:compile" is the check static.steps under a
    name of its own, so that one rubric can use a check twice (e.g. once per attribute, with
    different params); ids stay unique in a result."""
    return CHECKS.get(spec_id.split(":", 1)[0])


def check(check_id: str, title: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[check_id] = (title, fn)
        return fn

    return register


@lru_cache(maxsize=1)
def harness_version() -> str:
    """Changes whenever the code that runs, observes or judges a submission changes."""
    h = hashlib.sha256()
    for folder in ("harness", "probe", "runners", "clean"):
        for path in sorted((PACKAGE_DIR / folder).glob("*.py")):
            h.update(path.read_bytes())
    # the static analysis, the trusted re-measurement and its judges, and the marks
    for path in sorted([*PACKAGE_DIR.glob("trusted*.py"), PACKAGE_DIR / "static.py", PACKAGE_DIR / "gan_judge.py",
                        PACKAGE_DIR / "scoring.py"]):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


from grader.harness import checks  # noqa: E402,F401  (registers the checks)
from grader.harness import chat_checks  # noqa: E402,F401  (Program 7: the chatbot)
from grader.harness import vision_checks  # noqa: E402,F401  (Programs 2 and 5: pretrained vision models)
from grader.harness import program1_checks  # noqa: E402,F401  (Program 1: KNN and a 3-layer network)
from grader.harness import transfer_checks  # noqa: E402,F401  (transfer learning on a custom image dataset)
from grader.harness import gan_checks  # noqa: E402,F401  (DLPRAC activity 5: a GAN)
