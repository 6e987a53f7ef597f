"""imgforge.hub.store: resolution order, offline errors, fetch/convert, pins and verify, import, load_model, sniffing."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

import imgforge
from imgforge.errors import ChecksumError, InputError, OfflineError, UsageError, WeightsError
from imgforge.hub import manifest, store
from imgforge.hub import verify as hub_verify
from imgforge.hub.modelfile import read_model_file, save_model_file

from .test_download_support import (  # noqa: F401 - fixtures
    TEST_ARCH,
    TEST_CONVERTER,
    HubEnv,
    LocalServer,
    hub_env,
    linear_checkpoint,
    make_entry,
    payload,
    server,
    sha,
)


def test_default_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert manifest.repo_weights_dir() == Path(imgforge.__file__).resolve().parents[1] / "weights"
    monkeypatch.delenv("IMGFORGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.cache_dir() == tmp_path / "xdg" / "imgforge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert store.cache_dir() == Path.home() / ".cache" / "imgforge"
    monkeypatch.setenv("IMGFORGE_CACHE_DIR", str(tmp_path / "c"))
    assert store.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("IMGFORGE_WEIGHTS_PATH", os.pathsep.join(["/a", "", "/b"]))
    assert store.env_weights_dirs() == [Path("/a"), Path("/b")]


def test_resolution_order(hub_env: HubEnv, server: LocalServer) -> None:
    data = payload(4000)
    entry = make_entry("order", server.add("/order.pth", data), data)
    hub_env.add_entries(entry)
    env_a, env_b = hub_env.root / "env_a", hub_env.root / "env_b"
    explicit = hub_env.root / "elsewhere" / "order.pth"
    for d in (env_a, env_b, hub_env.repo, hub_env.cache, explicit.parent):
        d.mkdir(parents=True, exist_ok=True)
        (d / "order.pth").write_bytes(b"copy in " + str(d).encode())
    hub_env.set_weights_path(env_a, env_b)

    assert store.resolve(explicit) == explicit  # explicit path beats everything
    assert store.resolve(str(explicit)) == explicit
    assert store.resolve("order") == env_a / "order.pth"  # first IMGFORGE_WEIGHTS_PATH dir
    (env_a / "order.pth").unlink()
    assert store.resolve("order") == env_b / "order.pth"
    (env_b / "order.pth").unlink()
    assert store.resolve("order") == hub_env.repo / "order.pth"  # env path beats repo weights
    (hub_env.repo / "order.pth").unlink()
    assert store.resolve("order") == hub_env.cache / "order.pth"  # repo weights beat the cache
    (hub_env.cache / "order.pth").unlink()
    assert server.state.requests == []
    got = store.resolve("order")  # finally a download into the cache
    assert got == hub_env.cache / "order.pth" and got.read_bytes() == data
    assert len(server.state.requests) == 1
    assert store.resolve("order") == got and len(server.state.requests) == 1  # cached now


def test_converted_file_preferred_in_each_directory(hub_env: HubEnv) -> None:
    entry = make_entry("pref", None)
    hub_env.add_entries(entry)
    (hub_env.repo / "pref.pth").write_bytes(b"raw")
    (hub_env.repo / "pref.safetensors").write_bytes(b"converted")
    hub_env.cache.mkdir()
    (hub_env.cache / "pref.safetensors").write_bytes(b"cached")
    assert store.resolve("pref") == hub_env.repo / "pref.safetensors"


def test_offline_error_names_every_place(hub_env: HubEnv, server: LocalServer) -> None:
    data = payload(100)
    hub_env.add_entries(make_entry("off", server.add("/off.pth", data), data))
    env_dir = hub_env.root / "mine"
    hub_env.set_weights_path(env_dir)
    hub_env.monkeypatch.setenv("IMGFORGE_OFFLINE", "1")
    with pytest.raises(OfflineError) as ei:
        store.resolve("off")
    msg = str(ei.value)
    assert "\n" not in msg
    for place in (env_dir, hub_env.repo, hub_env.cache):
        assert str(place) in msg
    assert "off.safetensors" in msg and "off.pth" in msg
    assert "imgforge weights fetch off" in msg and "IMGFORGE_WEIGHTS_PATH" in msg
    assert server.state.requests == []
    hub_env.monkeypatch.delenv("IMGFORGE_OFFLINE")
    with pytest.raises(OfflineError):
        store.resolve("off", offline=True)
    assert store.resolve("off", offline=False).read_bytes() == data


def test_unknown_names_and_missing_paths(hub_env: HubEnv) -> None:
    with pytest.raises(WeightsError) as ei:
        store.resolve("no-such-weights")
    assert "imgforge weights list" in str(ei.value)
    with pytest.raises(InputError):
        store.resolve(hub_env.root / "nope" / "x.pth")
    with pytest.raises(InputError):
        store.resolve(hub_env.root)  # a directory
    with pytest.raises(InputError):
        store.resolve("./not-here.pth")
    with pytest.raises(WeightsError) as ei2:
        manifest.get_entry("vgg91")
    assert "vgg19" in str(ei2.value)  # suggestion
    # a bare file name (not a manifest entry) is looked up in the search directories
    (hub_env.repo / "mine.safetensors").write_bytes(b"x")
    assert store.resolve("mine") == hub_env.repo / "mine.safetensors"
    assert store.resolve("mine.safetensors") == hub_env.repo / "mine.safetensors"


def test_entry_without_url(hub_env: HubEnv) -> None:
    hub_env.add_entries(make_entry("manual", None, notes="get it by hand"))
    with pytest.raises(WeightsError) as ei:
        store.resolve("manual")
    assert "no download URL" in str(ei.value) and "get it by hand" in str(ei.value)


def test_fetch_pins_converts_and_load_model(hub_env: HubEnv, server: LocalServer) -> None:
    raw = hub_env.root / "upstream.pth"
    sd = linear_checkpoint(raw, seed=1)
    data = raw.read_bytes()
    hub_env.add_entries(make_entry("lin", server.add("/lin.pth", data), None))  # hash kind none: pinned
    res = store.fetch("lin")
    assert res.downloaded and res.path == hub_env.cache / "lin.pth"
    assert res.converted == hub_env.cache / "lin.safetensors"
    pin = (hub_env.cache / "lin.pth.sha256").read_text().split()[0]
    assert pin == sha(data)
    tensors, meta = read_model_file(res.converted)
    assert meta["arch"] == TEST_ARCH and meta["arch_kwargs"] == {"in_features": 4, "out_features": 3}
    assert meta["source_sha256"] == sha(data) and meta["converter"] == TEST_CONVERTER and meta["name"] == "lin"
    assert torch.equal(tensors["weight"], sd["lin.weight"])
    again = store.fetch("lin")
    assert not again.downloaded and len(server.state.requests) == 1
    model, info = store.load_model("lin")
    assert info["arch"] == TEST_ARCH and info["path"] == str(res.converted)
    assert torch.equal(model.weight, sd["lin.weight"]) and not model.training
    assert [r.status for r in hub_verify.verify("lin")] == ["ok", "ok"]


def test_fetch_with_missing_converter_keeps_raw(hub_env: HubEnv, server: LocalServer) -> None:
    data = payload(500)
    hub_env.add_entries(make_entry("later", server.add("/later.pth", data), data, converter="not_written_yet"))
    res = store.fetch("later")
    assert res.converted is None and res.path.read_bytes() == data
    assert "not_written_yet" in res.message and "kept the raw file" in res.message
    with pytest.raises(WeightsError) as ei:
        store.load_model("later")
    assert "not_written_yet" in str(ei.value)


def test_fetch_refuses_bad_checksum_and_leaves_nothing(hub_env: HubEnv, server: LocalServer) -> None:
    data = payload(2000)
    hub_env.add_entries(make_entry("bad", server.add("/bad.pth", data), data, sha256="ab" * 32))
    with pytest.raises(ChecksumError):
        store.fetch("bad")
    assert not hub_env.cache.exists() or list(hub_env.cache.iterdir()) == []


def test_archive_member_entries_share_one_download(hub_env: HubEnv, server: LocalServer) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("saved_models/a.pth", b"model a")
        zf.writestr("saved_models/b.pth", b"model b")
    url = server.add("/saved_models.zip", buf.getvalue())
    kw = dict(hash_kind="none", converter=None, archive_filename="pack.zip")
    hub_env.add_entries(
        make_entry("pack-a", url, None, archive_member="saved_models/a.pth", **kw),
        make_entry("pack-b", url, None, archive_member="saved_models/b.pth", **kw),
        make_entry("pack-c", url, None, archive_member="saved_models/c.pth", filename="pack-c.pth", **kw),
    )
    assert store.resolve("pack-a").read_bytes() == b"model a"
    assert store.resolve("pack-b").read_bytes() == b"model b"
    assert len(server.state.requests) == 1  # the archive was downloaded once
    assert (hub_env.cache / "pack-a.pth.sha256").is_file() and (hub_env.cache / "pack.zip.sha256").is_file()
    with pytest.raises(WeightsError) as ei:
        store.resolve("pack-c")
    assert "saved_models/c.pth" in str(ei.value)
    hub_env.monkeypatch.setenv("IMGFORGE_OFFLINE", "1")
    (hub_env.cache / "pack-a.pth").unlink()
    assert store.resolve("pack-a").read_bytes() == b"model a"  # re-extracted from the cached archive, offline


def test_verify_detects_tampering(hub_env: HubEnv, server: LocalServer) -> None:
    data = payload(3000)
    hub_env.add_entries(
        make_entry("full", server.add("/full.pth", data), data, converter=None),
        make_entry("pinned", server.add("/pinned.pth", data), None, converter=None),
        make_entry("absent", None, None),
    )
    store.fetch("full")
    store.fetch("pinned")
    assert [r.status for r in hub_verify.verify("full")] == ["ok"]
    assert [r.status for r in hub_verify.verify("pinned")] == ["ok"]
    assert hub_verify.verify("absent")[0].status == "missing"
    (hub_env.cache / "full.pth").write_bytes(b"tampered")
    (hub_env.cache / "pinned.pth").write_bytes(b"tampered")
    results = hub_verify.verify_all(["full", "pinned"])
    assert [r.status for r in results] == ["mismatch", "mismatch"]
    with pytest.raises(ChecksumError):
        hub_verify.raise_on_failures(results)
    with pytest.raises(WeightsError):
        hub_verify.raise_on_failures(hub_verify.verify("absent"))
    # a file in a user directory, with no pin anywhere: unverified, not a failure
    (hub_env.cache / "pinned.pth").unlink()
    (hub_env.cache / "pinned.pth.sha256").unlink()
    (hub_env.repo / "pinned.pth").write_bytes(b"hand-copied")
    r = hub_verify.verify("pinned")
    assert [x.status for x in r] == ["unverified"] and not r[0].failed
    assert {x.name for x in hub_verify.verify_all()} >= {"full", "pinned"}


def test_prefix_entry_verify(hub_env: HubEnv) -> None:
    data = payload(700)
    hub_env.add_entries(make_entry("pre", None, data, hash_kind="sha256_prefix", sha256=sha(data)[:8]))
    (hub_env.repo / "pre.pth").write_bytes(data)
    assert hub_verify.verify("pre")[0].status == "ok"
    (hub_env.repo / "pre.pth").write_bytes(data + b"!")
    assert hub_verify.verify("pre")[0].status == "mismatch"


def test_import_file_and_load(hub_env: HubEnv) -> None:
    src = hub_env.root / "dl" / "latest_net_G.pth"
    sd = linear_checkpoint(src, seed=2)
    with pytest.raises(WeightsError) as ei:
        store.import_file(src)  # not recognisable: asks for --format
    assert "--format" in str(ei.value)
    out = store.import_file(src, TEST_CONVERTER)
    assert out == hub_env.cache / "latest_net_G.safetensors"
    _, meta = read_model_file(out)
    assert meta["arch"] == TEST_ARCH and meta["source_sha256"] == sha(src.read_bytes())
    assert meta["source_file"] == "latest_net_G.pth"
    model, info = store.load_model("latest_net_G")  # found by name in the cache
    assert torch.equal(model.bias, sd["lin.bias"]) and info["path"] == str(out)
    custom = store.import_file(src, TEST_CONVERTER, hub_env.root / "x" / "mine.safetensors")
    assert custom.is_file()
    with pytest.raises(UsageError):
        store.import_file(custom)  # already ours
    with pytest.raises(UsageError):
        store.import_file(src, TEST_CONVERTER, hub_env.root / "x.pt")
    with pytest.raises(InputError):
        store.import_file(hub_env.root / "missing.pth", TEST_CONVERTER)


def test_load_model_on_bare_paths(hub_env: HubEnv) -> None:
    src = hub_env.root / "some.pth"
    sd = linear_checkpoint(src, seed=3)
    model, info = store.load_model(src, converter=TEST_CONVERTER)
    assert torch.equal(model.weight, sd["lin.weight"]) and info["converter"] == TEST_CONVERTER
    with pytest.raises(WeightsError):
        store.load_model(src)  # cannot guess
    plain = hub_env.root / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(WeightsError) as ei:
        store.load_model(plain)
    assert "imgforge metadata" in str(ei.value)
    ours = save_model_file(hub_env.root / "ours.safetensors", {"weight": sd["lin.weight"], "bias": sd["lin.bias"]},
                           arch=TEST_ARCH, arch_kwargs={"in_features": 4, "out_features": 3})
    model2, info2 = store.load_model(ours)
    assert torch.equal(model2.weight, sd["lin.weight"]) and info2["arch"] == TEST_ARCH


def test_sniff_and_guess(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    cases = {
        "vgg.pth": ({"features.0.weight": torch.zeros(64, 3, 3, 3), "classifier.0.weight": torch.zeros(2, 2)},
                    "torchvision_vgg"),
        "fns.pth": ({"conv1.conv2d.weight": torch.zeros(1), "res1.conv1.conv2d.weight": torch.zeros(1)},
                    "fast_style"),
        "g.pth": ({"model.1.weight": torch.zeros(1), "model.2.running_mean": torch.zeros(1)}, "translation_generator"),
        "rosi.pt": ({"g_ema": {"style.1.weight": torch.zeros(1)}, "latent_avg": torch.zeros(4)},
                    "rosinality_stylegan2"),
        "enc.pth": ({"0.weight": torch.randn(3, 3, 1, 1, generator=g), "0.bias": torch.zeros(3)},
                    "adain_vgg_normalised"),
        "dec.pth": ({"1.weight": torch.zeros(256, 512, 3, 3), "1.bias": torch.zeros(256)}, "adain_decoder"),
    }
    for name, (obj, conv) in cases.items():
        p = tmp_path / name
        torch.save(obj, p)
        assert store.sniff_format(p) == "torch_zip"
        assert store.guess_converter(p) == conv, name
    legacy = tmp_path / "legacy.pth"
    torch.save(cases["fns.pth"][0], legacy, _use_new_zipfile_serialization=False)
    assert store.sniff_format(legacy) == "torch_legacy"
    assert store.guess_converter(legacy) == "fast_style"
    nv = tmp_path / "net.pkl"
    nv.write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x17torch_utils.persistence")
    assert store.sniff_format(nv) == "nvidia_pkl" and store.guess_converter(nv) == "nvidia_stylegan2_pkl"
    st = tmp_path / "x.safetensors"
    save_model_file(st, {"w": torch.zeros(1)}, arch="a")
    assert store.sniff_format(st) == "safetensors"
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    assert store.sniff_format(txt) == "unknown"
    with pytest.raises(WeightsError):
        store.guess_converter(txt)
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "x")
    assert store.sniff_format(z) == "zip"
    odd = tmp_path / "odd.pth"
    torch.save({"something.else": torch.zeros(1)}, odd)
    with pytest.raises(WeightsError) as ei:
        store.guess_converter(odd)
    assert "--format" in str(ei.value)


def test_local_entries_from_weights_dir(hub_env: HubEnv) -> None:
    save_model_file(hub_env.repo / "shipped.safetensors", {"w": torch.zeros(2)}, arch=TEST_ARCH,
                    arch_kwargs={"in_features": 1}, extra={"licence": "CC0", "notes": "tiny"})
    save_model_file(hub_env.repo / "listed.safetensors", {"w": torch.ones(2)}, arch=TEST_ARCH)
    (hub_env.repo / "not-ours.safetensors").write_bytes(b"garbage")
    digest = sha((hub_env.repo / "listed.safetensors").read_bytes())
    (hub_env.repo / manifest.SHA256SUMS).write_text(f"{digest}  listed.safetensors\n")
    entries = {e.name: e for e in manifest.local_entries()}
    assert set(entries) == {"shipped", "listed", "not-ours"}
    assert entries["not-ours"].arch == "" and entries["not-ours"].hash_kind == "local"
    assert entries["shipped"].hash_kind == "local" and entries["shipped"].licence == "CC0"
    assert entries["shipped"].kwargs() == {"in_features": 1}
    assert entries["listed"].hash_kind == "sha256" and entries["listed"].sha256 == digest
    assert manifest.get_entry("shipped").filename == "shipped.safetensors"
    assert store.resolve("listed") == hub_env.repo / "listed.safetensors"
    assert hub_verify.verify("listed")[0].status == "ok"
    assert hub_verify.verify("shipped")[0].status == "unverified"
    (hub_env.repo / "listed.safetensors").write_bytes(b"changed")
    assert hub_verify.verify("listed")[0].status == "mismatch"
    fetched = store.fetch("shipped")
    assert not fetched.downloaded and fetched.path == hub_env.repo / "shipped.safetensors"
    names = [e["name"] for e in json.loads(json.dumps([e.as_dict() for e in manifest.list_entries()]))]
    assert "shipped" in names and "vgg19" in names
