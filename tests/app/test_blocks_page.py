"""AppTest of the block explorer page."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")

TIMEOUT = 180


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_default_block_shows_its_costs():
    st.cache_resource.clear()  # this server has timed nothing yet (the set of timed configurations)
    at = run_app()
    assert at.title[0].value == "Block explorer"
    assert metric(at, "Parameters") == "590,336"  # 3x3 256->256 with BatchNorm
    assert metric(at, "MACs") == "116 M"
    assert metric(at, "FLOPs = 2 x MACs") == "231 M"
    # a new configuration is timed after the page is drawn: its first run says so and times nothing
    assert "Latency, median" not in [m.label for m in at.metric]
    assert any(c.value == "Timing on this device once the page is drawn…" for c in at.caption)
    at.run()  # the poller's rerun (in a browser, 0.3 s after the page's run): it times
    assert not at.exception
    assert metric(at, "Latency, median").endswith("ms")
    assert not any(c.value.startswith("Timing on this device") for c in at.caption)
    again = run_app()  # the next visitor of this configuration: the figures at once
    assert metric(again, "Latency, median") == metric(at, "Latency, median")
    assert "Peak GPU memory" not in [m.label for m in at.metric]  # a CPU has no such counter
    # achieved GFLOP/s = FLOPs / median latency, from the figures on the page
    median_ms = float(metric(at, "Latency, median").split()[0])
    shown = float(metric(at, "Achieved GFLOP/s").replace(",", ""))
    assert shown == pytest.approx(231_411_712 / (median_ms / 1e3) / 1e9, rel=0.05)  # the median is rounded


def test_a_shared_link_reopens_the_block_configuration():
    from tests.app._util import open_page

    at = open_page(
        "pages/blocks.py",
        {
            "explore.block": "depthwise_separable",
            "depthwise_separable.in_chs": "16",
            "depthwise_separable.out_chs": "32",
            "depthwise_separable.norm": "false",
        },
    )
    assert metric(at, "Parameters") == "656" and not at.exception


def test_lecture_number_when_bias_and_norm_are_off():
    at = run_app()
    at.toggle(key="conv.norm").set_value(False).run()
    assert not at.exception
    assert metric(at, "Parameters") == "589,824"
    at.number_input(key="conv.in_chs").set_value(128).run()
    at.number_input(key="conv.out_chs").set_value(128).run()
    assert metric(at, "Parameters") == "147,456"


def test_switching_block_and_depthwise_numbers():
    at = run_app()
    at.selectbox(key="explore.block").set_value("depthwise_separable").run()
    at.toggle(key="depthwise_separable.norm").set_value(False).run()
    at.number_input(key="depthwise_separable.in_chs").set_value(16).run()
    at.number_input(key="depthwise_separable.out_chs").set_value(32).run()
    assert not at.exception
    assert metric(at, "Parameters") == "656"


def test_impossible_config_gives_an_error_not_a_traceback():
    at = run_app()
    # every size field is bounded where it is drawn (what the registry and the budget allow) ...
    assert (at.number_input(key="conv.out_chs").min, at.number_input(key="conv.out_chs").max) == (1, 4096)
    assert (at.number_input(key="conv.stride").min, at.number_input(key="conv.stride").max) == (1, 4)
    assert (at.number_input(key="conv.batch").min, at.number_input(key="conv.batch").max) == (1, 1024)
    # ... and what the bounds allow but cannot work is refused in words
    at.number_input(key="conv.hw").set_value(2).run()
    assert any("3x3 kernel is larger than the 2x2 input" in e.value for e in at.error)
    assert not at.exception


def open_tab(label: str) -> AppTest:
    """A tab's content runs only while it is open; the open tab lives in the URL (?blocks.tab=...)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["blocks.tab"] = label
    at.run()
    assert not at.exception
    return at


def test_compare_lecture_and_gradient_tabs_render():
    at = open_tab("Compare")
    assert any("fewer MACs than" in i.value for i in at.info)
    frames = [d.value for d in open_tab("Lecture's numbers").dataframe]
    lecture = next(f for f in frames if "lecture params" in f.columns)
    assert lecture["matches"].all() and list(lecture["lecture params"])[:2] == [589_824, 69_632]
    at = open_tab("Gradient flow")
    assert any("residual stack's gradient" in m.value for m in at.markdown)
    at.slider(key="grad.depth").set_value(100).run()
    assert not at.exception


def test_the_flop_counter_cross_check_runs_when_asked():
    at = run_app()
    assert not any("FlopCounterMode:" in i.value for i in at.info)  # not on the first visit: ~1 s import
    at.toggle(key="explore.crosscheck").set_value(True).run()
    # FlopCounterMode counts the convolution only: 256·256·9·14·14 = 115,605,504; fvcore adds BatchNorm's
    # 100,352
    line = next(i.value for i in at.info if "FlopCounterMode:" in i.value)
    assert "115,605,504 MACs" in line and "fvcore counts 100,352 more MACs" in line and not at.exception


def test_the_roofline_tab_for_the_block_and_for_the_lecture_pair():
    from tests.app._util import open_page

    at = open_page("pages/blocks.py", {"blocks.tab": "Roofline"})
    labels = [m.label for m in at.metric]
    assert (
        labels[:3] == ["Peak compute (fp32)", "DRAM bandwidth", "Ridge point"]
        and len(at.get("plotly_chart")) == 2
    )
    at.radio(key="roof.what").set_value("A comparison preset").run()
    at.selectbox(key="roof.preset").set_value("standard vs depthwise separable (C=128, lecture)").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["MAC ratio"] == "8.41×" and shown["Roofline predicts"].endswith("× faster")
    sentence = next(i.value for i in at.info if "has 8.41× fewer MACs than standard 3x3" in i.value)
    assert "so the roofline predicts" in sentence and "was measured" in sentence


def test_the_roofline_tab_profiles_the_block_its_own_widgets_show():
    """The tab once read another tab's leftover widget state, which Streamlit drops after one run
    elsewhere."""
    from core.blocks import block_cost
    from tests.app._util import open_page

    at = open_page(
        "pages/blocks.py",
        {
            "blocks.tab": "Roofline",
            "explore.block": "depthwise_separable",
            "depthwise_separable.in_chs": "16",
            "depthwise_separable.out_chs": "32",
        },
    )
    at.number_input(key="depthwise_separable.batch").set_value(2).run()
    at.run()  # a second run in the same tab
    layers = next(d.value for d in at.dataframe if "intensity FLOP/B" in d.value.columns)
    cfg = {"in_chs": 16, "out_chs": 32}
    assert (
        layers["MACs"].sum() == block_cost("depthwise_separable", (2, 16, 56, 56), **cfg).macs
    )  # default 56x56
    assert not at.exception
