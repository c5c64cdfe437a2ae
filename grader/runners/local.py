"""The local sandbox: a fresh folder per job, a process-tree watchdog for time, memory and
process count, capped output, scripted stdin, and no network where the OS allows it.

For students' laptops and CI. It confines a program that misbehaves by accident; it is
not a security boundary against a hostile one (that is the Docker runner's job).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psutil

from grader.models import Job, RunRecord, Status
from grader.paths import PACKAGE_DIR
from grader.probe.layouts import IMAGE_DATASETS, TEXT_DATASETS
from grader.runners.base import (CLEAN_TIMEOUT_S, CappedStream, RunPlan, copy_submission, job_env, keep_artifacts, keep_export,
                                 probe_config, pump, read_trace, verdict)

POLL_S = 0.1
FILE_SIZE_LIMIT = 1 << 30  # no single file written by the job may exceed 1 GiB


@lru_cache(maxsize=1)
def namespaces() -> list[str] | None:
    """A command prefix giving the job its own empty network namespace and its own PID
    namespace (every process of the job dies with it), if this OS permits one."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    base = [unshare, "--net", "--pid", "--fork", "--kill-child"]
    for prefix in (base, base + ["--map-root-user"]):
        try:
            if subprocess.run(prefix + ["true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


# What a job keeps of the host's environment: the locale, which GPU it may use and where the
# GPU driver's libraries are (without LD_LIBRARY_PATH a CUDA build finds no driver on hosts
# that keep it outside the system's library folders, and trains on the CPU), Keras' backend.
HOST_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME",
            "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "KERAS_BACKEND")


def _limit_child() -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


class Tree:
    """The job's process tree as psutil sees it, for the watchdog."""

    def __init__(self, pid: int):
        self.pgid = pid  # the child called setsid() before exec
        self.seen: dict[int, psutil.Process] = {}
        try:
            self.root: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self.root = None

    def members(self) -> list[psutil.Process]:
        try:
            found = [self.root] + self.root.children(recursive=True) if self.root else []
        except psutil.Error:
            return []
        self.seen.update((p.pid, p) for p in found)
        return found

    def rss_mb(self, members: list[psutil.Process]) -> float:
        total = 0
        for p in members:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def kill(self) -> None:
        members = self.members()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except OSError:
            pass
        for p in {**self.seen, **{p.pid: p for p in members}}.values():  # those that left the group
            try:
                if p.is_running():  # compares create time too: never a recycled pid
                    p.kill()
            except psutil.Error:
                pass


@dataclass
class CleanProcess:
    """A clean sandbox process (grader.clean) and what it leaves behind."""

    proc: subprocess.Popen
    framework: str  # what it warmed: keras | torch | none
    work: Path
    stderr: CappedStream
    reader: threading.Thread


def end(clean: CleanProcess | None) -> None:
    if clean is not None:
        Tree(clean.proc.pid).kill()
        clean.proc.wait()
        shutil.rmtree(clean.work, ignore_errors=True)


def warm_frameworks(plan: RunPlan) -> list[str]:
    """The loaders a job's clean sandboxes will most likely need, for a classifier: its
    network's framework, and scikit-learn's for a KNN (each in its own process: TensorFlow
    loaded before torch can crash torch); for a pretrained model on the reference images
    (Programs 2 and 5), torchvision's, or Keras' for a program that imports Keras and not torch
    (a keras.applications model)."""
    if plan.dataset is None and "torchvision" in plan.frameworks:
        imports = set(plan.imports)
        keras = imports & {"keras", "tensorflow", "tf_keras"} and not imports & {"torch", "torchvision"}
        return ["keras"] if keras and "keras" in plan.frameworks else ["torchvision"]
    if plan.dataset not in IMAGE_DATASETS + TEXT_DATASETS:
        return []
    network = next((f for f in ("keras", "torch") if f in plan.frameworks), None)
    return [f for f in (network, "sklearn" if "sklearn" in plan.frameworks else None) if f]


class LocalRunner:
    name = "local"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.warm: dict[tuple[int, str], CleanProcess] = {}  # (thread id, framework) -> started for its job

    def stop(self) -> None:
        """Ends every job of this runner now (Ctrl-C on a batch)."""
        self.stopping.set()
        for key in list(self.warm):
            end(self.warm.pop(key, None))

    def run(self, job: Job, plan: RunPlan, artifacts_to: Path) -> RunRecord:
        self.warm_up(plan)
        work = Path(tempfile.mkdtemp(prefix="grader-job-"))
        try:
            return self._run_in(work, job, plan, artifacts_to)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run_in(self, work: Path, job: Job, plan: RunPlan, artifacts_to: Path) -> RunRecord:
        folder, out, artifacts, home = work / "submission", work / "out", work / "out" / "artifacts", work / "home"
        copy_submission(job, folder)
        for d in (artifacts, home, work / "lib"):
            d.mkdir(parents=True)
        # Only the grader package goes on the job's import path, not the project (whose
        # reference/ folder holds the solutions).
        (work / "lib" / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
        config = out / "config.json"
        config.write_text(json.dumps(probe_config(plan, folder / plan.entry, out, artifacts)))

        protections = {
            "workdir": "a fresh copy of the submission folder, removed afterwards",
            "timeout": f"{plan.timeout_s:.0f} s wall clock; the whole process tree is killed",
            "memory": f"{plan.memory_mb} MB resident memory of the process tree (watchdog)",
            "processes": f"at most {plan.max_processes} processes (watchdog)",
            "output": f"{plan.output_kb} KB of stdout and of stderr kept (head and tail)",
            "file_size": "no file larger than 1 GiB",
            "stdin": f"scripted: {len(plan.stdin)} line(s), then end of input",
            "matplotlib": "headless (Agg); figures shown are kept as pictures",
        }
        prefix = namespaces()
        protections["network"] = ("own empty network namespace (unshare)" if prefix else
                                  "off in Python only (socket guard): this OS does not permit a network namespace")
        protections["leftovers"] = ("own PID namespace: no process outlives the job" if prefix else
                                    "processes seen by the watchdog are killed when the job ends")
        cmd = (prefix or []) + [sys.executable, "-m", "grader.probe", str(config)]
        env = self._env(plan, home, work / "lib")
        half = plan.output_kb * 1024 // 2
        streams = {"stdout": CappedStream(half), "stderr": CappedStream(half)}

        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit_child)
        pumps = [threading.Thread(target=pump, args=(getattr(proc, n), s), daemon=True)
                 for n, s in streams.items()]
        for t in pumps:
            t.start()
        try:
            killed, peak = self._watch(proc, plan, started, self.stopping)
        except BaseException:  # interrupted (a cancelled cluster task): the job ends with it
            Tree(proc.pid).kill()
            raise
        for t in pumps:
            t.join(timeout=10)
        wall = time.monotonic() - started

        trace, trace_problem = read_trace(out / "trace.json")
        if killed:
            status, message = killed
        elif proc.returncode is not None and proc.returncode < 0:
            sig = -proc.returncode
            status = Status.oom if sig == signal.SIGKILL else Status.killed
            message = (f"the program was killed by signal {signal.Signals(sig).name}"
                       + (" (most likely the system ran out of memory)" if status == Status.oom else ""))
        else:
            status, message = verdict(trace, proc.returncode, streams["stderr"].text()[-2000:])

        kept = keep_artifacts(artifacts, artifacts_to)
        return RunRecord(
            export_dir=keep_export(out / "export"),
            status=status, message=message, exit_code=proc.returncode, wall_s=round(wall, 2),
            peak_memory_mb=round(peak, 1), stdout=streams["stdout"].text(), stderr=streams["stderr"].text(),
            output_bytes=sum(s.total for s in streams.values()),
            output_truncated=any(s.truncated for s in streams.values()),
            trace=trace, artifacts=kept, protections=protections, sandbox=self.name,
            device="cpu" if env.get("CUDA_VISIBLE_DEVICES") == "" else "default",
        )

    def warm_up(self, plan: RunPlan) -> None:
        """Starts this job's clean sandbox now, so that its framework import overlaps the
        student's run; it waits for its request (remeasure) and holds no student file."""
        self.end_clean()
        for framework in warm_frameworks(plan):
            self.warm[(threading.get_ident(), framework)] = self._start_clean(plan, framework)

    def remeasure(self, request: Path, out: Path, plan: RunPlan) -> tuple[Status, str]:
        """Runs the clean sandbox (`python -m grader.clean`) on a checked export: a fresh
        folder without the submission, the job's memory and process limits, no network where
        the OS allows it. Returns (ok | error | timeout | oom | killed, message)."""
        framework = json.loads((request / "request.json").read_text())["kind"].split("_")[0]
        clean = self.warm.pop((threading.get_ident(), framework), None)
        if clean is None or clean.proc.poll() is not None:
            end(clean)
            clean = self._start_clean(plan, "none")
        try:
            clean.proc.stdin.write(json.dumps([str(request / "request.json"), str(out)]).encode() + b"\n")
            clean.proc.stdin.close()
            limits = plan.model_copy(update={"timeout_s": min(plan.timeout_s, CLEAN_TIMEOUT_S)})
            killed, _ = self._watch(clean.proc, limits, time.monotonic(), self.stopping)
            clean.reader.join(timeout=10)
            if killed:
                return killed
            if clean.proc.returncode != 0:
                return Status.error, " / ".join(clean.stderr.text().strip().splitlines()[-2:])[-500:]
            return Status.ok, ""
        except OSError as e:  # the process ended before it read its request
            return Status.error, f"the clean sandbox ended early ({e})"
        finally:
            end(clean)

    def end_clean(self) -> None:
        """Ends a clean sandbox started for this thread's job that no model came for."""
        for key in [k for k in self.warm if k[0] == threading.get_ident()]:
            end(self.warm.pop(key, None))

    def _start_clean(self, plan: RunPlan, framework: str) -> CleanProcess:
        work = Path(tempfile.mkdtemp(prefix="grader-clean-"))
        for d in ("lib", "home"):
            (work / d).mkdir()
        (work / "lib" / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
        cmd = (namespaces() or []) + [sys.executable, "-m", "grader.clean", "--warm", framework]
        proc = subprocess.Popen(cmd, cwd=work, env=self._env(plan, work / "home", work / "lib"),
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=_limit_child)
        stderr = CappedStream(8192)
        reader = threading.Thread(target=pump, args=(proc.stderr, stderr), daemon=True)
        reader.start()
        return CleanProcess(proc, framework, work, stderr, reader)

    @staticmethod
    def _env(plan: RunPlan, home: Path, lib: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in HOST_ENV}
        env.update(job_env(plan, str(home), str(lib)))
        return env

    @staticmethod
    def _watch(proc: subprocess.Popen, plan: RunPlan, started: float, stopping: threading.Event):
        """Polls the tree until it ends; kills it on a breach. Returns (verdict|None, peak MB)."""
        tree = Tree(proc.pid)
        peak = 0.0
        while proc.poll() is None:
            members = tree.members()
            rss = tree.rss_mb(members)
            peak = max(peak, rss)
            breach = None
            if stopping.is_set():
                breach = (Status.killed, "grading was interrupted")
            elif time.monotonic() - started > plan.timeout_s:
                breach = (Status.timeout, f"the program was still running after {plan.timeout_s:.0f} s "
                          "(an endless loop, or training too long for this mode) and was stopped")
            elif rss > plan.memory_mb:
                breach = (Status.oom, f"the program used more than {plan.memory_mb} MB of memory "
                          f"({rss:.0f} MB) and was stopped")
            elif len(members) > plan.max_processes:
                breach = (Status.killed, f"the program started more than {plan.max_processes} "
                          "processes and was stopped")
            if breach:
                tree.kill()
                proc.wait()
                return breach, peak
            time.sleep(POLL_S)
        tree.kill()  # anything the program left running in the background
        return None, peak
