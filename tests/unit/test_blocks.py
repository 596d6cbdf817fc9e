"""Every registered block: shape, skip flag, and closed form == counted values, exactly."""

import itertools

import pytest
import torch

from core.blocks import (
    BlockConfigError,
    block_cost,
    block_defaults,
    create_block,
    get_block_class,
    list_blocks,
    register_block,
)
from core.measure.counting import fvcore_macs

# Small variations of each block's own options; every combination is built, counted and compared.
VARIATIONS = {
    "in_chs": (8, 16),
    "out_chs": (16, 32),
    "stride": (1, 2),
    "kernel_size": (3, 5),
    "bias": (False, True),
    "norm": (False, True),
    "exp_ratio": (1.0, 4.0),
    "se": (False, True),
    "mid_chs": (4,),
    "c1": (0, 8),
    "c3": (8,),
    "c3_reduce": (4,),
    "c5": (0, 4),
    "c5_reduce": (2,),
    "pool_proj": (4,),
}


def grid(block: str) -> list[dict]:
    keys = [k for k, v in block_defaults(block).items() if k in VARIATIONS and v is not None]
    configs = []
    for values in itertools.product(*(VARIATIONS[k] for k in keys)):
        cfg = dict(zip(keys, values))
        if block == "convnext":
            cfg["out_chs"] = cfg["in_chs"]
        configs.append(cfg)
    # about 24 per block keeps the suite fast; first every option's every value (norm=True included), then an
    # even spread of the rest
    chosen, uncovered = [], {(k, v) for cfg in configs for k, v in cfg.items()}
    for cfg in configs:
        if uncovered & set(cfg.items()):
            chosen.append(cfg)
            uncovered -= set(cfg.items())
    spread = [c for c in configs[:: max(1, len(configs) // 24)] if c not in chosen]
    return chosen + spread[: max(0, 24 - len(chosen))]


CASES = [(b, cfg) for b in list_blocks() for cfg in grid(b)]


@pytest.mark.parametrize("block", list_blocks())
def test_the_grid_builds_every_value_of_every_option(block):
    """The closed-form grid once never built norm=True for conv, bottleneck_1x1, depthwise_separable,
    mbconv or convnext."""
    keys = [k for k, v in block_defaults(block).items() if k in VARIATIONS and v is not None]
    built = {(k, cfg[k]) for cfg in grid(block) for k in keys}
    wanted = {(k, v) for k in keys for v in VARIATIONS[k]}
    if block == "convnext":
        wanted = {(k, v) for k, v in wanted if k != "out_chs"} | {
            ("out_chs", v) for v in VARIATIONS["in_chs"]
        }
    assert built == wanted
    if "norm" in keys:
        assert ("norm", True) in built


def test_registry_lists_every_lecture_block():
    assert list_blocks()[:9] == [
        "conv",
        "bottleneck_1x1",
        "inception",
        "resnet_basic",
        "resnet_bottleneck",
        "depthwise_separable",
        "inverted_residual",
        "mbconv",
        "convnext",
    ]


def test_register_block_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_block("conv", "#000001")(type("Other", (torch.nn.Module,), {}))


class _Made(torch.nn.Module):
    def __init__(self, in_chs: int = 8, out_chs: int = 8):
        super().__init__()


class _Undescribed(torch.nn.Module):
    def __init__(self, in_chs: int = 8, groups: int = 2):
        super().__init__()


@pytest.mark.parametrize(
    "colour, cls, says",
    [
        ("", _Made, "colour as #rrggbb"),
        ("orange", _Made, "colour as #rrggbb"),
        ("#1f77b4", _Made, "already another block's"),  # conv's
        ("#000002", _Undescribed, "takes groups, which FIELDS does not describe"),
    ],
)
def test_a_block_without_its_colour_or_with_an_undescribed_option_is_refused(colour, cls, says):
    with pytest.raises(ValueError, match=says):
        register_block("made_up", colour)(cls)
    assert "made_up" not in list_blocks()


def test_one_description_gives_every_option_its_label_and_bounds():
    from core.blocks.registry import FIELDS, FLOAT_FIELDS, INT_FIELDS

    options = {k for b in list_blocks() for k in block_defaults(b)}
    assert options <= set(FIELDS)  # every form field has a label from here
    assert INT_FIELDS["in_chs"] == (1, 4096) and INT_FIELDS["kernel_size"] == (1, 11)
    assert FLOAT_FIELDS == {"exp_ratio": (1.0, 8.0), "se_ratio": (0.0, 1.0)}
    assert FIELDS["exp_ratio"].label == "Expansion ratio t" and FIELDS["se"].low is None  # a switch
    colours = [get_block_class(b).colour for b in list_blocks()]
    assert len(set(colours)) == len(colours) == 9


@pytest.mark.parametrize("block,cfg", CASES, ids=[f"{b}-{i}" for i, (b, _) in enumerate(CASES)])
def test_closed_form_equals_counted(block, cfg):
    module = create_block(block, **cfg).eval()
    hw = 12
    x = torch.randn(2, module_in(block, cfg), hw, hw)
    cost = block_cost(block, tuple(x.shape), **cfg)
    counted_params = sum(p.numel() for p in module.parameters())
    counted_macs = fvcore_macs(module, (x,)).total
    assert cost.params == counted_params
    assert cost.macs == counted_macs
    with torch.no_grad():
        y = module(x)
    assert tuple(y.shape) == cost.out_shape


def module_in(block, cfg):
    return cfg.get("in_chs", block_defaults(block)["in_chs"])


@pytest.mark.parametrize("block", list_blocks())
def test_has_skip_follows_stride_and_channels(block):
    defaults = block_defaults(block)
    cls = get_block_class(block)
    same = create_block(block, stride=1, in_chs=32, out_chs=32) if "stride" in defaults else None
    if block in ("resnet_basic", "resnet_bottleneck", "convnext"):
        assert create_block(block).has_skip
    elif block in ("inverted_residual", "mbconv"):
        assert same.has_skip
        assert not create_block(block, stride=2, in_chs=32, out_chs=32).has_skip
        assert not create_block(block, stride=1, in_chs=32, out_chs=64).has_skip
    else:
        assert not create_block(block).has_skip
    assert cls.paper and cls.summary


@pytest.mark.parametrize(
    "stride,c_in,c_out,projection",
    [(1, 64, 64, False), (2, 64, 64, True), (1, 64, 128, True), (2, 64, 128, True)],
)
@pytest.mark.parametrize("block", ["resnet_basic", "resnet_bottleneck"])
def test_projection_shortcut_whenever_shape_changes(block, stride, c_in, c_out, projection):
    m = create_block(block, in_chs=c_in, out_chs=c_out, stride=stride)
    assert m.has_projection is projection
    assert isinstance(m.shortcut, torch.nn.Identity) is (not projection)
    y = m.eval()(torch.randn(1, c_in, 8, 8))
    assert tuple(y.shape) == (1, c_out, 8 // stride, 8 // stride)


def test_inception_3a_default_matches_googlenet():
    # GoogLeNet table 1, inception (3a): 192 -> 64 + 128 + 32 + 32 = 256 channels at 28x28, ~128M ops.
    m = create_block("inception", bias=False, norm=False)
    cost = block_cost("inception", (1, 192, 28, 28), bias=False, norm=False)
    assert cost.out_shape == (1, 256, 28, 28)
    assert cost.params == sum(p.numel() for p in m.parameters()) == 163_328
    assert cost.macs == 163_328 * 28 * 28 == 128_049_152


@pytest.mark.parametrize(
    "cfg,shape,message",
    [
        ({"in_chs": 0}, (1, 0, 14, 14), "between 1 and"),
        ({"out_chs": 0}, (1, 256, 14, 14), "out_chs = 0 is impossible"),
        ({"stride": -1}, (1, 256, 14, 14), "stride = -1 is impossible"),
        ({"kernel_size": 7}, (1, 256, 5, 5), "7x7 kernel is larger than the 5x5 input"),
        ({"kernel_size": 4}, (1, 256, 14, 14), "odd kernel"),
        ({"groups": 3}, (1, 256, 14, 14), "does not take groups"),
    ],
)
def test_impossible_configs_get_a_clear_message(cfg, shape, message):
    with pytest.raises(BlockConfigError, match=message):
        block_cost("conv", shape, **cfg)


def test_block_specific_checks():
    with pytest.raises(BlockConfigError, match="multiple of the expansion"):
        create_block("resnet_bottleneck", out_chs=30)
    with pytest.raises(BlockConfigError, match="keeps its width"):
        create_block("convnext", in_chs=96, out_chs=192)
    with pytest.raises(BlockConfigError, match="output nothing"):
        create_block("inception", c1=0, c3=0, c5=0, pool_proj=0)
    with pytest.raises(BlockConfigError, match="unknown block"):
        create_block("resnet_nope")
