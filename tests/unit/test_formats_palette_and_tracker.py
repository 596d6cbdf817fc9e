"""In core: the one formatter (units by column kind), the palette and log ticks, the LR finder's clipping,
the runs tracker (config columns, diff, default overlay), run names, the recommender's top-1 and offline
marks, the leaderboard, Explore's latency protocol and the compound-scaling counts kept in the store."""

import math
import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.present import fmt, plots, run_plots, style


@pytest.mark.parametrize(
    "name, integer, expected",
    [
        (
            "Saturation batch",
            False,
            "%.0f",
        ),  # a batch size held as float; once printed "2.00x" ("ratio" inside)
        ("saturation batch", True, "localized"),
        ("speed-up", False, "%.2f×"),
        ("MAC ratio", False, "%.2f×"),
        ("depth x", False, "%.2f×"),
        ("params (M)", False, "%.2f"),
        ("GMACs", False, "%.2f"),  # once 4 decimals
        ("params", False, "localized"),
        ("MACs", True, "localized"),
        ("head LR", False, "%.3g"),
        ("lowest LR", False, "%.3g"),
        ("best val top-1 %", False, "%.1f%%"),
        ("top-1 % (timm)", False, "%.1f%%"),
        ("val 95% low", False, "%.1f%%"),
        ("latency ms, 1 thread", False, "%.3f"),
        ("wall s", False, "%.1f"),
        ("best images/s", False, "%.1f"),
        ("id", True, None),
        ("phi (fit)", False, "%.2f"),
    ],
)
def test_one_formatter_by_column_kind(name, integer, expected):
    assert fmt.column_format(name, integer) == expected


def test_a_long_closed_form_is_one_term_a_line():
    terms = fmt.split_sum(r"C_{in} m + K^2 m + [\text{SE}]\, 2 m r + r + m + m C_{out}, \quad m = t C_{in}")
    assert terms == ["C_{in} m", "K^2 m", r"[\text{SE}]\, 2 m r", "r", "m", r"m C_{out}, \quad m = t C_{in}"]
    assert fmt.split_sum("(a + b) + c") == ["(a + b)", "c"]  # never inside brackets
    latex = fmt.stacked("", ["a", "b", "c"], "18{,}048")
    assert latex == r"\begin{aligned}& a \\ &+ b \\ &+ c \\ &= 18{,}048\end{aligned}"
    assert fmt.stacked("p", ["a", "b"]) == "p = a + b"


def test_block_summaries_are_plain_unicode_not_markup():
    from core.blocks.registry import get_block_class, list_blocks

    for block in list_blocks():
        summary = get_block_class(block).summary
        assert "^" not in summary and "||" not in summary and "->" not in summary, (block, summary)


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0.2, 1.3, [0.2, 0.5, 1, 2]),
        (6.26, 16, [5, 10, 20]),
        (16, 1024, [10, 20, 50, 100, 200, 500, 1000, 2000]),
    ],
)
def test_log_ticks_are_1_2_5_and_enclose_the_data(low, high, expected):
    assert style.ticks(low, high) == pytest.approx(expected)


def test_log_ticks_over_many_decades_are_decades_and_labels_read():
    ticks = style.ticks(2e-31, 1.0)
    assert ticks[0] <= 2e-31 and ticks[-1] == 1.0 and len(ticks) <= 10
    assert all(math.log10(t) == round(math.log10(t)) for t in ticks)
    assert [style.label(v) for v in (0.002, 0.5, 20, 5000, 2e6, 1e9, 1e-7)] == [
        "0.002",
        "0.5",
        "20",
        "5k",
        "2M",
        "1G",
        "1e-7",
    ]


def test_every_log_axis_gets_readable_ticks_and_titles_clear_the_toolbar():
    fig = plots.channel_sweep(
        pd.DataFrame(
            {
                "block": ["a"] * 3,
                "kind": ["conv"] * 3,
                "channels": [16, 64, 256],
                "params": [2304, 36864, 589824],
            }
        )
    )
    style.readable(fig)
    assert list(fig.layout.xaxis.tickvals) == [10, 20, 50, 100, 200, 500]
    assert list(fig.layout.xaxis.ticktext) == ["10", "20", "50", "100", "200", "500"]
    assert fig.layout.yaxis.ticktext[0] == "500" and fig.layout.margin.t >= 36  # room for the guides below
    guide = next(t for t in fig.data if t.name.startswith("∝ C²"))
    assert list(guide.y) == [
        2304 / 3,
        2304 / 3 * 16**2,
    ]  # slope 2, a third below a C² block: never on its line
    titled = go.Figure(layout=dict(title=dict(text="a title"), margin=dict(t=30)))
    assert style.readable(titled).layout.margin.t >= 64


