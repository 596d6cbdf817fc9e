"""Turns a TrainConfig's data source into decoded uint8 tensors and a stratified split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import data_dir
from core.data import cache, demo
from core.data.errors import DatasetError
from core.data.folders import is_complete
from core.data.ingest import Dataset, scan
from core.data.safezip import safe_extract
from core.data.split import Split, stratified_split
from core.finetune.config import TrainConfig

TORCHVISION_SETS = ("flowers102", "oxford_pets")


@dataclass
class Prepared:
    dataset: Dataset
    split: Split
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None = None        # the held-out test split (None: none was asked for)
    test_y: torch.Tensor | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes


def resolve_source(source: str, cfg: TrainConfig) -> Path:
    """'demo', a zip (extracted safely into the data directory), a folder, or a torchvision set name."""
    if source == "demo":
        return demo.generate(per_class=cfg.demo_per_class, size=cfg.demo_size, seed=cfg.seed)
    if source in TORCHVISION_SETS:
        return torchvision_folder(source)
    path = Path(source).expanduser()
    if path.suffix.lower() == ".zip":
        if not path.is_file():
            raise DatasetError(f"no zip file at {source}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        target = data_dir() / "datasets" / f"{path.stem}-{digest}"
        if not is_complete(target):
            safe_extract(path, target)          # to a unique folder, published whole (core.data.folders)
        return target
    if path.is_dir():
        return path
    raise DatasetError(f"data must be 'demo', a .zip of class folders or a folder; {source!r} is none of these")


def torchvision_folder(name: str) -> Path:
    """Flowers-102 (train split) or Oxford-IIIT Pet (trainval) through torchvision, laid out as class folders.

    Needs the internet the first time; offline it fails with one clear message."""
    import torchvision
    root = data_dir() / "torchvision"
    target = root / f"{name}-class-folders"
    if (target / ".complete").exists():
        return target
    try:
        if name == "flowers102":
            ds = torchvision.datasets.Flowers102(root, split="train", download=True)
            files, labels, names = ds._image_files, ds._labels, [f"flower_{i:03d}" for i in range(102)]
        else:
            ds = torchvision.datasets.OxfordIIITPet(root, split="trainval", download=True)
            files, labels, names = ds._images, ds._labels, list(ds.classes)
    except Exception as err:  # noqa: BLE001  offline: one clear message
        raise DatasetError(f"could not download {name} with torchvision ({type(err).__name__}): this machine "
                           "may be offline. Use --data demo, a zip of class folders, or a folder.") from err
    return as_class_folders(files, labels, names, target)


def as_class_folders(files: list, labels: list[int], names: list[str], target: Path) -> Path:
    """Links (or copies) labelled files into target/<class name>/ so the ImageFolder path can read them."""
    import shutil
    for f, label in zip(files, labels):
        dest = target / names[label] / Path(f).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            try:
                dest.hardlink_to(f)
            except OSError:
                shutil.copy2(f, dest)
    (target / ".complete").write_text("ok")
    return target


def prepare(cfg: TrainConfig, split: Split | None = None) -> Prepared:
    ds = scan(resolve_source(cfg.data, cfg))
    split = split or stratified_split(ds, cfg.val_fraction, cfg.seed, cfg.test_fraction)
    label_of = {s.path: s.label for s in ds.samples}
    missing = [p for p in (*split.train, *split.val, *split.test) if p not in label_of]
    if missing:
        raise DatasetError(f"the saved split names {len(missing)} image(s) no longer in the dataset")
    on_disk = cfg.cache == "disk"
    train_x = cache.decoded(ds.root, list(split.train), cfg.image_size, on_disk)
    val_x = cache.decoded(ds.root, list(split.val), cfg.image_size, on_disk)
    train_y = torch.tensor([label_of[p] for p in split.train])
    val_y = torch.tensor([label_of[p] for p in split.val])
    test_x = cache.decoded(ds.root, list(split.test), cfg.image_size, on_disk) if split.test else None
    test_y = torch.tensor([label_of[p] for p in split.test], dtype=torch.long)
    return Prepared(ds, split, train_x, train_y, val_x, val_y, test_x, test_y)
