"""``imgforge stylize`` / ``texture`` end to end: bad inputs, exit codes, naming, stdout, JSON, texture sizes."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import make_bad_inputs, photo, run_cli

FAST = ["--size", "32", "--iterations", "3"]


@pytest.fixture()
def style(tmp_path: Path) -> Path:
    p = tmp_path / "style.png"
    photo(9, (48, 48)).rotate(45).save(p)
    return p


def _lines(stderr: bytes) -> list[str]:
    return [x for x in stderr.decode().splitlines() if x.strip()]


def test_ten_bad_inputs_in_one_batch(tmp_path: Path, style: Path) -> None:
    inputs = tmp_path / "in"
    expected = make_bad_inputs(inputs)
    photo(5).save(inputs / "good.png")
    names = sorted(expected) + ["good.png"]
    out = tmp_path / "out"
    r = run_cli(["stylize", *[str(inputs / n) for n in names], "--style", str(style), *FAST, "--out-dir", str(out)],
                tmp_path)
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert "Traceback" not in err
    for name, outcome in expected.items():
        line = [x for x in _lines(r.stderr) if x.startswith("error:") and name in x]
        if outcome == "ok":
            assert not line, line
            assert (out / f"{Path(name).stem}_gatys.png").is_file()
        else:
            assert len(line) == 1 and outcome in line[0], (name, line)
    assert (out / "good_gatys.png").is_file()
    assert "4 written" in err and "6 failed" in err
    # the odd colour modes came out as plain RGB(A) pictures of the right size
    assert Image.open(out / "palette_gatys.png").mode == "RGBA"
    assert Image.open(out / "cmyk_gatys.png").size == (32, 26)


def test_unwritable_output_dir(tmp_path: Path, style: Path) -> None:
    photo().save(tmp_path / "a.png")
    r = run_cli(["stylize", "a.png", "--style", str(style), *FAST, "--out-dir", "/proc/imgforge-no"], tmp_path)
    lines = _lines(r.stderr)
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    assert any(x.startswith("error:") and "cannot write" in x for x in lines)


def test_usage_errors_exit_2(tmp_path: Path, style: Path) -> None:
    photo().save(tmp_path / "a.png")
    photo(1).save(tmp_path / "b.png")
    r = run_cli(["stylize", "a.png", "b.png", "--style", str(style), *FAST, "-o", "x.png"], tmp_path)
    assert r.returncode == 2 and "one input" in r.stderr.decode()
    r = run_cli(["stylize", "a.png", "--style", str(style), "--shard", "5/2"], tmp_path)
    assert r.returncode == 2
    r = run_cli(["stylize", "a.png", "--style", str(style), "--no-such-flag"], tmp_path)
    assert r.returncode == 2
    r = run_cli(["stylize", "a.png", "--style", str(style), "--optimizer", "sgd"], tmp_path)
    assert r.returncode == 2 and "optimizer" in r.stderr.decode()
    r = run_cli(["stylize", "a.png", "--style", str(style), "-o", "x.gif"], tmp_path)
    assert r.returncode == 2 and "cannot write" in r.stderr.decode()


def test_missing_style_is_one_line_exit_1(tmp_path: Path) -> None:
    photo().save(tmp_path / "a.png")
    r = run_cli(["stylize", "a.png", "--style", "nope.jpg", *FAST, "-o", "x.png"], tmp_path)
    assert r.returncode == 1
    assert _lines(r.stderr)[-1] == "error: nope.jpg: no such file"
    r = run_cli(["--debug", "stylize", "a.png", "--style", "nope.jpg", *FAST, "-o", "x.png"], tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr.decode()


def test_stdout_json_skip_and_seed(tmp_path: Path, style: Path) -> None:
    photo().save(tmp_path / "a.png")
    r = run_cli(["--seed", "1", "stylize", "-", "--style", str(style), *FAST, "-o", "-"], tmp_path,
                stdin=(tmp_path / "a.png").read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    first = np.asarray(Image.open(BytesIO(r.stdout)))
    assert first.shape == (26, 32, 3)
    r = run_cli(["--seed", "1", "stylize", "a.png", "--style", str(style), *FAST, "--out-dir", "o", "--json"], tmp_path)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] == 1 and doc["items"][0]["output"] == str(Path("o") / "a_gatys.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a_gatys.png")), first)  # same seed, same result
    r = run_cli(["stylize", "a.png", "--style", str(style), *FAST, "--out-dir", "o", "--json"], tmp_path)
    assert json.loads(r.stdout)["skipped"] == 1 and r.returncode == 0


def test_texture_any_size(tmp_path: Path, style: Path) -> None:
    r = run_cli(["texture", "--style", str(style), "--width", "40", "--height", "24", "--iterations", "3",
                 "-o", "t.png"], tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "t.png").size == (40, 24)


def test_help_lists_working_commands(tmp_path: Path) -> None:
    r = run_cli(["--help"], tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0
    for cmd in ("stylize", "style-transfer", "texture", "weights"):
        assert cmd in out
    r = run_cli(["stylize", "--help"], tmp_path)
    assert "Examples" in r.stdout.decode() and "--style" in r.stdout.decode()
    assert run_cli(["--version"], tmp_path).stdout.decode().startswith("imgforge ")
