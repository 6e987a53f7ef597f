"""CycleGAN training (Zhu et al. 2017), as ``models/cycle_gan_model.py`` of junyanz/pytorch-CycleGAN-and-pix2pix.

One step (:meth:`CycleGANMethod.step`): ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, ``fake_A = G_B(B)``,
``rec_B = G_A(fake_A)``; generators first (D frozen) on
``GAN(D_A(fake_B), real) + GAN(D_B(fake_A), real) + lambda_A * L1(rec_A, A) + lambda_B * L1(rec_B, B)
+ lambda_identity * (lambda_B * L1(G_A(B), B) + lambda_A * L1(G_B(A), A))``; then the discriminators, each on
``0.5 * (GAN(D(real), real) + GAN(D(pool.query(fake)), fake))`` with image pools of 50. One Adam for both
generators, one for both discriminators. Defaults: resnet_9blocks, instance norm, no dropout, lsgan, lambda 10/10,
identity 0.5, 286 -> 256 crops and flips.

Under DDP the fakes of all ranks are gathered before they go through the (identically seeded) pools, so the pools
behave as one pool over the combined batch.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..losses.gan import GANLoss, gradient_penalty
from .image_pool import ImagePool
from .loop import DistInfo, load_states, step_seed
from .translation_common import (
    SEED_STREAM, TranslationTrainConfig, discriminator_arch, generator_arch, lr_multiplier, make_adam, make_net, set_lr,
    set_requires_grad,
)


@dataclass(frozen=True)
class CycleGANConfig(TranslationTrainConfig):
    """CycleGAN options (see :class:`TranslationTrainConfig` for the shared ones).

    Attributes:
        lambda_A / lambda_B: weights of the A->B->A and B->A->B cycle L1 terms (10).
        lambda_identity: identity term weight relative to lambda (0.5; needs input_nc == output_nc).
        pool_size: image history for the discriminators (50; 0 disables).
        serial_batches: take B in order (index modulo |B|) instead of at random.
    """

    lambda_A: float = 10.0
    lambda_B: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    serial_batches: bool = False

    def validate(self) -> None:
        super().validate()
        if self.lambda_identity > 0 and self.input_nc != self.output_nc:
            raise UsageError("the identity loss needs input_nc == output_nc; pass --lambda-identity 0")
        if self.pool_size < 0:
            raise UsageError(f"--pool-size must be >= 0, got {self.pool_size}")


class CycleGANMethod:
    """G_A (A->B), G_B (B->A), D_A (judges domain B), D_B (judges domain A), pools and optimisers.

    Batches: ``{"A": (B, input_nc, H, W), "B": (B, output_nc, H, W)}`` in [-1, 1] (this rank's part).
    """

    name = "cyclegan"
    columns = ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")

    def __init__(self, cfg: CycleGANConfig, *, device: torch.device, autocast_dtype: Optional[torch.dtype] = None,
                 channels_last: bool = False, dist: DistInfo = DistInfo(), n_data: int = 1) -> None:
        cfg.validate()
        self.cfg, self.device, self.dtype, self.channels_last, self.dist = cfg, device, autocast_dtype, channels_last, dist
        self.n_data = n_data
        self.ga_arch, self.ga_kwargs = generator_arch(cfg.netG, cfg.input_nc, cfg.output_nc, cfg.ngf, cfg.norm, cfg.dropout)
        self.gb_arch, self.gb_kwargs = generator_arch(cfg.netG, cfg.output_nc, cfg.input_nc, cfg.ngf, cfg.norm, cfg.dropout)
        self.da_arch, self.da_kwargs = discriminator_arch(cfg, cfg.output_nc)
        self.db_arch, self.db_kwargs = discriminator_arch(cfg, cfg.input_nc)
        self.netG_A = make_net(self.ga_arch, self.ga_kwargs, cfg, device, channels_last).train()
        self.netG_B = make_net(self.gb_arch, self.gb_kwargs, cfg, device, channels_last).train()
        self.netD_A = make_net(self.da_arch, self.da_kwargs, cfg, device, channels_last).train()
        self.netD_B = make_net(self.db_arch, self.db_kwargs, cfg, device, channels_last).train()
        self.criterion = GANLoss(cfg.gan).to(device)
        self.fake_A_pool = ImagePool(cfg.pool_size, rng=random.Random(cfg.seed * 2 + 1))
        self.fake_B_pool = ImagePool(cfg.pool_size, rng=random.Random(cfg.seed * 2 + 2))
        g_params = list(self.netG_A.parameters()) + list(self.netG_B.parameters())
        d_params = list(self.netD_A.parameters()) + list(self.netD_B.parameters())
        self.opt_G = make_adam(g_params, cfg, device)
        self.opt_D = make_adam(d_params, cfg, device)

    # ---- state -------------------------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        return {
            "G_A": self.netG_A.state_dict(), "G_B": self.netG_B.state_dict(),
            "D_A": self.netD_A.state_dict(), "D_B": self.netD_B.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "pool_A": _pool_state(self.fake_A_pool), "pool_B": _pool_state(self.fake_B_pool),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        for name in ("G_A", "G_B", "D_A", "D_B"):
            getattr(self, f"net{name}").load_state_dict(state[name])
        load_states(state, {"opt_G": self.opt_G, "opt_D": self.opt_D})
        _load_pool(self.fake_A_pool, state["pool_A"])
        _load_pool(self.fake_B_pool, state["pool_B"])

    def exports(self) -> Dict[str, tuple]:
        return {
            "G_A": (self.netG_A, self.ga_arch, self.ga_kwargs, {"direction": "AtoB"}),
            "G_B": (self.netG_B, self.gb_arch, self.gb_kwargs, {"direction": "BtoA"}),
        }

    # ---- step --------------------------------------------------------------------------------------------------

    def _autocast(self):  # type: ignore[no-untyped-def]
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def lr_at(self, step: int) -> float:
        epoch = (step * self.cfg.batch_size) // max(self.n_data, 1)
        return self.cfg.lr * lr_multiplier(self.cfg, epoch)

    def _d_loss(self, netD: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple:
        with self._autocast():
            loss_real = self.criterion(netD(real).float(), True)
            loss_fake = self.criterion(netD(fake.detach()).float(), False)
            loss = (loss_real + loss_fake) * 0.5
            if self.cfg.gan == "wgangp":
                gp, _ = gradient_penalty(netD, real, fake.detach(), lambda_gp=self.cfg.lambda_gp)
                loss = loss + gp
        return loss

    def _pooled(self, pool: ImagePool, fake: torch.Tensor) -> torch.Tensor:
        full = self.dist.gather_batch(fake.detach())
        out = pool.query(full)
        out = self.dist.local_slice(out)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def step(self, batch: Dict[str, Any], step: int) -> Dict[str, float]:
        cfg = self.cfg
        torch.manual_seed(step_seed(cfg.seed, step, self.dist.rank, SEED_STREAM))
        set_lr([self.opt_G, self.opt_D], self.lr_at(step))
        real_A, real_B = self._to(batch["A"]), self._to(batch["B"])
        # generators
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            fake_B = self.netG_A(real_A).float()
            rec_A = self.netG_B(fake_B).float()
            fake_A = self.netG_B(real_B).float()
            rec_B = self.netG_A(fake_A).float()
            loss_G_A = self.criterion(self.netD_A(fake_B).float(), True, for_discriminator=False)
            loss_G_B = self.criterion(self.netD_B(fake_A).float(), True, for_discriminator=False)
            losses: Dict[str, torch.Tensor] = {}
            loss_idt_A = loss_idt_B = torch.zeros((), device=self.device)
            if cfg.lambda_identity > 0:
                idt_A = self.netG_A(real_B).float()
                idt_B = self.netG_B(real_A).float()
        loss_cycle_A = F.l1_loss(rec_A, real_A.float()) * cfg.lambda_A
        loss_cycle_B = F.l1_loss(rec_B, real_B.float()) * cfg.lambda_B
        if cfg.lambda_identity > 0:
            loss_idt_A = F.l1_loss(idt_A, real_B.float()) * cfg.lambda_B * cfg.lambda_identity
            loss_idt_B = F.l1_loss(idt_B, real_A.float()) * cfg.lambda_A * cfg.lambda_identity
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        self.dist.average_grads(list(self.netG_A.parameters()) + list(self.netG_B.parameters()))
        self.opt_G.step()
        # discriminators
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D_A = self._d_loss(self.netD_A, real_B, self._pooled(self.fake_B_pool, fake_B))
        loss_D_A.backward()
        loss_D_B = self._d_loss(self.netD_B, real_A, self._pooled(self.fake_A_pool, fake_A))
        loss_D_B.backward()
        self.dist.average_grads(list(self.netD_A.parameters()) + list(self.netD_B.parameters()))
        self.opt_D.step()
        self.dist.average_buffers([self.netG_A, self.netG_B, self.netD_A, self.netD_B])
        losses.update(D_A=loss_D_A, G_A=loss_G_A, cycle_A=loss_cycle_A, idt_A=loss_idt_A,
                      D_B=loss_D_B, G_B=loss_G_B, cycle_B=loss_cycle_B, idt_B=loss_idt_B)
        return self.dist.mean_scalars(losses)

    # ---- visuals -----------------------------------------------------------------------------------------------

    def translate_pair(self, A: torch.Tensor, B: torch.Tensor, *, eval_mode: bool = False) -> Dict[str, torch.Tensor]:
        """``real_A, fake_B, rec_A, real_B, fake_A, rec_B`` for ``[-1, 1]`` batches (any size: padded)."""
        from ..methods.translate import run_generator

        A, B = A.to(self.device), B.to(self.device)
        kw = dict(eval_mode=eval_mode, dropout=False)
        fake_B = run_generator(A, self.netG_A, **kw)
        rec_A = run_generator(fake_B, self.netG_B, **kw)
        fake_A = run_generator(B, self.netG_B, **kw)
        rec_B = run_generator(fake_A, self.netG_A, **kw)
        return {"real_A": A, "fake_B": fake_B, "rec_A": rec_A, "real_B": B, "fake_A": fake_A, "rec_B": rec_B}

    def visuals(self, batch: Dict[str, Any]) -> List[List[torch.Tensor]]:
        v = self.translate_pair(batch["A"], batch["B"])
        return [[v[c][i].cpu() for c in self.columns] for i in range(batch["A"].shape[0])]


def _pool_state(pool: ImagePool) -> Dict[str, Any]:
    """The pool's state with the Python RNG state as tensors/ints only (weights_only-loadable)."""
    st = pool.state_dict()
    if "rng_state" in st:
        version, keys, gauss = st["rng_state"]
        st["rng_state"] = (version, torch.tensor(keys, dtype=torch.int64), gauss)
    return st


def _load_pool(pool: ImagePool, st: Dict[str, Any]) -> None:
    st = dict(st)
    if "rng_state" in st:
        version, keys, gauss = st["rng_state"]
        st["rng_state"] = (version, tuple(int(k) for k in keys.tolist()), gauss)
    pool.load_state_dict(st)
