"""Damaged input gets one clear message and leaves nothing half-written; odd images train right; weights
that do not fit are refused; a new run never reuses a folder; wall time spans resumes; the bundle's
modes."""

import errno
import io
import os
import pickle
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from core.config import data_dir
from core.data import safezip, uploads
from core.data.errors import DatasetError
from core.data.health import health
from core.data.images import load_resized, open_image, thumbnail
from core.data.ingest import scan
from core.data.safezip import safe_extract
from core.data.split import stratified_split
from core.finetune.weights import WeightsError, check_file, create, read_state_dict
from core.jobs import store
from core.present import fmt, run_plots
from core.runs import record as runs


def png(size=(8, 8), colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def zip_of(path: Path, entries, method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def left_behind(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if "partial" in p.name or p.name == "ds")


GOOD = [(f"{c}/{i}.png", png()) for c in ("a", "b") for i in range(2)]


def test_corrupt_deflate_stream(tmp_path):
    path = zip_of(tmp_path / "x.zip", [*GOOD, ("b/big.png", bytes(range(256)) * 400)])
    raw = bytearray(path.read_bytes())
    at = raw.index(b"b/big.png") + len("b/big.png") + 20  # inside that member's compressed bytes
    raw[at : at + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="is corrupt"):
        safe_extract(path, tmp_path / "ds")
    assert left_behind(tmp_path) == []


def test_unsupported_compression_method(tmp_path):
    path = zip_of(tmp_path / "x.zip", GOOD, zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # method field: 9 = Deflate64
        start = 0
        while (start := raw.find(sig, start)) != -1:
            raw[start + offset : start + offset + 2] = struct.pack("<H", 9)
            start += 4
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="compression method this app cannot read"):
        safe_extract(path, tmp_path / "ds")
    assert left_behind(tmp_path) == []


def test_member_name_longer_than_the_file_system_allows(tmp_path):
    path = zip_of(tmp_path / "x.zip", [*GOOD, ("a/" + "n" * 300 + ".png", png())])
    with pytest.raises(DatasetError, match="longer than this file system allows"):
        safe_extract(path, tmp_path / "ds")
    assert left_behind(tmp_path) == []


def test_a_path_that_is_both_a_file_and_a_folder(tmp_path):
    path = zip_of(tmp_path / "x.zip", [*GOOD, ("a/clash", b"x"), ("a/clash/1.png", png())])
    with pytest.raises(DatasetError, match="both a file and a folder"):
        safe_extract(path, tmp_path / "ds")
    assert left_behind(tmp_path) == []


def test_disk_full_while_extracting_keeps_nothing(tmp_path, monkeypatch):
    real = safezip._copy_counted

    def fill(zf, info, dest, limits, so_far):
        if info.filename == "b/1.png":
            dest.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(zf, info, dest, limits, so_far)

    monkeypatch.setattr(safezip, "_copy_counted", fill)
    path = zip_of(tmp_path / "x.zip", GOOD)
    with pytest.raises(DatasetError, match="disk filled up"):
        safe_extract(path, tmp_path / "ds")
    assert left_behind(tmp_path) == []
    monkeypatch.setattr(safezip, "_copy_counted", real)
    assert len(scan(safe_extract(path, tmp_path / "ds")).samples) == 4  # the retry works


def test_the_cli_says_one_line_and_exits_2_on_a_damaged_zip(tmp_path, capsys):
    from core.runs.cli import train as main

    path = zip_of(tmp_path / "x.zip", [*GOOD, ("a/" + "n" * 300 + ".png", png())])
    assert main(["--data", str(path), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: refused:") and "longer than this file system allows" in err and "\n" not in err
    )


def test_an_upload_is_written_whole_or_not_at_all(monkeypatch):
    data = os.urandom(50_000)

    def full(path, payload):
        Path(path).write_bytes(payload[:1000])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads, "_write", full)
    with pytest.raises(DatasetError, match="the disk is full"):
        uploads.save_upload(data, ".zip")
    assert not [p for p in (data_dir() / "uploads").iterdir() if p.read_bytes() == data[:1000]]
    monkeypatch.undo()
    saved = uploads.save_upload(data, ".zip")
    assert saved.read_bytes() == data


def test_a_truncated_upload_left_by_an_older_version_is_replaced():
    data = os.urandom(30_000)
    first = uploads.save_upload(data, ".zip")
    first.write_bytes(data[:100])  # what the old save_upload left after a full disk
    assert uploads.save_upload(data, ".zip").read_bytes() == data


def grey16_png(path: Path) -> Path:
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return path


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    path = grey16_png(tmp_path / "g.png")
    assert Image.open(path).mode == "I;16"
    arr = load_resized(path, 32)
    assert arr.dtype == np.uint8 and abs(arr.mean() - 127.5) < 3  # clipped, the mean was 251.6
    assert arr.min() <= 5 and arr.max() >= 250
    assert thumbnail(str(path)).dtype == np.uint8  # st.image could not write I;16


def test_float_tiffs_are_scaled_or_skipped_with_a_reason(tmp_path):
    for c in ("ok", "nan"):
        (tmp_path / c).mkdir()
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    for i in range(2):
        Image.fromarray(ramp).save(tmp_path / "ok" / f"{i}.tif")
        Image.fromarray(ramp * 1000 - 500).save(tmp_path / "nan" / f"{i}.tif")
    bad = ramp.copy()
    bad[0, 0] = np.nan
    Image.fromarray(bad).save(tmp_path / "nan" / "broken.tif")
    assert abs(load_resized(tmp_path / "ok" / "0.tif", 32).mean() - 127.5) < 3  # all black before
    assert abs(load_resized(tmp_path / "nan" / "0.tif", 32).mean() - 127.5) < 3  # its own range
    ds = scan(tmp_path)
    assert [(s.path, s.reason) for s in ds.skipped] == [
        ("nan/broken.tif", "float image holds NaN or infinite values")
    ]


def test_a_120_megapixel_png_is_refused_before_decoding():
    raw = bytearray(png((4, 4)))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", 12_000, 10_000)
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    with pytest.raises(ValueError, match=r"120000000 pixels.*it was not decoded"):
        open_image(bytes(raw))
    with pytest.raises(
        ValueError, match=r"120000000 pixels\) exceeds limit of 100000000 .*it was not decoded"
    ):
        open_image(
            bytes(raw), max_pixels=100_000_000
        )  # between 1x and 2x the limit Pillow only warns: refused too
    assert open_image(png((20, 10))).size == (20, 10)


def test_every_class_with_two_images_is_validated_and_a_lone_image_is_named(tmp_path):
    for c, n in (("many", 30), ("two", 2), ("lone", 1)):
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 8 % 256, n, 3)).save(tmp_path / c / f"{i}.png")
    ds = scan(tmp_path)
    split = stratified_split(ds, 0.2, 0)
    val_classes = {p.split("/")[0] for p in split.val}
    assert val_classes == {"many", "two"}
    report = health(ds, split)
    assert report.no_val_support == ("lone",)
    assert any("no validation image for 1 class(es) (lone)" in w for w in report.warnings)


