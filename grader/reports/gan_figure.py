"""A GAN's picture on the mark sheet: a grid of the samples the clean sandbox generated (judged
on the host, grader/trusted_gan.py) and the two losses per training step, as the program's
process recorded them (grader/probe/keras_batches.py).

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
    model = (rec.get(role) or {}).get("model")
    fits = [f for f in trace.get("fits") or [] if model is not None and f.get("model") == model]
    values = (fits[-1].get("step_loss") or []) if fits else []
    return [float(v) for v in values if isinstance(v, (int, float))]


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
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title("Losses per step (recorded in the program's process)", fontsize=9)
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
