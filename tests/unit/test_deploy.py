"""The deployment package: ONNX parity on blocks and backbones, a refused over-tolerance export, resnet50's
int8 graph with quantized convolutions, why int8 can be slower (float nodes), the runtimes' rows and the
CLI's errors."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.blocks import create_block
from core.deploy import DeployError, calibration, report, runtimes
from core.deploy import parity as par
from core.deploy.__main__ import main
from core.deploy.deployable import Deployable
from core.deploy.export import export
from core.deploy.measure import cached, measure_group
from core.deploy.quantize import choose, node_precision, quantize


def feature_inputs(c: int, hw: int, n: int = 32) -> np.ndarray:
    return calibration.feature_maps(n, (c, hw, hw))[0]


@pytest.mark.parametrize(
    "block, cfg, c, hw",
    [
        ("conv", {"in_chs": 32, "out_chs": 32}, 32, 14),
        ("depthwise_separable", {"in_chs": 32, "out_chs": 64}, 32, 14),
        ("mbconv", {"in_chs": 16, "out_chs": 16}, 16, 14),
    ],
)
def test_blocks_export_to_onnx_within_tolerance(tmp_path, block, cfg, c, hw):
    model = create_block(block, **cfg).eval()
    ex = export(model, (1, c, hw, hw), tmp_path / "b.onnx")
    assert ex.exporter == "torchscript (dynamo=False)" and ex.opset == 18
    sess = runtimes.session(ex.path, 1)
    assert sess.get_inputs()[0].shape[0] == "batch"  # a dynamic batch axis
    p = par.compare(model, sess, feature_inputs(c, hw))
    assert p.n_inputs == 32 and p.max_abs_diff <= 1e-4 and p.ok


@pytest.mark.slow
@pytest.mark.parametrize("arch, res", [("mobilenetv3_small_100", 96), ("efficientnet_lite0", 96)])
def test_backbones_export_within_tolerance_and_agree_on_every_top1(tmp_path, arch, res):
    import timm

    model = timm.create_model(arch, exportable=True).eval()
    images, source = calibration.images(32, res)
    assert source.startswith("the generated demo set")
    ex = export(model, (1, 3, res, res), tmp_path / "m.onnx")
    p = par.compare(model, runtimes.session(ex.path, 1), images)
    assert p.max_abs_diff <= 1e-4 and p.top1_agreement == 1.0


class TracedBranch(nn.Module):
    """Python control flow on the data: the TorchScript exporter records the branch its example input took."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        nn.init.constant_(self.conv.weight, 0.1)  # the output's sign is the input's
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        y = self.conv(x)
        if float(y.mean()) > 0:
            return y * 2
        return y * -3


def test_an_export_over_tolerance_is_refused_with_both_figures(tmp_path):
    torch.manual_seed(0)
    model = TracedBranch().eval()
    inputs = np.concatenate([np.full((4, 3, 8, 8), 5, np.float32), np.full((4, 3, 8, 8), -5, np.float32)])
    with pytest.raises(
        DeployError,
        match=r"refused: the ONNX export does not match the PyTorch model: max abs "
        r"difference [\d.e+-]+ over 8 inputs \(tolerance 0.0001\).*it is not timed",
    ):
        runtimes.onnx_fp32(model, (1, 3, 8, 8), tmp_path, 1, inputs)