def test_the_run_itself_names_classes_without_validation_support(tmp_path):
    from core.finetune.config import TrainConfig
    from core.finetune.trainer import train

    for c, n in (("a", 12), ("b", 12), ("solo", 1)):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (16, 16), (i * 20 % 256, len(c) * 60, 0)).save(tmp_path / "d" / c / f"{i}.png")
    seen = {}

    class Spy:
        def on_start(self, info):
            seen.update(info)

        def on_step(self, *a):
            pass

        def on_epoch(self, *a):
            pass

        def on_end(self, *a):
            pass

        def should_stop(self):
            return False

    cfg = TrainConfig(
        data=str(tmp_path / "d"),
        weights="random",
        recipe="linear_probe",
        epochs=1,
        image_size=32,
        threads=1,
        cache="memory",
    )
    train(cfg, tmp_path / "run", Spy())
    assert seen["no_val_classes"] == ["solo"]


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    save_file(timm.create_model("resnet18").state_dict(), str(tmp_path / "r18.safetensors"))
    with pytest.raises(
        WeightsError, match=r"provides 0 of the 147 backbone weight tensors .* Refused"
    ) as err:
        create("efficientnet_lite0", str(tmp_path / "r18.safetensors"), 6)
    assert err.value.report is not None and err.value.report.loaded == 1  # bn1.num_batches_tracked only
    report = check_file("resnet18", tmp_path / "r18.safetensors", 6)
    assert (report.matched_weights, report.backbone_weights) == (60, 60)
    assert set(report.missing) == {"fc.weight", "fc.bias"} and len(report.mismatched) == 2


