"""The clean sandbox's samples of a GAN's generator (grader/trusted_gan.py).

Beside REQUEST.json: model.json and model.weights.h5 (checked by the host). The request's
"gan": {"n": samples, "seed": the noise seed, chosen by the host and never shown to the
program}. The noise is standard normal, N x k, k read from the model's own input shape.
Writes OUT_DIR/samples.npy: float32 N x (28*28) raw generator outputs, and fresh.npy: the same
for the same architecture freshly initialised (what an untrained generator of this shape makes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def samples(folder: Path, request: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(N x 784 float32 outputs of the generator, of a fresh one) on the request's noise."""
    if request.get("flavour") == "legacy":
        import tf_keras as keras
    else:
        import keras
    architecture = (folder / "model.json").read_text()
    model = keras.models.model_from_json(architecture)
    model.load_weights(str(folder / "model.weights.h5"))
    keras.utils.set_random_seed(0)
    fresh = keras.models.model_from_json(architecture)  # the same layers, as Keras initialises them
    latent = int(np.prod(tuple(model.inputs[0].shape)[1:]))
    spec = request["gan"]
    noise = np.random.default_rng(int(spec["seed"])).normal(size=(int(spec["n"]), latent)).astype("float32")
    outs = [np.asarray(m.predict(noise, batch_size=250, verbose=0), dtype=np.float32).reshape(len(noise), -1)
            for m in (model, fresh)]
    return outs[0], outs[1]


def remeasure(folder: Path, request: dict[str, Any], out_dir: Path) -> int:
    trained, fresh = samples(folder, request)
    np.save(out_dir / "samples.npy", trained, allow_pickle=False)
    np.save(out_dir / "fresh.npy", fresh, allow_pickle=False)
    return 0
