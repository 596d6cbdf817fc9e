"""Checkpoints (atomic, resumable) and the exported bundle (safetensors + labels + preprocessing)."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from core.data.preprocess import Preprocessing, embed_pixels

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the weights of the best epoch (``BEST_RULE``): what the bundle exports
NO_TEST = "no test split (train with --test-fraction > 0 to hold one out)"
BEST_RULE = "the highest val top-1; a tie goes to the lower val loss, then to the later epoch"


LOCK = ".bundle.lock"


class BundleBusy(RuntimeError):
    """Another writer holds the bundle's lock; the message names it (a job, a worker, a command line)."""


@contextmanager
def writer_lock(
    folder: Path, holder: str, wait: bool = False, lock_file: Path | None = None
) -> Iterator[None]:
    """One writer per bundle at a time: an exclusive ``flock`` on ``folder/.bundle.lock`` (or
    ``lock_file``), which the kernel drops when the holder's process ends, however it ends. The run's
    final bundle (the trainer), an export and a delete all take it; with ``wait`` the caller queues
    behind the holder, else BundleBusy names the holder."""
    import fcntl

    path = lock_file or folder / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.seek(0)
        who = fh.read().strip() or "another process"
        fh.close()
        raise BundleBusy(who) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(holder)
        fh.flush()
        yield
    finally:
        fh.close()


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    random.setstate((3, tuple(state["python"]), state["python_pos"]))


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Writes to a temporary file and renames it over the old one: a crash never leaves half a checkpoint."""
    return _save_atomic(run_dir / CHECKPOINT, payload)


def save_best(
    run_dir: Path, model: torch.nn.Module, epoch: int, top1: float, loss: float | None = None
) -> Path:
    """Keeps the weights of the best epoch so far (atomically), with the epoch, its val top-1 and val loss."""
    return _save_atomic(
        run_dir / BEST,
        {
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "epoch": epoch,
            "val_top1": top1,
            "val_loss": loss,
        },
    )


def load_best(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / BEST
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of disk: ENOSPC, or a writer's own error (torch's zip writer says
    only 'file write failed') while the disk has almost nothing left."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(folder).free < 64 * 2**20
    except OSError:
        return False


def written_whole(path: Path, write: Callable[[Path], None]) -> Path:
    """Runs ``write`` on a temporary sibling of ``path`` (one per writer) and renames it into place; on any
    failure the temporary is removed, and a full disk is raised as ENOSPC naming the file."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(err, Exception) and disk_full(err, path.parent):
            raise OSError(errno.ENOSPC, f"disk full while writing {path.name} in {path.parent}") from err
        raise
    return path


def _save_atomic(path: Path, payload: dict[str, Any]) -> Path:
    return written_whole(path, lambda tmp: torch.save(payload, tmp))


def write_text_atomic(path: Path, text: str) -> Path:
    """A text file written whole or not at all (see ``written_whole``)."""
    return written_whole(path, lambda tmp: tmp.write_text(text))


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


README = """# {arch}, fine-tuned by Archscope

{n} classes: {classes}. These are the weights of epoch {epoch}, chosen by {rule} (val top-1 {top1}, val loss
{loss}); that is the figure Archscope reports for this run.

Classify a photo as is (needs `pip install timm safetensors pillow`):

```bash
python predict.py photo.jpg            # prints the top-5 classes and their probabilities
```

Or load it with plain timm (no Archscope needed). `config.json` is timm's own format, so the model comes
back with its `pretrained_cfg` and `timm.data.resolve_data_config` gives the preprocessing it was trained
with ({size} px, bilinear, centre crop, its mean and std):

```python
import timm
model = timm.create_model("local-dir:/path/to/this/folder", pretrained=True).eval()
cfg = timm.data.resolve_data_config(model=model)           # input_size (3, {size}, {size}), crop_pct 1.0
transform = timm.data.create_transform(**cfg)
labels = model.pretrained_cfg["label_names"]
```

Preprocessing (also in bundle.json): EXIF orientation applied, RGB, the shorter side resized to {size} px
(bilinear), a centre crop of {size}×{size}, scaled to [0, 1], `(x - mean) / std` per channel.
"""


