"""After a GAN program has run (a rubric's `probe: gan:`): its generator and discriminator found
whatever the program named them, the generator exported for the trusted judgement of what it
generates (grader/trusted_gan.py), and whether the stacked model trains the discriminator.

Runs in the student's process: everything here is evidence the program could rewrite. The
figures that decide marks come from the exported generator, run in a clean sandbox on noise
whose seed this process never sees, and judged on the host (grader/gan_judge.py). What is
recorded here (roles, shapes, output activation, the frozen-discriminator experiment and a
summary of 1000 samples made here) is compared with those figures on the host.

Roles, from the models' input and output shapes (models the probe saw and the models nested
in them):
* generator: a vector of noise (N x k, k <= MAX_LATENT) in, 784 values (28 x 28) out;
* discriminator: 784 values in (28 x 28, 784 or 28 x 28 x 1), one score out;
* stacked: noise in, one score out, holding the discriminator (the generator's training model);
* wrapper: without a stacked model, a model the program trained (fit) that holds both networks
  and trains them in its own train_step (keras.io's "GAN overriding Model.train_step"). Its
  optimizers are read after the run: each one's step count and the weights it updates (a Keras 3
  optimizer updates exactly the variables it was built on). The generator's optimizer must hold
  none of the discriminator's weights: the stacked model's frozen discriminator, in that form.
PyTorch modules: grader/probe/gan_torch.py (no stacked model there: the generator's optimizer
must not hold the discriminator's parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MAX_LATENT = 1024
SAMPLES = 1000
BOUNDED = ("tanh", "sigmoid", "hard_sigmoid", "hard_tanh")


def after_run(session: Any, params: dict[str, Any]) -> dict[str, Any]:
    """{framework, generator, discriminator, stacked: model records, export, frozen, samples} or
    {error}: the Keras models first, else the PyTorch modules the program trained."""
    n = int(params.get("samples", SAMPLES))
    keras_probe, torch_probe = session.installed.get("keras"), session.installed.get("torch")
    out: dict[str, Any] = {}
    if keras_probe is not None:
        out = keras_gan(session, keras_probe, n)
    if not out.get("generator") and torch_probe is not None:
        from grader.probe.gan_torch import torch_gan

        out = torch_gan(session, torch_probe, n)
    if not out:
        return {"error": "no Keras or PyTorch model was built"}
    if not out.get("generator"):
        out["error"] = "no generator found (a model from a noise vector to a 28 x 28 image)"
    return out


def keras_gan(session: Any, probe: Any, n: int) -> dict[str, Any]:
    """The Keras side: roles by shape, the generator exported, its samples summarised, the
    stacked model's effect on the discriminator tried."""
    models = candidates(probe)
    roles = find_roles(models)
    out: dict[str, Any] = {"framework": "keras"}
    out.update({name: describe(models, mid) for name, mid in roles.items() if mid is not None})
    gen = roles.get("generator")
    if gen is None:
        return out
    generator = models[gen]
    out["export"] = export_generator(session, out["generator"], lambda folder: write_keras_model(generator, folder),
                                     "keras")
    out["samples"] = sample_summary(lambda z: generator.predict(z, batch_size=256, verbose=0),
                                    out["generator"]["latent"], n)
    if roles.get("stacked") is not None and roles.get("discriminator") is not None:
        out["frozen"] = frozen_experiment(probe, models[roles["stacked"]], models[roles["discriminator"]],
                                          out["generator"]["latent"])
    elif roles.get("discriminator") is not None:
        wrapper = find_wrapper(probe, generator, models[roles["discriminator"]])
        if wrapper is not None:
            out["wrapper"] = wrapper
            out["frozen"] = generator_update_spares(wrapper)
    return out


def write_keras_model(model: Any, folder: Path) -> str:
    from grader.probe.export import write_keras

    return write_keras({"object": model}, folder)


def candidates(probe: Any) -> dict[int, Any]:
    """Models by id: those the probe saw (trace index) and those nested in them (negative ids)."""
    found: dict[int, Any] = dict(probe.models)
    seen = {id(m) for m in found.values()}
    for model in list(found.values()):
        for layer in getattr(model, "layers", []) or []:
            if hasattr(layer, "layers") and id(layer) not in seen and shapes(layer) is not None:
                seen.add(id(layer))
                found[-len(found) - 1] = layer
    return found


def shapes(model: Any) -> tuple[tuple, tuple] | None:
    """(input shape, output shape) without the batch axis, None when the model has no fixed ones."""
    try:
        inputs, outputs = model.inputs, model.outputs
        if not inputs or not outputs or len(inputs) != 1 or len(outputs) != 1:
            return None
        return tuple(inputs[0].shape)[1:], tuple(outputs[0].shape)[1:]
    except Exception:
        return None


