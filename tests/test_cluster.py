"""`grader batch --cluster` on a real Ray cluster of several nodes on this machine: a head
that only schedules and two grading nodes declaring two (logical) GPUs each, started once
for the module and kept on loopback. Jobs are trivial programs that log, from inside the
sandbox, when they ran and which GPU they were given.

Skipped when Ray is not installed, except where GRADER_REQUIRE_CLUSTER=1 (CI), where that
is a failure. The Docker cases need the engine (GRADER_REQUIRE_DOCKER as in test_docker).
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
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from grader.batch import Progress, artifacts_dir, run_batch
from grader.course import load_rubrics
from grader.models import GradeResult, Status
from grader.pipeline import grade_key
from grader.submissions import class_jobs

if os.environ.get("GRADER_REQUIRE_CLUSTER") == "1":
    import ray  # (CI: a missing Ray is a failure, not a skip)
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed (the 'cluster' extra)")

from ray.cluster_utils import Cluster  # noqa: E402

from grader.cluster.doctor import check_cluster  # noqa: E402
from grader.cluster.engine import ClusterOptions, RayEngine  # noqa: E402
from grader.cluster.sweep import sweep_cluster  # noqa: E402
from grader.runners.docker import BATCH_LABEL, JOB_LABEL, NODE_LABEL, OWNER  # noqa: E402
from test_docker import client, image  # noqa: E402,F401  (the Docker engine and the slim image, as fixtures)

PROJECT = Path(__file__).resolve().parents[1]
NODE = dict(num_cpus=4, num_gpus=2, memory=32 * 2**30, object_store_memory=80 * 2**20)
PROGRAM = 7  # no dataset: no clean sandbox is started ahead of the student's run


@pytest.fixture(scope="module")
def cluster():
    for var, value in (("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")):
        os.environ[var] = value
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, object_store_memory=80 * 2**20))
    nodes = [c.add_node(**NODE) for _ in range(2)]
    c.wait_for_nodes()
    c.grading_nodes = nodes
    yield c
    c.shutdown()


@pytest.fixture()
def rubrics():
    return load_rubrics()


def program(log: Path, sleep_s: float, usn: str, plot: bool = False) -> str:
    """A student program that logs its start and end (and the GPU it sees) to `log`, and
    with `plot` shows a figure (which comes back as an artifact)."""
    figure = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n" if plot else ""
    return figure + textwrap.dedent(f"""
        import json, os, time
        def note(event):
            try:  # the host's folder: the local sandbox reaches it, a container never does
                with open({str(log)!r}, "a") as f:
                    f.write(json.dumps({{"student": {usn!r}, "event": event, "t": time.time(),
                                         "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}}) + "\\n")
            except OSError:
                pass
        note("start")
        time.sleep({sleep_s})
        note("end")
        print("marker", {str(log.name)!r})
    """)


def make_class(root: Path, students: int, log: Path, sleep_s: float, plot: bool = False) -> Path:
    """A class whose every student submits the logging program."""
    for i in range(students):
        usn = f"1GA20CS{i + 1:03d}"
        (root / usn).mkdir(parents=True)
        (root / usn / f"program{PROGRAM}.py").write_text(program(log, sleep_s, usn, plot))
    return root


def log_events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def engine(rubrics, cache_dir, cluster, **options) -> RayEngine:
    return RayEngine(rubrics, cache_dir, ClusterOptions(address=cluster.address, **options))


class Recorder(Progress):
    """Counts each result the batch reported as stored."""

    def __init__(self):
        self.stored: Counter = Counter()
        self.failed: list[str] = []

    def done(self, result: GradeResult, reused: bool = False) -> None:
        if not reused:
            self.stored[result.student] += 1

    def failed_job(self, job, error) -> None:
        self.failed.append(f"{job.student}: {error}")


def stored_rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        return db.execute("SELECT student, status FROM results ORDER BY student").fetchall()


# ------------------------------------------------------------------ the local sandbox on a cluster

def test_local_sandbox_batch_stores_every_result_once_with_its_node(cluster, rubrics, cache_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    klass = make_class(tmp_path / "class", 4, log, 0.2, plot=True)
    (klass / "1GA20CS005").mkdir()  # submitted nothing: graded on the driver, no task
    out, progress = tmp_path / "out", Recorder()
    outcome = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, out, cache_dir,
                        progress=progress, similarity=False, engine=engine(rubrics, cache_dir, cluster, gpus="none"))
    assert outcome.internal_errors == [] and outcome.graded == 5
    assert progress.stored == Counter({f"1GA20CS00{i}": 1 for i in range(1, 6)})
    by = {r.student: r for r in outcome.results}
    assert by["1GA20CS005"].status == Status.rejected and by["1GA20CS005"].run.node is None
    node_ids = {n.node_id[:8] for n in cluster.grading_nodes}
    for usn in ("1GA20CS001", "1GA20CS002", "1GA20CS003", "1GA20CS004"):
        run = by[usn].run
        assert by[usn].status == Status.ok, by[usn].status_message
        assert "marker" in run.stdout and run.node and run.node.split("(")[1][:8] in node_ids
        assert run.device == "cpu" or run.device == "default"
    assert [e["event"] for e in log_events(log)].count("end") == 4
    assert stored_rows(out) == [(f"1GA20CS00{i}", "ok") for i in range(1, 5)] + [("1GA20CS005", "rejected")]
    sheet = (out / "1GA20CS001" / f"program{PROGRAM}.html").read_text()
    assert by["1GA20CS001"].run.node in sheet
    pictures = by["1GA20CS001"].run.artifacts
    assert pictures and all((artifacts_dir(out, by["1GA20CS001"].grade_key) / p).is_file() for p in pictures)
    assert not list(artifacts_dir(out, "").glob(".*.part"))  # written whole, nothing half-done left


def test_files_travel_with_the_job_and_a_changed_file_is_refused(cluster, rubrics, cache_dir, tmp_path):
    klass = make_class(tmp_path / "class", 2, tmp_path / "log.jsonl", 0.1)
    (klass / "1GA20CS001" / "data.txt").write_text("read by the program")
    (klass / "1GA20CS001" / f"program{PROGRAM}.py").write_text("print(open('data.txt').read())\n")
    jobs = class_jobs(klass, [PROGRAM], "20CSEL76", "quick")
    (klass / "1GA20CS002" / f"program{PROGRAM}.py").write_text("print('changed after it was keyed')\n")
    outcome = run_batch(jobs, rubrics, None, tmp_path / "out", cache_dir, similarity=False,
                        engine=engine(rubrics, cache_dir, cluster, gpus="none"))
    assert [r.student for r in outcome.results] == ["1GA20CS001"]
    assert "read by the program" in outcome.results[0].run.stdout
    assert len(outcome.internal_errors) == 1 and "1GA20CS002" in outcome.internal_errors[0]
    assert "the files arrived with content hash" in outcome.internal_errors[0]


# ------------------------------------------------------------------ GPUs shared: --per-gpu 2

def overlaps(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_per_gpu_2_puts_two_jobs_on_each_gpu_id_never_three(cluster, rubrics, cache_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    klass = make_class(tmp_path / "class", 12, log, 1.5)
    outcome = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, tmp_path / "out",
                        cache_dir, similarity=False,
                        engine=engine(rubrics, cache_dir, cluster, gpus="all", per_gpu=2, cpus=1))
    assert outcome.internal_errors == [] and outcome.graded == 12
    events = log_events(log)
    where = {r.student: (r.run.node, r.run.device) for r in outcome.results}
    spans: dict[tuple, list] = {}
    for usn in where:
        start, end = (next(e for e in events if e["student"] == usn and e["event"] == ev) for ev in ("start", "end"))
        assert where[usn][1] == f"gpu {start['gpu']}"  # the id Ray assigned is the one the job was given
        spans.setdefault(where[usn], []).append((start["t"], end["t"]))
    assert {device for _, device in spans} == {"gpu 0", "gpu 1"}
    assert len({node for node, _ in spans}) == 2
    most = {gpu: overlaps(s) for gpu, s in spans.items()}
    assert max(most.values()) == 2, most  # two jobs share an id at a time, never three


# ------------------------------------------------------------------ nothing lost, nothing twice

def test_node_removed_mid_batch_its_jobs_rerun_elsewhere_and_stored_once(cluster, rubrics, cache_dir, tmp_path):
    extra = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    log = tmp_path / "log.jsonl"
    klass = make_class(tmp_path / "class", 8, log, 4.0)
    removed = threading.Event()

    def remove_when_all_slots_busy() -> None:  # 3 nodes x 2 slots: once 6 jobs run, the new node holds 2
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and [e["event"] for e in log_events(log)].count("start") < 6:
            time.sleep(0.1)
        cluster.remove_node(extra, allow_graceful=False)
        removed.set()

    watcher = threading.Thread(target=remove_when_all_slots_busy, daemon=True)
    watcher.start()
    out, progress = tmp_path / "out", Recorder()
    outcome = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, out, cache_dir,
                        progress=progress, similarity=False,
                        engine=engine(rubrics, cache_dir, cluster, gpus="none", cpus=2))
    watcher.join()
    assert removed.is_set()
    starts = Counter(e["student"] for e in log_events(log) if e["event"] == "start")
    assert max(starts.values()) >= 2, starts  # the removed node's jobs ran again elsewhere
    assert outcome.internal_errors == [] and outcome.graded == 8
    assert progress.stored == Counter({f"1GA20CS00{i}": 1 for i in range(1, 9)})
    assert [s for s, _ in stored_rows(out)] == [f"1GA20CS00{i}" for i in range(1, 9)]
    assert all(r.status == Status.ok and extra.node_id[:8] not in r.run.node for r in outcome.results)


def cli_batch(klass: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    """`grader batch --cluster ADDRESS` as a user runs it, in its own process."""
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(klass), "--program", str(PROGRAM), "--out", str(out),
           "--no-similarity", "--cluster", address, *extra]
    return subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | {"PYTHONPATH": str(PROJECT)})


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_driver_killed_then_rerun_grades_only_what_is_missing(cluster, rubrics, cache_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    klass = make_class(tmp_path / "class", 6, log, 1.0)
    for i in (5, 6):  # two slow ones, still running when the driver dies
        (klass / f"1GA20CS00{i}" / f"program{PROGRAM}.py").write_text(program(log, 60.0, f"1GA20CS00{i}"))
    out = tmp_path / "out"
    driver = cli_batch(klass, out, cluster.address, "--gpus", "none", "--cache", str(cache_dir))
    gradebook = out / "gradebook.sqlite"
    wait_for(lambda: gradebook.exists() and len(stored_rows(out)) == 4, 120, "the four quick jobs to be stored")
    driver.kill()
    driver.wait()
    before = {s for s, _ in stored_rows(out)}
    for i in (5, 6):  # fixed in the meantime: quick now
        (klass / f"1GA20CS00{i}" / f"program{PROGRAM}.py").write_text(program(log, 0.5, f"1GA20CS00{i}"))
    progress = Recorder()
    again = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, out, cache_dir,
                      progress=progress, similarity=False, engine=engine(rubrics, cache_dir, cluster, gpus="none"))
    assert before == {f"1GA20CS00{i}" for i in range(1, 5)}
    assert again.reused == 4 and again.graded == 2 and again.internal_errors == []
    assert set(progress.stored) == {"1GA20CS005", "1GA20CS006"}
    assert len(stored_rows(out)) == 6


# ------------------------------------------------------------------ a node that differs refuses

def differing_grader(root: Path) -> dict[str, str]:
    """The environment of a node whose grader has another harness: a copy of the package
    with one harness file changed, imported first by the node's Python (sitecustomize)."""
    shutil.copytree(PROJECT / "grader", root / "pkg" / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "pkg" / "grader" / "harness" / "checks.py").open("a") as f:
        f.write("\n# a check changed on this node only\n")
    (root / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(root / 'pkg')!r})\nimport grader\n")
    return {"PYTHONPATH": str(root), "GRADER_PROJECT": str(PROJECT)}


def test_node_with_another_harness_refuses_its_jobs_naming_the_difference(cluster, rubrics, cache_dir, tmp_path):
    odd = cluster.add_node(num_cpus=2, object_store_memory=80 * 2**20, memory=16 * 2**30,
                           env_vars=differing_grader(tmp_path / "odd"))
    cluster.wait_for_nodes()
    try:
        klass = make_class(tmp_path / "class", 2, tmp_path / "log.jsonl", 0.1)
        out, progress = tmp_path / "out", Recorder()
        outcome = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, out, cache_dir,
                            progress=progress, similarity=False,
                            engine=engine(rubrics, cache_dir, cluster, gpus="none", pin_node=odd.node_id))
        ray.init(address=cluster.address, log_to_driver=False)
        findings = {f.topic: f for f in check_cluster("20CSEL76", None, cache_dir, "grader-sandbox:slim")}
    finally:
        ray.shutdown()
        cluster.remove_node(odd)
    # grader doctor --cluster names the odd node and what differs, and nothing on the others
    assert findings["Ray authentication"].state == "problem"  # these test nodes run without a token
    odd_finding = next(f for t, f in findings.items() if odd.node_id[:8] in t)
    assert odd_finding.state == "problem" and "harness: node " in odd_finding.detail
    for node in cluster.grading_nodes:
        assert "harness" not in next(f for t, f in findings.items() if node.node_id[:8] in t).detail
    assert outcome.graded == 0 and len(outcome.internal_errors) == 2 and stored_rows(out) == []
    for problem in outcome.internal_errors:
        assert f"({odd.node_id[:8]}) refused" in problem
        assert "NodeRefused" in problem and "differs from the driver in harness: node " in problem
        assert "grader:" not in problem and "rubric:" not in problem  # only what differs is named
    assert not (tmp_path / "log.jsonl").exists()  # nothing ran


# ------------------------------------------------------------------ the Docker sandbox on a cluster

def node_containers(client, node_id: str) -> list[dict]:
    """The node's job containers as the engine lists them (Id, State, Labels)."""
    return client.api.containers(all=True, filters={"label": f"{NODE_LABEL}={node_id}"})


def test_docker_sandbox_batch_on_the_cluster(cluster, client, image, rubrics, cache_dir, tmp_path):
    klass = make_class(tmp_path / "class", 3, tmp_path / "log.jsonl", 0.1, plot=True)
    out = tmp_path / "out"
    outcome = run_batch(class_jobs(klass, [PROGRAM], "20CSEL76", "quick"), rubrics, None, out, cache_dir,
                        similarity=False,
                        engine=engine(rubrics, cache_dir, cluster, sandbox="docker", image=image, gpus="none"))
    assert outcome.internal_errors == [] and outcome.graded == 3
    for r in outcome.results:
        assert r.status == Status.ok, r.status_message
        assert r.run.sandbox == "docker" and r.run.device == "cpu" and "marker" in r.run.stdout
        assert r.run.protections["cpu"].startswith("1 CPU core")  # the container's quota is the task's num_cpus
        assert r.run.artifacts and all((artifacts_dir(out, r.grade_key) / a).is_file() for a in r.run.artifacts)
    assert not any(node_containers(client, n.node_id) for n in cluster.grading_nodes)


def test_sweep_removes_each_nodes_containers_of_the_batch_and_of_dead_owners(cluster, client, image):
    a, b = (n.node_id for n in cluster.grading_nodes)
    dead_owner = OWNER.rsplit(":", 2)[0] + ":999999:1"

    def leave(node: str, batch: str, owner: str = OWNER):
        return client.containers.create(image, ["sleep", "300"], network_mode="none",
                                        labels={JOB_LABEL: owner, NODE_LABEL: node, BATCH_LABEL: batch}).id

    cancelled = [leave(a, "b-cancelled"), leave(b, "b-cancelled"), leave(b, "b-earlier", dead_owner)]
    running = leave(a, "b-running")  # another batch, its owner alive: not touched
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        reports = {r.node_id: r for r in sweep_cluster("b-cancelled")}
        assert reports[a].removed == 1 and reports[b].removed == 2
        assert [c["Id"] for c in node_containers(client, a)] == [running] and node_containers(client, b) == []
    finally:
        ray.shutdown()
        for cid in cancelled + [running]:
            try:
                client.api.remove_container(cid, force=True)
            except Exception:  # noqa: BLE001 - already removed by the sweep
                pass


def test_ctrl_c_cancels_every_task_and_leaves_no_container_on_any_node(cluster, client, image, cache_dir, tmp_path):
    klass = make_class(tmp_path / "class", 4, tmp_path / "log.jsonl", 300.0)
    driver = cli_batch(klass, tmp_path / "out", cluster.address, "--sandbox", "docker", "--image", image,
                       "--gpus", "none", "--cache", str(cache_dir))
    nodes = [n.node_id for n in cluster.grading_nodes]

    def running() -> list:
        return [c for n in nodes for c in node_containers(client, n) if c["State"] == "running"]

    wait_for(lambda: len(running()) == 4 or driver.poll() is not None, 180, "four job containers to run")
    assert driver.poll() is None, driver.stdout.read()
    assert len({c["Labels"][NODE_LABEL] for c in running()}) == 2  # on both nodes
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "Interrupted" in output
    assert all(node_containers(client, n) == [] for n in nodes), output


# ------------------------------------------------------------------ Ray is optional; clear errors

def test_without_ray_cluster_says_how_to_install_it_and_plain_batch_never_imports_it(tmp_path):
    klass = make_class(tmp_path / "class", 1, tmp_path / "log.jsonl", 0.0)
    no_ray = ("import sys; sys.modules['ray'] = None; from grader.cli import app; "
              "assert 'ray' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]; app()")
    done = subprocess.run([sys.executable, "-c", no_ray, "batch", str(klass), "--cluster", "auto"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--cluster needs Ray" in done.stderr and 'pip install -e ".[cluster]"' in done.stderr


def test_cluster_options_that_cannot_work_are_named(cluster, rubrics, cache_dir):
    from grader.cluster import ClusterError

    with pytest.raises(ClusterError, match="Ray chooses each job's GPU"):
        engine(rubrics, cache_dir, cluster, gpus="0,1")
    with pytest.raises(ClusterError, match="no Ray cluster answers at '127.0.0.1:1'"):
        RayEngine(rubrics, cache_dir, ClusterOptions(address="127.0.0.1:1"))


def test_a_forced_cancel_leaves_the_container_and_the_sweep_removes_it(cluster, client, image, rubrics, cache_dir,
                                                                       tmp_path):
    klass = make_class(tmp_path / "class", 2, tmp_path / "log.jsonl", 300.0)
    eng = engine(rubrics, cache_dir, cluster, sandbox="docker", image=image, gpus="none")
    nodes = [n.node_id for n in cluster.grading_nodes]
    try:
        refs = [eng.submit(job, grade_key(job, rubrics, cache_dir), tmp_path / job.student)
                for job in class_jobs(klass, [PROGRAM], "20CSEL76", "quick")]
        wait_for(lambda: sum(c["State"] == "running" for n in nodes for c in node_containers(client, n)) == 2,
                 120, "two job containers to run")
        for ref in refs:
            eng.ray.cancel(ref, force=True)  # kills the workers: the engine's containers live on
        eng.ray.wait(refs, num_returns=2, timeout=30)
        assert sum(len(node_containers(client, n)) for n in nodes) == 2
        eng.cancel()
        assert sum(r.removed for r in eng.swept) == 2
        assert all(node_containers(client, n) == [] for n in nodes)
    finally:
        eng.close()


def test_a_forced_cancel_of_a_local_sandbox_job_ends_its_process(cluster, rubrics, cache_dir, tmp_path):
    log = tmp_path / "log.jsonl"
    klass = make_class(tmp_path / "class", 1, log, 300.0)
    eng = engine(rubrics, cache_dir, cluster, gpus="none")

    def job_processes() -> list:  # the probe processes whose submission is this test's program
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if "grader.probe" in (p.info["cmdline"] or []) and str(log) in (Path(p.cwd()) / f"program{PROGRAM}.py").read_text():
                    found.append(p)
            except (psutil.Error, OSError):
                continue
        return found

    try:
        job = class_jobs(klass, [PROGRAM], "20CSEL76", "quick")[0]
        ref = eng.submit(job, grade_key(job, rubrics, cache_dir), tmp_path / "artifacts")
        wait_for(lambda: log_events(log) and job_processes(), 120, "the job to start")
        eng.ray.cancel(ref, force=True)  # kills the worker; Ray ends the processes it started too
        wait_for(lambda: not job_processes(), 20, "the job's process to end with its worker")
    finally:
        eng.close()
