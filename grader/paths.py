"""Where the project's data folders live (the package is installed in editable mode)."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = Path(os.environ.get("GRADER_PROJECT", PACKAGE_DIR.parent))
RUBRICS_DIR = PROJECT_DIR / "rubrics"
REFERENCE_DIR = PROJECT_DIR / "reference"
