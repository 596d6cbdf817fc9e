"""profile_module's fields, timing protocol and the MAC cross-check."""

import pytest
import torch
from torch import nn

from core.blocks import create_block
from core.measure.counting import fvcore_macs
from core.measure.profiling import ProfileError, profile_module
from core.measure.timing import LatencyStats, time_call


def test_profile_fields_for_a_known_conv():
    prof = profile_module(
        create_block("conv", in_chs=16, out_chs=32, bias=False, norm=True), (2, 16, 14, 14), min_time_s=0.05
    )
    assert prof.params == 4_608 + 64 and prof.trainable_params == prof.params
    conv_macs = 2 * 14 * 14 * 32 * 16 * 9
    bn_macs = 2 * 2 * 32 * 14 * 14
    assert prof.macs == conv_macs + bn_macs and prof.flops == 2 * prof.macs
    assert prof.macs_by_op == {"conv": conv_macs, "batch_norm": bn_macs}
    assert prof.cross_check.flop_counter_macs == conv_macs and prof.cross_check.agree
    assert "batch_norm" in prof.cross_check.explanation
    assert prof.uncounted_ops == {"aten::relu": 1}
    assert prof.output_shape == (2, 32, 14, 14)
    # activation memory: conv, bn and relu outputs, fp32
    assert prof.activation_bytes == 3 * 2 * 32 * 14 * 14 * 4
    assert [c.module for c in prof.per_layer] == ["conv.conv", "conv.bn", "conv.act"]
    assert [c.kind for c in prof.per_layer] == ["dense k×k conv", "norm", "activation"]
    assert sum(c.params for c in prof.per_layer) == prof.params
    assert sum(c.macs for c in prof.per_layer) == prof.macs
    # each layer's records: output 2x32x14x14 fp32; bytes moved = input + output + own weights, once
    out = 2 * 32 * 14 * 14 * 4
    assert all(c.output_shape == (2, 32, 14, 14) and c.output_bytes == out for c in prof.per_layer)
    conv = prof.per_layer[0]
    assert conv.bytes == 2 * 16 * 14 * 14 * 4 + out + 4 * (32 * 16 * 3 * 3)  # no bias: the BN follows
    assert prof.per_layer[2].bytes == 2 * out and prof.per_layer[2].params == 0
    env = prof.env
    assert (env.device, env.precision, env.memory_format, env.batch, env.threads) == (
        "cpu",
        "fp32",
        "contiguous",
        2,
        torch.get_num_threads(),
    )
    assert env.torch_version == torch.__version__ and prof.peak_memory_bytes is None


def test_bf16_and_channels_last_on_cpu_record_their_setting():
    prof = profile_module(
        create_block("depthwise_separable", in_chs=16, out_chs=16),
        (1, 16, 8, 8),
        dtype="bf16",
        memory_format="channels_last",
        threads=1,
        min_time_s=0.02,
    )
    assert (prof.env.precision, prof.env.memory_format, prof.env.threads) == ("bf16", "channels_last", 1)
    assert prof.macs == 8 * 8 * 16 * 9 + 8 * 8 * 16 * 16 + 2 * 2 * 16 * 64


def test_bad_requests_get_clear_errors():
    block = create_block("conv", in_chs=4, out_chs=4)
    if not torch.cuda.is_available():
        with pytest.raises(ProfileError, match="no CUDA device"):
            profile_module(block, (1, 4, 8, 8), device="cuda")
    with pytest.raises(ProfileError, match="precision"):
        profile_module(block, (1, 4, 8, 8), dtype="int3")
    with pytest.raises(ProfileError, match="memory format"):
        profile_module(block, (1, 4, 8, 8), memory_format="nhwc?")


def test_zero_handle_really_ignores_an_op():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    x = torch.randn(1, 3, 10, 10)
    full = fvcore_macs(m, (x,))
    no_bn = fvcore_macs(m, (x,), ignore=("aten::batch_norm",))
    assert full.total - no_bn.total == 2 * 8 * 8 * 8
    assert no_bn.total == 8 * 8 * 8 * 27


def test_time_call_counts_warmup_and_iterations():
    calls = []
    stats = time_call(
        lambda: calls.append(1), "cpu", warmup=3, min_iters=10, min_time_s=0.0, warmup_time_s=0.0
    )
    assert stats.warmup == 3 and stats.iters == 10 and len(calls) == 13
    assert stats.timer == "perf_counter"


def test_profile_latency_and_gflops_come_from_the_timer(monkeypatch):
    """With the timer fixed at 2 ms a call, a conv 16->32 at 14x14, batch 2, with BN (1,806,336 conv MACs +
    25,088 BN MACs = 1,831,424 MACs = 3,662,848 FLOPs) runs at 3,662,848 / 2e-3 / 1e9 = 1.831424
    GFLOP/s."""
    import core.measure.profiling as profiling

    monkeypatch.setattr(
        profiling,
        "time_call",
        lambda fn, dev, **kw: (fn(), LatencyStats(2.0, 1.5, 3.0, 2.1, 10, 3, "fixed"))[1],
    )
    prof = profile_module(create_block("conv", in_chs=16, out_chs=32, bias=False, norm=True), (2, 16, 14, 14))
    assert (prof.latency_ms, prof.latency_p10_ms, prof.latency_p90_ms) == (2.0, 1.5, 3.0)
    assert prof.flops == 3_662_848 and prof.achieved_gflops == pytest.approx(1.831424, rel=1e-12)


def test_time_call_measures_a_known_busy_wait():
    import time

    def spin():
        end = time.perf_counter() + 2e-3
        while time.perf_counter() < end:
            pass

    stats = time_call(spin, "cpu", min_iters=20, min_time_s=0.0)
    assert 2.0 <= stats.p10_ms and stats.median_ms < 2.0 * 1.5  # never less than the spin; slack for load


def test_latency_stats_percentiles():
    stats = LatencyStats.from_samples([float(i) for i in range(1, 102)], 0, "test")
    assert (stats.p10_ms, stats.median_ms, stats.p90_ms) == (11.0, 51.0, 91.0)


def test_activation_memory_follows_the_precision():
    """A bias-free 3x3 conv 16->16 at 8x8 has three leaves (conv, Identity norm, ReLU), each with an output
    of 16·8·8 = 1,024 values: 3 x 4,096 bytes in fp32, 3 x 2,048 in bf16 (the conv runs in bf16 under
    autocast and the rest keeps its dtype)."""
    conv = create_block("conv", in_chs=16, out_chs=16, bias=False, norm=False)
    fp32 = profile_module(conv, (1, 16, 8, 8), time_it=False)
    bf16 = profile_module(conv, (1, 16, 8, 8), dtype="bf16", time_it=False)
    assert (fp32.activation_bytes, fp32.activation_precision) == (12_288, "fp32")
    assert (bf16.activation_bytes, bf16.activation_precision) == (6_144, "bf16")