def size(shape: tuple) -> int | None:
    return int(np.prod(shape)) if all(isinstance(d, int) for d in shape) else None


def contains(outer: Any, inner: Any) -> bool:
    """Whether `inner` is a layer of `outer`, at any depth."""
    for layer in getattr(outer, "layers", []) or []:
        if layer is inner or (hasattr(layer, "layers") and contains(layer, inner)):
            return True
    return False


def find_roles(models: dict[int, Any]) -> dict[str, int | None]:
    """{generator, discriminator, stacked}: model ids (None where none fits)."""
    gens, discs, stacks = [], [], []
    for mid, model in models.items():
        s = shapes(model)
        if s is None:
            continue
        (inp, outp), n_in, n_out = s, size(s[0]), size(s[1])
        if len(inp) == 1 and n_in and n_in <= MAX_LATENT and n_out == 784:
            gens.append(mid)
        elif n_in == 784 and n_out == 1:
            discs.append(mid)
        elif len(inp) == 1 and n_in and n_in <= MAX_LATENT and n_out == 1:
            stacks.append(mid)
    stacked = next((s for s in reversed(stacks) if any(contains(models[s], models[d]) for d in discs)), None)
    disc = next((d for d in reversed(discs) if stacked is not None and contains(models[stacked], models[d])),
                discs[-1] if discs else None)
    gen = next((g for g in reversed(gens) if stacked is not None and contains(models[stacked], models[g])),
               gens[-1] if gens else None)
    return {"generator": gen, "discriminator": disc, "stacked": stacked}


def describe(models: dict[int, Any], mid: int) -> dict[str, Any]:
    """A model's id (a trace index, or None for one only nested in another), name, shapes and
    output activation (its last layer that has one)."""
    model = models[mid]
    inp, outp = shapes(model)
    activation = None
    for layer in reversed(flat(model)):
        act = getattr(layer, "activation", None)
        name = getattr(act, "__name__", None) or (str(act) if act is not None else None)
        if name and name != "linear":
            activation = name
            break
        if type(layer).__name__ == "Dense":  # a linear Dense last: the output is unbounded
            activation = "linear"
            break
    return {"model": mid if mid >= 0 else None, "name": str(getattr(model, "name", "")), "input": list(inp),
            "output": list(outp), "latent": size(inp) if len(inp) == 1 else None, "activation": activation}


