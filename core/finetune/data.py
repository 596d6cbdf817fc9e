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
    test_x: torch.Tensor | None = None  # the held-out test split (None: none was asked for)
    test_y: torch.Tensor | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes


def source_name(config: dict) -> str:
    """The name a person recognises for a run's data, from its configuration: 'demo (60 per class, 64 px)',
    or the zip's or folder's own name."""
    data = str(config.get("data") or "")
    if data == "demo":
        return f"demo ({config.get('demo_per_class')} per class, {config.get('demo_size')} px)"
    return Path(data).name or data


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
            safe_extract(path, target)  # to a unique folder, published whole (core.data.folders)
        return target
    if path.is_dir():
        return path
    raise DatasetError(
        f"data must be 'demo', a .zip of class folders or a folder; {source!r} is none of these"
    )


def torchvision_folder(name: str) -> Path:
    """Flowers-102 (train split) or Oxford-IIIT Pet (trainval) through torchvision, laid out as class
    folders.

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
        raise DatasetError(
            f"could not download {name} with torchvision ({type(err).__name__}): this machine "
            "may be offline. Use --data demo, a zip of class folders, or a folder."
        ) from err
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


def prepare_everywhere(cfg: TrainConfig, split: Split | None = None) -> Prepared:
    """``prepare`` on every rank (rank 0 first: an extraction or a cache on a shared filesystem is made
    once), then a check that every rank holds the same dataset: each one's content hash is gathered and
    compared with rank 0's. A node that lacks the dataset or holds a different one fails every rank with
    one message, instead of training on different data. Not distributed: ``prepare``."""
    import torch.distributed as dist

    from core.finetune.distributed import from_everyone, where

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return prepare(cfg, split)

    def attempt() -> tuple[Prepared | None, str]:
        try:
            return prepare(cfg, split), ""
        except (DatasetError, ValueError, OSError) as err:
            return None, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__

    data, error = attempt() if dist.get_rank() == 0 else (None, "")
    dist.barrier()
    if dist.get_rank() != 0:
        data, error = attempt()
    mine = {
        **where(),
        "source": cfg.data,
        "error": error,
        "path": data.dataset.root if data else "",
        "sha256": data.dataset.content_hash() if data else "",
        "images": len(data.dataset.samples) if data else 0,
    }
    problem = disagreement(from_everyone(mine))
    if problem:
        raise DatasetError(problem)
    assert data is not None
    return data


def disagreement(ranks: list[dict]) -> str:
    """Why the ranks cannot train together on one dataset (empty when they can): one line naming the first
    node that lacks it or holds different content, compared with rank 0's."""
    ref = ranks[0]
    if ref["error"]:
        return f"rank 0 (host {ref['host']}) cannot read the dataset {ref['source']!r}: {ref['error']}"
    bad = []
    for r in ranks[1:]:
        where = f"node {r['node']} (host {r['host']}, rank {r['rank']})"
        if r["error"]:
            bad.append(
                f"{where} cannot read the dataset {r['source']!r}: {r['error']}; every node needs it at the "
                "same path (--data demo is generated on each node)"
            )
        elif r["sha256"] != ref["sha256"]:
            bad.append(
                f"{where} holds a different dataset at {r['path']} ({r['images']:,} images, sha256 "
                f"{r['sha256'][:12]}) from rank 0's at {ref['path']} ({ref['images']:,} images, sha256 "
                f"{ref['sha256'][:12]}); copy the same dataset to every node"
            )
    if not bad:
        return ""
    more = f" (and {len(bad) - 1} more rank(s) like it)" if len(bad) > 1 else ""
    return bad[0] + more
