"""What a similarity run hands on: the submissions it read, the pairs it compared, and what
it flagged for faculty review. Plain pydantic models, written as JSON beside the reports
(similarity/program<N>.json) and read back by the report step, which puts the flags on
the students' mark sheets. Similarity never changes a mark."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Submission(BaseModel):
    """One student's file for the program, as the similarity run read it."""

    student: str  # USN
    name: str = ""
    file: str  # the submission's path, as given
    content_hash: str  # the job's content hash: a flag applies to results of this content only
    code_hash: str  # sha256 of the code compared (a notebook's code cells, magics left out)
    lines: int = 0  # lines of code compared
    own_fingerprints: int = 0  # fingerprints left once the manual's code is taken out
    code: str = ""  # the code compared (in the JSON only for students in flagged pairs: the pages)


class Span(BaseModel):
    """[start, end) character offsets into a submission's compared code."""

    start: int
    end: int


class Pair(BaseModel):
    """Two students' submissions compared exactly (copydetect's compare_files)."""

    a: str  # USN; a < b
    b: str
    similarity: float  # the larger of the two shares below, 0..1
    share_a: float  # of a's own code (the manual's taken out), the share found in b
    share_b: float
    shared_lines_a: int  # lines of a's code with shared code on them
    shared_lines_b: int
    estimate: float  # the ranking's figure: shared fingerprints / the smaller file's
    identical: bool = False  # the same code, character for character
    flagged: bool = False  # at or above the threshold, or identical
    page: str | None = None  # side-by-side page, relative to the report folder
    spans_a: list[Span] = Field(default_factory=list)  # shared code in a (listed pairs only)
    spans_b: list[Span] = Field(default_factory=list)
    manual_a: list[Span] = Field(default_factory=list)  # the manual's code in a (not counted)
    manual_b: list[Span] = Field(default_factory=list)

    @property
    def shared_lines(self) -> int:
        return min(self.shared_lines_a, self.shared_lines_b)

    def other(self, usn: str) -> str:
        return self.b if usn == self.a else self.a


class SimilarityReport(BaseModel):
    """One program's similarity run over a class."""

    course: str
    program: int
    title: str = ""
    generated: str = ""
    threshold: float
    min_shared_lines: int
    noise: int
    guarantee: int
    boilerplate: list[str] = Field(default_factory=list)  # the manual's code taken out: file names
    submissions: list[Submission] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # 'USN: why' for files that could not be read
    manual_only: list[str] = Field(default_factory=list)  # USNs whose code is all the manual's
    pairs: list[Pair] = Field(default_factory=list)  # compared exactly, most similar first
    pairs_total: int = 0  # pairs of submissions in the class
    fingerprinted: int = 0  # distinct files fingerprinted (identical files share one)
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def submission(self, usn: str) -> Submission:
        return next(s for s in self.submissions if s.student == usn)
