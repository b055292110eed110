"""Configuration of ``podium train``: one TOML file, checked key by key.

Top-level keys are podium's (:class:`TrainConfig`); the ``[grpo]`` table is passed to TRL's
``GRPOConfig``, ``[lora]`` to PEFT's ``LoraConfig`` and ``[reward]`` to :class:`RewardConfig`,
over the paper's defaults (LoRA r=64, alpha=128 on the attention projections; group 8;
lr 1e-6; KL beta 1e-4; clip epsilon 0.2 / 0.28). Unknown keys are refused with one line.

Example::

    mode = "offline"                 # "online": the graph drives the model being trained;
                                     # "rft": fine-tune on each task's best stored run
    model = "policy"                 # a packaged model (converted once) or a HF model folder
    output_dir = "runs/podium-lora"
    store = "rollouts.sqlite"        # offline: from `podium collect --out rollouts.sqlite`
    # tasks = "math"                 # online: the suite whose tasks the graph runs

    [grpo]
    num_generations = 8
    max_steps = 100

    [lora]
    r = 64

Mode ``rft`` reads ``[sft]`` (TRL's ``SFTConfig``) over :data:`RFT_SFT` and ``[lora]`` over
:data:`RFT_LORA` (r=16 on the last ``last_layers`` layers, lr 2e-4: minutes on a CPU).
``init_adapter`` starts any mode from a saved PEFT adapter (offline GRPO from the RFT one).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .collect import CollectError
from .rewards import RewardConfig

PAPER_GRPO: dict[str, Any] = {
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


# Rejection-sampling fine-tuning on CPU: a rank-16 adapter on the attention projections of
# the last layers (the backward pass stops there: ~4.6 ms per token on the 0.5B policy), one
# sequence per step without padding, gradients accumulated over 4, a constant 2e-4.
RFT_SFT: dict[str, Any] = {
    "learning_rate": 2e-4,
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
RFT_LORA: dict[str, Any] = {**PAPER_LORA, "r": 16, "lora_alpha": 32}
RFT_LAST_LAYERS = 4


class TrainConfigError(CollectError):
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
    max_turns: int = field(default=30, metadata={"help": "Policy turns per online run."})
    budget_usd: float = field(default=1.0, metadata={"help": "Dollar cap of an online run."})
    temperature: float = field(default=1.0, metadata={"help": "Online sampling temperature."})
    preference: str = field(
        default="",
        metadata={"help": "One preference kind for every online task; empty = sampled per task."},
    )
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens per online policy turn."})
    init_adapter: str = field(
        default="", metadata={"help": "PEFT adapter folder to start from (e.g. an RFT one)."}
    )
    last_layers: int | None = field(
        default=None,
        metadata={"help": f"Adapt only the last N layers; 0 = all (rft: {RFT_LAST_LAYERS})."},
    )
    grpo: dict[str, Any] = field(default_factory=dict, metadata={"help": "trl.GRPOConfig keys."})
    sft: dict[str, Any] = field(default_factory=dict, metadata={"help": "trl.SFTConfig keys."})
    lora: dict[str, Any] = field(default_factory=dict, metadata={"help": "peft.LoraConfig keys."})
    reward: RewardConfig = field(default_factory=RewardConfig)

    def grpo_args(self) -> Any:
        """TRL's ``GRPOConfig``: paper defaults, CPU runtime defaults, then ``[grpo]``."""
        import torch
        from trl import GRPOConfig

        cpu = not torch.cuda.is_available()
        values = {**PAPER_GRPO, **RUNTIME_GRPO, "seed": self.seed, **self.grpo}
        if cpu:
            values |= {"use_cpu": True, "bf16": False}
        return GRPOConfig(output_dir=self.output_dir, **values)

    def sft_args(self) -> Any:
        """TRL's ``SFTConfig`` of mode ``rft``: :data:`RFT_SFT`, then ``[sft]``."""
        import torch
        from trl import SFTConfig

        values = {**RFT_SFT, "seed": self.seed, **self.sft}
        if not torch.cuda.is_available():
            values |= {"use_cpu": True, "bf16": False}
        return SFTConfig(output_dir=self.output_dir, **values)

    def lora_config(self, num_layers: int = 0) -> Any:
        """PEFT's ``LoraConfig``: the mode's preset, refined by ``[lora]`` and ``last_layers``.

        Args:
            num_layers: the model's layer count, to turn ``last_layers`` into layer indices.
        """
        from peft import LoraConfig

        values = {**(RFT_LORA if self.mode == "rft" else PAPER_LORA), **self.lora}
        last = self.last_layers
        if last is None:
            last = RFT_LAST_LAYERS if self.mode == "rft" else 0
        if last and num_layers and "layers_to_transform" not in self.lora:
            values["layers_to_transform"] = list(range(max(0, num_layers - last), num_layers))
        return LoraConfig(**values)

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
    from peft import LoraConfig
    from trl import GRPOConfig, SFTConfig

    path = Path(path)
    if not path.is_file():
        raise TrainConfigError(f"config file {path} does not exist: fix --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TrainConfigError(f"{path} is not valid TOML ({exc}): fix the file") from None
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
    reward = RewardConfig(**raw.pop("reward", {}))
    return TrainConfig(**raw, reward=reward)
