"""The policy being trained as a LangChain chat model, so the graph can drive it in-process.

Inside :func:`podium.graph.resources.policy_override` the graph's policy node calls this model
instead of an endpoint (online GRPO). It applies the tokenizer's chat template with the bound
tools to the rendered conversation (``training/grpo/samples.py`` — the same function the batches
re-tokenise with), samples at temperature > 0, and returns the raw completion text (the
graph's parser finds the ``<tool_call>`` tags) with real ``usage_metadata``. Every turn's
prompt ids, generated ids and their log-probabilities are kept in :attr:`turns` for the
trainer's ``rollout_func``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from podium.graph.render import tool_schemas

from .samples import template_ids


@dataclass
class GeneratedTurn:
    """One policy turn as the model produced it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]


class LocalPolicy(BaseChatModel):
    """A ``transformers`` causal LM (plain or PEFT) behind the chat-model interface."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any
    tokenizer: Any
    temperature: float = 1.0
    max_new_tokens: int = 128
    model_name: str = "podium-policy"
    turns: list[GeneratedTurn] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "podium-local-policy"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        """Bind tools as OpenAI schemas (``tool_choice`` is accepted and not enforced)."""
        return self.bind(tools=tool_schemas(tools), **kwargs)

    def generate_ids(self, prompt_ids: list[int]) -> GeneratedTurn:
        """Sample a completion of ``prompt_ids``; stops at EOS or ``max_new_tokens``."""
        import torch

        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model.generate(
                    input_ids=torch.tensor([prompt_ids]),
                    attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                    do_sample=self.temperature > 0,
                    temperature=self.temperature if self.temperature > 0 else None,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=self.max_new_tokens,
                    eos_token_id=self.tokenizer.eos_token_id,
                    pad_token_id=self.tokenizer.pad_token_id,
                    return_dict_in_generate=True,
                    output_scores=True,
                    use_cache=True,  # trainers set config.use_cache=False for the update
                )
        finally:
            model.train(was_training)
        ids = out.sequences[0, len(prompt_ids) :].tolist()
        logprobs = [
            torch.log_softmax(score[0].float(), dim=-1)[tok].item()
            for score, tok in zip(out.scores, ids, strict=False)
        ]
        eos = self.tokenizer.eos_token_id
        if eos in ids:  # keep the EOS, drop whatever padding follows it
            cut = ids.index(eos) + 1
            ids, logprobs = ids[:cut], logprobs[:cut]
        return GeneratedTurn(list(prompt_ids), ids, logprobs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt_ids = template_ids(
            self.tokenizer, messages, kwargs.get("tools") or [], generation_prompt=True
        )
        with self._lock:  # one generation at a time on a shared model
            turn = self.generate_ids(prompt_ids)
            self.turns.append(turn)
        text = self.tokenizer.decode(turn.completion_ids, skip_special_tokens=True)
        usage = {
            "input_tokens": len(prompt_ids),
            "output_tokens": len(turn.completion_ids),
            "total_tokens": len(prompt_ids) + len(turn.completion_ids),
        }
        msg = AIMessage(
            content=text,
            usage_metadata=usage,
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])
