"""The Docker runner's clean sandbox: one long-lived container per (worker thread, framework,
environment, memory limit) running `python -m grader.clean --serve FRAMEWORK`, as the local
runner keeps one server process (grader/runners/local.py). The server imports the framework
once and forks a child per request, so a batch pays a container start and a framework import
once per worker, not once per model.

The container has the job's hardening (grader.runners.docker.container_spec: no network, a
read-only root, a non-root user without capabilities, the memory limit without swap, the
process limit) and no submission and no data cache. Two host folders are mounted: in/
read-only at /clean/in, where the host puts each checked export, and out/ at /clean/out,
where the child writes its arrays and its stderr. Requests go to the server's stdin through
the engine's attach socket and its replies (the children's exit codes) come back on stdout;
the socket is the container's only stdin, so when the grader ends, the server reads end of
input and ends too (a container left behind is removed by the next runner's sweep).

Limits per request: the time limit runs from the request (it includes the import while the
server is not ready), a child the kernel kills for memory is `oom`, and a request that
breaks a limit ends its container; the next request starts a new one. The container's CPU
weight is low (CLEAN_CPU_SHARES), so a server that imports beside a student's job takes the
cores the job leaves idle, as the local server's nice 10 does.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.models import Status
from grader.paths import PACKAGE_DIR
from grader.runners.base import CappedStream, RunPlan, clean_request, job_env, last_lines, read_text, warm_frameworks
from grader.sandbox_image import SANDBOX_UID

CLEAN_CPU_SHARES = 128  # against the default 1024 of a job's container
STDERR = 2  # the attach stream's number for stderr
SIGKILL_EXIT = "-9"  # a child the kernel killed (inside the container: for memory)


@dataclass
class CleanContainer:
    cid: str
    key: tuple  # (thread id, framework, environment, memory): where the runner keeps it
    work: Path  # on the host: in/ and out/
    sock: Any  # the attach socket: the server's stdin, its stdout and stderr
    api: Any  # the engine client the socket belongs to (closed with it)
    reader: threading.Thread  # reads the attach stream; ends when the container does
    stderr: CappedStream
    replies: queue.Queue  # "ready", then one line per request; None when the server has ended
    ready: bool = False
    served: int = 0


def read_frames(sock: Any, stderr: CappedStream, replies: queue.Queue) -> None:
    """The attach stream, demultiplexed: stdout's lines into replies, stderr kept."""
    from docker.utils.socket import frames_iter

    pending = b""
    try:
        for stream, data in frames_iter(sock, tty=False):
            if stream == STDERR:
                stderr.feed(data)
                continue
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                replies.put(line.decode("ascii", "replace").strip())
    except Exception:
        pass  # the engine closed the stream: the container is gone
    finally:
        replies.put(None)


def out_of_memory(limits: RunPlan) -> tuple[Status, str]:
    return Status.oom, f"the model needed more than {limits.memory_mb} MB of memory"


def sandbox_owns(*paths: Path) -> None:
    """The container's user must read the request and write the outputs."""
    if os.geteuid() != 0:
        return
    for root in paths:
        for path in [root, *root.rglob("*")]:
            os.chown(path, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)


