"""Issue 20's figures: on the demo set with the offline EfficientNet-Lite0, a linear probe and a
finetune_top run at 64 px and at 224 px, each exported to ONNX fp32 and int8: top-1 of PyTorch, ONNX
fp32 and int8 on the run's validation split, fp32's agreement with PyTorch (target at least 99.5%),
int8's top-1 against fp32 (target within 1 point), int8's batch-1 speed-up over fp32, and whether the
plain-onnxruntime script (a fresh virtual environment with only onnxruntime, numpy and Pillow)
reproduces the reported top-1."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-run-export-bench-")

from core.runs import export as rx  # noqa: E402
from core.runs import record as runs  # noqa: E402
from core.runs.artifacts import artifacts  # noqa: E402
from core.runs.cli import train as finetune  # noqa: E402

CONFIGS = [
    ("linear_probe", 64, 5),
    ("finetune_top", 64, 3),
    ("linear_probe", 224, 3),
    ("finetune_top", 224, 2),
]


def plain_venv() -> Path:
    venv = Path(os.environ["ARCHSCOPE_DATA_DIR"]) / "plain-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "onnxruntime==1.32.0", "numpy==2.4.6", "pillow==13.0.0"],
        check=True,
        capture_output=True,
    )
    return venv / "bin" / "python"


def snippet_hits(python: Path, run: runs.Run, record: dict) -> int:
    val = artifacts(run).splits["val"]
    paths, labels = val.paths, val.labels
    out = subprocess.run(
        [str(python), str(runs.folder(run) / "export" / rx.PREDICT), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    classes = record["preprocessing"]["classes"]
    return sum(line.split("\t")[1] == classes[y] for line, y in zip(out.strip().splitlines(), labels))


def main() -> None:
    p = parser(__doc__)
    p.parse_args()
    python = plain_venv()
    out: dict = {"threads": 1, "model": "efficientnet_lite0 (offline ImageNet weights)", "runs": []}
    for recipe, size, epochs in CONFIGS:
        name = f"{recipe} {size}px"
        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the trainer's epoch lines: keep stdout one JSON object
            assert (
                finetune(
                    [
                        "--data",
                        "demo",
                        "--demo-per-class",
                        "60",
                        "--demo-size",
                        "64",
                        "--image-size",
                        str(size),
                        "--recipe",
                        recipe,
                        "--epochs",
                        str(epochs),
                        "--threads",
                        "1",
                        "--quiet",
                        "--name",
                        name,
                    ]
                )
                == 0
            )
        run = next(r for r in runs.all_runs() if r.name == name)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        record = rx.export_run(run.id, int8=True)
        export_s = time.perf_counter() - t
        torch_val = record["pytorch"]["scores"]["val"]
        fp32, int8 = record["files"]["model.onnx"], record["files"]["model.int8.onnx"]
        hits = snippet_hits(python, run, record)
        out["runs"].append(
            {
                "recipe": recipe,
                "image_size": size,
                "epochs": epochs,
                "train_s": round(train_s, 1),
                "export_s": round(export_s, 1),
                "val_images": torch_val["n"],
                "reported_val_top1": run.result["best_top1"],
                "pytorch_val_top1": torch_val["top1"],
                "fp32_val_top1": fp32["scores"]["val"]["top1"],
                "fp32_agreement": fp32["scores"]["val"]["agreement_with_pytorch"],
                "fp32_max_abs_logit_diff": fp32["parity"]["max_abs_diff"],
                "int8_val_top1": int8["scores"]["val"]["top1"],
                "int8_minus_fp32_points": round(
                    100 * (int8["scores"]["val"]["top1"] - fp32["scores"]["val"]["top1"]), 2
                ),
                "int8_agreement": int8["scores"]["val"]["agreement_with_pytorch"],
                "latency_ms": {
                    k: round(v["median_ms"], 3)
                    for k, v in (
                        ("pytorch", record["pytorch"]["latency"]),
                        ("onnx_fp32", fp32["latency"]),
                        ("onnx_int8", int8["latency"]),
                    )
                },
                "int8_speedup_over_fp32": fp32["latency"]["median_ms"] / int8["latency"]["median_ms"],
                "size_bytes": {"onnx_fp32": fp32["size_bytes"], "onnx_int8": int8["size_bytes"]},
                "calibration": int8["quantization"],
                "plain_snippet_val_hits": hits,
                "plain_snippet_reproduces": hits == fp32["scores"]["val"]["hits"],
            }
        )
    out["targets"] = {
        "fp32_equals_pytorch": all(
            r["fp32_val_top1"] == r["pytorch_val_top1"] and r["fp32_agreement"] >= 0.995 for r in out["runs"]
        ),
        "int8_within_1_point": all(abs(r["int8_minus_fp32_points"]) <= 1.0 for r in out["runs"]),
        "snippet_reproduces": all(r["plain_snippet_reproduces"] for r in out["runs"]),
    }
    emit(out)


if __name__ == "__main__":
    main()
