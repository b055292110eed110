"""LoRA adapters for the embedded llama.cpp server: PEFT → GGUF LoRA, checked, identified.

``podium train`` saves a PEFT adapter (``adapter_config.json`` + ``adapter_model.safetensors``);
llama.cpp applies a *GGUF LoRA* to the quantised model it serves (llama-cpp-python's
``lora_path``), at unchanged decode speed. :func:`write_gguf_lora` converts one with the
``gguf`` package's writer, in the layout llama.cpp's ``convert_lora_to_gguf.py`` writes:
``general.type = adapter``, ``adapter.type = lora``, and per adapted weight the pair
``blk.N.attn_q.weight.lora_a`` (PEFT's ``lora_A``, shape rank × in) and ``.lora_b`` (``lora_B``,
out × rank), named with gguf's own Hugging Face → GGUF tensor map for the base's architecture.

PEFT scales ``B·A`` by ``alpha / r`` (``alpha / √r`` with rsLoRA), per module; llama.cpp by
``adapter.lora.alpha / r`` — or by 1 when that key is 0. The scale is folded into ``lora_b``
and the key written as 0, so any PEFT scaling (rsLoRA, per-module ranks) is served exactly.

llama.cpp accepts an adapter when its architecture is the model's and every tensor exists in
the model with matching shapes; :func:`check_adapter` applies the same rules *before* a server
starts, so a mismatch is one line naming the fix instead of a server that dies while loading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from podium.tools.errors import UserError
from podium.tools.paths import atomic_path, cache_dir

__all__ = [
    "AdapterError",
    "AdapterInfo",
    "active_adapter",
    "adapter_identity",
    "check_adapter",
    "write_gguf_lora",
]

OUTTYPES = ("f16", "f32")
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")
_BLOCK = 8 << 20
MISSING = (
    "adapter file {path} does not exist: export one with `podium export ADAPTER_DIR` or fix {where}"
)
WHERE = "[policy] adapter or --lora"  # where an adapter path comes from, for messages
MISMATCH = (
    "adapter {path} does not match the base model {base}: {why}; train and export it on that base"
)


class AdapterError(UserError, ValueError):
    """An adapter that is missing, malformed or made for another model (one line, the fix)."""


@dataclass(frozen=True)
class AdapterInfo:
    """A GGUF LoRA file and what it adapts."""

    path: str
    sha256: str
    arch: str
    tensors: int
    rank: int
    size_bytes: int


def _reader(path: Path, what: str) -> Any:
    import gguf

    try:
        return gguf.GGUFReader(path)
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{what} {path} is not a readable GGUF file ({exc})") from None


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


@lru_cache(maxsize=8)
def _base_layout(path: str, stamp: tuple[int, int]) -> tuple[str, int, dict[str, tuple[int, ...]]]:
    # gguf's reader parses every metadata array (Qwen's 152k-token vocabulary and merges):
    # ~10 s for the 0.5B policy. The layout is kept on disk, keyed on the file and its stamp.
    key = hashlib.sha256(f"{path}:{stamp}".encode()).hexdigest()[:24]
    cached = cache_dir("adapters") / f"layout-{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads(cached.read_text())
        return data["arch"], data["blocks"], {k: tuple(v) for k, v in data["shapes"].items()}
    reader = _reader(Path(path), "base model")
    arch = str(_field(reader, "general.architecture") or "")
    blocks = int(_field(reader, f"{arch}.block_count") or 0)
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    with atomic_path(cached) as tmp:
        tmp.write_text(json.dumps({"arch": arch, "blocks": blocks, "shapes": shapes}))
    return arch, blocks, shapes


def base_layout(base_gguf: Path) -> tuple[str, int, dict[str, tuple[int, ...]]]:
    """Architecture, block count and tensor shapes (ggml order: in, out) of a model GGUF."""
    stat = Path(base_gguf).stat()
    return _base_layout(str(Path(base_gguf).resolve()), (stat.st_size, stat.st_mtime_ns))


def _peft_pairs(adapter_dir: Path) -> dict[str, dict[str, Any]]:
    """``{hf module: {"A": array, "B": array}}`` of a PEFT LoRA, ``B`` scaled as PEFT scales it."""
    from safetensors import safe_open

    config_file, weights = (
        adapter_dir / "adapter_config.json",
        adapter_dir / "adapter_model.safetensors",
    )
    if not config_file.is_file() or not weights.is_file():
        raise AdapterError(
            f"{adapter_dir} is not a PEFT adapter folder (adapter_config.json and "
            "adapter_model.safetensors): pass the output_dir of `podium train`"
        )
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        raise AdapterError(f"{adapter_dir} is not a plain LoRA adapter: only LoRA exports to GGUF")
    if config.get("alpha_pattern"):
        raise AdapterError(f"{adapter_dir} sets alpha_pattern: export needs one lora_alpha")
    alpha, rslora = (
        float(config.get("lora_alpha", config.get("r", 8))),
        bool(config.get("use_rslora")),
    )
    pairs: dict[str, dict[str, Any]] = {}
    with safe_open(str(weights), framework="pt") as tensors:
        for key in tensors.keys():  # noqa: SIM118 - safe_open is not a mapping
            match = _PEFT_KEY.match(key)
            if match is None:
                raise AdapterError(
                    f"{adapter_dir} holds {key}, not a LoRA matrix of a linear layer: "
                    "train without modules_to_save or embedding adapters"
                )
            array = tensors.get_tensor(key).float().numpy()
            pairs.setdefault(match["module"], {})[match["ab"]] = array
    for module, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise AdapterError(f"{adapter_dir}: {module} lacks lora_A or lora_B")
        rank = pair["A"].shape[0]
        pair["B"] = pair["B"] * (alpha / (math.sqrt(rank) if rslora else rank))
    return pairs


def _gguf_name(tensor_map: Any, module: str) -> str | None:
    return tensor_map.get_name(module + ".weight", try_suffixes=(".weight",))


def write_gguf_lora(
    adapter_dir: str | Path, out: str | Path, base_gguf: str | Path, outtype: str = "f16"
) -> AdapterInfo:
    """Write the PEFT LoRA in ``adapter_dir`` as a GGUF LoRA for the model in ``base_gguf``.

    Every adapted weight is checked against the base's tensor of that name (architecture and
    shapes, as llama.cpp checks them). ``out`` is written whole or not at all.

    Raises:
        AdapterError: not a PEFT LoRA, a weight the base lacks or of another shape.
    """
    import gguf
    import numpy as np

    if outtype not in OUTTYPES:
        raise AdapterError(f"--outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    adapter_dir, out, base = Path(adapter_dir), Path(out), Path(base_gguf)
    pairs = _peft_pairs(adapter_dir)
    arch, blocks, shapes = base_layout(base)
    arches = {name: member for member, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in arches:
        raise AdapterError(f"base model {base} has architecture {arch!r}, unknown to gguf")
    tensor_map = gguf.get_tensor_name_map(arches[arch], blocks)
    dtype = np.float16 if outtype == "f16" else np.float32
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 0.0)  # scale folded into lora_b
        for module, pair in sorted(pairs.items()):
            name = _gguf_name(tensor_map, module)
            if name is None or name not in shapes:
                why = f"it has no tensor for the adapter's {module}"
                raise AdapterError(MISMATCH.format(path=adapter_dir, base=base, why=why))
            _check_pair(adapter_dir, base, name, shapes[name], pair["A"].shape, pair["B"].shape)
            writer.add_tensor(name + ".lora_a", pair["A"].astype(dtype))
            writer.add_tensor(name + ".lora_b", pair["B"].astype(dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return check_adapter(out, base)


def _check_pair(
    path: Path, base: Path, name: str, ne: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]
) -> None:
    """Numpy shapes ``a`` (rank × in) and ``b`` (out × rank) against ggml's ``ne`` (in, out)."""
    if len(ne) < 2 or ne[0] != a[1] or ne[1] != b[0] or a[0] != b[1]:
        why = f"{name} is {ne[0]}→{ne[1] if len(ne) > 1 else 1}, the adapter's is {a[1]}→{b[0]}"
        raise AdapterError(MISMATCH.format(path=path, base=base, why=why))


