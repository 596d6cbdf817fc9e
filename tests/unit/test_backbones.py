"""Backbone catalog: published counts, Pareto frontier, clear errors, caching, throughput sweep."""

import math

import numpy as np
import pandas as pd
import pytest

from core.measure import settings
from core.present import plots
from core.zoo import catalog, pareto
from core.zoo import measure as zmeasure

# timm's published fvcore GMACs (model in eval) and params, from results/benchmark-infer-amp-nchw-pt240-cu124-
# rtx4090.csv (infer_gmacs at infer_img_size, rounded to 2 decimals there); exact params as torchvision/timm
# publish.
PUBLISHED = {
    "resnet18": (224, 1.82, 11_689_512),
    "resnet34": (224, 3.67, 21_797_672),
    "resnet50": (224, 4.11, 25_557_032),
    "resnet101": (224, 7.83, 44_549_160),
    "resnet152": (224, 11.56, 60_192_808),
    "mobilenetv2_100": (224, 0.31, 3_504_872),
    "mobilenetv3_large_100": (224, 0.23, 5_483_032),
    "mobilenetv3_small_100": (224, 0.06, 2_542_856),
    "efficientnet_b0": (224, 0.40, 5_288_548),
    "efficientnet_b1": (240, 0.71, 7_794_184),
    "efficientnet_b2": (256, 0.89, 9_109_994),
    "efficientnet_b3": (288, 1.63, 12_233_232),
    "efficientnet_lite0": (224, 0.40, 4_652_008),
    "convnext_tiny": (224, 4.47, 28_589_128),
    "vit_base_patch16_224": (224, 17.58, 86_567_656),
    "inception_v3": (299, 5.73, 23_834_568),
    "vit_small_patch14_dinov2": (518, 46.76, 22_056_192),
}


def test_every_curated_model_has_a_published_figure():
    assert set(catalog.CURATED) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_macs_and_params_match_timm_published(name):
    res, gmacs, params = PUBLISHED[name]
    counted = zmeasure.count(name, res)
    assert counted["params"] == params
    # within 0.5%, or within the rounding of the published 2-decimal figure for tiny models
    assert abs(counted["macs"] / 1e9 - gmacs) <= max(0.005 * gmacs, 0.005)


def test_default_resolution_follows_timm():
    assert catalog.default_resolution("resnet50") == 224
    assert catalog.default_resolution("inception_v3") == 299
    assert catalog.default_resolution("vit_small_patch14_dinov2") == 518


def test_pareto_front_on_hand_made_points():
    cost = [1, 2, 3, 4, 5, 2]
    acc = [70, 80, 75, 85, 85, 79]
    # (3, 75) is beaten by (2, 80); (5, 85) by (4, 85); (2, 79) by (2, 80)
    assert list(pareto.pareto_front(cost, acc)) == [True, True, False, True, False, False]
    assert list(pareto.pareto_front([1, np.nan], [70, 90])) == [True, False]


def test_unknown_model_and_bad_resolution_get_clear_messages():
    with pytest.raises(catalog.BackboneError, match="unknown model 'resnet5o'.*Did you mean resnet50"):
        catalog.resolve_name("resnet5o")
    with pytest.raises(catalog.BackboneError, match="out of range"):
        zmeasure.measure("resnet18", 8)
    with pytest.raises(catalog.BackboneError, match="inception_v3 cannot take a 32x32 input"):
        zmeasure.count("inception_v3", 32)


def test_measure_is_cached_per_setting():
    setting = settings.Setting("cpu", "fp32", "contiguous", 1)
    first = zmeasure.measure("mobilenetv3_small_100", 96, setting, min_time_s=0.02)
    again = zmeasure.measure("mobilenetv3_small_100", 96, setting)
    assert again == first
    assert (first["params"], first["resolution"], first["threads"]) == (2_542_856, 96, 1)
    assert (first["device"], first["precision"], first["memory_format"], first["batch"]) == (
        "cpu",
        "fp32",
        "contiguous",
        1,
    )
    fresh = zmeasure.measure("mobilenetv3_small_100", 96, setting, refresh=True, min_time_s=0.02)
    assert fresh["measured_at"] > first["measured_at"] and fresh["macs"] == first["macs"]
    frame = zmeasure.results_frame(setting)
    row = frame[frame["model"] == "mobilenetv3_small_100"].iloc[0]
    assert row["top1"] == 67.656 and row["tag"] == "lamb_in1k"