@pytest.mark.slow
def test_resnet50_int8_graph_has_quantized_convolutions(tmp_path):
    import timm

    model = timm.create_model("resnet50", exportable=True).eval()
    ex = export(model, (1, 3, 32, 32), tmp_path / "r50.onnx")  # the graph, not the size, is under test
    calib, source = calibration.images(16, 32)
    q = quantize(ex.path, tmp_path / "r50.int8.onnx", calib, source)
    assert q.config.kept_in_float == ("/conv1/Conv", "/fc/Gemm")  # the image's conv, the logits
    assert q.quantized_nodes["Conv"] == 52 and "Conv" not in q.float_nodes  # every other convolution in int8
    assert q.config.format == "QDQ" and q.config.per_channel and q.config.activation_type == "uint8"
    assert q.config.calibration_count == 16 and q.config.calibration_source.startswith(
        "the generated demo set"
    )
    import onnx

    ops = {n.op_type for n in onnx.load(q.path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops


def test_the_activation_type_and_reduce_range_follow_the_cpu():
    assert choose({"vnni": True}).reduce_range is False
    assert choose({"vnni": False}).reduce_range is True
    assert choose({"vnni": False}).activation_type == "uint8"


@pytest.mark.slow
def test_hard_swish_and_squeeze_excite_stay_in_float(tmp_path):
    import timm

    model = timm.create_model("mobilenetv3_small_100", exportable=True).eval()
    ex = export(model, (1, 3, 64, 64), tmp_path / "m.onnx")
    q = quantize(ex.path, tmp_path / "m.int8.onnx", calibration.images(16, 64)[0], "demo")
    floats, quants = q.float_nodes, q.quantized_nodes
    assert node_precision(q.path)[0] == {**floats, "Conv": 1, "Gemm": 1}  # with the ends kept on purpose
    assert floats == {"HardSwish": 19, "ReduceMean": 9, "HardSigmoid": 9}  # 9 squeeze-excites, 19 activations
    assert quants["Conv"] == 52  # all but the stem's, kept in float with the classifier


def test_no_compiler_is_a_row_with_the_reason(monkeypatch):
    monkeypatch.setattr(runtimes, "compiler", lambda: None)
    p = runtimes.compiled(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8))
    assert p.call is None and p.error.startswith("torch.compile needs a C++ compiler (g++) on a CPU")
    assert "apt-get install g++" in p.error


def test_a_compile_that_overruns_its_time_is_stopped(monkeypatch):
    import time as _time

    def slow(model):
        _time.sleep(5)
        return model

    monkeypatch.setattr(runtimes.torch, "compile", slow)
    t = _time.perf_counter()
    p = runtimes.compiled(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8), timeout_s=0.5)
    assert _time.perf_counter() - t < 3
    assert p.call is None and p.error == "torch.compile did not finish within 0 s; it was stopped"


@pytest.mark.slow
def test_a_pair_timed_together_is_stored_per_runtime_and_read_back():
    pair = [
        Deployable.block("conv", {"in_chs": 16, "out_chs": 16}, (1, 16, 14, 14), "conv"),
        Deployable.block("depthwise_separable", {"in_chs": 16, "out_chs": 16}, (1, 16, 14, 14), "dws"),
    ]
    results = measure_group(pair, ("eager", "onnx", "onnx-int8"), 1, max_time_s=1)
    for r in results:
        rows = r["runtimes"]
        assert rows["eager"]["speedup_vs_eager"]["ratio"] == pytest.approx(1.0)
        assert rows["onnx"]["parity"]["max_abs_diff"] <= 1e-4 and rows["onnx"]["detail"]["opset"] == 18
        assert rows["onnx-int8"]["detail"]["quantization"]["calibration_count"] == 64
        assert r["timing"]["group"] == ["conv", "dws"]
        back = cached(r["target"], 14, 1)
        assert set(back["runtimes"]) == {"eager", "onnx", "onnx-int8"}
        assert back["runtimes"]["onnx"]["median_ms"] == rows["onnx"]["median_ms"]
    assert results[0]["macs"] == 16 * 16 * 9 * 14 * 14 + 2 * 16 * 14 * 14  # conv + BatchNorm (eval)
    import tempfile

    from core.config import data_dir

    assert list((data_dir() / "cache" / "deploy").iterdir()) == []  # the artifacts' scratch folder is gone
    assert tempfile.tempdir is None or not tempfile.tempdir.startswith(str(data_dir()))


