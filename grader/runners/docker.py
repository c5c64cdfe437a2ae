"""The Docker sandbox: one fresh container per job, for grading untrusted code.

Each job gets: no network; a memory limit with no swap on top (an OOM is reported as
`oom`); a CPU quota; a limit on processes and threads; a read-only root filesystem where
only the job's own folders and a size-limited /tmp are writable; a non-root user with every
capability dropped and no-new-privileges; file-size and open-file limits; a wall-clock limit
enforced from the host, and a second watchdog that kills the container's processes itself
when the engine does not answer. In: a copy of the one submission (read-only; the program
works in a size-limited copy) and the dataset cache (read-only). Out: the probe's trace and
artifacts (size-capped, schema-checked JSON, links ignored) and the capped output, read
from the attach stream (nothing is logged to the host's disk). The container is removed
afterwards whatever happened; one left by a grader that crashed is removed by the next.
The trusted re-measurement runs in clean containers of the same hardening, one long-lived
server per worker and framework (grader/runners/docker_clean.py); `close()` ends them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil
from pydantic import BaseModel

from grader.models import Job, RunRecord, Status
from grader.paths import PACKAGE_DIR
from grader.probe.layouts import IMAGE_DATASETS, TEXT_DATASETS
from grader.runners.base import (CappedStream, RunPlan, copy_submission, job_env, keep_artifacts, keep_export,
                                 probe_config, read_trace, verdict)
from grader.runners.docker_clean import CleanContainers
from grader.sandbox_image import HASH_LABEL, IMAGES, SANDBOX_UID, SandboxError, definition_hash, engine

JOB_LABEL = "org.grader.job"  # every job container carries it; the value names its owner
NODE_LABEL = "org.grader.node"  # on a cluster: the node whose task started the container (for its sweep)
BATCH_LABEL = "org.grader.batch"  # on a cluster: the batch the container's job belongs to
OWNER = f"{socket.gethostname()}:{os.getpid()}:{int(psutil.Process().create_time())}"
POLL_S = 0.2
ENGINE_ANSWER_S = 20  # the longest any one engine call may take before the engine counts as hung
KILL_GRACE_S = 10  # after a kill, how long the container may take to end before the host steps in
TMP_MB, WORK_MB, HOME_MB = 512, 1024, 128  # tmpfs sizes: /tmp, the working copy, $HOME
OUT_MB, OUT_FILES = 256, 2000  # the results folder, the only writable place on the host's disk
NOFILE = 1024
ARTIFACT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".ipynb")  # what the probe writes there
FILE_SIZE = 1 << 30
TASKS_PER_PROCESS = 4  # the kernel's process limit counts threads too (frameworks start many)


class GpuShare(BaseModel):
    """The GPU one job runs on, and its share of the device's memory when jobs share it."""

    device: str  # the engine's device id ("0", "1", ...)
    jobs_per_gpu: int = 1
    memory_mb: int | None = None  # the whole device's memory, when known


def parse_gpus(value: str) -> list[str] | None:
    """`all` -> None (every GPU the host has), `none` -> [], `0,2` -> ["0", "2"].
    (`auto`, the runner's default, is `all` where the host has a GPU and `none` where not.)"""
    value = value.strip().lower()
    if value == "all":
        return None
    if value in ("none", ""):
        return []
    ids = [v.strip() for v in value.split(",")]
    if not all(i.isdigit() for i in ids):
        raise SandboxError(f"--gpus must be 'auto', 'all', 'none' or GPU numbers such as 0,2; not {value!r}")
    return ids


