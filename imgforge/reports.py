"""Pictures about results, written once for every command: grids, GIFs, HTML pages and loss curves (no template
engine, no JavaScript; files written atomically).

- :func:`make_grid`: images ``(N, C, H, W)`` or rows of ``(C, H, W)`` images tiled into one picture -- the one
  grid of the package (contact sheets of ``generate``, morph sheets and edit strips, training samples).
- :func:`side_by_side`, :func:`upscale_nearest`: comparisons and pixel-repetition enlargements for viewing.
- :func:`save_gif`: frames as a looping GIF.
- :func:`save_grid`: rows of images (e.g. input | output | target) as one PNG with a 2-pixel white gutter.
- :func:`write_run_page`: ``<run>/index.html``: configuration, loss curves (inline SVG) and the sample grids,
  newest first.
- :func:`write_results_page`: the reference's results page (``util/html.py`` + ``save_images``): one header per
  image name and a row of captioned images (``images/<name>_<visual>.png``) linked to the full-size files.
"""

from __future__ import annotations

import html
import json
import math
import urllib.parse
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from .errors import UsageError
from .fsutil import atomic_path, atomic_write_text
from .io import save_image

_CSS = (
    "body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}"
    "table{border-collapse:collapse}td{padding:4px;vertical-align:top;text-align:center;font-size:0.85em}"
    "img{image-rendering:auto;max-width:100%}h1{font-size:1.4em}h3{margin:1.2em 0 0.3em 0;font-size:1em}"
    ".cfg td{text-align:left;padding:1px 8px;font-family:monospace}"
)


