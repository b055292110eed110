"""Configuration of ``podium train``: one TOML file, checked key by key.

Top-level keys are podium's (:class:`TrainConfig`); the ``[grpo]`` table is passed to TRL's
``GRPOConfig``, ``[lora]`` to PEFT's ``LoraConfig`` and ``[reward]`` to :class:`RewardConfig`,
over the paper's GRPO values (group 8; KL beta 1e-4; clip epsilon 0.2 / 0.28) and a named
adapter preset (:data:`PRESETS`). The default, ``cpu``, moves on a CPU in minutes: LoRA r=16 on
the attention projections of the last 4 layers only (PEFT ``layers_to_transform``; one step
over 8 × 512 tokens of the 0.5B policy takes ~19 s there, ~116 s over all 24 layers) at
lr 2e-4. ``paper`` keeps ToolOrchestra's values (r=64, alpha=128, every layer, lr 1e-6), which
barely move a small adapter in the few hundred steps a CPU affords. Unknown keys are refused
with one line.

Example::

    mode = "offline"                 # "online": the graph drives the model being trained;
                                     # "rft": fine-tune on each task's best stored run
    model = "policy"                 # a packaged model (converted once) or a HF model folder
    output_dir = "runs/podium-lora"
    store = "rollouts.sqlite"        # offline: from `podium collect --out rollouts.sqlite`
    # tasks = "math"                 # online: the suite whose tasks the graph runs
    preset = "cpu"                   # or "cpu-all-layers", "paper"
    last_layers = 4                  # adapt only the last 4 transformer layers; 0 = all

    [grpo]
    num_generations = 8
    max_steps = 100

    [lora]
    r = 16

Mode ``rft`` reads ``[sft]`` (TRL's ``SFTConfig``) over :data:`RFT_SFT` with the preset's
adapter and learning rate (``cpu``: r=16 on the last 4 layers, lr 2e-4: minutes on a CPU).
``select = "route"`` keeps, per task, a run of the route with the best success rate instead of
the single best run; ``"pooled"`` shrinks each task's rate toward the route's rate on the
task's suite. ``init_adapter`` starts any mode from a saved PEFT adapter (offline GRPO
from the RFT one).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from podium.tools.errors import UserError
from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS

from .rewards import RewardConfig

PAPER_GRPO: dict[str, Any] = {  # learning_rate is the preset's
    "num_generations": 8,
    "learning_rate": 1e-6,
    "beta": 1e-4,
    "epsilon": 0.2,
    "epsilon_high": 0.28,
    "scale_rewards": "group",
    "loss_type": "grpo",
}
PAPER_LORA: dict[str, Any] = {
    "r": 64,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "task_type": "CAUSAL_LM",
}
CPU_LORA: dict[str, Any] = PAPER_LORA | {"r": 16, "lora_alpha": 32}


@dataclass(frozen=True)
class Preset:
    """A named adapter recipe: the LoRA, how many of the last layers it adapts, the step size."""

    lora: dict[str, Any]
    last_layers: int  # 0 = every layer
    learning_rate: float


PRESETS: dict[str, Preset] = {
    "cpu": Preset(CPU_LORA, 4, 2e-4),  # minutes on a CPU
    "cpu-all-layers": Preset(CPU_LORA, 0, 1e-4),  # ~6x slower per step on the 0.5B
    "paper": Preset(PAPER_LORA, 0, 1e-6),  # ToolOrchestra's
}
# Sensible for a CPU single process; any of them can be overridden in [grpo].
RUNTIME_GRPO: dict[str, Any] = {
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "max_steps": 100,
    "max_completion_length": 4096,
    "remove_unused_columns": False,
}


# Rejection-sampling fine-tuning on CPU (the learning rate is the preset's): one sequence per
# step without padding, gradients accumulated over 4, a constant rate, one epoch.
RFT_SFT: dict[str, Any] = {
    "lr_scheduler_type": "constant",
    "num_train_epochs": 1,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 4,
    "gradient_checkpointing": False,
    "completion_only_loss": True,  # tool outputs and prompts masked (completion_mask)
    "max_length": 4096,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
}


class TrainConfigError(UserError, ValueError):
    """A bad ``podium train`` config (one line naming the fix)."""


@dataclass
class TrainConfig:
    """What ``podium train`` does; ``[grpo]``, ``[lora]`` and ``[reward]`` tables refine it."""

    model: str = field(metadata={"help": "Hugging Face model directory of the policy."})
    output_dir: str = field(metadata={"help": "Where the trained LoRA adapter is saved."})
    mode: Literal["offline", "online", "rft"] = field(
        default="offline",
        metadata={
            "help": "offline: GRPO on a stored rollout file; online: the graph in the loop; "
            "rft: fine-tune on each task's best stored run."
        },
    )
    store: str = field(
        default="",
        metadata={"help": "Trajectory store: read (offline) or written (online; empty = cache)."},
    )
    tasks: str = field(default="", metadata={"help": "Task suite of online training."})
    limit: int | None = field(default=None, metadata={"help": "At most this many tasks."})
    seed: int = field(default=0, metadata={"help": "Seed of tasks, preferences and sampling."})
    profile: str = field(default="local", metadata={"help": "Tool-pool profile."})
    config: str = field(default="", metadata={"help": "podium config file (TOML) of the pool."})
    local_only: bool = field(default=False, metadata={"help": "Offer only local tools."})
    max_turns: int = field(default=MAX_TURNS, metadata={"help": "Policy turns per online run."})
    budget_usd: float = field(default=BUDGET_USD, metadata={"help": "Dollar cap of an online run."})
    temperature: float = field(default=1.0, metadata={"help": "Online sampling temperature."})
    preference: str = field(
        default="",
        metadata={
            "help": "Preference of online runs: empty = none (as evaluation), a kind for every "
            "task, or 'sampled' (one per task, as in the paper)."
        },
    )
    preset: str = field(default="cpu", metadata={"help": f"Adapter recipe: {', '.join(PRESETS)}."})
    last_layers: int | None = field(
        default=None,
        metadata={"help": "Adapt only the last N transformer layers; 0 = all; unset = preset's."},
    )
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens per online policy turn."})
    select: Literal["run", "route", "pooled"] = field(
        default="run",
        metadata={
            "help": "rft: each task's best run (run), or the best run of its route with the "
            "highest success rate, then the lowest mean cost (route), that rate shrunk toward "
            "the route's rate on the task's suite (pooled)."
        },
    )
    init_adapter: str = field(
        default="", metadata={"help": "PEFT adapter folder to start from (e.g. an RFT one)."}
    )
    price_jitter: float = field(
        default=0.0,
        metadata={"help": "Online runs: each tool's prices times a random factor in "
                  "[1/(1+j), 1+j] per task, so the policy must read them; 0 = off."},
    )  # fmt: skip
    grpo: dict[str, Any] = field(default_factory=dict, metadata={"help": "trl.GRPOConfig keys."})
    sft: dict[str, Any] = field(default_factory=dict, metadata={"help": "trl.SFTConfig keys."})
    lora: dict[str, Any] = field(default_factory=dict, metadata={"help": "peft.LoraConfig keys."})
    reward: RewardConfig = field(default_factory=RewardConfig)

    def grpo_args(self) -> Any:
        """TRL's ``GRPOConfig``: paper defaults, CPU runtime defaults, then ``[grpo]``."""
        import torch
        from trl import GRPOConfig

        cpu = not torch.cuda.is_available()
        rate = {"learning_rate": preset(self.preset).learning_rate}
        values = {**PAPER_GRPO, **RUNTIME_GRPO, "seed": self.seed, **rate, **self.grpo}
        if cpu:
            values |= {"use_cpu": True, "bf16": False}
        return GRPOConfig(output_dir=self.output_dir, **values)

    def sft_args(self) -> Any:
        """TRL's ``SFTConfig`` of mode ``rft``: :data:`RFT_SFT`, the preset's rate, ``[sft]``."""
        import torch
        from trl import SFTConfig

        rate = {"learning_rate": preset(self.preset).learning_rate}
        values = {**RFT_SFT, **rate, "seed": self.seed, **self.sft}
        if not torch.cuda.is_available():
            values |= {"use_cpu": True, "bf16": False}
        return SFTConfig(output_dir=self.output_dir, **values)

    def lora_config(self) -> Any:
        """PEFT's ``LoraConfig``: the preset's adapter, refined by ``[lora]``."""
        from podium.tools.model_files import PACKAGED_MODELS

        model = self.model_dir() if self.model in PACKAGED_MODELS else self.model
        return lora_config(model, self.preset, self.lora, self.last_layers)

    def model_dir(self) -> Path:
        """The policy's Hugging Face folder: ``model`` itself, or a packaged alias converted.

        Raises:
            TrainConfigError: neither a model folder nor a packaged model.
        """
        from podium.tools.model_files import PACKAGED_MODELS

        if (Path(self.model) / "config.json").is_file():
            return Path(self.model)
        if self.model in PACKAGED_MODELS:
            from .base_model import hf_policy_dir

            return hf_policy_dir(self.model)
        known = ", ".join(PACKAGED_MODELS)
        raise TrainConfigError(
            f"model {self.model} is not a Hugging Face model folder nor a packaged model "
            f"({known}): fix model"
        )


