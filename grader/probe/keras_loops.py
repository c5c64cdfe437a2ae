"""Custom training loops: `tf.GradientTape` with `optimizer.apply_gradients`, recorded as a fit.

A student who writes their own training step never calls `fit`. Each optimizer's
apply_gradients calls outside fit make one fit record (grader/probe/keras_batches.BatchLoop)
for the model whose trainable variables it updates: a step per call, the samples of the
model's last training call, and the value of the last Keras loss object called before the
step. A step compiled with `tf.function` runs Python only while it is traced: its steps are
read from the optimizer's own counter afterwards, and its losses cannot be observed (the
record says so, and the loss checks do not judge what they cannot see).
"""

from __future__ import annotations

import functools
import gc
import importlib
import threading
from typing import Any

import numpy as np

from grader.probe.keras_batches import BatchLoop, FirstSamples

OPTIMIZER_MODULES = ("{}.optimizers", "{}.optimizers.legacy")  # every optimizer class there inherits the patched ones
LOSS_UNOBSERVED = "a training step compiled with tf.function: its losses cannot be observed"


class TapeLoops:
    def __init__(self, probe: Any):
        self.probe = probe
        self.loops: dict[int, tuple[Any, BatchLoop]] = {}  # id(optimizer) -> (optimizer, its loop)
        self.loss: Any = None  # the last loss a Keras loss object returned outside fit
        self.loss_object: Any = None  # and that object (its name is the loop's loss)
        self.batch: int | None = None  # samples in the model's last training call
        self.inputs: dict[int, FirstSamples] = {}  # id(model) -> first training inputs seen
        self.local = threading.local()

    def install(self, packages: tuple[str, ...]) -> None:
        """Patches apply_gradients of each Keras package's optimizer bases and its Loss.__call__."""
        for package in packages:
            for template in OPTIMIZER_MODULES:
                try:
                    adam = importlib.import_module(template.format(package)).Adam
                except (ImportError, AttributeError):
                    continue
                for cls in adam.__mro__:
                    if "apply_gradients" in cls.__dict__ and not getattr(cls.__dict__["apply_gradients"],
                                                                          "_grader_probe", False):
                        cls.apply_gradients = self._wrap_apply(cls.__dict__["apply_gradients"])
            try:
                loss_base = importlib.import_module(f"{package}.losses").Loss
            except (ImportError, AttributeError):
                continue
            for cls in loss_base.__mro__:
                if "__call__" in cls.__dict__ and cls is not object and not getattr(cls.__dict__["__call__"],
                                                                                    "_grader_probe", False):
                    cls.__call__ = self._wrap_loss(cls.__dict__["__call__"])
                    break

    def outside_fit(self) -> bool:
        return self.probe.phase == "running the program"

    def _wrap_apply(self, original):
        loops = self

        @functools.wraps(original)
        def apply_gradients(optimizer, grads_and_vars, *args, **kwargs):
            depth = getattr(loops.local, "depth", 0)
            if depth or not loops.outside_fit():  # fit's own steps, or a base class's part of the call
                return original(optimizer, grads_and_vars, *args, **kwargs)
            pairs = list(grads_and_vars)
            loop = loops.loop_of(optimizer, [v for _, v in pairs])
            loops.local.depth = depth + 1
            try:
                call = lambda: original(optimizer, pairs, *args, **kwargs)  # noqa: E731
                if loop is None:
                    return call()
                return loop.step(call, loops.batch, losses=loops.loss_value(), cap=False)[0]
            finally:
                loops.local.depth = depth

        apply_gradients._grader_probe = True
        return apply_gradients

    def _wrap_loss(self, original):
        loops = self

        @functools.wraps(original)
        def call(loss, *args, **kwargs):
            value = original(loss, *args, **kwargs)
            if loops.outside_fit():
                loops.loss, loops.loss_object = value, loss
            return value

        call._grader_probe = True
        return call

    def loss_value(self) -> dict[str, float] | None:
        """The last loss as a number, if it is one (a traced step's is symbolic)."""
        value, self.loss = self.loss, None
        try:
            return {"loss": float(np.asarray(value))} if value is not None else {}
        except Exception:
            return {}

    def loop_of(self, optimizer: Any, variables: list[Any]) -> BatchLoop | None:
        """The optimizer's loop, started on its first step for the model it trains."""
        known = self.loops.get(id(optimizer))
        if known is not None:
            return known[1]
        model = self.model_of(variables)
        if model is None:
            return None
        probe = self.probe
        mid = probe.model_id(model)
        record: dict[str, Any] = {"model": mid, "loop": "GradientTape", "epochs_requested": None,
                                  "batch_size": self.batch, "validation": None, "inputs": {}, "history": {},
                                  "epochs_run": 0, "steps": 0, "completed": True, "callbacks": []}
        served = next(iter(probe.served.values()), None)
        loop = BatchLoop(record, len(served.y_train) if served else None, [], None)
        self.loops[id(optimizer)] = (optimizer, loop)
        probe.trace["fits"].append(record)
        entry = probe.trace["models"][mid]
        if not entry.get("loss") and self.loss_object is not None:  # the loop's loss stands for compile's
            entry["loss"] = getattr(self.loss_object, "name", None) or type(self.loss_object).__name__
        probe.describe(model)
        probe.trace.save()
        return loop

    def model_of(self, variables: list[Any]) -> Any:
        """The model (known to the probe, else any Keras model alive) holding most of the variables."""
        wanted = {id(v) for v in variables}
        candidates = list(self.probe.models.values())
        bases = tuple(m.Model for m in self.probe.modules)
        if not any(wanted & {id(v) for v in getattr(m, "trainable_variables", [])} for m in candidates):
            candidates = [o for o in gc.get_objects() if isinstance(o, bases)]
        inner = {id(getattr(m, "_functional", None)) for m in candidates}  # a Sequential's own graph
        candidates = [m for m in candidates if id(m) not in inner]
        scored = [(len(wanted & {id(v) for v in m.trainable_variables}), i) for i, m in enumerate(candidates)]
        best = max(scored, default=(0, -1))
        return candidates[best[1]] if best[0] else None

    def saw_training_call(self, model: Any, x: Any) -> None:
        """A call of the model with training=True outside fit: its batch size, and its first
        inputs (for the program's scaling)."""
        self.batch = int(x.shape[0]) if getattr(x, "shape", None) is not None and x.shape[0] is not None else None
        self.inputs.setdefault(id(model), FirstSamples()).add(x)

    def finish(self) -> None:
        """After the program: steps a traced step took (the optimizer's counter), losses closed."""
        for optimizer, loop in self.loops.values():
            try:
                steps = int(np.asarray(optimizer.iterations))
            except Exception:
                steps = loop.record["steps"]
            if steps > loop.record["steps"] + 1:  # Python ran only while the step was traced
                loop.record.update(steps=steps, loss_unobserved=LOSS_UNOBSERVED)
                if loop.samples_per_epoch and self.batch:
                    loop.record["epochs_run"] = steps * self.batch // loop.samples_per_epoch
                loop.record["history"] = {}
                loop.pending = {}
            loop.finish()
        for mid, model in self.probe.models.items():
            kept = self.inputs.get(id(model))
            x = kept.joined() if kept and mid not in self.probe.fit_inputs else None
            if x is not None:
                self.probe.fit_inputs[mid] = x
