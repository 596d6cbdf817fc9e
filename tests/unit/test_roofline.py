"""The roofline: bytes and intensity against closed forms, the memory/compute verdict with fixed ceilings,
layer kinds, the per-layer replay and how it adds up, and the cached backbone profile job."""

import re
from fractions import Fraction

import pandas as pd
import pytest
import torch
from torch import nn

from core.measure import ceilings as cl
from core.measure import roofline as rl
from core.measure.ceilings import Ceilings
from core.measure.settings import Setting

FIXED = Ceilings(
    "cpu", "test CPU", "fp32", 1, peak_gflops=100.0, bandwidth_gbs=20.0, gemm_n=0, stream_mib=0, seconds=0.0
)  # ridge at 5 FLOP/B


def one_layer(module: nn.Module, shape, precision: str):
    frame = rl.profile_layers(
        nn.Sequential(module), shape, Setting("cpu", precision, "contiguous", 1), FIXED, min_time_s=0.01
    )
    assert len(frame) == 1
    return frame.iloc[0]


CASES = {
    # (module, input shape, MACs, input + output + weight elements)
    "dense 3x3 256->256 @14": (
        lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False),
        (1, 256, 14, 14),
        256 * 256 * 9 * 196,
        256 * 196 + 256 * 196 + 256 * 256 * 9,
    ),
    "depthwise 3x3 C=128 @56": (
        lambda: nn.Conv2d(128, 128, 3, padding=1, groups=128, bias=False),
        (1, 128, 56, 56),
        9 * 128 * 56 * 56,
        2 * 128 * 56 * 56 + 128 * 9,
    ),
    "linear 1280->1000": (
        lambda: nn.Linear(1280, 1000),
        (1, 1280),
        1280 * 1000,
        1280 + 1000 + 1280 * 1000 + 1000,
    ),
}


@pytest.mark.parametrize("precision,size", [("fp32", 4), ("bf16", 2)])
@pytest.mark.parametrize("case", list(CASES))
def test_bytes_and_intensity_match_the_closed_form(case, precision, size):
    build, shape, macs, elems = CASES[case]
    row = one_layer(build(), shape, precision)
    assert row["macs"] == macs
    assert row["bytes"] == elems * size
    assert Fraction(row["intensity"]).limit_denominator(10**9) == Fraction(2 * macs, elems * size)


def test_depthwise_is_memory_bound_and_dense_is_compute_bound_with_fixed_ceilings():
    dw = one_layer(CASES["depthwise 3x3 C=128 @56"][0](), (1, 128, 56, 56), "fp32")
    dense = one_layer(CASES["dense 3x3 256->256 @14"][0](), (1, 256, 14, 14), "fp32")
    # depthwise: 7,225,344 FLOPs over 3,215,872 bytes = 2.25 FLOP/B < ridge 5; dense: 83.7 FLOP/B > 5
    assert dw["bound"] == "memory" and dense["bound"] == "compute"
    assert dw["attainable_ms"] == pytest.approx(3_215_872 / 20e9 * 1e3)
    assert dense["attainable_ms"] == pytest.approx(2 * 115_605_504 / 100e9 * 1e3)
    assert dw["kind"] == "depthwise conv" and dense["kind"] == "dense k×k conv"
    assert FIXED.ridge == 5.0


def test_kinds_and_units():
    import timm

    assert rl.kind_of(nn.Conv2d(8, 8, 1)) == "1×1 pointwise conv"
    assert rl.kind_of(nn.BatchNorm2d(8)) == "norm" and rl.kind_of(nn.ReLU()) == "activation"
    assert rl.kind_of(nn.MaxPool2d(2)) == "pooling" and rl.kind_of(nn.Linear(2, 2)) == "linear"
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)
    names = [n for n, _ in rl.units(vit)]
    assert "blocks.0.attn" in names and not any(n.startswith("blocks.0.attn.") for n in names)
    mbv3 = timm.create_model("mobilenetv3_small_100", pretrained=False)
    kinds = {rl.kind_of(m) for _, m in rl.units(mbv3)}
    assert {"depthwise conv", "1×1 pointwise conv", "norm", "attention"} <= kinds  # SE counts as attention


