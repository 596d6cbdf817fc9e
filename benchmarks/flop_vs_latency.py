"""Figure 3 of the foundation issue: MAC ratio against measured latency ratio for compare mode's pairs."""
from __future__ import annotations

from _common import emit, environment, parser

from core.measure.compare import PRESETS, compare


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    result = {"env": environment(args), "batch": args.batch, "pairs": {}}
    for preset, ((chs, hw), entries) in PRESETS.items():
        frame = compare(list(entries), chs, hw, args.batch, device=args.device, dtype=args.precision,
                        min_time_s=0.5)
        result["pairs"][preset] = [{
            "block": r["block"], "params": int(r["params"]), "MACs": int(r["MACs"]),
            "latency_ms": round(r["latency ms"], 4), "MAC_ratio_vs_first": round(r["MAC ratio"], 2),
            "latency_ratio_vs_first": round(r["latency ratio"], 2)} for _, r in frame.iterrows()]
    emit(result)


if __name__ == "__main__":
    main()
