"""GRPO training: rollouts through the graph, rewards, per-turn samples, the TRL trainer."""
