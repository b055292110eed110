"""podium's configuration: tool-pool profiles, LLM experts, the policy endpoint and prices.

The packaged ``data/podium.toml`` holds the defaults; a user file is merged over it. Every
mistake in a user file becomes one :class:`ConfigError` line naming the file and the fix.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.tools.errors import UserError

CONFIG_ENV = "PODIUM_CONFIG"
USER_CONFIG = Path("~/.config/podium/config.toml")


class ConfigError(UserError, ValueError):
    """A configuration problem a user can fix; the message is one line."""


class _Strict(BaseModel):
    # No inf or nan: ``timeout_s = inf`` or ``temperature = inf`` is a typo, not a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PolicyConfig(_Strict):
    """Where the router model is served and what its tokens cost."""

    base_url: str = Field("", description="OpenAI-compatible endpoint; empty = embedded server.")
    model: str = "policy"
    api_key_env: str = "PODIUM_POLICY_API_KEY"
    price: str = Field("qwen2.5-coder-0.5b-instruct", description="Price-table key of the policy.")
    max_tokens: int = Field(384, gt=0)
    temperature: float = Field(0.0, ge=0)
    adapter: str = Field(
        "",
        description="GGUF LoRA (podium export) the embedded server applies to the policy; "
        "a relative path is relative to the file that sets it.",
    )


class ProfileConfig(_Strict):
    """A named tool pool."""

    description: str = ""
    tools: list[str]


class ExpertConfig(_Strict):
    """An LLM offered to the policy as a tool, behind any OpenAI-compatible endpoint."""

    model: str
    base_url: str = Field(description="Endpoint URL, or 'embedded' for podium's local server.")
    price: str = Field(description="Price-table key, or 'provider:model' for genai-prices.")
    capability: str
    api_key_env: str = ""
    requires_model: str = Field("", description="Packaged model that must be installed.")
    max_tokens: int = Field(512, gt=0)
    expected_latency_s: float = Field(5.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    locality: Literal["", "local", "remote"] = Field(
        "", description="'local' or 'remote'; empty = from the endpoint."
    )


class PythonConfig(_Strict):
    """Limits of the sandboxed python tool."""

    timeout_s: float = Field(10.0, gt=0)
    memory_mb: int = Field(1024, ge=64)


class SearchConfig(_Strict):
    """Settings of the local Wikipedia search tool."""

    k: int = Field(3, gt=0, le=20)
    max_articles: int = Field(0, ge=0, description="0 = the whole corpus.")


class PodiumConfig(_Strict):
    """The whole configuration, defaults merged with the user's file."""

    policy: PolicyConfig = PolicyConfig()
    profiles: dict[str, ProfileConfig]
    experts: dict[str, ExpertConfig] = {}
    python: PythonConfig = PythonConfig()
    local_search: SearchConfig = SearchConfig()
    prices: dict[str, Any] = Field({}, description="Entries merged over the price table.")
    source: str = Field("", description="The user file merged over the defaults, if any.")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base``: nested tables merge key by key, other values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a one-line :class:`ConfigError`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _user_config_path(explicit: str | Path | None) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    if env := os.environ.get(CONFIG_ENV):
        return Path(env).expanduser()
    default = USER_CONFIG.expanduser()
    return default if default.is_file() else None


def load_config(path: str | Path | None = None) -> PodiumConfig:
    """The configuration: packaged defaults merged with the user's file.

    Args:
        path: user file; defaults to ``$PODIUM_CONFIG``, then ``~/.config/podium/config.toml``.

    Raises:
        ConfigError: unreadable or invalid file, one line.
    """
    user = _user_config_path(path)
    key = str(user.resolve()) if user else ""
    stamp = user.stat().st_mtime_ns if user and user.is_file() else 0
    return _load(key, stamp)


def _anchor(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Resolve ``[policy] adapter`` relative to the folder of the file that set it."""
    policy = data.get("policy")
    if not isinstance(policy, dict):
        return data
    adapter = policy.get("adapter")
    if isinstance(adapter, str) and adapter:
        path = Path(adapter).expanduser()
        data["policy"] = {**policy, "adapter": str(path if path.is_absolute() else folder / path)}
    return data


@cache
def _load(user: str, _stamp: int) -> PodiumConfig:
    packaged = resources.files(__package__).joinpath("data")
    default = tomllib.loads(packaged.joinpath("podium.toml").read_text())
    _anchor(default, Path(str(packaged)))
    data = _merge(default, _anchor(read_toml(Path(user)), Path(user).parent)) if user else default
    try:
        return PodiumConfig.model_validate({**data, "source": user})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"config {user or 'defaults'}: {where}: {err['msg']} (see tools/data/podium.toml)"
        ) from None
