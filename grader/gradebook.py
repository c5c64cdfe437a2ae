"""The embedded SQLite gradebook: every finished result, committed as soon as it exists.

A result is keyed by its grade key (content hash, program, rubric and harness versions,
mode, data), so an unchanged submission is never graded twice and an interrupted batch
resumes where it stopped.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from grader.models import GradeResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    grade_key    TEXT PRIMARY KEY,
    student      TEXT NOT NULL,
    program      INTEGER NOT NULL,
    course       TEXT NOT NULL,
    mode         TEXT NOT NULL,
    assessment   TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status       TEXT NOT NULL,
    total        REAL,
    graded_at    TEXT NOT NULL,
    result_json  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_student ON results (course, student, program);
CREATE TABLE IF NOT EXISTS checks (
    grade_key TEXT NOT NULL REFERENCES results (grade_key) ON DELETE CASCADE,
    check_id  TEXT NOT NULL,
    attribute TEXT NOT NULL,
    passed    INTEGER NOT NULL,
    score     REAL NOT NULL,
    PRIMARY KEY (grade_key, check_id)
);
"""


class Gradebook:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a finished result survives a power cut
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, grade_key: str) -> GradeResult | None:
        row = self.db.execute("SELECT result_json FROM results WHERE grade_key = ?", (grade_key,)).fetchone()
        return GradeResult.model_validate_json(row[0]) if row else None

    def known_keys(self, keys: list[str]) -> set[str]:
        with closing(self.db.cursor()) as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (k TEXT PRIMARY KEY)")
            cur.execute("DELETE FROM wanted")
            cur.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(k,) for k in keys])
            return {r[0] for r in cur.execute("SELECT grade_key FROM results JOIN wanted ON k = grade_key")}

    def put(self, result: GradeResult) -> None:
        """Stores one result and its checks in one transaction."""
        with closing(self.db.cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("DELETE FROM checks WHERE grade_key = ?", (result.grade_key,))
                cur.execute(
                    "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (result.grade_key, result.student, result.program, result.course, result.mode,
                     result.assessment, result.content_hash, result.status.value, result.total,
                     result.graded_at, result.model_dump_json()))
                cur.executemany(
                    "INSERT INTO checks VALUES (?,?,?,?,?)",
                    [(result.grade_key, c.id, c.attribute, int(c.passed), c.score) for c in result.checks])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
