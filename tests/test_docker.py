"""The Docker sandbox against the real engine: the limits seen from inside a container, a
class of hostile submissions graded in one batch (each ends its own job with the right
verdict, the others are graded), the watchdogs, cleanup after a crash, the GPU errors.

The image is the slim sandbox (no framework), built once per session from the same
Dockerfile; reruns reuse it while sandbox/ is unchanged. Skipped when no engine is
reachable, except where GRADER_REQUIRE_DOCKER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.batch import run_batch
from grader.models import Job, Status
from grader.runners.base import RunPlan
from grader.sandbox_image import SandboxError

docker = pytest.importorskip("docker", reason="the Docker SDK for Python is not installed")

from grader import sandbox_image  # noqa: E402
from grader.runners.docker import JOB_LABEL, DockerRunner, GpuShare, container_spec  # noqa: E402

WHEELHOUSE = Path(os.environ.get("GRADER_WHEELHOUSE", Path.home() / ".cache" / "grader" / "wheelhouse-slim"))


@pytest.fixture(scope="session")
def client():
    try:
        return sandbox_image.engine(timeout=60)
    except SandboxError as e:
        if os.environ.get("GRADER_REQUIRE_DOCKER") == "1":
            pytest.fail(f"GRADER_REQUIRE_DOCKER=1 but {e}")
        pytest.skip(f"no Docker engine: {e}")


@pytest.fixture(scope="session")
def image(client) -> str:
    """The slim sandbox image, built unless the engine's copy is current."""
    name = sandbox_image.IMAGES["slim"]
    if sandbox_image.image_state(client, name, "slim") != "current":
        try:
            sandbox_image.download_wheels("slim", WHEELHOUSE, log=lambda m: None)  # what is there is kept
        except SandboxError:
            if not any(WHEELHOUSE.glob("*.whl")):
                raise  # offline with an empty wheelhouse; with one, build from what is there
        sandbox_image.build("slim", wheelhouse=WHEELHOUSE, log=lambda m: None)
    return name


@pytest.fixture()
def jobs_dir(tmp_path) -> Path:
    d = tmp_path / "jobs"
    d.mkdir()
    return d


def plan(tmp_path: Path, **overrides) -> RunPlan:
    values = dict(entry="program3.py", mode="quick", frameworks=[], dataset="cifar10", epochs_cap=2,
                  quick_train=100, quick_test=100, timeout_s=30, memory_mb=1024, output_kb=64,
                  max_processes=32, cache_dir=str(tmp_path / "cache"))
    return RunPlan(**(values | overrides))


def run_one(runner: DockerRunner, tmp_path: Path, source: str, **overrides):
    folder = tmp_path / "sub"
    folder.mkdir(exist_ok=True)
    (folder / "program3.py").write_text(textwrap.dedent(source))
    job = Job(student="t", program=3, course="20CSEL76", folder=folder, entry=Path("program3.py"))
    return runner.run(job, plan(tmp_path, **overrides), tmp_path / "artifacts")


def job_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": JOB_LABEL})


# ------------------------------------------------------------------ the container's limits

INSIDE = r"""
import json, os, resource, socket
facts = {"uid": os.getuid(), "cwd": os.getcwd(), "home": os.environ["HOME"]}
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
facts["cap_eff"] = status["CapEff"].strip()
facts["no_new_privs"] = status["NoNewPrivs"].strip()
facts["interfaces"] = [n for _, n in socket.if_nameindex()]
import _socket  # below the probe's guard: the kernel itself must refuse
s = _socket.socket(); s.settimeout(2)
try:
    s.connect(("1.1.1.1", 80)); facts["connect"] = "connected"
except OSError as e:
    facts["connect"] = type(e).__name__
facts["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)
facts["fsize"] = resource.getrlimit(resource.RLIMIT_FSIZE)
def cg(path):
    try: return open(path).read().strip()
    except OSError: return None
facts["mem"] = cg("/sys/fs/cgroup/memory/memory.limit_in_bytes") or cg("/sys/fs/cgroup/memory.max")
facts["memsw"] = cg("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or cg("/sys/fs/cgroup/memory.swap.max")
facts["cpu"] = cg("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or cg("/sys/fs/cgroup/cpu.max")
facts["pids"] = cg("/sys/fs/cgroup/pids/pids.max") or cg("/sys/fs/cgroup/pids.max")
st = os.statvfs("/tmp"); facts["tmp_mb"] = st.f_blocks * st.f_frsize // 2**20
writable = {}
for d in ["/", "/etc", "/opt/grader", "/opt/grader/grader/probe", "/job", "/job/in", "/job/config", "/data",
          "/usr/lib", "/tmp", "/job/home", "/job/submission", "/job/out"]:
    try:
        open(os.path.join(d, "x"), "w").write("x"); writable[d] = True
    except OSError:
        writable[d] = False
facts["writable"] = writable
facts["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("FACTS" + json.dumps(facts))
"""


