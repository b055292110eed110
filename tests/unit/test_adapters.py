"""GGUF LoRA adapters: PEFT → GGUF, checked against the base as llama.cpp checks, and named."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from podium.tools.adapters import (
    AdapterError,
    active_adapter,
    adapter_identity,
    check_adapter,
    write_gguf_lora,
)

HIDDEN, KV = 16, 8  # q: 16→16, k: 16→8
PREFIX = "base_model.model.model.layers"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_CACHE_DIR", str(tmp_path / "cache"))  # base layouts go there


@pytest.fixture
def base(tmp_path):
    """A two-block qwen2 GGUF holding only the attention weights (what the checks read)."""
    path = tmp_path / "base.gguf"
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_block_count(2)
    for block in range(2):
        writer.add_tensor(f"blk.{block}.attn_q.weight", np.zeros((HIDDEN, HIDDEN), np.float32))
        writer.add_tensor(f"blk.{block}.attn_k.weight", np.zeros((KV, HIDDEN), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def peft_dir(tmp_path, tensors, name="peft", **config):
    """A PEFT LoRA folder with these ``{module: (A, B)}`` matrices."""
    folder = tmp_path / name
    folder.mkdir()
    cfg = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "use_rslora": False, **config}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    flat = {}
    for module, (a, b) in tensors.items():
        flat[f"{PREFIX}.{module}.lora_A.weight"] = a
        flat[f"{PREFIX}.{module}.lora_B.weight"] = b
    save_file(flat, str(folder / "adapter_model.safetensors"))
    return folder


def _pair(out, rank=2, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rank, HIDDEN)).astype(np.float32)
    return a, rng.standard_normal((out, rank)).astype(np.float32)


def test_peft_lora_becomes_llama_cpp_tensor_pairs_with_the_scale_folded_in(tmp_path, base):
    q, k = _pair(HIDDEN), _pair(KV, seed=1)
    folder = peft_dir(tmp_path, {"1.self_attn.q_proj": q, "1.self_attn.k_proj": k})
    info = write_gguf_lora(folder, tmp_path / "a.gguf", base, outtype="f32")
    assert (info.arch, info.tensors, info.rank) == ("qwen2", 4, 2)
    assert len(list((tmp_path / "cache" / "adapters").glob("layout-*.json"))) == 1
    assert info.sha256 == hashlib.sha256((tmp_path / "a.gguf").read_bytes()).hexdigest()
    reader = gguf.GGUFReader(tmp_path / "a.gguf")
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("adapter.lora.alpha").contents() == 0.0  # scale is in lora_b
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {
        f"blk.1.attn_{p}.weight.lora_{ab}" for p in ("q", "k") for ab in ("a", "b")
    }
    # ggml order: lora_a is (in, rank), lora_b (rank, out) — as llama.cpp's loader demands.
    assert list(tensors["blk.1.attn_k.weight.lora_a"].shape) == [HIDDEN, 2]
    assert list(tensors["blk.1.attn_k.weight.lora_b"].shape) == [2, KV]
    np.testing.assert_array_equal(tensors["blk.1.attn_q.weight.lora_a"].data, q[0])
    np.testing.assert_allclose(tensors["blk.1.attn_q.weight.lora_b"].data, q[1] * 4 / 2)


def test_rslora_scale_and_half_precision(tmp_path, base):
    q = _pair(HIDDEN)
    folder = peft_dir(tmp_path, {"0.self_attn.q_proj": q}, use_rslora=True)
    write_gguf_lora(folder, tmp_path / "a.gguf", base)  # f16 by default
    tensors = {t.name: t for t in gguf.GGUFReader(tmp_path / "a.gguf").tensors}
    b = tensors["blk.0.attn_q.weight.lora_b"]
    assert b.tensor_type == gguf.GGMLQuantizationType.F16
    np.testing.assert_allclose(b.data, q[1] * 4 / math.sqrt(2), rtol=1e-3)


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"0.self_attn.k_proj": _pair(HIDDEN)}, "blk.0.attn_k.weight is 16→8, the adapter's is"),
        ({"5.self_attn.q_proj": _pair(HIDDEN)}, "it has no tensor for the adapter's"),
        ({"0.mlp.up_proj": _pair(HIDDEN)}, "it has no tensor for the adapter's"),
    ],
)
def test_an_adapter_of_another_model_is_refused_and_nothing_is_written(
    tmp_path, base, tensors, message
):
    folder = peft_dir(tmp_path, tensors)
    with pytest.raises(AdapterError, match="does not match the base model") as err:
        write_gguf_lora(folder, tmp_path / "a.gguf", base)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.glob("a.gguf*")) == [] and list(tmp_path.glob(".a.gguf*")) == []


def test_not_a_plain_lora_folder(tmp_path, base):
    with pytest.raises(AdapterError, match="is not a PEFT adapter folder"):
        write_gguf_lora(tmp_path, tmp_path / "a.gguf", base)
    dora = peft_dir(tmp_path, {"0.self_attn.q_proj": _pair(HIDDEN)}, "dora", use_dora=True)
    with pytest.raises(AdapterError, match="not a plain LoRA adapter"):
        write_gguf_lora(dora, tmp_path / "a.gguf", base)
    extra = peft_dir(tmp_path, {"0.self_attn.q_proj": _pair(HIDDEN)}, "extra")
    save_file(
        {
            f"{PREFIX}.0.self_attn.q_proj.lora_A.weight": _pair(HIDDEN)[0],
            f"{PREFIX}.0.self_attn.q_proj.lora_B.weight": _pair(HIDDEN)[1],
            "base_model.model.lm_head.weight": np.zeros((4, HIDDEN), np.float32),
        },
        str(extra / "adapter_model.safetensors"),
    )
    with pytest.raises(AdapterError, match=r"lm_head.weight, not a LoRA matrix"):
        write_gguf_lora(extra, tmp_path / "a.gguf", base)
    with pytest.raises(AdapterError, match="--outtype 'q8'"):
        write_gguf_lora(extra, tmp_path / "a.gguf", base, outtype="q8")


def test_check_adapter_missing_not_an_adapter_other_architecture(tmp_path, base):
    with pytest.raises(AdapterError, match=r"adapter file .*nope.gguf does not exist: export one"):
        check_adapter(tmp_path / "nope.gguf", base, where="[policy] adapter")
    with pytest.raises(AdapterError, match="not a LoRA adapter"):
        check_adapter(base, base)
    (tmp_path / "junk.gguf").write_bytes(b"not gguf at all")
    with pytest.raises(AdapterError, match="not a readable GGUF file"):
        check_adapter(tmp_path / "junk.gguf", base)
    llama = tmp_path / "llama.gguf"
    writer = gguf.GGUFWriter(llama, "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(AdapterError, match="for architecture 'llama', the model is 'qwen2'"):
        check_adapter(llama, base)


@pytest.fixture
def adapter_config(write_config):
    """``make(folder, adapter)``: ``folder/podium.toml`` setting ``[policy] adapter``."""
    return lambda folder, adapter="adapters/a.gguf": write_config(
        folder / "podium.toml", {"policy": {"adapter": adapter}}
    )


def test_adapter_path_is_relative_to_its_config_file_and_named_with_its_sha256(
    tmp_path, base, adapter_config, write_config
):
    from podium.tools import load_config

    (tmp_path / "adapters").mkdir()
    folder = peft_dir(tmp_path, {"0.self_attn.q_proj": _pair(HIDDEN)})
    info = write_gguf_lora(folder, tmp_path / "adapters" / "a.gguf", base)
    config = load_config(adapter_config(tmp_path))
    assert config.policy.adapter == str(tmp_path / "adapters" / "a.gguf")
    assert active_adapter(config) == {"path": info.path, "sha256": info.sha256}
    assert active_adapter(config, policy_base_url="http://127.0.0.1:8000/v1") is None
    assert adapter_identity(info.path) == active_adapter(config)
    plain = write_config(tmp_path / "plain.toml", {"policy": {"model": "policy", "adapter": ""}})
    assert active_adapter(load_config(plain)) is None


def test_every_trajectory_names_the_adapter_the_policy_answered_with(
    tmp_path, base, fake_graph, monkeypatch, adapter_config
):
    from podium.graph import Context, graph
    from podium.graph.resources import policy_override
    from podium.graph.testing import FakePolicy, calc_tool, fake_openai
    from podium.tools import llamacpp

    (tmp_path / "adapters").mkdir()
    folder = peft_dir(tmp_path, {"0.self_attn.q_proj": _pair(HIDDEN)})
    info = write_gguf_lora(folder, tmp_path / "adapters" / "a.gguf", base)
    served = []
    answer = '<tool_call>\n{"name": "answer", "arguments": {"text": "4"}}\n</tool_call>'
    # The embedded server (here a fake endpoint in its place) is asked for with the adapter.
    with fake_openai(reply=lambda body: {"role": "assistant", "content": answer}) as server:
        monkeypatch.setattr(
            llamacpp,
            "embedded_base_url",
            lambda adapter="": served.append(adapter) or server.base_url,
        )
        _, ctx = fake_graph(None, [calc_tool()])  # the real client of the embedded endpoint
        ctx = {**ctx, "policy_base_url": "", "config": str(adapter_config(tmp_path))}
        state = graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    from podium.graph import TrajectoryStore

    record = TrajectoryStore(ctx["trajectory_db"]).get(state["trajectory_id"])
    assert record["policy_adapter"] == {"path": info.path, "sha256": info.sha256}
    assert served and set(served) == {info.path}  # the embedded server that applies it
    with policy_override(FakePolicy(script=[answer])):  # an in-process policy: no adapter
        state = graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    assert (
        TrajectoryStore(ctx["trajectory_db"]).get(state["trajectory_id"])["policy_adapter"] is None
    )


def _podium(*args, env_dir):
    import os

    env = {**os.environ, "PODIUM_CACHE_DIR": str(env_dir)}
    command = [sys.executable, "-m", "podium.studio.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_podium_tools_names_the_adapter_and_a_missing_one_is_one_line(
    tmp_path, base, adapter_config
):
    (tmp_path / "adapters").mkdir()
    folder = peft_dir(tmp_path, {"0.self_attn.q_proj": _pair(HIDDEN)})
    info = write_gguf_lora(folder, tmp_path / "adapters" / "a.gguf", base)
    config = adapter_config(tmp_path)
    done = _podium("tools", "--json", "-c", str(config), env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["adapter"] == {"path": info.path, "sha256": info.sha256}
    done = _podium("tools", "-c", str(config), env_dir=tmp_path)
    assert f"policy adapter: {info.path} (sha256 {info.sha256})" in " ".join(done.stdout.split())
    missing = adapter_config(tmp_path / "adapters", "gone.gguf")
    done = _podium("tools", "-c", str(missing), env_dir=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "gone.gguf does not exist: export one with `podium export" in done.stderr


def test_export_command_errors_are_user_errors(tmp_path):
    from podium.studio.commands.export import export
    from podium.tools import UserError

    assert issubclass(AdapterError, UserError)
    done = _podium("export", str(tmp_path / "nope"), env_dir=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "adapter folder" in done.stderr and "does not exist" in done.stderr
    with pytest.raises(AdapterError, match=r"adapter folder .* does not exist"):
        export(tmp_path / "nope")
    with pytest.raises(AdapterError, match="--base 'gpt'"):
        export(tmp_path, base="gpt")
    with pytest.raises(AdapterError, match=r"folder .*missing does not exist: create it"):
        export(tmp_path, out=tmp_path / "missing" / "a.gguf")