def test_layer_times_add_up_and_the_note_says_how():
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    frame = rl.profile_layers(model, (1, 64, 28, 28), Setting("cpu", "fp32", "contiguous", 1), FIXED)
    assert list(frame["module"]) == ["0", "1", "2"] and frame.attrs["sum_ms"] == pytest.approx(
        frame["ms_alone"].sum()
    )
    a = frame.attrs
    # in one whole forward: the layers, the blocks' own ops and the model's own forward are the whole, exactly
    assert a["in_layers_ms"] == pytest.approx(frame["ms_in_forward"].sum())
    assert a["in_layers_ms"] + a["blocks_own_ms"] + a["model_own_ms"] == pytest.approx(a["forward_ms"])
    assert a["in_layers_ms"] / a["forward_ms"] >= 0.9  # a Sequential runs nothing between its layers
    note = rl.sum_note(frame)
    assert note.startswith(
        f"One whole forward takes {a['whole_ms']:.3g} ms (clean: timed as a whole, with no "
        "timestamps inside)."
    )
    assert f"the 3 layers own {100 * a['in_layers_ms'] / a['forward_ms']:.1f}% of it" in note
    pct = 100 * a["sum_ms"] / a["whole_ms"]
    assert f"the 3 layers add up to {a['sum_ms']:.3g} ms, {pct:.0f}% of that clean forward" in note
    # one whole-forward time per explanation: the clean one; the timestamped forward is quoted only as shares
    quoted = re.findall(r"(\d[\d.,]*) ms\b", note)
    assert quoted == [f"{a['whole_ms']:.3g}", f"{a['sum_ms']:.3g}"], quoted
    shares = rl.by_kind(frame)
    assert shares["macs_pct"].sum() == pytest.approx(100) and shares["time_pct"].sum() == pytest.approx(100)
    assert shares.set_index("kind").loc["activation", "macs_pct"] == 0


def test_a_blocks_own_residual_add_counts_for_the_block():
    from core.measure.attribution import attribute

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(32, 32, 1)

        def forward(self, x):
            y = self.conv(x)
            for _ in range(200):  # work the block does itself, between (and after) its children
                y = y + x
            return y

    model = nn.Sequential(Residual(), nn.ReLU())
    with torch.inference_mode():
        a = attribute(model, torch.randn(1, 32, 64, 64), torch.device("cpu"), min_time_s=0.1)
    assert a.own_ms["0"] > 5 * a.own_ms["0.conv"]  # the adds belong to the block, not its conv
    assert a.inside("0") == pytest.approx(a.own_ms["0"] + a.own_ms["0.conv"])
    assert sum(a.own_ms.values()) == pytest.approx(a.whole_ms)
    assert a.own_ms[""] < 0.1 * a.whole_ms  # the Sequential itself runs almost nothing


def test_a_stored_profile_from_before_is_read_with_its_replay_column():
    old = pd.DataFrame({"layer": ["0"], "kind": ["norm"], "MACs": [0], "time ms": [1.0]})
    old.attrs.update(whole_ms=2.0, sum_ms=1.0, timed=1)
    frame = rl.upgrade(old)
    frame.attrs.update(old.attrs)
    assert "ms_alone" in frame and "profile it again" in rl.sum_note(frame)
    assert list(frame.columns) == ["module", "kind", "macs", "ms_alone"]  # display labels read as data names


def test_ceilings_are_cached_in_the_store():
    from core.zoo import layers

    setting = Setting("cpu", "fp32", "contiguous", 1)
    first = layers.ceilings(setting, refresh=True)
    # no order between the two ceilings is asserted (a busy machine gave 25 GFLOP/s beside 28 GB/s); what is
    # asserted is how they are made: DRAM is the last level, its working set the triad's three 256 MiB
    # buffers,
    # its figure the bandwidth ceiling, and the ridge their ratio
    assert first.gemm_n == 1024 and first.stream_mib == 256 and first.threads == 1
    dram = first.levels[-1]
    assert dram["name"] == "DRAM" and dram["working_set_bytes"] == 3 * 256 * 2**20
    assert dram["gbs"] == first.bandwidth_gbs > 0 and first.ridge == first.peak_gflops / first.bandwidth_gbs
    sets = [lv["working_set_bytes"] for lv in first.levels]
    assert sets == sorted(sets)  # smallest first
    assert layers.ceilings(setting) == first  # read back, not measured again


