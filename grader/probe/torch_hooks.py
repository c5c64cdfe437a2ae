"""Instrumentation of PyTorch (and torchvision's datasets), installed when the program imports
torch (torchvision's datasets when it imports torchvision).

A PyTorch program has no fit(): training is the student's own loop. The probe sees it
through three hooks that leave the loop unchanged:

* every ``torch.optim`` optimizer: when one is created, the module whose parameters it
  updates (the model) is recorded; a global step hook counts its steps;
* ``Tensor.backward`` on a scalar (the loss): its value is attributed to the optimizer
  that steps next, averaged per epoch and per window of WINDOW steps;
* ``DataLoader`` iteration: one pass over a loader during which an optimizer stepped is
  one epoch of that optimizer's training (loops without a DataLoader get windows only).

Quick mode caps training without touching the student's code: once an optimizer has run
``epochs_cap`` epochs, every further pass in which it steps ends after that batch (over the
same DataLoader or a new one built each epoch), and a loader that served ``epochs_cap``
passes with backward() calls (a loop that forgot optimizer.step()) serves one batch per
pass from then on. Once the rubric's training-time budget is used (grader/probe/budget.py),
the pass under way ends after its current batch (counted as an epoch) and later passes are
capped the same way ("stopped_by_budget"); a loop over hand-made batches, with no DataLoader,
is bounded by the epoch loop and the time limit only. The program's epoch loop still runs
(and prints) to the end; the fit record says what was capped ("epochs_capped_to",
"truncated_passes", "cap").

A text model (Program 6: IMDB through ``keras.datasets.imdb.load_data``, served by the Keras
probe) is measured on the program's own padded test reviews, since only the program knows how
it pads and encodes them. The probe keeps the test split each load_data call returned (with
its arguments) and every 2-D integer batch the trained model is given in evaluation mode
(``model.eval()`` or under ``torch.no_grad()``). After the run, the last (else the first) run of
as many rows as there are test reviews is checked row by row against those reviews, of the
latest call first (a row's non-zero ids must be the review, or its start or end when
padded/truncated to a fixed length); only when every row matches are that call's labels
trusted by position and the final model re-run on the rows, which, with that call's
arguments, describe the model's inputs for its re-measurement outside the process. A test set
the program shuffled, subsampled or never evaluated is not measured: the measurement says why
and asks for a review.

``torchvision.datasets.CIFAR10`` / ``MNIST`` are served from the provider (no download, no
md5 check), with torchvision's semantics: ``.data`` uint8 NHWC, ``.targets`` a list, PIL
images through the student's ``transform``. After the program ends the last trained model
is measured on the served test images put through the student's own test-set transform.
"""

from __future__ import annotations

import functools
import sys
import weakref
from typing import Any

import numpy as np

from grader.probe.trace import Trace, plain

WINDOW = 50  # optimizer steps per loss window
STEP_LOSSES = 5000  # each step's loss is kept for the first this many steps ("step_loss")
IDLE = "running the program"
CONFIG_KEYS = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride",
               "padding", "input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
               "num_embeddings", "embedding_dim", "num_features", "p", "bias", "nonlinearity",
               "start_dim", "end_dim", "normalized_shape")