def preset(name: str) -> Preset:
    """The adapter preset ``name``.

    Raises:
        TrainConfigError: no such preset.
    """
    if name not in PRESETS:
        raise TrainConfigError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def model_depth(model: str | Path) -> int:
    """Transformer layers of a Hugging Face model folder (its ``config.json``).

    Raises:
        TrainConfigError: the folder has no readable config with ``num_hidden_layers``.
    """
    path = Path(model) / "config.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        raise TrainConfigError(
            f"model {model} is not a Hugging Face model folder with num_hidden_layers: fix model"
        ) from None


def lora_config(
    model: str | Path,
    name: str = "cpu",
    lora: Mapping[str, Any] | None = None,
    last_layers: int | None = None,
) -> Any:
    """PEFT's ``LoraConfig`` of preset ``name`` for ``model``, refined by ``lora`` keys.

    ``last_layers`` (default: the preset's) limits the adapter to the model's last N layers
    through ``layers_to_transform``; past the model's depth it means every layer. An explicit
    ``layers_to_transform`` in ``lora`` wins.

    Raises:
        TrainConfigError: unknown preset, negative ``last_layers``, a model folder without depth.
    """
    from peft import LoraConfig

    chosen = preset(name)
    n = chosen.last_layers if last_layers is None else last_layers
    if n < 0:
        raise TrainConfigError(f"last_layers must be 0 (all) or more, got {n}: fix last_layers")
    values = dict(chosen.lora)
    if n and "layers_to_transform" not in (lora or {}):
        depth = model_depth(model)
        values["layers_to_transform"] = list(range(max(0, depth - n), depth))
    return LoraConfig(**(values | dict(lora or {})))