def container_spec(plan: RunPlan, image: str, work: Path, user: str, cpus: float,
                   gpu: GpuShare | None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for one job: every limit in one place.
    `labels` are added to the owner's label (a cluster node labels its node and batch)."""
    from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

    env = job_env(plan, "/job/home", "/opt/grader") | {"USER": "student", "LOGNAME": "student"}
    requests = []
    if gpu is None:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the frameworks' CUDA builds run on the CPU
    else:
        requests = [DeviceRequest(device_ids=[gpu.device], capabilities=[["gpu"]])]
        if gpu.jobs_per_gpu > 1:
            env["GRADER_GPU_MEMORY_FRACTION"] = f"{0.95 / gpu.jobs_per_gpu:.3f}"
            if gpu.memory_mb:
                env["GRADER_GPU_MEMORY_MB"] = str(int(gpu.memory_mb * 0.95 / gpu.jobs_per_gpu))
            else:
                env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    # A deadline inside the container too, should the grader itself die mid-job.
    deadline = int(plan.timeout_s + 60)
    entry = ("cp -R /job/in/. /job/submission/ && exec timeout -s KILL \"$0\" "
             "python -m grader.probe /job/config/config.json")
    tmpfs_opts = f"rw,exec,nosuid,nodev,uid={user.split(':')[0]},gid={user.split(':')[1]},mode=0700"
    return dict(
        image=image, command=["sh", "-c", entry, str(deadline)], user=user, working_dir="/job/submission",
        environment=env, labels={**(labels or {}), JOB_LABEL: OWNER}, hostname="sandbox", init=True,
        network_mode="none", ipc_mode="private",
        mem_limit=f"{plan.memory_mb}m", memswap_limit=f"{plan.memory_mb}m", oom_kill_disable=False,
        nano_cpus=int(cpus * 1e9), pids_limit=plan.max_processes * TASKS_PER_PROCESS,
        read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
        ulimits=[Ulimit(name="nofile", soft=NOFILE, hard=NOFILE),
                 Ulimit(name="fsize", soft=FILE_SIZE, hard=FILE_SIZE), Ulimit(name="core", soft=0, hard=0)],
        tmpfs={"/tmp": f"{tmpfs_opts.replace('mode=0700', 'mode=1777')},size={TMP_MB}m",
               "/job/submission": f"{tmpfs_opts},size={WORK_MB}m",
               "/job/home": f"{tmpfs_opts},size={HOME_MB}m"},
        mounts=[Mount("/job/in", str(work / "in"), type="bind", read_only=True),
                Mount("/job/config", str(work / "config"), type="bind", read_only=True),
                Mount("/job/out", str(work / "out"), type="bind", read_only=False),
                Mount("/data", plan.cache_dir, type="bind", read_only=True),
                Mount("/opt/grader/grader/probe", str(PACKAGE_DIR / "probe"), type="bind", read_only=True),
                *(Mount(f"/data/datasets/{f.name}", str(f), type="bind", read_only=True)  # over the full file
                  for f in sorted((work / "served").glob("*.npz")))],
        device_requests=requests, log_config=LogConfig(type="none"),
        stdin_open=False, tty=False, detach=True,
    )


def open_cache_to_sandbox(cache_dir: Path) -> None:
    """The container's user (not the grader's) reads the data cache, mounted read-only: a grader
    running as root whose cache only root can enter (made under umask 077, or by a test's
    temporary folder) would fail every job on its first dataset. The cache holds public
    datasets, pretrained weights and stand-ins, so others are given read and search on its
    folder. Raises SandboxError when that cannot be done."""
    if os.geteuid() != 0:
        return
    mode = cache_dir.stat().st_mode
    if mode & 0o005 != 0o005:
        try:
            cache_dir.chmod(mode | 0o005)
        except OSError as e:
            raise SandboxError(f"the data cache {cache_dir} is not readable by the sandbox's user (uid "
                               f"{SANDBOX_UID}) and could not be opened to it ({e}): `chmod a+rX {cache_dir}`") from e


def precut_served_data(plan: RunPlan, folder: Path) -> None:
    """Quick mode on staged real images or reviews: the job's container sees only the subset it
    is served, in place of the staged file, so the test samples kept back for the trusted
    re-measurement (grader/trusted.py) are out of the program's reach. (Reviews are ragged:
    written as Keras' imdb.npz holds them, object arrays the probe reads from the host.)"""
    from grader.probe import provider

    if plan.mode != "quick" or plan.dataset not in IMAGE_DATASETS + TEXT_DATASETS \
            or not provider.is_staged(plan.dataset, plan.cache_dir):
        return
    served = provider.load(plan.dataset, cache_dir=plan.cache_dir, quick=True, quick_train=plan.quick_train,
                           quick_test=plan.quick_test)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{plan.dataset}.npz", x_train=served.x_train, y_train=served.y_train,
             x_test=served.x_test, y_test=served.y_test)


