"""README figures of the multi-scale GANs (issue 15), from the shipped models and the ProGAN recipe's training run.

    python examples/make_multiscale_figures.py [--progan-run RUN]

--progan-run: the run folder of ``weights/recipes/train_gan_mnist.py --model progan-mnist32`` (its sample grids at
fixed z, written every 250 steps; the stage of each step is read from its losses.jsonl); without it only the two
figures made from shipped models are redrawn. Writes into examples/figures/:

* lapgan_chain.png: lapgan-mnist32's coarse-to-fine generation chain for 8 seeds (columns), one row per level from
  the coarsest (as ``imgforge generate --weights lapgan-mnist32 --chain``, transposed);
* progan_growth.png: the same 8 z through ProGAN's training (rows): 4², 8², 16², a frame in the middle of the 32²
  fade-in (alpha about 1/3: the upsampled 16² output blended with the new 32² block), and the final 32² model;
* msggan_scales.png: msggan-mnist32's outputs at every scale (rows 4² ... 32²) for 8 z (columns), all from one
  forward pass.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.io import save_image  # noqa: E402
from imgforge.reports import make_grid, upscale_nearest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_gan_figures import first_cells  # noqa: E402  (the cells of a training sample grid)

OUT = REPO / "examples" / "figures"


def growth_steps(run: Path) -> List[Tuple[int, str]]:
    """``(step, label)`` of the growth figure's rows: the last sampled step at full strength of each resolution below
    the last, the first sampled step inside the last fade-in, and the final step."""
    rows = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]
    sampled = sorted(int(p.stem.split("_")[1]) for p in (run / "samples").glob("step_*.png"))
    stage = {s: (int(rows[s - 1]["resolution"]), float(rows[s - 1]["alpha"])) for s in sampled if s <= len(rows)}
    final_res = max(r for r, _ in stage.values())
    out: List[Tuple[int, str]] = []
    for res in sorted({r for r, _ in stage.values()}):
        if res < final_res:
            full = [s for s, (r, a) in stage.items() if r == res and a >= 1.0]
            if full:
                out.append((max(full), f"{res}x{res}"))
        else:
            fading = [s for s, (r, a) in stage.items() if r == res and 0.0 < a < 1.0]
            if fading:
                s = min(fading)
                out.append((s, f"{res}x{res} fading in, alpha {stage[s][1]:.2f}"))
    out.append((max(stage), f"{final_res}x{final_res}, final"))
    return out


def progan_figure(run: Path) -> List[Tuple[int, str]]:
    steps = growth_steps(run)
    rows = torch.cat([first_cells(run / "samples" / f"step_{s:06d}.png", n=8) for s, _ in steps])
    save_image(upscale_nearest(make_grid(rows, cols=8), 2), OUT / "progan_growth.png")
    return steps


@torch.no_grad()
def chain_figure(name: str, out: str, seeds: int = 8) -> None:
    from imgforge.generator_api import load_generator
    from imgforge.models.multiscale_gan import scale_table
    from imgforge.models.protocols import z_from_seeds

    G = load_generator(name)
    net = getattr(G, "net", G)
    table = ((scale_table(net, z_from_seeds(range(seeds), G.z_dim)).float().clamp(-1, 1) + 1) / 2)  # (N, S, C, R, R)
    if table.shape[2] == 1:
        table = table.expand(-1, -1, 3, -1, -1)
    save_image(upscale_nearest(make_grid(table.transpose(0, 1).flatten(0, 1), cols=seeds), 2), OUT / out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--progan-run", type=Path,
                    help="the progan-mnist32 training run folder (its sample grids); without it, progan_growth.png "
                         "is left as it is")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    if args.progan_run is not None:
        steps = progan_figure(args.progan_run)
        print("progan_growth.png rows: " + "; ".join(f"step {s}: {label}" for s, label in steps))
        written.append("progan_growth.png")
    chain_figure("lapgan-mnist32", "lapgan_chain.png")
    chain_figure("msggan-mnist32", "msggan_scales.png")
    print(f"wrote {', '.join(written + ['lapgan_chain.png', 'msggan_scales.png'])} in {OUT}")


if __name__ == "__main__":
    main()
