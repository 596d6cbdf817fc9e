"""The training engine: the lecture's three transfer recipes (+ scratch), a readable trainer, checkpoints
and the bundle, DDP. It never touches the run store (that is core.runs, above it); its CLI is ``python
-m core.runs train``."""

from core.finetune.config import RECIPES, TrainConfig

__all__ = ["RECIPES", "TrainConfig"]
