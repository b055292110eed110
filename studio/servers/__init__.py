"""Servers podium runs in the foreground: the policy's (``podium serve``) and Studio's API.

``podium serve`` runs vLLM (:mod:`.vllm`) or the embedded llama.cpp server (:mod:`.embedded`),
both through :mod:`.process`; ``podium studio`` becomes LangGraph's dev server (:mod:`.devserver`).
"""

from .devserver import STUDIO_URL, dev_command, dev_env
from .embedded import llamacpp_adapter, serve_llamacpp
from .process import (
    DEFAULT_PORT,
    ServeError,
    ServeSpec,
    check_port_free,
    endpoint_text,
    stop_group,
)
from .vllm import parse_loras, serve_vllm, vllm_command, vllm_env, vllm_python

__all__ = [
    "DEFAULT_PORT",
    "STUDIO_URL",
    "ServeError",
    "ServeSpec",
    "check_port_free",
    "dev_command",
    "dev_env",
    "endpoint_text",
    "llamacpp_adapter",
    "parse_loras",
    "serve_llamacpp",
    "serve_vllm",
    "stop_group",
    "vllm_command",
    "vllm_env",
    "vllm_python",
]