CHAT_ROWS, CHAT_BATCHES = 512, 64  # a chatbot's training rows kept for its loss outside the process
EVAL_ELEMENTS_CAP = 20_000_000  # token ids kept from evaluation batches (memory bound)
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Training:
    """One optimizer's training of one model, as it goes (becomes trace["fits"][i])."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        self.epoch_sum: Any = 0.0
        self.epoch_n = 0
        self.window_sum: Any = 0.0
        self.window_n = 0

    def on_step(self, pending: list[Any]) -> bool:
        """Counts a step and takes the losses computed since the last step of any optimizer;
        True when a loss window closed."""
        self.record["steps"] += 1
        if pending:
            loss = sum(pending) / len(pending)
            pending.clear()
            steps = self.record.setdefault("step_loss", [])
            if len(steps) < STEP_LOSSES:  # each step's loss, in order (a GAN's two curves)
                steps.append(as_float(loss))
            self.epoch_sum, self.epoch_n = self.epoch_sum + loss, self.epoch_n + 1
            self.window_sum, self.window_n = self.window_sum + loss, self.window_n + 1
        if self.record["steps"] % WINDOW:
            return False
        if self.window_n:
            self.record["loss_windows"]["loss"].append(as_float(self.window_sum / self.window_n))
        self.window_sum, self.window_n = 0.0, 0
        return True

    def end_epoch(self) -> None:
        self.record["epochs_run"] += 1
        if self.epoch_n:
            self.record["history"].setdefault("loss", []).append(as_float(self.epoch_sum / self.epoch_n))
        self.epoch_sum, self.epoch_n = 0.0, 0


class TorchProbe:
    def __init__(self, trace: Trace, served_loader, epochs_cap: int | None):
        self.trace = trace
        self.load_served = served_loader
        self.epochs_cap = epochs_cap
        self.phase = IDLE
        # every module made, in the order it was made (a dict keeps it; a collected one drops out)
        self.modules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.models: dict[int, Any] = {}  # strong refs by model id (index in trace["models"])
        self.trainings: dict[int, Training] = {}  # id(optimizer) -> its training
        self.optimizers: list[Any] = []  # strong refs: ids stay unique
        self.datasets: list[Any] = []  # served torchvision datasets, in creation order
        self.served: dict[str, Any] = {}
        self.first_inputs: dict[int, Any] = {}  # model id -> a sample of its first training batch
        self.capped_loaders: weakref.WeakSet = weakref.WeakSet()
        self.pending: list[Any] = []  # scalar losses backpropagated since the last step
        self.backwards = 0  # backward() calls so far: a pass with some is a training pass
        self.training_passes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loader -> count
        # per imdb.load_data call: (its arguments, (x_test, y_test) as it returned them)
        self.imdb_calls: list[tuple[dict[str, Any], tuple[Any, Any]]] = []
        self.eval_rows: dict[int, list[Any]] = {}  # model id -> integer batches fed in evaluation mode
        self.eval_elements = 0
        self.watch_eval = True  # off while the probe itself predicts
        self.last_loss_fn: str | None = None  # grad_fn of the last loss backpropagated
        self.torchvision_served = False  # its datasets are served once the program imports torchvision
        # A chatbot (the rubric's probe has a `chat` step): the integer batches it is trained on,
        # each with the targets its loss was given, for its loss outside the process.
        self.chat_rows: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.chat_pending: tuple[int, Any] | None = None  # (model id, batch) awaiting its targets

    # ------------------------------------------------------------ installation

    def install(self) -> None:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook
        from torch.utils.data import DataLoader
        from torch.utils.data.dataloader import _BaseDataLoaderIter

        import torch._dynamo  # noqa: F401  imported after TensorFlow (lazily, by optimizers) it crashes the process

        self.trace["frameworks"]["torch"] = torch.__version__
        probe = self
        module_init = torch.nn.Module.__init__

        @functools.wraps(module_init)
        def init(module, *args, **kwargs):
            module_init(module, *args, **kwargs)
            probe.modules[module] = None

        torch.nn.Module.__init__ = init
        self._wrap(torch.optim.Optimizer, "__init__", self._optimizer_init)
        register_optimizer_step_post_hook(self._after_step)
        self._wrap(torch.Tensor, "backward", self._backward)
        self._wrap(DataLoader, "__iter__", self._loader_iter)
        self._wrap(_BaseDataLoaderIter, "__next__", self._loader_next)
        self._watch_imdb()
        if self.chat:
            for name in ("cross_entropy", "nll_loss"):  # nn.CrossEntropyLoss / NLLLoss call these
                self._wrap(torch.nn.functional, name, self._loss_targets)
        tv = sys.modules.get("torchvision")  # torch is imported by torchvision's own import
        if tv is not None and not getattr(tv.__spec__, "_initializing", False):
            self._serve_torchvision()

    def on_import(self, name: str) -> None:
        """The session tells each installed probe which framework the program has just imported."""
        if name == "torchvision":
            self._serve_torchvision()

    @staticmethod
    def _wrap(cls: type, name: str, make) -> None:
        original = getattr(cls, name)
        setattr(cls, name, functools.wraps(original)(make(original)))

    def _watch_imdb(self) -> None:
        """Keeps the IMDB test split each call of the Keras probe's load_data hands the program,
        with its arguments (it calls provider.imdb_load_data at call time, so wrapping the
        provider's function sees it)."""
        from grader.probe import provider

        original = provider.imdb_load_data
        probe = self

        @functools.wraps(original)
        def imdb_load_data(*args, **kwargs):
            train, test = original(*args, **kwargs)
            probe.imdb_calls.append(({k: v for k, v in kwargs.items() if v is not None}, test))
            return train, test

        provider.imdb_load_data = imdb_load_data

    def _serve_torchvision(self) -> None:
        if self.torchvision_served:
            return
        self.torchvision_served = True
        try:
            import torchvision
            import torchvision.datasets as tvd
        except ImportError:  # torch without torchvision: nothing to serve
            return
        self.trace["frameworks"]["torchvision"] = torchvision.__version__
        for name, cls, classes in (("cifar10", tvd.CIFAR10, CIFAR_CLASSES), ("mnist", tvd.MNIST, [])):
            served_cls = self._served_class(name, cls, classes)
            for mod in (tvd, __import__(cls.__module__, fromlist=["_"])):
                setattr(mod, cls.__name__, served_cls)

    def _served_class(self, name: str, base: type, classes: list[str]) -> type:
        probe = self

        def __init__(ds, root, train=True, transform=None, target_transform=None, download=False, **kwargs):
            import torch
            from torchvision.datasets.vision import VisionDataset

            VisionDataset.__init__(ds, root, transform=transform, target_transform=target_transform)
            ds.train = train
            served = probe.serve(name)
            x, y = (served.x_train, served.y_train) if train else (served.x_test, served.y_test)
            labels = np.asarray(y).reshape(-1).astype(np.int64)
            if name == "mnist":  # torchvision keeps MNIST as tensors; its classes are class attributes
                ds.data, ds.targets = torch.from_numpy(x.copy()), torch.from_numpy(labels)
            else:
                ds.data, ds.targets = x.copy(), labels.tolist()
                ds.classes = list(classes)
                ds.class_to_idx = {c: i for i, c in enumerate(classes)}
            probe.datasets.append(ds)

        def download(ds) -> None:  # the files are always "there": served from the cache
            return None

        served_cls = type(base.__name__, (base,), {"__init__": __init__, "download": download,
                                                  "_check_integrity": lambda ds: True,
                                                  "__module__": base.__module__,
                                                  "__doc__": f"{base.__name__} served by the grader (offline)"})
        served_cls.__qualname__ = base.__qualname__
        return served_cls

    def serve(self, name: str):
        served = self.load_served(name)
        self.served[name] = served
        self.trace["dataset"] = served.info()
        self.trace.save()
        return served

    # ------------------------------------------------------------ optimizers and models

    def _optimizer_init(self, original):
        probe = self

        def __init__(opt, *args, **kwargs):
            original(opt, *args, **kwargs)
            try:
                probe.record_optimizer(opt)
            except Exception as e:  # never break the student's program
                probe.trace.note(f"torch probe: optimizer not recorded ({type(e).__name__}: {e})"[:300])

        return __init__

    def record_optimizer(self, opt: Any) -> None:
        if id(opt) in self.trainings:
            return
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        model = self.model_of(params)
        mid = self.model_id(model) if model is not None else None
        record = {"model": mid, "framework": "torch", "optimizer": describe_optimizer(opt),
                  "steps": 0, "epochs_run": 0, "epochs_requested": None, "history": {},
                  "loss_windows": {"every": WINDOW, "loss": []}, "completed": False,
                  "trained_parameters": sum(p.numel() for g in opt.param_groups for p in g["params"]
                                            if not is_lazy(p))}
        self.optimizers.append(opt)
        self.trainings[id(opt)] = Training(record)
        self.trace["fits"].append(record)
        if model is not None:
            self.describe(model)
            self._watch_first_batch(model, mid)
            self._watch_eval_inputs(model, mid)
            if self.chat:
                self._watch_chat_batches(model, mid)
        self.trace.save()

    def model_of(self, params: set[int]) -> Any:
        """The outermost module whose parameters are all among params, covering most of them.
        Between two modules apart with as many tensors (one optimizer over two networks), the
        one with more elements, then the one made first: never the order of a set."""
        candidates = []
        for m in list(self.modules):
            tensors = {id(p): p for p in m.parameters()}
            if tensors and set(tensors) <= params:
                candidates.append((m, tensors))
        inside = {id(c) for m, _ in candidates for c in m.modules() if c is not m}  # a container covers as much
        ranked = [((len(t), sum(p.numel() for p in t.values() if not is_lazy(p)), -i), m)  # i: the order made
                  for i, (m, t) in enumerate(candidates) if id(m) not in inside]
        return max(ranked, key=lambda r: r[0])[1] if ranked else None

    def model_id(self, model: Any) -> int:
        """The model's index in trace["models"], which every framework's probe shares."""
        for i, m in self.models.items():
            if m is model:
                return i
        mid = len(self.trace["models"])
        self.models[mid] = model
        self.trace["models"].append({"id": mid, "class": type(model).__name__, "framework": "torch"})
        return mid

    def describe(self, model: Any) -> None:
        entry = self.trace["models"][self.model_id(model)]
        try:
            entry["layers"] = [describe_module(name, m) for name, m in model.named_modules()
                               if not list(m.children())]
            entry["tree"] = module_tree(model)
            entry["params"] = sum(p.numel() for p in model.parameters() if not is_lazy(p))
            entry["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad and not is_lazy(p))
        except Exception as e:
            entry["describe_error"] = f"{type(e).__name__}: {e}"[:300]

    def _watch_first_batch(self, model: Any, mid: int) -> None:
        """Keeps a sample of the first batch the model is trained on (for measuring without a
        torchvision dataset: its layout and scaling; for a text model, evidence of training on the
        test reviews)."""
        import torch

        probe = self

        def pre_hook(module, args):
            if module.training and torch.is_grad_enabled() and args and hasattr(args[0], "shape") \
                    and mid not in probe.first_inputs:
                probe.first_inputs[mid] = args[0][:512].detach().to("cpu").float().numpy().copy()
                handle.remove()

        handle = model.register_forward_pre_hook(pre_hook)

    @functools.cached_property
    def chat(self) -> bool:
        """Whether the rubric puts prompts to a response function (Program 7's chatbot)."""
        from grader.probe import session

        return "chat" in ((session.CURRENT.config.get("probe") if session.CURRENT else None) or {})

    def _watch_chat_batches(self, model: Any, mid: int) -> None:
        """Keeps the batches (token ids, or vectors) the model is trained on, until CHAT_BATCHES
        batches or CHAT_ROWS rows, each paired by _loss_targets with the targets of the loss
        computed next."""
        import torch

        probe = self

        def pre_hook(module, args):
            x = args[0] if args else None
            if module.training and torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.dim() >= 2 \
                    and x.dtype != torch.bool:
                probe.chat_pending = (mid, x.detach().to("cpu").clone())
            kept = probe.chat_rows.get(mid, [])
            if len(kept) >= CHAT_BATCHES or sum(len(b) for b, _ in kept) >= CHAT_ROWS:
                handle.remove()

        handle = model.register_forward_pre_hook(pre_hook)

    def _loss_targets(self, original):
        import torch

        probe = self

        def loss(input, target, *args, **kwargs):
            pending, probe.chat_pending = probe.chat_pending, None
            if pending is not None and isinstance(target, torch.Tensor):
                mid, x = pending
                probe.chat_rows.setdefault(mid, []).append((x.numpy(), target.detach().to("cpu").numpy().copy()))
            return original(input, target, *args, **kwargs)

        return loss

    def _watch_eval_inputs(self, model: Any, mid: int) -> None:
        """Keeps the integer batches (token ids) the model is given outside training."""
        import torch

        probe = self

        def pre_hook(module, args):
            x = args[0] if args else None
            if not probe.watch_eval or (module.training and torch.is_grad_enabled()):
                return
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
                return
            if probe.eval_elements + x.numel() <= EVAL_ELEMENTS_CAP:
                probe.eval_rows.setdefault(mid, []).append(x.detach().to("cpu").clone())
                probe.eval_elements += x.numel()

        model.register_forward_pre_hook(pre_hook)

    # ------------------------------------------------------------ steps, losses, epochs

    def _after_step(self, opt, args, kwargs) -> None:
        try:
            training = self.trainings.get(id(opt))
            if training is None:
                self.record_optimizer(opt)
                training = self.trainings[id(opt)]
            if self.last_loss_fn and "loss_fn" not in training.record:
                training.record["loss_fn"] = self.last_loss_fn  # e.g. NllLossBackward0: CrossEntropyLoss
            if training.on_step(self.pending) or training.record["steps"] == 1:
                self.trace.save()
            if self.budget is not None:
                self.budget.start()  # quick mode's training clock runs from the first step
        except Exception as e:  # never break the student's training step
            self.trace.note(f"torch probe: a step was not recorded ({type(e).__name__}: {e})"[:300])

    def _backward(self, original):
        probe = self

        def backward(tensor, *args, **kwargs):
            if tensor.numel() == 1 and tensor.requires_grad and probe.trainings:
                probe.pending.append(tensor.detach().reshape(()))
                probe.last_loss_fn = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else None
                del probe.pending[:-64]
            probe.backwards += 1
            probe.phase = "loss.backward()"
            result = original(tensor, *args, **kwargs)
            probe.phase = IDLE
            return result

        return backward

    def _loader_iter(self, original):
        probe = self

        def __iter__(loader):
            it = original(loader)
            try:
                it._grader_loader = weakref.ref(loader)
                it._grader_steps = probe.step_counts()
                it._grader_backwards = probe.backwards
                it._grader_served = 0
                it._grader_ended = False
                it._grader_limit = 1 if loader in probe.capped_loaders else None
            except Exception:
                pass
            return it

        return __iter__

    def _loader_next(self, original):
        probe = self

        def __next__(it):
            if probe.stop_for_budget(it):
                raise StopIteration
            if getattr(it, "_grader_served", 0) and it._grader_limit is None and probe.capped_stepped(it):
                it._grader_limit = 1  # a fresh loader, but a training that already ran its cap
            limit = getattr(it, "_grader_limit", None)
            if limit is not None and it._grader_served >= limit:
                probe.end_pass(it)
                raise StopIteration
            try:
                batch = original(it)
            except StopIteration:
                probe.end_pass(it)
                raise
            if hasattr(it, "_grader_served"):
                it._grader_served += 1
            return batch

        return __next__

    def step_counts(self) -> dict[int, int]:
        return {key: t.record["steps"] for key, t in self.trainings.items()}

    def capped_stepped(self, it: Any) -> bool:
        """Whether an optimizer that already ran its quick-mode epochs stepped in this pass."""
        before = it._grader_steps
        return any(t.record.get("epochs_capped_to") and t.record["steps"] > before.get(key, 0)
                   for key, t in self.trainings.items())

    @functools.cached_property
    def budget(self) -> Any:
        """Quick mode's training-time budget (grader/probe/budget.py), or None."""
        from grader.probe.budget import from_session

        return from_session() if self.epochs_cap else None

    def stop_for_budget(self, it: Any) -> bool:
        """Quick mode: once the training-time budget is used, the training pass under way
        ends after the batch that finished (it counts as an epoch: what was learned is kept)
        and every later pass in which the optimizer steps serves one batch, as after the
        epoch cap. True when this pass ends here."""
        if (self.budget is None or not getattr(it, "_grader_served", 0) or it._grader_limit is not None
                or getattr(it, "_grader_ended", True) or not self.budget.spent()):
            return False
        stepped = [t for key, t in self.trainings.items() if t.record["steps"] > it._grader_steps.get(key, 0)]
        if not stepped or any(t.record.get("epochs_capped_to") for t in stepped):
            return False  # not a training pass, or one the epoch cap already bounds
        self.end_pass(it)
        for training in stepped:
            epochs = training.record["epochs_run"]
            training.record["epochs_capped_to"] = epochs
            training.record["stopped_by_budget"] = self.budget.stop_record(epochs, it._grader_served)
            training.record["cap"] = self.budget.cap_message(epochs, it._grader_served)
        self.trace.save()
        return True

    def end_pass(self, it: Any) -> None:
        """A pass over a loader ended: an epoch for every optimizer that stepped during it."""
        before = getattr(it, "_grader_steps", None)
        if before is None or getattr(it, "_grader_ended", False):
            return
        it._grader_ended = True
        truncated = it._grader_limit is not None
        for key, training in self.trainings.items():
            if training.record["steps"] <= before.get(key, 0):
                continue
            if truncated:
                training.record["truncated_passes"] = training.record.get("truncated_passes", 0) + 1
                continue
            training.end_epoch()
            training.record["batches_per_epoch"] = it._grader_served
            if self.epochs_cap and training.record["epochs_run"] >= self.epochs_cap:
                self.cap(training)
        if not truncated and self.backwards > it._grader_backwards:
            self.count_training_pass(it._grader_loader())
        self.trace.save()

    def count_training_pass(self, loader: Any) -> None:
        """Quick mode: a loader that served epochs_cap passes with backward() calls (a training
        loop, stepping or not) serves one batch per pass from then on."""
        if loader is None or not self.epochs_cap:
            return
        self.training_passes[loader] = self.training_passes.get(loader, 0) + 1
        if self.training_passes[loader] < self.epochs_cap:
            return
        self.capped_loaders.add(loader)
        self.trace.note(f"quick mode: after {self.epochs_cap} training pass(es) over a DataLoader every "
                        "further pass over it serves one batch")

    def cap(self, training: Training) -> None:
        """Quick mode: the training ran its epochs; from now on a pass in which its optimizer
        steps (over this loader or a new one) ends after that batch."""
        training.record["epochs_capped_to"] = self.epochs_cap
        training.record["cap"] = (f"quick mode: after {self.epochs_cap} epoch(s) every further pass over "
                                  "the training data serves one batch")

    # ------------------------------------------------------------ measurement

    def measure(self) -> dict[str, Any] | None:
        for training in self.trainings.values():
            training.record["completed"] = True
            if training.record["epochs_run"]:  # the program's loop: full passes and capped ones
                training.record["epochs_requested"] = (training.record["epochs_run"]
                                                       + training.record.get("truncated_passes", 0))
            if not training.record["history"].get("loss") and training.record["loss_windows"]["loss"]:
                training.record["history"]["loss"] = list(training.record["loss_windows"]["loss"])
                training.record["history_unit"] = f"{WINDOW} optimizer steps (no DataLoader pass seen)"
        for model in self.models.values():
            self.describe(model)
        self.trace.save()
        self.watch_eval = False
        return measure(self)


# ---------------------------------------------------------------- helpers


def as_float(value: Any) -> Any:
    try:
        return plain(float(value))
    except Exception:
        return None


def is_lazy(p: Any) -> bool:
    from torch.nn.parameter import UninitializedParameter

    return isinstance(p, UninitializedParameter)


def describe_optimizer(opt: Any) -> dict[str, Any]:
    group = opt.param_groups[0] if opt.param_groups else {}
    out = {"class": type(opt).__name__, "learning_rate": as_float(group.get("lr")),
           "param_groups": len(opt.param_groups)}
    for key in ("momentum", "weight_decay", "betas"):
        if key in group:
            out[key] = plain(group[key])
    return out


def layer_config(module: Any) -> dict[str, Any]:
    config = {}
    for key in CONFIG_KEYS:
        value = getattr(module, key, None)
        if isinstance(value, (bool, int, float, str, tuple)):
            config[key] = plain(value)
        elif key == "bias" and value is not None and hasattr(value, "shape"):
            config[key] = True
    if "out_features" in config:
        config["units"] = config["out_features"]  # the Keras probe's name for it
    return config


RECURRENT = ("RNN", "LSTM", "GRU")


def describe_module(name: str, module: Any) -> dict[str, Any]:
    """A leaf module as the Keras probe describes a layer. A bidirectional nn.LSTM (GRU, RNN)
    is what Keras writes Bidirectional(LSTM(...)): it is described so (type Bidirectional,
    wrapping LSTM), its own class kept as `module`, so one rubric requirement covers both."""
    params = sum(p.numel() for p in module.parameters(recurse=False) if not is_lazy(p))
    kind = type(module).__name__
    info = {"type": kind, "name": name, "config": layer_config(module), "params": params,
            "trainable_output": kind == "Linear"}
    if kind in RECURRENT and getattr(module, "bidirectional", False) is True:
        info.update(type="Bidirectional", wraps=kind, module=kind)
    return info


def module_tree(module: Any, depth: int = 0) -> dict[str, Any]:
    node = {"type": type(module).__name__,
            "params": sum(p.numel() for p in module.parameters() if not is_lazy(p))}
    children = list(module.named_children())
    if children and depth < 8:
        node["children"] = {name: module_tree(child, depth + 1) for name, child in children[:100]}
    return node


# ---------------------------------------------------------------- measurement


def pick_training(probe: TorchProbe) -> dict[str, Any] | None:
    """The training to measure: the last one whose optimizer stepped, else the last one."""
    records = [t.record for t in probe.trainings.values() if t.record["model"] is not None]
    stepped = [r for r in records if r["steps"] > 0]
    return (stepped or records or [None])[-1]


def measure(probe: TorchProbe) -> dict[str, Any] | None:
    import torch

    from grader.probe.measure import predictions_to_labels
    from grader.probe.provider import canonical_labels

    record = pick_training(probe)
    if record is None:
        return None
    mid = record["model"]
    result: dict[str, Any] = {"part": "net", "framework": "torch", "model": mid, "trained": record["steps"] > 0,
                              "split": "test"}
    if probe.imdb_calls and not probe.served:
        return measure_reviews(probe, record, result)
    if probe.chat and not probe.served:  # a chatbot: its layers and training checked outside
        probe.measured = chatbot_export(probe, mid)
        return None
    if not probe.served:
        result["error"] = ("the PyTorch part was served no dataset (it did not use torchvision.datasets), "
                           "so there are no held-out images of its own to measure it on")
        return result
    name, served = next(reversed(probe.served.items()))
    labels = canonical_labels(served)
    result.update(dataset=name, n=int(len(labels)))
    x, method = test_inputs(probe, served, mid)
    if x is None:
        result["error"] = method
        return result
    result["method"] = method
    model = probe.models[mid]
    try:
        pred = predict(model, x, torch)
    except Exception as e:
        result["error"] = f"the model could not predict on the test set: {type(e).__name__}: {e}"[:500]
        return result
    probe.measured = {"model": mid, "part": "net", "framework": "torch", "object": model, "inputs": x,
                      "raw": served.x_test, "dataset": name}  # for the export to the trusted re-measurement
    predicted = predictions_to_labels(pred)
    result["accuracy"] = round(float((predicted == labels).mean()), 6)
    result["predicted_class_share"] = np.bincount(predicted, minlength=10).tolist()
    return result


def chatbot_export(probe: TorchProbe, mid: int) -> dict[str, Any]:
    """The chatbot for the export: traced for one batch shape, the commonest among the batches
    it was trained on, whose rows and targets go with it for its loss outside
    the process (ids as int64, vectors as float32). Without such batches (its loss not through
    cross_entropy / nll_loss) the entry names why."""
    measured = {"model": mid, "part": "chatbot", "framework": "torch", "object": probe.models[mid],
                "dataset": None, "preprocess": {"kind": "the program's own arrays"}}
    batches = probe.chat_rows.get(mid) or []
    if not batches:
        measured["error"] = ("no training batch was seen going into the model with its targets to a "
                             "cross_entropy or nll_loss, so the model could not be traced for its loss outside")
        return measured
    shapes: dict[tuple, list] = {}
    for x, y in batches:
        shapes.setdefault((x.shape[1:], y.shape[1:]), []).append((x, y))
    group = max(shapes.values(), key=lambda g: sum(len(x) for x, _ in g))
    x, y = np.concatenate([x for x, _ in group]), np.concatenate([y for _, y in group])
    if len(y) == len(x):  # targets row by row (not flattened per token): one large batch is cut
        x, y = x[:CHAT_ROWS], y[:CHAT_ROWS]
    x, y = (a.astype(np.float32 if np.issubdtype(a.dtype, np.floating) else np.int64) for a in (x, y))
    measured.update(inputs=x, batch=len(group[0][0]), fit=(x, y))
    return measured


def predict(model: Any, x: Any, torch) -> np.ndarray:
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), 256):
            y = model(x[start:start + 256].to(device))
            y = y[0] if isinstance(y, (tuple, list)) else y
            out.append(y.float().cpu().numpy())
    return np.concatenate(out)


