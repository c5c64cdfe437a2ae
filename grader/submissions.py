"""Finds submissions on disk and turns them into Jobs: which file is which program, who
the student is (folder named by USN, optional roster.csv), and a content hash."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

from grader.models import NOT_SUBMITTED, Job, Mode
from grader.paths import RUBRICS_DIR
from grader.probe.notebook import NotebookError, notebook_source

RUNNABLE = (".py", ".ipynb")
PROGRAM_NAME = re.compile(r"(?:program|prog|lab|exp|experiment|p)[\s_\-]*0*(\d{1,2})(?!\d)", re.I)
SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", "venv", ".venv", "node_modules"}
MAX_FILE_BYTES = 50 * 2**20
MAX_SIBLINGS = 50  # a single checked file brings at most this many small files beside it


class SubmissionError(ValueError):
    """The path given cannot be graded; the message says why and what to do."""


def program_of(path: Path) -> int | None:
    m = PROGRAM_NAME.search(path.stem)
    return int(m.group(1)) if m else None


def folder_files(folder: Path, files: list[Path] | None = None) -> list[Path]:
    """The files a job carries into the sandbox (small ones, no caches or VCS folders)."""
    if files is not None:
        return [folder / f for f in files]
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part in SKIP_DIRS for part in rel.parts) or not p.is_file() or p.is_symlink():
            continue
        if p.stat().st_size <= MAX_FILE_BYTES:
            out.append(p)
    return out


def content_hash(folder: Path, entry: Path, other_entries: set[Path], files: list[Path] | None = None) -> str:
    """Hash of the entry and the supporting files (not the student's other programs)."""
    h = hashlib.sha256()
    for p in folder_files(folder, files):
        if p in other_entries:
            continue
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    h.update(b"entry:" + str(entry.relative_to(folder)).encode())
    return h.hexdigest()


def rejection(entry: Path) -> str | None:
    """Why this file cannot be run at all, or None."""
    if entry.suffix not in RUNNABLE:
        return f"{entry.name} is not a Python script (.py) or a Jupyter notebook (.ipynb)"
    if entry.stat().st_size == 0:
        return f"{entry.name} is empty"
    if entry.suffix == ".ipynb":
        try:
            notebook_source(entry)
        except NotebookError as e:
            return str(e)
    return None


def entries_by_program(folder: Path) -> dict[int, Path]:
    """program number -> its file; a .py is preferred over a notebook of the same program."""
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir(), key=lambda p: (p.suffix != ".py", p.name)):
        n = program_of(p) if p.is_file() and p.suffix in RUNNABLE else None
        if n is not None and n not in found:
            found[n] = p
    return found


def sibling_files(entry: Path) -> list[Path]:
    """For a file checked on its own: it and the small data files beside it (images, CSVs),
    never the whole folder it happens to sit in (a home or /tmp)."""
    siblings = [p for p in sorted(entry.parent.iterdir())
                if p.is_file() and not p.is_symlink() and p != entry and p.suffix not in RUNNABLE
                and not p.name.startswith(".") and p.stat().st_size <= MAX_FILE_BYTES]
    return [Path(entry.name)] + [Path(p.name) for p in siblings[:MAX_SIBLINGS]]


def make_job(student: str, name: str, program: int, folder: Path, entry: Path | None,
             course: str, mode: Mode, others: set[Path] = frozenset(), files: list[Path] | None = None) -> Job:
    job = Job(student=student, name=name, program=program, course=course, mode=mode, folder=folder, files=files)
    if entry is None:
        job.rejected_reason = f"no file for program {program} (looked for program{program}.py or .ipynb)"
        job.content_hash = NOT_SUBMITTED
        return job
    job.entry = entry.relative_to(folder)
    job.rejected_reason = rejection(entry)
    job.content_hash = content_hash(folder, entry, set(others), files)
    return job


def single_job(path: Path, program: int | None, course: str, mode: Mode) -> Job:
    """`grader check PATH`: a script, a notebook, or a folder holding one."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_dir():
        candidates = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix in RUNNABLE]
        if not candidates:
            return make_job("self-check", "", program or 0, path, None, course, mode)
        by_program = entries_by_program(path)
        if program is None and len(by_program) == 1:
            program = next(iter(by_program))
        if program is None:
            if len(candidates) == 1:
                raise SubmissionError(f"{candidates[0].name}: cannot tell which program this is; pass --program N")
            raise SubmissionError(f"{path} holds several programs ({', '.join(p.name for p in candidates)}); "
                                  "pass --program N")
        entry = by_program.get(program) or (candidates[0] if len(candidates) == 1 else None)
        return make_job("self-check", "", program, path, entry, course, mode)
    program = program or program_of(path)
    if program is None:
        raise SubmissionError(f"{path.name}: cannot tell which program this is from its name; pass --program N")
    return make_job("self-check", "", program, path.parent, path, course, mode, files=sibling_files(path))


def read_roster(path: Path) -> dict[str, str]:
    """usn -> name from a roster.csv (columns usn and optionally name), or from the
    roster.csv in a folder; {} when a folder has none."""
    roster = Path(path) / "roster.csv" if Path(path).is_dir() else Path(path)
    if not roster.is_file():
        if Path(path).is_dir():
            return {}
        raise SubmissionError(f"{roster}: no such roster file")
    with roster.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        cols = {c.lower().strip(): c for c in rows.fieldnames or []}
        if "usn" not in cols:
            raise SubmissionError(f"{roster}: needs a 'usn' column (and optionally 'name')")
        return {r[cols["usn"]].strip().upper(): (r.get(cols.get("name", ""), "") or "").strip()
                for r in rows if (r.get(cols["usn"]) or "").strip()}


def other_course(folder: Path) -> bool:
    """A subfolder named after a course of rubrics/ (e.g. submissions/DLPRAC/) holds another
    course's class, graded with `grader batch submissions/DLPRAC --course DLPRAC`: it is not
    a student of this class."""
    return (RUBRICS_DIR / folder.name / "course.yaml").is_file()


def student_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and p.name not in SKIP_DIRS
                   and not p.name.startswith(".") and not other_course(p)), key=lambda p: p.name.upper())


def class_jobs(folder: Path, programs: list[int], course: str, mode: Mode) -> list[Job]:
    """`grader batch DIR`: one subfolder per student, named by USN."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder of student submissions")
    roster = read_roster(folder)
    students = student_folders(folder)
    if not students:
        raise SubmissionError(f"{folder}: no student subfolders (one per student, named by USN)")
    jobs = []
    for student_dir in students:
        usn = student_dir.name.upper()
        entries = entries_by_program(student_dir)
        for program in programs:
            others = {p for n, p in entries.items() if n != program}
            jobs.append(make_job(usn, roster.get(usn, ""), program, student_dir, entries.get(program),
                                 course, mode, others))
    return jobs


def programs_in(folder: Path) -> list[int]:
    """Every program number that some student in the class submitted."""
    if not Path(folder).is_dir():
        raise SubmissionError(f"{folder}: not a folder of student submissions")
    found = set()
    for student_dir in student_folders(Path(folder)):
        found.update(entries_by_program(student_dir))
    return sorted(found)