def test_limits_as_seen_from_inside(client, image, jobs_dir, tmp_path):
    r = run_one(DockerRunner(image=image, cpus=1.5, jobs_dir=jobs_dir), tmp_path, INSIDE, memory_mb=768)
    assert r.status == Status.ok, r.stderr[-2000:]
    facts = json.loads(r.stdout.split("FACTS", 1)[1])
    assert facts["uid"] != 0 and facts["cwd"] == "/job/submission" and facts["home"] == "/job/home"
    assert int(facts["cap_eff"], 16) == 0 and facts["no_new_privs"] == "1"
    assert facts["interfaces"] == ["lo"] and facts["connect"] != "connected"
    assert facts["nofile"] == [1024, 1024] and facts["fsize"] == [2**30, 2**30]
    assert int(facts["mem"]) == 768 * 2**20
    assert facts["memsw"] in (str(768 * 2**20), "0")  # v1: memory+swap equal to memory; v2: no swap
    assert facts["cpu"].split()[0] in ("150000",)  # 1.5 cores of a 100 ms period
    assert int(facts["pids"]) == 32 * 4
    assert facts["tmp_mb"] <= 512
    writable = facts["writable"]
    assert [d for d, ok in writable.items() if ok] == ["/tmp", "/job/home", "/job/submission", "/job/out"]
    assert len(facts["processes"]) <= 6  # its own PID namespace: no host process is visible
    assert r.sandbox == "docker" and r.device == "cpu" and "no new privileges" in r.protections["user"]


# ------------------------------------------------------------------ a hostile class in one batch

GOOD = "print('hello from a good program')\n"
FORK_BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
"""
MEMORY_BOMB = """
hoard = []
while True:
    hoard.append(bytearray(64 * 2**20))
"""
ENDLESS = "while True:\n    pass\n"
FLOOD = """
import sys
block = ("y" * 1023 + "\\n") * 1024
for _ in range(2048):  # 2 GB
    sys.stdout.write(block)
print("flood done")
"""
NETWORK = """
import socket, _socket
for make in (socket.socket, _socket.socket):
    s = make(); s.settimeout(3)
    try:
        s.connect(("93.184.216.34", 80)); print("CONNECTED")
    except OSError as e:
        print("refused:", type(e).__name__)
"""
SNOOP = r"""
import json, os
found, wrote = [], []
for top in ("/",):
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/sys", "/dev", "/usr", "/opt/venv")):
            dirs[:] = []
            continue
        for name in dirs + files:
            low = name.lower()
            if low in ("reference", "rubrics", "solution.py", "reports") or "gradebook" in low or "1ga20cs" in low:
                found.append(os.path.join(root, name))
for target in ("/job/in/program3.py", "/job/in/../escape", "/job/escape", "/data/escape", "/opt/grader/escape",
               "/etc/passwd", "/escape", "/job/config/config.json"):
    try:
        open(target, "a").write("pwned")
        wrote.append(target)
    except OSError:
        pass
print("SNOOP" + json.dumps({"found": found, "wrote": wrote}))
"""
FORGE = """
import json, os, sys
fake = {"trace_version": 1, "fits": [{"epochs": 50, "history": {"accuracy": [0.99]}}],
        "measurements": [{"accuracy": 0.99, "test_samples": 10000}], "exit": {"kind": "normal"},
        "models": [{"layers": 30}], "evaluations": [{"accuracy": 0.99}], "exception": None}
for folder in (".", "/tmp", os.environ["HOME"], "/job/out", "/job/out/artifacts"):
    for name in ("trace.json", "result.json", "marks.json", "grade.json"):
        try:
            json.dump(fake, open(os.path.join(folder, name), "w"))
        except OSError:
            pass
