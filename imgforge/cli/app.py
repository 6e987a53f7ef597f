"""The ``imgforge`` command: global options, sub-commands, and the mapping of errors to one line + exit code.

Exit codes: 0 ok; 1 failure (one plain line, ``--debug`` for the traceback); 2 usage error; 3 some items of a
batch failed while others were written; 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer
from typer.core import TyperGroup
from typing import Annotated

from .. import __version__
from ..errors import ImgforgeError, UsageError
from ..runtime import set_threads_from_env
from .common import GlobalOptions, print_error


class ImgforgeGroup(TyperGroup):
    """Typer group that turns imgforge errors into one line and the right exit code (unless ``--debug``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if _debug(ctx):
                raise
            print_error(f"usage error: {exc}")
            raise typer.Exit(2) from None
        except ImgforgeError as exc:
            if _debug(ctx):
                raise
            print_error(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if _debug(ctx):
                raise
            print_error("interrupted")
            raise typer.Exit(130) from None


def _debug(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False))


app = typer.Typer(
    name="imgforge",
    cls=ImgforgeGroup,
    help="Neural image editing and translation: style transfer, texture synthesis, weights management.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgforge {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps (auto: cuda > mps > cpu).")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto | fp32 | bf16 | fp16 (auto: bf16 where the CPU/GPU has it, else fp32).")] = "auto",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for repeatable results on the same machine.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """imgforge: neural image editing from one command line.

    Examples:

      imgforge stylize photo.jpg --style painting.jpg -o out.png

      imgforge --precision fp32 --seed 1 stylize imgs/ --style starry.jpg --out-dir styled/

      imgforge weights list
    """
    set_threads_from_env()
    ctx.obj = GlobalOptions(device=device, precision=precision, seed=seed, quiet=quiet, debug=debug)


#: Command modules under imgforge/cli, in help order. Each has ``register(app)`` or a sub-app ``app``.
COMMAND_GROUPS = ("stylize", "style_train", "translation", "generate", "edit", "stylegan", "gan", "vae", "weights")


def _register() -> None:
    import importlib

    for name in COMMAND_GROUPS:
        try:
            mod = importlib.import_module(f"imgforge.cli.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name != f"imgforge.cli.{name}":
                raise
            continue
        if hasattr(mod, "register"):
            mod.register(app)
        else:
            app.add_typer(mod.app, name=name)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="imgforge")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
