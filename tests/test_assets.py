"""The asset cache: fetch through pip, checksums, atomic unpacking, damage detection, offline use.

The mechanics are tested on small packages served from a local folder (pip's --find-links with no
index), so pip itself runs for real but no network is needed; the real assets are checked last.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from course_utils import assets
from course_utils.assets import Asset, AssetError

PAYLOAD = b"the quick brown fox\n" * 100


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_wheel(folder: Path) -> Path:
    """A minimal valid wheel ``coursefake-1.0`` holding ``coursefake/data.txt``."""
    wheel = folder / "coursefake-1.0-py3-none-any.whl"
    files = {
        "coursefake/__init__.py": b"",
        "coursefake/data.txt": PAYLOAD,
        "coursefake-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: coursefake\nVersion: 1.0\n",
        "coursefake-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "coursefake-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("coursefake-1.0.dist-info/RECORD", record)
    return wheel


@pytest.fixture
def fake_asset(tmp_path, monkeypatch):
    """Register a fake asset served by a local 'package index' and use an empty cache."""
    index = tmp_path / "index"
    index.mkdir()
    wheel = _make_wheel(index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    asset = Asset(
        name="fake",
        description="test asset",
        package="coursefake",
        version="1.0",
        archive=wheel.name,
        archive_sha256=_sha(wheel.read_bytes()),
        files={"coursefake/data.txt": _sha(PAYLOAD)},
    )
    monkeypatch.setitem(assets.REGISTRY, "fake", asset)
    return asset


def _cache_entries() -> list[str]:
    """What the cache holds besides its lock files."""
    cache = assets.cache_dir()
    return (
        sorted(p.name for p in cache.iterdir() if p.name != assets.LOCKS) if cache.exists() else []
    )


SDIST_BACKEND = """
import os, pathlib
pathlib.Path(os.environ["COURSE_TEST_MARKER"]).write_text("package code ran")
def get_requires_for_build_wheel(config_settings=None):
    return []
def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = pathlib.Path(metadata_directory) / "coursefakesd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: coursefakesd\\nVersion: 1.0\\n")
    return info.name
