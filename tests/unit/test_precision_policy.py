"""The precision policy table of Runtime: what ``--precision auto`` means per task kind and device kind."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.runtime import (
    POLICY, Runtime, autocast_dtype, autocast_name, precision_name, resolve_precision,
)


@pytest.mark.parametrize("fast_bf16", ["1", "0"])
def test_policy_on_cpu(monkeypatch: pytest.MonkeyPatch, fast_bf16: str) -> None:
    monkeypatch.setenv("IMGFORGE_CPU_BF16", fast_bf16)
    hw = torch.bfloat16 if fast_bf16 == "1" else None
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is hw
    for task in ("inference", "optimisation", "training"):
        rt = Runtime.create("cpu", "auto", task=task)
        # optimisation (Gatys, inversion) stays fp32 on CPUs: bf16 sends the optimiser elsewhere (< 40 dB vs fp32)
        want = None if task == "optimisation" else hw
        # training: channels_last on GPUs only (it slowed CPU training steps, and InstanceNorm backward needs a guard)
        assert (rt.dtype, rt.channels_last) == (want, task != "training"), task
        assert Runtime.create("cpu", "fp32", task=task).dtype is None
        assert Runtime.create("cpu", "bf16", task=task).dtype is torch.bfloat16
    # sampling (generate): fp32 without channels_last on CPUs whatever the hardware, unless asked for
    rt = Runtime.create("cpu", "auto", task="sampling")
    assert (rt.dtype, rt.channels_last) == (None, False)
    rt = Runtime.create("cpu", "bf16", task="sampling")
    assert (rt.dtype, rt.channels_last) == (torch.bfloat16, True)
    # StyleGAN2 training: fp32 only
    assert Runtime.create("cpu", "auto", task="fp32-training").dtype is None
    with pytest.raises(UsageError, match="--precision bf16: StyleGAN2 training runs in fp32; drop --precision"):
        Runtime.create("cpu", "bf16", task="fp32-training")
    with pytest.raises(UsageError, match="expected one of"):
        Runtime.create("cpu", "fp64")
    assert set(POLICY) == {"inference", "optimisation", "training", "sampling", "fp32-training"}


def test_one_dtype_name_map() -> None:
    for dt, short, long in [(None, "fp32", None), (torch.bfloat16, "bf16", "bfloat16"), (torch.float16, "fp16", "float16")]:
        assert precision_name(dt) == short and autocast_name(dt) == long
        assert autocast_dtype(long) is dt and autocast_dtype(short) is dt
    assert Runtime(torch.device("cpu"), torch.bfloat16).autocast_name == "bfloat16"
    with pytest.raises(UsageError):
        autocast_dtype("float64")


def test_native_low_precision_copy_is_a_runtime_decision() -> None:
    cpu, meta = torch.device("cpu"), torch.device("meta")
    assert Runtime(cpu, torch.bfloat16).native_dtype is torch.bfloat16
    assert Runtime(cpu, None).native_dtype is None and Runtime(cpu, torch.float16).native_dtype is None
    assert Runtime(meta, torch.bfloat16).native_dtype is None  # other devices: autocast
