"""Figure 3 of the backbones issue (GPU): the curated list on CUDA, batch-1 latency and bf16 channels_last
throughput at batch 256, each against timm's benchmark method run in the same process. Batch-1 latency
is compared median against median, in --rounds rounds that alternate the two methods (issue 10: within
±10%)."""

from __future__ import annotations

import statistics

from _common import emit, environment, parser
from _timm_method import timm_benchmark

from core.measure.settings import Setting
from core.zoo.catalog import CURATED, build, default_resolution
from core.zoo.measure import measure, throughput_sweep


def peak_gib(sweep: dict) -> float | None:
    peak = sweep["rows"][0]["peak_memory_bytes"] if sweep["rows"] else None
    return round(peak / 2**30, 2) if peak else None


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--models", default=",".join(CURATED))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    result = {"env": environment(args), "models": {}}
    fp32 = Setting(args.device, "fp32", "contiguous")
    bf16_cl = Setting(args.device, "bf16", "channels_last")
    for name in args.models.split(","):
        res = default_resolution(name)
        ours, theirs, walls = [], [], []
        model = build(name, res)
        for _ in range(args.rounds):  # alternate, so clocks and load hit both alike
            ours1 = measure(name, res, fp32, refresh=True, min_time_s=0.5)
            ours.append(ours1["latency_ms"])
            walls.append(ours1.get("latency_wall_ms"))
            theirs.append(timm_benchmark(model, 1, res, args.device, "fp32")["median_ms"])
        a, b = statistics.median(ours), statistics.median(theirs)
        sweep = throughput_sweep(name, res, bf16_cl, batches=(args.batch,), time_cap_s=60)
        theirs_b = timm_benchmark(build(name, res), args.batch, res, args.device, "bf16", channels_last=True)
        ours_b = sweep["rows"][0]["images_per_s"] if sweep["rows"] else None
        result["models"][name] = {
            "resolution": res,
            "gmacs": round(ours1["macs"] / 1e9, 3),
            "b1_fp32_latency_ms": {
                "archscope_median": round(a, 3),
                "timm_method_median": round(b, 3),
                "difference_pct": round(100 * (a - b) / b, 1),
                "archscope_host_wall_median": round(statistics.median(walls), 3) if all(walls) else None,
                "rounds_archscope": [round(x, 3) for x in ours],
                "rounds_timm": [round(x, 3) for x in theirs],
            },
            f"b{args.batch}_bf16_channels_last_img_s": {
                "archscope": round(ours_b, 1) if ours_b else sweep["stop_reason"],
                "timm_method": round(theirs_b["images_per_s"], 1),
                "peak_memory_GiB": peak_gib(sweep),
            },
        }
    diffs = [abs(m["b1_fp32_latency_ms"]["difference_pct"]) for m in result["models"].values()]
    result["b1_max_abs_difference_pct"] = max(diffs) if diffs else None
    result["b1_target_pct"] = 10
    emit(result)


if __name__ == "__main__":
    main()
