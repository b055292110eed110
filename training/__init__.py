"""GRPO training (:mod:`.grpo`), evaluation (:mod:`.eval`), synthesis (:mod:`.synth`)."""
