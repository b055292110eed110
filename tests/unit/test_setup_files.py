"""Set-up files: `make run` installs only what running needs; langgraph.json passes its schema."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

from langgraph_cli.config import validate_config

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> str:
    """The commands ``make TARGET`` would run for the system packages (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_running_needs_no_browser_and_no_database_the_tests_need_both():
    assert "bubblewrap" in dry_run("system-deps")
    assert "chromium" not in dry_run("system-deps") and "postgresql" not in dry_run("system-deps")
    assert "chromium" in dry_run("test-deps") and "postgresql" in dry_run("test-deps")
    makefile = (ROOT / "Makefile").read_text()
    assert "test: install install-vllm test-deps" in makefile
    rules = {line.split(":")[0]: line for line in makefile.splitlines() if ":" in line}
    assert rules["run"].startswith("run: install-strong ")  # the 1.5B expert: strongest ≠ cheapest
    assert rules["install-strong"].startswith("install-strong: install $(VENV)/.strong")
    assert "test-deps" not in rules["run"] + rules["install-strong"]


def test_langgraph_json_names_python_and_the_env_file_as_langgraph_validates_them():
    config = validate_config(json.loads((ROOT / "langgraph.json").read_text()))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={config['python_version']}"
    assert config["env"] == ".env" and ".env" in (ROOT / ".gitignore").read_text().split()