PREDICT = '''"""Classifies images with this bundle, using timm for the model:
    python predict.py IMAGE [IMAGE ...] [--top K]
Prints path, class and probability per line (the top K classes per image). An image that cannot be read
is one line on stderr and the rest go on; the exit code is then 1. The preprocessing is the training's own
(copied below)."""
import argparse
import json
import sys
from pathlib import Path

import timm
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent

# BEGIN pixels
# END pixels


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF, WebP, TIFF)")
    parser.add_argument("--top", type=int, default=5, help="how many classes to print per image (default 5)")
    args = parser.parse_args(argv)
    meta = json.loads((HERE / "bundle.json").read_text())
    pre = meta.get("preprocessing", meta)
    model = timm.create_model(f"local-dir:{HERE}", pretrained=True).eval()
    labels = model.pretrained_cfg["label_names"]
    failed = 0
    for path in args.images:
        try:
            with Image.open(path) as img:
                x = preprocess(img, pre["image_size"], pre["mean"], pre["std"])
        except (OSError, ValueError) as err:       # unreadable, truncated, a folder, not an image
            print(f"{path}: cannot read this image ({reason(err)})", file=sys.stderr)
            failed += 1
            continue
        with torch.inference_mode():
            probs = model(torch.from_numpy(x)[None]).softmax(-1)[0]
        values, idx = probs.topk(min(args.top, len(labels)))
        for v, i in zip(values.tolist(), idx.tolist()):
            print(f"{path}\\t{labels[i]}\\t{v:.4f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def timm_config(
    arch: str, classes: tuple[str, ...], image_size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> dict[str, Any]:
    """``config.json`` as timm's ``save_for_hf`` writes it: ``timm.create_model("local-dir:FOLDER",
    pretrained=True)`` reads it back, and ``resolve_data_config(model=model)`` then reproduces the
    training preprocessing."""
    return {
        "architecture": arch,
        "num_classes": len(classes),
        "label_names": list(classes),
        "pretrained_cfg": {
            "input_size": [3, image_size, image_size],
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": list(mean),
            "std": list(std),
            "num_classes": len(classes),
            "label_names": list(classes),
            "fixed_input_size": False,
        },
    }


ONNX_README = """
## Without PyTorch: ONNX Runtime

`model.onnx` (fp32) and, when exported, `model.int8.onnx` (static int8) hold the same epoch.
`bundle.json`'s "onnx" section records how they were made (exporter, opset, versions, calibration,
SHA-256) and what they score on this run's validation and test images. With only
`pip install onnxruntime numpy pillow`:

```bash
python predict_onnx.py photo.jpg                            # prints: path, class, probability
python predict_onnx.py photo.jpg --model model.int8.onnx
```

`predict_onnx.py` preprocesses exactly as training did: EXIF orientation applied, RGB, the shorter side
resized to `image_size` (bilinear), a centre crop, scaled to [0, 1], then `(x - mean) / std` per channel,
NCHW float32, fed to the input named in `bundle.json` (`onnx.preprocessing`).
"""


def export(
    run_dir: Path,
    model: torch.nn.Module,
    arch: str,
    classes: tuple[str, ...],
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    epoch: int = 0,
    val_top1: float | None = None,
    val_loss: float | None = None,
    test: dict[str, Any] | None = None,
) -> Path:
    """The fine-tuned bundle: model.safetensors + config.json (timm's, with ``pretrained_cfg``) +
    bundle.json (classes, model name, preprocessing, the exported epoch, its val top-1 and loss, and the
    rule that chose it) + predict.py + a README with a plain-timm loading snippet."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    pre = Preprocessing(int(image_size), tuple(mean), tuple(std))  # type: ignore[arg-type]
    meta = {
        "model": arch,
        "classes": list(classes),
        "image_size": image_size,
        "mean": list(mean),
        "std": list(std),
        "resize": "shorter side to image_size, bilinear, centre crop",
        "preprocessing": pre.to_dict(),
        "epoch": epoch,
        "val_top1": val_top1,
        "val_loss": val_loss,
        "epoch_rule": BEST_RULE,
        "test": test or {"note": NO_TEST},
    }
    shown = ", ".join(classes[:10]) + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")

    def write(out: Path) -> None:  # the whole folder under a temporary name, renamed when complete
        out.mkdir()
        save_file(state, str(out / "model.safetensors"))
        (out / "bundle.json").write_text(json.dumps(meta, indent=2))
        (out / "config.json").write_text(
            json.dumps(timm_config(arch, classes, image_size, mean, std), indent=2)
        )
        (out / "predict.py").write_text(embed_pixels(PREDICT))
        (out / "README.md").write_text(
            README.format(
                arch=arch,
                n=len(classes),
                classes=shown,
                epoch=epoch,
                size=image_size,
                rule=BEST_RULE,
                top1="n/a" if val_top1 is None else f"{val_top1:.2%}",
                loss="n/a" if val_loss is None else f"{val_loss:.4f}",
            )
        )
        os.chmod(
            out / "model.safetensors", _file_mode()
        )  # safetensors writes 0600; match the rest of the bundle

    out = run_dir / "export"
    run_dir.mkdir(parents=True, exist_ok=True)
    if out.exists():  # an earlier export of this run (a resume exports again)
        shutil.rmtree(out)
    return written_whole(out, write)


def _file_mode() -> int:
    """The mode a plain new file gets under this process's umask (0644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class Predictor:
    """Loads an exported bundle and classifies images."""

    def __init__(self, bundle_dir: str | Path) -> None:
        folder = Path(bundle_dir)
        self.meta = json.loads((folder / "bundle.json").read_text())
        import timm

        self.model = timm.create_model(
            self.meta["model"], pretrained=False, num_classes=len(self.meta["classes"])
        )
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")))
        self.model.eval()
        self.preprocessing = Preprocessing.from_dict(self.meta.get("preprocessing", self.meta))

    def probabilities(self, image: str | Path | Image.Image) -> torch.Tensor:
        x = torch.from_numpy(self.preprocessing.array(image))
        with torch.inference_mode():
            return self.model(x[None]).softmax(-1)[0]

    def top_k(self, image: str | Path | Image.Image, k: int = 5) -> list[tuple[str, float]]:
        p = self.probabilities(image)
        values, idx = p.topk(min(k, len(p)))
        return [(self.meta["classes"][i], float(v)) for v, i in zip(values, idx)]
