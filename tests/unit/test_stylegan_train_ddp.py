"""StyleGAN2 training under torchrun (2 CPU processes, gloo): the processes stay in lock-step (slow: off by default)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from dataclasses import replace
    from test_stylegan_train import TINY, Blobs
    from imgforge.training.loop import LoopConfig
    from imgforge.training.stylegan2 import train_stylegan2
    cfg = replace(TINY, augment="ada", ada_interval=1, ada_kimg=0.01, pl_weight=2.0, pl_every=2)
    res = train_stylegan2(Blobs(), cfg, LoopConfig({run!r}, 5, seed=5, checkpoint_every=5, log_every=1))
    rank = int(os.environ["RANK"])
    m = res.method
    torch.save({{"G": m.G.state_dict(), "D": m.D.state_dict(), "p": m.aug.p}}, os.path.join({run!r}, f"rank{{rank}}.pt"))
""")


@pytest.mark.slow
def test_torchrun_two_processes_stay_in_sync(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found")
    run = tmp_path / "run"
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), run=str(run)))
    subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script)], check=True, timeout=300,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    r0 = torch.load(run / "rank0.pt", weights_only=True)
    r1 = torch.load(run / "rank1.pt", weights_only=True)
    for net in ("G", "D"):
        for k in r0[net]:
            if k.startswith("noises."):
                continue  # per-rank noise buffers are never trained
            assert torch.equal(r0[net][k], r1[net][k]), (net, k)
    assert r0["p"] == r1["p"]
    assert (run / "generator.safetensors").is_file() and len((run / "losses.jsonl").read_text().splitlines()) == 5
