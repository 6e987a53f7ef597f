"""The published manifest: well-formed, honest about hashes, consistent with the upstream file names."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse

import pytest

from imgforge.errors import WeightsError
from imgforge.hub.manifest import (
    HASH_KINDS,
    MANIFEST,
    SOURCE_FORMATS,
    WeightsEntry,
    get_entry,
    read_sha256sums,
    torchvision_hash_prefix,
)

CONVERTERS = {
    "torchvision_vgg",
    "adain_vgg_normalised",
    "adain_decoder",
    "fast_style",
    "translation_generator",
    "rosinality_stylegan2",
    "nvidia_stylegan2_pkl",
    "fid_inception",
}


def test_names_and_files_unique() -> None:
    names = [e.name for e in MANIFEST]
    files = [e.filename for e in MANIFEST]
    assert len(set(names)) == len(names)
    assert len(set(files)) == len(files)
    assert not {e.converted_filename for e in MANIFEST} & set(files)


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e.name)
def test_entry_well_formed(entry: WeightsEntry) -> None:
    assert entry.hash_kind in HASH_KINDS and entry.source_format in SOURCE_FORMATS
    assert entry.converter in CONVERTERS
    assert entry.licence and entry.citation and entry.notes and entry.arch
    if entry.url is not None:
        assert urllib.parse.urlsplit(entry.url).scheme in ("http", "https")
    if entry.hash_kind == "none":
        assert "pinned on first fetch" in entry.notes or entry.url is None  # honest about the missing digest
    json.dumps(entry.as_dict())


def test_expected_families_present() -> None:
    names = {e.name for e in MANIFEST}
    assert {"vgg19", "vgg16", "adain-vgg-normalised", "adain-decoder"} <= names
    assert {f"fast-style-{s}" for s in ("candy", "mosaic", "rain-princess", "udnie")} <= names
    assert {
        "stylegan2-ffhq-1024", "stylegan2-ffhq-512", "stylegan2-ffhq-256", "stylegan2-afhqcat-512",
        "stylegan2-afhqdog-512", "stylegan2-afhqwild-512", "stylegan2-metfaces-1024",
    } <= names
    assert "cyclegan-horse2zebra" in names and "pix2pix-facades-label2photo" in names


def test_torchvision_entries_use_the_file_name_prefix() -> None:
    for name, filename, prefix in (("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d"), ("vgg16", "vgg16-397923af.pth",
                                                                                 "397923af")):
        e = get_entry(name)
        assert e.filename == filename and e.hash_kind == "sha256_prefix" and e.sha256 == prefix
        assert e.url == f"https://download.pytorch.org/models/{filename}"
        assert torchvision_hash_prefix(filename) == prefix
    assert torchvision_hash_prefix("decoder.pth") == ""


def test_url_patterns() -> None:
    assert get_entry("adain-decoder").url == (
        "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/decoder.pth"
    )
    assert get_entry("adain-vgg-normalised").url.endswith("/v0.0.0/vgg_normalised.pth")  # type: ignore[union-attr]
    assert get_entry("cyclegan-horse2zebra").url == (
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
    )
    assert get_entry("pix2pix-edges2shoes").url == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/edges2shoes.pth"
    sg = get_entry("stylegan2-ffhq-1024")
    assert sg.url is not None and sg.url.endswith("/stylegan2/versions/1/files/stylegan2-ffhq-1024x1024.pkl")
    assert sg.kwargs()["size"] == 1024
    mosaic = get_entry("fast-style-mosaic")
    assert mosaic.archive_member == "saved_models/mosaic.pth" and mosaic.url is not None
    assert "saved_models.zip" in mosaic.url
    assert get_entry("stylegan2-ffhq-config-f-rosinality").url is None


def test_validation_rejects_dishonest_entries() -> None:
    e = get_entry("vgg19")
    for bad in (
        dict(hash_kind="md5"),
        dict(hash_kind="sha256"),  # a prefix claimed as a full digest
        dict(hash_kind="sha256_prefix", sha256="abc"),  # too short to mean anything
        dict(hash_kind="none"),  # kind none with a digest
        dict(sha256="DCBB9E9D"),
        dict(filename="dir/x.pth"),
        dict(archive_member="x.pth"),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(e, **bad)  # type: ignore[arg-type]


def test_get_entry_unknown() -> None:
    with pytest.raises(WeightsError) as ei:
        get_entry("stylegan2-ffhq-2048")
    assert "stylegan2-ffhq-1024" in str(ei.value)


def test_read_sha256sums(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "SHA256SUMS"
    d = "a" * 64
    p.write_text(f"# comment\n{d}  one.safetensors\n{d.upper()} *two.safetensors\nnot a line\n")
    assert read_sha256sums(p) == {"one.safetensors": d, "two.safetensors": d}
    assert read_sha256sums(tmp_path / "absent") == {}
