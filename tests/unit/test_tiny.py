"""The tiny random Qwen3 policy and its LoRA adapter, built offline by our own code."""

from __future__ import annotations

import json

import pytest

from podium.training.grpo.tiny import TOOL_TOKENS, build_tiny_lora, build_tiny_policy

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "python",
            "description": "Run Python code.",
            "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_policy(root / "policy", seed=0)
    return base, build_tiny_lora(base, root / "lora", r=8, seed=0)


def test_loads_with_auto_classes_and_generates(tiny):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny[0])
    model = AutoModelForCausalLM.from_pretrained(tiny[0])
    assert model.config.model_type == "qwen3"
    assert model.dtype == torch.float32
    assert 3000 < len(tok) < 5000
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4 or tok.eos_token_id in out[0].tolist()


def test_chat_and_tool_tokens_are_single_tokens_kept_by_decoding(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny[0])
    for token in ["<|im_start|>", "<|im_end|>", "<|endoftext|>", *TOOL_TOKENS]:
        assert len(tok(token, add_special_tokens=False).input_ids) == 1, token
    assert tok.eos_token == "<|im_end|>"
    text = '<tool_call>\n{"name": "python"}\n</tool_call><|im_end|>'
    # Tool markers survive skip_special_tokens (vLLM's hermes parser reads them), ChatML does not.
    decoded = tok.decode(tok(text).input_ids, skip_special_tokens=True)
    assert decoded == '<tool_call>\n{"name": "python"}\n</tool_call>'


def test_chat_template_renders_tools_calls_and_results_like_graph_render(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny[0])
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "python", "arguments": {"code": "2+2"}}}
            ],
        },
        {"role": "tool", "content": "4"},
    ]
    text = tok.apply_chat_template(
        messages, tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools")
    assert json.dumps(TOOLS[0]) in text
    assert '<tool_call>\n{"name": "python", "arguments": {"code": "2+2"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n4\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    # Arguments already serialised (OpenAI wire format) are not encoded a second time.
    messages[2]["tool_calls"][0]["function"]["arguments"] = '{"code": "2+2"}'
    again = tok.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert '"arguments": {"code": "2+2"}}' in again
    plain = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=False)
    assert (
        plain
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    )


def test_same_seed_same_files_other_seed_other_weights(tiny, tmp_path):
    again = build_tiny_policy(tmp_path / "again", seed=0)
    other = build_tiny_policy(tmp_path / "other", seed=1)
    for name in ["model.safetensors", "tokenizer.json", "config.json"]:
        assert (again / name).read_bytes() == (tiny[0] / name).read_bytes(), name
    assert (other / "model.safetensors").read_bytes() != (
        tiny[0] / "model.safetensors"
    ).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_lora_adapter_is_nonzero_and_changes_the_logits(tiny):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base_dir, lora_dir = tiny
    config = json.loads((lora_dir / "adapter_config.json").read_text())
    assert config["r"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    weights = load_file(lora_dir / "adapter_model.safetensors")
    assert weights and all(t.abs().sum() > 0 for t in weights.values())
    ids = torch.tensor([[5, 17, 99, 300]])
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        plain = base(ids).logits
        tuned = PeftModel.from_pretrained(base, lora_dir)(ids).logits
    assert not torch.allclose(plain, tuned)
