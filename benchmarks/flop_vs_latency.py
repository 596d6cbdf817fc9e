"""Figure 3 of the foundation issue: MAC ratio against the measured speed-up for compare mode's pairs
(timed interleaved, round by round; the speed-up is the median per-round ratio with a ~95% interval)."""

from __future__ import annotations

from _common import emit, environment, parser

from core.blocks.compare import PRESETS, compare


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    result = {"env": environment(args), "batch": args.batch, "pairs": {}}
    for preset, ((chs, hw), entries) in PRESETS.items():
        frame = compare(
            list(entries), chs, hw, args.batch, device=args.device, dtype=args.precision, threads=args.threads
        )
        result["pairs"][preset] = [
            {
                "block": r["block"],
                "params": int(r["params"]),
                "MACs": int(r["MACs"]),
                "latency_ms": round(r["latency ms"], 4),
                "MAC_ratio_vs_first": round(r["MAC ratio"], 2),
                "speed_up_vs_first": round(r["speed-up"], 2),
                "speed_up_interval": [round(r["speed-up low"], 2), round(r["speed-up high"], 2)],
            }
            for _, r in frame.iterrows()
        ]
        result["pairs"][preset].append({"timing": frame.attrs["note"]})
    emit(result)


if __name__ == "__main__":
    main()
