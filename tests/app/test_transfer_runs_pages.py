"""AppTest of the transfer and runs pages: upload a zip, launch a background run, watch, stop, a bad zip."""

import io
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data import demo
from core.runs import record as runs
from tests.app._util import md_table, open_page


def demo_zip_bytes(tmp_path: Path) -> bytes:
    return demo.generate_zip(tmp_path / "shapes.zip", per_class=6, size=32).read_bytes()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="tr.source").set_value("Upload a zip of class folders").run()
    at.file_uploader(key="tr.upload").set_value((name, data, "application/zip")).run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_upload_launch_watch_and_stop(tmp_path):
    at = open_page("pages/transfer.py")
    upload(at, "shapes.zip", demo_zip_bytes(tmp_path))
    assert any("36 images in 6 classes" in m.value for m in at.markdown)
    assert any("Linear probe" in i.value for i in at.info)  # 36 labels: < 100, the lecture's row
    at.number_input(key="tr.ep").set_value(200).run()
    at.number_input(key="tr.size").set_value(32).run()
    at.button(key="tr.launch").click().run()
    assert not at.exception
    run_id = int(
        at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    )
    end = time.time() + 120
    while time.time() < end and runs.metrics(run_id).empty:
        time.sleep(0.5)
        at.run()
    assert not runs.metrics(run_id).empty and not at.exception
    assert any(f"Run {run_id}" in m.value for m in at.markdown)
    at.button(key=f"tr.stop.{run_id}").click().run()
    end = time.time() + 60
    while time.time() < end and runs.get(run_id).active:
        time.sleep(0.5)
    assert runs.get(run_id).status == "cancelled"
    at.run()
    assert any("status :gray-background[stopped]" in m.value for m in at.markdown) and not at.exception


def test_any_timm_name_and_an_unknown_one():
    at = open_page("pages/transfer.py")
    at.text_input(key="tr.model_any").set_value("regnety_008").run()
    assert not at.exception and not at.error
    stages = md_table(at, "stage")  # RegNetY-800MF's stages, not the default backbone's
    assert stages[-1][0] == "head (new classifier)" and len(stages) == 6 and stages[0][0] == "stem"
    at.text_input(key="tr.model_any").set_value("regnety_0o8").run()
    assert any("unknown model" in e.value for e in at.error) and not at.exception


def test_bad_zip_gives_an_error_and_the_page_keeps_working():
    at = open_page("pages/transfer.py")
    upload(at, "broken.zip", b"PK\x03\x04 not really a zip")
    assert any("cannot be used" in e.value for e in at.error)
    one = io.BytesIO()
    with zipfile.ZipFile(one, "w") as zf:
        zf.writestr("only/a.txt", "x")
    upload(at, "one.zip", one.getvalue())
    assert any("no usable images" in e.value or "only one class" in e.value for e in at.error)
    at.radio(key="tr.source").set_value("Built-in demo dataset").run()
    assert not at.exception and not at.error


@pytest.mark.slow
def test_runs_page_lists_runs_and_evaluates(tmp_path):
    from core.runs.cli import train as finetune

    assert (
        finetune(
            [
                "--data",
                "demo",
                "--demo-per-class",
                "8",
                "--demo-size",
                "32",
                "--image-size",
                "32",
                "--epochs",
                "2",
                "--quiet",
                "--name",
                "apptest run",
            ]
        )
        == 0
    )
    at = open_page("pages/runs.py")
    table = next(d.value for d in at.dataframe if "best val top-1 %" in d.value.columns)
    row = table.set_index("name").loc["apptest run"]
    # top-1 is a percent everywhere, and the exported epoch is the one that scored it
    from core.runs import record as runs

    run = next(r for r in runs.all_runs() if r.name == "apptest run")
    assert row["best val top-1 %"] == pytest.approx(100 * run.result["best_top1"])
    assert (
        row["exported epoch"] == run.result["best_epoch"] in (1, 2) and row["note"] == "no test split"
    )  # never "None"
    at = open_page("pages/runs.py", {"runs.tab": "Evaluate and export"})
    assert any("precision" in d.value.columns for d in at.dataframe if hasattr(d.value, "columns"))
    assert not at.exception


def _weights_upload(at: AppTest, data: bytes | None) -> AppTest:
    at.selectbox(key="tr.weights").set_value("upload safetensors").run()
    if data is not None:
        at.file_uploader(key="tr.wfile").set_value(("w.safetensors", data, "application/octet-stream")).run()
    assert not at.exception
    return at


def test_start_is_blocked_without_weights_or_with_wrong_ones(tmp_path):
    import timm
    from safetensors.torch import save_file

    from tests.app._util import texts

    at = _weights_upload(open_page("pages/transfer.py"), None)  # once: silently trained from random weights
    assert at.button(key="tr.launch").disabled
    assert any("no weights file uploaded" in c for c in texts(at, "caption"))
    save_file(timm.create_model("resnet18").state_dict(), str(tmp_path / "r18.safetensors"))
    _weights_upload(at, (tmp_path / "r18.safetensors").read_bytes())
    assert at.button(key="tr.launch").disabled
    assert any("refused" in e and "provides 0 of the 147" in e for e in texts(at, "error"))
    assert any("0 of 147 backbone weight tensors matched" in c for c in texts(at, "caption"))
    save_file(timm.create_model("efficientnet_lite0").state_dict(), str(tmp_path / "lite0.safetensors"))
    _weights_upload(at, (tmp_path / "lite0.safetensors").read_bytes())
    assert not at.button(key="tr.launch").disabled
    assert any("147 of 147 backbone weight tensors matched (100%)" in c for c in texts(at, "caption"))


def test_a_zip_of_16_bit_greyscale_pngs_previews_without_a_crash():
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, scale in (("dark", 0.2), ("bright", 1.0)):
            for i in range(3):
                img = io.BytesIO()
                ramp = (np.linspace(0, 65535 * scale, 32 * 32).reshape(32, 32) + i).astype(np.uint16)
                Image.fromarray(ramp).save(img, "PNG")  # mode I;16: st.image once failed to write it as JPEG
                zf.writestr(f"{c}/{i}.png", img.getvalue())
    at = upload(open_page("pages/transfer.py"), "grey16.zip", buf.getvalue())
    assert any("6 images in 2 classes" in m.value for m in at.markdown)
    assert len(at.get("image")) >= 2  # the previews were drawn
