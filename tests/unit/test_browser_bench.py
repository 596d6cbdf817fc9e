"""The browser bench (core/deploy/browser.py): the vendored onnxruntime-web files are the pinned ones, the
bench's server hands out exactly its three folders, cross-origin isolated, a result from a browser is
refused field by field when forged or broken (nothing stored), and, in headless Chromium, a model runs
with parity first and is stored like a visitor's."""

import hashlib
import json
import math
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.deploy import bench_server, browser, devices
from core.deploy import browser_checks as results

GOOD = {
    "setup": "wasm-1",
    "ort_version": "1.30.0",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
    "hardware_concurrency": 2,
    "device_memory_gb": 8,
    "cross_origin_isolated": True,
    "secure_context": True,
    "threads": 1,
    "results": [
        {
            "precision": "fp32",
            "download_ms": 3.0,
            "session_ms": 40.0,
            "first_run_ms": 20.0,
            "cold_start_ms": 63.0,
            "model_bytes": 10_000,
            "runs": 50,
            "p10_ms": 15.0,
            "p50_ms": 16.0,
            "p90_ms": 18.0,
            "parity": {"max_abs_diff": 2e-6, "top1_agreement": 1.0, "inputs": 32},
        }
    ],
}


def forged(**change):
    data = json.loads(json.dumps(GOOD))
    row = data["results"][0]
    for k, v in change.items():
        if k.startswith("row_"):
            row[k[4:]] = v
        else:
            data[k] = v
    return data


def test_the_vendored_runtime_is_the_pinned_one_with_its_licence():
    sums = (bench_server.ORT_DIR / "SHA256SUMS").read_text().split("\n")
    listed = {line.split()[1]: line.split()[0] for line in sums if line.strip()}
    assert set(listed) == {
        "ort.wasm.min.mjs",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
        "ort.webgpu.min.mjs",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    }
    assert set(listed) | {"LICENSE", "README.md", "SHA256SUMS"} == {
        f.name for f in bench_server.ORT_DIR.iterdir()
    }
    for name, digest in listed.items():
        assert hashlib.sha256((bench_server.ORT_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (bench_server.ORT_DIR / "LICENSE").read_text()
    assert 'ORT_VERSION = "1.30.0"' in (bench_server.BENCH_DIR / "bench.mjs").read_text()
    assert results.ORT_WEB_VERSION == "1.30.0"


def test_a_good_result_passes_and_is_rebuilt_from_known_fields_only():
    data = forged(extra="<script>", row_sneaky=1)
    clean = results.validate(data)
    assert clean["setup"] == "wasm-1" and clean["results"][0]["p50_ms"] == 16.0
    assert "extra" not in clean and "sneaky" not in clean["results"][0]
    assert results.parse_user_agent(GOOD["user_agent"]) == {
        "os": "Linux",
        "browser": "Chromium (headless)",
        "browser_version": "156",
    }
    gpu = results.validate(
        forged(
            setup="webgpu",
            webgpu_adapter={"vendor": "apple", "architecture": "metal-3", "fallback": "yes", "secret": 1},
        )
    )
    assert gpu["webgpu_adapter"] == {
        "vendor": "apple",
        "architecture": "metal-3",
        "device": "",
        "description": "",
        "fallback": False,
    }
    phone = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/131.0.0.0 Mobile Safari/537.36"
    )
    assert results.parse_user_agent(phone) == {"os": "Android", "browser": "Chrome", "browser_version": "131"}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"setup": "wasm-999"}, "unknown setup"),
        ({"row_p50_ms": float("nan")}, "not a finite number"),
        ({"row_p50_ms": -1.0}, "outside"),
        ({"row_p50_ms": 1e12}, "outside"),
        ({"row_p50_ms": "16"}, "not a finite number"),
        ({"row_runs": 10_000}, "outside"),
        ({"row_runs": 0}, "a latency without any run"),
        ({"row_p10_ms": 30.0}, "p10 ≤ p50 ≤ p90"),
        ({"row_precision": "int4"}, "unknown or repeated precision"),
        ({"row_parity": None}, "an fp32 latency without its whole parity"),
        ({"row_parity": {}}, "an fp32 latency without its whole parity"),
        (
            {"row_parity": {"max_abs_diff": None, "top1_agreement": 0.0, "inputs": 32}},
            "without its whole parity",
        ),
        (
            {"row_parity": {"max_abs_diff": 1e-6, "top1_agreement": 1.0, "inputs": None}},
            "without its whole parity",
        ),
        ({"threads": 1024}, "outside 1 to 8"),
        ({"threads": 9, "hardware_concurrency": 16}, "outside 1 to 8"),
        ({"threads": 4, "hardware_concurrency": 2}, "more than the 2 cores"),
        (
            {"row_parity": {"max_abs_diff": 0.5, "top1_agreement": 1.0, "inputs": 32}},
            "over the parity tolerance",
        ),
        ({"row_parity": {"max_abs_diff": 1e-6, "top1_agreement": 1.5, "inputs": 32}}, "outside"),
        ({"hardware_concurrency": True}, "not a finite number"),
        ({"user_agent": ["a"]}, "not text"),
        ({"results": {"a": 1}}, "not a list"),
        ({"results": [GOOD["results"][0]] * 3}, "not a list"),
        ({"user_agent": "x" * 100_000}, "over the"),
        ({"webgpu_adapter": {"vendor": "x"}}, "belongs to the webgpu setup"),
        ({"setup": "webgpu"}, "a webgpu result without its adapter"),
        ({"setup": "webgpu", "webgpu_adapter": "nvidia"}, "belongs to the webgpu setup"),
        ({"setup": "webgpu", "webgpu_adapter": {"vendor": ["x"]}}, "not text"),
        (
            {"setup": "webgpu", "webgpu_adapter": {"vendor": "google"}, "row_precision": "int8"},
            "WebGPU int8 latency",
        ),
    ],
)
def test_a_forged_or_broken_result_is_refused_in_one_line(change, words):
    with pytest.raises(results.BrowserResultError, match=words.replace("(", r"\(")) as err:
        results.validate(forged(**change))
    assert "\n" not in str(err.value)


