"""The local sandbox: a fresh folder per job, a process-tree watchdog for time, memory and
process count, capped output, scripted stdin, and no network where the OS allows it.

For students' laptops and CI. It confines a program that misbehaves by accident; it is
not a security boundary against a hostile one (that is the Docker runner's job).
"""

from __future__ import annotations

import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import psutil

from grader.models import Job, RunRecord, Status
from grader.paths import PACKAGE_DIR
from grader.runners.base import (CappedStream, RunPlan, clean_request, copy_submission, job_env, keep_artifacts,
                                 keep_export, last_lines, probe_config, pump, read_text, read_trace, verdict,
                                 warm_frameworks)

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


CLEAN_NICE = 10  # the server imports beside a student's job: it takes the cores the job leaves idle


def _limit_clean() -> None:
    _limit_child()
    os.nice(CLEAN_NICE)


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
class CleanServer:
    """A clean sandbox server (`python -m grader.clean --serve`): it has imported one framework
    and forks a child for each request; its replies (the children's exit codes) come on stdout."""

    proc: subprocess.Popen
    key: tuple  # (thread id, framework, environment): where the runner keeps it
    work: Path
    stderr: CappedStream
    replies: queue.Queue  # "ready" once imported, then one line per request; None when it has ended
    ready: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None


def read_replies(pipe, replies: queue.Queue) -> None:
    for line in iter(pipe.readline, b""):
        replies.put(line.decode("ascii", "replace").strip())
    replies.put(None)
    pipe.close()


def end(server: CleanServer | None) -> None:
    if server is not None:
        Tree(server.proc.pid).kill()
        server.proc.wait()
        shutil.rmtree(server.work, ignore_errors=True)


def end_all(servers: dict[tuple, CleanServer]) -> None:
    for key in list(servers):
        end(servers.pop(key, None))