@pytest.mark.slow
def test_the_backbone_layer_job_stores_a_profile():
    import time

    from core import jobs
    from core.zoo import layers

    setting = Setting("cpu", "fp32", "contiguous", 1)
    job = layers.start("resnet18", 64, setting)
    end = time.time() + 180
    while time.time() < end and jobs.get(job.id).active:
        time.sleep(0.3)
    done = jobs.get(job.id)
    assert done.status == "done", done.error
    frame, c = layers.cached_profile("resnet18", 64, setting)
    assert len(frame) == done.total == done.done and c.precision == "fp32"
    # every MAC fvcore counts for resnet18 at 64 px belongs to exactly one profiled layer
    from core.zoo.measure import count

    assert frame["macs"].sum() == count("resnet18", 64)["macs"]


def test_a_known_gpu_gets_its_datasheet_and_the_measured_fraction():
    h100 = Ceilings(
        "cuda",
        "NVIDIA H100 80GB HBM3",
        "bf16",
        16,
        peak_gflops=700_000.0,
        bandwidth_gbs=2_900.0,
        gemm_n=8192,
        stream_mib=1024,
        seconds=3.0,
    )
    assert h100.datasheet() == (989.4, 3.35)
    assert round(h100.peak_gflops / 1e3 / h100.datasheet()[0], 3) == 0.707
    assert Ceilings("cpu", "CPU (x86_64)", "fp32", 1, 90.0, 25.0, 1024, 256, 1.6).datasheet() is None


def write_cache(root, index, level, kind, size, shared):
    d = root / f"index{index}"
    d.mkdir(parents=True)
    for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
        (d / name).write_text(f"{value}\n")


def test_cache_levels_are_read_from_sysfs_with_their_sharing(tmp_path):
    from core.measure.caches import cpus_in, data_caches, parse_size

    write_cache(tmp_path, 0, 1, "Data", "32K", "0")
    write_cache(tmp_path, 1, 1, "Instruction", "32K", "0")
    write_cache(tmp_path, 2, 2, "Unified", "512K", "0")
    write_cache(tmp_path, 3, 3, "Unified", "32768K", "0-1")
    levels = data_caches(tmp_path, cpus=2)
    assert [(c.name, c.size_bytes, c.instances) for c in levels] == [
        ("L1", 32 * 1024, 2),
        ("L2", 512 * 1024, 2),
        ("L3", 32 * 2**20, 1),
    ]
    assert (
        levels[1].capacity(2) == 2**20
        and levels[1].capacity(1) == 512 * 1024
        and levels[2].capacity(2) == 32 * 2**20
    )
    assert parse_size("1M") == 2**20 and parse_size("4096") == 4096 and cpus_in("0-3,8,10-11") == 7
    assert data_caches(tmp_path / "absent") == []


LEVELLED = Ceilings(
    "cpu",
    "test CPU",
    "fp32",
    1,
    peak_gflops=100.0,
    bandwidth_gbs=10.0,
    gemm_n=0,
    stream_mib=0,
    seconds=0.0,
    call_us=2.0,
    levels=[
        {"name": "L1", "capacity_bytes": 32 * 1024, "working_set_bytes": 24 * 1024, "gbs": None},
        {"name": "L2", "capacity_bytes": 2**20, "working_set_bytes": 2**19, "gbs": 80.0},
        {"name": "L3", "capacity_bytes": 32 * 2**20, "working_set_bytes": 8 * 2**20, "gbs": 40.0},
        {"name": "DRAM", "capacity_bytes": None, "working_set_bytes": 3 * 2**28, "gbs": 10.0},
    ],
)


