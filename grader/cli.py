"""`grader`: a thin command line over the importable pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grader import batch as batch_mod
from grader.cli_data import app as data_app
from grader.cli_marks import app as marks_app
from grader.cli_report import report as report_cmd
from grader.cli_sandbox import GpusOpt, ImageOpt, PerGpuOpt, SandboxOpt, doctor, make_runner
from grader.cli_sandbox import app as sandbox_app
from grader.cli_similarity import similarity as similarity_cmd
from grader.console import err, out
from grader.course import RubricError, load_rubrics
from grader.data import default_cache_dir
from grader.semester import assessment_label
from grader.models import GradeResult, Status
from grader.pipeline import grade, to_json
from grader.reports import write_sheet
from grader.submissions import SubmissionError, class_jobs, programs_in, single_job

app = typer.Typer(help="Grades deep-learning lab programs: runs each submission unchanged in a sandbox, "
                       "checks it against the program's reference harness and turns the results into "
                       "the course manual's marks.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)
app.add_typer(data_app, name="data", short_help="Stage real datasets and pretrained weights from downloaded files; show what is staged.")
app.add_typer(marks_app, name="marks", short_help="Enter Viva, Project, Demonstration and Report marks; override automatic marks with a reason.")
app.command("report")(report_cmd)
app.add_typer(sandbox_app, name="sandbox", short_help="Build the Docker sandbox image.")
app.command("doctor")(doctor)
app.command("similarity")(similarity_cmd)
rubric_app = typer.Typer(help="Course and rubric files.", no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")

CourseOpt = typer.Option("20CSEL76", "--course", help="Course code: the folder under rubrics/ with course.yaml and programN.yaml.")
RubricsOpt = typer.Option(None, "--rubrics", help="Use rubric files from this folder instead of rubrics/<course>/.")
CacheOpt = typer.Option(None, "--cache", help="Dataset cache (staged real data, stand-ins); default $GRADER_CACHE or ~/.cache/grader.")
FlavourOpt = typer.Option(None, "--keras-flavour", help="Override the course's Keras: 'keras3', or 'legacy' (Keras 2 through tf-keras) for the manual's Keras 2-era code.")
AssessmentOpt = typer.Option("record", "--assessment", help="Which marks to give: record (weekly entry, W5+E20+V5), internal (internal test) or see (semester end exam, Part A); the checks are the same.")
FullOpt = typer.Option(False, "--full", help="Run the program as written (all epochs, all data) instead of the quick preview.")


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _rubrics(course: str, folder: Optional[Path], flavour: Optional[str] = None):
    if flavour not in (None, "keras3", "legacy"):
        _fail(f"--keras-flavour must be 'keras3' or 'legacy', not {flavour!r}")
    try:
        rubrics = load_rubrics(course, folder)
    except RubricError as e:
        _fail(str(e))
    if flavour:
        rubrics.course.keras_flavour = flavour
    return rubrics


def _assessment(rubrics, name: str) -> str:
    if name not in rubrics.course.assessments:
        raise RubricError(f"--assessment must be one of {', '.join(rubrics.course.assessments)}, not {name!r}")
    return name


MARK = {True: "[green]✓[/green]", False: "[red]✗[/red]"}


def _print_result(result: GradeResult, sheet: Path, label: str) -> None:
    status_colour = "green" if result.status == Status.ok else "red"
    out.print(f"\n[bold]{label}[/bold]: {result.title}  "
              f"[{status_colour}]{result.status.value}[/{status_colour}]"
              + (f" — {result.status_message}" if result.status_message else ""))
    if result.quick_limits:
        q = result.quick_limits
        subset = f"{q['train_images']} training and {q['test_images']} test samples, " if "train_images" in q else ""
        out.print(f"[dim]Quick preview: at most {q['epochs']} epoch(s), {subset}{q['timeout_s']:.0f} s. "
                  "Use --full for the program as written.[/dim]")
    if result.dataset:
        out.print(f"[dim]Data: {result.dataset}[/dim]")
    out.print()
    for c in result.checks:
        out.print(f" {MARK[c.passed]} [bold]{_esc(c.title or c.id)}[/bold]: {_esc(c.message)}", highlight=False)
        if not c.passed and c.hint:
            out.print(f"     [yellow]hint:[/yellow] {_esc(c.hint)}", highlight=False)
    for f in result.flags:
        out.print(f" [magenta]⚑ for review:[/magenta] {_esc(f)}", highlight=False)
    out.print()
    for a in result.attributes:
        mark = "pending (entered by faculty)" if a.mark is None else f"{a.mark:g} / {a.max:g}  ({a.band})"
        cap = f"  [dim]capped by {a.capped_by}[/dim]" if a.capped_by else ""
        out.print(f" [bold]{a.attribute.capitalize():<10}[/bold] {mark}{cap}")
    out.print(f"\nReport: {sheet}")


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


@app.command()
def check(
    path: Path = typer.Argument(..., help="The program: a .py script, a .ipynb notebook, or a folder holding it."),
    program: Optional[int] = typer.Option(None, "--program", "-p", help="Program number, when the file name does not say it (program3.py says 3)."),
    full: bool = FullOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the machine-readable result object instead of the summary."),
    report_dir: Path = typer.Option(Path("grader-report"), "--out", help="Where to write the HTML report."),
    keras_flavour: Optional[str] = FlavourOpt, assessment: str = AssessmentOpt,
    course: str = CourseOpt, rubrics_dir: Optional[Path] = RubricsOpt, cache: Optional[Path] = CacheOpt,
    sandbox: str = SandboxOpt,
) -> None:
    """Self-check one program before submitting: runs it in the local sandbox and previews its marks.

    Example: grader check program3.py
    """
    rubrics = _rubrics(course, rubrics_dir, keras_flavour)
    try:
        job = single_job(path, program, course, "full" if full else "quick")
        rubrics.program(job.program)
        job.assessment = _assessment(rubrics, assessment)
    except (SubmissionError, RubricError) as e:
        _fail(str(e))
    cache_dir = cache or default_cache_dir()
    label = assessment_label("record", job.program, rubrics.course)  # "Program 3", "Activity 3"
    if not as_json:
        err.print(f"Grading {path} as {label.lower()} ({'full run' if full else 'quick preview'})…")
    artifacts = report_dir / ".artifacts"
    runner = make_runner(sandbox)
    try:
        result = grade(job, rubrics, runner, cache_dir, artifacts)
    finally:
        getattr(runner, "close", lambda: None)()
    sheet = write_sheet(result, report_dir, artifacts_dir=artifacts if artifacts.is_dir() else None)
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
    else:
        _print_result(result, sheet, label)


class RichProgress(batch_mod.Progress):
    """A progress bar on a terminal: done, failed and missing apart, elapsed time and ETA."""

    def __init__(self) -> None:
        self.failed = 0
        self.missing = 0
        self.bar = Progress(TextColumn("[bold]grading[/bold]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed, {task.fields[missing]} missing"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("[dim]{task.fields[last]}[/dim]"), console=err)

    def start(self, total: int, reused: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("grading", total=total, failed=0, missing=0, last="")
        if reused:
            err.print(f"{reused} result(s) already in the gradebook: not graded again")

    def done(self, result: GradeResult, reused: bool = False) -> None:
        self.missing += result.missing
        self.failed += result.status != Status.ok and not result.missing
        self.bar.update(self.task, advance=1, failed=self.failed, missing=self.missing,
                        last="" if reused else ran_on(result))

    def failed_job(self, job, error: Exception) -> None:
        self.bar.update(self.task, advance=1, last=f"{job.student}: not graded ({type(error).__name__})")

    def stop(self) -> None:
        self.bar.stop()


class LineProgress(batch_mod.Progress):
    """Output to a log or a pipe: one line per finished job, as it finishes."""

    def __init__(self) -> None:
        self.total = self.count = 0

    def start(self, total: int, reused: int) -> None:
        self.total = total
        err.print(f"grading {total} job(s)" + (f"; {reused} already in the gradebook" if reused else ""),
                  highlight=False)

    def done(self, result: GradeResult, reused: bool = False) -> None:
        self.count += 1
        if not reused:
            err.print(f"[{self.count}/{self.total}] {job_line(result)}", highlight=False)

    def failed_job(self, job, error: Exception) -> None:
        self.count += 1
        err.print(f"[{self.count}/{self.total}] {job.student} program {job.program}: not graded, "
                  f"{type(error).__name__}: {str(error)[:200]}", highlight=False)


def ran_on(result: GradeResult) -> str:
    """'node grader-2 (3f9a1c2e), gpu 0' for a job a cluster ran; '' otherwise."""
    run = result.run
    if not run or not run.node:
        return ""
    return f"node {run.node}" + (f", {run.device}" if run.device.startswith("gpu") else "")


def job_line(result: GradeResult) -> str:
    """'1GA20CS012 program 3: ok, writeup 5/5 execution 18/20, 41 s' (one finished job)."""
    marks = " ".join(f"{k} {v:g}/{result.max.get(k, 0):g}" for k, v in result.marks.items() if v is not None)
    took = f", {result.run.wall_s:.0f} s" if result.run and result.run.wall_s else ""
    why = f" ({result.status_message[:100]})" if result.outcome not in ("ok", "missing") and result.status_message else ""
    where = f" on {ran_on(result)}" if ran_on(result) else ""
    return (f"{result.student} program {result.program}: {result.outcome}{why}"
            + (f", {marks}" if marks and not result.missing else "") + took + where)


@app.command("batch")
def batch_cmd(
    folder: Path = typer.Argument(Path("submissions"), help="Class folder: one subfolder per student named by USN, optional roster.csv (usn,name)."),
    program: Optional[list[int]] = typer.Option(None, "--program", "-p", help="Program(s) to grade; repeat for several. Default: every program found."),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Submissions graded in parallel."),
    out_dir: Path = typer.Option(Path("reports"), "--out", help="Where mark sheets, index.html, marks.csv and the gradebook go."),
    full: bool = FullOpt, keras_flavour: Optional[str] = FlavourOpt, assessment: str = AssessmentOpt,
    course: str = CourseOpt, rubrics_dir: Optional[Path] = RubricsOpt, cache: Optional[Path] = CacheOpt,
    sandbox: str = SandboxOpt, image: Optional[str] = ImageOpt, gpus: str = GpusOpt, per_gpu: int = PerGpuOpt,
    similarity: bool = typer.Option(True, "--similarity/--no-similarity", help="At the end, compare every pair of "
                                    "students' programs (the manual's code taken out) and flag similar pairs for "
                                    "review in the class report and on their mark sheets; marks never change."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Grade on a Ray cluster: 'auto' (the cluster "
                                          "`ray start` joined this machine to), HOST:PORT, or 'local' (a throw-away "
                                          "one on this machine). Each job is one task on whichever node Ray picks; "
                                          "this command stays the only writer of the gradebook. Needs the "
                                          "'cluster' extra. --jobs does not apply: the cluster's slots decide."),
    cpus_per_job: float = typer.Option(1.0, "--cpus-per-job", help="With --cluster: CPU cores each job asks Ray "
                                       "for, and its container's CPU quota."),
) -> None:
    """Grade a whole class (local sandbox, or one Docker container per job, on this machine or a Ray cluster); resumes where an interrupted run stopped.

    Example: grader batch submissions/ --program 4 --jobs 2 --sandbox docker --gpus all

    On several machines: grader batch submissions/ --cluster auto --sandbox docker --gpus all --per-gpu 2
    """
    rubrics = _rubrics(course, rubrics_dir, keras_flavour)
    try:
        programs = program or [p for p in programs_in(folder) if p in rubrics.programs]
        for p in programs:
            rubrics.program(p)
        job_list = class_jobs(folder, programs, course, "full" if full else "quick")
        for job in job_list:
            job.assessment = _assessment(rubrics, assessment)
    except (SubmissionError, RubricError) as e:
        _fail(str(e))
    if not job_list:
        _fail(f"{folder}: nothing to grade for program(s) {programs}")
    cache_dir = cache or default_cache_dir()
    if cluster:
        runner, engine = None, _cluster_engine(rubrics, cache_dir, cluster, sandbox, image, gpus, per_gpu,
                                               cpus_per_job, rubrics_dir)
    else:
        runner, engine = make_runner(sandbox, image, gpus, per_gpu), None
    try:
        outcome = batch_mod.run_batch(job_list, rubrics, runner, out_dir, cache_dir, jobs_in_parallel=jobs,
                                      on_interrupt=runner.stop if runner else None, similarity=similarity,
                                      progress=RichProgress() if err.is_terminal else LineProgress(), engine=engine)
    except KeyboardInterrupt:
        if getattr(engine, "swept", None):
            err.print(_sweep_line(engine.swept), highlight=False)
        err.print("\n[yellow]Interrupted.[/yellow] Finished results are in the gradebook; run the same "
                  "command again to grade the rest.")
        raise typer.Exit(130)
    for problem in outcome.internal_errors:
        err.print(f"[red]grader error, not stored (run again to retry):[/red] {_esc(problem)}")
    if outcome.similarity_error:
        err.print(f"[red]similarity report not made:[/red] {_esc(outcome.similarity_error)}")
    out.print(batch_mod.summary_line(outcome))
    for report in outcome.similarity:
        out.print(f"Program {report.program}: {len(report.flagged)} similar pair(s) flagged for review: "
                  f"{out_dir / 'similarity' / f'program{report.program}.html'}", highlight=False)
    scheme = "CIE/SEE" if rubrics.course.scheme == "cie_see" else rubrics.course.total.name
    out.print(f"Class summary: {outcome.index}\nMarks: {outcome.csv}\nCourse report ({scheme}): {outcome.course_report}")


def _cluster_engine(rubrics, cache_dir: Path, address: str, sandbox: str, image: Optional[str], gpus: str,
                    per_gpu: int, cpus: float, rubrics_dir: Optional[Path]):
    """The Ray engine for --cluster, or a clear error (Ray missing, no cluster, bad options)."""
    from grader.cluster import ClusterError

    if sandbox not in ("local", "docker"):
        _fail(f"--sandbox must be 'local' or 'docker', not {sandbox!r}")
    try:
        from grader.cluster.engine import ClusterOptions, RayEngine

        engine = RayEngine(rubrics, cache_dir, ClusterOptions(address=address, sandbox=sandbox, image=image, gpus=gpus,
                                                              per_gpu=per_gpu, cpus=cpus, rubrics_dir=rubrics_dir))
    except ClusterError as e:
        _fail(str(e))
    nodes = len([n for n in engine.ray.nodes() if n["Alive"]])
    err.print(f"cluster: {nodes} node(s)" + (f"; {_sweep_line(engine.swept)}" if engine.swept else ""), highlight=False)
    return engine


def _sweep_line(reports) -> str:
    removed = sum(r.removed for r in reports)
    problems = [f"{r.node_id[:8]}: {r.problem or 'left ' + ', '.join(r.left)}" for r in reports if r.problem or r.left]
    return (f"{removed} leftover job container(s) removed across {len(reports)} node(s)"
            + (f" (not swept: {'; '.join(problems)})" if problems else ""))


@rubric_app.command("validate")
def rubric_validate(course: str = CourseOpt, rubrics_dir: Optional[Path] = RubricsOpt) -> None:
    """Load and validate the course file and every program rubric; name what is wrong."""
    rubrics = _rubrics(course, rubrics_dir)
    out.print(f"{rubrics.folder}: course {rubrics.course.course} and programs "
              f"{', '.join(map(str, sorted(rubrics.programs)))} are valid")


if __name__ == "__main__":
    app()
