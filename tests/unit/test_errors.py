"""One error base: every user-facing error is a ``UserError``, and the CLI maps it to one line."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

from podium.tools import UserError

# module:Class -> the other base code relies on (``except ValueError`` and the like).
USER_ERRORS = {
    "podium.tools.config:ConfigError": ValueError,
    "podium.tools.adapters:AdapterError": ValueError,
    "podium.tools.envspec:SpecError": ValueError,
    "podium.tools.environment:EnvError": ValueError,
    "podium.tools.model_files:ModelFilesError": RuntimeError,
    "podium.tools.llamacpp:ServerError": RuntimeError,
    "podium.tools.retrieval:RetrievalError": RuntimeError,
    "podium.graph.context:ContextError": ValueError,
    "podium.graph.database:DatabaseError": RuntimeError,
    "podium.training.eval.routers:RouterError": ValueError,
    "podium.training.eval.runner:EvalError": ValueError,
    "podium.training.eval.ray_runs:RayError": ValueError,
    "podium.training.eval.suites:SuiteError": ValueError,
    "podium.training.eval.suites:SuiteSkipped": ValueError,
    "podium.training.grpo.collect:CollectError": ValueError,
    "podium.training.grpo.config:TrainConfigError": ValueError,
    "podium.training.synth.tasks:SynthError": ValueError,
    "podium.studio.durable:ThreadError": ValueError,
    "podium.studio.replay:ReplayError": ValueError,
    "podium.studio.variants:VariantError": ValueError,
    "podium.tools.price_shock:PriceFileError": ValueError,
    "podium.studio.lease:LeaseError": RuntimeError,
    "podium.tools.paths:PathError": ValueError,
    "podium.studio.reports.viewer:ViewError": ValueError,
    "podium.studio.servers.process:ServeError": RuntimeError,
    "podium.studio.commands.options:UsageError": ValueError,
}
# Not a user's mistake: a broken checker, a refused tool call (an observation for the policy),
# a trajectory the trainer skips, a stop signal.
INTERNAL = {"CheckerError", "ToolFailed", "BatchError", "Stop", "UserError"}
PACKAGES = ("podium.tools", "podium.graph", "podium.training", "podium.studio")


def _load(name: str) -> type[BaseException]:
    module, _, cls = name.partition(":")
    return getattr(importlib.import_module(module), cls)


def _exception_classes() -> set[str]:
    """Names of the exception classes defined anywhere in podium's source (read, not imported)."""
    classes = []
    for package in PACKAGES:
        root = Path(importlib.import_module(package).__file__).resolve().parent
        for path in root.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            classes += [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    known = {"Exception", "BaseException", "ValueError", "RuntimeError", "UserError"}
    found: set[str] = set()
    while True:  # a class deriving from a found one is an exception class too
        more = {
            c.name
            for c in classes
            if any(getattr(b, "id", getattr(b, "attr", "")) in known | found for b in c.bases)
        }
        if more <= found:
            return found
        found |= more


@pytest.mark.parametrize("name", list(USER_ERRORS))
def test_every_user_error_derives_from_user_error_and_keeps_its_other_base(name):
    cls = _load(name)
    assert issubclass(cls, UserError)
    assert issubclass(cls, USER_ERRORS[name])


def test_every_exception_class_is_either_a_user_error_or_known_internal():
    declared = {name.partition(":")[2] for name in USER_ERRORS}
    found = _exception_classes()
    assert found - declared - INTERNAL == set(), "classify the new error in USER_ERRORS/INTERNAL"
    assert declared <= found  # the scan sees the classes it is meant to police


def test_internal_errors_are_not_user_errors():
    from podium.tools.environment import ToolFailed
    from podium.training.eval.suites import CheckerError
    from podium.training.grpo.samples import BatchError

    for cls in (CheckerError, ToolFailed, BatchError):
        assert not issubclass(cls, UserError)


def _podium(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    from podium.studio.cli import main

    monkeypatch.setattr(sys, "argv", ["podium", *argv])
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_the_cli_prints_any_user_error_as_one_line_with_exit_code_2(monkeypatch, capsys):
    import podium.tools

    def refuse(*_args, **_kwargs):
        raise UserError("the pool is wrong: fix it")

    monkeypatch.setattr(podium.tools, "pool_entries", refuse)
    code, out, err = _podium(monkeypatch, capsys, "tools")
    assert (code, out, err) == (2, "", "podium: error: the pool is wrong: fix it\n")


def test_the_cli_lets_other_errors_keep_their_traceback(monkeypatch, capsys):
    import podium.tools

    def crash(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(podium.tools, "pool_entries", crash)
    with pytest.raises(RuntimeError, match="a bug"):
        _podium(monkeypatch, capsys, "tools")