def test_inputs(probe: TorchProbe, served: Any, mid: int) -> tuple[Any, str]:
    """The served test images preprocessed the student's way, and how."""
    import torch

    own = [d for d in probe.datasets if d.transform is not None]
    for split, label in ((False, "the program's own test-set transform"),
                         (True, "the program's training-set transform (it built no test set)")):
        for ds in reversed(own):
            if bool(ds.train) != split:
                continue
            x = apply_transform(ds.transform, served.x_test, torch)
            if x is not None:
                return x, f"served test images through {label}"
    sample = probe.first_inputs.get(mid)
    if sample is None:
        return None, "could not tell how the program preprocesses its inputs (no torchvision transform, no training batch)"
    return scaled_like(sample, served, torch)


def apply_transform(transform: Any, images: np.ndarray, torch) -> Any:
    from PIL import Image

    try:
        items = [transform(Image.fromarray(img)) for img in images]
        return torch.stack([torch.as_tensor(i) for i in items]) if items else None
    except Exception:
        return None


def layouts(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Ways a program lays out images (N, H, W[, C]): channels first or last, flattened."""
    chw = raw.transpose(0, 3, 1, 2) if raw.ndim == 4 else raw[:, None]
    return {"channels first": chw, "flattened channels first": chw.reshape(len(raw), -1),
            "channels last": raw, "flattened channels last": raw.reshape(len(raw), -1)}


def scaled_like(sample: np.ndarray, served: Any, torch) -> tuple[Any, str]:
    from grader.probe.measure import infer_scaling

    train, test = layouts(served.x_train[:2000]), layouts(served.x_test)
    for name, raw in train.items():
        if raw.shape[1:] == sample.shape[1:]:
            scaling = infer_scaling(sample, raw)
            if scaling is None:
                break
            a, b = scaling
            x = torch.from_numpy((test[name].astype(np.float32) * a + b).astype(np.float32))
            return x, f"served test images ({name}) scaled like the first training batch (x*{a:.5g}{b:+.5g})"
    return None, f"could not match the training inputs' shape {list(sample.shape[1:])} to the served images"


# ---------------------------------------------------------------- measurement of a text model


def same_review(row: np.ndarray, review: list[int]) -> bool:
    """Whether a padded row holds this review: all of it, or its start or end when truncated
    (Keras pad_sequences' 'post' and 'pre'); 0 is the padding id."""
    tokens = row[row != 0].tolist()
    ids = [t for t in review if t != 0]
    k = len(tokens)
    if not k:
        return not ids
    return tokens == ids or tokens == ids[:k] or tokens == ids[-k:]


def split_rows(batches: list[Any]) -> list[Any]:
    return [row for b in batches for row in b]


def matching_window(rows: list[Any], x_test: Any) -> list[Any] | None:
    """The last, else the first, run of len(x_test) rows that are the test reviews in order."""
    n = len(x_test)
    for window in (rows[-n:], rows[:n]):
        if len(window) == n and all(same_review(r.numpy(), list(x)) for r, x in zip(window, x_test)):
            return window
    return None


def fed_call(rows: list[Any], calls: list[tuple[dict[str, Any], tuple[Any, Any]]]):
    """Of the program's load_data calls, the latest whose test reviews the rows hold in order:
    (its arguments, x_test, y_test, the matching rows), else None."""
    for load_args, (x_test, y_test) in reversed(calls):
        window = matching_window(rows, x_test)
        if window is not None:
            return load_args, x_test, y_test, window
    return None


def predict_rows(model: Any, rows: list[Any], torch) -> np.ndarray:
    """The model's outputs on the rows, in order; rows of one width are batched together."""
    out, start = [], 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and end - start < 256 and rows[end].shape == rows[start].shape:
            end += 1
        out.append(predict(model, torch.stack(rows[start:end]), torch))
        start = end
    return np.concatenate(out)


def review_labels(pred: np.ndarray, loss_fn: str | None) -> np.ndarray:
    """Class ids from the outputs: argmax over several units; one unit is a logit under
    BCEWithLogitsLoss, a probability under BCELoss (else judged from its range)."""
    if pred.ndim > 1 and pred.reshape(len(pred), -1).shape[1] > 1:
        return pred.reshape(len(pred), -1).argmax(axis=1)
    p = pred.reshape(len(pred))
    logits = "WithLogits" in (loss_fn or "") or (loss_fn is None and (p.min() < 0 or p.max() > 1))
    return (p > (0.0 if logits else 0.5)).astype(np.int64)


def measure_reviews(probe: TorchProbe, record: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The final model on the program's own padded test reviews (matched to a load_data call's
    test split row by row); kept for the export (probe.measured), or why it cannot be exported
    when the rows are not all one length."""
    import torch

    from grader.probe.leaks import served_review_share

    mid = record["model"]
    n = len(probe.imdb_calls[-1][1][1])
    result.update(dataset="imdb", n=int(n))
    rows = split_rows(probe.eval_rows.get(mid, []))
    review = "the test accuracy of a PyTorch model could not be measured: check it by hand"
    if len(rows) < min(len(y) for _, (_, y) in probe.imdb_calls):
        result.update(review=review, error=(
            f"the model was given {len(rows)} rows of word ids in evaluation mode (model.eval() or "
            f"torch.no_grad()), fewer than the {n} test reviews load_data returned, so there is no "
            "test set of the program's own to measure it on"))
        return result
    fed = fed_call(rows, probe.imdb_calls)
    if fed is None:
        result.update(review=review, error=(
            f"the {len(rows)} rows given to the model in evaluation mode are not the {n} test reviews "
            "in the order load_data returned them (shuffled, subsampled or re-encoded), so their "
            "labels are not known"))
        return result
    load_args, x_test, y_test, window = fed
    n = len(y_test)
    result["n"] = int(n)
    try:
        pred = predict_rows(probe.models[mid], window, torch)
    except Exception as e:
        result["error"] = f"the model could not predict on the test reviews: {type(e).__name__}: {e}"[:500]
        return result
    predicted = review_labels(pred, record.get("loss_fn"))
    labels = np.asarray(y_test).reshape(-1).astype(np.int64)
    result["method"] = (f"the program's own padded test reviews ({n} rows given to the model in evaluation "
                        "mode, each matched to the review load_data returned at its position), re-run "
                        "through the final model; labels from load_data")
    result["accuracy"] = round(float((predicted == labels).mean()), 6)
    result["predicted_class_share"] = np.bincount(predicted, minlength=2).tolist()
    probe.measured = {"model": mid, "part": "net", "framework": "torch", "dataset": "imdb"}
    if len({tuple(r.shape) for r in window}) > 1:
        probe.measured["error"] = ("the test reviews were padded batch by batch to different lengths, which "
                                   "one description of the padding cannot reproduce outside the program")
        return result
    inputs = torch.stack(window)
    result["fit_on_served_test"] = served_review_share(probe.first_inputs.get(mid), inputs.numpy())
    probe.measured.update(object=probe.models[mid], inputs=inputs, raw=x_test, load_args=load_args,
                          output="logit" if "WithLogits" in (record.get("loss_fn") or "") else None)
    return result
