"""The lecture's own tables, as data. Every figure here is the lecture's, labelled as such in the UI."""

from __future__ import annotations

import pandas as pd

RESNET_FAMILY = pd.DataFrame(
    {
        "model": ["ResNet-18", "ResNet-34", "ResNet-50", "ResNet-101", "ResNet-152"],
        "timm": ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"],
        "depth": [18, 34, 50, 101, 152],
        "params (M), lecture": [12, 22, 26, 45, 60],
        "ImageNet top-1 %, lecture": [69.8, 73.3, 76.1, 77.4, 78.3],
    }
)

EFFICIENTNET_TABLE = pd.DataFrame(
    {
        "model": ["B0", "B1", "B3", "B5", "B7"],
        "timm": [
            "efficientnet_b0",
            "efficientnet_b1",
            "efficientnet_b3",
            "efficientnet_b5",
            "efficientnet_b7",
        ],
        "depth, lecture": [1.0, 1.1, 1.4, 1.6, 2.0],
        "width, lecture": [1.0, 1.0, 1.2, 1.6, 2.0],
        "resolution, lecture": [224, 240, 300, 456, 600],
        "params (M), lecture": [5.3, 7.8, 12, 30, 66],
        "ImageNet top-1 %, lecture": [77.3, 79.2, 81.6, 83.6, 84.3],
    }
)

# timm's EfficientNet generator: (width = channel_multiplier, depth = depth_multiplier, resolution), B0..B7.
EFFICIENTNET_OFFICIAL = pd.DataFrame(
    {
        "model": [f"B{i}" for i in range(8)],
        "timm": [f"efficientnet_b{i}" for i in range(8)],
        "width": [1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0],
        "depth": [1.0, 1.1, 1.2, 1.4, 1.8, 2.2, 2.6, 3.1],
        "resolution": [224, 240, 260, 300, 380, 456, 528, 600],
    }
)

MOBILE_FLOPS = pd.DataFrame(
    {
        "model": ["ResNet-50", "MobileNetV2", "MobileNetV3-S"],
        "timm": ["resnet50", "mobilenetv2_100", "mobilenetv3_small_100"],
        "G(MACs), lecture's 'FLOPS'": [4.1, 0.3, 0.06],
        "iPhone inference ms, lecture": [90, 15, 4],
    }
)

MOBILENET_VARIANTS = pd.DataFrame(
    {
        "model": ["MobileNet v1", "MobileNet v2", "MobileNet v3", "EfficientNet-B0"],
        "year": [2017, 2018, 2019, 2019],
        "key idea": [
            "Depthwise separable + width multiplier",
            "Inverted residuals + linear bottlenecks",
            "Neural-architecture-search + SiLU",
            "Compound scaling foundation",
        ],
    }
)

# The lecture's "pick the right backbone" table.
SCENARIOS: dict[str, tuple[str, str]] = {
    "ImageNet-like natural photos": ("ResNet-50 or ConvNeXt", "strong + well-supported"),
    "Very small labeled data": ("CLIP ViT features", "cross-domain generalization"),
    "Edge / real-time": ("MobileNet-V3", "latency budget"),
    "High-res medical / satellite": ("ConvNeXt-large or DINOv2", "captures fine detail"),
    "Arbitrary RGB, unknown domain": ("DINOv2 frozen features", "best general-purpose SSL"),
}

# The lecture's "transfer learning by data size" table: (upper bound of labels, recipe, what to freeze).
DATA_SIZE_TABLE: tuple[tuple[float, str, str, str], ...] = (
    (100, "< 100 labels", "Linear probe", "everything except head"),
    (1_000, "100 - 1k", "Fine-tune top layers", "freeze conv1 - 3"),
    (10_000, "1k - 10k", "Fine-tune whole backbone", "nothing (with discriminative LR)"),
    (100_000, "10k - 100k", "Fine-tune + LR scheduling", "nothing, bigger LR"),
    (float("inf"), "> 100k", "Probably train from scratch", "—"),
)
