"""The weights manifest: every published checkpoint imgforge knows how to fetch, verify and convert.

An entry says where a file comes from (``url``), how its integrity is checked (``sha256`` + ``hash_kind``), what it
is on disk (``source_format``), which converter turns it into our safetensors layout (``converter``, a name in
:mod:`imgforge.hub.converters`) and the architecture it builds (``arch`` + ``arch_kwargs``; the converter's own
result is authoritative, the manifest value is what we expect it to report).

Hash kinds (:data:`HASH_KINDS`), stated honestly per entry:

- ``"sha256"``: ``sha256`` is the full hex digest; the file must match it exactly.
- ``"sha256_prefix"``: ``sha256`` is the hex prefix carried in the published file name (torchvision's
  ``vgg19-dcbb9e9d.pth``); the file's digest must START with it, as ``torch.hub``'s ``check_hash`` does. Eight hex
  digits are 32 bits: this catches corruption and a wrong file, not a determined attacker.
- ``"none"``: no published digest exists that we could find. The file is not verified on download; its sha256 is
  pinned on first fetch (a ``<file>.sha256`` sidecar in the cache) and later ``imgforge weights verify`` runs compare
  against that pin (trust on first use).
- ``"local"``: a file shipped in the repository's ``weights/`` directory. It is checked against
  ``weights/SHA256SUMS`` when the file is listed there (the entry then has kind ``"sha256"``), otherwise it is
  reported as unverified.

Local entries are discovered at run time from the ``weights/*.safetensors`` files (and the names listed in
``weights/SHA256SUMS``); the entry name is the file stem.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import WeightsError

HASH_KINDS = ("sha256", "sha256_prefix", "none", "local")
SOURCE_FORMATS = ("pytorch", "rosinality_pt", "nvidia_pkl", "zip_archive", "safetensors")
SHA256SUMS = "SHA256SUMS"

_HEX = re.compile(r"^[0-9a-f]*$")


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file imgforge can fetch or find.

    Attributes:
        name: the short name used on the command line (``imgforge weights fetch NAME``).
        arch: architecture name in :mod:`imgforge.models.registry` we expect the converter to produce.
        arch_kwargs: constructor kwargs for ``arch`` (as a tuple of pairs so the entry stays hashable; use
            :meth:`kwargs` for a dict).
        url: where to download it (http, https or file), or ``None`` when it must be fetched by hand.
        sha256: full hex digest, or the hex prefix, or ``""`` (see ``hash_kind``).
        hash_kind: one of :data:`HASH_KINDS`.
        source_format: one of :data:`SOURCE_FORMATS` (what the downloaded bytes are).
        converter: name of the converter that reads ``source_format`` safely, or ``None`` for our own files.
        licence: the licence the publisher states (short form; check upstream before commercial use).
        citation: the paper to cite.
        notes: anything a user must know (legacy keys, mirrors, why the hash kind is what it is).
        filename: the file name on disk (in the cache and in ``IMGFORGE_WEIGHTS_PATH`` directories).
        archive_filename: for entries that live inside a downloaded archive (``url`` points at the archive), the
            archive's file name in the cache; ``""`` otherwise.
        archive_member: the member path inside that archive.
    """

    name: str
    arch: str
    arch_kwargs: Tuple[Tuple[str, Any], ...]
    url: Optional[str]
    sha256: str
    hash_kind: str
    source_format: str
    converter: Optional[str]
    licence: str
    citation: str
    notes: str
    filename: str
    archive_filename: str = ""
    archive_member: str = ""

    def __post_init__(self) -> None:
        if self.hash_kind not in HASH_KINDS:
            raise ValueError(f"{self.name}: hash_kind must be one of {HASH_KINDS}, got {self.hash_kind!r}")
        if not _HEX.match(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be lower-case hex, got {self.sha256!r}")
        if self.hash_kind == "sha256" and len(self.sha256) != 64:
            raise ValueError(f"{self.name}: a full sha256 has 64 hex digits, got {len(self.sha256)}")
        if self.hash_kind == "sha256_prefix" and not 8 <= len(self.sha256) < 64:
            raise ValueError(f"{self.name}: a sha256 prefix has 8 to 63 hex digits, got {len(self.sha256)}")
        if self.hash_kind in ("none", "local") and self.sha256:
            raise ValueError(f"{self.name}: hash_kind {self.hash_kind!r} takes no digest")
        if bool(self.archive_filename) != bool(self.archive_member):
            raise ValueError(f"{self.name}: archive_filename and archive_member go together")
        if "/" in self.filename or "\\" in self.filename or not self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name, got {self.filename!r}")

    def kwargs(self) -> Dict[str, Any]:
        """``arch_kwargs`` as a dict."""
        return dict(self.arch_kwargs)

    @property
    def converted_filename(self) -> str:
        """Name of the converted safetensors file (``<name>.safetensors``) written by ``imgforge weights fetch``."""
        return f"{self.name}.safetensors"

    @property
    def downloadable(self) -> bool:
        return bool(self.url)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-serialisable form (``imgforge weights list --json``)."""
        return {
            "name": self.name,
            "arch": self.arch,
            "arch_kwargs": self.kwargs(),
            "url": self.url,
            "sha256": self.sha256,
            "hash_kind": self.hash_kind,
            "source_format": self.source_format,
            "converter": self.converter,
            "licence": self.licence,
            "citation": self.citation,
            "notes": self.notes,
            "filename": self.filename,
            "archive_filename": self.archive_filename,
            "archive_member": self.archive_member,
        }


def _kw(**kwargs: Any) -> Tuple[Tuple[str, Any], ...]:
    return tuple(sorted(kwargs.items()))


def torchvision_hash_prefix(filename: str) -> str:
    """The hash prefix in a torchvision/torch.hub file name (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``), as
    ``torch.hub`` extracts it (regex ``-([a-f0-9]*)\\.``); ``""`` when there is none."""
    m = re.search(r"-([a-f0-9]*)\.", filename)
    return m.group(1) if m else ""


# ----------------------------------------------------------------------------------------------------------------
# Published entries

_TV = "https://download.pytorch.org/models/"
_TV_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet, whose terms allow non-commercial research use"
_VGG_CITE = "K. Simonyan, A. Zisserman. Very Deep Convolutional Networks for Large-Scale Image Recognition. ICLR 2015."


def _tv_vgg(name: str, filename: str, depth: int, enum: str) -> WeightsEntry:
    return WeightsEntry(
        name=name,
        arch=f"vgg{depth}",
        arch_kwargs=_kw(),
        url=_TV + filename,
        sha256=torchvision_hash_prefix(filename),
        hash_kind="sha256_prefix",
        source_format="pytorch",
        converter="torchvision_vgg",
        licence=_TV_LICENCE,
        citation=_VGG_CITE,
        notes=(
            f"torchvision {enum}. Plain state dict (features.N.*, classifier.{{0,3,6}}.*). Inputs: RGB in [0, 1] "
            "normalised with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). The hash is the 8-digit sha256 "
            "prefix of the file name, checked the way torch.hub does; drop the file into a directory of "
            "IMGFORGE_WEIGHTS_PATH (e.g. ~/.cache/torch/hub/checkpoints) to reuse a torch.hub download."
        ),
        filename=filename,
    )


_ADAIN_REL = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"
_ADAIN_CITE = (
    "X. Huang, S. Belongie. Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization. ICCV 2017."
)
_ADAIN_HASH_NOTE = (
    "No sha256 is published for this release asset (none found in the repository, its README or issues): "
    "hash kind 'none', pinned on first fetch. A mirror was reported at "
    "https://www.hal.t.u-tokyo.ac.jp/~inoue/projects/tmp/ (unverified)."
)

_FNS_ZIP = "https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1"
_FNS_CITE = (
    "J. Johnson, A. Alahi, L. Fei-Fei. Perceptual Losses for Real-Time Style Transfer and Super-Resolution. ECCV 2016."
)


def _fast_style(style: str) -> WeightsEntry:
    return WeightsEntry(
        name=f"fast-style-{style.replace('_', '-')}",
        arch="transformer_net",
        arch_kwargs=_kw(),
        url=_FNS_ZIP,
        sha256="",
        hash_kind="none",
        source_format="zip_archive",
        converter="fast_style",
        licence="BSD-3-Clause (pytorch/examples)",
        citation=_FNS_CITE,
        notes=(
            f"pytorch/examples fast_neural_style model '{style}', member saved_models/{style}.pth of saved_models.zip "
            "(one download serves all four styles). A pre-0.4 TransformerNet state dict: the converter drops the "
            "legacy InstanceNorm running_mean/running_var keys (regex in\\d+\\.running_(mean|var)$). Inputs are RGB "
            "in 0..255. No published sha256 (Dropbox link): hash kind 'none', pinned on first fetch."
        ),
        filename=f"fast-style-{style}.pth",
        archive_filename="fast-neural-style-saved_models.zip",
        archive_member=f"saved_models/{style}.pth",
    )


_NGC_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_ADA_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_SG2_CITE = (
    "T. Karras, S. Laine, M. Aittala, J. Hellsten, J. Lehtinen, T. Aila. Analyzing and Improving the Image Quality "
    "of StyleGAN. CVPR 2020."
)
_ADA_CITE = (
    "T. Karras, M. Aittala, J. Hellsten, S. Laine, J. Lehtinen, T. Aila. Training Generative Adversarial Networks "
    "with Limited Data. NeurIPS 2020."
)
_SG2_LICENCE = "NVIDIA Source Code License-NC (non-commercial research use only)"


def _nvidia_sg2(name: str, ngc_file: str, size: int, cdn_file: str, what: str, cite: str) -> WeightsEntry:
    mirror = f" Older mirror (stylegan2-ada-pytorch CDN): {_ADA_CDN}{cdn_file}." if cdn_file else ""
    return WeightsEntry(
        name=name,
        arch="stylegan2_generator",
        arch_kwargs=_kw(size=size, style_dim=512, n_mlp=8, channel_multiplier=2),
        url=_NGC_SG2 + ngc_file,
        sha256="",
        hash_kind="none",
        source_format="nvidia_pkl",
        converter="nvidia_stylegan2_pkl",
        licence=_SG2_LICENCE,
        citation=cite,
        notes=(
            f"{what}. NVIDIA network pickle (G, D, G_ema with embedded source code): read only by the restricted "
            "unpickler, module_src is never executed; G_ema is used. Listed in the NVlabs/stylegan3 README as "
            "'StyleGAN2 pre-trained models compatible with this codebase', so the pickle may name its module "
            "training.networks_stylegan2 rather than training.networks. NVIDIA publishes no sha256: hash kind "
            f"'none', pinned on first fetch.{mirror}"
        ),
        filename=ngc_file,
    )


_EFROS = "http://efrosgans.eecs.berkeley.edu/"
_CYCLEGAN_CITE = (
    "J.-Y. Zhu, T. Park, P. Isola, A. A. Efros. Unpaired Image-to-Image Translation using Cycle-Consistent "
    "Adversarial Networks. ICCV 2017."
)
_PIX2PIX_CITE = (
    "P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros. Image-to-Image Translation with Conditional Adversarial Networks. "
    "CVPR 2017."
)
_TRANSLATION_LICENCE = "BSD (junyanz/pytorch-CycleGAN-and-pix2pix); the training datasets carry their own terms"

CYCLEGAN_MODELS = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
    "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
    "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
    "iphone2dslr_flower",
)
PIX2PIX_MODELS = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")


def _cyclegan(model: str) -> WeightsEntry:
    return WeightsEntry(
        name=f"cyclegan-{model.replace('_', '-')}",
        arch="resnet_generator",
        arch_kwargs=_kw(input_nc=3, output_nc=3, ngf=64, norm="instance", use_dropout=False, n_blocks=9),
        url=f"{_EFROS}cyclegan/pretrained_models/{model}.pth",
        sha256="",
        hash_kind="none",
        source_format="pytorch",
        converter="translation_generator",
        licence=_TRANSLATION_LICENCE,
        citation=_CYCLEGAN_CITE,
        notes=(
            f"CycleGAN generator '{model}' (scripts/download_cyclegan_model.sh; upstream saves it as "
            f"checkpoints/{model}_pretrained/latest_net_G.pth). resnet_9blocks, instance norm, ngf 64, no dropout; "
            "inputs in [-1, 1]. 2018-era file with InstanceNorm running-stat keys that the converter drops. "
            "Served over plain http with no published sha256: hash kind 'none', pinned on first fetch."
        ),
        filename=f"cyclegan-{model}.pth",
    )


def _pix2pix(model: str) -> WeightsEntry:
    return WeightsEntry(
        name=f"pix2pix-{model.replace('_', '-')}",
        arch="unet_generator",
        arch_kwargs=_kw(input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=True),
        url=f"{_EFROS}pix2pix/models-pytorch/{model}.pth",
        sha256="",
        hash_kind="none",
        source_format="pytorch",
        converter="translation_generator",
        licence=_TRANSLATION_LICENCE,
        citation=_PIX2PIX_CITE,
        notes=(
            f"pix2pix generator '{model}' (scripts/download_pix2pix_model.sh). unet_256, batch norm, dropout, ngf 64; "
            "inputs in [-1, 1]; upstream runs it in train mode unless --eval. facades_label2photo and day2night "
            "are run with --direction BtoA. Served over plain http with no published sha256: hash kind 'none', "
            "pinned on first fetch."
        ),
        filename=f"pix2pix-{model}.pth",
    )


_FID_CITE = ("M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter. GANs Trained by a Two Time-Scale "
             "Update Rule Converge to a Local Nash Equilibrium. NeurIPS 2017; C. Szegedy et al. Rethinking the "
             "Inception Architecture for Computer Vision. CVPR 2016.")


MANIFEST: Tuple[WeightsEntry, ...] = (
    _tv_vgg("vgg19", "vgg19-dcbb9e9d.pth", 19, "VGG19_Weights.IMAGENET1K_V1"),
    _tv_vgg("vgg16", "vgg16-397923af.pth", 16, "VGG16_Weights.IMAGENET1K_V1"),
    WeightsEntry(
        name="adain-vgg-normalised",
        arch="adain_encoder",
        arch_kwargs=_kw(),
        url=_ADAIN_REL + "vgg_normalised.pth",
        sha256="",
        hash_kind="none",
        source_format="pytorch",
        converter="adain_vgg_normalised",
        licence="MIT (naoto0804/pytorch-AdaIN; converted from xunhuang1995/AdaIN-style vgg_normalised.t7)",
        citation=_ADAIN_CITE,
        notes=(
            "The normalised VGG-19 encoder of AdaIN (a 1x1 conv that takes RGB in [0, 1] to the Caffe BGR, mean-"
            "subtracted 0..255 input, then reflection-padded convs). The README spells it vgg_normalized.pth once; "
            "the code and release use vgg_normalised.pth. " + _ADAIN_HASH_NOTE
        ),
        filename="vgg_normalised.pth",
    ),
    WeightsEntry(
        name="adain-decoder",
        arch="adain_decoder",
        arch_kwargs=_kw(),
        url=_ADAIN_REL + "decoder.pth",
        sha256="",
        hash_kind="none",
        source_format="pytorch",
        converter="adain_decoder",
        licence="MIT (naoto0804/pytorch-AdaIN; converted from xunhuang1995/AdaIN-style decoder.t7)",
        citation=_ADAIN_CITE,
        notes="The AdaIN decoder (relu4_1 features to RGB in [0, 1]) paired with adain-vgg-normalised. "
        + _ADAIN_HASH_NOTE,
        filename="decoder.pth",
    ),
    *(_fast_style(s) for s in ("candy", "mosaic", "rain_princess", "udnie")),
    _nvidia_sg2("stylegan2-ffhq-1024", "stylegan2-ffhq-1024x1024.pkl", 1024, "ffhq.pkl",
                "FFHQ 1024x1024, StyleGAN2 config-f", _SG2_CITE),
    _nvidia_sg2("stylegan2-ffhq-512", "stylegan2-ffhq-512x512.pkl", 512,
                "transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl", "FFHQ 512x512", _SG2_CITE),
    _nvidia_sg2("stylegan2-ffhq-256", "stylegan2-ffhq-256x256.pkl", 256,
                "transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
                "FFHQ 256x256 (possibly a narrower config than config-f: arch_kwargs here are expectations, the "
                "converter reads the real shapes from the pickle)", _SG2_CITE),
    _nvidia_sg2("stylegan2-afhqcat-512", "stylegan2-afhqcat-512x512.pkl", 512, "afhqcat.pkl",
                "AFHQ Cat 512x512, trained from scratch with ADA", _ADA_CITE),
    _nvidia_sg2("stylegan2-afhqdog-512", "stylegan2-afhqdog-512x512.pkl", 512, "afhqdog.pkl",
                "AFHQ Dog 512x512, trained from scratch with ADA", _ADA_CITE),
    _nvidia_sg2("stylegan2-afhqwild-512", "stylegan2-afhqwild-512x512.pkl", 512, "afhqwild.pkl",
                "AFHQ Wild 512x512, trained from scratch with ADA", _ADA_CITE),
    _nvidia_sg2("stylegan2-metfaces-1024", "stylegan2-metfaces-1024x1024.pkl", 1024, "metfaces.pkl",
                "MetFaces 1024x1024, transfer learning from FFHQ with ADA", _ADA_CITE),
    WeightsEntry(
        name="stylegan2-ffhq-config-f-rosinality",
        arch="stylegan2_generator",
        arch_kwargs=_kw(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2),
        url=None,
        sha256="",
        hash_kind="none",
        source_format="rosinality_pt",
        converter="rosinality_stylegan2",
        licence=_SG2_LICENCE + " (weights converted from NVIDIA's; converter code MIT)",
        citation=_SG2_CITE,
        notes=(
            "rosinality/stylegan2-pytorch's conversion of the official FFHQ config-f network "
            "(stylegan2-ffhq-config-f.pt: g_ema + latent_avg). It is shared only through a Google Drive link, which "
            "imgforge cannot fetch: download it by hand, then `imgforge weights import stylegan2-ffhq-config-f.pt "
            "--format rosinality_stylegan2`, or put it in a directory of IMGFORGE_WEIGHTS_PATH."
        ),
        filename="stylegan2-ffhq-config-f.pt",
    ),
    WeightsEntry(
        name="fid-inception",
        arch="fid_inception_v3",
        arch_kwargs=_kw(),
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        sha256="6726825d",
        hash_kind="sha256_prefix",
        source_format="pytorch",
        converter="fid_inception",
        licence="Apache-2.0 (pytorch-fid; weights converted from TensorFlow's inception-2015-12-05 graph)",
        citation=_FID_CITE,
        notes=(
            "The FID Inception-v3 (TensorFlow inception-2015-12-05 graph) as a PyTorch state dict, the file pytorch-fid "
            "and torch-fidelity download (torch-fidelity's copy: https://github.com/toshas/torch-fidelity/releases/"
            "download/v0.2.0/weights-inception-2015-12-05-6726825d.pth). The 8 hex digits in the name are torch.hub's "
            "sha256 prefix; a third-party record gives the full sha256 as 6726825d0af5f729cebd5821db510b11b1cfad8f"
            "aad88a03f1befd49fb9129b2 (not checked here). Used by `imgforge metrics --extractor inception`. NVIDIA's "
            "TorchScript variant (inception-2015-12-05.pt, clean-fid/StyleGAN2-ADA) is not listed: a TorchScript "
            "archive holds code that torch.jit.load compiles and runs, so it cannot be read without executing it."
        ),
        filename="pt_inception-2015-12-05-6726825d.pth",
    ),
    WeightsEntry(
        name="fid-inception-torch-fidelity",
        arch="fid_inception_v3",
        arch_kwargs=_kw(),
        url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        sha256="6726825d",
        hash_kind="sha256_prefix",
        source_format="pytorch",
        converter="fid_inception",
        licence="Apache-2.0 (torch-fidelity; weights converted from TensorFlow's inception-2015-12-05 graph)",
        citation=_FID_CITE,
        notes=(
            "torch-fidelity's copy of the FID Inception-v3 (same name suffix, and so presumably the same bytes, as "
            "fid-inception). Pass it with `imgforge metrics --weights fid-inception-torch-fidelity` if you fetched this "
            "one instead."
        ),
        filename="weights-inception-2015-12-05-6726825d.pth",
    ),
    *(_cyclegan(m) for m in CYCLEGAN_MODELS),
    *(_pix2pix(m) for m in PIX2PIX_MODELS),
)


# ----------------------------------------------------------------------------------------------------------------
# Local (shipped) entries


def repo_weights_dir() -> Path:
    """The shipped ``weights/`` directory, the one place that locates it: ``imgforge/_weights`` inside the installed
    package (wheel, sdist, ``--user``/``--target`` installs: package data, see setup.py), else ``weights/`` beside
    the package (source checkout, editable install)."""
    import imgforge

    package = Path(imgforge.__file__).resolve().parent
    for candidate in (package / "_weights", package.parent / "weights"):
        if (candidate / SHA256SUMS).is_file():
            return candidate
    return package.parent / "weights"


def read_safetensors_metadata(path: Path) -> Optional[Dict[str, str]]:
    """The ``__metadata__`` of a safetensors file read from its header only (no tensors), or ``None`` when the file
    is not safetensors. An empty dict means safetensors without metadata."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > 100_000_000:
                return None
            raw = fh.read(n)
    except OSError:
        return None
    if len(raw) != n or not raw.lstrip().startswith(b"{"):
        return None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def read_sha256sums(path: Path) -> Dict[str, str]:
    """Parse a ``sha256sum`` output file (``<hex>  <name>`` per line; ``*`` binary marker allowed)."""
    sums: Dict[str, str] = {}
    if not path.is_file():
        return sums
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64 or not _HEX.match(parts[0].lower()):
            continue
        sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def local_entries(directory: Optional[Path] = None) -> List[WeightsEntry]:
    """Entries for the files shipped in ``weights/``: every ``*.safetensors`` file and every name listed in
    ``weights/SHA256SUMS`` (name = file stem). Metadata (arch, licence, notes) comes from the safetensors header
    when it is readable; a damaged file still gets an entry so that ``verify`` can report it."""
    directory = repo_weights_dir() if directory is None else directory
    if not directory.is_dir():
        return []
    sums = read_sha256sums(directory / SHA256SUMS)
    files = {p.name for p in directory.glob("*.safetensors")} | {n for n in sums if n.endswith(".safetensors")}
    out: List[WeightsEntry] = []
    for fname in sorted(files):
        path = directory / fname
        meta = read_safetensors_metadata(path) if path.is_file() else None
        meta = meta if meta and meta.get("format") == "imgforge" else {}
        try:
            kwargs = json.loads(meta.get("arch_kwargs", "{}"))
        except json.JSONDecodeError:
            kwargs = {}
        digest = sums.get(fname, "")
        out.append(
            WeightsEntry(
                name=path.stem,
                arch=meta.get("arch", ""),
                arch_kwargs=_kw(**kwargs) if isinstance(kwargs, dict) else (),
                url=None,
                sha256=digest,
                hash_kind="sha256" if digest else "local",
                source_format="safetensors",
                converter=None,
                licence=meta.get("licence", meta.get("license", "")),
                citation=meta.get("citation", ""),
                notes=meta.get("notes", "shipped with imgforge")
                + ("" if digest else f" (not listed in weights/{SHA256SUMS}: unverified)"),
                filename=fname,
            )
        )
    return out


def list_entries() -> List[WeightsEntry]:
    """Every known entry: the published :data:`MANIFEST` then the shipped local files."""
    published = {e.name for e in MANIFEST}
    return list(MANIFEST) + [e for e in local_entries() if e.name not in published]


def find_entry(name: str) -> Optional[WeightsEntry]:
    """The entry called ``name``, or ``None``."""
    for e in MANIFEST:
        if e.name == name:
            return e
    for e in local_entries():
        if e.name == name:
            return e
    return None


def get_entry(name: str) -> WeightsEntry:
    """The entry called ``name``; :class:`WeightsError` listing a few close names when unknown."""
    entry = find_entry(name)
    if entry is None:
        import difflib

        names = [e.name for e in list_entries()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise WeightsError(f"unknown weights name {name!r}{hint}; `imgforge weights list` shows every name")
    return entry


def _check_unique() -> None:
    names = [e.name for e in MANIFEST]
    files = [e.filename for e in MANIFEST]
    dupes = {n for n in names if names.count(n) > 1} | {f for f in files if files.count(f) > 1}
    if dupes:  # pragma: no cover - a programming error caught by the unit tests too
        raise RuntimeError(f"duplicate manifest names/filenames: {sorted(dupes)}")


_check_unique()
