"""History buffer of generated images for discriminator updates (Shrivastava et al. 2017), as the reference's
``util/image_pool.py`` (CycleGAN: ``pool_size=50``; pix2pix: 0 = disabled).

For each image of an incoming batch separately: while fewer than ``pool_size`` images are stored, the image is
stored and returned; once full, with probability 1/2 (``uniform(0, 1) > 0.5``) a uniformly chosen stored image is
returned (a clone) and the new image takes its slot, otherwise the new image is returned and the pool is unchanged.
Stored and returned images are detached. The reference uses Python's global ``random``; pass ``rng`` (a seeded
``random.Random``) for reproducible runs. :meth:`state_dict` / :meth:`load_state_dict` let a training loop resume
exactly.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Union

import torch


class ImagePool:
    """``pool = ImagePool(50, rng=random.Random(0)); d_input = pool.query(fake.detach())``.

    ``query(images: (B, C, H, W)) -> (B, C, H, W)``: a mix of the incoming images and stored older ones.
    """

    def __init__(self, pool_size: int = 50, rng: Optional[random.Random] = None) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.rng: Union[random.Random, Any] = rng if rng is not None else random
        self.images: List[torch.Tensor] = []

    @property
    def num_imgs(self) -> int:
        """Images currently stored."""
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape; see the module docstring. ``pool_size == 0`` returns ``images`` as is."""
        if self.pool_size == 0:
            return images
        out: List[torch.Tensor] = []
        for image in images:
            image = image.detach().unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                idx = self.rng.randint(0, self.pool_size - 1)
                old = self.images[idx].clone()
                self.images[idx] = image
                out.append(old)
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> Dict[str, Any]:
        """Stored images and the RNG state (when the pool has its own ``random.Random``)."""
        state: Dict[str, Any] = {"pool_size": self.pool_size, "images": [t.clone() for t in self.images]}
        if isinstance(self.rng, random.Random):
            state["rng_state"] = self.rng.getstate()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the pool size must match)."""
        if int(state["pool_size"]) != self.pool_size:
            raise ValueError(f"pool size mismatch: saved {state['pool_size']}, this pool {self.pool_size}")
        self.images = [t.clone() for t in state["images"]]
        if "rng_state" in state and isinstance(self.rng, random.Random):
            self.rng.setstate(state["rng_state"])