def flat(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []) or []:
        out.extend(flat(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return out


def export_generator(session: Any, record: dict[str, Any], write: Any, framework: str) -> dict[str, Any]:
    """The generator written by `write(folder) -> kind` under export/gan, listed first in
    trace["exports"] (part "generator") for the trusted judgement; {dir, kind} or {error}."""
    from grader.probe.export import listing

    folder = Path(session.config["out_dir"]) / "export" / "gan"
    entry: dict[str, Any] = {"model": record["model"], "part": "generator", "framework": framework,
                             "dataset": "mnist", "dir": "export/gan", "latent": record["latent"],
                             "activation": record["activation"]}
    try:
        folder.mkdir(parents=True, exist_ok=False)
        entry["kind"] = write(folder)
        entry["files"] = listing(folder)
    except Exception as e:
        entry["error"] = f"{type(e).__name__}: {e}"[:500]
    exports = session.trace.data.get("exports")
    session.trace["exports"] = [entry] + (exports if isinstance(exports, list) else [])
    return {k: entry[k] for k in ("dir", "kind", "error") if k in entry}


def sample_summary(generate: Any, latent: int | None, n: int) -> dict[str, Any]:
    """Pixel mean and spread of n samples made here by `generate(noise) -> array` (outputs mapped
    to [0, 1] as the host maps the clean sandbox's), for comparison with the trusted samples."""
    if not latent:
        return {"error": "the generator's noise size is unknown"}
    try:
        noise = np.random.default_rng().normal(size=(n, latent)).astype("float32")
        x = np.asarray(generate(noise), dtype=np.float64)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    x = to_unit(x)
    return {"n": n, "pixel_mean": round(float(x.mean()), 4), "pixel_std": round(float(x.std()), 4)}


def to_unit(x: np.ndarray) -> np.ndarray:
    """Generator outputs in [0, 1]: [-1, 1] outputs (any below -0.01) shifted and halved; clipped."""
    return np.clip((x + 1) / 2 if x.min() < -0.01 else x, 0, 1)


def frozen_experiment(probe: Any, stacked: Any, discriminator: Any, latent: int | None) -> dict[str, Any]:
    """One training step of the stacked model on noise labelled real, every weight restored
    afterwards: {discriminator_changed, generator_changed} (the discriminator should not change)."""
    if not latent:
        return {"error": "the noise size is unknown"}
    try:
        before_all = stacked.get_weights()
        before_d = [np.array(w, copy=True) for w in discriminator.get_weights()]
        noise = np.random.default_rng(0).normal(size=(32, latent)).astype("float32")
        probe.original(stacked, "train_on_batch")(noise, np.ones((32, 1), "float32"))
        after_d = discriminator.get_weights()
        after_all = stacked.get_weights()
        d_changed = any(not np.array_equal(a, b) for a, b in zip(before_d, after_d))
        changed = sum(not np.array_equal(a, b) for a, b in zip(before_all, after_all))
        stacked.set_weights(before_all)
        return {"discriminator_changed": bool(d_changed), "weights_changed": int(changed)}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}


def find_wrapper(probe: Any, generator: Any, discriminator: Any) -> dict[str, Any] | None:
    """The model the program trained that holds the generator and the discriminator but is not a
    stacked model (no fixed input and output of its own): {model, name, class, optimizers}; None
    when there is none. Its optimizers: those among its attributes (any names), else any Keras
    optimizer alive that updates either network's weights."""
    for mid, model in reversed(list(probe.models.items())):
        if model is generator or model is discriminator or shapes(model) is not None:
            continue
        if contains(model, generator) and contains(model, discriminator):
            opts = optimizers_of(probe, model, generator, discriminator)
            return {"model": mid, "name": str(getattr(model, "name", "")), "class": type(model).__name__,
                    "optimizers": [optimizer_record(name, opt, generator, discriminator) for name, opt in opts]}
    return None


def is_optimizer(value: Any) -> bool:
    return hasattr(value, "apply_gradients") and hasattr(value, "iterations") and not isinstance(value, type)


def optimizers_of(probe: Any, wrapper: Any, generator: Any, discriminator: Any) -> list[tuple[str | None, Any]]:
    """(attribute name or None, optimizer) for each optimizer that updates either network."""
    weights = variable_ids(generator) | variable_ids(discriminator)
    found: dict[int, tuple[str | None, Any]] = {}
    for name, value in list(vars(wrapper).items()) + [("optimizer", getattr(wrapper, "optimizer", None))]:
        if is_optimizer(value) and id(value) not in found:
            found[id(value)] = (name, value)
    if sum(bool(held_ids(o) & weights) for _, o in found.values()) < 2:
        import gc

        for obj in gc.get_objects():
            if is_optimizer(obj) and id(obj) not in found and held_ids(obj) & weights:
                found[id(obj)] = (None, obj)
    return [(n, o) for n, o in found.values() if held_ids(o) & weights]


def variable_ids(model: Any) -> set[int]:
    """ids of a model's weights (the Keras variables and the backend's own under them)."""
    out: set[int] = set()
    for v in getattr(model, "weights", []) or []:
        out.add(id(v))
        inner = getattr(v, "value", None)
        if inner is not None and not callable(inner):
            out.add(id(inner))
    return out


def held_ids(optimizer: Any) -> set[int]:
    """ids of the variables a Keras 3 optimizer was built on (those it updates); empty if unknown."""
    held = getattr(optimizer, "_trainable_variables", None) or []
    return {id(v) for v in held}


def optimizer_record(name: str | None, optimizer: Any, generator: Any, discriminator: Any) -> dict[str, Any]:
    """{name, class, iterations, learning_rate, generator_weights, discriminator_weights,
    other_weights}: how many of the weights it updates belong to each network."""
    held = list(getattr(optimizer, "_trainable_variables", None) or [])
    g, d = variable_ids(generator), variable_ids(discriminator)
    try:
        steps = int(np.asarray(optimizer.iterations))
    except Exception:
        steps = None
    from grader.probe.keras_hooks import learning_rate

    return {"name": name, "class": type(optimizer).__name__, "iterations": steps,
            "learning_rate": learning_rate(optimizer),
            "generator_weights": sum(id(v) in g for v in held), "discriminator_weights": sum(id(v) in d for v in held),
            "other_weights": sum(id(v) not in g and id(v) not in d for v in held)}


def generator_update_spares(wrapper: dict[str, Any]) -> dict[str, Any]:
    """Whether the wrapper's generator update leaves the discriminator alone: no optimizer that
    updates the generator's weights updates any of the discriminator's."""
    gens = [o for o in wrapper["optimizers"] if o["generator_weights"]]
    if not gens:
        return {"error": "no optimizer of the program updates the generator's weights"}
    mixed = [o for o in gens if o["discriminator_weights"]]
    return {"discriminator_changed": bool(mixed), "how": "the weights the generator's optimizer updates",
            "generator_optimizer": (mixed or gens)[0]["name"],
            "discriminator_weights": max((o["discriminator_weights"] for o in mixed), default=0)}
