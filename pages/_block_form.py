"""What the Block explorer's tabs share: the block and its configuration as widgets (the same widgets and
URL keys on the Explore, Roofline and Deploy tabs, so each tab reads the block from its own widgets,
never from another tab's leftover state), and the interleaved timing of a comparison (the Compare and
Roofline tabs read one cache)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.blocks import block_defaults, get_block_class, list_blocks
from core.blocks import compare as cmp
from core.blocks.registry import FIELDS
from core.measure import budget
from core.measure.settings import Setting
from core.present import fmt


def config_form(block: str) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
    """Widgets for every option the block takes; returns the raw config and the input shape."""
    defaults = block_defaults(block)
    cfg: dict[str, Any] = {}
    numeric = [k for k, v in defaults.items() if not isinstance(v, bool) and v is not None]
    cols = st.columns(4)
    for i, key in enumerate(numeric):
        default = defaults[key]
        with cols[i % 4]:
            if isinstance(default, float):
                lo, hi = FIELDS[key].low, FIELDS[key].high
                cfg[key] = st.number_input(
                    FIELDS[key].label,
                    float(lo),
                    float(hi),
                    value=default,
                    step=0.25,
                    key=f"{block}.{key}",
                    bind="query-params",
                )
            else:
                lo, hi = int(FIELDS[key].low), int(FIELDS[key].high)
                cfg[key] = int(
                    st.number_input(
                        FIELDS[key].label,
                        lo,
                        hi,
                        value=default,
                        step=1,
                        key=f"{block}.{key}",
                        bind="query-params",
                    )
                )
    cols = st.columns(4)
    hw = cols[0].number_input(
        "Spatial size H = W",
        1,
        budget.MAX_SPATIAL,
        value=get_block_class(block).default_hw,
        step=1,
        key=f"{block}.hw",
        bind="query-params",
    )
    batch = cols[1].number_input(
        "Batch", 1, budget.MAX_BATCH, value=1, step=1, key=f"{block}.batch", bind="query-params"
    )
    for i, key in enumerate(k for k, v in defaults.items() if isinstance(v, bool)):
        cfg[key] = cols[2 + i % 2].toggle(
            FIELDS[key].label, value=defaults[key], key=f"{block}.{key}", bind="query-params"
        )
    return cfg, (int(batch), int(cfg["in_chs"]), int(hw), int(hw))


def block_form() -> tuple[str, dict[str, Any], tuple[int, int, int, int]]:
    """The block and its configuration: the same widgets (and URL keys) on the Explore and Roofline tabs,
    so each tab reads the block from its own widgets, never from another tab's leftover state."""
    block = st.selectbox("Block", list_blocks(), key="explore.block", bind="query-params")
    cls = get_block_class(block)
    st.caption(f"{fmt.md(cls.summary)}  \n*{fmt.md(cls.paper)}*")
    raw, shape = config_form(block)
    return block, raw, shape


@st.cache_data(show_spinner="Timing the blocks interleaved, round by round…", max_entries=32)
def cached_compare(
    entries: tuple[cmp.Entry, ...], chs: int, hw: int, batch: int, settings: Setting
) -> pd.DataFrame:
    # at most 4 s of rounds: no blind wait over 5 s (an unsettled result says the machine was busy)
    return cmp.compare(list(entries), chs, hw, batch, **settings.profile_kwargs(), max_time_s=4.0)
