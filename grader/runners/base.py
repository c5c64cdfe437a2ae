"""What every runner is given (RunPlan) and how a run's outcome becomes a verdict."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.models import Job, RunRecord, Status
from grader.probe.layouts import IMAGE_DATASETS, TEXT_DATASETS

TRACE_MAX_BYTES = 5 * 1024 * 1024
CLEAN_TIMEOUT_S = 180.0  # the most the trusted re-measurement of one model may take


class RunPlan(BaseModel):
    """Everything the sandbox needs besides the submission, derived from the rubric."""

    entry: str  # relative to the submission folder
    mode: Literal["quick", "full"]
    frameworks: list[str]  # the probes to install: keras, torch, sklearn, ...
    keras_flavour: str = "keras3"
    dataset: str | None
    probe: dict[str, Any] = {}  # the rubric's post-run work for the probe
    epochs_cap: int | None
    train_budget_s: float | None = None  # quick mode: seconds of training the run may use
    quick_train: int
    quick_test: int
    stdin: list[str] = []
    timeout_s: float
    cell_timeout_s: float | None = None  # notebooks: the most one cell may take
    memory_mb: int
    output_kb: int
    max_processes: int = 256
    cpu_threads: int | None = None  # compute threads per job (frameworks' thread pools); None = all cores
    cache_dir: str
    imports: list[str] = []  # the submission's imports, read by static analysis: which clean sandbox to start ahead


class Runner(Protocol):
    name: str

    def run(self, job: Job, plan: RunPlan, artifacts_to: Path) -> RunRecord: ...


def probe_config(plan: RunPlan, entry: Path, out_dir: Path, artifacts_dir: Path) -> dict[str, Any]:
    return {
        "entry": str(entry), "mode": plan.mode, "frameworks": plan.frameworks,
        "keras_flavour": plan.keras_flavour, "dataset": plan.dataset,
        "epochs_cap": plan.epochs_cap if plan.mode == "quick" else None,
        "train_budget_s": plan.train_budget_s if plan.mode == "quick" else None,
        "quick_train": plan.quick_train, "quick_test": plan.quick_test, "stdin": plan.stdin,
        "cell_timeout_s": plan.cell_timeout_s, "probe": plan.probe,
        "cache_dir": plan.cache_dir, "out_dir": str(out_dir), "artifacts_dir": str(artifacts_dir),
    }


class TraceShape(BaseModel):
    """The top level of the probe's trace.json: what the harness indexes must have these types."""

    model_config = ConfigDict(extra="allow")
    models: list[Any] = []
    fits: list[Any] = []
    evaluations: list[Any] = []
    measurements: list[dict[str, Any]] = []
    post_run: dict[str, Any] = {}
    notes: list[str] = []
    figures: list[str] = []
    dataset: dict[str, Any] | None = None
    exception: dict[str, Any] | None = None
    exit: dict[str, Any] | None = None


def read_trace(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The probe's trace as plain JSON (never unpickled), size-capped."""
    if path.is_symlink() or path.parent.is_symlink():
        return None, "the trace was replaced by a link: ignored"
    if not path.is_file():
        return None, "no trace"
    if path.stat().st_size > TRACE_MAX_BYTES:
        return None, f"trace larger than {TRACE_MAX_BYTES} bytes: ignored"
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        return None, f"unreadable trace: {e}"
    if not isinstance(data, dict):
        return None, "trace is not an object"
    try:
        TraceShape.model_validate(data)
    except ValidationError as e:
        return None, f"trace does not match the probe's schema: {e.errors()[0]['loc']} {e.errors()[0]['msg']}"
    return data, ""


def verdict(trace: dict[str, Any] | None, returncode: int | None,
            stderr_tail: str) -> tuple[Status, str]:
    """The status of a run that ended by itself (not killed by a watchdog)."""
    if trace is None:
        tail = stderr_tail.strip().splitlines()[-3:]
        return Status.error, ("the program ended before the grader could record anything"
                              + (f": {' / '.join(tail)}" if tail else ""))
    exc = trace.get("exception")
    if exc:
        where = f" at line {exc['line']}" if exc.get("line") else ""
        if exc.get("cell"):
            cell = exc["cell"]
            where = f" in cell {cell['number']} ({cell['first_line']!r})"
            if cell.get("line_in_cell"):
                where += f", line {cell['line_in_cell']}"
        if exc.get("type") == "CellTimeoutError":
            return Status.timeout, f"{exc['message']}{where}"
        during = f" during {exc['phase']}" if exc.get("phase") and exc["phase"] != "running the program" else ""
        first = exc["message"].splitlines()[0] if exc["message"] else exc["type"]
        msg = f"{first}{where}{during}"
        if exc.get("type") == "DeadKernelError":
            msg += " (it crashed or was stopped)"
        if exc.get("type") in ("ModuleNotFoundError", "ImportError"):
            msg += " (that package is not installed in the grading sandbox)"
        if exc.get("removed_api"):
            api = exc["removed_api"]
            msg += f". {api['api']} was removed in Keras 3: use {api['replacement']}"
        return Status.error, msg
    end = trace.get("exit") or {}
    if not end:
        return Status.error, ("the program ended abruptly (e.g. os._exit or a crash of the "
                              f"Python process, exit code {returncode})")
    if end.get("kind") == "sys.exit":
        code = end.get("code")
        line = f" at line {end['line']}" if end.get("line") else ""
        if code not in (0, None):
            return Status.error, f"the program called sys.exit({code!r}){line}"
        if not trace.get("fits"):
            return Status.error, f"the program called sys.exit(0){line} before training any model"
    return Status.ok, ""


class CappedStream:
    """Keeps the first and last `half` bytes of a stream and counts the rest."""

    def __init__(self, half: int):
        self.half = half
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {skipped} bytes of output not kept ...]\n" if skipped > 0 else ""
        return (bytes(self.head) + middle.encode() + bytes(self.tail)).decode("utf-8", "replace")

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)