os.symlink("/etc/shadow", "/job/out/artifacts/stolen.png")
print("Test accuracy: 99.00%")
sys.exit(0)
"""
LINKS = """
import os
os.replace("/job/out/artifacts", "/job/out/moved")
os.symlink("/etc", "/job/out/artifacts")
try:
    os.remove("/job/out/trace.json")
except OSError:
    pass
os.symlink("/etc/passwd", "/job/out/trace.json")
os._exit(0)
"""
PARRICIDE = """
import os, signal, time
for pid in sorted((int(p) for p in os.listdir("/proc") if p.isdigit()), reverse=True):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
os.kill(os.getppid(), signal.SIGKILL)
time.sleep(30)
"""


def endless_cell_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('first cell')"), nbformat.v4.new_code_cell("while True:\n    pass")]
    return nbformat.writes(nb)


HOSTILE = {  # USN -> (file, source)
    "1GA20CS001": ("program3.py", GOOD), "1GA20CS002": ("program3.py", FORK_BOMB),
    "1GA20CS003": ("program3.py", MEMORY_BOMB), "1GA20CS004": ("program3.py", ENDLESS),
    "1GA20CS005": ("program3.ipynb", endless_cell_notebook()), "1GA20CS006": ("program3.py", FLOOD),
    "1GA20CS007": ("program3.py", NETWORK), "1GA20CS008": ("program3.py", SNOOP),
    "1GA20CS009": ("program3.py", FORGE), "1GA20CS010": ("program3.py", LINKS),
    "1GA20CS011": ("program3.py", PARRICIDE), "1GA20CS012": ("program3.py", GOOD),
}


@pytest.fixture()
def hostile_class(tmp_path) -> Path:
    root = tmp_path / "class"
    for usn, (name, source) in HOSTILE.items():
        (root / usn).mkdir(parents=True)
        (root / usn / name).write_text(textwrap.dedent(source))
    return root


def test_hostile_class_each_job_ends_alone(client, image, hostile_class, jobs_dir, tmp_path, rubrics, cache_dir):
    from grader.submissions import class_jobs

    program = rubrics.programs[3]
    program.framework = "any"  # the slim image has no framework: no framework probe
    program.limits.memory_mb, program.limits.output_kb = 1024, 64
    program.limits.quick.timeout_s, program.limits.quick.cell_timeout_s = 20, 5
    out = tmp_path / "reports"
    jobs = class_jobs(hostile_class, [3], "20CSEL76", "quick")
    outcome = run_batch(jobs, rubrics, DockerRunner(image=image, jobs_dir=jobs_dir), out, cache_dir,
                        jobs_in_parallel=2)
    r = {x.student: x for x in outcome.results}
    run = {usn: x.run for usn, x in r.items()}
    assert outcome.internal_errors == [] and len(r) == len(HOSTILE)
    for usn in ("1GA20CS001", "1GA20CS012"):  # graded correctly next to the others
        assert r[usn].status == Status.ok and "hello from a good program" in run[usn].stdout
    assert r["1GA20CS002"].status == Status.killed and "processes" in r["1GA20CS002"].status_message
    assert r["1GA20CS003"].status == Status.oom and "1024 MB" in r["1GA20CS003"].status_message
    assert r["1GA20CS004"].status == Status.timeout and "20 s" in r["1GA20CS004"].status_message
    assert r["1GA20CS005"].status == Status.timeout and "cell 2" in r["1GA20CS005"].status_message
    flood = run["1GA20CS006"]
    assert flood.output_bytes > 2 * 10**9 and flood.output_truncated and "flood done" in flood.stdout
    assert len(flood.stdout) < 70 * 1024
    assert "CONNECTED" not in run["1GA20CS007"].stdout and run["1GA20CS007"].stdout.count("refused") == 2
    snoop = json.loads(run["1GA20CS008"].stdout.split("SNOOP", 1)[1])
    assert snoop == {"found": [], "wrote": []}
    forged = r["1GA20CS009"]  # forged results everywhere, then exit 0: nothing gained
    assert forged.status == Status.error and "before training any model" in forged.status_message
    assert forged.run.trace["measurements"] == [] and forged.run.trace["fits"] == []
    assert forged.run.artifacts == [] and forged.marks["execution"] == 0
    links = r["1GA20CS010"]  # the trace and artifact folder replaced by links to the host's files
    assert links.status == Status.error and links.run.trace is None and links.run.artifacts == []
    assert r["1GA20CS011"].status == Status.killed and "SIGKILL" in r["1GA20CS011"].status_message

    assert job_containers(client) == []  # no container left, running or not
    assert list(jobs_dir.iterdir()) == []  # no job folder left behind
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        stored = dict(db.execute("SELECT student, status FROM results").fetchall())
    assert stored == {usn: x.status.value for usn, x in r.items()}


# ------------------------------------------------------------------ watchdogs and cleanup


class HungEngine(DockerRunner):
    """The real runner on the real engine, except that the engine never answers a kill."""

    def _engine_kill(self, cid: str) -> None:
        time.sleep(60)


def test_second_watchdog_kills_from_the_host_when_the_engine_does_not_answer(client, image, jobs_dir, tmp_path):
    runner = HungEngine(image=image, jobs_dir=jobs_dir)
    runner.kill_answer_s = 2
    started = time.monotonic()
    r = run_one(runner, tmp_path, ENDLESS, timeout_s=4)
    assert r.status == Status.timeout and "did not answer" in r.message
    assert time.monotonic() - started < 20
    assert job_containers(client) == [] and list(jobs_dir.iterdir()) == []


def test_stop_ends_running_jobs(client, image, jobs_dir, tmp_path):
    runner = DockerRunner(image=image, jobs_dir=jobs_dir)
    import threading

    threading.Timer(3, runner.stop).start()
    r = run_one(runner, tmp_path, "import time\ntime.sleep(60)\n")
    assert r.status == Status.killed and r.message == "grading was interrupted" and r.wall_s < 15
    assert job_containers(client) == []


def test_containers_of_a_crashed_grader_are_removed_by_the_next(client, image, jobs_dir, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "program3.py").write_text("import time\ntime.sleep(120)\n")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from grader.models import Job
        from grader.runners.base import RunPlan
        from grader.runners.docker import DockerRunner
        job = Job(student="t", program=3, course="20CSEL76", folder=Path({str(tmp_path / 'sub')!r}), entry=Path("program3.py"))
        plan = RunPlan(entry="program3.py", mode="quick", frameworks=[], dataset=None, epochs_cap=1, quick_train=1,
                       quick_test=1, timeout_s=100, memory_mb=512, output_kb=8, cache_dir={str(tmp_path / 'cache')!r})
        DockerRunner(image={image!r}, jobs_dir=Path({str(jobs_dir)!r})).run(job, plan, Path({str(tmp_path / 'a')!r}))
    """)
    grader = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not [c for c in job_containers(client) if c.status == "running"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_containers(client), "the job never started"
    grader.send_signal(signal.SIGKILL)  # a crash: no clean-up code runs
    grader.wait()
    assert job_containers(client) and list(jobs_dir.iterdir())  # left behind ...
    DockerRunner(image=image, jobs_dir=jobs_dir)
    assert job_containers(client) == [] and list(jobs_dir.iterdir()) == []  # ... and swept up


# ------------------------------------------------------------------ GPUs and clear errors


def test_gpu_share_is_a_device_request_with_a_memory_share(tmp_path):
    spec = container_spec(plan(tmp_path), "img", tmp_path, "10001:10001", 2.0,
                          GpuShare(device="2", jobs_per_gpu=4, memory_mb=40000))
    (request,) = spec["device_requests"]
    assert request["DeviceIDs"] == ["2"] and request["Capabilities"] == [["gpu"]]
    env = spec["environment"]
    assert env["GRADER_GPU_MEMORY_FRACTION"] == "0.237" and env["GRADER_GPU_MEMORY_MB"] == "9500"
    assert "CUDA_VISIBLE_DEVICES" not in env
    cpu = container_spec(plan(tmp_path), "img", tmp_path, "10001:10001", 2.0, None)
    assert cpu["device_requests"] == [] and cpu["environment"]["CUDA_VISIBLE_DEVICES"] == ""
    alone = container_spec(plan(tmp_path), "img", tmp_path, "10001:10001", 2.0, GpuShare(device="0"))
    assert "GRADER_GPU_MEMORY_FRACTION" not in alone["environment"]


def test_gpus_without_a_gpu_runtime_is_a_clear_error(client, image, jobs_dir):
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this engine has a GPU runtime")
    with pytest.raises(SandboxError, match="cannot give containers GPU.*NVIDIA Container Toolkit.*--gpus none"):
        DockerRunner(image=image, gpus="0", jobs_dir=jobs_dir)
    assert job_containers(client) == []
    with pytest.raises(SandboxError, match="--gpus must be"):
        DockerRunner(image=image, gpus="first", jobs_dir=jobs_dir)


def test_no_engine_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxError, match="no Docker engine is reachable.*--sandbox local"):
        sandbox_image.engine(timeout=5)


