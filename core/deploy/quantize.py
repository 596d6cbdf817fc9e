"""ONNX Runtime static int8: shape inference first (``quant_pre_process``), QDQ format, per-channel
weights, the activation type chosen for this CPU, calibrated on real images. And why an int8 model can
be slower: the nodes that stayed in float between QuantizeLinear/DequantizeLinear pairs (ops without
int8 kernels)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.deploy import DeployError
from core.errors import first_line

ISA_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2")


def cpu_isa() -> dict[str, Any]:
    """The CPU's model name and the instruction-set flags that decide int8 speed (Linux /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags |= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = {f: f in flags for f in ISA_FLAGS}
    return {"cpu": model, **have, "vnni": have["avx512_vnni"] or have["avx_vnni"], "amx": have["amx_int8"]}


@dataclass(frozen=True)
class QuantConfig:
    """Everything that decides an int8 model, recorded with it."""

    format: str = "QDQ"
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    calibration_method: str = "MinMax"
    calibration_count: int = 0
    calibration_source: str = ""
    preprocess: str = "onnxruntime.quantization.quant_pre_process (shape inference, no ORT optimisation)"
    kept_in_float: tuple[str, ...] = ()  # filled in by ``quantize``: the ends left in float (``ends``)
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(isa: dict[str, Any]) -> QuantConfig:
    """uint8 activations with int8 weights (ONNX Runtime's fast x86 path, U8S8: 2.4x faster than int8
    activations for resnet50 on a VNNI CPU here); without VNNI, 7-bit weights (``reduce_range``) avoid
    the saturation of the pre-VNNI int8 multiply (pmaddubsw)."""
    if isa.get("vnni"):
        return QuantConfig(
            reduce_range=False, why="the CPU has VNNI: full-range int8 weights, uint8 activations"
        )
    return QuantConfig(
        reduce_range=True,
        why="no VNNI on this CPU: reduce_range (7-bit weights) against saturation, uint8 activations",
    )


