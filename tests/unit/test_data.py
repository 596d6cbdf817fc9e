"""Dataset ingestion: every bad archive refused with nothing written outside, bad images skipped, splits."""

import io
import os
import stat
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.data import demo
from core.data.errors import DatasetError
from core.data.health import health
from core.data.images import check_image
from core.data.ingest import scan
from core.data.safezip import Limits, safe_extract
from core.data.split import Split, stratified_split


def png_bytes(color=(255, 0, 0), size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # a duplicate name is what one test wants
        for name, data in entries:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def files_under(p: Path) -> set[str]:
    return {str(f.relative_to(p)) for f in p.rglob("*")}


@pytest.mark.parametrize(
    "entries,symlink,message",
    [
        ([("../evil.png", b"x")], None, "climbs out"),
        ([("/abs/evil.png", b"x")], None, "absolute path"),
        ([("cat/a.png", b"x")], "cat/link.png", "symbolic link"),
        ([("cat/a.png", b"x"), ("cat/a.png", b"y")], None, "appears twice"),
        ([("C:/win/evil.png", b"x")], None, "absolute path"),
    ],
)
def test_bad_archives_are_refused_and_nothing_escapes(tmp_path, entries, symlink, message):
    archive = make_zip(tmp_path / "bad.zip", entries, symlink)
    before = files_under(tmp_path)
    target = tmp_path / "out" / "ds"
    with pytest.raises(DatasetError, match=message):
        safe_extract(archive, target)
    assert not target.exists()
    assert files_under(tmp_path) == before | {"out"}
    assert not (tmp_path / "evil.png").exists() and not Path("/abs/evil.png").exists()


def test_encrypted_entry_is_refused(tmp_path):
    archive = make_zip(tmp_path / "enc.zip", [("cat/a.png", png_bytes())])
    data = bytearray(archive.read_bytes())
    # set the 'encrypted' flag bit in the local header and the central directory entry
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        i = data.find(sig)
        off = 6 if sig == b"PK\x03\x04" else 8
        data[i + off] |= 0x1
    archive.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="encrypted"):
        safe_extract(archive, tmp_path / "out")


def test_caps_on_entries_size_and_ratio(tmp_path):
    many = make_zip(tmp_path / "many.zip", [(f"c/{i}.png", b"x") for i in range(20)])
    with pytest.raises(DatasetError, match="over the cap of 10"):
        safe_extract(many, tmp_path / "o1", Limits(max_entries=10))
    bomb = make_zip(tmp_path / "bomb.zip", [("c/zeros.png", b"\0" * (8 << 20))])
    with pytest.raises(DatasetError, match="compression-ratio cap"):
        safe_extract(bomb, tmp_path / "o2", Limits(max_ratio=50))
    big = make_zip(tmp_path / "big.zip", [("c/a.bin", os.urandom(3 << 20))])
    with pytest.raises(DatasetError, match="unpacks to over"):
        safe_extract(big, tmp_path / "o3", Limits(max_total_bytes=1 << 20))
    assert not any((tmp_path / d).exists() for d in ("o1", "o2", "o3"))


def test_not_a_zip(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        safe_extract(bad, tmp_path / "out")


def test_corrupt_and_non_images_are_skipped_and_reported(tmp_path):
    root = tmp_path / "ds"
    for cls, color in (("a", (255, 0, 0)), ("b", (0, 255, 0))):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.png").write_bytes(png_bytes(color))
    (root / "a" / "notes.txt").write_text("hello")
    (root / "b" / "cut.png").write_bytes(png_bytes(size=(64, 64))[:60])
    ds = scan(root)
    assert ds.counts() == {"a": 3, "b": 3}
    reasons = {s.path: s.reason for s in ds.skipped}
    assert reasons["a/notes.txt"] == "not an image"
    assert "truncated or corrupt" in reasons["b/cut.png"]
    assert "2 file(s) skipped" in " ".join(health(ds).warnings)


def test_decompression_bomb_is_an_error(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (4000, 4000)).save(path)
    with pytest.raises(ValueError, match="decompression bomb"):
        check_image(path, max_pixels=1_000_000)


def test_one_class_and_empty_class_stop_clearly(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.png").write_bytes(png_bytes())
    with pytest.raises(DatasetError, match="only one class"):
        scan(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("no image")
    with pytest.raises(DatasetError, match="'empty' has no usable images"):
        scan(tmp_path)


def test_split_is_stratified_and_reproducible(tmp_path):
    root = demo.generate(tmp_path / "demo", per_class=10, size=24, seed=3)
    ds = scan(root)
    a, b = stratified_split(ds, 0.2, seed=7), stratified_split(ds, 0.2, seed=7)
    assert a == b and stratified_split(ds, 0.2, seed=8) != a
    per_class = {c: sum(p.startswith(c + "/") for p in a.val) for c in ds.classes}
    assert set(per_class.values()) == {2} and len(a.train) == 6 * 8
    assert not set(a.train) & set(a.val)


def test_duplicates_within_and_across_splits(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            (root / cls / f"{i}.png").write_bytes(png_bytes((10 * i, 0 if cls == "a" else 99, 0)))
    (root / "a" / "copy.png").write_bytes((root / "a" / "0.png").read_bytes())
    ds = scan(root)
    split = Split(0, 0.2, tuple(p.path for p in ds.samples if p.path != "a/copy.png"), ("a/copy.png",))
    report = health(ds, split)
    assert len(report.duplicates) == 1 and report.duplicates.iloc[0]["where"] == "across splits"
    assert (
        "1 duplicate image(s) by content, 1 group(s) across train and val (leakage): a/0.png = a/copy.png"
        in report.warnings
    )


def test_demo_set_is_deterministic(tmp_path):
    a = demo.generate(tmp_path / "a", per_class=3, size=32, seed=1)
    b = demo.generate(tmp_path / "b", per_class=3, size=32, seed=1)
    assert [f.read_bytes() for f in sorted(a.rglob("*.png"))] == [
        f.read_bytes() for f in sorted(b.rglob("*.png"))
    ]
    assert len(scan(a).classes) == len(demo.CLASSES) >= 5


def test_torchvision_sets_become_class_folders_and_fail_clearly_offline(tmp_path, monkeypatch):
    from core.finetune import data as ft_data

    files = []
    for i in range(4):
        f = tmp_path / f"img_{i}.png"
        f.write_bytes(png_bytes((i * 60, 0, 0)))
        files.append(f)
    target = ft_data.as_class_folders(files, [0, 1, 0, 1], ["daisy", "rose"], tmp_path / "folders")
    assert scan(target).counts() == {"daisy": 2, "rose": 2}

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    import torchvision

    monkeypatch.setattr(torchvision.datasets, "Flowers102", offline)
    with pytest.raises(DatasetError, match="may be offline"):
        ft_data.torchvision_folder("flowers102")


def test_three_way_split_holds_out_a_test_set_per_class(tmp_path):
    root = tmp_path / "ds"
    for cls, n in (("a", 10), ("b", 3), ("c", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"{i}.png").write_bytes(png_bytes((20 * i, ord(cls), 0)))
    split = stratified_split(scan(root), 0.2, seed=3, test_fraction=0.2)
    per = {
        c: [sum(p.startswith(c + "/") for p in part) for part in (split.train, split.val, split.test)]
        for c in "abc"
    }
    # a: 2 test, 2 val, 6 train; b: 1 test, 1 val, 1 train; c: too small for a test image: 1 val, 1 train
    assert per == {"a": [6, 2, 2], "b": [1, 1, 1], "c": [1, 1, 0]}
    assert not set(split.test) & (set(split.train) | set(split.val))