def test_throughput_sweep_stops_and_marks_saturation():
    setting = settings.Setting("cpu", "fp32", "contiguous", 1)
    sweep = zmeasure.throughput_sweep("mobilenetv3_small_100", 64, setting, batches=(1, 2, 4), time_cap_s=30)
    assert [r["batch"] for r in sweep["rows"]] == [1, 2, 4]
    assert sweep["saturation_batch"] in (1, 2, 4) and sweep["stop_reason"] == "all batch sizes done"
    stopped = zmeasure.throughput_sweep(
        "mobilenetv3_small_100", 64, setting, batches=(1, 2), should_stop=lambda: True
    )
    assert stopped["rows"] == [] and stopped["stop_reason"] == "stopped"


def test_saturation_batch_rule():
    rows = [{"batch": b, "images_per_s": v} for b, v in [(1, 10), (2, 18), (4, 19.2), (8, 20)]]
    assert zmeasure.saturation_batch(rows) == 4  # 19.2 >= 0.95 * 20
    assert zmeasure.saturation_batch([]) is None


def test_accuracy_table_names_its_source():
    header = catalog.ACCURACY_CSV.read_text().splitlines()[1]
    assert "results-imagenet.csv" in header
    acc = catalog.default_accuracy().set_index("model")
    assert acc.loc["resnet50", "top1"] == 81.214 and acc.loc["resnet50", "tag"] == "a1_in1k"
    assert math.isclose(acc.loc["efficientnet_b0", "top1"], 77.694)


def test_one_per_model_pairs_accuracy_with_cost_at_the_same_resolution():
    """Latest measured at 160 px, but accuracy is at 288 px and a 288 px measurement exists: that one is
    used."""
    frame = pd.DataFrame(
        {
            "model": ["resnet18", "resnet18", "resnet18", "mobilenetv3_small_100"],
            "resolution": [288, 224, 160, 96],
            "eval_resolution": [288, 288, 288, 224],
            "default_resolution": [224, 224, 224, 224],
            "latency_ms": [30.0, 20.0, 10.0, 2.0],
            "measured_at": [1.0, 2.0, 3.0, 4.0],
        }
    )
    acc = zmeasure.one_per_model(frame, "eval_resolution")
    assert acc.set_index("model")["latency_ms"].to_dict() == {"resnet18": 30.0, "mobilenetv3_small_100": 2.0}
    assert acc.set_index("model")["resolution matches"].to_dict() == {
        "resnet18": True,
        "mobilenetv3_small_100": False,
    }
    rec = zmeasure.one_per_model(frame, "default_resolution")
    assert rec.set_index("model")["resolution"].to_dict() == {"resnet18": 224, "mobilenetv3_small_100": 96}


def test_end_labels_of_the_accuracy_chart_run_inwards():
    """The rightmost point's name runs left of it and the leftmost's right (at 390 px "resnet18" at the
    right edge of the latency chart went outside the figure); one point alone stays centred."""
    frame = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "tag": "",
            "params (M)": 1.0,
            "GMACs": [0.1, 1.0, 4.0],
            "resolution": 224,
            "eval_resolution": 224,
            "top1": [70.0, 75.0, 80.0],
        }
    )
    fig = plots.accuracy_vs_cost(frame, "GMACs", "GMACs", pd.Series([True, True, True]))
    assert list(fig.data[0].textposition) == ["top right", "top center", "top left"]
    one = plots.accuracy_vs_cost(frame.head(1), "GMACs", "GMACs", pd.Series([True]))
    assert list(one.data[0].textposition) == ["top center"]
