"""Tiny random Qwen3 policies made offline, for tests of training and serving (never downloaded).

:func:`build_tiny_policy` writes a real Hugging Face model directory: a random float32
``Qwen3ForCausalLM``, a byte-level BPE tokenizer trained here on packaged Wikipedia intros, and
a Qwen2.5/Hermes-style chat template with tools — the conventions of ``graph/render.py``
(calls as ``<tool_call>`` JSON in assistant turns, results as ``<tool_response>`` in user turns).
vLLM, TRL and transformers load it like any checkpoint. :func:`build_tiny_lora` adds a PEFT
LoRA adapter of it with non-zero weights, so serving an adapter changes the outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

IM_START, IM_END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = [EOT, IM_START, IM_END]
# Tool markers are single tokens but not "special": decoding keeps them, so vLLM's hermes
# parser finds them in the text (as with Qwen2.5's own tokenizer).
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
CORPUS_INTROS = 3000  # Wikipedia intros the tokenizer is trained on (a few seconds)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
HEAD_DIM = 32  # the smallest head size vLLM's CPU attention supports (16 fails at run time)

CHAT_TEMPLATE = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and ' }}
{{- 'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
{{- '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant' }}
{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
{%- for call in message.tool_calls or [] %}
{%- if call.function is defined %}{%- set call = call.function %}{%- endif %}
{{- '\\n<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
{%- if call.arguments is string %}{{- call.arguments }}
{%- else %}{{- call.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


@contextlib.contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; it replaces ``target`` only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _corpus(limit: int) -> Iterator[str]:
    """The first ``limit`` packaged English Wikipedia intros (file order, so deterministic)."""
    from podium.tools.retrieval import corpus_file

    intros = json.loads(corpus_file().read_text(encoding="utf-8"))
    for n, entry in enumerate(intros.values()):
        if n >= limit:
            return
        yield f"{entry.get('title', '')}\n{entry.get('extract', '')}"


def train_tokenizer(vocab_size: int = 4096) -> object:
    """A byte-level BPE tokenizer trained offline, with ChatML and tool tokens and the template.

    Returns:
        A ``transformers`` fast tokenizer (``eos`` = ``<|im_end|>``, ``pad`` = ``<|endoftext|>``).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(CORPUS_INTROS), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=EOT,
        chat_template=CHAT_TEMPLATE,
        model_max_length=8192,
    )


def build_tiny_policy(
    out_dir: Path, *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2
) -> Path:
    """Write a tiny random Qwen3 causal LM with a tool-calling chat template to ``out_dir``.

    The same ``seed`` gives identical files. ``out_dir`` is replaced whole, never half-written.

    Returns:
        ``out_dir``, loadable with ``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained``.
    """
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    if hidden_size % HEAD_DIM:
        raise ValueError(f"hidden_size must be a multiple of {HEAD_DIM}, got {hidden_size}")
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer()
    heads = hidden_size // HEAD_DIM
    im_end, eot = tokenizer.convert_tokens_to_ids([IM_END, EOT])
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=HEAD_DIM,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=eot,
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(eos_token_id=[im_end, eot], pad_token_id=eot)
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out_dir


def build_tiny_lora(base_dir: Path, out_dir: Path, *, r: int = 8, seed: int = 0) -> Path:
    """Write a PEFT LoRA adapter (q/k/v/o projections) of the model in ``base_dir``.

    Both LoRA matrices are random (``init_lora_weights=False``), so the adapter really changes
    the model's outputs — a zero-initialised one could not be told apart from the base.

    Returns:
        ``out_dir``, loadable with ``PeftModel.from_pretrained`` and vLLM's ``--lora-modules``.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=LORA_TARGETS,
        lora_dropout=0.0,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = get_peft_model(base, config)
    model.peft_config["default"].base_model_name_or_path = str(base_dir)
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
    return out_dir
