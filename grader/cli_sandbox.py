"""`grader sandbox build` and `grader doctor`, and the choice of sandbox for check and batch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from grader.console import err, out
from grader.doctor import diagnose
from grader.sandbox_image import IMAGES, SandboxError, build

app = typer.Typer(help="The Docker sandbox image.", no_args_is_help=True)

SandboxOpt = typer.Option("local", "--sandbox", help="Where jobs run: 'local' (a sandboxed process, for laptops "
                          "and CI) or 'docker' (one hardened container per job, for grading servers).")
ImageOpt = typer.Option(None, "--image", help=f"Docker sandbox image (default {IMAGES['full']}).")
GpusOpt = typer.Option("auto", "--gpus", help="Docker sandbox GPUs: 'auto' (all when there are any), 'all', "
                       "'none' (CPU), or GPU numbers such as 0,2. Each job gets one GPU.")
PerGpuOpt = typer.Option(1, "--per-gpu", min=1, help="Docker sandbox: jobs sharing one GPU at a time, each "
                         "limited to its share of the GPU's memory.")


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def make_runner(sandbox: str, image: Optional[str] = None, gpus: str = "auto", per_gpu: int = 1):
    """The runner the options ask for; a clear error when it cannot be had."""
    if sandbox == "local":
        if image or per_gpu != 1 or gpus not in ("auto", "none"):
            _fail("--image, --gpus and --per-gpu apply to the Docker sandbox: add --sandbox docker")
        from grader.runners.local import LocalRunner

        return LocalRunner()
    if sandbox != "docker":
        _fail(f"--sandbox must be 'local' or 'docker', not {sandbox!r}")
    try:
        from grader.runners.docker import DockerRunner

        return DockerRunner(image=image, gpus=gpus, per_gpu=per_gpu)
    except SandboxError as e:
        _fail(str(e))


@app.command("build")
def build_cmd(
    base: Optional[str] = typer.Option(None, "--base", help="Base image in the engine (default: Debian bookworm, "
                                       "made with debootstrap when the engine lacks it)."),
    wheelhouse: Optional[Path] = typer.Option(None, "--wheelhouse", help="Offline: install from the wheels in this "
                                              "folder instead of downloading them."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Image name (default grader-sandbox:latest, "
                                      "grader-sandbox:cpu with --cpu, grader-sandbox:slim with --slim)."),
    cpu: bool = typer.Option(False, "--cpu", help="CPU builds of TensorFlow, PyTorch and scikit-learn (no "
                             "torchvision, no tf-keras): a machine without a GPU, about 3 GB."),
    slim: bool = typer.Option(False, "--slim", help="No framework (NumPy, Matplotlib, Jupyter): for the "
                              "sandbox's own tests."),
    force: bool = typer.Option(False, "--force", help="Build even when the image is current."),
) -> None:
    """Build the Docker sandbox image from sandbox/ (frameworks, probe, non-root user).

    Example: grader sandbox build --wheelhouse ~/wheels
    """
    if cpu and slim:
        _fail("--cpu and --slim name two different images: choose one")
    try:
        result = build("slim" if slim else "cpu" if cpu else "full", base=base, wheelhouse=wheelhouse, tag=tag, force=force,
                       log=lambda line: err.print(f"[dim]{line}[/dim]", highlight=False))
    except SandboxError as e:
        _fail(str(e))
    done = "already current, not rebuilt" if result.reused else f"built in {result.seconds:.0f} s"
    out.print(f"{result.image}: {result.size_mb / 1024:.2f} GB, {done}")
    for name, version in result.versions.items():
        out.print(f"  {name:<24} {version}")


MARKS = {"ok": "[green]✓[/green]", "note": "[yellow]![/yellow]", "problem": "[red]✗[/red]"}


def doctor(
    image: Optional[str] = ImageOpt,
    course: str = typer.Option("20CSEL76", "--course", help="Course whose Keras flavour to show."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Dataset cache (default $GRADER_CACHE or ~/.cache/grader)."),
    cluster: bool = typer.Option(False, "--cluster", help="Also check every node of the Ray cluster against this "
                                 "machine: Python, grader, harness, rubrics, image, staged data; GPUs and disk; "
                                 "and whether Ray's token authentication is on."),
    address: str = typer.Option("auto", "--address", help="With --cluster: the cluster to check ('auto' or HOST:PORT)."),
    rubrics_dir: Optional[Path] = typer.Option(None, "--rubrics", help="With --cluster: the rubric folder the batch will use."),
) -> None:
    """Is this machine ready to grade? The engine, the image, GPUs, staged data, the course's Keras; with --cluster, every node."""
    from grader.course import RubricError, load_rubrics
    from grader.data import default_cache_dir

    try:
        flavour = load_rubrics(course).course.keras_flavour
    except RubricError as e:
        _fail(str(e))
    findings = diagnose(cache or default_cache_dir(), image or IMAGES["full"], flavour, course)
    if cluster:
        findings += _cluster_findings(course, rubrics_dir, cache or default_cache_dir(), image or IMAGES["full"], address)
    for f in findings:
        out.print(f" {MARKS[f.state]} [bold]{f.topic}[/bold]: {f.detail}", highlight=False)
        if f.fix and f.state != "ok":
            out.print(f"     [yellow]fix:[/yellow] {f.fix}", highlight=False)
    problems = sum(f.state == "problem" for f in findings)
    out.print(f"\n{problems} problem(s)" if problems else "\nReady to grade.")
    raise typer.Exit(1 if problems else 0)


def _cluster_findings(course: str, rubrics_dir: Optional[Path], cache: Path, image: str, address: str):
    """Every node's findings (grader.cluster.doctor), or a clear error without Ray or a cluster."""
    from grader.cluster import ClusterError

    try:
        from grader.cluster.doctor import check_cluster
        from grader.cluster.engine import connect

        connect(address)
    except ClusterError as e:
        _fail(str(e))
    return check_cluster(course, rubrics_dir, cache, image)
