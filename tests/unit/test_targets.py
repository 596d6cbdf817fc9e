"""The one registry of targets (core.deploy.targets): server runtimes and browser setups are entries of it,
read when called; an entry without a label or a colour is refused at registration; a made-up target in
one file (tests/plugins/channels_last_target.py) reaches the Deployment tab's chart, the tables and the
CLI in its own colour."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.deploy import targets
from core.deploy.runtimes import ServerAdapter
from core.deploy.setups import BrowserAdapter
from core.present import style

ROOT = Path(__file__).resolve().parents[2]
# the CLI's arguments that measure the made-up target beside eager, small and short
MEASURE_MADE_UP = [
    "measure",
    "mobilenetv3_small_100",
    "--resolution",
    "96",
    "--runtimes",
    "eager,eager-cl",
    "--max-time",
    "0.5",
]


@pytest.fixture()
def made_up():
    """The made-up target registered for one test, and gone after it."""
    module = importlib.import_module("tests.plugins.channels_last_target")
    if module.KEY not in targets.keys():
        module = importlib.reload(module)
    yield module
    targets.unregister_target(module.KEY)


def test_server_runtimes_and_browser_setups_are_entries_of_one_registry():
    assert targets.keys(targets.SERVER) == ("eager", "compile", "onnx", "onnx-int8")
    assert targets.keys(targets.BROWSER) == ("wasm-1", "wasm-N", "webgpu")
    assert all(isinstance(t.adapter, ServerAdapter) for t in targets.list_targets(targets.SERVER))
    assert all(isinstance(t.adapter, BrowserAdapter) for t in targets.list_targets(targets.BROWSER))
    assert targets.get_target("webgpu").precisions == ("fp32",)  # its int8 gives wrong results
    assert targets.get_target("onnx-int8").precisions == ("int8",)
    assert targets.label_of("onnx") == "ONNX Runtime fp32"


def test_every_target_has_its_own_colour_and_none_is_another_concepts():
    colours = [t.colour.lower() for t in targets.list_targets()]
    assert len(set(colours)) == len(colours)
    concepts = {c.lower() for family in style.CONCEPTS.values() for c in family.values()}
    others = concepts | {c.lower() for c in style.RUNS} | {style.FRONTIER.lower(), style.PUBLISHED.lower()}
    assert not set(colours) & others


@pytest.mark.parametrize(
    "change, says",
    [
        ({"colour": ""}, "colour as #rrggbb"),
        ({"colour": None}, "colour as #rrggbb"),
        ({"colour": "teal"}, "colour as #rrggbb"),
        ({"colour": "#31a354"}, "already another target's"),  # eager's
        ({"label": ""}, "needs a label"),
        ({"label": "PyTorch eager"}, "already another target's"),
        ({"key": "eager"}, "already registered"),
        ({"key": "has space"}, "key must be"),
        ({"where": "phone"}, "runs on 'phone'"),
        ({"precisions": ()}, "at least one precision"),
        ({"adapter": None}, "needs an adapter"),
    ],
)
def test_an_entry_without_a_label_or_colour_is_refused_at_registration(change, says):
    entry = {
        "key": "made-up",
        "label": "made up",
        "colour": "#00a6a6",
        "where": "server",
        "precisions": ("fp32",),
        "adapter": ServerAdapter(lambda ctx: None),
    }
    before = targets.keys()
    with pytest.raises(ValueError, match=says):
        targets.register_target(**{**entry, **change})
    assert targets.keys() == before  # nothing half-registered


def test_the_registry_is_read_when_called_so_a_later_target_is_listed_everywhere(made_up):
    assert targets.keys(targets.SERVER)[-1] == "eager-cl"
    assert targets.parse_targets("eager-cl") == ("eager", "eager-cl")  # eager first: the speed-up's base
    assert targets.colours(targets.SERVER)["PyTorch channels-last"] == "#00a6a6"
    with pytest.raises(ValueError, match="choose from eager, compile, onnx, onnx-int8, eager-cl"):
        targets.parse_targets("tflite")


def test_a_made_up_target_is_measured_and_drawn_in_its_own_colour_on_the_deployment_tab(
    made_up, tmp_path, monkeypatch
):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.deploy.deployable import Deployable
    from core.deploy.measure import measure_group
    from core.measure.settings import default_threads
    from tests.app._util import open_page

    [result] = measure_group(
        [Deployable.model("mobilenetv3_small_100")], ("eager", "eager-cl"), default_threads(), max_time_s=0.5
    )
    row = result["runtimes"]["eager-cl"]
    assert row["label"] == "PyTorch channels-last" and row["median_ms"] > 0 and not row["error"]
    at = open_page("pages/backbones.py", {"bb.tab": "Deployment", "dep.models": "mobilenetv3_small_100"})
    assert "eager-cl" in at.multiselect(key="dep.runtimes").value  # offered and chosen by default
    [chart] = at.get("plotly_chart")
    import json

    spec = json.loads(chart.proto.spec)
    trace = next(t for t in spec["data"] if t.get("name") == "PyTorch channels-last")
    assert trace["marker"]["color"] == "#00a6a6" and trace["marker"]["symbol"] == "circle"  # a server's
    table = next(d.value for d in at.dataframe if "speed-up vs eager" in getattr(d.value, "columns", []))
    assert "PyTorch channels-last" in set(table["runtime"])
    assert not at.exception


def test_a_made_up_target_is_a_bar_of_the_block_explorers_deploy_tab_in_its_colour(
    made_up, tmp_path, monkeypatch
):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    import base64

    import numpy as np
    import plotly.io as pio

    from core.deploy.measure import measure_group
    from core.measure.settings import default_threads
    from tests.app._util import open_page
    from tests.seed import deploy_targets

    pair = deploy_targets()  # the Deploy tab's default preset: a direct 3x3 against the 1x1 bottleneck
    measure_group(pair, ("eager", "eager-cl"), default_threads(), max_time_s=0.5)
    at = open_page("pages/blocks.py", {"blocks.tab": "Deploy", "dep.runtimes": ["eager", "eager-cl"]})
    [chart] = at.get("plotly_chart")
    bars = next(t for t in pio.from_json(chart.proto.spec).data if t.type == "bar")
    colours = dict(zip(bars.x, bars.marker.color))
    assert colours == {"PyTorch eager": "#31a354", "PyTorch channels-last": "#00a6a6"}
    speedups = np.frombuffer(base64.b64decode(bars.y["bdata"]), bars.y["dtype"])  # Plotly's typed array
    assert len(speedups) == 2 and (speedups > 0).all()  # how many times faster the bottleneck runs in each
    assert not at.exception


def test_a_made_up_target_is_a_row_of_the_measure_clis_table(made_up, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    from core.deploy.__main__ import main

    code = main(MEASURE_MADE_UP)
    out = capsys.readouterr().out
    assert code == 0
    line = next(line for line in out.splitlines() if "PyTorch channels-last" in line)
    assert "ok" in line


@pytest.mark.slow
def test_a_target_module_named_in_archscope_targets_is_a_runtime_of_the_command_line(tmp_path):
    env = {
        **os.environ,
        "ARCHSCOPE_DATA_DIR": str(tmp_path),
        "ARCHSCOPE_TARGETS": "tests.plugins.channels_last_target",
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-m", "core.deploy", *MEASURE_MADE_UP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "PyTorch channels-last" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "core.deploy", "measure", "mobilenetv3_small_100", "--runtimes", "eager"],
        cwd=ROOT,
        env={**env, "ARCHSCOPE_TARGETS": "no.such.module"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "ARCHSCOPE_TARGETS: the target module 'no.such.module'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_browser_setup_tells_the_bench_page_its_backend_and_threads():
    assert targets.get_target("wasm-N").adapter.query("wasm-N") == "setup=wasm-N&backend=wasm&threads=N"
    assert targets.get_target("webgpu").adapter.query("webgpu") == "setup=webgpu&backend=webgpu&threads=1"
    for bad in (("gpu", "1"), ("wasm", "0"), ("wasm", "9"), ("wasm", "all")):
        with pytest.raises(ValueError, match="browser"):
            BrowserAdapter(*bad)


@pytest.mark.slow
def test_a_made_up_browser_target_runs_in_chromium_and_is_stored(tmp_path, monkeypatch):
    """tests/plugins/wasm_two_target.py alone: the bench page starts two WASM threads because the entry
    says so, the result passes the checks under its key, and the devices store keeps it."""
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    module = importlib.import_module("tests.plugins.wasm_two_target")
    if module.KEY not in targets.keys():
        module = importlib.reload(module)
    try:
        from core.deploy import browser, devices
        from core.deploy.deployable import Deployable

        out = browser.measure(
            Deployable.model("mobilenetv3_small_100", 64), ("fp32",), ("wasm-2",), max_runs=5
        )
        entry = out["setups"]["wasm-2"]
        assert entry["threads"] == 2 and entry["cross_origin_isolated"] is True and not entry["error"]
        fp32 = entry["precisions"]["fp32"]
        assert (
            fp32["parity"]["max_abs_diff"] <= 1e-4 and fp32["p50_ms"] > 0 and fp32["native"]["threads"] == 2
        )
        assert [(r["setup"], r["threads"]) for r in devices.stored("mobilenetv3_small_100")] == [
            ("wasm-2", 2)
        ]
    finally:
        targets.unregister_target(module.KEY)