"""


def _make_sdist(folder: Path) -> Path:
    """A source distribution whose build backend writes a marker file as soon as it runs."""
    sdist = folder / "coursefakesd-1.0.tar.gz"
    files = {
        "PKG-INFO": b"Metadata-Version: 2.1\nName: coursefakesd\nVersion: 1.0\n",
        "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": SDIST_BACKEND.encode(),
        "data.txt": PAYLOAD,
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"coursefakesd-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist


@pytest.fixture
def fake_sdist(tmp_path, monkeypatch):
    """A fake sdist asset; ``COURSE_TEST_MARKER`` appears if any of its code ever runs."""
    index = tmp_path / "sdist-index"
    index.mkdir()
    sdist = _make_sdist(index)
    marker = tmp_path / "marker"
    monkeypatch.setenv("COURSE_TEST_MARKER", str(marker))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    asset = Asset(
        name="fakesd",
        description="test sdist",
        package="coursefakesd",
        version="1.0",
        archive=sdist.name,
        archive_sha256=_sha(sdist.read_bytes()),
        files={"coursefakesd-1.0/data.txt": _sha(PAYLOAD)},
        sdist=True,
    )
    monkeypatch.setitem(assets.REGISTRY, "fakesd", asset)
    return asset, marker


def test_registry_entries_are_pinned_and_checksummed():
    for name, asset in assets.REGISTRY.items():
        assert asset.name == name
        assert asset.version and asset.requirement == f"{asset.package}=={asset.version}"
        for digest in [asset.archive_sha256, *asset.files.values()]:
            assert len(digest) == 64 and int(digest, 16) >= 0
        assert asset.files, f"{name} extracts no files"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert assets.cache_dir() == tmp_path / "elsewhere"


def test_unknown_asset_lists_known_names():
    with pytest.raises(AssetError, match="minilm"):
        assets.asset_path("no-such-asset")


def test_fetch_verifies_and_unpacks(fake_asset):
    path = assets.asset_path("fake")
    assert (path / "data.txt").read_bytes() == PAYLOAD
    manifest = json.loads((path / assets.MANIFEST).read_text())
    assert manifest["files"]["data.txt"]["sha256"] == _sha(PAYLOAD)
    assert _cache_entries() == [path.name], "temporary folders must not stay in the cache"


def test_requirements_line_pins_the_archive_hash(fake_asset):
    line = assets.requirements_line(fake_asset)
    assert line == f"coursefake==1.0 --hash=sha256:{fake_asset.archive_sha256}"


def test_truncated_file_is_detected_and_refetched(fake_asset):
    path = assets.asset_path("fake")
    (path / "data.txt").write_bytes(PAYLOAD[:10])
    ok, reason = assets.check_cached("fake")
    assert not ok and "truncated" in reason
    assert (assets.asset_path("fake") / "data.txt").read_bytes() == PAYLOAD


def _corrupt_same_size(path: Path, shift_mtime: bool) -> None:
    before = path.stat()
    corrupted = bytearray(path.read_bytes())
    corrupted[5] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    # an edit changes the modification time; set it explicitly so the test does not depend on
    # the file system's clock resolution
    mtime = before.st_mtime_ns + (1_000_000_000 if shift_mtime else 0)
    os.utime(path, ns=(before.st_atime_ns, mtime))


def test_verified_stamp_skips_hashing(fake_asset, monkeypatch):
    path = assets.asset_path("fake")
    assert (path / assets.STAMP).is_file()

    def no_hashing(*args, **kwargs):
        raise AssertionError("an unchanged, verified asset must not be hashed again")

    monkeypatch.setattr(assets, "sha256_file", no_hashing)
    assert assets.check_cached("fake")[0]
    assert assets.asset_path("fake") == path


def test_corrupted_file_of_same_size_with_new_mtime_is_detected(fake_asset):
    path = assets.asset_path("fake")
    _corrupt_same_size(path / "data.txt", shift_mtime=True)
    ok, reason = assets.check_cached("fake")
    assert not ok and "checksum" in reason
    assert (assets.asset_path("fake") / "data.txt").read_bytes() == PAYLOAD


def test_rehash_or_a_missing_stamp_verifies_every_byte(fake_asset):
    """The stamp trusts size and time; ``rehash=True`` or a copied cache without it do not."""
    path = assets.asset_path("fake")
    _corrupt_same_size(path / "data.txt", shift_mtime=False)
    assert assets.check_cached("fake")[0]  # size and time unchanged: the stamp is trusted
    ok, reason = assets.check_cached("fake", rehash=True)
    assert not ok and "checksum" in reason
    (path / assets.STAMP).unlink()  # e.g. a cache copied from another machine
    assert not assets.check_cached("fake")[0]


def test_a_good_file_with_a_new_mtime_is_hashed_once_and_restamped(fake_asset, monkeypatch):
    path = assets.asset_path("fake")
    st = (path / "data.txt").stat()
    os.utime(path / "data.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    calls = []
    real = assets.sha256_file
    monkeypatch.setattr(assets, "sha256_file", lambda p: calls.append(p) or real(p))
    assert assets.check_cached("fake")[0] and len(calls) == 1
    assert assets.check_cached("fake")[0] and len(calls) == 1  # stamp rewritten


def test_fetch_all_verify_repairs_what_the_stamp_trusts(fake_asset, monkeypatch):
    monkeypatch.setattr(assets, "REGISTRY", {"fake": fake_asset})
    path = assets.asset_path("fake")
    _corrupt_same_size(path / "data.txt", shift_mtime=False)  # invisible to the stamp
    lines = []
    assets.fetch_all(log=lines.append)
    assert lines == ["fake: cached"]
    lines.clear()
    assets.fetch_all(log=lines.append, verify=True)
    assert "checksum mismatch" in lines[0] and (path / "data.txt").read_bytes() == PAYLOAD
    lines.clear()
    assets.fetch_all(log=lines.append, verify=True)
    assert lines == ["fake: cached (verified)"]


def test_missing_manifest_means_incomplete(fake_asset):
    path = assets.asset_path("fake")
    (path / assets.MANIFEST).unlink()
    assert not assets.check_cached("fake")[0]


def test_wrong_archive_checksum_is_refused_and_leaves_nothing(fake_asset, monkeypatch):
    monkeypatch.setitem(
        assets.REGISTRY, "fake", Asset(**{**fake_asset.__dict__, "archive_sha256": "0" * 64})
    )
    with pytest.raises(AssetError, match="checksum mismatch") as info:
        assets.fetch("fake")
    assert fake_asset.archive_sha256 in str(info.value)  # pip's "Got" hash is reported
    assert _cache_entries() == []


def test_sdist_with_wrong_hash_never_runs_its_code(fake_sdist, monkeypatch):
    """pip checks the hash before it unpacks the archive, so a replaced sdist's code never runs."""
    asset, marker = fake_sdist
    monkeypatch.setitem(
        assets.REGISTRY, "fakesd", Asset(**{**asset.__dict__, "archive_sha256": "1" * 64})
    )
    with pytest.raises(AssetError, match="checksum mismatch"):
        assets.fetch("fakesd")
    assert not marker.exists(), "code from an unverified archive ran"
    assert _cache_entries() == []