def test_multi_panel_figures_split_into_panels_that_stack():
    frame = pd.DataFrame(
        {
            "block": ["a", "b"],
            "kind": ["conv", "depthwise_separable"],
            "colour": ["#1f77b4", "#ff7f0e"],
            "params": [10, 5],
            "MACs": [100, 20],
            "latency ms": [2.0, 1.0],
            "p10 ms": [1.8, 0.9],
            "p90 ms": [2.4, 1.2],
            "params ratio": [1.0, 2.0],
            "MAC ratio": [1.0, 5.0],
            "speed-up": [1.0, 2.0],
        }
    )
    panels = style.panels(plots.compare_bars(frame))
    assert [p.layout.title.text for p in panels] == ["Parameters", "MACs (per batch)", "Latency (median, ms)"]
    assert [len(p.data) for p in panels] == [1, 1, 1] and panels[2].layout.yaxis.title.text == "milliseconds"
    # the latency labels sit at the bar's base, so its whisker never covers them
    assert panels[2].data[0].textposition == "inside" and panels[2].data[0].insidetextanchor == "start"
    assert list(panels[0].data[0].marker.color) == ["#1f77b4", "#ff7f0e"]  # each block's registered colour
    single = go.Figure(go.Scatter(x=[1], y=[1]))
    assert style.panels(single) == [single]


def test_one_colour_per_concept():
    same_concept = {
        ("conv", "dense k×k conv"),
        ("depthwise_separable", "depthwise conv"),
        ("bottleneck_1x1", "1×1 pointwise conv"),
    }
    from core.blocks import get_block_class, list_blocks

    owners: dict[str, set[tuple[str, str]]] = {}
    blocks = {"block": {b: get_block_class(b).colour for b in list_blocks()}}  # each block names its own
    for family, colours in {**style.CONCEPTS, **blocks}.items():
        for name, colour in colours.items():
            owners.setdefault(colour.lower(), set()).add((family, name))
    for colour, who in owners.items():
        if len(who) > 1:  # shared only by a block and the layer kind it is made of
            names = {n for _, n in who}
            assert any(set(pair) == names for pair in same_concept), (colour, who)
    assert not {c.lower() for c in style.RUNS} & set(owners)  # a run never wears a concept's colour
    assert style.QUANTITY["time"] != style.KIND["depthwise conv"] != style.STACK["plain"]


def _contrast_on_white(colour: str) -> float:
    lin = [
        (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
        for c in (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    ]
    return 1.05 / (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] + 0.05)


def test_run_colours_read_on_white_and_differ_in_hue():
    import colorsys

    assert min(_contrast_on_white(c) for c in style.RUNS) >= 3.3  # the old yellow was 2.06
    hsv = [colorsys.rgb_to_hsv(*(int(c[i : i + 2], 16) / 255 for i in (1, 3, 5))) for c in style.RUNS]
    oranges = [
        c for c, (h, s, v) in zip(style.RUNS, hsv) if 20 <= h * 360 < 45 and s > 0.5 and v > 0.6
    ]  # not brown
    assert len(oranges) == 1 and len(set(style.RUNS)) == len(style.RUNS)  # #4 and #6 were both orange


def test_throughput_saturation_stars_are_in_the_legend():
    sweeps = [
        {
            "model": m,
            "resolution": 224,
            "saturation_batch": 4,
            "rows": [{"batch": b, "images_per_s": 10 * b} for b in (1, 2, 4)],
        }
        for m in ("a", "b")
    ]
    fig = plots.throughput(sweeps)
    stars = [t for t in fig.data if t.name == "★ saturation batch"]
    assert len(stars) == 2 and [t.showlegend for t in stars] == [True, False]


def test_the_lr_finder_cuts_the_divergent_tail_as_fastai_does():
    from core.present.run_plots import SKIP_END, lr_plot_range

    lrs = np.geomspace(1e-6, 1, 30)
    smooth = np.concatenate([np.linspace(2.3, 0.6, 24), [0.8, 1.5, 4.0, 12.0, 30.0, 60.0]])
    frame = pd.DataFrame({"lr": lrs, "loss": smooth + 0.05, "smoothed loss": smooth})
    kept, (lo, hi) = lr_plot_range(frame)
    assert len(kept) == len(frame) - SKIP_END and kept["smoothed loss"].max() == pytest.approx(2.3)
    assert hi < 2.5 and lo < 0.6  # the loss of 60 no longer sets the axis
    suggestion = float(lrs[10])
    fig = run_plots.lr_finder(frame, suggestion)
    assert fig.layout.yaxis.range[1] == pytest.approx(hi)
    marker = next(t for t in fig.data if t.name.startswith("suggested"))
    assert marker.x[0] == suggestion and marker.y[0] == pytest.approx(smooth[10])  # on the smoothed line


def test_an_empty_run_chart_says_what_it_waits_for():
    fig = run_plots.training_curves({"run": pd.DataFrame(columns=["step", "epoch", "wall_s"])})
    assert [a.text for a in fig.layout.annotations if "waiting" in a.text] == [
        "waiting for the first training step"
    ]


def test_lr_range_test_reports_progress(monkeypatch):
    from core.finetune.schedule import lr_range_test

    seen = []
    frame, _ = lr_range_test(lambda lr: 1.0 / (1 + lr), steps=6, on_step=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 6) for i in range(1, 7)] and len(frame) == 6