def _unknown(table: str, given: dict[str, Any], known: set[str], path: Path) -> None:
    extra = sorted(set(given) - known)
    if extra:
        where = f"[{table}] of {path}" if table else str(path)
        raise TrainConfigError(
            f"unknown key {extra[0]!r} in {where}: remove it or fix its spelling"
        )


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and check a ``podium train`` TOML file.

    Raises:
        TrainConfigError: missing file, bad TOML, unknown or missing keys, bad values.
    """
    path = Path(path)
    if path.is_dir():
        raise TrainConfigError(f"config file {path} is a directory: pass the TOML file in it")
    if not path.is_file():
        raise TrainConfigError(f"config file {path} does not exist: fix --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TrainConfigError(f"{path} is not valid TOML ({exc}): fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainConfigError(f"cannot read config file {path} ({exc}): fix --config") from None
    from peft import LoraConfig  # heavy: only once the file is known to be readable
    from trl import GRPOConfig, SFTConfig

    top = {f.name for f in dataclasses.fields(TrainConfig)}
    _unknown("", raw, top, path)
    _unknown("grpo", raw.get("grpo", {}), {f.name for f in dataclasses.fields(GRPOConfig)}, path)
    _unknown("lora", raw.get("lora", {}), {f.name for f in dataclasses.fields(LoraConfig)}, path)
    _unknown("sft", raw.get("sft", {}), {f.name for f in dataclasses.fields(SFTConfig)}, path)
    reward_keys = {f.name for f in dataclasses.fields(RewardConfig)}
    _unknown("reward", raw.get("reward", {}), reward_keys, path)
    for key in ("model", "output_dir"):
        if key not in raw:
            raise TrainConfigError(f'{path} has no {key!r}: add {key} = "..."')
    if raw.get("mode", "offline") not in ("offline", "online", "rft"):
        raise TrainConfigError(
            f"mode must be 'offline', 'online' or 'rft' in {path}, got {raw['mode']!r}"
        )
    mode = raw.get("mode", "offline")
    if raw.get("select", "run") not in ("run", "route", "pooled"):
        raise TrainConfigError(
            f"select must be 'run', 'route' or 'pooled' in {path}, got {raw['select']!r}"
        )
    if mode in ("offline", "rft") and not raw.get("store"):
        raise TrainConfigError(f'{mode} training needs store = "<file>" in {path}')
    start = raw.get("init_adapter")
    if start and not (Path(start) / "adapter_config.json").is_file():
        raise TrainConfigError(
            f"init_adapter {raw['init_adapter']} is not a PEFT adapter folder (no "
            f"adapter_config.json) in {path}: point it at the output_dir of a podium train run"
        )
    if mode == "online" and not raw.get("tasks"):
        raise TrainConfigError(f'online training needs tasks = "<suite>" in {path}')
    preset(raw.get("preset", "cpu"))  # an unknown preset fails here, as one line
    jitter = raw.get("price_jitter", 0.0)
    if not (isinstance(jitter, int | float) and 0 <= jitter < math.inf):
        raise TrainConfigError(f"price_jitter must be a number >= 0 in {path}, got {jitter!r}")
    reward = RewardConfig(**raw.pop("reward", {}))
    return TrainConfig(**raw, reward=reward)
