"""The asset cache: fetch through pip, checksums, atomic unpacking, damage detection, offline use.

The mechanics are tested on a small package served from a local folder (pip's --find-links with no
index), so pip itself runs for real but no network is needed; the real assets are checked last.
"""

from __future__ import annotations

import hashlib
import json
import socket
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
    monkeypatch.setattr(assets, "_verified", set())
    return asset


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
    leftovers = [p.name for p in path.parent.iterdir() if p.name != path.name]
    assert leftovers == [], "temporary folders must not stay in the cache"


def test_truncated_file_is_detected_and_refetched(fake_asset):
    path = assets.asset_path("fake")
    (path / "data.txt").write_bytes(PAYLOAD[:10])
    ok, reason = assets.check_cached("fake")
    assert not ok and "truncated" in reason
    assert (assets.asset_path("fake") / "data.txt").read_bytes() == PAYLOAD


def test_corrupted_file_of_same_size_is_detected(fake_asset, monkeypatch):
    path = assets.asset_path("fake")
    corrupted = bytearray(PAYLOAD)
    corrupted[5] ^= 0xFF
    (path / "data.txt").write_bytes(bytes(corrupted))
    monkeypatch.setattr(assets, "_verified", set())  # as in a new process
    ok, reason = assets.check_cached("fake")
    assert not ok and "checksum" in reason
    assert (assets.asset_path("fake") / "data.txt").read_bytes() == PAYLOAD


def test_missing_manifest_means_incomplete(fake_asset):
    path = assets.asset_path("fake")
    (path / assets.MANIFEST).unlink()
    assert not assets.check_cached("fake")[0]


def test_wrong_archive_checksum_is_refused_and_leaves_nothing(fake_asset, monkeypatch):
    monkeypatch.setitem(
        assets.REGISTRY, "fake", Asset(**{**fake_asset.__dict__, "archive_sha256": "0" * 64})
    )
    with pytest.raises(AssetError, match="checksum mismatch"):
        assets.fetch("fake")
    cache = assets.cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


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
    assert list(assets.cache_dir().iterdir()) == []


def test_refetch_replaces_an_existing_copy_atomically(fake_asset):
    first = assets.fetch("fake")
    second = assets.fetch("fake", force=True)
    assert first == second and (second / "data.txt").read_bytes() == PAYLOAD
    assert sorted(p.name for p in second.parent.iterdir()) == [second.name]


@pytest.mark.assets
def test_real_assets_are_cached_and_verified(monkeypatch):
    monkeypatch.setattr(assets, "_verified", set())
    for name in assets.REGISTRY:
        ok, reason = assets.check_cached(name)
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
    models.hub_reachable.cache_clear()