def fake_run(run_id, status="done", best=None, error="", name="", **config):
    from core.runs.record import Run

    cfg = {
        "model": "efficientnet_lite0",
        "recipe": "finetune_top",
        "data": "demo",
        "demo_per_class": 10,
        "demo_size": 32,
        "lr": 1e-3,
        "epochs": 3,
        "image_size": 32,
        "batch_size": 8,
        "augment": "light",
        "weights": "offline",
        "schedule": "cosine",
        "seed": 0,
        "layer_decay": 0.6,
        **config,
    }
    result = (
        {}
        if best is None
        else {
            "best_top1": best,
            "best_epoch": 2,
            "epochs_done": 3,
            "wall_s": 12.5,
            "info": {
                "dataset": {
                    "name": "demo (10 per class, 32 px)",
                    "sha256": "ab" * 32,
                    "images": 60,
                    "classes": 6,
                },
                "groups": [
                    {"stage": "head", "trainable": True, "lr": 1e-3},
                    {"stage": "stem", "trainable": True, "lr": 2e-5},
                    {"stage": "frozen", "trainable": False, "lr": 0.0},
                ],
            },
        }
    )
    return Run(run_id, name, cfg, status, None, "cpu", "", 0.0, None, None, None, error, result, False)


def test_the_runs_table_says_what_differed_and_blank_is_a_dash():
    from core.runs import tracker

    table = tracker.frame(
        [
            fake_run(1, best=0.5),
            fake_run(2, best=0.9, lr=3e-4, augment="strong"),
            fake_run(3, status="failed", error="x" * 500),
        ],
        {(2, 1): 0.12},
    )
    row = table.set_index("id").loc[2]
    assert (row["dataset"], row["data sha256"], row["images"]) == ("demo (10 per class, 32 px)", "ab" * 6, 60)
    assert (row["head LR"], row["lowest LR"], row["augment"], row["best val top-1 %"]) == (
        3e-4,
        2e-5,
        "strong",
        90,
    )
    assert row["val loss at best"] == 0.12 and math.isnan(row["layer decay"])  # decay only for finetune_full
    failed = table.set_index("id").loc[3]
    assert failed["dataset"] == "demo (10 per class, 32 px)" and failed["data sha256"] == "—"
    assert math.isnan(failed["best val top-1 %"]) and failed["error"] == "x" * 500  # whole, never cut
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    diff = tracker.diff(table, 1, 2, only_changes=True)
    assert set(diff["field"]) == {"head LR", "augment", "best val top-1 %", "val loss at best"}
    assert diff.set_index("field").loc["head LR", "#2"] == "0.0003"


def test_the_default_overlay_is_the_best_finished_runs_never_a_failed_one():
    from core.runs import tracker

    made = [
        fake_run(1, best=0.5),
        fake_run(2, status="failed"),
        fake_run(3, best=0.9),
        fake_run(4, best=0.9),
        fake_run(5, best=0.7),
        fake_run(6, status="running"),
    ]
    assert tracker.default_overlay(made) == [4, 3, 5]  # a tie: the newer run first
    assert tracker.default_overlay([fake_run(2, status="failed"), fake_run(6, status="running")]) == [6]
    hp = tracker.hyper_parameters(tracker.frame(made))
    assert list(hp["id"]) == [1, 3, 4, 5] and len(run_plots.parallel_runs(hp).data[0].dimensions) >= 6


