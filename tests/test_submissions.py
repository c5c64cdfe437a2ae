"""Finding submissions: program numbers from names, rosters, content hashes, rejections."""

from pathlib import Path

import pytest

from grader.submissions import SubmissionError, class_jobs, program_of, single_job


@pytest.mark.parametrize("name, n", [("program3.py", 3), ("Program_4.ipynb", 4), ("lab-03.py", 3),
                                     ("p7_chatbot.py", 7), ("cnn.py", None), ("program12.py", 12)])
def test_program_number_from_file_name(name, n):
    assert program_of(Path(name)) == n


def test_single_file_needs_a_program_number(tmp_path):
    f = tmp_path / "cnn.py"
    f.write_text("print(1)\n")
    with pytest.raises(SubmissionError, match="--program"):
        single_job(f, None, "20CSEL76", "quick")
    assert single_job(f, 3, "20CSEL76", "quick").program == 3


def test_folder_and_missing_path(tmp_path):
    (tmp_path / "program4.py").write_text("x = 1\n")
    job = single_job(tmp_path, None, "20CSEL76", "quick")
    assert (job.program, str(job.entry)) == (4, "program4.py")
    with pytest.raises(SubmissionError, match="no such file"):
        single_job(tmp_path / "nope.py", 3, "20CSEL76", "quick")


def test_class_jobs_roster_and_hash(tmp_path):
    for usn in ("1ga20cs001", "1GA20CS002"):
        (tmp_path / usn).mkdir()
        (tmp_path / usn / "program3.py").write_text("a = 1\n")
        (tmp_path / usn / "program4.py").write_text("b = 2\n")
    (tmp_path / "roster.csv").write_text("USN,Name\n1GA20CS001,Asha Rao\n")
    jobs = class_jobs(tmp_path, [3, 4], "20CSEL76", "quick")
    assert [(j.student, j.program) for j in jobs] == [("1GA20CS001", 3), ("1GA20CS001", 4),
                                                      ("1GA20CS002", 3), ("1GA20CS002", 4)]
    assert jobs[0].name == "Asha Rao" and jobs[2].name == ""
    assert jobs[0].content_hash == jobs[2].content_hash  # same files, same hash
    # editing program 4 does not change program 3's hash
    (tmp_path / "1GA20CS002" / "program4.py").write_text("b = 3\n")
    again = class_jobs(tmp_path, [3, 4], "20CSEL76", "quick")
    assert again[2].content_hash == jobs[2].content_hash and again[3].content_hash != jobs[3].content_hash


def test_rejections(tmp_path):
    (tmp_path / "program3.ipynb").write_text("{ not json")
    job = single_job(tmp_path / "program3.ipynb", None, "20CSEL76", "quick")
    assert "not JSON" in job.rejected_reason
    (tmp_path / "program4.ipynb").write_text('{"nbformat": 3, "cells": []}')  # nbformat 3 keeps cells in worksheets
    assert "missing an expected key: worksheets" in single_job(tmp_path / "program4.ipynb", None, "20CSEL76",
                                                               "quick").rejected_reason
    (tmp_path / "program5.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}')
    assert "no code cells" in single_job(tmp_path / "program5.ipynb", None, "20CSEL76", "quick").rejected_reason
    (tmp_path / "program6.txt").write_text("prose")
    assert "not a Python script" in single_job(tmp_path / "program6.txt", None, "20CSEL76", "quick").rejected_reason
