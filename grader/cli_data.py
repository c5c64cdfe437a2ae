"""``grader data``: stage the real datasets, weights and other assets, and show what is served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grader import data

app = typer.Typer(
    help=(
        "Real datasets and pretrained weights for student code. The sandbox has no network: "
        "without staged files, student code gets synthetic stand-ins (CIFAR-10, MNIST, IMDB, "
        "ResNet-50 and Faster R-CNN weights of the same shapes) and reports say so. Download "
        "the official files once, then stage them here. CIFAR-10: cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html; MNIST, IMDB: mnist.npz, imdb.npz and "
        "imdb_word_index.json from https://storage.googleapis.com/tensorflow/tf-keras-datasets/; "
        "weights: from https://download.pytorch.org/models/. A job that asks for something else "
        "from the internet ends with the name to stage it under: a file Keras fetches (by its file "
        "name), nltk:PACKAGE, or a spaCy pipeline (en_core_web_sm)."
    ),
    no_args_is_help=True,
)

CacheOption = Annotated[
    Optional[Path],
    typer.Option(
        "--cache",
        metavar="DIR",
        help="Cache folder (default: $GRADER_CACHE, else ~/.cache/grader). Staged files "
        "go to DIR/datasets/.",
    ),
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command(
    "stage",
    help=(
        "Check a downloaded dataset file and convert it for the sandbox.\n\n"
        "The result, DIR/datasets/NAME.npz, holds exactly what "
        "keras.datasets.NAME.load_data() returns; student code is served it instead of "
        "the synthetic stand-in."
    ),
)
def stage_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Which dataset (cifar10, mnist, imdb, imdb_word_index), pretrained "
                                        "weights (resnet50, fasterrcnn), file a program asks Keras for "
                                        "(resnet50_weights_tf_dim_ordering_tf_kernels.h5, imagenet_class_index.json …), "
                                        "NLTK package (nltk:punkt_tab) or spaCy pipeline (en_core_web_sm).")],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The downloaded file: cifar-10-python.tar.gz (CIFAR-10, python version), "
            "mnist.npz, imdb.npz or imdb_word_index.json (Keras' files), or torchvision's weights file (resnet50-0676ba61.pth, "
            "resnet50-11ad3fa6.pth, fasterrcnn_resnet50_fpn_coco-258fb6c6.pth from "
            "https://download.pytorch.org/models/).",
        ),
    ],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Check the file's published checksum (md5 for CIFAR-10 and the word index, "
            "sha256 for MNIST, IMDB and weights) "
            "before converting. --no-verify stages it anyway and records it as unverified.",
        ),
    ] = True,
    cache: CacheOption = None,
) -> None:
    """Check a downloaded dataset file and convert it for the sandbox."""
    cache_dir = cache if cache is not None else data.default_cache_dir()
    if data.weights_name(name):
        _stage_weights(name, file, cache_dir, verify)
        return
    if data.asset_kind(name) and not _is_dataset(name):
        _stage_asset(name, file, cache_dir, verify)
        return
    try:
        staged = data.stage(name, file, cache_dir, verify=verify)
    except data.DataError as exc:
        _fail(str(exc))
        return
    sizes = (f"{staged.n_train} words" if staged.name == "imdb_word_index" else
             f"{staged.n_train} training and {staged.n_test} test samples")
    typer.echo(f"staged {staged.name}: {sizes}")
    typer.echo(f"  file:     {staged.path}")
    typer.echo(f"  sha256:   {staged.sha256}")
    if staged.verified:
        typer.echo("  verified: yes (checksum of the official file)")
    else:
        typer.echo("  verified: NO (checksum not checked; recorded as unverified in the manifest)")


def _is_dataset(name: str) -> bool:
    try:
        data.canonical_name(name)
    except data.DataError:
        return False
    return True


def _stage_asset(name: str, file: Path, cache_dir: Path, verify: bool) -> None:
    try:
        staged = data.stage_asset(name, file, cache_dir, verify=verify)
    except data.DataError as exc:
        _fail(str(exc))
        return
    typer.echo(f"staged {staged.kind} {staged.name}")
    typer.echo(f"  file:     {staged.path}")
    if staged.sha256:
        typer.echo(f"  sha256:   {staged.sha256}")
    typer.echo(f"  verified: {'yes' if staged.verified else 'NO'} ({staged.how})")


def _stage_weights(name: str, file: Path, cache_dir: Path, verify: bool) -> None:
    try:
        staged = data.stage_weights(name, file, cache_dir, verify=verify)
    except data.DataError as exc:
        _fail(str(exc))
        return
    typer.echo(f"staged {staged.name} weights as {staged.file_name}")
    typer.echo(f"  file:     {staged.path}")
    typer.echo(f"  sha256:   {staged.sha256}")
    typer.echo("  verified: yes (sha256 prefix in torchvision's file name)" if staged.verified else
               "  verified: NO (checksum not checked; recorded as unverified in the manifest)")


@app.command("status")
def status_cmd(cache: CacheOption = None) -> None:
    """Show every asset the sandbox serves: which real files are staged (and whether their
    source file was verified), and what student code gets where none is staged."""
    cache_dir = cache if cache is not None else data.default_cache_dir()
    typer.echo(f"cache: {cache_dir}")
    for st in data.status(cache_dir):
        if not st.staged:
            state = "not staged (student code gets the synthetic stand-in)"
        elif st.verified is None:
            state = "staged (not in the manifest: origin unknown)"
        else:
            state = "staged, verified" if st.verified else "staged, NOT verified"
        typer.echo(f"  {st.name:8s} {state}")
        if st.staged:
            typer.echo(f"           {st.path}")
    typer.echo("pretrained weights:")
    for w in data.weights_status(cache_dir):
        if not w.staged:
            state = "not staged (student code gets a synthetic stand-in)"
        else:
            state = {None: "staged (not in the manifest: origin unknown)", True: "staged, verified",
                     False: "staged, NOT verified"}[w.verified]
        typer.echo(f"  {w.name:10s} {w.file_name:42s} {state}")
    typer.echo("other assets (what a program asks the internet for):")
    for a in data.asset_status(cache_dir):
        if a.staged:
            state = {None: "staged", True: "staged, verified", False: "staged, NOT verified"}[a.verified]
        else:
            state = f"not staged (student code gets: {a.fallback})"
        typer.echo(f"  {a.group:18s} {a.name:32s} {state}")
