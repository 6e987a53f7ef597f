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
            print_error(f"{exc.label}: {exc}")
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


def _register() -> None:
    """Register every command module of ``imgforge/cli`` (one with ``register(app)`` or a sub-app ``app``), in the
    help order each declares as ``HELP_ORDER`` (modules without one come last, by name)."""
    from ..discovery import import_package_modules

    mods = [m for m in import_package_modules("imgforge.cli", skip=("app", "common"))
            if hasattr(m, "register") or isinstance(getattr(m, "app", None), typer.Typer)]
    for mod in sorted(mods, key=lambda m: (getattr(m, "HELP_ORDER", 1000), m.__name__)):
        if hasattr(mod, "register"):
            mod.register(app)
        else:
            app.add_typer(mod.app, name=mod.__name__.rsplit(".", 1)[-1])


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="imgforge")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
