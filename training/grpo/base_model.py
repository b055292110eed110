"""The packaged policy as a trainable Hugging Face model: its GGUF dequantised to float32, cached.

TRL and PEFT train Hugging Face models; the policy ships as a quantised GGUF
(``podium.tools.model_files``). transformers reads GGUF files (``gguf_file=``, needs the
``gguf`` package) and dequantises them to float32 — the dtype that is fastest on CPUs without
bf16 units. The conversion takes about a minute, so it is done once per alias into
``cache_dir("hf")/<alias>`` (written whole or not at all, one process at a time); later calls
cost a ``stat``. A LoRA trained on that folder applies to the quantised GGUF the embedded
server loads (``podium export`` writes it as a GGUF LoRA).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from podium.tools.model_files import get_model
from podium.tools.paths import cache_dir

# Aliases whose GGUF template cannot render tools: they get the Hermes-style tool template of
# ``tiny.py`` (ChatML, the conventions the graph's parser reads).
_NEEDS_TOOL_TEMPLATE = {"smollm2"}


def hf_policy_dir(alias: str = "policy", *, root: Path | None = None) -> Path:
    """The packaged model ``alias`` as a float32 Hugging Face folder, converted once and cached.

    Args:
        alias: A packaged model (``podium.tools.model_files.PACKAGED_MODELS``).
        root: Where converted folders live; ``cache_dir("hf")`` when ``None``.

    Raises:
        KeyError: unknown alias.
        ModelFilesError: the model's packages are missing or fail their checksum.
    """
    model = get_model(alias)
    root = root or cache_dir("hf")
    root.mkdir(parents=True, exist_ok=True)
    target = root / alias
    if (target / "config.json").is_file():
        return target
    gguf = model.path()  # verified before anything reads it
    with FileLock(root / f".{alias}.lock"):
        if not (target / "config.json").is_file():  # another process may have finished it
            _convert(gguf, target, tool_template=alias in _NEEDS_TOOL_TEMPLATE)
    return target


def _convert(gguf: Path, target: Path, *, tool_template: bool) -> None:
    """Dequantise ``gguf`` into a Hugging Face folder at ``target``, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .tiny import CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    if tool_template:
        tok.chat_template = CHAT_TEMPLATE
    model.hf_quantizer = None  # dequantised on load: plain float32 weights, saved as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other users
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)  # a folder left without config.json is incomplete
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_policy(model_dir: Path, init_adapter: str = "") -> tuple[Any, Any]:
    """The model to train (float32) and its tokenizer; with ``init_adapter``, that adapter on it.

    A started adapter stays trainable, so offline GRPO can continue from an RFT adapter.

    Raises:
        ValueError: the adapter does not fit this model (one line).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if init_adapter:
        try:
            model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
        except (RuntimeError, ValueError, KeyError) as exc:
            why = " ".join(str(exc).split())[:200]
            raise ValueError(
                f"init_adapter {init_adapter} does not fit model {model_dir} ({why}): "
                "use an adapter trained on this model"
            ) from None
    return model, tokenizer
