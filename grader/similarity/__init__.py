"""Copied work across a class: which pairs of students' programs share more code than the
manual gave them. Fingerprints come from copydetect; the manual's code is taken out; all
pairs are ranked at once and the best compared exactly; flagged pairs go on the class
report, on side-by-side pages and, as flags for review, on both students' mark sheets.
Similarity never changes a mark.

    detect.find_similar(jobs, rubrics, program) -> SimilarityReport
    pages.write_similarity(report, out_dir)      -> similarity/program<N>.{json,html}, pair pages
    run.run_similarity(jobs, rubrics, out_dir)   -> both, per program
"""

from grader.similarity.models import Pair, SimilarityReport, Submission

__all__ = ["Pair", "SimilarityReport", "Submission"]
