"""Measure in this browser, in real Chromium: the app's page is cross-origin isolated (its own headers),
every file (onnxruntime-web included) comes from the app itself, and "Measure in this browser" on the
Deployment tab runs a backbone here with parity first; the result appears, is in the store, and is still
there after a reload."""

import re
import tempfile

import pytest
from playwright.sync_api import expect

from benchmarks.harness import serve, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fresh():
    data = tempfile.mkdtemp(prefix="archscope-browser-e2e-")
    with serve(data) as url:
        yield url, data


def test_measure_in_this_browser_shows_stores_and_keeps_the_result(page, fresh, monkeypatch):
    url, data = fresh
    page.set_default_timeout(300_000)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{url}/backbones?bb.tab=Deployment&dep.models=mobilenetv3_small_100")
    wait_idle(page)
    assert page.evaluate("crossOriginIsolated") is True and page.evaluate("isSecureContext") is True
    panel = page.locator("[data-testid='stTabPanel']:visible")
    expect(panel.get_by_text("No browser measured yet")).to_be_visible(timeout=60_000)
    panel.get_by_role("button", name="Measure in this browser").click()
    expect(panel.get_by_text("Measured in this browser and kept")).to_be_visible(timeout=300_000)
    # the button drawn disabled while the bench ran is enabled again, and the "keep this tab open" line is
    # gone
    expect(panel.get_by_role("button", name="Measure in this browser")).to_be_enabled(timeout=5_000)
    expect(panel.get_by_text("keep this tab open", exact=False)).to_have_count(0)
    expect(panel.get_by_text("slower than native ONNX Runtime here (fp32):", exact=False)).to_be_visible()
    expect(
        panel.get_by_text(
            re.compile(r"\d+\.\d× on wasm-1 \(mobilenetv3_small_100 @\W?224, native at 1 thread")
        )
    ).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    # onnxruntime-web, the bench and the model all came from the app itself: nothing from anywhere else
    assert any(r.endswith("/ort/ort-wasm-simd-threaded.wasm") for r in requests)
    assert all(r.startswith(url) or r.startswith(("data:", "blob:")) for r in requests), [
        r for r in requests if not r.startswith(url)
    ]
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", data)
    from core.deploy import devices

    rows = devices.stored("mobilenetv3_small_100")
    assert {(r["precision"], r["setup"]) for r in rows} == {
        ("fp32", "wasm-1"),
        ("int8", "wasm-1"),
        ("fp32", "wasm-N"),
        ("int8", "wasm-N"),
    }
    for r in rows:
        assert r["device"]["cross_origin_isolated"] is True and r["row"]["runs"] >= 1
        if r["precision"] == "fp32":
            assert r["row"]["parity"]["max_abs_diff"] <= 1e-4 and r["row"]["parity"]["top1_agreement"] == 1.0
    page.reload()
    wait_idle(page)
    expect(panel.get_by_text("slower than native ONNX Runtime here (fp32):", exact=False)).to_be_visible(
        timeout=60_000
    )
    expect(
        panel.get_by_text("HeadlessChrome", exact=False)
        .or_(panel.get_by_text("Chromium (headless)", exact=False))
        .first
    ).to_be_visible()
