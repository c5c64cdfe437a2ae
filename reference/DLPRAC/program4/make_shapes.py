"""Draws the small custom dataset of DLPRAC activity 4: coloured shapes on noisy backgrounds,
one folder per class (circle, square, triangle), as a student's own photos would be laid out.

    python3 reference/DLPRAC/program4/make_shapes.py OUT [--per-class N] [--split] [--seed S]

OUT/<class>/*.jpg, or with --split OUT/train/<class>/ and OUT/val/<class>/ (a quarter to val).
Deterministic for a seed. The classes differ in shape and in their main colour, so that even a
base with stand-in (random) weights gives features a new head can learn from.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = {"circle": (200, 60, 50), "square": (50, 170, 70), "triangle": (60, 80, 200)}
SIZE = 64


def draw(kind: str, rng: np.random.Generator) -> Image.Image:
    back = rng.integers(90, 170, 3)
    noise = rng.normal(0, 18, (SIZE, SIZE, 3))
    img = Image.fromarray(np.clip(back + noise, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(img)
    colour = tuple(int(np.clip(c + rng.integers(-35, 36), 0, 255)) for c in CLASSES[kind])
    r = int(rng.integers(12, 24))
    cx, cy = (int(v) for v in rng.integers(r + 2, SIZE - r - 2, 2))
    if kind == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "square":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return img


def make(out: Path, per_class: int = 40, split: bool = False, seed: int = 4) -> list[Path]:
    rng = np.random.default_rng(seed)
    written = []
    for kind in CLASSES:
        for i in range(per_class):
            part = ("val" if i % 4 == 3 else "train") if split else ""
            folder = out / part / kind if part else out / kind
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}_{i:03d}.jpg"
            draw(kind, rng).save(path, quality=90)
            written.append(path)
    return written


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    print(len(make(a.out, a.per_class, a.split, a.seed)), "images under", a.out)
