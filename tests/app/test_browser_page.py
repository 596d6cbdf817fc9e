"""AppTest of "Measure in this browser" on Compare backbones → Deployment: the button and its picker before
any measurement, then devices measured earlier (stored as a visitor's browser leaves them) on the chart,
in the budget table and in words against native ONNX Runtime; a device renamed and forgotten. (The bench
itself runs in Chromium: tests/e2e/test_browser_e2e.py.)"""

import json
import re

from core.deploy import browser
from core.deploy import browser_checks as results
from core.deploy import devices as device_store
from tests.app._util import open_page, texts
from tests.unit.test_browser_bench import forged

QUERY = {"bb.tab": "Deployment", "dep.models": "mobilenetv3_small_100"}


def stored_device(user_agent: str | None = None, p50: float = 16.0, native: float = 2.0) -> None:
    bench = browser.Bench(
        None, "mobilenetv3_small_100", "mobilenetv3_small_100", 224, 56_000_000, {}, {}, inputs=None
    )
    result = results.validate(
        forged(row_p50_ms=p50, row_p90_ms=p50 + 2, **({"user_agent": user_agent} if user_agent else {}))
    )
    device_store.save(bench, result, natives={"fp32": {"p50_ms": native, "threads": 1}})


def test_before_any_browser_the_button_and_its_picker(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    at = open_page("pages/backbones.py", QUERY)
    assert at.button(key="dep.browser.go").label == "Measure in this browser"
    assert at.selectbox(key="dep.browser.model").value == "mobilenetv3_small_100"
    assert any("No browser measured yet" in i for i in texts(at, "info")) and not at.exception


def test_devices_measured_earlier_stay_on_the_chart_the_table_and_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    stored_device()
    stored_device(
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) Chrome/131.0.0.0 Mobile Safari/537.36", p50=45.0, native=2.0
    )
    at = open_page("pages/backbones.py", QUERY)
    words = " ".join(texts(at, "markdown"))
    assert re.search(
        r"slower than native ONNX Runtime here \(fp32\): 8\.0× on wasm-1 \([^)]*native at 1 thread", words
    )
    assert re.search(r"slower than native ONNX Runtime here \(fp32\): 22\.5× on wasm-1 \(", words)
    devices = next(d.value for d in at.dataframe if "× native here" in getattr(d.value, "columns", []))
    assert sorted(devices["median ms"]) == [16.0, 45.0] and set(devices["fits 30 ms"]) == {True, False}
    assert {"Chrome 131 on Android, 2 cores", "Chromium (headless) 156 on Linux, 2 cores"} == set(
        devices["device"]
    )
    fits = next(d.value for d in at.dataframe if "within the budget" in getattr(d.value, "columns", []))
    assert "Chromium (headless) 156 on Linux, 2 cores · wasm-1 · fp32" in set(fits["runtime"])
    assert not any("Android" in r for r in fits["runtime"])  # 45 ms: over the 30 ms budget
    spec = at.get("plotly_chart")[0].proto.spec
    assert "Chrome 131 on Android" in spec and '"diamond"' in spec
    phone = next(r["device"]["id"] for r in device_store.stored() if r["device"]["os"] == "Android")
    at.selectbox(key="dep.browser.dev").set_value(phone).run()
    at.text_input(key="dep.browser.devname").set_value("my Pixel 7").run()
    at.button(key="dep.browser.rename").click().run()
    assert any("**my Pixel 7**" in m for m in texts(at, "markdown"))
    at.selectbox(key="dep.browser.dev").set_value(phone).run()
    at.button(key="dep.browser.forget").click().run()
    assert [r["device"]["os"] for r in device_store.stored()] == ["Linux"] and not at.exception