def test_sdist_with_the_pinned_hash_is_fetched(fake_sdist):
    asset, _ = fake_sdist
    path = assets.fetch("fakesd")
    assert (path / "data.txt").read_bytes() == PAYLOAD
    # pip then reads the verified sdist's metadata by running its build backend (pip #1884)


def test_offline_without_cache_names_the_fix(fake_asset, monkeypatch, tmp_path):
    empty = tmp_path / "empty-index"
    empty.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(AssetError) as info:
        assets.asset_path("fake")
    assert "python -m course_utils fetch" in str(info.value)
    assert "coursefake==1.0" in str(info.value)


def test_failed_conversion_leaves_no_half_written_asset(fake_asset, monkeypatch):
    def broken_convert(src, dst):
        (dst / "half").mkdir(parents=True)
        raise KeyboardInterrupt  # as if the learner pressed Ctrl-C

    monkeypatch.setitem(
        assets.REGISTRY, "fake", Asset(**{**fake_asset.__dict__, "convert": broken_convert})
    )
    with pytest.raises(KeyboardInterrupt):
        assets.fetch("fake")
    assert _cache_entries() == []


def test_leftovers_of_a_killed_fetch_are_removed(fake_asset):
    cache = assets.cache_dir()
    stale = cache / f".{fake_asset.folder_name}.tmp-killed"
    (stale / "download").mkdir(parents=True)
    path = assets.fetch("fake")
    assert _cache_entries() == [path.name]


def test_refetch_replaces_an_existing_copy_atomically(fake_asset):
    first = assets.fetch("fake")
    second = assets.fetch("fake", force=True)
    assert first == second and (second / "data.txt").read_bytes() == PAYLOAD
    assert _cache_entries() == [second.name]


def _slow_pip(monkeypatch):
    """Count pip runs and make each slow, so two fetches overlap for sure."""
    calls = []
    real_run = assets.subprocess.run

    def run(cmd, **kwargs):
        calls.append(cmd)
        threading.Event().wait(0.5)
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(assets.subprocess, "run", run)
    return calls


def _at_once(function, n: int = 2) -> list:
    """Run ``function`` in ``n`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def worker(i):
        barrier.wait()
        try:
            results[i] = function()
        except BaseException as e:  # re-raised below, in the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_two_fetches_at_once_download_once(fake_asset, monkeypatch):
    """Two kernels asking for the same missing asset: one fetches, the other waits and reuses it."""
    calls = _slow_pip(monkeypatch)
    paths = _at_once(lambda: assets.asset_path("fake"))
    assert paths[0] == paths[1] and (paths[0] / "data.txt").read_bytes() == PAYLOAD
    assert len(calls) == 1, "the second fetch should have waited for the first"
    assert _cache_entries() == [paths[0].name]


def test_two_forced_fetches_at_once_do_not_collide(fake_asset, monkeypatch):
    assets.fetch("fake")
    calls = _slow_pip(monkeypatch)
    paths = _at_once(lambda: assets.fetch("fake", force=True))
    assert len(calls) == 2 and paths[0] == paths[1]
    assert assets.check_cached("fake", rehash=True)[0]
    assert _cache_entries() == [paths[0].name]


@pytest.mark.assets
def test_real_assets_are_cached_and_verified():
    for name in assets.REGISTRY:
        ok, reason = assets.check_cached(name, rehash=True)
        assert ok, f"{name}: {reason} (run `python -m course_utils fetch`)"


@pytest.mark.assets
def test_cached_assets_load_with_the_network_blocked(monkeypatch):
    """After ``fetch``, every asset loads with no network at all (a workshop offline)."""

    def no_network(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(assets.subprocess, "run", no_network)  # no pip either
    from course_utils import data, models

    models.hub_reachable.cache_clear()
    model, tokenizer = models.load_classifier("minilm", device="cpu")
    assert model.config.num_hidden_layers == 6 and tokenizer("hello")["input_ids"]
    lm, lm_tokenizer = models.load_causal_lm("smollm2", device="cpu")
    assert lm.config.model_type == "llama" and lm_tokenizer.chat_template
    assert len(data.load_movie_reviews()["train"]) > 7000
    assert set(data.load_ood_sets()) == {"amazon", "nyt", "tweets"}
    assert len(data.load_chinese_reviews(max_per_class=50)["train"]) > 50
    assert data.load_conll2003()["test"].num_rows == 3453
    assert data.load_conll_headlines()["test"].num_rows > 200
    assert data.load_lee_similarity()["pairs"].num_rows == 1225
    assert data.load_word_similarity("wordsim353").num_rows == 353
    assert data.load_hsk_pairs()["train"].num_rows > 3000
    models.hub_reachable.cache_clear()