class CleanContainers:
    """A DockerRunner's clean sandbox servers (see the module's docstring)."""

    def __init__(self, runner: Any):
        self.runner = runner
        self.servers: dict[tuple, CleanContainer] = {}

    def warm_up(self, plan: RunPlan) -> None:
        """Starts, beside the job, the servers its clean sandbox will most likely need."""
        for framework in warm_frameworks(plan):
            self.server(plan, framework)

    def close(self) -> None:
        for key in list(self.servers):
            self.end(self.servers[key])

    def remeasure(self, request: Path, out: Path, plan: RunPlan) -> tuple[Status, str]:
        """A checked export served by this worker's server for its framework: its arrays copied
        into `out`. Returns (ok | error | timeout | oom | killed, message)."""
        framework, limits = clean_request(request, plan)
        started = time.monotonic()
        server = self.server(plan, framework)
        name = f"r{server.served}"
        server.served += 1
        inbox, outbox = server.work / "in" / name, server.work / "out" / name
        try:
            shutil.copytree(request, inbox)
            (outbox / "out").mkdir(parents=True)
            (outbox / "work").mkdir()
            sandbox_owns(inbox, outbox)
            if not server.ready:
                breach, line = self.next_line(server, limits, started)
                if breach or line != "ready":
                    return self.failed(server, breach, limits)
                server.ready = True
            line = json.dumps([f"/clean/in/{name}/request.json", f"/clean/out/{name}/out", f"/clean/out/{name}/work"])
            getattr(server.sock, "_sock", server.sock).sendall(line.encode() + b"\n")
            breach, reply = self.next_line(server, limits, started)
            if breach or reply is None:
                return self.failed(server, breach, limits, read_text(outbox / "work" / "stderr.txt"))
            if reply == SIGKILL_EXIT:
                self.end(server)
                return out_of_memory(limits)
            if reply != "0":
                return Status.error, last_lines(read_text(outbox / "work" / "stderr.txt")) or f"exit code {reply}"
            for path in (outbox / "out").glob("*.npy"):
                if path.is_file() and not path.is_symlink():
                    shutil.copyfile(path, out / path.name)
            return Status.ok, ""
        except OSError as e:  # the server ended before it read the request
            return self.failed(server, (Status.error, f"the clean sandbox ended early ({e})"), limits)
        finally:
            shutil.rmtree(inbox, ignore_errors=True)
            shutil.rmtree(outbox, ignore_errors=True)

    def next_line(self, server: CleanContainer, limits: RunPlan, started: float) -> tuple[tuple | None, str | None]:
        """(breach | None, the server's next line or None when it ended), within the time limit."""
        from grader.runners.docker import POLL_S

        while True:
            try:
                return None, server.replies.get(timeout=POLL_S)
            except queue.Empty:
                pass
            if self.runner.stopping.is_set():
                return (Status.killed, "grading was interrupted"), None
            if time.monotonic() - started > limits.timeout_s:
                return (Status.timeout, f"the clean sandbox was still running after {limits.timeout_s:.0f} s "
                        "and was stopped"), None

    def failed(self, server: CleanContainer, breach: tuple | None, limits: RunPlan,
               child_stderr: str = "") -> tuple[Status, str]:
        """Ends the server; the breach, or why it ended (the container's memory limit, its output)."""
        state = self.runner._final_state(server.cid) if breach is None else {}
        self.end(server)
        if breach:
            return breach
        if state.get("OOMKilled"):
            return out_of_memory(limits)
        return Status.error, "the clean sandbox ended early: " + last_lines(server.stderr.text() + child_stderr)

    def server(self, plan: RunPlan, framework: str) -> CleanContainer:
        """This worker's live server for the framework, the job's environment and memory limit."""
        env = tuple(sorted(job_env(plan, "/job/home", "/opt/grader").items()))  # the Keras flavour, the threads
        key = (threading.get_ident(), framework, env, plan.memory_mb)
        server = self.servers.get(key)
        if server is not None and server.reader.is_alive():
            return server
        if server is not None:  # its container has ended: a new one
            self.end(server)
        server = self.servers[key] = self.start(plan, framework, key)
        return server

    def start(self, plan: RunPlan, framework: str, key: tuple) -> CleanContainer:
        """A server container with the job's hardening and limits, no GPU, no data cache."""
        import docker
        from docker.types import Mount

        from grader.runners.docker import container_spec

        work = Path(tempfile.mkdtemp(prefix=f"grader-docker-{os.getpid()}-clean-", dir=self.runner.jobs_dir))
        for d in ("in", "out"):
            (work / d).mkdir()
        sandbox_owns(work)
        cpus = float(self.runner.cpus or plan.cpu_threads or os.cpu_count() or 1)
        spec = container_spec(plan, self.runner.image, work, self.runner.user, cpus, None, self.runner.labels)
        spec.update(
            command=["python", "-m", "grader.clean", "--serve", framework], working_dir="/job/home",
            stdin_open=True, cpu_shares=CLEAN_CPU_SHARES,
            mounts=[Mount("/clean/in", str(work / "in"), type="bind", read_only=True),
                    Mount("/clean/out", str(work / "out"), type="bind", read_only=False),
                    *(Mount(f"/opt/grader/grader/{room}", str(PACKAGE_DIR / room), type="bind", read_only=True)
                      for room in ("probe", "clean"))])
        container = self.runner.client.containers.create(**spec)
        self.runner.live[container.id] = 0
        api = docker.from_env(timeout=None).api  # no read timeout: an idle server is no error
        sock = api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        stderr, replies = CappedStream(8192), queue.Queue()
        reader = threading.Thread(target=read_frames, args=(sock, stderr, replies), daemon=True)
        reader.start()
        self.runner.client.api.start(container.id)
        self.runner.live[container.id] = self.runner.client.api.inspect_container(container.id)["State"]["Pid"]
        return CleanContainer(container.id, key, work, sock, api, reader, stderr, replies)

    def end(self, server: CleanContainer) -> None:
        if self.servers.get(server.key) is server:
            del self.servers[server.key]
        self.runner._remove(server.cid)
        for closing in (server.sock.close, server.api.close):
            try:
                closing()
            except Exception:
                pass
        shutil.rmtree(server.work, ignore_errors=True)
