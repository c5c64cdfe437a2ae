"""Shared fixtures: rubrics, a dataset cache per session, and grading one file for real
(static analysis, the local sandbox running TensorFlow, the harness, scoring)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from grader.course import load_rubrics
from grader.models import GradeResult
from grader.pipeline import grade
from grader.runners.local import LocalRunner
from grader.submissions import single_job

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A dataset cache with nothing staged: every job is served the synthetic stand-ins."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def rubrics():
    return load_rubrics()


@pytest.fixture(scope="session")
def local_runner():
    """One local runner for the session, as a batch keeps one: its clean sandbox servers serve
    every test's re-measurements (each in a fork of its own)."""
    runner = LocalRunner()
    yield runner
    runner.close()


@pytest.fixture()
def runner(local_runner):
    """The sandbox a test's jobs run in: the local one (tests/test_docker_trust.py overrides it)."""
    return local_runner


@pytest.fixture()
def grade_file(tmp_path, cache_dir, rubrics, runner):
    """grade_file(source_path_or_text, program, **limit_overrides) -> GradeResult."""

    def run(source, program: int = 3, name: str | None = None, rubrics=rubrics, mode="quick", **limits) -> GradeResult:
        folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        if isinstance(source, Path):
            entry = folder / (name or f"program{program}{source.suffix}")
            shutil.copy(source, entry)
        else:
            entry = folder / (name or f"program{program}.py")
            entry.write_text(source)
        quick = rubrics.programs[program].limits.quick
        for key, value in limits.items():
            target = rubrics.programs[program].limits if hasattr(rubrics.programs[program].limits, key) else quick
            setattr(target, key, value)
        job = single_job(entry, program, "20CSEL76", mode)
        return grade(job, rubrics, runner, cache_dir, tmp_path / "artifacts")

    return run


def check(result: GradeResult, check_id: str):
    return next(c for c in result.checks if c.id == check_id)
