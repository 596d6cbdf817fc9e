"""Issue 12's figures: the ceilings (time to measure, agreement of repeated runs: target under 10 s and
±10%), the per-layer profile of resnet50 at 224 px (target under 60 s; cached reopen under 200 ms), and
the per-layer sum against the whole-model latency (target ±25%). Issue 28's: the per-level (cache-aware)
ceilings with their working-set sizes, and for resnet50 and mobilenetv3_small_100 every roofline point
checked against the ceiling of the level its working set fits in; any above it is listed with the reason
the profile gives."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from _common import emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-roofline-bench-")

from core.measure.ceilings import measure_ceilings  # noqa: E402
from core.measure.roofline import above_roofs, profile_layers, sum_note  # noqa: E402
from core.measure.settings import Setting  # noqa: E402
from core.present import plots  # noqa: E402
from core.zoo import layers  # noqa: E402
from core.zoo.catalog import build  # noqa: E402
from core.zoo.measure import setting_key, setting_meta  # noqa: E402


def spread(values: list[float]) -> float:
    med = statistics.median(values)
    return round(100 * max(abs(v / med - 1) for v in values), 1)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default="resnet50,mobilenetv3_small_100")
    args = p.parse_args()
    setting = Setting(args.device, args.precision, "contiguous", args.threads or 0)
    out = {
        "env": environment(args),
        "ceilings": {},
        "targets": {
            "ceilings_s": 10,
            "ceilings_pct": 10,
            "resnet50_profile_s": 60,
            "reopen_ms": 200,
            "sum_vs_whole_pct": 25,
        },
    }
    for precision in ("fp32", "bf16"):
        runs = [
            measure_ceilings(Setting(args.device, precision, "contiguous", args.threads or 0))
            for _ in range(args.repeats)
        ]
        c = runs[-1]
        out["ceilings"][precision] = {
            "device": c.device_name,
            "threads": c.threads,
            "seconds": [round(r.seconds, 2) for r in runs],
            "peak_gflops": [round(r.peak_gflops, 1) for r in runs],
            "peak_spread_pct": spread([r.peak_gflops for r in runs]),
            "bandwidth_gbs": [round(r.bandwidth_gbs, 2) for r in runs],
            "bandwidth_spread_pct": spread([r.bandwidth_gbs for r in runs]),
            "levels": [
                {
                    "level": lv["name"],
                    "working_set_bytes": lv["working_set_bytes"],
                    "capacity_bytes": lv.get("capacity_bytes"),
                    "gbs": [round(r.levels[i]["gbs"], 1) if r.levels[i]["gbs"] else None for r in runs],
                }
                for i, lv in enumerate(c.levels)
            ],
            "call_us": [round(r.call_us, 2) for r in runs],
            "datasheet_tflops_tbs": c.datasheet(),
        }
    roof = layers.ceilings(setting)
    out["roof_used"] = {"levels": roof.levels, "call_us": round(roof.call_us, 2), "note": roof.levels_note()}
    out["models"] = {}
    for name in args.models.split(","):
        t = time.perf_counter()
        frame = profile_layers(build(name, 224), (1, 3, 224, 224), setting, roof)
        took = time.perf_counter() - t
        out["models"][name] = {
            "layers": len(frame),
            "profile_s": round(took, 1),
            "whole_ms": round(frame.attrs["whole_ms"], 3),
            "sum_ms": round(frame.attrs["sum_ms"], 3),
            "sum_pct_of_whole": round(100 * frame.attrs["sum_ms"] / frame.attrs["whole_ms"], 1),
            "note": sum_note(frame),
        }
        points = frame[frame["macs"] > 0]
        above = above_roofs(frame)
        out["models"][name].update(
            {
                "points": len(points),
                "by_level": points["level"].value_counts().to_dict(),
                "above_dram_roof_under_own": int(points["roof"].str.startswith("above the DRAM roof").sum()),
                "under_own_level_roof": int(len(points) - len(above)),
                "above_own_level_roof": [
                    {
                        "layer": r["module"],
                        "kind": r["kind"],
                        "level": r["level"],
                        "bytes": int(r["bytes"]),
                        "gbs": round(r["gbs"], 1),
                        "reason": r["roof"],
                    }
                    for _, r in above.iterrows()
                ],
            }
        )
        if name == "resnet50":  # the job's path: store it, then reopen from the store
            from core.jobs import store

            store.put_measurement(
                setting_key(name, 224, 1, setting, "layers"),
                "layers",
                setting_meta(name, 224, 1, setting),
                {"rows": frame.to_dict("records"), "attrs": dict(frame.attrs), "ceilings": roof.to_dict()},
            )
            reopen = []
            for _ in range(5):
                t = time.perf_counter()
                cached, c = layers.cached_profile(name, 224, setting)
                plots.roofline({name: cached}, c.peak_gflops, c.bandwidth_gbs, c.levels)
                reopen.append((time.perf_counter() - t) * 1e3)
            out["models"][name]["cached_reopen_ms_median"] = round(statistics.median(reopen), 1)
    emit(out)


if __name__ == "__main__":
    main()
