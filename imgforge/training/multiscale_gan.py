"""Training of the multi-scale GANs of ``imgforge gan train``: ``--arch lapgan``, ``progan`` and ``msggan``.

Each is a :class:`~imgforge.training.gan.GANMethod` that overrides the step's hooks (what D sees, what G makes, the
objectives), so the step, the common loop, resume, DDP (the global batch's z from ``step_seed``, gradients averaged
across processes), the penalties, the sample grids and the exported ``G.safetensors`` are the ones of part 1.
Networks: :mod:`imgforge.models.multiscale_gan`; pyramids: :mod:`imgforge.ops.pyramid`.

- **LAPGAN** (Denton et al. 2015): the levels are trained *independently*, as in the paper: each real batch is
  decomposed (Gaussian pyramid ``I_k``, low-pass ``u(I_{k+1})``); the coarsest pair is a plain GAN on ``I_K``, and
  level ``k``'s pair a conditional GAN on the **real** low-pass: D_k scores ``u(I_{k+1}) + h_k`` (real) and
  ``u(I_{k+1}) + G_k(z_k, u(I_{k+1}))`` (generated), each with the low-pass as conditioning. The levels share one
  optimiser per side, but no parameters: the summed loss gives every level exactly its own gradients (and
  per-level penalties); ``train_levels`` (``--train-levels``) trains some levels only, the others are neither run
  nor changed (weights, moving average, optimiser state). Logged: the summed ``loss_D`` / ``loss_G`` and
  ``loss_G_<side>`` per level. Sampling runs the chain coarse to fine from one z.
- **ProGAN** (Karras et al. 2018): the stage (resolution level, fade-in α) is a pure function of the real images
  shown to D before the step (``step · batch · d_steps``): ``phase_images`` at the start resolution, then per
  doubling ``fade_images`` with α rising linearly from 0 to 1 and ``phase_images`` at α = 1; the last resolution
  continues until the end. Real images are average-pooled to the current side and, during a fade-in, blended as
  the generator's output is: ``lerp(up(down(x)), x, α)``. Every layer stays trainable. Resume anywhere (also
  mid-fade) repeats the uninterrupted run, because the stage is recomputed from the step.
- **MSG-GAN** (Karnewar & Wang 2020): D gets G's image at every scale (real: the batch average-pooled to every
  scale); all scales train at once; the penalties interpolate all scales with one α per sample and take the
  gradient norm over all of them.

With ``--augment`` (:meth:`~imgforge.training.gan.GANMethod._augment`) the images D scores together get one random
transform per sample: LAPGAN's level image and its low-pass, MSG-GAN's every scale, ProGAN's current-stage image.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..losses.gan_family import RELATIVISTIC, d_loss, g_loss
from ..models.multiscale_gan import scale_table
from ..ops.pyramid import avg_pyramid, gaussian_pyramid, nearest_up, resize_to, u
from .gan import GANMethod

__all__ = ["LapGANMethod", "ProGANMethod", "MSGGANMethod", "MULTISCALE_METHODS", "progan_stage"]


def progan_stage(images: int, start_level: int, max_level: int, phase_images: int, fade_images: int
                 ) -> Tuple[int, float]:
    """``(level, alpha)`` after ``images`` real images: ``phase_images`` at ``start_level``, then for each next level
    ``fade_images`` fading in (α = fraction done) and ``phase_images`` at α = 1; ``max_level`` until the end."""
    t = int(images)
    level = int(start_level)
    while True:
        if t < phase_images or level >= max_level:
            return level, 1.0
        t -= phase_images
        if t < fade_images:
            return level + 1, t / fade_images
        t -= fade_images
        level += 1


class ProGANMethod(GANMethod):
    """Progressive growing (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "ProGAN"
        self.start_level = (self.cfg.start.bit_length() - 1) - 2
        self.level, self.alpha = self.stage(0)

    def stage(self, step: int) -> Tuple[int, float]:
        """The stage of step ``step`` (0-based), from the real images shown before it."""
        images = max(int(step), 0) * self.cfg.batch_size * self.hp["d_steps"]
        return progan_stage(images, self.start_level, self.G.max_level, self.cfg.phase_images, self.cfg.fade_images)

    def _begin_step(self, step: int) -> None:
        self.level, self.alpha = self.stage(step)
        self.G.set_stage(self.level, self.alpha)

    def _real(self, idx: Sequence[int]) -> Tuple[Any, Optional[torch.Tensor]]:
        x, y = self.data.batch(idx, self.device)
        x = resize_to(x, 4 * 2 ** self.level)
        if self.alpha < 1.0:
            x = torch.lerp(nearest_up(resize_to(x, x.shape[-1] // 2)), x, self.alpha)
        return x, y

    def _fake(self, z: torch.Tensor, y: Optional[torch.Tensor], real: Any) -> Any:
        return self.G.synth(z, self.level, self.alpha)

    def _d_scores(self, x: Any, y: Optional[torch.Tensor]) -> torch.Tensor:
        x, = self._augment(x)
        return self.D(x, self.level, self.alpha)

    def _sample_images(self, z: torch.Tensor, y: Optional[torch.Tensor], step: int) -> torch.Tensor:
        level, alpha = self.stage(step - 1)
        img = self.G_sample.synth(z, level, alpha)
        return nearest_up(img, self.cfg.resolution // img.shape[-1])

    def _sample_scales(self, z: torch.Tensor, step: int) -> Optional[torch.Tensor]:
        level, alpha = self.stage(step - 1)
        imgs = self.G_sample.scales(z, level, alpha)
        return torch.stack([nearest_up(x, self.cfg.resolution // x.shape[-1]) for x in imgs], dim=1)

    def step(self, batch: Sequence[Sequence[int]], step: int) -> Dict[str, float]:
        out = super().step(batch, step)
        out.update(resolution=float(4 * 2 ** self.level), alpha=float(self.alpha))
        return out

    def export(self, path: Any, extra: Optional[Dict[str, str]] = None) -> Any:
        level, alpha = self.stage(self.images_seen // max(1, self.cfg.batch_size * self.hp["d_steps"]) - 1)
        self.G_sample.set_stage(level, alpha)
        return super().export(path, {"stage": f"{4 * 2 ** level}px alpha {alpha:.3f}", **(extra or {})})


class MSGGANMethod(GANMethod):
    """Multi-scale gradients (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "MSG-GAN"
        self.sizes = list(self.D.sizes)
        self._shapes: List[torch.Size] = []

    def _real(self, idx: Sequence[int]) -> Tuple[Any, Optional[torch.Tensor]]:
        x, y = self.data.batch(idx, self.device)
        return avg_pyramid(x, self.sizes), y

    def _fake(self, z: torch.Tensor, y: Optional[torch.Tensor], real: Any) -> Any:
        return self.G.multi_scale(z)

    def _d_scores(self, x: Any, y: Optional[torch.Tensor]) -> torch.Tensor:
        return self.D(list(self._augment(*x)))  # every scale of an image: the same transform

    def _pack(self, x: Any) -> torch.Tensor:
        self._shapes = [t.shape[1:] for t in x]
        return torch.cat([t.flatten(1) for t in x], dim=1)

    def _unpack(self, x: torch.Tensor) -> Any:
        out, i = [], 0
        for shape in self._shapes:
            n = shape.numel()
            out.append(x[:, i:i + n].reshape(x.shape[0], *shape))
            i += n
        return out

    def _sample_scales(self, z: torch.Tensor, step: int) -> Optional[torch.Tensor]:
        return scale_table(self.G_sample, z)


class LapGANMethod(GANMethod):
    """The Laplacian pyramid of conditional GANs (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "LAPGAN"
        self.sizes = list(self.G.sizes)
        wanted = self.cfg.train_levels
        #: indices (coarse to fine) of the levels this run trains; the others are neither run nor changed
        self.active = [j for j, side in enumerate(self.sizes) if wanted is None or side in wanted]
        self.frozen = [j for j in range(len(self.sizes)) if j not in self.active]
        # G's parameter names of the frozen levels, from the one level -> sub-network map, _level
        ids = {id(p) for j in self.frozen for p in self._level(self.G, j).parameters()}
        self._frozen_names = frozenset(n for n, p in self.G.named_parameters() if id(p) in ids)

    @staticmethod
    def _level(net: Any, j: int) -> Any:
        """Level ``j``'s (coarse to fine) sub-network of a LAPGAN G or D."""
        return net.coarse if j == 0 else net.levels[j - 1]

    def _trainable(self, module: Any, flag: bool) -> None:
        module.requires_grad_(flag)
        if flag:
            for j in self.frozen:
                self._level(module, j).requires_grad_(False)

    def _ema_only(self) -> Any:
        if not self._frozen_names:
            return None
        return lambda name: name not in self._frozen_names

    def _real(self, idx: Sequence[int]) -> Tuple[Any, Optional[torch.Tensor]]:
        """``{"imgs": [I_K, ..., I_0], "lows": [None, u(I_K), ..., u(I_1)]}`` (coarse to fine)."""
        x, y = self.data.batch(idx, self.device)
        g = gaussian_pyramid(x, len(self.sizes) - 1)[::-1]
        return {"imgs": g, "lows": [None] + [u(t) for t in g[:-1]]}, y

    def _fake(self, z: torch.Tensor, y: Optional[torch.Tensor], real: Any) -> Any:
        """Level ``j``'s generated image from the real low-pass (None for a level this run does not train)."""
        imgs: List[Optional[torch.Tensor]] = [self.G.coarse(z) if 0 in self.active else None]
        for j in range(1, len(self.sizes)):
            low = real["lows"][j]
            imgs.append(low + self.G.residual(j, self.G.noise(j, z), low) if j in self.active else None)
        return {"imgs": imgs, "lows": real["lows"]}

    def _level_scores(self, j: int, x: Any, low: Optional[torch.Tensor]) -> torch.Tensor:
        x, low = self._augment(x, low)  # the image and its conditioning low-pass: the same transform
        return self.D.score(j, x, low)

    def _d_objective(self, real: Any, labels: Optional[torch.Tensor], fake: Any, y_fake: Optional[torch.Tensor],
                     pen: torch.Generator) -> Tuple[torch.Tensor, Dict[str, float]]:
        name = self.cfg.loss
        total: Any = 0.0
        gps: List[float] = []
        s_r, s_f = [], []
        for j in self.active:
            low = real["lows"][j]
            s_real = self._level_scores(j, real["imgs"][j], low)
            s_fake = self._level_scores(j, fake["imgs"][j], low)
            self.aug.accumulate(s_real)
            total = total + d_loss(name, s_real, s_fake)
            if name in ("wgan-gp", "dragan"):
                gp = self._penalty(real["imgs"][j], fake["imgs"][j], labels, pen,
                                   lambda v, j=j, low=low: self._level_scores(j, v, low))
                total = total + gp
                gps.append(float(gp.detach()))
            s_r.append(s_real.detach().mean())
            s_f.append(s_fake.detach().mean())
        out = {"D_real": float(self.dist.mean(torch.stack(s_r).mean())),
               "D_fake": float(self.dist.mean(torch.stack(s_f).mean()))}
        if gps:
            out["gp"] = sum(gps)
        return total, out

    def _g_objective(self, fake: Any, y_fake: Optional[torch.Tensor], real: Any,
                     labels: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, float]]:
        name = self.cfg.loss
        total: Any = 0.0
        out: Dict[str, float] = {}
        for j in self.active:
            low = real["lows"][j]
            s_real = None
            if name in RELATIVISTIC:
                with torch.no_grad():
                    s_real = self._level_scores(j, real["imgs"][j], low)
            loss = g_loss(name, self._level_scores(j, fake["imgs"][j], low), s_real)
            out[f"loss_G_{self.sizes[j]}"] = float(self.dist.mean(loss.detach()))
            total = total + loss
        return total, out

    def _sample_scales(self, z: torch.Tensor, step: int) -> Optional[torch.Tensor]:
        return scale_table(self.G_sample, z)


MULTISCALE_METHODS = {"lapgan": LapGANMethod, "progan": ProGANMethod, "msggan": MSGGANMethod}
