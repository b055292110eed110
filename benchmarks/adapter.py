"""What training and serving an adapter costs on this machine: RFT steps, export, decode speed.

On the packaged Qwen2.5-Coder-0.5B (its GGUF converted once to a float32 Hugging Face folder):

1. RFT step time: TRL's ``SFTTrainer`` with podium's RFT preset (LoRA r=16 on q/k/v/o of the
   last N layers, one sequence per step) on sequences as long as a policy run (a first prompt
   with the tool list, a search result, an answer: ~1,000 tokens); tokens per second.
2. Export: ``podium export``'s writer on that adapter and on one over all 24 layers; seconds
   and file size.
3. Decode speed of llama.cpp (llama-cpp-python, as the embedded server runs it) with and
   without the adapter: greedy tokens per second on the same prompt.

    .venv/bin/python benchmarks/adapter.py            # ~5 min on 2 idle cores
    .venv/bin/python benchmarks/adapter.py --quick    # 1 step, shorter decode
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _rows(tok: Any, count: int, length: int) -> list[dict[str, Any]]:
    """Pre-tokenised rows of ``length`` real-text tokens, the last 10% trained."""
    from podium.tools.retrieval import corpus_file

    intros = json.loads(corpus_file().read_text(encoding="utf-8"))
    text = " ".join(e.get("extract", "") for e in list(intros.values())[:400])
    ids = tok(text, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(count):
        chunk = ids[i * length : (i + 1) * length]
        trained = length // 10
        rows.append(
            {"input_ids": chunk, "completion_mask": [0] * (length - trained) + [1] * trained}
        )
    return rows


def rft_steps(
    model_dir: Path, out: Path, *, layers: int, steps: int, length: int
) -> dict[str, Any]:
    """Seconds per RFT step and tokens per second, with podium's RFT preset."""
    from datasets import Dataset
    from trl import SFTTrainer

    from podium.training.grpo.base_model import load_policy
    from podium.training.grpo.config import TrainConfig

    cfg = TrainConfig(
        model=str(model_dir),
        output_dir=str(out),
        mode="rft",
        store="-",
        last_layers=layers,
        sft={"max_steps": steps, "gradient_accumulation_steps": 1, "max_length": length},
    )
    model, tok = load_policy(model_dir)
    trainer = SFTTrainer(
        model=model,
        args=cfg.sft_args(),
        train_dataset=Dataset.from_list(_rows(tok, steps, length)),
        processing_class=tok,
        peft_config=cfg.lora_config(),
    )
    times: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            times.append(time.perf_counter() - self.start)

    trainer.add_callback(Clock())
    trainer.train()
    trainer.model.save_pretrained(out)
    step = statistics.median(times)
    return {"layers": layers, "tokens": length, "steps": len(times), "s_per_step": round(step, 1),
            "tokens_per_s": round(length / step)}  # fmt: skip


def full_adapter(model_dir: Path, out: Path) -> Path:
    """An r=16 adapter over all 24 layers with non-zero weights (for export size and time)."""
    import torch
    from peft import get_peft_model

    from podium.training.grpo.base_model import load_policy
    from podium.training.grpo.config import TrainConfig

    cfg = TrainConfig(model=str(model_dir), output_dir=str(out), mode="rft", last_layers=0)
    model, _ = load_policy(model_dir)
    lora = cfg.lora_config()
    lora.init_lora_weights = False
    torch.manual_seed(0)
    get_peft_model(model, lora).save_pretrained(out)
    return out


def export(adapter: Path, out: Path, base: Path) -> dict[str, Any]:
    """Seconds and bytes of ``podium export``'s writer."""
    from podium.tools.adapters import write_gguf_lora

    start = time.perf_counter()
    info = write_gguf_lora(adapter, out, base)
    return {"seconds": round(time.perf_counter() - start, 2), "mb": round(info.size_bytes / 1e6, 2),
            "tensors": info.tensors}  # fmt: skip


def decode(base: Path, adapter: Path | None, tokens: int) -> dict[str, Any]:
    """Greedy decode speed of llama.cpp with ``adapter`` (or none), 2 threads."""
    from llama_cpp import Llama

    llm = Llama(
        str(base), n_ctx=2048, n_threads=2, lora_path=str(adapter) if adapter else None,
        verbose=False,
    )  # fmt: skip
    prompt = "Write a Python function that checks whether a number is prime, then explain it."
    llm.create_completion(prompt, max_tokens=4, temperature=0.0)  # warm up
    start = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=tokens, temperature=0.0)
    seconds = time.perf_counter() - start
    made = out["usage"]["completion_tokens"]
    return {"adapter": adapter.name if adapter else None, "tokens": made,
            "tokens_per_s": round(made / seconds, 1)}  # fmt: skip


def main() -> None:
    """Run the three measurements and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--layers", type=int, default=4, help="LoRA on the last N layers.")
    parser.add_argument("--length", type=int, default=1024, help="Tokens per sequence.")
    opts = parser.parse_args()
    from podium.tools.model_files import get_model
    from podium.training.grpo.base_model import hf_policy_dir

    start = time.perf_counter()
    model_dir = hf_policy_dir("policy")
    base = get_model("policy").path()
    report: dict[str, Any] = {"convert_s": round(time.perf_counter() - start, 1),
                              "load_avg": os.getloadavg()[0]}  # fmt: skip
    steps = 1 if opts.quick else 3
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        work = Path(tmp)
        report["rft"] = rft_steps(
            model_dir, work / "rft", layers=opts.layers, steps=steps, length=opts.length
        )
        report["export_last_layers"] = export(work / "rft", work / "rft.gguf", base)
        report["export_all_layers"] = export(
            full_adapter(model_dir, work / "full"), work / "full.gguf", base
        )
        tokens = 32 if opts.quick else 128
        report["decode"] = [
            decode(base, None, tokens),
            decode(base, work / "rft.gguf", tokens),
            decode(base, work / "full.gguf", tokens),
        ]
    report["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