def test_missing_or_stale_image_says_how_to_build_it(client, jobs_dir):
    with pytest.raises(SandboxError, match="not in the engine.*grader sandbox build"):
        DockerRunner(image="grader-sandbox:no-such-tag", jobs_dir=jobs_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="the container runs as the grader's own user when it is not root")
def test_cache_only_root_can_enter_is_opened_to_the_sandbox_user(client, image, jobs_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "note.txt").write_text("served")
    r = run_one(DockerRunner(image=image, jobs_dir=jobs_dir), tmp_path, "print(open('/data/note.txt').read())")
    assert "served" in r.stdout, (r.status, r.message, r.stdout)
    assert cache.stat().st_mode & 0o777 == 0o705


# ------------------------------------------------------------------ the command line


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def test_batch_in_docker_from_the_command_line(client, image, tmp_path, cache_dir):
    rubrics = tmp_path / "rubrics"
    shutil.copytree(Path(__file__).resolve().parents[1] / "rubrics" / "20CSEL76", rubrics)
    program3 = rubrics / "program3.yaml"  # no framework: the slim image has none
    program3.write_text(program3.read_text().replace("framework: keras", "framework: any", 1))
    for usn in ("1GA20CS001", "1GA20CS002"):
        (tmp_path / "class" / usn).mkdir(parents=True)
        (tmp_path / "class" / usn / "program3.py").write_text(f"print('{usn} was here')\n")
    out = tmp_path / "reports"
    done = cli("batch", str(tmp_path / "class"), "--program", "3", "--rubrics", str(rubrics), "--out", str(out),
               "--sandbox", "docker", "--image", image, "--gpus", "none", env={"GRADER_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Graded 2" in done.stdout
    sheet = (out / "1GA20CS001" / "program3.html").read_text()
    assert "docker on cpu" in sheet and "no new privileges" in sheet
    assert job_containers(client) == []


def test_command_line_errors_say_what_to_do(client, image, tmp_path):
    (tmp_path / "class" / "1GA20CS001").mkdir(parents=True)
    (tmp_path / "class" / "1GA20CS001" / "program3.py").write_text("print(1)\n")
    gpu = cli("batch", str(tmp_path / "class"), "--sandbox", "docker", "--image", image, "--gpus", "0")
    if "nvidia" not in (client.info().get("Runtimes") or {}):
        assert gpu.returncode == 2 and "NVIDIA Container Toolkit" in gpu.stderr and "--gpus none" in gpu.stderr
    no_engine = cli("batch", str(tmp_path / "class"), "--sandbox", "docker",
                    env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert no_engine.returncode == 2 and "no Docker engine is reachable" in no_engine.stderr
    assert "--sandbox local" in no_engine.stderr
    mixed = cli("batch", str(tmp_path / "class"), "--image", image)
    assert mixed.returncode == 2 and "add --sandbox docker" in mixed.stderr


def test_doctor_and_build_report_the_image(client, image):
    doctor = cli("doctor", "--image", image)
    assert "✓ Docker engine: reachable" in doctor.stdout
    assert f"✓ Sandbox image: {image} is current" in doctor.stdout
    assert "Keras: course 20CSEL76 uses" in doctor.stdout
    missing = cli("doctor", "--image", "grader-sandbox:no-such-tag")
    assert missing.returncode == 1 and "fix: grader sandbox build" in missing.stdout
    build = cli("sandbox", "build", "--slim", "--wheelhouse", str(WHEELHOUSE))
    assert build.returncode == 0, build.stderr
    assert f"{image}: " in build.stdout and "already current" in build.stdout and "numpy" in build.stdout


def test_jobs_are_spread_over_gpus_and_wait_for_a_free_one():
    import threading

    from grader.runners.docker import GpuSlots

    slots = GpuSlots(["0", "1"], per_gpu=2, memory_mb={"0": 80000})
    taken = [slots.acquire() for _ in range(4)]
    assert sorted(s.device for s in taken) == ["0", "0", "1", "1"]
    assert taken[0].memory_mb == 80000 and taken[0].jobs_per_gpu == 2
    fifth: list = []
    waiter = threading.Thread(target=lambda: fifth.append(slots.acquire()), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert fifth == []  # every GPU holds its K jobs: the fifth waits
    slots.release(taken[1])
    waiter.join(5)
    assert fifth and fifth[0].device == taken[1].device


def test_gpu_memory_share_hook_runs_when_the_framework_is_imported():
    """sandbox/sitecustomize.py applies the share right after `import torch` (a no-op on a CPU)."""
    pytest.importorskip("torch")
    sandbox = Path(__file__).resolve().parents[1] / "sandbox"
    done = subprocess.run([sys.executable, "-c", "import torch, sitecustomize; print(sitecustomize._hooks)"],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(sandbox), GRADER_GPU_MEMORY_FRACTION="0.25"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{}" and "not applied" not in done.stderr  # the torch hook ran, cleanly


def test_sandbox_commands_have_help():
    for cmd in (["sandbox", "build", "--help"], ["doctor", "--help"], ["batch", "--help"]):
        r = cli(*cmd)
        assert r.returncode == 0 and "Usage" in r.stdout
    assert "--wheelhouse" in cli("sandbox", "build", "--help").stdout
    assert "--per-gpu" in cli("batch", "--help").stdout


# ------------------------------------------------------------------ the clean sandbox


def test_clean_sandbox_runs_in_a_container_of_its_own(client, image, jobs_dir, tmp_path):
    """The trusted re-measurement's second sandbox: its own container (the slim image has no
    framework, so the request names a format it cannot load: the error comes back, named)."""
    request, out = tmp_path / "request", tmp_path / "out"
    request.mkdir()
    out.mkdir()
    (request / "request.json").write_text(json.dumps({"kind": "no-such-format", "preprocess": {}, "inputs": []}))
    runner = DockerRunner(image=image, jobs_dir=jobs_dir)
    status, message = runner.remeasure(request, out, plan(tmp_path))
    assert status == Status.error and "no-such-format" in message, message
    assert list(out.iterdir()) == [] and len(job_containers(client)) == 1  # the server, kept for the next
    runner.close()
    assert job_containers(client) == []


def test_quick_job_on_staged_images_sees_only_its_subset(client, image, jobs_dir, tmp_path):
    """The test images kept back for the trusted re-measurement are out of the program's reach:
    the container's copy of the staged file holds only the quick subset."""
    datasets = tmp_path / "cache" / "datasets"
    datasets.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(datasets / "cifar10.npz", x_train=rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(200) % 10, x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
             y_test=np.arange(100) % 10)
    r = run_one(DockerRunner(image=image, jobs_dir=jobs_dir), tmp_path, """
        import numpy as np
        z = np.load("/data/datasets/cifar10.npz")
        print("SEEN", len(z["x_train"]), len(z["x_test"]))
    """, quick_train=50, quick_test=20)
    assert "SEEN 50 20" in r.stdout, (r.status, r.message, r.stdout)
    assert len(np.load(datasets / "cifar10.npz")["x_test"]) == 100  # the staged file itself is untouched


def test_quick_job_on_staged_reviews_sees_only_its_subset(client, image, jobs_dir, tmp_path):
    """The same for reviews (ragged: object arrays, as Keras' imdb.npz holds them)."""
    datasets = tmp_path / "cache" / "datasets"
    datasets.mkdir(parents=True)
    reviews = np.empty(300, dtype=object)
    reviews[:] = [[1 + i % 7, 2 + i % 5, 3] for i in range(300)]
    np.savez(datasets / "imdb.npz", x_train=reviews[:200], y_train=np.arange(200) % 2, x_test=reviews[200:],
             y_test=np.arange(100) % 2)
    r = run_one(DockerRunner(image=image, jobs_dir=jobs_dir), tmp_path, """
        import numpy as np
        z = np.load("/data/datasets/imdb.npz", allow_pickle=True)
        print("SEEN", len(z["x_train"]), len(z["x_test"]))
    """, quick_train=50, quick_test=20, dataset="imdb")
    assert "SEEN 50 20" in r.stdout, (r.status, r.message, r.stdout)
    assert len(np.load(datasets / "imdb.npz", allow_pickle=True)["x_test"]) == 100
