"""`imgforge weights ...` through Typer's CliRunner, against a local HTTP server and an isolated cache.

The top-level app (imgforge/cli/app.py, the lead's) maps ImgforgeError to one line + exit code. Here the sub-app runs
mounted on a small parent app with that same mapping, so exit codes and messages are checked as users see them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import pytest
import typer
from typer.testing import CliRunner, Result

from imgforge.cli import weights
from imgforge.errors import ChecksumError, DownloadError, ImgforgeError, OfflineError, WeightsError
from imgforge.hub.modelfile import read_model_file
from tests.unit.test_download_support import (  # noqa: F401 - fixtures
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

runner = CliRunner()


def _invoke(args: Sequence[str]) -> Result:
    """Run ``imgforge weights ARGS`` on a parent app and map errors the way the real top-level app does."""
    parent = typer.Typer()
    parent.add_typer(weights.app, name="weights")

    @parent.command("version")
    def _version() -> None:  # a second command so that "weights" stays a sub-command
        pass

    result = runner.invoke(parent, ["weights", *args])
    return result


def _error(result: Result) -> ImgforgeError:
    assert isinstance(result.exception, ImgforgeError), result.output
    msg = str(result.exception)
    assert "\n" not in msg  # one line
    assert result.exit_code == result.exception.exit_code == 1
    return result.exception


def test_help_has_examples() -> None:
    for cmd in ("list", "fetch", "import", "verify", "path"):
        r = _invoke([cmd, "--help"])
        assert r.exit_code == 0, r.output
        assert "Examples" in r.output and f"imgforge weights {cmd}" in r.output


def test_list_json_and_table(hub_env: HubEnv) -> None:
    (hub_env.repo / "vgg19-dcbb9e9d.pth").write_bytes(b"x")
    r = _invoke(["list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    by_name = {d["name"]: d for d in data}
    assert by_name["vgg19"]["hash_kind"] == "sha256_prefix" and by_name["vgg19"]["sha256"] == "dcbb9e9d"
    assert by_name["vgg19"]["present"] == [{"path": str(hub_env.repo / "vgg19-dcbb9e9d.pth"), "place": "repo weights"}]
    assert by_name["vgg16"]["present"] == []
    r2 = _invoke(["list"])
    assert r2.exit_code == 0 and "stylegan2-ffhq-1024" in r2.output and str(hub_env.cache) in r2.output
    r3 = _invoke(["list", "--present", "--json"])
    assert [d["name"] for d in json.loads(r3.output)] == ["vgg19"]


def test_fetch_path_verify_cycle(hub_env: HubEnv, server: LocalServer) -> None:
    raw = hub_env.root / "up.pth"
    linear_checkpoint(raw)
    data = raw.read_bytes()
    hub_env.add_entries(
        make_entry("lin", server.add("/lin.pth", data), data),
        make_entry("later", server.add("/later.pth", data), data, converter="not_written_yet", filename="later.pth"),
    )
    r = _invoke(["path", "lin"])
    err = _error(r)
    assert isinstance(err, OfflineError) and "imgforge weights fetch lin" in str(err)
    assert server.state.requests == []  # `path` never downloads

    r = _invoke(["fetch", "lin", "later"])
    assert r.exit_code == 0, r.output
    assert "converted" in r.output and "not_written_yet" in r.output
    assert (hub_env.cache / "lin.pth").read_bytes() == data
    _, meta = read_model_file(hub_env.cache / "lin.safetensors")
    assert meta["arch"] == TEST_ARCH and meta["source_sha256"] == sha(data)

    r = _invoke(["path", "lin"])
    assert r.exit_code == 0 and r.output.strip() == str(hub_env.cache / "lin.safetensors")

    r = _invoke(["verify"])
    assert r.exit_code == 0, r.output
    assert "ok" in r.output and "mismatch" not in r.output
    (hub_env.cache / "later.pth").write_bytes(b"corrupted")
    r = _invoke(["verify", "later"])
    assert isinstance(_error(r), ChecksumError)
    assert "mismatch" in r.output
    r = _invoke(["verify", "lin"])
    assert r.exit_code == 0


def test_fetch_errors(hub_env: HubEnv, server: LocalServer) -> None:
    hub_env.add_entries(make_entry("gone", server.base + "/gone.pth", b"x"))
    r = _invoke(["fetch", "gone"])
    err = _error(r)
    assert isinstance(err, DownloadError) and "404" in str(err) and "/gone.pth" in str(err)
    r = _invoke(["fetch", "no-such-name"])
    assert isinstance(_error(r), WeightsError)
    hub_env.monkeypatch.setenv("IMGFORGE_OFFLINE", "1")
    r = _invoke(["fetch", "gone"])
    assert isinstance(_error(r), OfflineError)
    assert not hub_env.cache.exists() or list(hub_env.cache.iterdir()) == []


def test_import(hub_env: HubEnv, tmp_path: Path) -> None:
    src = tmp_path / "ckpt.pth"
    linear_checkpoint(src)
    out = tmp_path / "out" / "mine.safetensors"
    r = _invoke(["import", str(src), "--format", TEST_CONVERTER, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith(str(out))
    _, meta = read_model_file(out)
    assert meta["arch"] == TEST_ARCH and meta["source_sha256"] == sha(src.read_bytes())
    r = _invoke(["import", str(src)])
    assert "--format" in str(_error(r))
    r = _invoke(["verify", "nothing-here"])
    assert isinstance(_error(r), WeightsError)


def test_no_args_shows_help() -> None:
    r = _invoke([])
    assert "fetch" in r.output and "verify" in r.output


def _names(results: List[dict]) -> List[str]:  # pragma: no cover - helper kept small
    return [d["name"] for d in results]


@pytest.mark.parametrize("name", ["vgg19", "stylegan2-ffhq-1024", "adain-decoder"])
def test_path_offline_message_for_real_entries(hub_env: HubEnv, name: str) -> None:
    r = _invoke(["path", name])
    err = _error(r)
    assert isinstance(err, OfflineError)
    assert str(hub_env.repo) in str(err) and str(hub_env.cache) in str(err) and f"fetch {name}" in str(err)
