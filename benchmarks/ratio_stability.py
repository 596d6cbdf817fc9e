"""Issue 10: how stable compare mode's speed-up is from one run to the next. Each of the lecture's pairs is
measured in --runs separate processes (a fresh process each time, as a page visit after a restart would
be); for each pair the spread of the reported speed-up across those runs, as the largest deviation from
their median. Deployable: every pair within ±15%."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import emit, environment, parser

from core.blocks.compare import PRESETS

HERE = Path(__file__).resolve().parent


def one_run(preset: str, args) -> list[dict]:
    """Runs compare() for one preset in a fresh interpreter and returns its rows."""
    code = (
        "import json, sys; sys.path.insert(0, %r); import _common\n"
        "from core.blocks.compare import PRESETS, compare\n"
        "(chs, hw), entries = PRESETS[%r]\n"
        "f = compare(list(entries), chs, hw, 1, device=%r, dtype=%r, threads=%r)\n"
        "print(json.dumps({'rows': [{'block': r['block'], 'speed_up': r['speed-up'], 'low': r['speed-up "
        "low'],"
        " 'high': r['speed-up high'], 'MAC_ratio': r['MAC ratio']} for _, r in f.iterrows()],"
        " 'rounds': f.attrs['interleaved'].rounds, 'busy': f.attrs['busy']}))\n"
    ) % (str(HERE), preset, args.device, args.precision, args.threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    result = {"env": environment(args), "runs": args.runs, "target_pct": 15, "pairs": {}}
    for preset, (_, entries) in PRESETS.items():
        runs = [one_run(preset, args) for _ in range(args.runs)]
        for i in range(1, len(entries)):
            ratios = [r["rows"][i]["speed_up"] for r in runs]
            med = statistics.median(ratios)
            worst = max(abs(r / med - 1) for r in ratios) * 100
            result["pairs"][f"{preset}: {entries[0].label} vs {entries[i].label}"] = {
                "MAC_ratio": round(runs[0]["rows"][i]["MAC_ratio"], 2),
                "speed_ups": [round(r, 3) for r in ratios],
                "median": round(med, 3),
                "max_deviation_pct": round(worst, 1),
                "within_target": worst <= 15,
                "rounds": [r["rounds"] for r in runs],
                "busy_runs": sum(r["busy"] for r in runs),
            }
    result["all_within_target"] = all(v["within_target"] for v in result["pairs"].values())
    emit(result)


if __name__ == "__main__":
    main()
