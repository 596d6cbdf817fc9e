"""Compare mode: ratios, statements from measurement, channel sweep growth."""
import numpy as np
import pandas as pd

from core.measure.compare import PRESETS, channel_sweep, compare, ratio_statement
from core.present import plots


def test_compare_depthwise_against_conv_ratios():
    entries = list(PRESETS["standard vs depthwise separable (C=128, lecture)"][1])
    frame = compare(entries, 128, 14, min_time_s=0.05)
    assert list(frame["params"]) == [147_456, 17_536]
    assert round(frame["MAC ratio"].iloc[1], 2) == 8.41
    assert frame["latency ms"].gt(0).all()
    assert len(ratio_statement(frame)) == 1 and "8.41x fewer MACs" in ratio_statement(frame)[0]
    assert len(plots.compare_bars(frame).data) == 3


def test_ratio_statement_words_follow_the_numbers():
    frame = pd.DataFrame({"block": ["a", "b"], "MAC ratio": [1.0, 8.0], "latency ratio": [1.0, 2.0]})
    assert "only 25% of the MAC saving" in ratio_statement(frame)[0]
    frame["latency ratio"] = [1.0, 7.5]
    assert "agree within 20%" in ratio_statement(frame)[0]


def test_sweep_shows_c_squared_against_c_growth():
    entries = list(PRESETS["standard vs depthwise separable (C=128, lecture)"][1])
    sweep = channel_sweep(entries, 14)
    conv = sweep[sweep["block"] == "standard 3x3"]
    slope = np.polyfit(np.log(conv["channels"]), np.log(conv["params"]), 1)[0]
    assert round(slope, 6) == 2.0
    dws = sweep[sweep["block"] == "depthwise separable"]
    small = dws[dws["channels"] <= 16]
    assert (small["params"] == 9 * small["channels"] + small["channels"] ** 2).all()
    assert len(plots.channel_sweep(sweep).data) == 4
