"""The ``fc`` suite: BFCL v4 (``bfcl-eval``) simple / multiple / parallel function calling.

Each task binds the entry's own functions as the run's tools (they only record the call) and
scores the policy's calls to them with BFCL's own AST checker. ``bfcl-eval`` is installed
``--no-deps`` (its pins are heavy): only its data files and its checker module are used, the
latter with a one-entry stand-in for its model table (which imports every vendor SDK).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, create_model

from podium.tools.cost import ToolCost, Usage, with_cost

from . import Task, Verdict, register_suite, suite_error

CATEGORIES = ("simple_python", "multiple", "parallel")
CHECKER_MODEL = "podium"  # our tool names replace "." by "_", as OpenAI-style names must
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def data_dir() -> Path:
    """``bfcl_eval/data`` of the installed ``bfcl-eval``."""
    try:
        dist = importlib.metadata.distribution("bfcl-eval")
    except importlib.metadata.PackageNotFoundError:
        raise suite_error("fc", "bfcl-eval", "pip install --no-deps bfcl-eval==2026.3.23") from None
    return Path(str(dist.locate_file("bfcl_eval/data")))


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    root = data_dir()
    per: list[list[Task]] = []
    for cat in CATEGORIES:
        gold = {
            r["id"]: r["ground_truth"]
            for r in _read(root / "possible_answer" / f"BFCL_v4_{cat}.json")
        }
        entries = _read(root / f"BFCL_v4_{cat}.json")
        if seed:
            random.Random(f"{seed}:{cat}").shuffle(entries)
        per.append([
            Task(
                id=f"fc-{e['id']}", suite="fc",
                question="\n".join(m["content"] for m in e["question"][0] if m["role"] == "user"),
                gold=json.dumps(gold[e["id"]]),
                data={"category": cat, "functions": e["function"], "ground_truth": gold[e["id"]]},
            )
            for e in entries
        ])  # fmt: skip
    # Interleave the categories, so a small --limit samples all three.
    tasks = [t for group in zip(*per, strict=False) for t in group]
    return tasks[:limit] if limit else tasks


def tool_name(name: str) -> str:
    """A BFCL function name as a tool name (dots are not allowed in OpenAI-style names)."""
    return name.replace(".", "_")


def _schema(node: Any) -> Any:
    """A BFCL parameter schema as JSON Schema (``dict`` → ``object``, ``float`` → ``number``)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            if (kind := _TYPES.get(value, value)) is not None:
                out[key] = kind
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema(spec) for name, spec in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _schema(value)
        else:
            out[key] = value
    return out


_PY = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list,
       "object": dict}  # fmt: skip


def args_model(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model of a function's JSON-schema parameters (what the graph's tools carry)."""
    fields: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for arg, spec in schema.get("properties", {}).items():
        kind = _PY.get(spec.get("type"), Any) if isinstance(spec.get("type"), str) else Any
        extra = {k: spec[k] for k in ("enum", "items") if k in spec}
        info = Field(
            description=str(spec.get("description", "")), json_schema_extra=extra or None,
            alias=arg if arg.startswith("_") else None,  # pydantic refuses "_x" field names
        )  # fmt: skip
        if arg not in required:
            kind, info.default = kind | None, None
        fields[f"x{arg}" if arg.startswith("_") else arg] = (kind, info)
    return create_model(f"{tool_name(name)}_args", **fields)


def tools_for(task: Task) -> list[BaseTool]:
    """The task's functions as free tools that record the call and return "ok"."""

    def record(**kwargs: Any) -> tuple[str, Usage]:
        return "ok: call recorded", Usage()

    tools = []
    for fn in task.data["functions"]:
        params = _schema(fn.get("parameters", {"type": "object", "properties": {}}))
        tool = StructuredTool.from_function(
            record, name=tool_name(fn["name"]), description=fn.get("description", "")[:1000],
            args_schema=args_model(fn["name"], params), response_format="content_and_artifact",
        )  # fmt: skip
        tools.append(with_cost(tool, ToolCost(expected_latency_s=0.0)))
    return tools


def _install_model_table() -> None:
    """Give BFCL's checker its model table without importing every vendor SDK."""
    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stub = types.ModuleType(name)
        entry = types.SimpleNamespace(underscore_to_dot=True)
        stub.MODEL_CONFIG_MAPPING = {CHECKER_MODEL: entry}  # type: ignore[attr-defined]
        sys.modules[name] = stub


def calls_of(record: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The policy's function calls in a run, as BFCL model output (``[{name: args}]``)."""
    return [
        {c["tool"]: c["args"]}
        for turn in (record or {}).get("policy_turns", [])
        for c in turn.get("calls", [])
        if c["tool"] != "answer"
    ]


def _check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    from bfcl_eval.constants.enums import Language

    _install_model_table()
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    output = calls_of(record)
    if not output:
        return Verdict(False, 0.0, "the policy made no function call")
    result = ast_checker(
        list(task.data["functions"]), output, list(task.data["ground_truth"]),
        Language.PYTHON, task.data["category"], CHECKER_MODEL,
    )  # fmt: skip
    detail = "AST match" if result["valid"] else "; ".join(map(str, result.get("error", [])))[:300]
    return Verdict(bool(result["valid"]), float(bool(result["valid"])), detail)


register_suite("fc", _load, _check, tools=tools_for)
