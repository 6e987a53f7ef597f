"""The shared training loop: deterministic data order, exact resume (also after SIGKILL), Ctrl-C checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from imgforge.training.loop import (DeterministicBatches, LoopConfig, changed_settings, load_checkpoint, load_states,
                                    train_loop)

REPO = Path(__file__).resolve().parents[2]


class ToyMethod:
    """Noisy linear regression with dropout: uses the data order and the global torch RNG every step."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(37, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(37, generator=g)
        self.net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.05)
        self.crash_at: int | None = None

    def state_dict(self):
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, s):
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])

    def step(self, batch, step):
        if self.crash_at is not None and step == self.crash_at:
            raise RuntimeError("simulated crash")
        idx = torch.tensor(batch)
        loss = torch.nn.functional.mse_loss(self.net(self.x[idx]).squeeze(1), self.y[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"mse": loss.item()}


def _run(tmp: Path, steps: int, crash_at=None, every: int = 5):
    torch.manual_seed(123)  # must not matter: the loop seeds / restores the RNGs itself
    m = ToyMethod()
    m.crash_at = crash_at
    order = DeterministicBatches(37, 8, seed=3)
    return train_loop(m, order.global_batch, LoopConfig(str(tmp), steps, seed=3, checkpoint_every=every, log_every=1))


def test_deterministic_batches_cover_epochs_and_split_ranks() -> None:
    b = DeterministicBatches(10, 4, seed=1)
    seen = b.global_batch(0) + b.global_batch(1) + b.global_batch(2)[:2]
    assert sorted(seen) == list(range(10))  # first epoch is a permutation
    assert b.global_batch(5) == DeterministicBatches(10, 4, seed=1).global_batch(5)
    r0 = DeterministicBatches(10, 4, seed=1, rank=0, world_size=2).local_batch(7)
    r1 = DeterministicBatches(10, 4, seed=1, rank=1, world_size=2).local_batch(7)
    assert r0 + r1 == b.global_batch(7)


def test_resume_after_crash_gives_the_same_losses(tmp_path: Path) -> None:
    full = _run(tmp_path / "a", 23)
    with pytest.raises(RuntimeError):
        _run(tmp_path / "b", 23, crash_at=13)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 10
    resumed = _run(tmp_path / "b", 23)
    assert [r["mse"] for r in resumed] == [r["mse"] for r in full]
    assert len(resumed) == 23 and full[-1]["mse"] < full[0]["mse"]
    lines = (tmp_path / "b" / "losses.jsonl").read_text().splitlines()
    assert [json.loads(x)["mse"] for x in lines] == [r["mse"] for r in full]
    assert _run(tmp_path / "b", 23) == resumed  # nothing left to do


def test_resume_with_other_settings_says_which(tmp_path: Path) -> None:
    def run(steps: int, record: dict) -> list:
        notes: list = []
        m = ToyMethod()
        order = DeterministicBatches(37, 8, seed=3)
        train_loop(m, order.global_batch, LoopConfig(str(tmp_path), steps, seed=3, checkpoint_every=2),
                   config_record=record, progress=lambda ev: notes.append(ev.message or ""))
        return [n for n in notes if "differ" in n]

    rec = {"gan": {"lr_g": 0.0002, "loss": "ns"}, "loop": {"steps": 4, "sample_every": 10, "seed": 0}}
    assert run(4, rec) == []
    longer = {"gan": dict(rec["gan"]), "loop": {"steps": 6, "sample_every": 3, "seed": 0}, "world_size": 2}
    assert run(6, longer) == []  # the length, intervals and process count may change
    other = {"gan": {"lr_g": 0.001, "loss": "ns", "ema_kimg": 10.0}, "loop": {"steps": 8, "seed": 0}}
    (line,) = run(8, other)
    assert "gan.lr_g: 0.0002 -> 0.001" in line and "gan.ema_kimg: - -> 10.0" in line and "steps" not in line
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 8  # a note, not a refusal
    assert changed_settings({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == ["a.b: [1, 2] -> [1, 3]"]
    # a setting added after the checkpoint was written, at its default (None), is not a change; set, it is
    assert changed_settings({"gan": {"lr_g": 1}}, {"gan": {"lr_g": 1, "coarse_width": None}}) == []
    assert changed_settings({"gan": {"lr_g": 1}}, {"gan": {"lr_g": 1, "coarse_width": 8}}) == [
        "gan.coarse_width: - -> 8"]
    assert changed_settings({"gan": {"init": "a.safetensors"}}, {"gan": {"init": None}}) == []  # read at step 0 only


SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    from test_training_loop import ToyMethod
    from imgforge.training.loop import DeterministicBatches, LoopConfig, train_loop
    from imgforge.runtime import seed_everything
    seed_everything(3)  # networks are built after seeding, so their init is repeatable
    m = ToyMethod()
    orig = m.step
    def slow(batch, step):
        time.sleep({delay})
        return orig(batch, step)
    m.step = slow
    order = DeterministicBatches(37, 8, seed=3)
    train_loop(m, order.global_batch, LoopConfig({run!r}, 40, seed=3, checkpoint_every=4))
""")


def _script(tmp: Path, run: Path, delay: float) -> Path:
    p = tmp / f"train_{run.name}.py"
    p.write_text(SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), run=str(run), delay=delay))
    return p


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, min_step: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if (run / "checkpoint.pt").exists():
            try:
                if load_checkpoint(run / "checkpoint.pt")["step"] >= min_step:
                    return
            except Exception:
                pass
        assert proc.poll() is None, "training process ended early"
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def test_load_states_keeps_the_optimisers_own_hyperparameters() -> None:
    # a resume with another --lr / --beta1 trains with those: the checkpoint gives Adam's moments, not its settings
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    old = torch.optim.Adam([w], lr=0.1, betas=(0.5, 0.9))
    (w ** 2).sum().backward()
    old.step()
    new = torch.optim.Adam([w], lr=0.01, betas=(0.0, 0.99))
    load_states({"opt": old.state_dict()}, {"opt": new})
    assert new.param_groups[0]["lr"] == 0.01 and new.param_groups[0]["betas"] == (0.0, 0.99)
    assert torch.equal(new.state[w]["exp_avg"], old.state[w]["exp_avg"])
    assert torch.equal(new.state[w]["exp_avg_sq"], old.state[w]["exp_avg_sq"])
    assert float(new.state[w]["step"]) == 1.0


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, _script(tmp_path, ref, 0.0)], check=True, timeout=120)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, _script(tmp_path, run, 0.05)])
    _wait_for_checkpoint(run, proc, 8)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert load_checkpoint(run / "checkpoint.pt")["step"] < 40
    subprocess.run([sys.executable, _script(tmp_path, run, 0.0)], check=True, timeout=120)
    got = [json.loads(x)["mse"] for x in (run / "losses.jsonl").read_text().splitlines()]
    want = [json.loads(x)["mse"] for x in (ref / "losses.jsonl").read_text().splitlines()]
    assert len(got) == 40 and got == want


def test_sigterm_writes_checkpoint_and_exits(tmp_path: Path) -> None:
    run = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, _script(tmp_path, run, 0.05)], stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(run, proc, 4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Interrupted" in err
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 4 <= step < 40
    assert len((run / "losses.jsonl").read_text().splitlines()) == step


def test_finish_runs_on_every_path_with_signals_held(tmp_path: Path) -> None:
    """``finish(history, interrupted)``: after the last step, after the checkpoint of a SIGTERM (then Interrupted),
    and when there is nothing left to do; TERM sent twice while it runs (GNU ``timeout``) neither kills it nor
    skips the rest of it, and the handlers are restored afterwards."""
    import os

    from imgforge.training.loop import Interrupted

    calls: list = []

    def finish(history, interrupted):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        calls.append((len(history), interrupted, load_checkpoint(tmp_path / "checkpoint.pt")["step"]))

    def run(steps: int, stop_at=None):  # type: ignore[no-untyped-def]
        m = ToyMethod()
        if stop_at is not None:
            orig = m.step

            def step(batch, i):  # type: ignore[no-untyped-def]
                if i == stop_at:
                    os.kill(os.getpid(), signal.SIGTERM)  # this step finishes, then the loop stops
                return orig(batch, i)

            m.step = step  # type: ignore[method-assign]
        order = DeterministicBatches(37, 8, seed=3)
        return train_loop(m, order.global_batch, LoopConfig(str(tmp_path), steps, seed=3, checkpoint_every=5),
                          finish=finish)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="stopped at step 3"):
        run(9, stop_at=2)
    assert calls == [(3, True, 3)]  # after the checkpoint of the interrupt, with its history
    assert len(run(9)) == 9 and calls[-1] == (9, False, 9)  # resumed to the end
    assert len(run(9)) == 9 and calls[-1] == (9, False, 9)  # nothing to do: the final files are still written
    assert len(calls) == 3 and signal.getsignal(signal.SIGTERM) is before


def test_repeated_sigterm_is_one_graceful_stop_but_a_second_ctrl_c_stops_now(tmp_path: Path) -> None:
    """GNU ``timeout`` without --foreground signals the process and then its group: the second TERM arrives during
    the same step and must not turn the graceful stop (checkpoint at the step reached) into an abrupt one; a second
    Ctrl-C still stops at once."""
    import os

    from imgforge.training.loop import Interrupted

    def run(sig: int, run_dir: Path):  # type: ignore[no-untyped-def]
        m = ToyMethod()
        orig = m.step

        def step(batch, i):  # type: ignore[no-untyped-def]
            if i == 2:
                os.kill(os.getpid(), sig)
                os.kill(os.getpid(), sig)
            return orig(batch, i)

        m.step = step  # type: ignore[method-assign]
        order = DeterministicBatches(37, 8, seed=3)
        return train_loop(m, order.global_batch, LoopConfig(str(run_dir), 9, seed=3, checkpoint_every=5))

    with pytest.raises(Interrupted, match="stopped at step 3"):
        run(signal.SIGTERM, tmp_path / "term")
    assert load_checkpoint(tmp_path / "term" / "checkpoint.pt")["step"] == 3
    with pytest.raises(KeyboardInterrupt):
        run(signal.SIGINT, tmp_path / "int")
    assert not (tmp_path / "int" / "checkpoint.pt").exists()
