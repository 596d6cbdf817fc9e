"""Published counts: torchvision's metadata, and ResNets rebuilt from the registry's own blocks."""

import pytest
import torchvision
from torch import nn

from core.blocks import create_block
from core.measure.profiling import profile_module

MATMUL_OPS = ("conv", "linear")


@pytest.mark.parametrize(
    "name,params,gmacs",
    [
        ("resnet18", 11_689_512, 1.814),  # torchvision ResNet18_Weights.IMAGENET1K_V1.meta
        ("resnet50", 25_557_032, 4.089),
        ("mobilenet_v2", 3_504_872, 0.301),
        ("efficientnet_b0", 5_288_548, 0.386),
    ],
)
def test_torchvision_params_and_conv_linear_macs(name, params, gmacs):
    model = torchvision.models.get_model(name)
    prof = profile_module(model, (1, 3, 224, 224), time_it=False)
    assert prof.params == params
    conv_linear = sum(prof.macs_by_op.get(op, 0) for op in MATMUL_OPS)
    assert round(conv_linear / 1e9, 3) == gmacs
    assert prof.flops == 2 * prof.macs
    assert prof.cross_check.agree


def test_metadata_is_what_we_compare_against():
    meta = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta
    assert meta["num_params"] == 11_689_512 and meta["_ops"] == 1.814


def resnet_from_blocks(block: str, layers: list[int]) -> nn.Module:
    """A torchvision-style ResNet whose stages are built only from registry blocks."""
    expansion = 4 if block == "resnet_bottleneck" else 1
    stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
    )
    stages, c_in = [], 64
    for i, n in enumerate(layers):
        c_out = 64 * 2**i * expansion
        for j in range(n):
            stages.append(
                create_block(block, in_chs=c_in, out_chs=c_out, stride=2 if (j == 0 and i > 0) else 1)
            )
            c_in = c_out
    return nn.Sequential(stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1000))


@pytest.mark.parametrize(
    "block,layers,params,gmacs",
    [
        ("resnet_basic", [2, 2, 2, 2], 11_689_512, 1.814),
        ("resnet_bottleneck", [3, 4, 6, 3], 25_557_032, 4.089),
    ],
)
def test_registry_blocks_rebuild_published_resnets(block, layers, params, gmacs):
    prof = profile_module(resnet_from_blocks(block, layers), (1, 3, 224, 224), time_it=False)
    assert prof.params == params
    assert round(sum(prof.macs_by_op.get(op, 0) for op in MATMUL_OPS) / 1e9, 3) == gmacs


def test_resnet50_total_macs_fvcore_convention():
    # fvcore with the model in eval() counts BN too: timm publishes 4.11 GMACs for resnet50.
    prof = profile_module(torchvision.models.resnet50(), (1, 3, 224, 224), time_it=False)
    assert round(prof.macs / 1e9, 2) == 4.11
    assert prof.cross_check.flop_counter_macs == sum(prof.macs_by_op[op] for op in MATMUL_OPS)
    assert "aten::max_pool2d" in prof.uncounted_ops
