"""Base class of every registered block: a skip flag, a default input, a closed form, a config check."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from core.blocks.costs import BlockCost


class Block(nn.Module):
    """A building block that knows its own closed-form cost."""

    block_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    default_hw: ClassVar[int] = 56
    has_skip: bool = False

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Raises BlockConfigError for a config this block cannot build (beyond the shared bounds)."""

    @classmethod
    def closed_form(cls, n: int, h: int, w: int, **cfg: Any) -> BlockCost:
        raise NotImplementedError