def test_an_empty_torch_file_and_a_pickle_with_code(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        read_state_dict(tmp_path / "empty.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo never",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"w": Evil()}, fh)
    with pytest.raises(WeightsError) as err:
        read_state_dict(tmp_path / "evil.pt")
    text = str(err.value)
    assert text.startswith("evil.pt holds pickled Python code (posix.system)") and "It was not run" in text
    assert text.endswith("instead.")  # whole, never cut mid-sentence
    torch.save({"w": Evil()}, tmp_path / "evil2.pt")  # torch's own zip format, same refusal
    with pytest.raises(WeightsError, match=r"evil2.pt holds pickled Python code \(posix.system\)"):
        read_state_dict(tmp_path / "evil2.pt")


def test_user_text_is_literal_in_markdown_and_plotly():
    name = '**b** $x^2$ :red-background[r] ![i](http://h/x.png) <a href="http://h">a</a>'
    escaped = fmt.md(name)
    assert not re.search(r"(?<!\\)[*$:!\[\]<>()]", escaped)  # every special character is escaped
    assert re.sub(r"\\(.)", r"\1", escaped).replace("\u2060", "") == name
    fig = run_plots.bars(
        __import__("pandas").DataFrame({"class": [name], "n": [3]}), "class", "n", "class", "n"
    )
    assert (
        fig.data[0].x[0]
        == '**b** $x^2$ :red-background[r] ![i](http://h/x.png) &lt;a href="http://h"&gt;a&lt;/a&gt;'
    )


def test_a_new_run_never_reuses_a_folder_left_by_a_lost_store(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    old = tmp_path / "runs" / "1"
    old.mkdir(parents=True)
    (old / "checkpoint.pt").write_bytes(b"an old run's checkpoint")
    run_id = runs.create({"epochs": 1}, "after the store was lost")
    assert run_id == 1 and runs.folder(run_id) == tmp_path / "runs" / "1-1"
    assert (old / "checkpoint.pt").read_bytes() == b"an old run's checkpoint"
    assert not any(runs.folder(run_id).iterdir())


def test_wall_time_spans_resumes():
    import time

    from core.runs.cli import train as main

    tiny = [
        "--data",
        "demo",
        "--demo-per-class",
        "6",
        "--demo-size",
        "32",
        "--image-size",
        "32",
        "--threads",
        "1",
        "--quiet",
        "--recipe",
        "linear_probe",
        "--weights",
        "random",
    ]
    assert main([*tiny, "--epochs", "1"]) == 0
    run = runs.all_runs()[0]
    runs.update(
        run.id,
        status="cancelled",
        config={**run.config, "epochs": 2},
        result={**run.result, "wall_s": 1000.0},
    )  # as if earlier segments took 1000 s
    t0 = time.perf_counter()
    assert main(["--resume", str(run.id), "--quiet"]) == 0
    took = time.perf_counter() - t0
    wall = runs.get(run.id).result["wall_s"]
    assert 1000.0 < wall < 1000.0 + took and runs.get(run.id).result["epochs_done"] == 2


def test_the_exported_bundle_has_one_file_mode():
    from core.finetune.bundle import export

    folder = export(data_dir() / "bundle-mode", torch.nn.Linear(2, 2), "x", ("a", "b"), 32, (0.5,), (0.5,))
    modes = {f.name: f.stat().st_mode & 0o777 for f in folder.iterdir()}
    assert modes["model.safetensors"] == modes["bundle.json"] == 0o666 & ~_umask(), modes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_store_errors_name_the_file(tmp_path):
    bad = tmp_path / "s.sqlite"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(store.StoreError, match=f"{bad}.*damaged"):
        with store.connect(bad) as conn:
            conn.execute("SELECT 1")