def to_display(x: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` in [-1, 1] (C = 1 or 3) -> ``(3, H, W)`` in [0, 1] (grey tiled to RGB)."""
    y = ((x.detach().float().cpu() + 1.0) / 2.0).clamp(0, 1)
    return y.expand(3, -1, -1) if y.shape[0] == 1 else y


def make_grid(images: Union[torch.Tensor, Sequence[Sequence[torch.Tensor]]], cols: Optional[int] = None, *,
              pad: int = 2, pad_value: float = 1.0, border: bool = True) -> torch.Tensor:
    """Tile images into one picture ``(C, H', W')``.

    Args:
        images: ``(N, C, H, W)`` (laid out in rows of ``cols``; default ``ceil(sqrt(N))``) or rows of ``(C, H, W)``
            images (each cell padded to the largest H and W).
        pad: pixels between cells (and around them when ``border``). pad_value: colour of the padding and of
            empty cells (1 = white, 0 = black).
    Raises:
        UsageError: no images.
    """
    if isinstance(images, torch.Tensor):
        n = images.shape[0]
        ncol = max(1, int(cols or math.ceil(math.sqrt(max(n, 1)))))
        rows: Sequence[Sequence[torch.Tensor]] = [list(images[i:i + ncol]) for i in range(0, n, ncol)]
    else:
        rows = images
        ncol = max((len(r) for r in rows), default=0)
    cells = [c for r in rows for c in r]
    if not cells:
        raise UsageError("no images to put in a grid")
    h = max(c.shape[1] for c in cells)
    w = max(c.shape[2] for c in cells)
    b = pad if border else 0
    out = torch.full((cells[0].shape[0], len(rows) * (h + pad) - pad + 2 * b, ncol * (w + pad) - pad + 2 * b),
                     float(pad_value))
    for i, r in enumerate(rows):
        for j, c in enumerate(r):
            y, x = b + i * (h + pad), b + j * (w + pad)
            out[:, y:y + c.shape[1], x:x + c.shape[2]] = c.float().cpu()
    return out


def side_by_side(*images: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """Concatenate ``(3, H, W)`` images left to right with a ``gap``-pixel white separator: ``(3, H, W_total)``."""
    parts: List[torch.Tensor] = []
    for i, im in enumerate(images):
        if i and gap:
            parts.append(torch.ones(3, im.shape[1], gap))
        parts.append(im.float().cpu())
    return torch.cat(parts, dim=2)


def upscale_nearest(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Enlarge ``(..., H, W)`` by pixel repetition (for viewing small images)."""
    if factor <= 1:
        return img
    return img.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def save_gif(frames: Sequence[torch.Tensor], path: Union[str, Path], duration_ms: int = 80, upscale: int = 1) -> Path:
    """Write ``(3, H, W)`` frames in [0, 1] as a looping GIF (atomic); ``upscale`` enlarges by pixel repetition."""
    from PIL import Image

    ims = []
    for f in frames:
        t = upscale_nearest(f.float().clamp(0, 1), upscale)
        arr = (t.mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
        ims.append(Image.fromarray(arr, mode="RGB"))
    if not ims:
        raise UsageError("no frames to write")
    with atomic_path(path) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=duration_ms, loop=0)
    return Path(path)


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: Path) -> Path:
    """Write :func:`make_grid` of ``[-1, 1]`` tensors ``(C, H, W)`` as a PNG (atomically)."""
    grid = make_grid([[to_display(c) for c in r] for r in rows])
    return save_image(grid, path)


# ---- loss curves --------------------------------------------------------------------------------------------------

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def _smooth(values: Sequence[float], window: int) -> List[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def loss_svg(history: Sequence[Mapping[str, float]], width: int = 760, height: int = 220) -> str:
    """An inline SVG with one panel per loss (moving average over ~1/50 of the run), or ``""`` without history.

    A panel's line runs through the steps where its loss was logged with a finite value: a loss missing from some
    rows (e.g. a LAPGAN level not trained after a resume) or a NaN is left out, not drawn as zero; the x axis is the
    whole run's in every panel, and a loss with no finite value gets an empty panel that says so."""
    if not history:
        return ""
    names = list(dict.fromkeys(k for r in history for k in r if k != "step"))  # in order of first appearance
    steps = [float(r.get("step", i + 1)) for i, r in enumerate(history)]
    s0, s1 = steps[0], steps[-1] if steps[-1] > steps[0] else steps[0] + 1
    panels = []
    cols = 3
    pw, ph = width // cols, height // 2 if len(names) > cols else height
    for n, name in enumerate(names):
        logged = [(s, float(r[name])) for s, r in zip(steps, history)
                  if name in r and math.isfinite(float(r[name]))]
        x0, y0 = (n % cols) * pw, (n // cols) * ph
        frame = f'<rect x="{x0 + 40}" y="{y0 + 20}" width="{pw - 50}" height="{ph - 40}" fill="white" stroke="#ccc"/>'
        if not logged:
            panels.append(f'<g>{frame}<text x="{x0 + 42}" y="{y0 + 14}" font-size="12">{html.escape(name)} '
                          f'(no finite value)</text></g>')
            continue
        sm = _smooth([v for _, v in logged], max(1, len(logged) // 50))
        lo, hi = min(sm), max(sm)
        span = (hi - lo) or 1.0
        stride = max(1, len(sm) // 400)
        pts = " ".join(
            f"{x0 + 40 + (pw - 50) * (s - s0) / (s1 - s0):.1f},{y0 + ph - 20 - (ph - 40) * (v - lo) / span:.1f}"
            for (s, _), v in list(zip(logged, sm))[::stride]
        )
        colour = _COLOURS[n % len(_COLOURS)]
        panels.append(
            f'<g>{frame}'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>'
            f'<text x="{x0 + 42}" y="{y0 + 14}" font-size="12">{html.escape(name)} (last {sm[-1]:.4g})</text>'
            f'<text x="{x0 + 2}" y="{y0 + 26}" font-size="9">{hi:.3g}</text>'
            f'<text x="{x0 + 2}" y="{y0 + ph - 20}" font-size="9">{lo:.3g}</text></g>'
        )
    rows = (len(names) + cols - 1) // cols
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{rows * ph}">{"".join(panels)}</svg>'


# ---- pages --------------------------------------------------------------------------------------------------------


def write_run_page(
    run_dir: Path,
    title: str,
    config: Mapping[str, Any],
    history: Sequence[Mapping[str, float]],
    samples: Sequence[Tuple[int, str]],
    columns: Sequence[str],
    notes: Sequence[str] = (),
) -> Path:
    """Write ``run_dir/index.html``: title, notes, loss curves, the sample grids (``(step, relative path)``,
    newest first, with the column captions) and the configuration."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for n in notes:
        parts.append(f"<p>{html.escape(n)}</p>")
    if history:
        last = history[-1]
        parts.append(f"<p>step {int(last.get('step', len(history)))}: "
                     + ", ".join(f"{html.escape(k)} {v:.4g}" for k, v in last.items() if k != "step") + "</p>")
        parts.append(loss_svg(history))
    if samples:
        parts.append(f"<h3>samples (columns: {html.escape(' | '.join(columns))})</h3>")
        for step, rel in sorted(samples, reverse=True):
            src = html.escape(urllib.parse.quote(rel))
            parts.append(f"<p>step {step}<br><a href='{src}'><img src='{src}'></a></p>")
    parts.append("<h3>configuration</h3><table class='cfg'>")
    for k in sorted(config):
        v = config[k]
        txt = v if isinstance(v, str) else json.dumps(v, default=str)
        parts.append(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(txt))}</td></tr>")
    parts.append("</table></body></html>\n")
    path = Path(run_dir) / "index.html"
    atomic_write_text(path, "".join(parts))
    return path


def write_results_page(
    out_dir: Path,
    title: str,
    rows: Sequence[Tuple[str, Sequence[Tuple[str, str]]]],
    *,
    width: int = 256,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``out_dir/index.html`` in the reference's results layout: for each ``(name, [(label, relpath)])`` a
    header with the image name, then one table row of images ``width`` pixels wide with their labels."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for n in notes:
        parts.append(f"<p>{html.escape(n)}</p>")
    for name, images in rows:
        parts.append(f"<h3>{html.escape(name)}</h3><table><tr>")
        for label, rel in images:
            src = html.escape(urllib.parse.quote(rel))
            parts.append(f"<td><a href='{src}'><img style='width:{width}px' src='{src}'></a><br>{html.escape(label)}</td>")
        parts.append("</tr></table>")
    parts.append("</body></html>\n")
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, "".join(parts))
    return path
