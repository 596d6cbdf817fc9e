"""Compare mode: ratios, statements from measurement, channel sweep growth."""

import numpy as np
import pandas as pd

from core.blocks.compare import PRESETS, channel_sweep, compare, ratio_statement
from core.present import fmt, plots


def test_compare_depthwise_against_conv_ratios():
    entries = list(PRESETS["standard vs depthwise separable (C=128, lecture)"][1])
    frame = compare(entries, 128, 14, min_rounds=5, max_rounds=9)
    assert list(frame["params"]) == [147_456, 17_536]
    assert round(frame["MAC ratio"].iloc[1], 2) == 8.41
    timed = frame.attrs["interleaved"]
    assert (
        5 <= timed.rounds <= 9 and len(timed.latency[0].__dict__) and timed.latency[1].iters == timed.rounds
    )
    # the speed-up is the median of the per-round ratios, not a ratio of two separately taken medians
    assert frame["speed-up"].iloc[1] == timed.ratios[1].ratio
    assert frame["speed-up low"].iloc[1] <= frame["speed-up"].iloc[1] <= frame["speed-up high"].iloc[1]
    statement = ratio_statement(frame)
    assert len(statement) == 1 and statement[0].startswith(
        "depthwise separable has 8.41× fewer MACs than standard 3x3."
    )
    bars = plots.compare_bars(frame)
    assert "8.41× fewer MACs" in bars.data[1].text[1] and "x less" not in str(bars.data[2].text)


def test_ratio_statement_words_follow_the_numbers():
    frame = pd.DataFrame({"block": ["a", "b"], "MAC ratio": [1.0, 8.0], "speed-up": [1.0, 2.0]})
    assert "only 25% of the MAC saving" in ratio_statement(frame)[0]
    frame["speed-up"] = [1.0, 7.5]
    assert "agree within 20%" in ratio_statement(frame)[0]
    # a slower candidate is said to be slower, with the inverted ratio: 1 / 0.89 = 1.12
    frame = pd.DataFrame(
        {
            "block": ["a", "b"],
            "MAC ratio": [1.0, 8.47],
            "speed-up": [1.0, 0.89],
            "speed-up low": [1.0, 0.8],
            "speed-up high": [1.0, 0.95],
        }
    )
    line = ratio_statement(frame)[0]
    assert "has 8.47× fewer MACs than a. It runs 1.12× slower (~95% interval 1.05–1.25× slower)" in line


def test_times_words():
    assert fmt.times(8.4732, "more MACs", "fewer MACs") == "8.47× fewer MACs"
    assert fmt.times(0.5, "slower", "faster") == "2.00× slower"
    assert fmt.times(1234.5, "slower", "faster") == "1,234.50× faster"


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
