"""pix2pix training (Isola et al. 2017), as ``models/pix2pix_model.py`` of junyanz/pytorch-CycleGAN-and-pix2pix.

One step (:meth:`Pix2PixMethod.step`): ``fake = G(input)``; discriminator update on
``0.5 * (GAN(D(cat(input, fake).detach()), fake) + GAN(D(cat(input, target)), real))`` (+ gradient penalty for
``wgangp``); generator update on ``GAN(D(cat(input, fake)), real) + lambda_L1 * L1(fake, target)``. D is
conditional (input_nc + output_nc channels). Defaults: unet_256, batch norm, dropout on, vanilla GAN, lambda_L1 100,
no image pool, Adam 2e-4 / (0.5, 0.999), linear decay, 286 -> 256 crops and flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

from ..losses.gan import GANLoss, gradient_penalty
from .loop import DistInfo, load_states, step_seed
from .translation_common import (
    SEED_STREAM, TranslationTrainConfig, discriminator_arch, generator_arch, lr_multiplier, make_adam, make_net, set_lr,
    set_requires_grad,
)


@dataclass(frozen=True)
class Pix2PixConfig(TranslationTrainConfig):
    """pix2pix options (see :class:`TranslationTrainConfig` for the shared ones).

    Attributes:
        direction: ``AtoB`` (A = input) or ``BtoA`` (facades labels -> photo is BtoA).
        lambda_l1: weight of the L1 term (100).
    """

    netG: str = "unet_256"
    norm: str = "batch"
    dropout: bool = True
    gan_mode: str = "vanilla"
    direction: str = "AtoB"
    lambda_l1: float = 100.0

    def validate(self) -> None:
        super().validate()
        from ..errors import UsageError

        if self.direction not in ("AtoB", "BtoA"):
            raise UsageError(f"--direction {self.direction!r}: expected AtoB or BtoA")


class Pix2PixMethod:
    """Networks, optimisers and the step of pix2pix. Build it after seeding (its init uses the global RNG).

    Batches: ``{"input": (B, input_nc, H, W), "target": (B, output_nc, H, W)}`` in [-1, 1] (this rank's part).
    """

    name = "pix2pix"
    columns = ("input", "output", "target")

    def __init__(self, cfg: Pix2PixConfig, *, device: torch.device, autocast_dtype: Optional[torch.dtype] = None,
                 channels_last: bool = False, dist: DistInfo = DistInfo(), n_data: int = 1) -> None:
        cfg.validate()
        self.cfg, self.device, self.dtype, self.channels_last, self.dist = cfg, device, autocast_dtype, channels_last, dist
        self.n_data = n_data
        self.g_arch, self.g_kwargs = generator_arch(cfg.netG, cfg.input_nc, cfg.output_nc, cfg.ngf, cfg.norm, cfg.dropout)
        self.d_arch, self.d_kwargs = discriminator_arch(cfg, cfg.input_nc + cfg.output_nc)
        self.netG = make_net(self.g_arch, self.g_kwargs, cfg, device, channels_last).train()
        self.netD = make_net(self.d_arch, self.d_kwargs, cfg, device, channels_last).train()
        self.criterion = GANLoss(cfg.gan).to(device)
        self.opt_G = make_adam(self.netG.parameters(), cfg, device)
        self.opt_D = make_adam(self.netD.parameters(), cfg, device)

    # ---- state -------------------------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        return {"G": self.netG.state_dict(), "D": self.netD.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.netG.load_state_dict(state["G"])
        self.netD.load_state_dict(state["D"])
        load_states(state, {"opt_G": self.opt_G, "opt_D": self.opt_D})

    def exports(self) -> Dict[str, tuple]:
        """``{file stem: (network, arch, kwargs, extra metadata)}`` of the networks worth saving for inference."""
        return {"G": (self.netG, self.g_arch, self.g_kwargs, {"direction": self.cfg.direction})}

    # ---- step --------------------------------------------------------------------------------------------------

    def _autocast(self):  # type: ignore[no-untyped-def]
        import contextlib

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def lr_at(self, step: int) -> float:
        epoch = (step * self.cfg.batch_size) // max(self.n_data, 1)
        return self.cfg.lr * lr_multiplier(self.cfg, epoch)

    def step(self, batch: Dict[str, Any], step: int) -> Dict[str, float]:
        cfg = self.cfg
        torch.manual_seed(step_seed(cfg.seed, step, self.dist.rank, SEED_STREAM))
        set_lr([self.opt_G, self.opt_D], self.lr_at(step))
        real_a, real_b = self._to(batch["input"]), self._to(batch["target"])
        with self._autocast():
            fake_b = self.netG(real_a).float()
        # discriminator
        set_requires_grad([self.netD], True)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            fake_ab = torch.cat([real_a, fake_b], 1)
            real_ab = torch.cat([real_a, real_b], 1)
            loss_d_fake = self.criterion(self.netD(fake_ab.detach()).float(), False)
            loss_d_real = self.criterion(self.netD(real_ab).float(), True)
            loss_d = (loss_d_fake + loss_d_real) * 0.5
            losses = {"D_real": loss_d_real, "D_fake": loss_d_fake}
            if cfg.gan == "wgangp":
                gp, _ = gradient_penalty(self.netD, real_ab, fake_ab.detach(), lambda_gp=cfg.lambda_gp)
                loss_d = loss_d + gp
                losses["D_gp"] = gp
        loss_d.backward()
        self.dist.average_grads(self.netD.parameters())
        self.opt_D.step()
        # generator
        set_requires_grad([self.netD], False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            loss_g_gan = self.criterion(self.netD(torch.cat([real_a, fake_b], 1)).float(), True, for_discriminator=False)
        loss_g_l1 = F.l1_loss(fake_b, real_b.float()) * cfg.lambda_l1
        (loss_g_gan + loss_g_l1).backward()
        self.dist.average_grads(self.netG.parameters())
        self.opt_G.step()
        set_requires_grad([self.netD], True)
        self.dist.average_buffers([self.netG, self.netD])
        return self.dist.mean_scalars({"G_GAN": loss_g_gan, "G_L1": loss_g_l1, **losses})

    # ---- visuals -----------------------------------------------------------------------------------------------

    def visuals(self, batch: Dict[str, Any]) -> List[List[torch.Tensor]]:
        """Rows ``[input, G(input), target]`` (``(C, H, W)`` in [-1, 1]) for the sample grid. BatchNorm uses each
        image's own statistics and dropout is off (the reference's ``test.py`` without its dropout noise)."""
        from ..methods.translate import run_generator

        x = batch["input"].to(self.device)
        y = run_generator(x, self.netG, eval_mode=False, dropout=False).cpu()
        return [[batch["input"][i], y[i], batch["target"][i]] for i in range(x.shape[0])]
