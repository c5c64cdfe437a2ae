"""Quick mode's training-time budget, shared by the Keras and the PyTorch probes.

A quick preview bounds training by epochs (``epochs_cap``) and also by time: the rubric's
``limits.quick.train_budget_s`` seconds of training for the whole run. When they are used,
training stops cleanly where it is (Keras: ``model.stop_training`` after the current batch,
also inside the first epoch; PyTorch: the current pass over the DataLoader ends after the
current batch), the epochs and batches that finished are kept, and the model is measured as
it is. A full run has no budget: the program trains as written.

Keras counts the time spent inside ``fit`` (a program that does other work between two fits
is not charged for it); PyTorch has no fit, so its clock runs from the first optimizer step.
"""

from __future__ import annotations

import time
from typing import Any


class TrainBudget:
    """Seconds of training a quick run may use, and how many are used."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.used = 0.0  # closed intervals
        self.started: float | None = None  # open interval, when the clock runs
        self.spent_after: float | None = None  # seconds used when the budget ran out

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def pause(self) -> None:
        if self.started is not None:
            self.used += time.monotonic() - self.started
            self.started = None

    def elapsed(self) -> float:
        running = time.monotonic() - self.started if self.started is not None else 0.0
        return self.used + running

    def spent(self) -> bool:
        """Whether the budget is used up (remembers when it first was)."""
        if self.spent_after is None and self.elapsed() >= self.seconds:
            self.spent_after = round(self.elapsed(), 1)
        return self.spent_after is not None

    def stop_record(self, epoch: int, batches: int) -> dict[str, Any]:
        """What a fit record keeps about the stop (field "stopped_by_budget")."""
        return {"budget_s": self.seconds, "after_s": self.spent_after, "epoch": epoch,
                "batches_in_epoch": batches}

    def cap_message(self, epoch: int, batches: int) -> str:
        """The cap as the sheet states it."""
        return (f"quick mode: training stopped after its time budget of {self.seconds:.0f} s, "
                f"in epoch {epoch} after {batches} batch(es); the model was measured as it was")


def from_session() -> TrainBudget | None:
    """The running quick session's budget (its config's ``train_budget_s``), or None; every
    probe of one session gets the same budget (kept on the session)."""
    from grader.probe import session

    current = session.CURRENT
    if current is None:
        return None
    if not hasattr(current, "train_budget"):
        config = current.config
        seconds = config.get("train_budget_s")
        quick = config.get("mode") == "quick" and bool(seconds)
        current.train_budget = TrainBudget(seconds) if quick else None
    return current.train_budget
