"""A GAN's picture on the mark sheet: a grid of the samples the clean sandbox generated (judged
on the host, grader/trusted_gan.py) and the two losses per training step, as the program's
process recorded them (grader/probe/keras_batches.py); for a GAN trained by fit() through a
train_step of its own, its losses per epoch (the fit's history).

Drawn with `matplotlib.figure.Figure` on the Agg canvas (never pyplot), like the training curve.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from grader.models import GradeResult

SIDE = 6  # samples per row and column of the grid


def losses(trace: dict[str, Any], role: str) -> list[float]:
    """The per-step losses of the model in `role` (discriminator | stacked), as recorded."""
    rec = ((trace.get("post_run") or {}).get("gan") or {})
    if role == "stacked" and rec.get("framework") == "torch":  # no stacked model: the generator's own optimizer
        role = "generator"
    found, all_fits = rec.get(role) or {}, trace.get("fits") or []
    model, index = found.get("model"), found.get("fit")
    if isinstance(index, int) and 0 <= index < len(all_fits):  # the role's own optimizer's record (PyTorch)
        fits = [all_fits[index]]
    else:
        fits = [f for f in all_fits if model is not None and f.get("model") == model]
    values = (fits[-1].get("step_loss") or []) if fits else []
    return [float(v) for v in values if isinstance(v, (int, float))]


def epoch_losses(trace: dict[str, Any]) -> dict[str, list[float]]:
    """A train_step GAN's losses per epoch, by the names its train_step gave them (its wrapper's
    fit history); empty for any other GAN."""
    wrapper = (((trace.get("post_run") or {}).get("gan") or {}).get("wrapper") or {})
    fits = [f for f in trace.get("fits") or [] if wrapper and f.get("model") == wrapper.get("model")
            and f.get("loop") is None]
    history = (fits[-1].get("history") or {}) if fits else {}
    return {str(k): [float(x) for x in v if isinstance(x, (int, float))] for k, v in history.items()
            if isinstance(v, list) and any(isinstance(x, (int, float)) for x in v)}


def gan_figure_png(result: GradeResult) -> bytes | None:
    """PNG of the sample grid and the loss curves; None when no samples were judged."""
    judged = [t.gan for t in (result.run.trusted if result.run else []) if t.part == "generator" and t.gan]
    if not judged or not judged[-1].grid:
        return None
    images = np.frombuffer(base64.b64decode(judged[-1].grid), dtype=np.uint8).reshape(-1, 28, 28)
    k = min(len(images), SIDE * SIDE)
    grid = np.zeros((SIDE * 28, SIDE * 28), np.uint8)
    for i in range(k):
        r, c = divmod(i, SIDE)
        grid[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] = images[i]
    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
    ax.set_title("Generated outside the program (noise it never saw)", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(1, 2, 2)
    trace = (result.run.trace if result.run else None) or {}
    for role, label in (("discriminator", "discriminator"), ("stacked", "generator (stacked model)")):
        values = losses(trace, role)
        if values:
            ax.plot(range(1, len(values) + 1), values, label=label, linewidth=0.8)
    unit = "step"
    if not ax.lines:  # a train_step GAN: its fit's history, per epoch
        for name, values in epoch_losses(trace).items():
            ax.plot(range(1, len(values) + 1), values, label=name, linewidth=0.8, marker="o", markersize=2)
        unit = "epoch"
    ax.set_xlabel(f"training {unit}")
    ax.set_ylabel("loss")
    ax.set_title(f"Losses per {unit} (recorded in the program's process)", fontsize=9)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def gan_figure(result: GradeResult) -> dict[str, str] | None:
    """{src, caption} for the sheet template, or None."""
    png = gan_figure_png(result)
    if png is None:
        return None
    j = [t.gan for t in result.run.trusted if t.part == "generator" and t.gan][-1]
    return {"src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "caption": f"{len(base64.b64decode(j.grid)) // 784} of the {j.n} samples the grader generated from the "
                       f"exported generator and judged ({j.output_range}); the losses as the program's process "
                       "recorded them."}
