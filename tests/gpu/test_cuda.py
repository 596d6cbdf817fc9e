"""CUDA paths: CUDA-event timing, bf16 autocast, channels_last, memory stats. Skipped without a GPU."""

import pytest
import torch

from core.blocks import block_cost, create_block
from core.measure.profiling import profile_module
from core.measure.timing import time_call

pytestmark = pytest.mark.gpu


def test_cuda_profile_uses_cuda_events_and_records_peak_memory():
    shape = (8, 256, 14, 14)
    prof = profile_module(create_block("conv"), shape, device="cuda", min_time_s=0.1)
    assert prof.latency.timer == "cuda events"
    assert prof.env.device == "cuda" and prof.env.device_name == torch.cuda.get_device_name(0)
    assert prof.macs == block_cost("conv", shape).macs
    input_bytes = 8 * 256 * 14 * 14 * 4
    output_bytes, weight_bytes = input_bytes, 256 * 256 * 9 * 4 + 2 * 256 * 4
    assert prof.peak_memory_bytes >= input_bytes + output_bytes + weight_bytes


@pytest.mark.parametrize(
    "precision,fmt", [("bf16", "channels_last"), ("fp16", "contiguous"), ("bf16", "contiguous")]
)
def test_mixed_precision_and_channels_last(precision, fmt):
    prof = profile_module(
        create_block("mbconv"),
        (32, 40, 28, 28),
        device="cuda",
        dtype=precision,
        memory_format=fmt,
        min_time_s=0.1,
    )
    assert (prof.env.precision, prof.env.memory_format) == (precision, fmt)
    assert prof.activation_precision == precision
    assert prof.peak_memory_bytes >= 32 * 40 * 28 * 28 * 4  # at least the fp32 input


def test_bf16_autocast_really_runs_in_bf16():
    from core.measure.profiling import autocast_for

    conv = torch.nn.Conv2d(8, 8, 3).cuda()
    with torch.inference_mode(), autocast_for(torch.device("cuda"), "bf16"):
        y = conv(torch.randn(1, 8, 8, 8, device="cuda"))
    assert y.dtype == torch.bfloat16


def test_cuda_event_timer_measures_a_known_sleep():
    """torch.cuda._sleep spins for a number of GPU clock cycles: twice the cycles must time twice as long."""
    one = time_call(lambda: torch.cuda._sleep(1_000_000), "cuda", min_iters=10, min_time_s=0.0)
    two = time_call(lambda: torch.cuda._sleep(2_000_000), "cuda", min_iters=10, min_time_s=0.0)
    assert one.timer == "cuda events"
    assert two.median_ms / one.median_ms == pytest.approx(2.0, rel=0.1)


def test_interleaved_cuda_timing_gives_the_true_ratio():
    from core.measure.timing import time_interleaved

    result = time_interleaved(
        [lambda: torch.cuda._sleep(2_000_000), lambda: torch.cuda._sleep(1_000_000)],
        "cuda",
        min_rounds=10,
        max_rounds=30,
    )
    assert result.latency[0].timer.startswith("cuda events")
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.05) and not result.busy


def test_profiling_the_same_module_twice_on_cuda():
    block = create_block("conv", in_chs=16, out_chs=16)
    first = profile_module(block, (1, 16, 8, 8), device="cuda", min_time_s=0.01)
    second = profile_module(block, (1, 16, 8, 8), device="cuda", min_time_s=0.01)
    assert first.macs == second.macs == 8 * 8 * 16 * 16 * 9 + 2 * 16 * 64
