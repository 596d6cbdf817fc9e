"""Figure 3 of the backbones issue (GPU): the curated list on CUDA, batch-1 latency and bf16 channels_last
throughput at batch 256, each against timm's benchmark method run in the same process."""
from __future__ import annotations

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
    args = p.parse_args()
    result = {"env": environment(args), "models": {}}
    fp32 = Setting(args.device, "fp32", "contiguous")
    bf16_cl = Setting(args.device, "bf16", "channels_last")
    for name in args.models.split(","):
        res = default_resolution(name)
        ours1 = measure(name, res, fp32, refresh=True, min_time_s=0.5)
        theirs1 = timm_benchmark(build(name, res), 1, res, args.device, "fp32")
        sweep = throughput_sweep(name, res, bf16_cl, batches=(args.batch,), time_cap_s=60)
        theirs_b = timm_benchmark(build(name, res), args.batch, res, args.device, "bf16", channels_last=True)
        ours_b = sweep["rows"][0]["images_per_s"] if sweep["rows"] else None
        result["models"][name] = {
            "resolution": res, "gmacs": round(ours1["macs"] / 1e9, 3),
            "b1_fp32_latency_ms": {"archscope_median": round(ours1["latency_ms"], 3),
                                   "timm_method_mean": round(theirs1["step_ms"], 3)},
            f"b{args.batch}_bf16_channels_last_img_s": {
                "archscope": round(ours_b, 1) if ours_b else sweep["stop_reason"],
                "timm_method": round(theirs_b["images_per_s"], 1),
                "peak_memory_GiB": peak_gib(sweep)}}
    emit(result)


if __name__ == "__main__":
    main()
