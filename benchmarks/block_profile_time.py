"""Figure 1 of the foundation issue: time to profile each block at its default shape, cold (first call in a
fresh process, imports excluded) and warm (second call), and the time the page takes to re-render after
a widget change (AppTest)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _common import emit, environment, parser

from core.blocks import block_defaults, create_block, get_block_class, list_blocks
from core.measure.profiling import profile_module

argparse_hidden = "internal: profile one block in this process and print its JSON"


def one_block(name: str, device: str, precision: str) -> dict[str, object]:
    hw = get_block_class(name).default_hw
    shape = (1, block_defaults(name)["in_chs"], hw, hw)
    times = []
    for _ in range(2):  # first call is cold (fvcore trace, allocator, kernels), second warm
        t = time.perf_counter()
        profile_module(create_block(name), shape, device=device, dtype=precision)
        times.append(time.perf_counter() - t)
    return {"input": "x".join(map(str, shape)), "cold_s": round(times[0], 3), "warm_s": round(times[1], 3)}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--one", help=argparse_hidden)
    p.add_argument("--skip-page", action="store_true")
    args = p.parse_args()
    if args.one:
        print(json.dumps(one_block(args.one, args.device, args.precision)))
        return
    result = {"env": environment(args), "target_s": 1.5, "blocks": {}}
    for name in list_blocks():
        cmd = [
            sys.executable,
            "-W",
            "ignore",
            __file__,
            "--one",
            name,
            "--device",
            args.device,
            "--precision",
            args.precision,
        ] + (["--threads", str(args.threads)] if args.threads else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        result["blocks"][name] = json.loads(out.strip().splitlines()[-1])
    result["max_cold_s"] = max(b["cold_s"] for b in result["blocks"].values())
    result["max_warm_s"] = max(b["warm_s"] for b in result["blocks"].values())
    if not args.skip_page:
        result["page_rerender"] = page_rerender()
    emit(result)


def page_rerender() -> dict[str, float]:
    """Seconds for the block explorer to re-render after changing a block's channels (fresh measurement)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=300)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    changes = []
    for value in (128, 192, 64):
        at.number_input(key="conv.in_chs").set_value(value)
        t = time.perf_counter()
        at.run()
        changes.append(time.perf_counter() - t)
        assert not at.exception
    return {
        "first_render_s": round(first, 3),
        "widget_change_s": [round(c, 3) for c in changes],
        "max_widget_change_s": round(max(changes), 3),
        "target_s": 2.0,
    }


if __name__ == "__main__":
    main()
