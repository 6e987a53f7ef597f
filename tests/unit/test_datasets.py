"""Translation datasets: reference preprocessing, aligned/unaligned/single folders, per-sample seeded augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.data.folders import AlignedDataset, SingleDataset, UnalignedDataset, list_images, stack
from imgforge.data.transforms import Preprocess, apply_transform, get_params, sample_rng, to_tensor
from imgforge.errors import InputError


def _img(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_sample_rng_depends_only_on_its_arguments() -> None:
    a = sample_rng(5, 7, 2).random(4)
    assert np.array_equal(a, sample_rng(5, 7, 2).random(4))
    assert not np.array_equal(a, sample_rng(5, 7, 3).random(4))
    assert not np.array_equal(a, sample_rng(5, 8, 2).random(4))
    assert not np.array_equal(a, sample_rng(5, 7, 2, stream=1).random(4))


def test_crop_positions_cover_the_inclusive_range_and_flip_is_fair() -> None:
    pre = Preprocess("resize_and_crop", 10, 8, True)
    xs, flips = set(), []
    for i in range(400):
        p = get_params(pre, (50, 30), sample_rng(0, i, 0))
        xs.add(p.crop_x)
        flips.append(p.flip)
        assert 0 <= p.crop_y <= 2
    assert xs == {0, 1, 2}  # load 10 - crop 8 = 2, inclusive
    assert 150 < sum(flips) < 250


def test_transform_matches_reference_definition() -> None:
    rng = np.random.default_rng(0)
    arr = _img(rng, 20, 30)
    img = Image.fromarray(arr)
    pre = Preprocess("resize_and_crop", 16, 12, True)
    params = get_params(pre, img.size, sample_rng(1, 0, 0))
    out = apply_transform(img, pre, params)
    ref = img.resize((16, 16), Image.BICUBIC).crop((params.crop_x, params.crop_y, params.crop_x + 12, params.crop_y + 12))
    if params.flip:
        ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
    assert np.array_equal(np.asarray(out), np.asarray(ref))
    t = to_tensor(out)
    expected = (torch.from_numpy(np.asarray(ref).copy()).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
    assert t.shape == (3, 12, 12) and torch.equal(t, expected)
    assert to_tensor(apply_transform(img, pre, params, grayscale=True)).shape == (1, 12, 12)
    # test-time settings: plain resize to crop_size, no flip
    test = apply_transform(img, pre.for_test(), None)
    assert test.size == (12, 12)
    # scale_width keeps the aspect ratio; none rounds to multiples of 4; full keeps the size
    assert apply_transform(img, Preprocess("scale_width", 15, 8, False), None).size == (15, 10)
    assert apply_transform(img, Preprocess("none", 1, 1, False), None).size == (32, 20)
    assert apply_transform(img, Preprocess("full", 1, 1, False), None).size == (30, 20)


def _aligned(root: Path, phase: str, n: int, h: int = 20, w: int = 20, same: bool = True) -> None:
    rng = np.random.default_rng(1)
    (root / phase).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = _img(rng, h, w)
        b = a if same else _img(rng, h, w)
        Image.fromarray(np.concatenate([a, b], 1)).save(root / phase / f"{i:02d}.png")


def test_aligned_side_by_side_halves_share_crop_and_flip(tmp_path: Path) -> None:
    _aligned(tmp_path, "train", 3)
    ds = AlignedDataset(tmp_path, "train", "AtoB", Preprocess("resize_and_crop", 24, 16, True))
    assert len(ds) == 3 and ds.layout == "side_by_side"
    for step in range(6):
        item = ds.get(step % 3, sample_rng(0, step, 0))
        assert item["input"].shape == (3, 16, 16)
        assert torch.equal(item["input"], item["target"])  # identical halves stay identical
    again = ds.get(1, sample_rng(0, 4, 0))
    assert torch.equal(again["input"], ds.get(1, sample_rng(0, 4, 0))["input"])


def test_aligned_direction_swaps_and_grey_channels(tmp_path: Path) -> None:
    _aligned(tmp_path, "train", 2, same=False)
    pre = Preprocess("resize_and_crop", 20, 20, False)
    ab = AlignedDataset(tmp_path, "train", "AtoB", pre).get(0, None)
    ba = AlignedDataset(tmp_path, "train", "BtoA", pre).get(0, None)
    assert torch.equal(ab["input"], ba["target"]) and torch.equal(ab["target"], ba["input"])
    grey = AlignedDataset(tmp_path, "train", "AtoB", pre, input_nc=1).get(0, None)
    assert grey["input"].shape[0] == 1 and grey["target"].shape[0] == 3


def test_aligned_from_matching_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for side in ("A", "B"):
        (tmp_path / side / "train").mkdir(parents=True)
    for name in ("x 1", "y"):
        a = _img(rng, 16, 16)
        Image.fromarray(a).save(tmp_path / "A" / "train" / f"{name}.png")
        Image.fromarray(255 - a).save(tmp_path / "B" / "train" / f"{name}.bmp")  # same name, other extension
    ds = AlignedDataset(tmp_path, "train", "AtoB", Preprocess("resize_and_crop", 16, 16, False))
    assert ds.layout == "folders" and len(ds) == 2
    item = ds.get(0, None)
    assert torch.allclose(item["input"], -item["target"], atol=1e-6)  # B = inverted A
    (tmp_path / "A" / "train" / "lonely.png").write_bytes((tmp_path / "A" / "train" / "y.png").read_bytes())
    with pytest.raises(InputError, match="lonely.png"):
        AlignedDataset(tmp_path, "train")


def test_aligned_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        AlignedDataset(tmp_path / "missing")
    (tmp_path / "train").mkdir()
    with pytest.raises(InputError, match="no train pairs"):
        AlignedDataset(tmp_path, "train")
    with pytest.raises(InputError, match="no val/ folder"):
        AlignedDataset(tmp_path, "val", phase_fallback=False)


def _unaligned(root: Path, na: int, nb: int) -> None:
    rng = np.random.default_rng(3)
    for side, n in (("A", na), ("B", nb)):
        (root / f"train{side}").mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_img(rng, 12, 14)).save(root / f"train{side}" / f"{side} {i}.png")


def test_unaligned_a_in_order_b_random_but_seeded(tmp_path: Path) -> None:
    _unaligned(tmp_path, 2, 5)
    ds = UnalignedDataset(tmp_path, "train", Preprocess("resize_and_crop", 12, 8, True))
    assert len(ds) == 5
    items = [ds.get(i, sample_rng(0, 0, i)) for i in range(5)]
    assert [Path(str(it["A_path"])).name for it in items] == ["A 0.png", "A 1.png"] * 2 + ["A 0.png"]
    b_names = {str(ds.get(0, sample_rng(0, s, 0))["B_path"]) for s in range(40)}
    assert len(b_names) == 5  # B drawn at random ...
    assert ds.get(0, sample_rng(0, 3, 0))["B_path"] == ds.get(0, sample_rng(0, 3, 0))["B_path"]  # ... reproducibly
    serial = UnalignedDataset(tmp_path, "train", serial=True)
    assert [Path(str(serial.get(i, sample_rng(0, 0, i))["B_path"])).name for i in range(5)] == [f"B {i}.png" for i in range(5)]
    batch = stack(items[:2], ("A", "B"))
    assert batch["A"].shape == (2, 3, 8, 8) and len(batch["A_path"]) == 2  # type: ignore[union-attr, arg-type]


def test_unaligned_and_single_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="trainA"):
        UnalignedDataset(tmp_path)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(InputError, match="no images"):
        UnalignedDataset(tmp_path)
    with pytest.raises(InputError, match="no images"):
        SingleDataset(tmp_path / "trainA")


def test_list_images_is_sorted_recursive_and_case_insensitive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.PNG", "a.jpg", "sub/c.JpEg", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [Path(p).relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "sub/c.JpEg"]
