"""Fine-tuning engine: the lecture's three transfer recipes (+ scratch), a readable trainer, CLI and DDP."""
from core.finetune.config import RECIPES, TrainConfig

__all__ = ["RECIPES", "TrainConfig"]
