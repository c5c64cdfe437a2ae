"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES

GRADER = [sys.executable, "-m", "grader.cli"]


def grader(*args, cwd=None, env=None):
    return subprocess.run(GRADER + list(args), capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
def test_check_json_is_the_result_object(tmp_path, cache_dir):
    r = grader("check", str(FIXTURES / "manual" / "program3.py"), "--json", "--out", str(tmp_path / "rep"),
               "--cache", str(cache_dir))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    for key in ("student", "program", "course", "mode", "status", "marks", "max", "checks", "flags", "dataset"):
        assert key in result
    assert result["program"] == 3 and result["mode"] == "quick" and result["status"] == "ok"
    assert result["max"] == {"writeup": 5, "execution": 20, "viva": 5}
    assert result["marks"]["viva"] is None
    assert result["dataset"] == "cifar10 (synthetic stand-in)"
    assert {"id", "passed", "score", "message", "hint"} <= set(result["checks"][0])
    assert (tmp_path / "rep" / "self-check" / "program3.html").is_file()


def test_check_prints_checks_marks_and_report_path(tmp_path):
    r = grader("check", str(FIXTURES / "bad" / "syntax_error.py"), "--program", "3", "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "✗" in out and "✓" in out and "syntax error" in out and "hint:" in out
    assert "Viva" in out and "pending" in out
    assert "Quick preview: at most 2 epoch(s), 5000 training and 1000 test samples" in out
    assert str(tmp_path / "rep" / "self-check" / "program3.html") in out.replace("\n", "")


def test_bad_input_gets_a_clear_error(tmp_path):
    r = grader("check", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "cnn.py").write_text("x = 1\n")
    r = grader("check", str(tmp_path / "cnn.py"))
    assert r.returncode == 2 and "--program" in r.stderr
    r = grader("check", str(tmp_path / "cnn.py"), "--program", "9")
    assert r.returncode == 2 and "no rubric for program 9" in r.stderr
    r = grader("batch", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_every_command_has_help():
    for cmd in (["--help"], ["check", "--help"], ["batch", "--help"], ["data", "--help"],
                ["data", "stage", "--help"], ["rubric", "validate", "--help"], ["similarity", "--help"]):
        r = grader(*cmd)
        assert r.returncode == 0 and "Usage" in r.stdout and len(r.stdout) > 200


def test_rubric_validate():
    r = grader("rubric", "validate")
    assert r.returncode == 0 and "valid" in r.stdout
