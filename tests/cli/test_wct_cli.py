"""``imgforge stylize --method wct`` with the shipped decoders: output written, options checked, flat styles refused."""

from __future__ import annotations

from PIL import Image

from .helpers import photo, run_cli


def test_wct_stylizes_with_the_shipped_decoders(tmp_path):
    photo(0, (56, 40)).save(tmp_path / "c.png")
    photo(5, (48, 48)).save(tmp_path / "s.png")
    r = run_cli(["stylize", str(tmp_path / "c.png"), "--method", "wct", "--style", str(tmp_path / "s.png"),
                 "--alpha", "0.7", "--levels", "2,1", "-o", str(tmp_path / "o.png")], tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "o.png").size == (56, 40)


def test_wct_bad_inputs(tmp_path):
    photo(0, (40, 40)).save(tmp_path / "c.png")
    Image.new("RGB", (40, 40), (120, 30, 200)).save(tmp_path / "flat.png")
    r = run_cli(["stylize", str(tmp_path / "c.png"), "--method", "wct", "--style", str(tmp_path / "flat.png"),
                 "-o", str(tmp_path / "o.png")], tmp_path)
    assert r.returncode in (1, 3) and b"flat-colour" in r.stderr and b"Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()
    r = run_cli(["stylize", str(tmp_path / "c.png"), "--method", "wct", "--style", str(tmp_path / "c.png"),
                 "--levels", "5,4", "-o", str(tmp_path / "o.png")], tmp_path)
    assert r.returncode == 2 and b"--levels" in r.stderr
    r = run_cli(["stylize", str(tmp_path / "c.png"), "--style", str(tmp_path / "c.png"), "--levels", "2",
                 "-o", str(tmp_path / "o.png")], tmp_path)
    assert r.returncode == 2 and b"--levels is for --method wct" in r.stderr


def test_mrf_stylizes_and_refuses_masks(tmp_path):
    photo(0, (48, 40)).save(tmp_path / "c.png")
    photo(5, (48, 48)).save(tmp_path / "s.png")
    r = run_cli(["--seed", "0", "stylize", str(tmp_path / "c.png"), "--method", "mrf", "--style", str(tmp_path / "s.png"),
                 "--size", "48", "-n", "4", "-o", str(tmp_path / "m.png")], tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "m.png").size == (48, 40)
    r = run_cli(["stylize", str(tmp_path / "c.png"), "--method", "mrf", "--style", str(tmp_path / "s.png"),
                 "--mask", str(tmp_path / "c.png"), "-o", str(tmp_path / "x.png")], tmp_path)
    assert r.returncode == 2 and b"not mrf" in r.stderr and not (tmp_path / "x.png").exists()