class LocalRunner:
    name = "local"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        # (thread id, framework, environment) -> its clean sandbox server, kept from job
        # to job: a batch imports each framework once per worker, not once per student
        self.servers: dict[tuple, CleanServer] = {}
        weakref.finalize(self, end_all, self.servers)  # a runner dropped without close()

    def stop(self) -> None:
        """Ends every job of this runner now (Ctrl-C on a batch)."""
        self.stopping.set()
        self.close()

    def close(self) -> None:
        """Ends this runner's clean sandbox servers (they also end when this process does)."""
        end_all(self.servers)

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
        """Starts the clean sandbox servers this job will most likely need, if this worker has
        none yet, so that their framework import overlaps the student's run. They hold no
        student file: requests come after the job (remeasure)."""
        for framework in warm_frameworks(plan):
            self._server(plan, framework)

    def remeasure(self, request: Path, out: Path, plan: RunPlan) -> tuple[Status, str]:
        """Runs the clean sandbox on a checked export: a fork of a server that has imported the
        framework and nothing else, in a fresh folder without the submission, under the job's
        memory and process limits, with no network where the OS allows it. Returns (ok | error |
        timeout | oom | killed, message). A server that breaks a limit is ended with its child."""
        framework, limits = clean_request(request, plan)
        server = self._server(plan, framework)
        work = Path(tempfile.mkdtemp(prefix="grader-clean-request-"))
        started = time.monotonic()
        try:
            if not server.ready:  # still importing: that time counts, and all its memory
                killed, reply = self._await(server, limits, started, 0.0)
                if killed or reply != "ready":
                    self._drop(server)
                    return killed or (Status.error, "the clean sandbox ended early: " + last_lines(server.stderr.text()))
                server.ready = True
            tree = Tree(server.proc.pid)
            baseline = tree.rss_mb(tree.members())  # the idle server's: the child's memory is what counts
            server.proc.stdin.write(json.dumps([str(request / "request.json"), str(out), str(work)]).encode() + b"\n")
            server.proc.stdin.flush()
            killed, reply = self._await(server, limits, started, baseline)
            if killed or reply is None:
                self._drop(server)
                return killed or (Status.error, "the clean sandbox ended early: "
                                  + last_lines(server.stderr.text() + read_text(work / "stderr.txt")))
            if reply != "0":
                return Status.error, last_lines(read_text(work / "stderr.txt")) or f"exit code {reply}"
            return Status.ok, ""
        except OSError as e:  # the server ended before it read the request
            self._drop(server)
            return Status.error, f"the clean sandbox ended early ({e})"
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _await(self, server: CleanServer, limits: RunPlan, started: float, baseline_mb: float):
        """The server's next line (None: it ended), watched under the limits: (verdict|None, line)."""
        reply: list[str | None] = []
        killed, _ = self._watch(server.proc, limits, started, self.stopping,
                                done=lambda wait_s: replied(server.replies, reply, wait_s), baseline_mb=baseline_mb)
        return killed, (reply[0] if reply else None)

    def _server(self, plan: RunPlan, framework: str) -> CleanServer:
        """This worker's live server for the framework and the job's environment (started if none)."""
        env = self._env(plan, Path("home"), Path("lib"))  # the Keras flavour, its backend, the threads
        key = (threading.get_ident(), framework, tuple(sorted(env.items())))
        server = self.servers.get(key)
        if server is None or not server.alive():
            end(server)
            server = self.servers[key] = self._start_clean(plan, framework, key)
        return server

    def _drop(self, server: CleanServer) -> None:
        if self.servers.get(server.key) is server:
            del self.servers[server.key]
        end(server)

    def _start_clean(self, plan: RunPlan, framework: str, key: tuple) -> CleanServer:
        work = Path(tempfile.mkdtemp(prefix="grader-clean-"))
        for d in ("lib", "home"):
            (work / d).mkdir()
        (work / "lib" / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
        cmd = (namespaces() or []) + [sys.executable, "-m", "grader.clean", "--serve", framework]
        proc = subprocess.Popen(cmd, cwd=work, env=self._env(plan, work / "home", work / "lib"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_limit_clean)
        stderr, replies = CappedStream(8192), queue.Queue()
        threading.Thread(target=pump, args=(proc.stderr, stderr), daemon=True).start()
        threading.Thread(target=read_replies, args=(proc.stdout, replies), daemon=True).start()
        return CleanServer(proc, key, work, stderr, replies)

    @staticmethod
    def _env(plan: RunPlan, home: Path, lib: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in HOST_ENV}
        env.update(job_env(plan, str(home), str(lib)))
        return env

    @staticmethod
    def _watch(proc: subprocess.Popen, plan: RunPlan, started: float, stopping: threading.Event,
               done: Callable[[float], bool] | None = None, baseline_mb: float = 0.0):
        """Polls the tree until the process ends (or, given `done`, until done(wait_s) says the
        work is finished); kills the tree on a breach, counting its memory above `baseline_mb`.
        Returns (verdict|None, peak MB)."""
        tree = Tree(proc.pid)
        peak = 0.0
        done = done or (lambda wait_s: ended(proc, wait_s))
        while not done(0):
            members = tree.members()
            rss = tree.rss_mb(members) - baseline_mb
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
            done(POLL_S)  # returns as soon as the work ends
        if proc.poll() is not None:
            tree.kill()  # anything the program left running in the background
        return None, peak


def ended(proc: subprocess.Popen, wait_s: float) -> bool:
    try:
        proc.wait(timeout=wait_s) if wait_s else None
    except subprocess.TimeoutExpired:
        return False
    return proc.poll() is not None


def replied(replies: queue.Queue, reply: list, wait_s: float) -> bool:
    """Whether the server has answered (the answer goes into `reply`), waiting up to wait_s."""
    if not reply:
        try:
            reply.append(replies.get(timeout=wait_s) if wait_s else replies.get_nowait())
        except queue.Empty:
            return False
    return True
