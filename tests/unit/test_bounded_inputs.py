"""Inputs bounded before anything is built: sizes from a link or a widget are bounded before anything is
built; images are bounded by their decoded and resized size and shown upright; class names that are one
name are caught; the decoded cache follows edits; two sessions extracting one zip or starting one
measurement at once."""

import io
import os
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.blocks import BlockConfigError, check_input, create_block, resolve_config
from core.data import cache
from core.data.errors import DatasetError
from core.data.health import health
from core.data.images import MAX_ASPECT, check_image, check_resize, load_resized, open_image, thumbnail
from core.data.ingest import scan
from core.data.safezip import safe_extract
from core.measure import budget
from core.measure.profiling import ProfileError, profile_module, time_module
from tests.helpers import at_once


def png(size=(8, 8), colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv(budget.BUDGET_ENV, "64")  # 64 MiB for one measurement


# 1. bounds on everything a URL or a widget can size
# --------------------------------------------------------------


def test_a_batch_from_a_link_is_refused_before_anything_is_built():
    cfg = resolve_config("conv")
    with pytest.raises(BlockConfigError, match=r"refused: batch 100000 is out of range; use 1 to 1,024"):
        check_input("conv", cfg, (100_000, cfg["in_chs"], 56, 56))


def test_an_in_range_shape_over_the_mac_cap_is_refused():
    cfg = resolve_config("conv")  # 256 -> 256, 3x3: 1,024 x 256 x 512 x 512 would be 158 TMACs
    with pytest.raises(
        BlockConfigError,
        match=r"refused: block 'conv' at batch 1024 costs [\d,.]+ GMACs per "
        r"forward, over the cap of 200 GMACs",
    ):
        check_input("conv", cfg, (1024, 256, 512, 512))


def test_activation_bytes_over_the_memory_budget_are_refused(small_budget):
    cfg = resolve_config("conv", in_chs=16, out_chs=16)  # cheap in MACs, but 4 x 16 x 512 x 512 x 4 B per map
    with pytest.raises(
        BlockConfigError,
        match=r"refused: block 'conv' at input 4 x 16 x 512 x 512 needs about "
        r"[\d.]+ MiB, over this server's memory budget of 64.0 MiB",
    ):
        check_input("conv", cfg, (4, 16, 512, 512))


def test_the_footprint_is_the_sum_of_the_layer_outputs_found_without_allocating():
    block = budget.on_meta(lambda: create_block("conv", in_chs=8, out_chs=16, norm=True))
    fp = budget.footprint(block, (2, 8, 10, 10))
    assert next(block.parameters()).device.type == "meta"
    # input 2x8x10x10, then conv, norm and activation outputs of 2x16x10x10 each, in fp32
    assert fp.input_bytes == 2 * 8 * 100 * 4
    assert fp.activation_bytes == 3 * 2 * 16 * 100 * 4
    assert fp.params == 8 * 16 * 9 + 2 * 16


def test_weights_over_the_cap_are_refused_before_they_are_allocated():
    with pytest.raises(
        BlockConfigError, match=r"has 2,030,051,328 parameters, over the cap of 1,000,000,000"
    ):
        create_block("conv", in_chs=4096, out_chs=4096, kernel_size=11)


def test_profile_and_timing_refuse_in_core_not_only_in_the_page(small_budget):
    block = create_block("conv", in_chs=16, out_chs=16)
    for call in (
        lambda: profile_module(block, (8, 16, 512, 512)),
        lambda: time_module(block, (8, 16, 512, 512)),
    ):
        with pytest.raises(ProfileError, match="over this server's memory budget"):
            call()


def test_backbone_resolution_is_checked_against_the_budget(monkeypatch):
    from core.zoo.catalog import BackboneError, build

    monkeypatch.setenv(budget.BUDGET_ENV, "400")  # its weights fit (97.5 MiB), 1024 px does not
    with pytest.raises(
        BackboneError,
        match=r"refused: resnet50.* over this server's memory budget.*Lower the "
        "resolution",
    ):
        build("resnet50", 1024)


def test_the_throughput_sweep_stops_at_the_budget(monkeypatch):
    from core.measure.settings import Setting
    from core.zoo.measure import throughput_sweep

    monkeypatch.setenv(budget.BUDGET_ENV, "40")
    out = throughput_sweep(
        "mobilenetv3_small_100", 64, Setting("cpu", "fp32", "contiguous", 1), time_cap_s=60
    )
    assert out["stop_reason"].startswith("memory budget: batch ")
    stopped_at = int(out["stop_reason"].split()[3])
    assert [r["batch"] for r in out["rows"]][-1] == stopped_at // 2 and stopped_at <= 256


def test_the_budget_is_a_share_of_the_memory_free_now(monkeypatch):
    monkeypatch.delenv(budget.BUDGET_ENV, raising=False)
    monkeypatch.setattr(budget, "free_bytes", lambda: 8 * 2**30)
    assert budget.memory_budget() == (2 * 2**30, "a quarter of the 8.00 GiB free now")


# 2. images bounded by the decoded and the resized size
# ---------------------------------------------------------


def one_by_a_million() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (1, 1_000_000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_a_4kb_image_of_1_by_1000000_px_is_refused_from_its_header(tmp_path):
    data = one_by_a_million()
    assert len(data) < 8192
    with pytest.raises(
        ValueError, match=r"extreme aspect ratio 1:1,000,000 \(1 x 1,000,000 px\); the limit is 1:50"
    ):
        open_image(data)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            (tmp_path / cls / f"{i}.png").write_bytes(png())
    (tmp_path / "a" / "strip.png").write_bytes(data)
    ds = scan(tmp_path)
    assert [s.path for s in ds.skipped] == ["a/strip.png"] and "extreme aspect ratio" in ds.skipped[0].reason
    report = health(ds)
    assert report.skipped["reason"].str.contains("extreme aspect ratio").all()


def test_the_worst_resize_the_bounds_allow_fits_and_a_bigger_one_is_refused():
    check_resize(int(1024 * MAX_ASPECT), 1024, 1024)  # 1:50 at the largest training size: 157 MiB
    with pytest.raises(ValueError, match=r"resizing 1 x 1,000,000 px to 64 px .* over the limit of 256 MiB"):
        check_resize(1, 1_000_000, 64)


def test_the_decoded_size_is_bounded_too():
    raw = bytearray(png((4, 4)))
    import struct
    import zlib

    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", 7000, 7000)  # 49 Mpx: under the pixel cap
    raw[ihdr + 13] = 6  # RGBA: 4 bytes a pixel, 187 MiB
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    with pytest.raises(
        ValueError, match=r"decoding it would take 187 MiB, over the limit of 160 MiB; it was not decoded"
    ):
        open_image(bytes(raw))


def test_exif_orientation_is_applied_everywhere(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # stored: left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: red on top
    path = tmp_path / "phone.jpg"
    img.save(path, "JPEG", exif=exif, quality=95)
    assert check_image(path) == (20, 40)
    arr = load_resized(path, 16)  # training, evaluation and the bundle's predictor
    assert arr[0, 2, 8] > 200 and arr[2, 2, 8] < 60  # top row red
    assert arr[2, 13, 8] > 200 and arr[0, 13, 8] < 60  # bottom row blue
    thumb = thumbnail(str(path), 40)
    assert thumb.shape[:2] == (40, 20) and thumb[2, 10, 0] > 200 and thumb[37, 10, 2] > 200
    shown = np.asarray(open_image(path.read_bytes()))  # "try an image"
    assert shown.shape[:2] == (40, 20) and shown[2, 10, 0] > 200


# 7. datasets that are not what they seem
# -----------------------------------------------------------------------


def make_folder(root: Path, classes: list[str], n: int = 2) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i}.png").write_bytes(png(colour=(i * 40, 10, 10)))
    return root


@pytest.mark.parametrize(
    "pair", [("Cat", "cat"), (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café"))]
)
def test_class_names_that_are_one_name_are_refused_in_a_folder_and_in_a_zip(tmp_path, pair):
    first, second = sorted(pair)
    make_folder(tmp_path / "folder", [*pair, "dog"])
    message = rf"the folders '{first}' and '{second}' have the same name but for letter case or Unicode form"
    with pytest.raises(DatasetError, match=message):
        scan(tmp_path / "folder")
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c in (first, second, "dog"):
            zf.writestr(f"{c}/1.png", png())
    with pytest.raises(DatasetError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_class_names_are_nfc(tmp_path):
    make_folder(tmp_path, [unicodedata.normalize("NFD", "café"), "dog"])
    assert scan(tmp_path).classes == (unicodedata.normalize("NFC", "café"), "dog")


def test_a_folder_whose_name_starts_with_a_dot_is_reported_not_dropped(tmp_path):
    make_folder(tmp_path, ["...", "cat", "dog"], n=3)
    ds = scan(tmp_path)
    assert ds.classes == ("cat", "dog")
    assert sorted(s.path for s in ds.skipped) == [".../0.png", ".../1.png", ".../2.png"]
    assert "whose name starts with a dot" in ds.skipped[0].reason
    assert "3 file(s) skipped" in " ".join(health(ds).warnings)


def test_the_decoded_cache_follows_an_image_edited_in_place(tmp_path):
    make_folder(tmp_path, ["a"], n=1)
    path = tmp_path / "a" / "0.png"
    path.write_bytes(png((8, 8), (255, 0, 0)))
    first = cache.decoded(tmp_path, ["a/0.png"], 8).clone()
    path.write_bytes(png((8, 8), (0, 255, 0)))  # same name, new pixels
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = cache.decoded(tmp_path, ["a/0.png"], 8)
    assert int(first[0, 0, 0, 0]) == 255 and int(second[0, 0, 0, 0]) == 0 and int(second[0, 1, 0, 0]) == 255


# 6. races between sessions
# -------------------------------------------------------------------------------------


def test_one_zip_extracted_by_two_sessions_at_once(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c in ("a", "b"):
            for i in range(40):
                zf.writestr(f"{c}/{i}.png", png(colour=(i, 10, 10)))
    target = tmp_path / "datasets" / "x"
    for _ in range(3):  # three rounds: the later ones find it published
        counts, errors = at_once(lambda: len(scan(safe_extract(archive, target)).samples), 4, (Exception,))
        assert errors == [] and counts == [80] * 4
    assert sorted(p.name for p in target.parent.iterdir()) == ["x"]  # no partial or stale folder left


def test_a_stale_half_extraction_is_replaced(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c in ("a", "b"):
            zf.writestr(f"{c}/1.png", png())
    target = tmp_path / "x"
    (target / "a").mkdir(parents=True)  # an older version's half-made folder, no marker
    safe_extract(archive, target)
    assert len(scan(target).samples) == 2 and (target / ".complete").exists()


@pytest.mark.slow
def test_two_measurements_started_at_the_same_moment_start_one(monkeypatch):
    from core import jobs
    from core.jobs import lifecycle
    from core.measure.settings import Setting
    from core.zoo import worker

    for job in jobs.active_jobs():
        jobs.finish(job.id, "cancelled")
    monkeypatch.setattr(lifecycle, "spawn", lambda args, log: os.getpid())  # this process stands in
    started, refused = at_once(
        lambda: worker.start(["resnet18"], Setting("cpu", "fp32", "contiguous", 1), 64).id, 4, (RuntimeError,)
    )
    assert len(started) == 1 and len(refused) == 3
    assert all(
        r == f"a measurement job (#{started[0]}) is already running; stop it or wait for it" for r in refused
    )
    jobs.finish(started[0], "cancelled")


@pytest.mark.slow
def test_a_link_naming_too_many_models_is_refused_before_any_job():
    from core.measure.settings import Setting
    from core.zoo import worker
    from core.zoo.catalog import BackboneError

    with pytest.raises(BackboneError, match=r"refused: pick 1 to 64 models per job, not 65"):
        worker.start(["resnet18"] * 65, Setting("cpu", "fp32", "contiguous", 1))
    with pytest.raises(BackboneError, match=r"resolution 4096 px is out of range"):
        worker.start(["resnet18"], Setting("cpu", "fp32", "contiguous", 1), 4096)
