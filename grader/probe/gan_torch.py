"""A PyTorch GAN after the program has run (grader/probe/gan.py for the Keras side and the
record's shape): among the modules the program's optimizers trained, the generator (noise
N x k, k the in_features of its first Linear, to 784 values) and the discriminator (a 28 x 28
image, or 784 values, to one score), found by running each on a small probe batch. There is no
stacked model: the discriminator is "frozen" for the generator's step when the generator's
optimizer holds none of its parameters. The generator is exported as a torch.export program
(.pt2, no pickled entries) for the trusted judgement.
"""

from __future__ import annotations

from typing import Any

from grader.probe.gan import MAX_LATENT, export_generator, sample_summary

IMAGE_INPUTS = ((2, 1, 28, 28), (2, 28, 28), (2, 784))


def torch_gan(session: Any, probe: Any, n: int) -> dict[str, Any]:
    """{framework, generator, discriminator, export, samples, frozen}, as far as found."""
    import torch

    out: dict[str, Any] = {"framework": "torch"}
    gens, discs = [], []
    for mid, module in trained_modules(probe):
        role = try_roles(torch, module)
        if role.get("generator"):
            gens.append((mid, module, role["generator"]))
        if role.get("discriminator"):
            discs.append((mid, module, role["discriminator"]))
    if discs:
        mid, module, shape = discs[-1]
        mid = probe.model_id(module) if mid is None else mid
        out["discriminator"] = {"model": mid, "name": type(module).__name__, "input": list(shape[1:]), "output": [1],
                                "latent": None, "activation": last_activation(module)}
    if not gens:
        return out
    mid, generator, latent = gens[-1]
    mid = probe.model_id(generator) if mid is None else mid
    out["generator"] = {"model": mid, "name": type(generator).__name__, "input": [latent], "output": [784],
                        "latent": latent, "activation": last_activation(generator)}
    tie_fits(probe, out, generator, discs[-1][1] if discs else None)
    out["export"] = export_generator(session, out["generator"], lambda folder: write_pt2(generator, latent, folder),
                                     "torch")
    out["samples"] = sample_summary(lambda z: run(torch, generator, torch.from_numpy(z)), latent, n)
    if discs:
        out["frozen"] = generator_step_spares(probe, generator, discs[-1][1])
    return out


def run(torch: Any, module: Any, x: Any) -> Any:
    """The module's outputs on x in eval mode, without gradients (its mode restored), as numpy."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module(x).float().reshape(len(x), -1).cpu().numpy()
    finally:
        module.train(was)


def try_roles(torch: Any, module: Any) -> dict[str, Any]:
    """{"generator": k} when noise of k in gives 784 values out, {"discriminator": input shape}
    when an image in gives one score; either may be missing."""
    found: dict[str, Any] = {}
    first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    if first is not None and first.in_features <= MAX_LATENT:
        try:
            if run(torch, module, torch.randn(2, first.in_features, device=device)).shape == (2, 784):
                found["generator"] = int(first.in_features)
        except Exception:
            pass
    for shape in IMAGE_INPUTS:
        try:
            if run(torch, module, torch.zeros(shape, device=device)).shape == (2, 1):
                found["discriminator"] = shape
                break
        except Exception:
            continue
    return found


def last_activation(module: Any) -> str | None:
    """The name of the module's last activation layer (Tanh -> "tanh"), "linear" when a Linear
    comes last, None when unknown (a functional activation in forward())."""
    names = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Hardtanh": "hard_tanh", "Hardsigmoid": "hard_sigmoid",
             "ReLU": "relu", "LeakyReLU": "leaky_relu"}
    for m in reversed(list(module.modules())):
        kind = type(m).__name__
        if kind in names:
            return names[kind]
        if kind == "Linear":
            return "linear"
    return None


def write_pt2(generator: Any, latent: int, folder: Any) -> str:
    import torch

    from grader.probe.export import export_program

    export_program(generator.cpu(), torch.randn(2, latent), folder / "model.pt2")
    return "torch_pt2"


def generator_step_spares(probe: Any, generator: Any, discriminator: Any) -> dict[str, Any]:
    """Whether an optimizer that updates the generator also holds discriminator parameters."""
    g_ids = {id(p) for p in generator.parameters()}
    d_ids = {id(p) for p in discriminator.parameters()}
    mixed = [opt for opt in probe.optimizers
             if {id(p) for grp in opt.param_groups for p in grp["params"]} & g_ids
             and {id(p) for grp in opt.param_groups for p in grp["params"]} & d_ids]
    return {"discriminator_changed": bool(mixed), "how": "the generator's optimizer's parameters"}


def trained_modules(probe: Any) -> list[tuple[int | None, Any]]:
    """(model id, module): the modules the probe tied to an optimizer, then (id None) the outermost
    other modules all of whose parameters an optimizer holds. An optimizer over both networks is
    tied to one of them only, by chance of order: the other must still be found."""
    out: list[tuple[int | None, Any]] = list(probe.models.items())
    held = {id(p) for opt in probe.optimizers for g in opt.param_groups for p in g["params"]}
    known = {id(m) for _, m in out}
    extra = []
    for module in list(probe.modules):
        params = [id(p) for p in module.parameters()]
        if id(module) not in known and len(params) >= 2 and set(params) <= held:
            extra.append(module)
    inner = {id(sub) for m in extra + [m for _, m in out] for sub in m.modules() if sub is not m}
    return out + [(None, m) for m in extra if id(m) not in inner]


def tie_fits(probe: Any, out: dict[str, Any], generator: Any, discriminator: Any) -> None:
    """Each role's training record, by index in trace["fits"] ("fit"): the generator's is its
    optimizer's (the one holding its parameters), the discriminator's the one holding its own
    parameters and none of the generator's."""
    g_ids = {id(p) for p in generator.parameters()}
    d_ids = {id(p) for p in discriminator.parameters()} if discriminator is not None else set()
    fits = probe.trace["fits"]
    for opt in probe.optimizers:
        held = {id(p) for grp in opt.param_groups for p in grp["params"]}
        training = probe.trainings.get(id(opt))
        index = next((i for i, f in enumerate(fits) if training is not None and f is training.record), None)
        if index is None:
            continue
        if held & g_ids:
            out["generator"].setdefault("fit", index)
        elif held & d_ids and "discriminator" in out:
            out["discriminator"].setdefault("fit", index)
