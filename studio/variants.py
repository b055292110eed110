"""The other choice a counterfactual replay makes: a fixed router, a policy adapter, a tool swap.

Each variant is checked against the pool before anything is forked (an unknown router or tool
is a one-line error), then gives the policy model the fork runs with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from podium.graph.parsing import parse_tool_calls
from podium.graph.resources import Resources
from podium.tools.errors import UserError
from podium.training.eval.routers import ROUTERS, argument_of, router_for

REPLAY_ROUTERS = tuple(r for r in ROUTERS if r != "oracle")


class VariantError(UserError, ValueError):
    """A replay choice that cannot be used (unknown router or tool, missing adapter)."""


@dataclass(frozen=True)
class Variant:
    """One counterfactual choice; exactly one of its fields is set."""

    router: str = ""
    adapter: str = ""
    swap: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        """How reports name the choice."""
        if self.router:
            return f"router={self.router}"
        if self.adapter:
            return f"adapter={self.adapter}"
        if self.swap:
            return f"swap={self.swap[0]}={self.swap[1]}"
        return "same policy"

    def model(self, res: Resources) -> BaseChatModel | None:
        """The policy the fork runs with (None: the thread's own policy, sampled again).

        Raises:
            VariantError: the router, a swapped tool or the adapter does not exist.
        """
        if self.router:
            if self.router not in REPLAY_ROUTERS:
                raise VariantError(
                    f"unknown router {self.router!r}: use one of {', '.join(REPLAY_ROUTERS)}"
                )
            return None if self.router == "policy" else router_for(self.router, res.tools)
        if self.adapter:
            return adapter_policy(Path(self.adapter))
        if self.swap:
            return swapped(res, *self.swap)
        return None


def parse_variant(router: str, adapter: str, swap: str) -> Variant:
    """The variant named by ``podium replay``'s flags (exactly one of them).

    Raises:
        VariantError: none or several flags, or a ``--swap`` that is not ``TOOL=OTHER``.
    """
    given = [
        f for f, v in (("--router", router), ("--policy-adapter", adapter), ("--swap", swap)) if v
    ]
    if len(given) != 1:
        raise VariantError(
            "name exactly one other choice: --router ROUTER, --policy-adapter PATH or "
            f"--swap TOOL=OTHER (got {', '.join(given) or 'none'})"
        )
    if swap:
        tool, sep, other = (s.strip() for s in swap.partition("="))
        if not (sep and tool and other) or tool == other:
            raise VariantError(f"--swap {swap!r}: expected TOOL=OTHER, two different tool names")
        return Variant(swap=(tool, other))
    return Variant(router=router.strip(), adapter=adapter)


def swapped(res: Resources, tool: str, other: str) -> BaseChatModel:
    """The current policy, with every call to ``tool`` sent to ``other`` instead."""
    for name in (tool, other):
        if name not in res.tools:
            raise VariantError(
                f"--swap names unknown tool {name!r}: use tools of the pool "
                f"({', '.join(sorted(res.tools))})"
            )
    rename = (argument_of(res.tools[tool]), argument_of(res.tools[other]))
    return SwappedPolicy(
        inner=res.chat_model(), tool=tool, other=other, args=rename, pool=dict(res.tools)
    )


class SwappedPolicy(BaseChatModel):
    """Wraps a policy; its calls to ``tool`` become calls to ``other`` (text argument moved)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    tool: str
    other: str
    args: tuple[str, str]
    pool: dict[str, BaseTool]

    @property
    def _llm_type(self) -> str:
        return "podium-swapped-policy"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable:
        """The inner policy bound to ``tools``, its replies rewritten."""
        return self.inner.bind_tools(tools, **kwargs) | RunnableLambda(self.rewrite)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        reply = self.inner.invoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=self.rewrite(reply))])

    def rewrite(self, reply: BaseMessage) -> BaseMessage:
        """``reply`` with its calls to ``tool`` renamed (text-form calls are parsed first)."""
        if not isinstance(reply, AIMessage):
            return reply
        calls = parse_tool_calls(reply, self.pool).calls
        if not any(c["name"] == self.tool for c in calls):
            return reply
        moved = []
        for call in calls:
            if call["name"] == self.tool:
                args = dict(call["args"])
                if self.args[0] in args:
                    args[self.args[1]] = args.pop(self.args[0])
                call = {**call, "name": self.other, "args": args}
            moved.append(call)
        content = json.dumps([{"name": c["name"], "arguments": c["args"]} for c in moved])
        return reply.model_copy(update={"content": content, "tool_calls": moved})


def adapter_policy(path: Path) -> BaseChatModel:
    """The base model named in a PEFT adapter's config with the adapter applied, greedy.

    Raises:
        VariantError: no adapter at ``path`` or its base model is not on this machine.
    """
    config = path.expanduser() / "adapter_config.json"
    if not config.is_file():
        raise VariantError(
            f"--policy-adapter {path}: no adapter_config.json there (a PEFT adapter directory "
            "saved by 'podium train')"
        )
    base = json.loads(config.read_text()).get("base_model_name_or_path") or ""
    if not Path(base).is_dir():
        raise VariantError(
            f"--policy-adapter {path}: its base model {base!r} is not a local directory; "
            "fix base_model_name_or_path in adapter_config.json"
        )
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from podium.training.grpo.local_policy import LocalPolicy

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(path))
    return LocalPolicy(model=model.eval(), tokenizer=tokenizer, temperature=0.0)
