"""Grading on several machines: each job one Ray task on whichever node Ray picks.

The driver (`grader batch --cluster`) stays the only writer of the gradebook; a node grades
the files that travel with its task, checks that its grader, rubric, image and data are the
ones the driver keyed the job with, and sends back the result as JSON with a size-capped
archive of its artifacts. Ray is an optional extra (`pip install -e ".[cluster]"`), imported
only here and only when a cluster is asked for.
"""

from __future__ import annotations

INSTALL_HINT = 'python3 -m pip install -e ".[cluster]"   (or: python3 -m pip install "ray==2.60.*")'


class ClusterError(Exception):
    """The cluster cannot be used as asked; the message says why and what to do."""


def require_ray():
    """The `ray` module, or ClusterError naming how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray
