"""AppTest of the deployment view over a seeded week (a block pair and a backbone already measured in
eager, ONNX Runtime fp32 and int8), and a real deployment job started from the Block explorer's Deploy
tab."""

import time

import pytest

from core import jobs
from core.deploy import job as deploy_job
from tests.app._util import open_page, texts


@pytest.fixture()
def week(seeded_dir, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    return seeded_dir


def test_the_deploy_tab_shows_the_lecture_pair_in_every_runtime_measured(week):
    at = open_page("pages/blocks.py", {"blocks.tab": "Deploy"})
    table = next(d.value for d in at.dataframe if "speed-up vs eager" in getattr(d.value, "columns", []))
    assert sorted(set(table["target"])) == ["1x1 bottleneck (64)", "direct 3x3"]
    assert list(table["runtime"][:3]) == ["PyTorch eager", "ONNX Runtime fp32", "ONNX Runtime int8"]
    assert (table.loc[table["runtime"] == "ONNX Runtime fp32", "max abs diff"] <= 1e-4).all()
    assert table.loc[table["runtime"] == "PyTorch eager", "speed-up vs eager"].tolist() == pytest.approx(
        [1.0, 1.0]
    )
    said = " ".join(texts(at, "info"))
    assert "1x1 bottleneck (64) has 8.47× fewer MACs than direct 3x3; measured it runs" in said
    assert len(at.get("plotly_chart")) == 1  # MAC ratio against speed-up
    assert (
        at.button(key="dep.start").label == "Measure 2 target(s) in 4 runtime(s)"
    )  # torch.compile is missing
    assert not at.exception


def test_the_deployment_tab_plots_latency_against_macs_with_the_budget(week):
    at = open_page("pages/backbones.py", {"bb.tab": "Deployment", "dep.models": "mobilenetv3_small_100"})
    assert len(at.get("plotly_chart")) == 1
    table = next(d.value for d in at.dataframe if "speed-up vs eager" in getattr(d.value, "columns", []))
    assert set(table["target"]) == {"mobilenetv3_small_100"} and len(table) == 3
    from core.zoo.measure import count

    assert (table["MACs"] == count("mobilenetv3_small_100", 224)["macs"]).all()  # fvcore's count, each row
    phone = next(d.value for d in at.dataframe if "source" in getattr(d.value, "columns", []))
    assert phone.set_index(["model", "device"]).loc[("ResNet-50", "iPhone XS"), "latency (ms, batch 1)"] == 27
    assert any("27 ms against 21 ms on an iPhone XS" in w for w in texts(at, "warning"))
    assert not at.exception


@pytest.mark.slow
def test_a_deployment_job_runs_in_the_background_and_its_result_replaces_the_button(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path / "data"))
    query = {"blocks.tab": "Deploy", "dep.what": "One block", "explore.block": "depthwise_separable"}
    at = open_page("pages/blocks.py", query)
    at.multiselect(key="dep.runtimes").set_value(["eager", "onnx"]).run()
    at.button(key="dep.start").click().run()
    assert not at.exception
    job = jobs.latest(deploy_job.KIND)
    assert job is not None and job.args["runtimes"] == ["eager", "onnx"]
    end = time.time() + 180
    while time.time() < end and jobs.get(job.id).active:
        time.sleep(0.5)
    assert jobs.get(job.id).status == "done", jobs.get(job.id).error
    at = open_page("pages/blocks.py", query)
    at.multiselect(key="dep.runtimes").set_value(["eager", "onnx"]).run()
    table = next(d.value for d in at.dataframe if "speed-up vs eager" in getattr(d.value, "columns", []))
    assert (
        list(table["runtime"]) == ["PyTorch eager", "ONNX Runtime fp32"] and table["median ms"].notna().all()
    )
    assert at.button(key="dep.start").label == "Measure again"