def test_a_phone_gets_the_link_with_the_token_and_its_qr_code_when_the_server_is_open(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    at = open_page("pages/backbones.py", QUERY)
    assert any("start it with `--server.address 0.0.0.0`" in m for m in texts(at, "markdown"))
    assert any("one WASM thread" in c for c in texts(at, "caption"))
    from core.web import server as webapp
    from pages import _browser

    monkeypatch.setattr(_browser, "server_address", lambda: ("192.168.1.20", 8501))
    monkeypatch.setenv(webapp.TOKEN_ENV, "phone-token")
    at = open_page("pages/backbones.py", QUERY)
    assert "http://192.168.1.20:8501/?token=phone-token" in [c.value for c in at.code]
    assert len(at.get("image")) == 1 and not at.exception


def test_a_block_pair_measured_in_a_browser_gets_a_bar_per_setup(tmp_path, monkeypatch):
    """B against A in each browser setup both were measured in, beside the MAC ratio (the Deploy tab's pair
    chart)."""
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.present import deploy_plots
    from pages import _browser as browser_view

    for key, p50 in (("block:conv", 12.0), ("block:depthwise_separable", 1.5)):
        bench = browser.Bench(None, key, key, 56, 1000, {}, {}, inputs=None)
        device_store.save(
            bench,
            results.validate(
                forged(
                    row_p50_ms=p50,
                    row_p10_ms=p50 * 0.9,
                    row_p90_ms=p50 * 1.1,
                    user_agent="Mozilla/5.0 <b>x</b> Chrome/131.0 Android",
                )
            ),
            label="my <b>phone</b>",
        )
    rows = browser_view.pair_rows("block:conv", "block:depthwise_separable", 8.47)
    assert list(rows["runtime"]) == ["my <b>phone</b> · wasm-1 · fp32"]
    assert rows["measured speed-up"].tolist() == [8.0] and rows["MAC ratio"].tolist() == [8.47]
    assert browser_view.pair_rows("block:conv", "block:other", 2.0).empty  # B never measured there: no bar
    fig = deploy_plots.deploy_pair(rows, "depthwise separable")
    assert fig.data[0].x[0] == "wasm-1 fp32"  # the device is named once, under the axis
    assert fig.data[0].textangle == 0  # never written sideways in a narrow bar
    title = fig.layout.xaxis.title.text
    assert (
        "<b>" not in title
        and "phone" in title
        and title.startswith("runtime<br>browser bars measured in<br>")
    )


def test_a_line_that_holds_for_both_blocks_of_a_pair_is_said_once_and_names_them(monkeypatch):
    """The Deploy pair ran webgpu on both blocks: one "webgpu int8: not run" line naming both, not two
    alike."""
    from types import SimpleNamespace

    from pages import _browser

    said = []
    monkeypatch.setattr(
        _browser,
        "st",
        SimpleNamespace(
            warning=lambda t: said.append(("warning", t)), error=lambda t: said.append(("error", t))
        ),
    )
    gpu = {"error": "", "precisions": {"fp32": {}, "int8": {"error": "not run on WebGPU"}}}
    done = [
        (SimpleNamespace(label="direct 3x3"), {"webgpu": gpu, "wasm-N": {"error": "not isolated"}}),
        (SimpleNamespace(label="1x1 bottleneck"), {"webgpu": gpu}),
    ]
    _browser.say(done)
    said = [(k, t.replace("\\", "")) for k, t in said]  # fmt.md escapes Markdown
    assert said == [
        ("warning", "webgpu int8 (direct 3x3, 1x1 bottleneck): not run on WebGPU"),
        ("warning", "wasm-N: not isolated"),
    ]


def test_a_result_that_does_not_answer_this_pages_bench_is_refused_in_one_line_and_nothing_is_stored(
    tmp_path, monkeypatch
):
    """What the browser sends back is hostile input: another page's token, a bench index out of range or
    text that is not JSON is refused with its reason, and nothing reaches the store."""
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from pages import _browser as browser_view

    bench = browser.Bench(None, "block:conv", "block:conv", 56, 1000, {}, {}, inputs=None)
    good = {"token": "t0", "results": [{"bench": 0, "result": forged()}]}
    cases = {
        "another page's token": {**good, "token": "t1"},
        "a bench index out of range": {**good, "results": [{"bench": 3, "result": forged()}]},
        "results that are not a list": {**good, "results": {"bench": 0}},
    }
    for what, sent in cases.items():
        said = browser_view.received(json.dumps(sent), "t0", [bench], None)
        assert isinstance(said, str) and said.startswith(
            "The browser's result was refused, nothing was stored: "
        ), what
    assert browser_view.received("{not json", "t0", [bench], None).startswith(
        "The browser's result was refused"
    )
    assert "the result does not answer this page" in browser_view.received("[1, 2]", "t0", [bench], None)
    assert device_store.stored() == []
