"""Pieces shared by the CLI commands: global options, option aliases, rich progress rendering, batch summaries."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typing import Annotated

from ..batch import BatchResult, SaveOptions
from ..io import OutputNamer, expand_inputs, parse_shard, take_shard
from ..progress import ProgressEvent
from ..runtime import Runtime

err_console = Console(stderr=True, highlight=False)


@dataclass
class GlobalOptions:
    """Options given before the command (``imgforge --device cpu stylize ...``)."""

    device: str = "auto"
    precision: str = "auto"
    seed: Optional[int] = None
    quiet: bool = False
    debug: bool = False

    def runtime(self, task: str = "inference") -> Runtime:
        """The runtime of this command's ``task`` kind (see :data:`imgforge.runtime.POLICY`)."""
        return Runtime.create(self.device, self.precision, task=task)


def get_globals(ctx: typer.Context) -> GlobalOptions:
    """The :class:`GlobalOptions` stored by the app callback (defaults when a sub-app is invoked alone)."""
    root = ctx.find_root()
    if not isinstance(root.obj, GlobalOptions):
        root.obj = GlobalOptions()
    return root.obj


def given_options(ctx: typer.Context, names: Iterable[str]) -> List[str]:
    """Those of the command's parameters ``names`` that the user set (command line or environment), not left at
    their defaults -- also when set to the default value."""
    out = []
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            out.append(name)
    return out


# ---- option aliases shared by the batch commands ------------------------------------------------------------------

Inputs = Annotated[List[str], typer.Argument(help="Image files, folders, glob patterns ('imgs/*.jpg'), or - for stdin.",
                                             show_default=False)]
OutputOpt = Annotated[Optional[str], typer.Option("-o", "--output", help="Output file for a single input; - writes PNG to stdout.")]
OutDirOpt = Annotated[Optional[Path], typer.Option("--out-dir", help="Folder for the outputs of a batch (created if needed).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Redo outputs that exist (default: skip them).")]
QualityOpt = Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WEBP quality.")]
RecursiveOpt = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of folder inputs.")]
ShardOpt = Annotated[Optional[str], typer.Option("--shard", help="Process only shard K of N of the inputs (K/N, 1-based), for parallel jobs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary to stdout.")]
MaxPixelsOpt = Annotated[Optional[int], typer.Option("--max-pixels", help="Refuse inputs with more pixels than this (default 268M, env IMGFORGE_MAX_PIXELS).")]


@dataclass(frozen=True)
class BatchArgs:
    """The batch options of a command, gathered for :func:`imgforge.batch.run_batch`."""

    inputs: List[str]
    output: Optional[str]
    out_dir: Optional[Path]
    name: str
    overwrite: bool
    quality: int
    recursive: bool
    shard: Optional[str]
    json: bool
    max_pixels: Optional[int]

    def items(self):
        return take_shard(expand_inputs(self.inputs, recursive=self.recursive), parse_shard(self.shard))

    def namer(self, **extra: str) -> OutputNamer:
        if self.output is not None and self.out_dir is not None:
            raise typer.BadParameter("give either -o/--output or --out-dir, not both")
        return OutputNamer(output=self.output, out_dir=str(self.out_dir) if self.out_dir else None,
                           template=self.name, extra=extra)

    def save_options(self) -> SaveOptions:
        return SaveOptions(overwrite=self.overwrite, quality=self.quality, max_pixels=self.max_pixels)


# ---- progress rendering ------------------------------------------------------------------------------------------


class RichProgress:
    """A context manager whose instance is a :data:`~imgforge.progress.ProgressFn` drawing rich progress bars on stderr.

    One bar per task name; metrics are shown after the bar; messages are printed above the bars.
    With ``quiet`` nothing but errors is printed.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=err_console, transient=False, disable=quiet,
        )
        self._tasks: Dict[str, int] = {}

    def __enter__(self) -> "RichProgress":
        if not self.quiet:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self._progress.stop()

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.message and not self.quiet:
            self._progress.console.print(ev.message, markup=False)
        if ev.total is None and ev.step == 0:
            return
        metrics = "  ".join(f"{k}={_fmt(v)}" for k, v in ev.metrics.items())
        if ev.task not in self._tasks:
            self._tasks[ev.task] = self._progress.add_task(ev.task, total=ev.total, metrics=metrics)
        self._progress.update(self._tasks[ev.task], completed=ev.step, total=ev.total, metrics=metrics)


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    return f"{v:.3g}" if (a >= 1e4 or (a < 1e-2 and a != 0)) else f"{v:.3f}"


def print_error(text: str) -> None:
    """One plain, unwrapped line on stderr (scripts grep these)."""
    sys.stderr.write(text.replace("\n", " ") + "\n")
    sys.stderr.flush()


def report_batch(result: BatchResult, *, as_json: bool, quiet: bool) -> int:
    """Print the failures and the summary (or the JSON document) and return the exit code."""
    for r in result.items:
        if r.status == "failed":
            print_error(f"error: {r.error}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif not quiet or result.failed:
        print_error(result.summary())
    return result.exit_code


# ---- options of the training commands that run on the common loop (stylegan, gan, vae train) ------------------------
CheckpointEveryOpt = Annotated[int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")]
SampleEveryOpt = Annotated[int, typer.Option("--sample-every", min=0, help="Steps between sample grids (0: only at the end).")]
LogEveryOpt = Annotated[int, typer.Option("--log-every", min=1, help="Steps between progress updates.")]
LoopResumeOpt = Annotated[bool, typer.Option("--resume/--restart", help="Continue from RUN/checkpoint.pt when it exists (--restart: start over).")]


def loop_config(run: Path, steps: int, g: GlobalOptions, checkpoint_every: int, sample_every: int, log_every: int,
                resume: bool):  # type: ignore[no-untyped-def]
    """The :class:`~imgforge.training.loop.LoopConfig` of a training command (seed: ``--seed``, else 0)."""
    from ..training.loop import LoopConfig

    return LoopConfig(str(run), steps, seed=g.seed if g.seed is not None else 0, checkpoint_every=checkpoint_every,
                      sample_every=sample_every, log_every=log_every, resume=resume)


#: ``--class`` of the commands that sample a class-conditional generator (generate, morph, edit).
ClassOpt = Annotated[Optional[int], typer.Option("--class", min=0, help="Class of a class-conditional generator (e.g. a digit of cdcgan-mnist32); required for those, refused for the others.")]