def test_nothing_of_a_refused_result_is_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    bench = browser.Bench(tmp_path, "m", "mobilenetv3_small_100", 96, 1000, {}, {}, inputs=None)
    with pytest.raises(results.BrowserResultError):
        devices.save(bench, results.validate(forged(row_p50_ms=-3.0)))
    assert devices.stored() == []
    keys = devices.save(bench, results.validate(GOOD), label="my laptop")
    rows = devices.stored("mobilenetv3_small_100")
    assert len(keys) == len(rows) == 1 and rows[0]["device"]["label"] == "my laptop"
    assert rows[0]["row"]["p50_ms"] == 16.0 and rows[0]["precision"] == "fp32" and rows[0]["threads"] == 1


def test_the_bench_server_hands_out_its_three_folders_cross_origin_isolated(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path.parent / "secret.txt").write_text("no")
    with bench_server.serve(tmp_path) as url:
        for path, kind in (
            ("/ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
            ("/ort/ort.wasm.min.mjs", "text/javascript"),
            ("/bench/bench.html", "text/html"),
            ("/data/config.json", "application/json"),
        ):
            with urllib.request.urlopen(url + path) as res:
                assert res.status == 200 and res.headers["Content-Type"].startswith(kind), path
                assert res.headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert res.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        for bad in (
            "/data/../secret.txt",
            "/data/%2e%2e/secret.txt",
            "/etc/passwd",
            "/data/.hidden",
            "/",
            "/ort/LICENSE/../../../secret.txt",
            "/data/nothing.json",
        ):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url + bad)
            assert err.value.code == 404, bad


@pytest.mark.slow
def test_a_model_runs_in_headless_chromium_with_parity_first_and_is_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    if not Path(browser.CHROMIUM).exists():
        pytest.fail(f"{browser.CHROMIUM} is missing: install Debian's chromium")
    from core.deploy.deployable import Deployable

    # with Chromium's software WebGPU adapter (SwiftShader), so the webgpu setup runs here too; 10 warm runs a
    # setup (the suite's time; the protocol's 50 are the default)
    out = browser.measure(
        Deployable.model("mobilenetv3_small_100", 64),
        ("fp32", "int8"),
        ("wasm-1", "wasm-N", "webgpu"),
        webgpu="software",
        max_runs=10,
    )
    one, many, gpu = out["setups"]["wasm-1"], out["setups"]["wasm-N"], out["setups"]["webgpu"]
    assert gpu["webgpu_adapter"]["architecture"] == "swiftshader" and gpu["threads"] == 1 and not gpu["error"]
    gpu32, gpu8 = gpu["precisions"]["fp32"], gpu["precisions"]["int8"]
    assert (
        gpu32["parity"]["max_abs_diff"] <= 1e-4
        and gpu32["parity"]["top1_agreement"] == 1.0
        and gpu32["p50_ms"] > 0
    )
    assert gpu8["p50_ms"] is None and "WebGPU int8 is known to give wrong results" in gpu8["error"]
    assert one["cross_origin_isolated"] is True and one["threads"] == 1 and many["threads"] >= 2
    for entry in (one, many):
        fp32, int8 = entry["precisions"]["fp32"], entry["precisions"]["int8"]
        assert fp32["parity"]["max_abs_diff"] <= 1e-4 and fp32["parity"]["top1_agreement"] == 1.0
        assert (
            fp32["runs"] == 10
            and fp32["native"]["runs"] == 10
            and 0 < fp32["p10_ms"] <= fp32["p50_ms"] <= fp32["p90_ms"]
        )
        assert math.isclose(fp32["browser_over_native"], fp32["p50_ms"] / fp32["native"]["p50_ms"])
        assert fp32["native"]["threads"] == entry["threads"]
        assert int8["parity"]["top1_agreement"] is not None and int8["p50_ms"] > 0
    stored = devices.stored("mobilenetv3_small_100")
    assert sorted((r["setup"], r["precision"], r["threads"]) for r in stored) == sorted(
        [
            ("wasm-1", "fp32", 1),
            ("wasm-1", "int8", 1),
            ("wasm-N", "fp32", many["threads"]),
            ("wasm-N", "int8", many["threads"]),
            ("webgpu", "fp32", 1),
        ]
    )
    assert [r["device"]["webgpu_adapter"]["architecture"] for r in stored if r["setup"] == "webgpu"] == [
        "swiftshader"
    ]


