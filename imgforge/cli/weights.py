"""``imgforge weights``: list, fetch, import, verify and locate model weights.

Errors are raised as :mod:`imgforge.errors` types; the top-level app maps them to one line and an exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ..hub import store
from ..hub import verify as hub_verify
from ..hub.manifest import find_entry, list_entries
from ..progress import ProgressEvent, ProgressFn

#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 70

app = typer.Typer(
    help=(
        "Published and shipped model weights: list them, download and verify them into the cache, convert "
        "upstream checkpoints to safetensors, and show where a name resolves.\n\n"
        "Resolution order: explicit path, IMGFORGE_WEIGHTS_PATH directories, the repository weights/ directory, "
        "the cache (IMGFORGE_CACHE_DIR or $XDG_CACHE_HOME/imgforge), then a download unless IMGFORGE_OFFLINE=1."
    ),
    no_args_is_help=True,
)


def _help(summary: str, body: str = "", examples: Optional[List[str]] = None) -> str:
    """Build command help that renders the same in every Typer markup mode: a one-line summary, one unwrapped
    paragraph, and the examples one per line."""
    parts = [summary]
    if body:
        parts.append(" ".join(body.split()))
    if examples:
        parts.append("Examples:\n\n" + "\n".join(f"  {e}" for e in examples))
    return "\n\n".join(parts)


_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


class _RichProgress:
    """Render :class:`ProgressEvent` streams (byte counts and notes) with a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: Dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            self._progress.console.print(f"[dim]{event.message}[/dim]")
        if event.unit != "B" or (event.step == 0 and event.total is None and event.message):
            return
        task = self._tasks.get(event.task)
        if task is None:
            task = self._progress.add_task(event.task, total=event.total)
            self._tasks[event.task] = task
        self._progress.update(task, completed=event.step, total=event.total)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=False,
    )


def _status(entry_name: str) -> str:
    entry = find_entry(entry_name)
    if entry is None:
        return "-"
    found = store.find_all(entry)
    if not found:
        return "-"
    parts = []
    for path, place in found:
        what = "converted" if path.name == entry.converted_filename and path.name != entry.filename else "raw"
        if entry.converter is None:
            what = "file"
        parts.append(f"{what} ({place.label})")
    return ", ".join(dict.fromkeys(parts))


@app.command(
    "list",
    help=_help(
        'List every known weights entry and whether a local copy exists.',
        (
            'Columns: name, upstream format, hash kind (sha256, sha256_prefix, none = pinned on first fetch, '
            'local), converter, and where local copies are. --json prints every manifest field.'
        ),
        [
            'imgforge weights list',
            'imgforge weights list --present',
            'imgforge weights list --json',
        ],
    ),
)
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (every manifest field plus 'present')."),
    present: bool = typer.Option(False, "--present", help="Only entries with a local copy."),
) -> None:
    rows = []
    for entry in list_entries():
        found = store.find_all(entry)
        if present and not found:
            continue
        rows.append((entry, found))
    if as_json:
        data = []
        for entry, found in rows:
            d = entry.as_dict()
            d["present"] = [{"path": str(p), "place": place.label} for p, place in found]
            data.append(d)
        typer.echo(json.dumps(data, indent=2))
        return
    wide = _out.width >= 110  # format and converter columns only when they fit; --json has everything
    table = Table(title=None, show_lines=False)
    table.add_column("name", no_wrap=True)
    table.add_column("hash", no_wrap=True)
    if wide:
        table.add_column("format", no_wrap=True)
        table.add_column("converter", no_wrap=True)
    table.add_column("local copy", overflow="fold")
    for entry, _found in rows:
        cells = [entry.name, entry.hash_kind]
        if wide:
            cells += [entry.source_format, entry.converter or "-"]
        table.add_row(*cells, _status(entry.name))
    _out.print(table)
    _out.print(f"cache: {store.cache_dir()}")


