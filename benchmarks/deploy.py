"""Issue 19's figures: resnet50, mobilenetv2_100, mobilenetv3_small_100 and efficientnet_lite0 at 224 px,
batch 1, 1 thread, in every runtime (PyTorch eager, torch.compile, ONNX Runtime fp32 and int8): median
latency, p10/p90, speed-up against eager with its ~95% interval, prepare seconds, first call, parity and
sizes, the quantization config and the float-node count where int8 is slower than fp32. Targets on this
VM: parity <= 1e-4 for all four; ONNX Runtime fp32 at least as fast as eager for all four; int8 resnet50
at least 2x faster than fp32."""

from __future__ import annotations

import os
import tempfile

from _common import emit, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-deploy-bench-")

from core.deploy.deployable import Deployable
from core.deploy.measure import measure  # noqa: E402
from core.deploy.targets import SERVER, keys, parse_targets  # noqa: E402

MODELS = ("resnet50", "mobilenetv2_100", "mobilenetv3_small_100", "efficientnet_lite0")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--runtimes", default=",".join(keys(SERVER)))
    p.add_argument("--max-time", type=float, default=30.0)
    args = p.parse_args()
    threads = args.threads or 1
    names = parse_targets(args.runtimes)
    out: dict = {"resolution": args.resolution, "batch": 1, "threads": threads, "models": {}}
    for name in MODELS:
        r = measure(Deployable.model(name, args.resolution), names, threads, max_time_s=args.max_time)
        rows = {}
        for rt, row in r["runtimes"].items():
            sp = row.get("speedup_vs_eager") or {}
            rows[rt] = {
                "median_ms": row.get("median_ms"),
                "p10_ms": row.get("p10_ms"),
                "p90_ms": row.get("p90_ms"),
                "speedup_vs_eager": sp.get("ratio"),
                "speedup_interval": [sp.get("low"), sp.get("high")],
                "prepare_s": row["prepare_s"],
                "first_call_ms": row["first_call_ms"],
                "size_bytes": row["size_bytes"],
                "parity": row["parity"],
                "error": row["error"],
                **(
                    {"exporter": row["detail"]["exporter"], "opset": row["detail"]["opset"]}
                    if rt == "onnx" and "exporter" in row["detail"]
                    else {}
                ),
                **(
                    {
                        "float_nodes": row["detail"]["float_nodes"],
                        "slower_than_fp32": row.get("slower_than_fp32"),
                        "quantization": row["detail"]["quantization"],
                    }
                    if rt == "onnx-int8" and not row["error"]
                    else {}
                ),
            }
        fp32, int8 = r["runtimes"].get("onnx", {}), r["runtimes"].get("onnx-int8", {})
        out["models"][name] = {
            "macs": r["macs"],
            "params": r["params"],
            "runtimes": rows,
            "int8_explanation": r["int8_explanation"],
            "timing": r["timing"],
            "parity_ok": bool(fp32.get("parity")) and fp32["parity"]["max_abs_diff"] <= 1e-4,
            "onnx_fp32_at_least_as_fast_as_eager": bool(fp32.get("median_ms"))
            and fp32["median_ms"] <= r["runtimes"]["eager"]["median_ms"],
            "int8_speedup_over_fp32": fp32["median_ms"] / int8["median_ms"]
            if fp32.get("median_ms") and int8.get("median_ms")
            else None,
        }
        out["environment"] = r["environment"]
    out["targets"] = {
        "parity_all": all(m["parity_ok"] for m in out["models"].values()),
        "fp32_not_slower_all": all(m["onnx_fp32_at_least_as_fast_as_eager"] for m in out["models"].values()),
        "resnet50_int8_2x_over_fp32": (out["models"]["resnet50"]["int8_speedup_over_fp32"] or 0) >= 2.0,
    }
    emit(out)


if __name__ == "__main__":
    main()
