"""``imgforge weights verify``: re-hash the local copies of published weights and compare them with the manifest
digest, the digest pinned when imgforge wrote the file, or ``weights/SHA256SUMS``. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ChecksumError, WeightsError
from ..fsutil import sha256_file
from .download import check_digest
from .manifest import WeightsEntry, find_entry, list_entries, read_safetensors_metadata
from .store import _looked_in, candidate_names, find_all, read_pin


@dataclass(frozen=True)
class VerifyResult:
    """The check of one file.

    Attributes:
        name: entry name.
        path: the file checked, or ``None`` when nothing was found.
        status: ``"ok"`` (matches the manifest digest, the pin, or weights/SHA256SUMS), ``"mismatch"``,
            ``"missing"`` (no file found), or ``"unverified"`` (nothing to compare against).
        expected: the digest (or prefix) compared against, ``""`` when none.
        actual: the file's sha256, ``""`` when not computed.
        detail: one line for people.
    """

    name: str
    path: Optional[Path]
    status: str
    expected: str
    actual: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "missing")


def _verify_file(entry: WeightsEntry, path: Path) -> VerifyResult:
    actual = sha256_file(path)
    is_converted = path.name == entry.converted_filename and path.name != entry.filename
    if is_converted:
        meta = read_safetensors_metadata(path) or {}
        pin = read_pin(path)
        if pin is not None and pin != actual:
            return VerifyResult(
                entry.name, path, "mismatch", pin, actual, "converted file changed since it was written"
            )
        source = meta.get("source_sha256", "")
        if entry.hash_kind in ("sha256", "sha256_prefix"):
            if not check_digest(source, entry.sha256, entry.hash_kind):
                return VerifyResult(entry.name, path, "mismatch", entry.sha256, source,
                                    "converted from a file whose sha256 does not match the manifest")
            return VerifyResult(entry.name, path, "ok", entry.sha256, actual,
                                "converted from the manifest's file" + (" (file pinned)" if pin else ""))
        if pin is not None:
            return VerifyResult(entry.name, path, "ok", pin, actual, "matches the digest pinned when it was written")
        return VerifyResult(entry.name, path, "unverified", "", actual, "no published or pinned digest")
    if entry.hash_kind in ("sha256", "sha256_prefix"):
        ok = check_digest(actual, entry.sha256, entry.hash_kind)
        kind = "prefix" if entry.hash_kind == "sha256_prefix" else "sha256"
        return VerifyResult(entry.name, path, "ok" if ok else "mismatch", entry.sha256, actual,
                            f"manifest {kind} {'matches' if ok else 'does NOT match'}")
    pin = read_pin(path)
    if pin is None:
        return VerifyResult(entry.name, path, "unverified", "", actual,
                            "no published digest and none pinned (file not fetched by imgforge)")
    ok = pin == actual
    return VerifyResult(entry.name, path, "ok" if ok else "mismatch", pin, actual,
                        f"digest pinned on first fetch {'matches' if ok else 'does NOT match'}")


def verify(name: str) -> List[VerifyResult]:
    """Re-hash every local copy of ``name`` (upstream file and converted file, in every searched directory) and
    compare with the manifest digest, the digest pinned on first fetch, or ``weights/SHA256SUMS``.

    Returns one result per file found, or a single ``"missing"`` result. Nothing is downloaded.
    """
    entry = find_entry(name)
    if entry is None:
        from .manifest import get_entry

        entry = get_entry(name)
    found = find_all(entry)
    if not found:
        return [VerifyResult(entry.name, None, "missing", entry.sha256, "", _looked_in(candidate_names(entry)))]
    return [_verify_file(entry, p) for p, _place in found]


def verify_all(names: Optional[Sequence[str]] = None) -> List[VerifyResult]:
    """:func:`verify` for ``names``; without names, for every entry that has a local copy (missing ones skipped)."""
    if names:
        out: List[VerifyResult] = []
        for n in names:
            out.extend(verify(n))
        return out
    results: List[VerifyResult] = []
    for entry in list_entries():
        for p, _place in find_all(entry):
            results.append(_verify_file(entry, p))
    return results


def raise_on_failures(results: Sequence[VerifyResult]) -> None:
    """Raise :class:`ChecksumError` (or :class:`WeightsError` for missing files) when any result failed."""
    bad = [r for r in results if r.failed]
    if not bad:
        return
    mism = [r for r in bad if r.status == "mismatch"]
    if mism:
        files = ", ".join(str(r.path) for r in mism)
        raise ChecksumError(f"{len(mism)} file(s) do not match their expected sha256: {files}; delete them and run "
                            "`imgforge weights fetch NAME` again")
    raise WeightsError(f"not found locally: {', '.join(r.name for r in bad)}; run `imgforge weights fetch NAME`")
