"""Compound-scaling arithmetic (the lecture's worked example) and the recommender on the lecture's rows."""

import pytest

from core.zoo import recommend, scaling
from core.zoo.lecture import SCENARIOS


def test_lecture_worked_example_phi_2():
    s = scaling.Scaling(2, scaling.ALPHA, scaling.BETA, scaling.GAMMA)
    assert round(s.depth, 2) == 1.44 and round(s.width, 2) == 1.21
    assert round(s.resolution_multiplier, 2) == 1.32 and round(s.resolution) == 296
    assert round(s.constraint, 2) == 1.92  # α·β²·γ² ≈ 2
    assert s.predicted_cost_ratio == pytest.approx(1.92027**2)


def test_scaled_network_is_real_and_b0_at_phi_0():
    frame = scaling.predicted_vs_measured([2.0])
    b0, phi2 = frame.iloc[0], frame.iloc[1]
    assert b0["params"] == 5_288_548 and b0["resolution"] == 224 and b0["measured MAC ratio"] == 1.0
    assert phi2["resolution"] == 296 and phi2["params"] > b0["params"]
    # rounding of channels (to 8) and of repeats (ceil) makes the real network costlier than the formula
    assert phi2["measured MAC ratio"] > phi2["predicted cost ratio"] > 3.5


@pytest.mark.parametrize(
    "n,recipe,engine",
    [
        (50, "Linear probe", "linear_probe"),
        (500, "Fine-tune top layers", "finetune_top"),
        (5_000, "Fine-tune whole backbone", "finetune_full"),
        (50_000, "Fine-tune + LR scheduling", "finetune_full"),
        (500_000, "Probably train from scratch", "scratch"),
        (100, "Fine-tune top layers", "finetune_top"),
    ],
)
def test_recipe_from_the_data_size_table(n, recipe, engine):
    r = recommend.recipe_for(n)
    assert (r.recipe, r.engine_recipe) == (recipe, engine)


@pytest.mark.parametrize(
    "scenario,first",
    [
        ("ImageNet-like natural photos", "resnet50"),
        ("Edge / real-time", "mobilenetv3_large_100"),
        ("Arbitrary RGB, unknown domain", "vit_small_patch14_dinov2"),
        ("Very small labeled data", "vit_base_patch16_clip_224"),
        ("High-res medical / satellite", "convnext_large"),
    ],
)
def test_recommender_follows_the_lecture_without_a_budget(scenario, first):
    rec = recommend.recommend(scenario, 1_000, None, {})
    assert rec.backbone == first and SCENARIOS[scenario][0] in rec.reasons[0]


def test_budget_drops_backbones_that_miss_it_on_this_device():
    latencies = {"resnet50": 36.0, "convnext_tiny": 65.0, "efficientnet_b0": 13.8, "resnet18": 16.0}
    rec = recommend.recommend("ImageNet-like natural photos", 2_000, 30, latencies)
    assert rec.backbone == "efficientnet_b0"
    assert [n for n, _ in rec.rejected] == ["resnet50", "convnext_tiny"]
    assert "36.0 ms at batch 1 misses the 30 ms budget" in rec.rejected[0][1]
    unmeasured = recommend.recommend("ImageNet-like natural photos", 2_000, 5, latencies)
    assert unmeasured.backbone is None and unmeasured.unmeasured == ["efficientnet_lite0"]
    assert unmeasured.reasons[-1] == (
        "1 of 5 candidates are not measured on this device yet (efficientnet_lite0): "
        "measure them before concluding that none meets 5 ms."
    )
    none = recommend.recommend(
        "ImageNet-like natural photos", 2_000, 5, {**latencies, "efficientnet_lite0": 20.5}
    )
    assert none.backbone is None and "fastest is efficientnet_b0" in none.reasons[-1]


def test_offline_the_pick_is_trainable_here_and_the_better_hub_model_is_named_beside_it():
    latencies = {
        "resnet50": 36.0,
        "convnext_tiny": 65.0,
        "efficientnet_b0": 13.8,
        "resnet18": 16.0,
        "efficientnet_lite0": 20.5,
    }
    top1 = {"efficientnet_b0": 77.7, "efficientnet_lite0": 75.5}
    rec = recommend.recommend(
        "ImageNet-like natural photos",
        2_000,
        30,
        latencies,
        top1=top1,
        offline=("efficientnet_lite0",),
        online=False,
    )
    assert rec.backbone == "efficientnet_lite0" and rec.hub_only == "efficientnet_b0" and rec.top1 == 75.5
    rows = {c.name: c for c in rec.candidates}
    assert rows["efficientnet_lite0"].verdict == "recommended" and rows["efficientnet_lite0"].offline
    assert rows["efficientnet_b0"].verdict == "better, but needs the hub (online)"
    assert rows["resnet50"].verdict == "needs the hub (online)"
    assert any(
        "efficientnet_b0 (ImageNet-1k top-1 77.7% (timm, published)) would be the pick with the hub" in r
        for r in rec.reasons
    )
    online = recommend.recommend(
        "ImageNet-like natural photos",
        2_000,
        30,
        latencies,
        top1=top1,
        offline=("efficientnet_lite0",),
        online=True,
    )
    assert online.backbone == "efficientnet_b0" and online.hub_only is None


def test_recommender_names_the_resolution_of_each_latency():
    latencies = {"resnet50": 36.0, "convnext_tiny": 65.0, "efficientnet_b0": 13.8}
    res = {"resnet50": 224, "convnext_tiny": 224, "efficientnet_b0": 160}
    rec = recommend.recommend("ImageNet-like natural photos", 2_000, 30, latencies, res)
    assert rec.rejected[0] == ("resnet50", "36.0 ms at batch 1 and 224 px misses the 30 ms budget")
    assert "efficientnet_b0 runs in 13.8 ms at batch 1 and 160 px on this device" in rec.reasons[-1]