def test_run_labels_never_repeat_themselves():
    from core.runs.record import default_name

    run = fake_run(7, best=0.5, name=default_name({"model": "efficientnet_lite0", "recipe": "finetune_top"}))
    assert run.label() == "efficientnet_lite0 · finetune_top · 50.0% · #7"
    assert (
        fake_run(8, name="top layers").label() == "top layers · finetune_top · efficientnet_lite0 · done · #8"
    )
    # a legend: id and top-1 first, so a narrow chart cuts the name's end, never them; a stopped run says so
    assert run.short_label() == "#7 · 50.0% · efficientnet_lite0 · finetune_top"
    assert fake_run(9, name="x" * 60).short_label(30) == "#9 · done · " + "x" * 17 + "…"
    assert (
        fake_run(10, status="cancelled", name="a").short_label()
        == "#10 · stopped · a · finetune_top · efficientnet_lite0"[:47] + "…"
    )


@pytest.mark.slow
def test_a_cli_run_without_a_name_is_named_as_the_page_names_it():
    import subprocess
    import sys
    from pathlib import Path

    from core.runs import record as runs

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "core.runs",
            "train",
            "--quiet",
            "--data",
            "demo",
            "--demo-per-class",
            "6",
            "--demo-size",
            "32",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--recipe",
            "linear_probe",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    run = runs.all_runs()[0]
    assert run.name == "efficientnet_lite0 · linear_probe" == runs.default_name(run.config)
    dataset = run.result["info"]["dataset"]
    assert (
        dataset["name"] == "demo (6 per class, 32 px)"
        and dataset["images"] == 36
        and len(dataset["sha256"]) == 64
    )


def test_the_dataset_hash_follows_the_content_not_the_order(tmp_path):
    from core.data import demo
    from core.data.ingest import scan

    a = scan(demo.generate(per_class=4, size=32, seed=0))
    b = scan(demo.generate(per_class=4, size=32, seed=0))
    c = scan(demo.generate(per_class=4, size=32, seed=1))
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_the_recommender_shows_top1_marks_offline_and_considers_lite0():
    from core.zoo import recommend

    for scenario, names in recommend.CANDIDATES.items():
        assert names[-1] == "efficientnet_lite0", scenario
    top1 = {"mobilenetv3_large_100": 75.8, "efficientnet_lite0": 75.5}
    rec = recommend.recommend(
        "Edge / real-time",
        500,
        10,
        {"mobilenetv3_large_100": 14.0, "efficientnet_lite0": 8.0},
        top1=top1,
        offline=("efficientnet_lite0",),
    )
    assert rec.backbone == "efficientnet_lite0" and rec.top1 == 75.5
    assert "ImageNet-1k top-1 75.5% (timm, published)" in rec.reasons[-1]
    rows = {c.name: c for c in rec.candidates}
    assert rows["efficientnet_lite0"].offline and not rows["mobilenetv3_large_100"].offline
    assert rows["mobilenetv3_large_100"].verdict == "14.0 ms at batch 1 misses the 10 ms budget"
    assert rows["mobilenetv3_small_100"].verdict == "not measured on this device yet"
    assert rows["mobilenetv3_large_100"].top1 == 75.8 and rows["mobilenetv3_small_100"].top1 is None