def test_a_device_is_renamed_and_forgotten(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.deploy import parity

    assert results.TOLERANCE == parity.TOLERANCE  # one fp32 tolerance, server and browser
    bench = browser.Bench(tmp_path, "m", "mobilenetv3_small_100", 96, 1000, {}, {}, inputs=None)
    devices.save(bench, results.validate(GOOD))
    other = forged(
        user_agent="Mozilla/5.0 (Linux; Android 14; Pixel 7) Chrome/131.0.0.0 Mobile Safari/537.36"
    )
    devices.save(bench, results.validate(other))
    ids = {r["device"]["id"] for r in devices.stored()}
    assert len(ids) == 2
    phone = next(r["device"]["id"] for r in devices.stored() if r["device"]["os"] == "Android")
    assert devices.rename_device(phone, "  my Pixel 7 ") == 1
    assert {r["device"]["label"] for r in devices.stored()} >= {"my Pixel 7"}
    with pytest.raises(ValueError):
        devices.rename_device(phone, "   ")
    assert devices.forget_device(phone) == 1 and {r["device"]["id"] for r in devices.stored()} == ids - {
        phone
    }


@pytest.mark.parametrize(
    "sent, words",
    [
        ("not json at all", "not JSON the bench sends"),
        ("[" * 200_000 + "]" * 200_000, "over the"),  # bounded before it is parsed
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ("[" * 5_000 + "]" * 5_000, "nested too deeply"),
        ('{"token": "t", "results": [{"bench": 0, "result": {"threads": ' + "9" * 5_000 + "}}]}", "not JSON"),
        (12345, "does not answer this page's bench"),
        ('{"token": "other", "results": []}', "does not answer this page's bench"),
        ('{"token": "t", "results": [{"bench": true, "result": {}}]}', "names no bench of this page"),
    ],
    ids=[
        "not-json",
        "huge",
        "50000-deep",
        "5000-deep",
        "5000-digits",
        "a-number",
        "other-token",
        "bench-true",
    ],
)
def test_whatever_its_shape_or_depth_a_malformed_payload_is_one_refused_line(sent, words):
    with pytest.raises(results.BrowserResultError, match=words) as err:
        results.split_sent(sent, "t", 1)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_a_deep_or_huge_single_result_is_refused_before_it_is_read():
    with pytest.raises(results.BrowserResultError, match="nested too deeply|over the"):
        results.validate("[" * 5_000 + "]" * 5_000)
    deep: list = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(results.BrowserResultError, match="cannot be read as JSON"):
        results.validate(deep)


def test_a_changed_byte_of_the_vendored_runtime_is_never_served(tmp_path, monkeypatch, capsys):
    import asyncio
    import shutil
    import threading
    import urllib.error
    import urllib.request

    from core.deploy import bench_server as bench
    from core.web import server as webapp

    assert not any(bench.verify_runtime(bench.ORT_DIR).values())  # as shipped: every file matches
    changed = tmp_path / "ort"
    shutil.copytree(bench.ORT_DIR, changed)
    data = bytearray((changed / "ort.wasm.min.mjs").read_bytes())
    data[100] ^= 1
    (changed / "ort.wasm.min.mjs").write_bytes(bytes(data))
    verdicts = bench.verify_runtime(changed)
    assert (
        "does not match SHA256SUMS" in verdicts["ort.wasm.min.mjs"] and verdicts["ort.webgpu.min.mjs"] == ""
    )
    assert "assets/ort/ort.wasm.min.mjs does not match SHA256SUMS" in capsys.readouterr().err  # the log

    # the app's route: 503 in words for the changed file, the others served
    monkeypatch.setattr(webapp, "ORT_DIR", changed)
    request = type("Request", (), {})

    def get(name):
        r = request()
        r.path_params = {"name": name}
        box = []
        # a thread of its own: an earlier test in this process may have left an asyncio loop running here
        thread = threading.Thread(target=lambda: box.append(asyncio.run(webapp._ort(r))))
        thread.start()
        thread.join()
        return box[0]

    refused = get("ort.wasm.min.mjs")
    assert refused.status_code == 503 and b"does not match SHA256SUMS" in refused.body
    assert get("ort.webgpu.min.mjs").status_code == 200 and get("LICENSE").status_code == 404

    # the CLI's bench server too
    from http.server import ThreadingHTTPServer

    roots = {"ort": changed, "bench": bench.BENCH_DIR, "data": tmp_path}
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (bench.Handler,), {"roots": roots}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/ort/ort.wasm.min.mjs", timeout=10)
        assert err.value.code == 503
        assert urllib.request.urlopen(f"{base}/ort/ort.webgpu.min.mjs", timeout=10).status == 200
    finally:
        server.shutdown()
        server.server_close()
