"""Training loops of the program's own making: Keras' `train_on_batch`, recorded as a fit.

Many students train with a loop over batches instead of `model.fit`. Each model's calls
make one fit record in the trace, the same shape as a fit's: losses and metrics averaged
per epoch, an epoch being as many samples as the served training set holds (without a
served dataset, per window of WINDOW calls, and the record says so). The first samples the
loop trained on (up to KEPT_SAMPLES) stand for the fit's inputs, from which the measurement
reads the program's scaling. In quick mode, once `epochs_cap` epochs have passed, further
calls return the last result without training (the loop runs on, as the cap on `fit` lets it).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from grader.probe.trace import plain

WINDOW = 50
KEPT_SAMPLES = 2000
STEP_LOSSES = 5000  # each call's loss is kept, in order, for the first this many calls ("step_loss")


class BatchLoop:
    """One model's train_on_batch calls, as a fit record (`record`, appended to trace["fits"])."""

    def __init__(self, record: dict[str, Any], samples_per_epoch: int | None, metric_names: list[str],
                 epochs_cap: int | None):
        self.record = record
        self.samples_per_epoch = samples_per_epoch
        self.metric_names = metric_names
        self.epochs_cap = epochs_cap
        self.pending: dict[str, list[float]] = {}
        self.samples = 0
        self.kept = FirstSamples()
        self.last: Any = None
        if samples_per_epoch is None:
            record["history_unit"] = f"{WINDOW} train_on_batch calls (no served training set to count epochs by)"

    @property
    def capped(self) -> bool:
        return bool(self.epochs_cap) and self.record["epochs_run"] >= self.epochs_cap

    def step(self, train: Callable[[], Any], n: int | None, x: Any = None, losses: Any = None,
             cap: bool = True) -> tuple[Any, bool]:
        """Runs one call (train() unless capped) on n samples (x, when given, kept for the
        scaling); its losses are `losses` or else its result. Returns (its result, whether an
        epoch ended)."""
        if cap and self.capped and self.last is not None:
            self.record["epochs_capped_to"] = self.epochs_cap
            return self.last, False
        self.last = result = train()
        self.record["steps"] += 1
        self.samples += n or 0
        self.kept.add(x)
        named = self.named(result if losses is None else losses)
        for name, value in named.items():
            self.pending.setdefault(name, []).append(value)
        steps = self.record.setdefault("step_loss", [])
        if "loss" in named and len(steps) < STEP_LOSSES:
            steps.append(plain(named["loss"]))
        ended = (self.samples >= self.samples_per_epoch * (self.record["epochs_run"] + 1)
                 if self.samples_per_epoch and n else self.record["steps"] % WINDOW == 0)
        if ended:
            self.close_epoch()
        return result, ended

    def close_epoch(self) -> None:
        for name, values in self.pending.items():
            self.record["history"].setdefault(name, []).append(plain(float(np.mean(values))))
        self.pending = {}
        self.record["epochs_run"] += 1

    def finish(self) -> None:
        """After the program: a loop shorter than one epoch still shows its losses."""
        if self.pending and not self.record["history"]:
            self.close_epoch()
            self.record["epochs_run"] = 0

    def named(self, result: Any) -> dict[str, float]:
        """train_on_batch's result by name: a dict, a list (loss, then the compiled metrics) or a loss."""
        if isinstance(result, dict):
            items = result.items()
        elif isinstance(result, (list, tuple)):
            names = ["loss"] + self.metric_names if len(result) == len(self.metric_names) + 1 else ["loss"]
            items = zip(names, result)
        else:
            items = [("loss", result)]
        out = {}
        for name, value in items:
            try:
                out[str(name)] = float(value)
            except (TypeError, ValueError):
                continue
        return out

    def inputs(self) -> np.ndarray | None:
        """The first samples trained on, for reading the program's scaling."""
        return self.kept.joined()


class FirstSamples:
    """The first KEPT_SAMPLES model inputs seen, batch by batch (a loop's own batches)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, x: Any) -> None:
        if not hasattr(x, "shape") or sum(len(k) for k in self.parts) >= KEPT_SAMPLES:
            return
        try:
            self.parts.append(np.asarray(x)[:KEPT_SAMPLES])
        except Exception:  # inputs the probe cannot read as an array (a traced step's symbolic tensor)
            return

    def joined(self) -> np.ndarray | None:
        """The samples as one array, None when there are none or their shapes differ."""
        if not self.parts or len({k.shape[1:] for k in self.parts}) != 1:
            return None
        return np.concatenate(self.parts)[:KEPT_SAMPLES]
