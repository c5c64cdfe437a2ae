"""Grades deep-learning lab submissions against reference harnesses and the course's rubric."""

__version__ = "0.1.0"
