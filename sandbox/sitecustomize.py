"""Imported at start-up by every Python process in the sandbox (it is on PYTHONPATH).

When several jobs share one GPU (`grader batch --per-gpu K`), the runner sets each job's
share in the environment; it is applied the moment the student's code imports PyTorch or
TensorFlow, before any memory is taken. Without those variables this does nothing.
"""

import importlib.abc
import os
import sys

FRACTION = os.environ.get("GRADER_GPU_MEMORY_FRACTION")  # PyTorch: share of the device
LIMIT_MB = os.environ.get("GRADER_GPU_MEMORY_MB")  # TensorFlow: a hard limit in MB


def _limit_torch(torch) -> None:
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(float(FRACTION), i)


def _limit_tensorflow(tf) -> None:
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.set_logical_device_configuration(
            gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(LIMIT_MB))])


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a hook once a top-level package has finished importing."""

    def __init__(self, hooks):
        self.hooks = hooks

    def find_spec(self, name, path=None, target=None):
        if name not in self.hooks:
            return None
        hook = self.hooks.pop(name)
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, run=run):
                    run(module)
                    try:
                        hook(module)
                    except Exception as e:  # a limit that cannot be applied must not break the program
                        print(f"[grader] GPU memory share not applied: {e}", file=sys.stderr)

                spec.loader.exec_module = exec_module
                return spec
        return None


_hooks = {}
if FRACTION:
    _hooks["torch"] = _limit_torch
if LIMIT_MB:
    _hooks["tensorflow"] = _limit_tensorflow
if _hooks:
    sys.meta_path.insert(0, _AfterImport(_hooks))
