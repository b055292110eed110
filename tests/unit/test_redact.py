"""``tools.redact``: configured keys, bearer tokens and URL credentials leave stored text."""

from __future__ import annotations

import pytest

from podium.tools.redact import REDACTED, redact, register_key_env


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-redact-openai-123456")
    monkeypatch.setenv("HF_TOKEN", "hf_redact_token_abcdef")
    monkeypatch.setenv("SHORT_API_KEY", "none")  # a placeholder, not a key


def test_every_key_in_the_environment_is_redacted() -> None:
    text = "401: Incorrect API key provided: sk-redact-openai-123456 (token hf_redact_token_abcdef)"
    out = redact(text)
    assert "sk-redact" not in out and "hf_redact" not in out and out.count(REDACTED) == 2


def test_a_configured_key_of_any_name_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_LLM", "acme-secret-value-42")
    assert redact("got acme-secret-value-42") == "got acme-secret-value-42"  # not yet known
    register_key_env("ACME_LLM")
    assert redact("got acme-secret-value-42") == f"got {REDACTED}"


def test_bearer_tokens_and_url_credentials_are_redacted() -> None:
    text = "Authorization: Bearer unknown-token-0123456789 via http://bob:hunter22@proxy:3128/x"
    out = redact(text)
    assert "unknown-token" not in out and "hunter22" not in out and "bob" not in out
    assert f"Bearer {REDACTED}" in out and f"http://{REDACTED}@proxy:3128/x" in out


def test_ordinary_text_is_left_alone() -> None:
    text = "none of this is secret: http://127.0.0.1:8080/v1, a@b.c, Bearer of news"
    assert redact(text) == text