def protections(plan: RunPlan, cpus: float, gpu: GpuShare | None) -> dict[str, str]:
    share = (f"GPU {gpu.device}" + (f", shared by {gpu.jobs_per_gpu} jobs, each limited to its share of "
                                    "the memory" if gpu.jobs_per_gpu > 1 else "")) if gpu else "none (CPU only)"
    return {
        "container": "a fresh Docker container, removed afterwards",
        "workdir": f"a copy of the submission in memory (at most {WORK_MB} MB); the original is read-only",
        "timeout": f"{plan.timeout_s:.0f} s wall clock, enforced from the host: the container is killed",
        "memory": f"{plan.memory_mb} MB, no swap (container limit)",
        "cpu": f"{cpus:g} CPU core(s) (container quota)",
        "processes": f"at most {plan.max_processes} processes (host watchdog) and "
                     f"{plan.max_processes * TASKS_PER_PROCESS} processes and threads (kernel limit)",
        "network": "none (no network interface but loopback)",
        "filesystem": f"read-only, except the job's own folders and /tmp ({TMP_MB} MB)",
        "user": "non-root, every capability dropped, no new privileges",
        "files": f"no file larger than 1 GiB, at most {NOFILE} open files; results at most {OUT_MB} MB",
        "output": f"{plan.output_kb} KB of stdout and of stderr kept (head and tail)",
        "gpu": share,
        "stdin": f"scripted: {len(plan.stdin)} line(s), then end of input",
    }


class GpuSlots:
    """Hands each job a GPU, at most `per_gpu` jobs on one device at a time."""

    def __init__(self, devices: list[str], per_gpu: int, memory_mb: dict[str, int]):
        self.free = {d: per_gpu for d in devices}
        self.per_gpu, self.memory_mb = per_gpu, memory_mb
        self.cond = threading.Condition()

    def acquire(self) -> GpuShare | None:
        if not self.free:
            return None
        with self.cond:
            while not any(self.free.values()):
                self.cond.wait()
            device = max(self.free, key=lambda d: self.free[d])  # the least busy device
            self.free[device] -= 1
        return GpuShare(device=device, jobs_per_gpu=self.per_gpu, memory_mb=self.memory_mb.get(device))

    def release(self, share: GpuShare | None) -> None:
        if share is not None:
            with self.cond:
                self.free[share.device] += 1
                self.cond.notify()


def host_gpus() -> dict[str, int]:
    """GPU index -> memory in MB, from the host's nvidia-smi (empty when there is none)."""
    if not shutil.which("nvidia-smi"):
        return {}
    done = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, timeout=30)
    rows = [line.split(",") for line in done.stdout.splitlines() if "," in line]
    return {r[0].strip(): int(float(r[1])) for r in rows} if done.returncode == 0 else {}


