"""The lecture's worked numbers, with bias and BatchNorm off, exactly."""

import pytest

from core.blocks import block_cost, create_block
from core.blocks.compare import LECTURE_CASES, lecture_table

OFF = {"bias": False, "norm": False}


@pytest.mark.parametrize(
    "block,cfg,shape,expected",
    [
        ("conv", dict(in_chs=256, out_chs=256), (1, 256, 14, 14), 589_824),
        ("bottleneck_1x1", dict(in_chs=256, out_chs=256, mid_chs=64), (1, 256, 14, 14), 69_632),
        ("conv", dict(in_chs=16, out_chs=32), (1, 16, 14, 14), 4_608),
        ("bottleneck_1x1", dict(in_chs=16, out_chs=32, mid_chs=4), (1, 16, 14, 14), 336),
        ("depthwise_separable", dict(in_chs=16, out_chs=32), (1, 16, 14, 14), 656),
        ("conv", dict(in_chs=128, out_chs=128), (1, 128, 14, 14), 147_456),
        ("depthwise_separable", dict(in_chs=128, out_chs=128), (1, 128, 14, 14), 17_536),
    ],
)
def test_worked_numbers(block, cfg, shape, expected):
    assert block_cost(block, shape, **cfg, **OFF).params == expected
    assert sum(p.numel() for p in create_block(block, **cfg, **OFF).parameters()) == expected


def test_bottleneck_steps_match_the_slide():
    terms = block_cost("bottleneck_1x1", (1, 256, 14, 14), in_chs=256, out_chs=256, mid_chs=64, **OFF).terms
    assert [t.params for t in terms] == [16_384, 36_864, 16_384]
    terms = block_cost("depthwise_separable", (1, 128, 14, 14), in_chs=128, out_chs=128, **OFF).terms
    assert [t.params for t in terms] == [1_152, 16_384]


def test_ratios_as_the_lecture_rounds_them():
    cases, ratios = lecture_table()
    assert cases["matches"].all()
    assert list(cases["lecture params"]) == [c.lecture_params for c in LECTURE_CASES]
    assert list(ratios["computed"]) == [8.47, 13.71, 7.02, 8.41]


def test_depthwise_mac_ratio_at_256_channels_is_8_7():
    conv = block_cost("conv", (1, 256, 28, 28), in_chs=256, out_chs=256, **OFF)
    dws = block_cost("depthwise_separable", (1, 256, 28, 28), in_chs=256, out_chs=256, **OFF)
    assert round(conv.macs / dws.macs, 2) == 8.69
