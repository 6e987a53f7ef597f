"""``stylize --method wct``: the encoder and the per-level decoders, loaded once, run on each content image.

Weights: ``--decoder`` names a file of WCT decoders (arch ``wct_decoders``; default the shipped
``imgforge-wct-decoders-embedded``, fitted for the embedded encoder), ``--encoder`` the encoder they were made for
(default: the one named in the decoders' metadata, i.e. the embedded encoder). The reference implementation's
decoders (PytorchWCT) are Torch7 ``.t7`` files that only the removed ``torch.utils.serialization.load_lua`` read;
there is no PyTorch-native published format to load, so only decoders in imgforge's format are accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch
import torch.nn as nn

from ..batch import SaveOptions
from ..errors import UsageError, WeightsError
from ..progress import ProgressFn, note
from ..runtime import Runtime

if TYPE_CHECKING:
    from .stylize import StylizeJob

__all__ = ["DEFAULT_WCT_DECODERS", "load_wct_models", "WctRunner"]

DEFAULT_WCT_DECODERS = "imgforge-wct-decoders-embedded"


def load_wct_models(encoder: Optional[str], decoders: Optional[str],
                    progress: Optional[ProgressFn] = None) -> Tuple[nn.Module, nn.Module, str]:
    """``(encoder, decoders, description)`` for WCT (see the module docstring)."""
    from ..hub.loader import load
    from ..hub.encoders import EMBEDDED_NAME, embedded_encoder_path
    from ..models.vgg import VGGEncoder
    from ..models.wct import WCTDecoders

    dec_model, dec = load(decoders or DEFAULT_WCT_DECODERS, progress=progress)
    if not isinstance(dec_model, WCTDecoders):
        raise WeightsError(f"{dec.path}: holds a {dec.arch!r} network, not WCT decoders (arch wct_decoders)")
    if encoder is None:
        name = dec.meta.get("encoder") or EMBEDDED_NAME
        if name != EMBEDDED_NAME:
            raise UsageError(f"the WCT decoders {dec.path.name} were made for encoder {name!r}; pass it as --encoder")
        encoder = str(embedded_encoder_path())
    enc_model, enc = load(encoder, progress=progress)
    missing = [f"relu{lv}_1" for lv in dec_model.levels
               if not isinstance(enc_model, VGGEncoder) or f"relu{lv}_1" not in enc_model.layer_names]
    if missing:
        raise WeightsError(f"{enc.path}: not a VGG encoder with the layers the WCT decoders need ({', '.join(missing)})")
    return enc_model, dec_model, f"encoder {enc.path.name}, decoders {dec.path.name} (levels {dec_model.levels})"


class WctRunner:
    """Loads encoder, decoders and style images once; stylizes one content image per call (in tiles when it is
    larger than ``job.tile``)."""

    def __init__(self, job: "StylizeJob", rt: Runtime, save: SaveOptions, progress: Optional[ProgressFn]) -> None:
        from .stylize import _load_styles, _shorter_side_at_most

        enc, dec, desc = load_wct_models(job.encoder, job.decoder, progress)
        note(progress, "model", f"WCT: {desc}")
        self.encoder = enc.to(rt.device).eval()
        self.decoders = dec.to(rt.device).eval()
        self.levels = job.levels or tuple(sorted(dec.levels, reverse=True))
        self.auto_levels = job.levels is None  # default levels: too deep ones are dropped for small images
        missing = [lv for lv in self.levels if lv not in dec.levels]
        if missing:
            raise UsageError(f"--levels {','.join(map(str, self.levels))}: the WCT decoders have levels "
                             f"{','.join(map(str, dec.levels))} only")
        self.styles = [_shorter_side_at_most(s, job.style_size).to(rt.device)
                       for s in _load_styles(job.styles, save.max_pixels, "wct")]
        self.job, self.rt, self.save, self.progress = job, rt, save, progress
        self.stats = None  # the styles' statistics per level, once (preserve colour: per content image instead)
        if not job.preserve_color:
            from ..methods.wct import style_stats

            with torch.inference_mode():
                self.stats = style_stats(self.styles, self.encoder, self.levels)

    def __call__(self, content: torch.Tensor, task: str) -> torch.Tensor:
        from ..methods.wct import wct_stylize
        from .stylize import _resize_content, _retask, load_mask

        job = self.job
        x = _resize_content(content, job.size).float().to(self.rt.device)
        masks = [load_mask(m, tuple(x.shape[-2:]), self.save.max_pixels) for m in job.masks] if job.masks else None
        levels = self.levels
        if self.auto_levels:
            from ..methods.wct import usable_levels

            levels = usable_levels(self.levels, *x.shape[-2:])
            if levels != self.levels:
                note(self.progress, "levels", f"WCT: levels {','.join(map(str, levels))} for this {x.shape[-1]}x"
                     f"{x.shape[-2]} image (deeper levels have too few feature positions per channel; --levels "
                     f"overrides)")
        with torch.inference_mode():
            out = wct_stylize(x, self.styles, self.encoder, self.decoders, alpha=job.alpha,
                              style_weights=job.gatys.style_weights, masks=masks,
                              preserve_color=job.preserve_color, levels=levels, stats=self.stats,
                              tile=job.tile,
                              progress=_retask(self.progress, task))
            return out.float().cpu().clamp_(0, 1)
