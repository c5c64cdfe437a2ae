"""Reports: one HTML mark sheet per student and program, the class summary, marks.csv."""

from grader.reports.csvout import write_marks_csv
from grader.reports.curves import training_curve_png
from grader.reports.html import sheet_relpath, write_index, write_sheet

__all__ = ["sheet_relpath", "training_curve_png", "write_index", "write_marks_csv", "write_sheet"]