def test_the_leaderboard_joins_one_and_all_threads_throughput_and_top1(tmp_path, monkeypatch):
    from core.jobs import store
    from core.measure.settings import Setting
    from core.zoo import leaderboard, measure

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    cores = leaderboard.all_threads()
    for model, threads, ms in (
        ("resnet18", 1, 16.0),
        ("resnet18", cores, 9.0),
        ("mobilenetv3_small_100", 1, 6.0),
    ):
        s = Setting("cpu", "fp32", "contiguous", threads)
        payload = {
            **measure.setting_meta(model, 224, 1, s),
            "default_resolution": 224,
            "params": 11_689_512,
            "macs": 1_814_083_944,
            "latency_ms": ms,
            "measured_at": time.time(),
        }
        store.put_measurement(measure.setting_key(model, 224, 1, s), measure.KIND, payload, payload)
    sweep = {
        **measure.setting_meta("resnet18", 224, 8, Setting("cpu", "fp32", "contiguous", 1)),
        "rows": [{"batch": 1, "images_per_s": 60.0}, {"batch": 8, "images_per_s": 110.0}],
        "saturation_batch": 8,
    }
    store.put_measurement("sweep-key", "sweep", sweep, sweep)
    board = leaderboard.frame(Setting("cpu", "fp32", "contiguous", 1), budget_ms=10)
    r18 = board.set_index("model").loc["resnet18"]
    assert (r18["latency ms, 1 thread"], r18["latency ms, all threads"], r18["best images/s"]) == (
        16.0,
        9.0,
        110.0,
    )
    assert (
        r18["top-1 % (timm)"] > 60
        and r18["params (M)"] == pytest.approx(11.689512)
        and not r18["within budget"]
    )
    small = board.set_index("model").loc["mobilenetv3_small_100"]
    assert small["within budget"] and math.isnan(small["latency ms, all threads"])
    assert list(board["model"]) == ["resnet18", "mobilenetv3_small_100"]  # best published top-1 first
    assert leaderboard.missing(board) == {cores: ["mobilenetv3_small_100"]} or cores == 1


def test_explore_times_by_comparisons_rule_and_says_when_busy():
    import torch

    from core.measure.profiling import time_settled
    from core.measure.timing import time_interleaved

    timed = time_settled(torch.nn.Conv2d(8, 8, 3), (1, 8, 16, 16), threads=1, min_rounds=15, max_time_s=3)
    assert timed.rounds >= 15 and timed.steadiness is not None and len(timed.latency) == 1
    assert timed.busy == (not timed.steadiness.settled)
    assert "the same rule as Compare's ratios" in timed.note()
    calls = iter(range(10**9))

    def jittery():  # every third call 4x slower: the rounds never settle
        time.sleep(0.004 if next(calls) % 3 == 0 else 0.001)

    busy = time_interleaved([jittery], round_time_s=0.0, min_rounds=15, max_rounds=30, max_time_s=1.0)
    assert busy.busy and busy.note().startswith("This machine is busy")


def test_compound_scaling_counts_come_from_the_store_once_counted(tmp_path, monkeypatch):
    from core.zoo import scaling

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    empty = scaling.predicted_vs_measured([1.0], compute=False)
    assert empty["measured MAC ratio"].isna().all() and empty["predicted cost ratio"].iloc[
        1
    ] == pytest.approx(1.92027)
    official = scaling.official_points(compute=False)
    assert (
        official.empty and scaling.missing(empty, official) == 2 + 8
    )  # φ = 0 and 1, and B0-B7: nothing kept
    base = scaling.scaled_count(1.0, 1.0, 224)
    assert base["params"] == 5_288_548
    kept = scaling.predicted_vs_measured([1.0], compute=False)
    assert kept["measured MAC ratio"].iloc[0] == 1.0 and math.isnan(kept["measured MAC ratio"].iloc[1])
    assert scaling.missing(kept, official) == 1 + 8


def test_big_and_small_numbers_read_as_unicode_not_e_notation():
    assert [fmt.sci(v) for v in (1.15e10, 0.5, 1234.5, 3e-7, 12.345)] == [
        "1.15 × 10¹⁰",
        "0.5",
        "1,234",
        "3.00 × 10⁻⁷",
        "12.3",
    ]


def test_a_hyper_parameter_that_never_changes_shows_its_one_value_and_strips_replace_the_lines_on_a_phone():
    from core.present import style
    from core.runs import tracker

    made = [fake_run(1, best=0.5), fake_run(3, best=0.9), fake_run(4, best=0.8)]
    hp = tracker.hyper_parameters(tracker.frame(made))
    dims = {d.label: d for d in run_plots.parallel_runs(hp).data[0].dimensions}
    px = float(hp["image px"].iloc[0])
    assert hp["image px"].nunique() == 1 and list(dims["image px"].tickvals) == [
        px
    ]  # not 57.6-70.4 around 64
    assert dims["image px"].range[0] < px < dims["image px"].range[1]
    strips = run_plots.hparam_strips(hp)
    panels = style.panels(strips)
    shown = [
        c
        for c in ("recipe", "backbone", "augment", "head LR", "epochs", "image px", "batch")
        if hp[c].notna().all()
    ]
    assert len(panels) == len(shown) == len(strips.data)  # one strip (own chart) per parameter
    assert all(list(t.y) == list(hp["best val top-1 %"]) for t in strips.data)
