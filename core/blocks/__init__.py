"""Building blocks of the lecture, each registered by name and each knowing its closed-form cost."""

# Imported in the lecture's order, which is the registry's (and the UI's) order.
from core.blocks import conv, inception, resnet, mobilenet, efficientnet  # noqa: F401,I001
from core.blocks.base import Block
from core.blocks.costs import BlockCost, Term
from core.blocks.registry import (
    BlockConfigError,
    block_cost,
    block_defaults,
    check_input,
    create_block,
    get_block_class,
    list_blocks,
    register_block,
    resolve_config,
)

__all__ = [
    "Block",
    "BlockConfigError",
    "BlockCost",
    "Term",
    "block_cost",
    "block_defaults",
    "check_input",
    "create_block",
    "get_block_class",
    "list_blocks",
    "register_block",
    "resolve_config",
]