def test_a_layer_gets_its_levels_ceiling_and_a_verdict_that_explains_it():
    c = LEVELLED
    assert (
        c.level(16 * 1024)["name"] == "L1" and c.bandwidth_for(16 * 1024) == 80.0
    )  # L1 unmeasured: next out
    assert c.level(3 * 2**20)["name"] == "L3" and c.bandwidth_for(3 * 2**20) == 40.0
    assert c.level(2**30)["name"] == "DRAM" and c.bandwidth_for(2**30) == 10.0
    # 3 MiB in L3: memory-bound at 40 GB/s, plus one call of 2 µs
    best, bound = rl.attainable_s(1000, 3 * 2**20, c)
    assert bound == "memory" and best == pytest.approx(2e-6 + 3 * 2**20 / 40e9)
    # 3 MiB moved in 0.1 ms = 31.5 GB/s: above DRAM's 10, under L3's 40
    level, verdict = rl.roof_verdict("norm", 1000, 3 * 2**20, 1e-4, c)
    assert level == "L3" and verdict == "above the DRAM roof, under its level's (L3): it runs from cache"
    # 60 GB/s in L3: above its own level, under L2's 80
    assert rl.roof_verdict("norm", 1000, 3 * 2**20, 3 * 2**20 / 60e9, c)[1].startswith(
        "above its level's roof (L3)"
    )
    # 200 GB/s: above every measured ceiling, with a reason
    verdict = rl.roof_verdict("activation", 1000, 3 * 2**20, 3 * 2**20 / 200e9, c)[1]
    assert verdict.startswith("above every measured ceiling: ") and "in-place" in verdict
    assert rl.roof_verdict("norm", 1000, 2**30, 2**30 / 5e9, c)[1] == "under its level's roof (DRAM)"
    assert "GPU" in Ceilings("cuda", "H200", "bf16", 1, 1e6, 4e3, 8192, 1024, 1.0).levels_note()
    assert (
        "L1 not separable from the call cost" in c.levels_note()
        and "L2 80 GB/s (512 KiB triad" in c.levels_note()
    )


def test_this_machines_ceilings_are_measured_per_cache_level():
    from core.measure.caches import data_caches

    c = cl.measure_ceilings(Setting("cpu", "fp32", "contiguous", 1), stream_mib=64, gemm_n=256)
    caches = data_caches()
    assert (
        [lv["name"] for lv in c.levels] == [x.name for x in caches] + ["DRAM"] if caches else c.levels == []
    )
    below = 0
    for lv, cache in zip(c.levels, caches):
        assert (
            below < lv["working_set_bytes"] <= cache.capacity(1)
        )  # each triad fits its level, not the one below
        below = cache.capacity(1)
        assert lv["gbs"] is None or lv["gbs"] > 0
    assert c.levels[-1]["gbs"] == c.bandwidth_gbs and c.call_us > 0


def test_a_levels_probes_lie_between_the_level_below_and_its_own_fill():
    assert cl._level_probes(96 * 1024, 2 * 2**20) == [192 * 1024, 642119, 2 * 2**20]  # log-spaced, 3 of them
    assert cl._level_probes(4 * 2**20, 6 * 2**20) == [6 * 2**20]  # a narrow span: one probe
    probes = cl._level_probes(4 * 2**20, 120 * 2**20)
    assert probes[0] == 8 * 2**20 and probes[-1] == 120 * 2**20 and probes == sorted(probes)


def test_ceilings_close_together_share_one_label_on_the_chart():
    """L1 and L2 measured at 125 and 128 GB/s would print their labels on each other: they share one."""
    import pandas as pd

    from core.present import plots

    levels = [
        {"name": "L1", "gbs": 125.4},
        {"name": "L2", "gbs": 128.0},
        {"name": "L3", "gbs": 55.0},
        {"name": "DRAM", "gbs": 22.9},
    ]
    assert plots._label_groups([("DRAM", 22.9), ("L3", 55.0), ("L1", 125.4), ("L2", 128.0)]) == [
        [("DRAM", 22.9)],
        [("L3", 55.0)],
        [("L1", 125.4), ("L2", 128.0)],
    ]
    frame = pd.DataFrame(
        {
            "intensity": [0.5, 20.0],
            "gflops": [5.0, 80.0],
            "macs": [10, 20],
            "module": ["a", "b"],
            "kind": ["conv", "conv"],
            "bytes": [1, 2],
            "ms_alone": [0.1, 0.2],
            "gbs": [10.0, 4.0],
            "efficiency": [0.1, 0.2],
            "bound": ["memory", "compute"],
        }
    )
    fig = plots.roofline({"block": frame}, 300.0, 22.9, levels)
    labels = [t.text[0] for t in fig.data if t.mode == "text" and t.text and "GB/s" in t.text[0]]
    assert labels == ["DRAM 22.9 GB/s", "L3 55.0 GB/s", "L1 125.4 · L2 128.0 GB/s"]