def with_deadline(call: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """Runs an engine call in a thread: (answered, result). An error is an answer."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except Exception as e:
            box["result"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    return (not t.is_alive()), box.get("result")


def cgroup_text(container_id: str, controller: str, v1: str, v2: str | None = None) -> str | None:
    """A file of the container's cgroup (v1 or v2, cgroupfs or systemd driver), if visible."""
    v2 = v2 or v1
    for path in (f"/sys/fs/cgroup/{controller}/docker/{container_id}/{v1}",
                 f"/sys/fs/cgroup/{controller}/system.slice/docker-{container_id}.scope/{v1}",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/{v2}",
                 f"/sys/fs/cgroup/docker/{container_id}/{v2}"):
        try:
            return Path(path).read_text()
        except OSError:
            continue
    return None


def cgroup_value(container_id: str, controller: str, v1: str, v2: str) -> int | None:
    """A number from the container's cgroup, if visible."""
    try:
        return int((cgroup_text(container_id, controller, v1, v2) or "").split()[0])
    except (ValueError, IndexError):
        return None


def process_count(container_id: str) -> int:
    """The job's processes (threads not counted), as its cgroup lists them; 0 when not visible."""
    return (cgroup_text(container_id, "pids", "cgroup.procs") or "").count("\n")


def fork_refusals(container_id: str) -> int:
    """How often the kernel refused the job a new process or thread (its limit was reached)."""
    try:
        events = dict(line.split() for line in (cgroup_text(container_id, "pids", "pids.events") or "").splitlines())
        return int(events.get("max", 0))
    except ValueError:
        return 0


def folder_usage(root: Path, max_files: int) -> tuple[int, int]:
    """(bytes, files) under root, without following links; stops counting past max_files."""
    total, count, stack = 0, 0, [root]
    while stack and count <= max_files:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            count += 1
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            else:
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
    return total, count


class DockerRunner:
    name = "docker"

    def __init__(self, image: str | None = None, gpus: str = "auto", per_gpu: int = 1,
                 cpus: float | None = None, jobs_dir: Path | None = None):
        if per_gpu < 1:
            raise SandboxError("--per-gpu must be at least 1")
        self.client = engine(timeout=ENGINE_ANSWER_S)
        self.image = image or IMAGES["full"]
        self.cpus = cpus
        self.jobs_dir = Path(jobs_dir or tempfile.gettempdir())
        self.stopping = threading.Event()
        self.kill_answer_s = ENGINE_ANSWER_S  # how long a kill may go unanswered before the host kills
        self.live: dict[str, int] = {}  # container id -> host pid of its init (for the second watchdog)
        self.labels: dict[str, str] = {}  # added to every job container's labels (see container_spec)
        self.user = f"{SANDBOX_UID}:{SANDBOX_UID}" if os.geteuid() == 0 else f"{os.geteuid()}:{os.getegid()}"
        self._check_image()
        self.sweep()
        self.slots = self._gpu_slots(gpus, per_gpu)
        self.clean = CleanContainers(self)
        atexit.register(self.remove_all)

    # ------------------------------------------------------------------ set-up

    def _check_image(self) -> None:
        from docker.errors import ImageNotFound

        try:
            labels = self.client.images.get(self.image).labels or {}
        except ImageNotFound:
            raise SandboxError(f"the sandbox image {self.image} is not in the engine: build it with "
                               "`grader sandbox build`") from None
        flavour = labels.get("org.grader.sandbox.flavour")
        if flavour not in IMAGES or labels.get(HASH_LABEL) != definition_hash(flavour):
            raise SandboxError(f"the sandbox image {self.image} was built from another version of sandbox/: "
                               "rebuild it with `grader sandbox build`")

    def _gpu_slots(self, gpus: str, per_gpu: int) -> GpuSlots:
        inventory = host_gpus()
        wanted = parse_gpus(gpus) if gpus.strip().lower() != "auto" else (None if inventory else [])
        if wanted == []:
            return GpuSlots([], 1, {})
        devices = sorted(inventory) if wanted is None else wanted
        if wanted is None and not devices:
            raise SandboxError("--gpus all: this machine shows no GPU (nvidia-smi is missing or lists "
                               "none); grade on the CPU with --gpus none")
        self._check_gpu_runtime(devices)
        return GpuSlots(devices, per_gpu, inventory)

    def _check_gpu_runtime(self, devices: list[str]) -> None:
        """Starts a throw-away container on the GPUs: the engine says whether it can."""
        from docker.errors import APIError
        from docker.types import DeviceRequest

        probe = self.client.containers.create(self.image, ["true"], network_mode="none", labels={JOB_LABEL: OWNER},
                                              device_requests=[DeviceRequest(device_ids=devices, capabilities=[["gpu"]])])
        try:
            probe.start()
            probe.wait(timeout=ENGINE_ANSWER_S)
        except APIError as e:
            raise SandboxError(
                f"the Docker engine cannot give containers GPU(s) {','.join(devices)} ({e.explanation or e}). "
                "Install the NVIDIA Container Toolkit and restart the engine "
                "(`nvidia-ctk runtime configure --runtime=docker`), or grade on the CPU with --gpus none") from None
        finally:
            probe.remove(force=True)

    def sweep(self) -> None:
        """Removes job containers and folders left by a grader that is no longer running."""
        for c in self.client.containers.list(all=True, filters={"label": JOB_LABEL}):
            if not _owner_alive(c.labels.get(JOB_LABEL, "")):
                with_deadline(lambda c=c: c.remove(force=True), ENGINE_ANSWER_S)
        for d in self.jobs_dir.glob("grader-docker-*"):
            pid = d.name.split("-")[2]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(d, ignore_errors=True)

    def stop(self) -> None:
        """Ends every job of this runner now (Ctrl-C on a batch)."""
        self.stopping.set()

    def remove_all(self) -> None:
        self.close()
        for cid in list(self.live):
            self._remove(cid)

    # ------------------------------------------------------------------ one job

    def warm_up(self, plan: RunPlan) -> None:
        """Starts, beside the job, the clean sandbox servers its re-measurement will most likely need."""
        self.clean.warm_up(plan)

    def run(self, job: Job, plan: RunPlan, artifacts_to: Path) -> RunRecord:
        self.warm_up(plan)
        gpu = self.slots.acquire()
        work = Path(tempfile.mkdtemp(prefix=f"grader-docker-{os.getpid()}-", dir=self.jobs_dir))
        try:
            return self._run_in(work, job, plan, artifacts_to, gpu)
        finally:
            self.slots.release(gpu)
            shutil.rmtree(work, ignore_errors=True)

    def _prepare(self, work: Path, job: Job, plan: RunPlan) -> None:
        copy_submission(job, work / "in")
        (work / "in").mkdir(exist_ok=True)
        for d in ("config", "out/artifacts"):
            (work / d).mkdir(parents=True)
        Path(plan.cache_dir).mkdir(parents=True, exist_ok=True)
        open_cache_to_sandbox(Path(plan.cache_dir))
        if "torchvision" in plan.frameworks:  # the container sees the cache read-only
            from grader.probe.weights import prepare_standins

            prepare_standins(plan.cache_dir)
        precut_served_data(plan, work / "served")
        config = probe_config(plan, Path("/job/submission") / plan.entry, Path("/job/out"), Path("/job/out/artifacts"))
        config["cache_dir"] = "/data"
        (work / "config" / "config.json").write_text(json.dumps(config))
        if os.geteuid() == 0:  # the container's user must read the copy and write the results
            for path in [work, *work.rglob("*")]:
                os.chown(path, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
            for path in (work / "in", work / "config"):
                os.chmod(path, 0o555)

    def _run_in(self, work: Path, job: Job, plan: RunPlan, artifacts_to: Path, gpu: GpuShare | None) -> RunRecord:
        self._prepare(work, job, plan)
        cpus = float(self.cpus or plan.cpu_threads or os.cpu_count() or 1)
        container = self.client.containers.create(**container_spec(plan, self.image, work, self.user, cpus, gpu,
                                                                    self.labels))
        self.live[container.id] = 0
        try:
            return self._supervise(container.id, plan, work, artifacts_to, cpus, gpu)
        finally:
            self._remove(container.id)

    def _supervise(self, cid: str, plan: RunPlan, work: Path, artifacts_to: Path, cpus: float,
                   gpu: GpuShare | None) -> RunRecord:
        half = plan.output_kb * 1024 // 2
        streams = {"stdout": CappedStream(half), "stderr": CappedStream(half)}
        reader = self._attach(cid, streams)
        started = time.monotonic()
        self.client.api.start(cid)
        self.live[cid] = self.client.api.inspect_container(cid)["State"]["Pid"]
        breach, peak = self._watch(cid, plan, work, reader, started)
        wall = time.monotonic() - started
        state = self._final_state(cid) if not reader.is_alive() else {}
        trace, _ = read_trace(work / "out" / "trace.json")
        code = state.get("ExitCode")
        if breach:
            status, message = breach
        elif state.get("OOMKilled"):
            status, message = Status.oom, (f"the program used more than {plan.memory_mb} MB of memory "
                                           "and was stopped (container limit)")
        elif code is not None and code > 128:
            status, message = Status.killed, f"the program was killed by signal {_signal_name(code - 128)}"
        else:
            status, message = verdict(trace, code, streams["stderr"].text()[-2000:])
        return RunRecord(
            status=status, message=message, exit_code=code, wall_s=round(wall, 2),
            peak_memory_mb=round(peak / 2**20, 1) if peak else None,
            stdout=streams["stdout"].text(), stderr=streams["stderr"].text(),
            output_bytes=sum(s.total for s in streams.values()),
            output_truncated=any(s.truncated for s in streams.values()),
            trace=trace, artifacts=keep_artifacts(work / "out" / "artifacts", artifacts_to, suffixes=ARTIFACT_SUFFIXES),
            export_dir=keep_export(work / "out" / "export"),
            protections=protections(plan, cpus, gpu), sandbox=self.name,
            device=f"gpu {gpu.device}" if gpu else "cpu")

    # ------------------------------------------------------------------ the clean sandbox

    def remeasure(self, request: Path, out: Path, plan: RunPlan) -> tuple[Status, str]:
        """The clean sandbox: the checked export served by this worker's long-lived clean
        container for its framework (grader/runners/docker_clean.py), with the job's limits,
        no submission and the export read-only; model outputs only come back. Returns (ok |
        error | timeout | oom | killed, message)."""
        return self.clean.remeasure(request, out, plan)

    def close(self) -> None:
        """Ends this runner's clean sandbox containers."""
        self.clean.close()

    def _attach(self, cid: str, streams: dict[str, CappedStream]) -> threading.Thread:
        """Reads the container's output as it comes (attached before start: nothing is missed)."""
        import docker

        api = docker.from_env(timeout=None).api  # no read timeout: a quiet program is no error
        frames = api.attach(cid, stdout=True, stderr=True, stream=True, logs=False, demux=True)

        def pump() -> None:
            try:
                for out, err in frames:
                    if out:
                        streams["stdout"].feed(out)
                    if err:
                        streams["stderr"].feed(err)
            except Exception:
                pass  # the engine closed the stream: the container is gone
            finally:
                api.close()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        return reader

    def _watch(self, cid: str, plan: RunPlan, work: Path, reader: threading.Thread, started: float):
        """Until the container ends: limits checked from the host. Returns (breach|None, peak bytes)."""
        tasks_limit = plan.max_processes * TASKS_PER_PROCESS
        peak, next_scan = 0, 0.0
        while reader.is_alive():
            peak = max(peak, cgroup_value(cid, "memory", "memory.max_usage_in_bytes", "memory.peak") or 0)
            breach = None
            now = time.monotonic()
            if self.stopping.is_set():
                breach = (Status.killed, "grading was interrupted")
            elif now - started > plan.timeout_s:
                breach = (Status.timeout, f"the program was still running after {plan.timeout_s:.0f} s "
                          "(an endless loop, or training too long for this mode) and was stopped")
            elif process_count(cid) > plan.max_processes:
                breach = (Status.killed, f"the program started more than {plan.max_processes} processes "
                          "and was stopped")
            elif fork_refusals(cid):
                breach = (Status.killed, f"the program started more than {tasks_limit} processes and threads "
                          "and was stopped")
            elif now >= next_scan:
                next_scan = now + 1.0
                size, files = folder_usage(work / "out", OUT_FILES)
                if size > OUT_MB * 2**20 or files > OUT_FILES:
                    breach = (Status.killed, f"the program wrote more than {OUT_MB} MB or {OUT_FILES} files "
                              "into its results folder and was stopped")
            if breach:
                return self._kill(cid, reader, breach), peak
            reader.join(POLL_S)
        return None, peak

    def _kill(self, cid: str, reader: threading.Thread, breach: tuple[Status, str]) -> tuple[Status, str]:
        """Kills through the engine; the second watchdog kills from the host if it does not answer."""
        answered, _ = with_deadline(lambda: self._engine_kill(cid), self.kill_answer_s)
        reader.join(KILL_GRACE_S if answered else 0)
        if reader.is_alive():
            _host_kill(self.live.get(cid, 0), cid)
            reader.join(KILL_GRACE_S)
        if not answered:
            return breach[0], breach[1] + " (the container engine did not answer: its processes were killed from the host)"
        return breach

    def _engine_kill(self, cid: str) -> None:
        self.client.api.kill(cid)

    def _final_state(self, cid: str) -> dict[str, Any]:
        with_deadline(lambda: self.client.api.wait(cid, timeout=ENGINE_ANSWER_S), ENGINE_ANSWER_S + 5)
        answered, result = with_deadline(lambda: self.client.api.inspect_container(cid), ENGINE_ANSWER_S)
        return result["State"] if answered and isinstance(result, dict) else {}

    def _remove(self, cid: str) -> None:
        answered, result = with_deadline(lambda: self.client.api.remove_container(cid, force=True, v=True),
                                         ENGINE_ANSWER_S)
        if answered and not _is_error(result, keep_not_found=False):
            self.live.pop(cid, None)
        else:  # a hung engine: the processes at least are killed; the next sweep removes the rest
            _host_kill(self.live.pop(cid, 0), cid)


def _is_error(result: Any, keep_not_found: bool) -> bool:
    from docker.errors import NotFound

    return isinstance(result, Exception) and (keep_not_found or not isinstance(result, NotFound))


def _host_kill(pid: int, cid: str) -> None:
    """SIGKILL to the container's init from the host: every process in its PID namespace dies.
    Checked against the container's cgroup first, so a reused pid is never hit."""
    if pid <= 1:
        return
    try:
        if cid[:12] in Path(f"/proc/{pid}/cgroup").read_text():
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid, _, created = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return host != socket.gethostname() and bool(host)  # another machine's jobs are not ours to judge
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(created)
    except (psutil.Error, ValueError):
        return False


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