def check_adapter(path: str | Path, base_gguf: str | Path, where: str = WHERE) -> AdapterInfo:
    """Check a GGUF LoRA against the model it will be applied to, as llama.cpp will.

    Args:
        path: The adapter file.
        base_gguf: The model GGUF it must fit.
        where: Where the path came from, for the message (``[policy] adapter``, ``--lora``).

    Raises:
        AdapterError: missing file, not a GGUF LoRA, other architecture or shapes.
    """
    path, base = Path(path).expanduser(), Path(base_gguf)
    if not path.is_file():
        raise AdapterError(MISSING.format(path=path, where=where))
    reader = _reader(path, "adapter")
    if _field(reader, "general.type") != "adapter" or _field(reader, "adapter.type") != "lora":
        raise AdapterError(
            f"{path} is a GGUF file but not a LoRA adapter: export one with podium export"
        )
    arch, _, shapes = base_layout(base)
    theirs = str(_field(reader, "general.architecture") or "")
    if theirs != arch:
        why = f"the adapter is for architecture {theirs!r}, the model is {arch!r}"
        raise AdapterError(MISMATCH.format(path=path, base=base, why=why))
    tensors = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    ranks = set()
    for key, a_ne in tensors.items():
        if not key.endswith(".lora_a"):
            continue
        name = key.removesuffix(".lora_a")
        b_ne = tensors.get(name + ".lora_b")
        if b_ne is None or name not in shapes:
            why = f"it has no tensor {name}" if b_ne is not None else f"{name} lacks lora_b"
            raise AdapterError(MISMATCH.format(path=path, base=base, why=why))
        _check_pair(path, base, name, shapes[name], a_ne[::-1], b_ne[::-1])
        ranks.add(a_ne[1])
    return AdapterInfo(
        path=str(path.resolve()),
        sha256=adapter_identity(path)["sha256"],
        arch=arch,
        tensors=len(tensors),
        rank=max(ranks, default=0),
        size_bytes=path.stat().st_size,
    )


@lru_cache(maxsize=32)
def _sha256(path: str, _stamp: tuple[int, int]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def adapter_identity(path: str | Path, where: str = WHERE) -> dict[str, str]:
    """``{"path", "sha256"}`` of an adapter file: what trajectories and ``podium tools`` name.

    Raises:
        AdapterError: the file does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AdapterError(MISSING.format(path=path, where=where))
    stat = path.stat()
    resolved = str(path.resolve())
    return {"path": resolved, "sha256": _sha256(resolved, (stat.st_size, stat.st_mtime_ns))}


def active_adapter(config: Any, policy_base_url: str = "") -> dict[str, str] | None:
    """The adapter the policy answers with under ``config`` (a ``PodiumConfig``), or None.

    ``[policy] adapter`` applies only where the embedded server serves the policy: not when
    a run or the config points the policy at another endpoint (``policy_base_url``).

    Raises:
        AdapterError: the configured adapter file does not exist.
    """
    if not config.policy.adapter or policy_base_url or config.policy.base_url:
        return None
    return adapter_identity(config.policy.adapter)