class _Reader:
    """ONNX Runtime's CalibrationDataReader over an array of inputs, a batch at a time."""

    def __init__(self, name: str, data: np.ndarray, batch: int = 8) -> None:
        self.items = iter([{name: data[i : i + batch]} for i in range(0, len(data), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)

    def rewind(self) -> None:  # older and newer ORT versions look for it
        pass


@dataclass(frozen=True)
class Quantized:
    path: str
    seconds: float
    size_bytes: int
    config: QuantConfig
    float_nodes: dict[str, int]
    quantized_nodes: dict[str, int]
    convs_total: int = 0  # every convolution of the graph, the ends kept in float included

    @property
    def convs_int8(self) -> int:
        return self.quantized_nodes.get("Conv", 0)


def quantize(
    fp32: str | Path,
    out: str | Path,
    calibration: np.ndarray,
    source: str,
    config: QuantConfig | None = None,
    keep_ends: bool = True,
) -> Quantized:
    """Static int8 of an fp32 ONNX model, calibrated on ``calibration`` (real images, already
    preprocessed). With ``keep_ends`` (a whole network) the image's first convolution and the classifier
    stay in float (``ends``); a block has no such ends: every convolution and matmul in it is quantized."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    fp32, out = Path(fp32), Path(out)
    config = config or choose(cpu_isa())
    config = QuantConfig(
        **{**config.to_dict(), "calibration_count": len(calibration), "calibration_source": source}
    )
    t = time.perf_counter()
    pre = out.with_name(f".{out.stem}.pre.onnx")
    try:
        quant_pre_process(str(fp32), str(pre), skip_optimization=True)
        fold_identities(pre)
        kept = ends(pre) if keep_ends else ()
        config = QuantConfig(**{**config.to_dict(), "kept_in_float": kept})
        quantize_static(
            str(pre),
            str(out),
            _Reader("input", calibration),
            quant_format=QuantFormat.QDQ,
            nodes_to_exclude=list(kept),
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=QuantType.QUInt8 if config.activation_type == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    except Exception as err:  # noqa: BLE001  ORT raises assorted errors; one line for the page
        out.unlink(missing_ok=True)
        raise DeployError(f"int8 quantization failed: {type(err).__name__}: {first_line(err, 200)}") from err
    finally:
        pre.unlink(missing_ok=True)
        for side in out.parent.glob(f".{out.stem}.pre*"):
            side.unlink(missing_ok=True)
    floats, quants = node_precision(out, skip=set(kept))
    return Quantized(
        str(out),
        time.perf_counter() - t,
        out.stat().st_size,
        config,
        floats,
        quants,
        convs_total=quants.get("Conv", 0) + floats.get("Conv", 0) + sum("Conv" in k for k in kept),
    )


def ends(path: Path) -> tuple[str, ...]:
    """The first convolution on the image and the classifier's final Gemm/MatMul, which are left in float:
    the normalised image and the logits lose most in 8 bits (a fine-tuned EfficientNet-Lite0 on the demo
    set kept its fp32 top-1 only with both in float), and they hold a small share of the MACs."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    first = next((n.name for n in graph.node if n.op_type == "Conv" and n.input[0] in inputs), None)
    producer = {o: n for n in graph.node for o in n.output}
    last = None
    for name in outputs:
        node = producer.get(name)
        while node is not None and node.op_type not in ("Gemm", "MatMul") and node.input:
            node = (
                producer.get(node.input[0])
                if node.op_type in ("Reshape", "Flatten", "Identity", "Add")
                else None
            )
        if node is not None and node.op_type in ("Gemm", "MatMul"):
            last = node.name
    return tuple(n for n in (first, last) if n)


def fold_identities(path: Path) -> int:
    """Replaces Identity nodes that only forward an initializer (the TorchScript exporter shares equal conv
    biases through them) by the initializer itself, so the quantizer sees every bias as a constant and
    can fuse each conv into an int8 kernel. Returns how many were folded."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Identity" or node.input[0] not in inits:
            continue
        src, dst = inits[node.input[0]], node.output[0]
        copy = onnx.TensorProto()
        copy.CopyFrom(src)
        copy.name = dst
        graph.initializer.append(copy)
        inits[dst] = copy
        graph.node.remove(node)
        folded += 1
    if folded:
        onnx.save(model, str(path))
    return folded


# ops ONNX Runtime's CPU provider runs in int8 when they sit between DequantizeLinear and QuantizeLinear (its
# QDQ
# node-unit fusions: QLinearConv, QLinearMatMul, QLinearAdd, ...); data-movement ops need no kernel of their
# own
INT8_KERNELS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MatMul",
        "Gemm",
        "Add",
        "Mul",
        "Concat",
        "AveragePool",
        "GlobalAveragePool",
        "MaxPool",
        "Sigmoid",
        "LeakyRelu",
        "Softmax",
        "Resize",
    }
)
MOVEMENT = frozenset(
    {
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Gather",
        "Slice",
        "Split",
        "Identity",
        "Shape",
        "Pad",
    }
)


def node_precision(path: str | Path, skip: set[str] | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """(compute ops that run in float, ops that run in int8), by op type. An op runs in int8 when ONNX
    Runtime has an int8 kernel for it and every data input comes from a DequantizeLinear (it fuses DQ ->
    op -> Q); any other compute op (hard-swish, hard-sigmoid, the squeeze-excite's ReduceMean, ...) runs
    in float, with a DequantizeLinear before it and a QuantizeLinear after it converting at the
    boundary. Data-movement ops, and the nodes in ``skip`` (the ends kept in float on purpose), count as
    neither."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    floats: Counter[str] = Counter()
    quants: Counter[str] = Counter()
    for node in graph.node:
        if (
            node.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant")
            or node.op_type in MOVEMENT
            or node.name in (skip or ())
        ):
            continue
        data = [
            i
            for i in node.input
            if i and i not in weights and i in producer and producer[i].op_type != "Constant"
        ]
        if (
            node.op_type in INT8_KERNELS
            and data
            and all(producer[i].op_type == "DequantizeLinear" for i in data)
        ):
            quants[node.op_type] += 1
        else:
            floats[node.op_type] += 1
    return dict(floats.most_common()), dict(quants.most_common())
