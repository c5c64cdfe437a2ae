"""The training-curve picture of a mark sheet, drawn from the probe's trace.

Uses `matplotlib.figure.Figure` with the Agg canvas directly (never pyplot), so pictures
can be drawn from several threads at once and no display is needed.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Names Keras (2 and 3) and the probe use for the accuracy metric, preferred first.
ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
)


def _series(values: Any) -> list[float] | None:
    """A per-epoch series as floats (NaN for missing or non-finite values); None if empty."""
    if not isinstance(values, (list, tuple)) or not values:
        return None
    out: list[float] = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):
            f = math.nan
        out.append(f if math.isfinite(f) else math.nan)
    if not any(math.isfinite(f) for f in out):
        return None
    return out


def _panels(history: Any) -> list[tuple[str, list[tuple[str, list[float]]]]]:
    """[(panel title, [(label, series), ...]), ...] for the loss and accuracy panels."""
    if not isinstance(history, dict):
        return []
    panels = []
    loss = [(label, s) for label, key in (("train", "loss"), ("validation", "val_loss"))
            if (s := _series(history.get(key))) is not None]
    if loss:
        panels.append(("Loss", loss))
    for key in ACCURACY_KEYS:
        acc = [(label, s) for label, k in (("train", key), ("validation", f"val_{key}"))
               if (s := _series(history.get(k))) is not None]
        if acc:
            panels.append(("Accuracy", acc))
            break
    return panels


def last_fit_with_history(trace: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last entry of `trace["fits"]` whose history has something to draw."""
    if not isinstance(trace, dict):
        return None
    fits = trace.get("fits")
    if not isinstance(fits, list):
        return None
    for fit in reversed(fits):
        if isinstance(fit, dict) and _panels(fit.get("history")):
            return fit
    return None


def training_curve_png(trace: dict[str, Any] | None) -> bytes | None:
    """Loss and accuracy per epoch (train and validation) of the last fit, as PNG bytes.

    None when the trace holds no fit with a drawable history.
    """
    fit = last_fit_with_history(trace)
    if fit is None:
        return None
    panels = _panels(fit.get("history"))

    fig = Figure(figsize=(3.7 * len(panels), 2.7), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = {"train": "#1f5fa8", "validation": "#d9731a"}
    for ax, (title, lines) in zip(axes, panels):
        for label, ys in lines:
            xs = list(range(1, len(ys) + 1))
            ax.plot(xs, ys, label=label, color=colours[label], linewidth=1.6,
                    marker="o" if len(ys) <= 30 else None, markersize=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


CURVE_FILE = "training_curve.png"


def save_curve(trace: dict[str, Any] | None, artifacts_dir: Path) -> Path | None:
    """Draws the curve once, when the job is graded; sheets written later embed this file."""
    png = training_curve_png(trace)
    if png is None:
        return None
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    path = artifacts_dir / CURVE_FILE
    path.write_bytes(png)
    return path


def curve_png(trace: dict[str, Any] | None, artifacts_dir: Path | None) -> bytes | None:
    """The curve drawn at grading time if it is there, else drawn now."""
    if artifacts_dir is not None and (Path(artifacts_dir) / CURVE_FILE).is_file():
        return (Path(artifacts_dir) / CURVE_FILE).read_bytes()
    return training_curve_png(trace)
