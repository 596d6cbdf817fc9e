"""Issue 18's figure: does "where the time goes" account for the whole forward? For resnet50,
mobilenetv3_small_100 and efficientnet_b0 at 224 px, batch 1: what the modules own inside one whole
forward (hooks with one timer: layers plus the blocks' own ops; target at least 90% of that forward),
what is left (the model's own forward), the hooks' cost against the clean forward timed interleaved, and
the old figure: the layers timed alone, one by one, against the clean forward."""

from __future__ import annotations

import os
import tempfile
import time

from _common import emit, environment, parser

os.environ["ARCHSCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="archscope-accounting-bench-")

from core.measure.roofline import profile_layers, sum_note  # noqa: E402
from core.measure.settings import Setting  # noqa: E402
from core.zoo import layers  # noqa: E402
from core.zoo.catalog import build  # noqa: E402

MODELS = ("resnet50", "mobilenetv3_small_100", "efficientnet_b0")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--resolution", type=int, default=224)
    args = p.parse_args()
    setting = Setting(args.device, args.precision, "contiguous", args.threads or 1)
    out = {
        "env": environment(args),
        "resolution": args.resolution,
        "batch": 1,
        "target_modules_pct": 90,
        "models": {},
    }
    roof = layers.ceilings(setting)
    for name in MODELS:
        t = time.perf_counter()
        frame = profile_layers(
            build(name, args.resolution), (1, 3, args.resolution, args.resolution), setting, roof
        )
        a = frame.attrs
        fwd = a["forward_ms"]
        out["models"][name] = {
            "layers": len(frame),
            "profile_s": round(time.perf_counter() - t, 1),
            "forward_with_hooks_ms": round(fwd, 3),
            "clean_forward_ms": round(a["clean_ms"], 3),
            "hook_overhead_pct": round(100 * (fwd / a["clean_ms"] - 1), 1),
            "layers_in_forward_ms": round(a["in_layers_ms"], 3),
            "blocks_own_ms": round(a["blocks_own_ms"], 3),
            "model_own_ms": round(a["model_own_ms"], 3),
            "modules_pct_of_forward": round(100 * (a["in_layers_ms"] + a["blocks_own_ms"]) / fwd, 1),
            "layers_pct_of_forward": round(100 * a["in_layers_ms"] / fwd, 1),
            "blocks_own_pct_of_forward": round(100 * a["blocks_own_ms"] / fwd, 1),
            "model_own_pct_of_forward": round(100 * a["model_own_ms"] / fwd, 1),
            "top_blocks_own_ms": {k: round(v, 3) for k, v in a["top_blocks_own"].items()},
            "isolated_sum_ms": round(a["sum_ms"], 3),
            "clean_whole_ms_timer": round(a["whole_ms"], 3),
            "isolated_sum_pct_of_whole": round(100 * a["sum_ms"] / a["whole_ms"], 1),
            "attribution_runs_kept": a["attribution_runs"],
            "note": sum_note(frame),
        }
    out["all_meet_target"] = all(m["modules_pct_of_forward"] >= 90 for m in out["models"].values())
    emit(out)


if __name__ == "__main__":
    main()
