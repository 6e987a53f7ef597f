"""Our safetensors model files: metadata round trip, strict rebuild, byte-reproducible output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imgforge.errors import WeightsError
from imgforge.hub.modelfile import load_model_file, read_model_file, save_model_file

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, torch
sys.path.insert(0, {repo!r})
from imgforge.hub.modelfile import save_model_file
g = torch.Generator().manual_seed(0)
sd = {{f"layer{{i}}.weight": torch.randn(3, 4, generator=g) for i in range(12)}}
save_model_file({out!r}, sd, arch="x", arch_kwargs={{"b": 2, "a": 1}}, extra={{"z": "1", "k": "2", "m": "3"}})
"""


def test_same_content_same_bytes_across_processes(tmp_path: Path) -> None:
    outs = []
    for i in range(3):
        out = tmp_path / f"m{i}.safetensors"
        subprocess.run([sys.executable, "-c", SCRIPT.format(repo=str(REPO), out=str(out))], check=True, timeout=120,
                       env={"PYTHONHASHSEED": str(i), "PATH": "/usr/bin:/bin"})
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    sd, meta = read_model_file(tmp_path / "m0.safetensors")
    assert meta["arch"] == "x" and meta["arch_kwargs"] == {"a": 1, "b": 2} and meta["k"] == "2"
    assert sorted(sd) == sorted(f"layer{i}.weight" for i in range(12))


def test_rebuild_strict_and_errors(tmp_path: Path) -> None:
    from imgforge.models.translation import ResnetGenerator

    net = ResnetGenerator(3, 3, ngf=4, n_blocks=1)
    save_model_file(tmp_path / "g.safetensors", net.state_dict(), arch="resnet_generator", arch_kwargs=net.config(),
                    dtype=torch.float16)
    model, meta = load_model_file(tmp_path / "g.safetensors")
    assert isinstance(model, ResnetGenerator) and meta["format_version"] == "1"
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, net.state_dict()[k].half().float())
    bad = dict(net.state_dict())
    bad.pop(next(iter(bad)))
    save_model_file(tmp_path / "bad.safetensors", bad, arch="resnet_generator", arch_kwargs=net.config())
    with pytest.raises(WeightsError, match="do not fit"):
        load_model_file(tmp_path / "bad.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        read_model_file(tmp_path / "junk.safetensors")
