"""Locating, assembling and verifying packaged model files (podium.tools.model_files)."""

from __future__ import annotations

import hashlib

import pytest

from podium.tools.model_files import PACKAGED_MODELS


@pytest.mark.integration
@pytest.mark.parametrize("alias", ["policy", "smollm2", "qwen-coder-1.5b"])
def test_real_model_files_match_their_sha256(alias: str) -> None:
    model = PACKAGED_MODELS[alias]
    if model.optional and not model.installed():
        pytest.skip(f"{alias} not installed")
    path = model.path()
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(8 << 20):
            digest.update(block)
    assert digest.hexdigest() == model.sha256
    with path.open("rb") as source:
        assert source.read(4) == b"GGUF"
