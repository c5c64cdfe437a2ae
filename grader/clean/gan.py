"""The clean sandbox's samples of a GAN's generator (grader/trusted_gan.py).

Beside REQUEST.json: model.json and model.weights.h5 (checked by the host). The request's
"gan": {"n": samples, "seed": the noise seed, chosen by the host and never shown to the
program}. The noise is standard normal, N x k, k read from the model's own input shape.
Writes OUT_DIR/samples.npy: float32 N x (28*28) raw generator outputs, and fresh.npy: the same
for the same architecture freshly initialised (what an untrained generator of this shape makes).
A PyTorch generator (kind torch_pt2: model.pt2) gives samples.npy only: a torch.export program
cannot be initialised afresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grader.clean.loaders import first_input_shape
from grader.clean.training import exported_and_fresh


def samples(folder: Path, request: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(N x 784 float32 outputs of the generator, of a fresh one) on the request's noise."""
    model, fresh = exported_and_fresh(folder, request)
    latent = int(np.prod(tuple(model.inputs[0].shape)[1:]))
    spec = request["gan"]
    noise = np.random.default_rng(int(spec["seed"])).normal(size=(int(spec["n"]), latent)).astype("float32")
    outs = [np.asarray(m.predict(noise, batch_size=250, verbose=0), dtype=np.float32).reshape(len(noise), -1)
            for m in (model, fresh)]
    return outs[0], outs[1]


def torch_samples(folder: Path, request: dict[str, Any]) -> np.ndarray:
    """N x 784 float32 outputs of a torch.export generator (model.pt2) on the request's noise;
    the noise size is the program's input placeholder's second axis."""
    import torch

    program = torch.export.load(str(folder / "model.pt2"))
    latent = int(first_input_shape(program)[1])
    spec = request["gan"]
    noise = np.random.default_rng(int(spec["seed"])).normal(size=(int(spec["n"]), latent)).astype("float32")
    module = program.module()
    with torch.no_grad():
        outs = [module(torch.from_numpy(noise[i:i + 250])) for i in range(0, len(noise), 250)]
    return torch.cat([o[0] if isinstance(o, (tuple, list)) else o for o in outs]).float().reshape(len(noise), -1).numpy()


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    """samples.npy, and fresh.npy where the architecture can be freshly initialised (Keras JSON)."""
    if request["kind"] == "torch_pt2":
        np.save(out_dir / "samples.npy", torch_samples(folder, request), allow_pickle=False)
        return 0
    trained, fresh = samples(folder, request)
    np.save(out_dir / "samples.npy", trained, allow_pickle=False)
    np.save(out_dir / "fresh.npy", fresh, allow_pickle=False)
    return 0
