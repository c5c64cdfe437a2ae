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

import pytest

from grader.batch import Progress, run_batch
from grader.course import load_rubrics
from grader.models import GradeResult, Status
from grader.submissions import class_jobs

if os.environ.get("GRADER_REQUIRE_CLUSTER") == "1":
    import ray  # noqa: F401  (CI: a missing Ray is a failure, not a skip)
else:
    pytest.importorskip("ray", reason="Ray is not installed (the 'cluster' extra)")

from ray.cluster_utils import Cluster  # noqa: E402

from grader.cluster.engine import ClusterOptions, RayEngine  # noqa: E402

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


def program(log: Path, sleep_s: float) -> str:
    """A student program that logs its start and end (and the GPU it sees) to `log`."""
    return textwrap.dedent(f"""
        import json, os, sys, time
        def note(event):
            with open({str(log)!r}, "a") as f:
                f.write(json.dumps({{"student": sys.argv[0] and os.path.basename(os.path.dirname(os.path.abspath(__file__))),
                                     "event": event, "t": time.time(),
                                     "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}}) + "\\n")
        note("start")
        time.sleep({sleep_s})
        note("end")
        print("marker", {str(log.name)!r})
    """)


def make_class(root: Path, students: int, log: Path, sleep_s: float) -> Path:
    """A class whose every student submits the same logging program (their USN in a comment)."""
    for i in range(students):
        usn = f"1GA20CS{i + 1:03d}"
        (root / usn).mkdir(parents=True)
        (root / usn / f"program{PROGRAM}.py").write_text(f"# {usn}\n" + program(log, sleep_s))
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
    klass = make_class(tmp_path / "class", 4, log, 0.2)
    (klass / "1GA20CS001" / "notes.txt").write_text("travels with the job")
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
