"""First-use costs that a page would otherwise pay on its first visitor's time, paid once per server
process in the preload thread, after the imports (``core.web.preload``). Measured on this 2-core machine
with everything imported (issue 30: every first visit within 2 s):
- fvcore's first trace of a block: 0.23 s, against 0.04 s for the next one (the Block explorer counts
  first);
- torch's first convolutions on the CPU: the first block timed took 0.73 s against 0.45 s for the next;
- the Transfer learning page's default demo set (60 images a class at 64 px): 0.47 s to draw and write,
  once per data directory (it is written there on the first visit anyway);
- plotly's lazily loaded trace types and JSON encoder, on the first chart drawn.

Each step is the call a page makes first, on a small input, and nothing it computes is shown or kept, so
a warm-up never stands in for a measurement: the pages still count and time for themselves. A step that
fails (a read-only data directory, say) is skipped; the page's own call reports the error where it
belongs."""

from __future__ import annotations

from typing import Callable


def fvcore_trace() -> None:
    from core.blocks import create_block, resolve_config
    from core.measure.profiling import profile_module

    cfg = resolve_config("conv", in_chs=8, out_chs=8)
    profile_module(create_block("conv", **cfg), (1, 8, 16, 16), time_it=False, check_counts=False)


def first_convolutions() -> None:
    """The Block explorer's default block at its default shape, run forward a few times (not timed)."""
    import torch

    from core.blocks import create_block, get_block_class, list_blocks, resolve_config

    block = list_blocks()[0]
    cfg = resolve_config(block)
    hw = get_block_class(block).default_hw
    module = create_block(block, **cfg).eval()
    x = torch.randn(1, cfg["in_chs"], hw, hw)
    with torch.inference_mode():
        for _ in range(3):
            module(x)


def demo_dataset() -> None:
    from core.data import demo
    from core.finetune.config import TrainConfig

    cfg = TrainConfig()  # the Transfer learning page's defaults
    demo.generate(per_class=cfg.demo_per_class, size=cfg.demo_size, seed=cfg.seed)


def plotly_json() -> None:
    import plotly.graph_objects as go
    import plotly.io as pio

    pio.to_json(go.Figure([go.Bar(x=["a"], y=[1.0]), go.Scatter(x=[1], y=[1]), go.Heatmap(z=[[1.0]])]))


STEPS: tuple[Callable[[], None], ...] = (fvcore_trace, first_convolutions, plotly_json, demo_dataset)