@pytest.mark.slow
def test_the_cli_prints_one_json_object(capsys):
    assert (
        main(
            [
                "measure",
                "mobilenetv3_small_100",
                "--resolution",
                "64",
                "--runtimes",
                "onnx",
                "--max-time",
                "2",
                "--json",
                "-",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    out = json.loads(printed.out)
    assert "exporting" in printed.err.lower() or "onnx" in printed.err.lower()  # progress went to stderr
    row = out["runtimes"]["onnx"]
    assert set(out["runtimes"]) == {"eager", "onnx"}  # eager always, as the reference
    assert {"median_ms", "p10_ms", "p90_ms", "speedup_vs_eager", "prepare_s", "size_bytes", "parity"} <= set(
        row
    )
    assert {"ratio", "low", "high"} <= set(row["speedup_vs_eager"]) and row["parity"]["top1_agreement"] == 1.0
    assert out["environment"]["threads"] == 1 and "onnxruntime" in out["environment"]["versions"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["measure", "no_such_net"], "error: unknown model 'no_such_net'"),
        (
            ["measure", "resnet18", "--runtimes", "eager,tensorrt"],
            "error: unknown runtime tensorrt: choose from eager",
        ),
        (["measure", "resnet18", "--resolution", "5000"], "error: resolution 5000 px is out of range"),
    ],
)
def test_the_cli_errors_are_one_line_and_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(words) and "\n" not in err


def test_a_failed_export_names_the_operator_in_one_line(tmp_path, monkeypatch):
    from core.deploy import export as ex

    def fail(model, x, path, dynamo):
        raise RuntimeError(
            "Exporting the operator 'aten::_fused_foo' to ONNX opset version 18 is not supported.\n"
            "Please feel free to request support or submit a pull request."
        )

    monkeypatch.setattr(ex, "_export", fail)
    with pytest.raises(DeployError) as info:
        ex.export(nn.Conv2d(3, 3, 1), (1, 3, 8, 8), tmp_path / "x.onnx")
    assert str(info.value) == (
        "ONNX export failed: torchscript exporter: aten::_fused_foo; dynamo exporter: aten::_fused_foo"
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset", [p for p in __import__("core.blocks.compare", fromlist=["PRESETS"]).PRESETS if "lecture" in p]
)
def test_every_lecture_pairs_int8_rows_quantize_their_convolutions(preset):
    """A block keeps nothing in float on purpose: its int8 model quantizes every convolution (a standard
    3x3 conv block was left wholly float by the network rule before), and each int8 row says how many."""
    from core.blocks.compare import PRESETS, entry_cfg

    (chs, hw), entries = PRESETS[preset]
    chs, hw = min(chs, 32), min(hw, 14)  # the graph, not the size, is under test
    targets = [Deployable.block(e.block, entry_cfg(e, chs), (1, chs, hw, hw), e.label) for e in entries]
    results = measure_group(targets, ("eager", "onnx", "onnx-int8"), 1, max_time_s=1)
    for r in results:
        row = r["runtimes"]["onnx-int8"]
        detail = row["detail"]
        assert detail["quantization"]["kept_in_float"] == [] or detail["quantization"]["kept_in_float"] == ()
        assert detail["convs_int8"] >= 1 and detail["convs_int8"] == detail["convs_total"], (
            r["label"],
            detail,
        )
        assert "not_quantized" not in row
        assert report.convs_in_int8(row) == f"{detail['convs_total']} of {detail['convs_total']} in int8"
    pair = report.pair(*results[:2])
    assert "ONNX Runtime int8" in set(pair["runtime"])


def test_an_int8_model_with_no_int8_node_is_labelled_and_left_out_of_every_comparison():
    from core.deploy.measure import explain_int8, not_quantized

    fp32 = {
        "runtime": "onnx",
        "label": "ONNX Runtime fp32",
        "median_ms": 10.7,
        "error": "",
        "parity": {},
        "detail": {},
        "size_bytes": 1,
    }
    int8 = {
        "runtime": "onnx-int8",
        "label": "ONNX Runtime int8",
        "median_ms": 10.74,
        "error": "",
        "parity": {},
        "size_bytes": 1,
        "detail": {
            "quantized_nodes": {},
            "float_nodes": {"Conv": 1},
            "quantization": {"kept_in_float": ["/conv/conv/Conv"]},
        },
    }
    why = not_quantized(int8)
    assert why == (
        "not quantized (no node runs in int8; kept in float on purpose: /conv/conv/Conv; in float: Conv ×1)"
    )
    int8["not_quantized"] = why
    rows = {"eager": {**fp32, "runtime": "eager", "median_ms": 20.0}, "onnx": fp32, "onnx-int8": int8}
    assert explain_int8(rows) == ""  # never "int8 is 1.00× slower than fp32"
    a = {"label": "standard 3x3", "macs": 8, "runtimes": rows}
    b = {
        "label": "depthwise separable",
        "macs": 1,
        "runtimes": {k: {**v, "median_ms": 2.0} for k, v in rows.items() if k != "onnx-int8"}
        | {"onnx-int8": {**int8, "median_ms": 1.0, "not_quantized": ""}},
    }
    assert "ONNX Runtime int8" not in set(report.pair(a, b)["runtime"])
    frame = report.frame([a])
    bad = frame[frame["runtime"] == "ONNX Runtime int8"].iloc[0]
    assert bad["status"].startswith("not quantized") and np.isnan(bad["median ms"])
    assert report.fits(frame, 30.0).query("runtime == 'ONNX Runtime int8'").empty


def test_each_model_is_named_once_on_the_deployment_chart_beside_its_slowest_server_runtime():
    """Three runtimes of one model sit at the same MACs a few ms apart: one label each model, the rest on
    hover."""
    import pandas as pd

    from core.present import deploy_plots

    rows = [
        ("mobilenetv3_small_100", 56e6, rt, ms)
        for rt, ms in (("PyTorch eager", 6.0), ("ONNX Runtime fp32", 2.6), ("ONNX Runtime int8", 3.1))
    ]
    rows += [
        ("resnet50", 4.1e9, "PyTorch eager", 61.0),
        ("resnet50", 4.1e9, "ONNX Runtime fp32", 48.0),
        ("resnet50", 4.1e9, "my phone · wasm-1 · fp32", 300.0),
    ]
    table = pd.DataFrame(
        [
            {
                "target": t,
                "MACs": m,
                "runtime": r,
                "median ms": ms,
                "p10 ms": ms * 0.9,
                "p90 ms": ms * 1.1,
                "where": "browser" if " · " in r else "server",
            }
            for t, m, r, ms in rows
        ]
    )
    fig = deploy_plots.deploy_latency(table, 30.0)
    shown = [
        (trace.name, text) for trace in fig.data if trace.text is not None for text in trace.text if text
    ]
    assert sorted(shown) == [("PyTorch eager", "mobilenetv3_small_100"), ("PyTorch eager", "resnet50")]
    hover = {c for trace in fig.data if trace.customdata is not None for c in trace.customdata}
    assert hover == {"mobilenetv3_small_100", "resnet50"}


def test_published_phones_are_plotted_beside_the_measured_runtimes():
    """The Deployment chart puts every device beside the published phones, at the MACs the sources state,
    and the axes reach them (ResNet-50 on an iPhone XS: 27 ms at 4,100 M MACs)."""
    import pandas as pd

    from core.deploy import report
    from core.present import deploy_plots

    table = pd.DataFrame(
        [
            {
                "target": "mobilenetv3_small_100",
                "MACs": 56e6,
                "runtime": "ONNX Runtime fp32",
                "median ms": 2.6,
                "p10 ms": 2.5,
                "p90 ms": 2.8,
            }
        ]
    )
    phones = report.published_phone_latency()
    phones = phones[phones["timm"].isin(["mobilenetv3_small_100", "resnet50"])]
    fig = deploy_plots.deploy_latency(table, 30.0, phones)
    published = next(t for t in fig.data if t.name == "published phones")
    assert sorted(zip(published.x, published.y)) == [(66e6, 15.8), (4100e6, 27.0)]
    assert any("iPhone XS, Core ML via Vision float" in c for c in published.customdata)
    budget = next(t for t in fig.data if "budget" in t.name)
    assert budget.x[1] == 2 * 4100e6 and budget.y[0] == 30.0
    assert [t.name for t in deploy_plots.deploy_latency(table, 30.0).data] == [
        "ONNX Runtime fp32",
        "30 ms real-time budget",
    ]


def test_an_exports_scores_are_written_under_its_bars_where_no_whisker_crosses_them():
    from core.deploy.targets import get_target
    from core.present import deploy_plots

    table = pd.DataFrame(
        {
            "model": ["PyTorch", "ONNX fp32", "ONNX int8"],
            "val top-1 %": [38.9, 38.9, 41.7],
            "val 95% low": [24.8, 24.8, 27.1],
            "val 95% high": [55.0, 55.0, 57.6],
            "latency ms": [9.68, 1.25, 0.49],
            "colour": [get_target(k).colour for k in ("eager", "onnx", "onnx-int8")],
        }
    )
    bar = deploy_plots.export_scores(table).data[0]
    assert bar.text is None  # nothing inside the bar for the whisker to cross
    assert list(bar.x) == [
        "PyTorch<br>38.9% · 9.68 ms",
        "ONNX fp32<br>38.9% · 1.25 ms",
        "ONNX int8<br>41.7% · 0.49 ms",
    ]
    assert list(bar.error_y.arrayminus) == pytest.approx([14.1, 14.1, 14.6])
    assert list(bar.marker.color) == ["#31a354", "#e6550d", "#de9ed6"]  # the registry's eager, onnx, int8
