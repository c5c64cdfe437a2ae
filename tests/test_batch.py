"""`grader batch`: a class graded in parallel into the SQLite gradebook; re-runs reuse
finished results; an interrupted batch resumes; reports and marks.csv come out."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES
from grader.batch import run_batch
from grader.models import Status
from grader.runners.local import LocalRunner
from grader.submissions import class_jobs

pytestmark = pytest.mark.slow


@pytest.fixture()
def klass(tmp_path) -> Path:
    root = tmp_path / "class"
    for usn, src in [("1GA20CS001", FIXTURES / "manual" / "program3.py"),
                     ("1GA20CS002", FIXTURES / "bad" / "syntax_error.py"),
                     ("1GA20CS003", FIXTURES / "bad" / "missing_package.py")]:
        (root / usn).mkdir(parents=True)
        shutil.copy(src, root / usn / "program3.py")
    (root / "1GA20CS004").mkdir()  # submitted nothing
    (root / "roster.csv").write_text("usn,name\n1GA20CS001,Asha Rao\n1GA20CS002,Vikram Shetty\n")
    return root


def test_batch_grades_stores_reports_and_reuses(klass, tmp_path, rubrics, cache_dir):
    out = tmp_path / "reports"
    jobs = class_jobs(klass, [3], "20CSEL76", "quick")
    first = run_batch(jobs, rubrics, LocalRunner(), out, cache_dir, jobs_in_parallel=2)
    assert first.graded == 4 and first.reused == 0
    by_usn = {r.student: r for r in first.results}
    assert by_usn["1GA20CS001"].status == Status.ok and by_usn["1GA20CS001"].name == "Asha Rao"
    assert by_usn["1GA20CS002"].status == Status.error
    assert by_usn["1GA20CS004"].status == Status.rejected

    with sqlite3.connect(out / "gradebook.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4
        assert db.execute("SELECT COUNT(*) FROM checks WHERE grade_key = ?",
                          (by_usn["1GA20CS001"].grade_key,)).fetchone()[0] == len(rubrics.program(3).checks)
    rows = list(csv.DictReader((out / "marks.csv").open()))
    assert [r["usn"] for r in rows] == ["1GA20CS001", "1GA20CS002", "1GA20CS003", "1GA20CS004"]
    assert rows[0]["execution"] == "20" and rows[0]["viva"] == ""
    index = (out / "index.html").read_text()
    for usn in by_usn:
        assert usn in index and (out / usn / "program3.html").is_file()

    # nothing changed: nothing graded again
    started = time.monotonic()
    second = run_batch(class_jobs(klass, [3], "20CSEL76", "quick"), rubrics, LocalRunner(), out, cache_dir)
    assert second.graded == 0 and second.reused == 4
    assert time.monotonic() - started < 10

    # one student fixes their program: only that one is graded again
    shutil.copy(FIXTURES / "manual" / "program3.py", klass / "1GA20CS002" / "program3.py")
    third = run_batch(class_jobs(klass, [3], "20CSEL76", "quick"), rubrics, LocalRunner(), out, cache_dir)
    assert third.graded == 1 and third.reused == 3
    assert {r.student: r for r in third.results}["1GA20CS002"].status == Status.ok


def test_interrupted_batch_keeps_finished_results_and_resumes(klass, tmp_path, cache_dir):
    out = tmp_path / "reports"
    for usn in ("1GA20CS005", "1GA20CS006"):  # slow jobs that will be cut off
        (klass / usn).mkdir()
        (klass / usn / "program3.py").write_text("import time\ntime.sleep(25)\n")
    jobs_tmp = tmp_path / "jobs"  # the sandboxes' folders, so that leftovers can be told apart
    jobs_tmp.mkdir()
    env = dict(os.environ, GRADER_CACHE=str(cache_dir), TMPDIR=str(jobs_tmp))
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(klass), "--program", "3", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    db_path = out / "gradebook.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db_path.exists():
            with sqlite3.connect(db_path) as db:
                if db.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 2:
                    break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    assert "Interrupted" in output
    with sqlite3.connect(db_path) as db:
        done = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        statuses = {r[0] for r in db.execute("SELECT status FROM results")}
    assert 2 <= done < 6
    assert "killed" not in statuses  # interrupted jobs are not stored as results
    leftover = subprocess.run(["pgrep", "-f", str(jobs_tmp)], capture_output=True, text=True).stdout.split()
    assert leftover == []  # no sandbox left running
    assert list(jobs_tmp.iterdir()) == []  # and no job folder left behind

    # run again: the finished results are reused, the rest graded
    rubric_env = dict(env)
    again = subprocess.run(cmd, env=rubric_env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"reused {done}" in again.stdout
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6


class FailingFor(LocalRunner):
    """The real local runner, except that the runner itself breaks for one student."""

    def __init__(self, student: str):
        super().__init__()
        self.student = student

    def run(self, job, plan, artifacts_to):
        if job.student == self.student:
            raise RuntimeError("disk full")
        return super().run(job, plan, artifacts_to)


def test_a_grader_fault_costs_one_job_and_is_retried(tmp_path, rubrics, cache_dir):
    root = tmp_path / "class"
    for usn in ("1GA20CS101", "1GA20CS102"):
        (root / usn).mkdir(parents=True)
        (root / usn / "program3.py").write_text("print('hello')\n")
    out = tmp_path / "reports"
    first = run_batch(class_jobs(root, [3], "20CSEL76", "quick"), rubrics, FailingFor("1GA20CS101"), out, cache_dir)
    assert [r.student for r in first.results] == ["1GA20CS102"]
    assert first.internal_errors == ["1GA20CS101 program 3: RuntimeError: disk full"]
    second = run_batch(class_jobs(root, [3], "20CSEL76", "quick"), rubrics, LocalRunner(), out, cache_dir)
    assert (second.graded, second.reused) == (1, 1)