def last_lines(text: str, n: int = 2) -> str:
    """The last n lines of a process's output, joined, for a one-line message (500 chars at most)."""
    return " / ".join(text.strip().splitlines()[-n:])[-500:]


def pump(pipe, sink: CappedStream) -> None:
    for chunk in iter(lambda: pipe.read(65536), b""):
        sink.feed(chunk)
    pipe.close()


def copy_submission(job: Job, dest: Path) -> None:
    """The job's own files only: the listed ones, or its folder without caches and VCS data."""
    from grader.submissions import folder_files

    for src in folder_files(job.folder, job.files):
        target = dest / src.relative_to(job.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def job_env(plan: RunPlan, home: str, pythonpath: str) -> dict[str, str]:
    """The job's own environment variables (paths as the sandbox sees them)."""
    env = {
        "HOME": home, "KERAS_HOME": f"{home}/.keras", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/.mpl", "PYTHONPATH": pythonpath,
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONIOENCODING": "utf-8",
    }
    if plan.keras_flavour == "legacy":
        env["TF_USE_LEGACY_KERAS"] = "1"
    if plan.cpu_threads:  # parallel jobs share the cores instead of each claiming all
        for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(plan.cpu_threads)
        env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


def keep_artifacts(src: Path, dest: Path, max_files: int = 50, max_bytes: int = 10 * 2**20,
                   suffixes: tuple[str, ...] | None = None) -> list[str]:
    """Copies the job's artifacts: plain files only (never a link the job planted), capped;
    only those with the given suffixes when suffixes are given."""
    if src.is_symlink() or not src.is_dir():
        return []
    kept = []
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.is_symlink()
                   and (suffixes is None or p.suffix.lower() in suffixes))
    for p in files[:max_files]:
        if p.stat().st_size <= max_bytes:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest / p.name)
            kept.append(p.name)
    return kept


def keep_export(src: Path, max_files: int = 200, max_bytes: int = 256 * 2**20) -> str | None:
    """A host copy of the models the probe exported (regular files only, never a link the
    job planted, capped), for the trusted re-measurement; the caller removes it."""
    if src.is_symlink() or not src.is_dir():
        return None
    dest = Path(tempfile.mkdtemp(prefix="grader-export-"))
    total = 0
    for path in sorted(src.rglob("*"))[:max_files]:
        if path.is_symlink() or not path.is_file() or any((src / p).is_symlink() for p in path.relative_to(src).parents):
            continue
        total += path.stat().st_size
        if total > max_bytes:
            break
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return str(dest)


def clean_request(request: Path, plan: RunPlan) -> tuple[str, RunPlan]:
    """(the framework whose clean server serves the request: its kind's first word, e.g. keras
    for keras_json; the job's limits with the clean sandbox's time cap) for a checked export."""
    framework = json.loads((request / "request.json").read_text())["kind"].split("_")[0]
    return framework, plan.model_copy(update={"timeout_s": min(plan.timeout_s, CLEAN_TIMEOUT_S)})


KERAS_IMPORTS = {"keras", "tensorflow", "tf_keras"}


def warm_frameworks(plan: RunPlan) -> list[str]:
    """The loaders a job's clean sandboxes will most likely need: for a classifier, its
    network's framework, and scikit-learn's for a KNN (each in its own process: TensorFlow
    loaded before torch can crash torch); for a chatbot, its network's framework if the program
    imports it; for a pretrained model on the reference images (Programs 2 and 5),
    torchvision's, or Keras' for a program that imports Keras and not torch (a keras.applications
    model). The network's framework is the one the program imports where the rubric accepts
    either."""
    imports = set(plan.imports)
    keras = bool(imports & KERAS_IMPORTS)
    if plan.dataset is None and "torchvision" in plan.frameworks:
        keras_only = keras and not imports & {"torch", "torchvision"}
        return ["keras"] if keras_only and "keras" in plan.frameworks else ["torchvision"]
    networks = [f for f in ("keras", "torch") if f in plan.frameworks]
    if "torch" in networks and "torch" in imports and not keras:
        networks = ["torch"]
    network = networks[0] if networks else None
    if plan.dataset in IMAGE_DATASETS + TEXT_DATASETS:
        return [f for f in (network, "sklearn" if "sklearn" in plan.frameworks else None) if f]
    imported = keras if network == "keras" else network in imports
    return [network] if network and "chat" in plan.probe and imported else []


def read_text(path: Path) -> str:
    """The last 4000 characters of a file a sandbox wrote ("" when there is none)."""
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""
