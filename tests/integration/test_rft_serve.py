"""Train → export → serve on the real packaged policy: RFT steps, a GGUF LoRA, llama.cpp.

The packaged Qwen2.5-Coder-0.5B (its GGUF converted once to a float32 Hugging Face folder in
the podium cache) is fine-tuned for two RFT steps on a stored, judged run (LoRA on the last
layer only, so a step takes seconds); the adapter is exported to a GGUF LoRA and served by the
embedded llama.cpp server beside the plain policy: the weights moved, the server applied the
adapter, and its output differs from the base model's on the trained prompt.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from safetensors.numpy import load_file

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import calc_tool
from podium.tools.llamacpp import EmbeddedServer
from podium.tools.localhost import DIRECT
from podium.training.eval import suites
from podium.training.grpo.collect import finish_record
from podium.training.grpo.preferences import Preference

pytestmark = pytest.mark.integration

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "17*23"}}\n</tool_call>'
ANSWER = '<tool_call>\n{"name": "answer", "arguments": {"text": "391"}}\n</tool_call>'
QUESTION = "What is 17 times 23?"


def _exact(task, answer, record):
    ok = answer.strip() == task.gold
    return suites.Verdict(ok, float(ok), "exact")


@pytest.fixture
def store(fake_graph, tmp_path):
    """One task's judged runs (a wrong guess, a right tool-using run) in a trajectory store."""
    tools = (calc_tool(),)
    task = suites.Task("mul", "rft-serve", QUESTION, gold="391")
    suites.register_suite("rft-serve", lambda limit=None, seed=0: [task], _exact)
    pref = Preference("Be accurate.", {"outcome": 1.0}, "accuracy")
    path = tmp_path / "runs.sqlite"
    for i, script in enumerate([[ANSWER.replace("391", "400")], [CALL, ANSWER]]):
        policy, ctx = fake_graph(script, list(tools))
        ctx["trajectory_db"] = str(path)
        state = graph.invoke({"question": QUESTION}, context=Context(**ctx))
        finish_record(TrajectoryStore(path), state["trajectory_id"], task, "mul@0", i, pref)
    return path, policy.prompts[0]


def _complete(url: str, prompt: str) -> str:
    body = {"model": "policy", "prompt": prompt, "max_tokens": 24, "temperature": 0.0}
    request = urllib.request.Request(
        f"{url}/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with DIRECT.open(request, timeout=300) as response:
        return json.loads(response.read())["choices"][0]["text"]


def test_rft_then_export_then_llamacpp_serves_the_adapter(store, tmp_path, train_config):
    from podium.graph.render import policy_tools
    from podium.studio.commands.export import export
    from podium.tools.adapters import AdapterError
    from podium.training.grpo.rft import train_rft
    from podium.training.grpo.samples import tool_schemas

    path, first_prompt = store
    out = tmp_path / "adapter"
    sft = {"max_steps": 2, "gradient_accumulation_steps": 1, "learning_rate": 5e-3}
    cfg = train_config({"mode": "rft", "model": "policy", "output_dir": str(out),
                        "store": str(path), "last_layers": 1, "sft": sft})  # fmt: skip
    result = train_rft(cfg)
    assert (result.steps, result.kept, result.tasks, result.runs) == (2, 1, 1, 2)
    assert len(result.losses) == 2 and all(loss == loss for loss in result.losses)
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert {k.split(".layers.")[1].split(".")[0] for k in weights} == {"23"}  # the last layer
    assert any(abs(w).max() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at 0
    assert json.loads((out / "podium_rft.json").read_text())["kept"] == {"mul": result_id(path)}

    export(out, out=tmp_path / "policy-rft.gguf")
    gguf_file = tmp_path / "policy-rft.gguf"
    assert 0 < gguf_file.stat().st_size < 2_000_000

    tok = _tokenizer(cfg)
    tools = tool_schemas(list(policy_tools({"calc": calc_tool()}, forced=False).values()))
    from podium.training.grpo.samples import chat_messages

    prompt = tok.apply_chat_template(
        chat_messages(first_prompt), tools=tools, add_generation_prompt=True, tokenize=False
    )
    adapted = EmbeddedServer(models=["policy"], state_dir=tmp_path / "a", adapter=gguf_file)
    plain = EmbeddedServer(models=["policy"], state_dir=tmp_path / "b")
    try:
        adapted_text = _complete(adapted.ensure(), prompt)
        state = adapted.status()
        assert state["adapter"]["sha256"] == adapter_sha(gguf_file)
        config_file = json.loads(adapted._config_path.read_text())
        assert config_file["models"][0]["lora_path"] == str(gguf_file.resolve())
        adapted.stop()
        plain_text = _complete(plain.ensure(), prompt)
    finally:
        adapted.stop()
        plain.stop()
    assert adapted_text != plain_text, adapted_text
    # A GGUF LoRA made for another model is refused before any server starts.
    foreign = tmp_path / "foreign.gguf"
    _foreign_adapter(foreign)
    with pytest.raises(AdapterError, match="does not match the base model"):
        EmbeddedServer(models=["policy"], state_dir=tmp_path / "c", adapter=foreign).ensure()


def result_id(path):
    records = TrajectoryStore(path).records("training")
    return next(r["id"] for r in records if r["training"]["verdict"]["correct"])


def adapter_sha(path):
    from podium.tools.adapters import adapter_identity

    return adapter_identity(path)["sha256"]


def _tokenizer(cfg):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cfg.model_dir())


def _foreign_adapter(path):
    """A qwen2 GGUF LoRA whose q projection is 64 wide (the packaged policy's is 896)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 0.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((2, 64), np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((64, 2), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