@app.command(
    "fetch",
    help=_help(
        'Download, verify and convert weights into the cache.',
        (
            'Files already present anywhere on the search path are not downloaded again. An interrupted '
            'transfer is resumed from its .part file in the cache; the file is checked against the '
            "manifest sha256 before anything reads it. When the entry's converter is available the file "
            'is also converted to <name>.safetensors in the cache; otherwise the raw file is kept and '
            'converted when first loaded.'
        ),
        [
            'imgforge weights fetch vgg19',
            'imgforge weights fetch adain-vgg-normalised adain-decoder',
            'IMGFORGE_CACHE_DIR=/data/weights imgforge weights fetch stylegan2-ffhq-1024 --no-convert',
        ],
    ),
)
def fetch_cmd(
    names: List[str] = typer.Argument(..., help="Entry names from `imgforge weights list`."),
    no_convert: bool = typer.Option(False, "--no-convert", help="Keep only the upstream file; do not convert."),
) -> None:
    with _progress_bar() as bar:
        callback: ProgressFn = _RichProgress(bar)
        for name in names:
            result = store.fetch(name, progress=callback, convert=not no_convert)
            bar.console.print(f"{result.name}: {result.message}")


@app.command(
    "import",
    help=_help(
        'Convert an upstream checkpoint into an imgforge safetensors file.',
        (
            "The output's metadata holds the architecture, its kwargs and the source file's sha256, so "
            'the file alone rebuilds the model. Pickles are read safely (weights_only or a restricted '
            'unpickler), never executed. The converter is taken from the manifest when the file name '
            'matches an entry, else guessed from the file; pass --format when the guess fails.'
        ),
        [
            'imgforge weights import ~/Downloads/vgg19-dcbb9e9d.pth',
            'imgforge weights import checkpoints/horse2zebra_pretrained/latest_net_G.pth -o horse2zebra.safetensors',
            'imgforge weights import stylegan2-ffhq-config-f.pt --format rosinality_stylegan2',
        ],
    ),
)
def import_cmd(
    src: Path = typer.Argument(..., help="An upstream checkpoint (.pth, .pt, .pkl)."),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f", help="Converter name (e.g. torchvision_vgg, fast_style, translation_generator, "
        "adain_vgg_normalised, adain_decoder, rosinality_stylegan2, nvidia_stylegan2_pkl); guessed when omitted."
    ),
    out: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Output .safetensors (default: <cache>/<name or file stem>.safetensors)."
    ),
) -> None:
    if out is not None:
        from ..validate import check_output_file

        check_output_file(out, "-o")
    with _progress_bar() as bar:
        path = store.import_file(src, fmt, out, progress=_RichProgress(bar))
    _out.print(str(path))


@app.command(
    "verify",
    help=_help(
        'Re-hash local weights files and compare them with their expected sha256.',
        (
            "The expected digest is the manifest's (full sha256, or the prefix of torchvision file "
            'names), the digest pinned on first fetch for entries without a published one, or '
            'weights/SHA256SUMS for shipped files. Exits with status 1 when any file does not match, or '
            'when a named entry has no local copy. Nothing is downloaded.'
        ),
        [
            'imgforge weights verify',
            'imgforge weights verify vgg19 adain-decoder',
        ],
    ),
)
def verify_cmd(
    names: Optional[List[str]] = typer.Argument(None, help="Entry names; default: every entry with a local copy."),
) -> None:
    results = hub_verify.verify_all(names or None)
    if not results:
        _out.print("no local weights files to verify")
        return
    table = Table()
    for col in ("name", "status", "file", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"ok": "green", "unverified": "yellow", "mismatch": "red", "missing": "red"}
    for r in results:
        table.add_row(r.name, f"[{colour[r.status]}]{r.status}[/]", str(r.path or "-"), r.detail)
    _out.print(table)
    hub_verify.raise_on_failures(results)


@app.command(
    "path",
    help=_help(
        'Print the file a name resolves to, without downloading anything.',
        'Exits with status 1 and one line naming every place looked in when the weights are not available locally.',
        [
            'imgforge weights path vgg19',
            'IMGFORGE_WEIGHTS_PATH=~/models imgforge weights path adain-decoder',
        ],
    ),
)
def path_cmd(
    name: str = typer.Argument(..., help="An entry name or a file path."),
) -> None:
    typer.echo(str(store.resolve(name, offline=True)))
