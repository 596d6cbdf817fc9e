"""One settings type: threads apply to one measurement and are restored (time-left estimates:
test_estimates.py)."""

import torch

from core.blocks import create_block
from core.measure.profiling import profile_module
from core.measure.settings import Setting, autocast_dtype, threads_for


def test_threads_apply_to_one_measurement_and_are_restored():
    torch.set_num_threads(2)
    prof = profile_module(create_block("conv", in_chs=8, out_chs=8), (1, 8, 8, 8), threads=1, min_time_s=0.01)
    assert prof.env.threads == 1 and torch.get_num_threads() == 2
    with threads_for(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_the_sidebar_never_changes_the_servers_thread_count():
    from tests.app._util import open_page

    torch.set_num_threads(2)
    at = open_page("pages/blocks.py")
    at.slider(key="threads").set_value(1).run()
    assert not at.exception and torch.get_num_threads() == 2
    assert any("· 1 thread(s) ·" in c.value for c in at.caption)  # the measurement itself used 1


def test_one_precision_map_and_one_settings_type():
    assert autocast_dtype("fp32") is None and autocast_dtype("bf16") is torch.bfloat16
    s = Setting("cpu", "bf16", "channels_last", 3)
    assert s.profile_kwargs() == {
        "device": "cpu",
        "dtype": "bf16",
        "threads": 3,
        "memory_format": "channels_last",
    }


def test_default_threads_leave_half_the_cores():
    from core.measure.settings import default_threads

    assert [default_threads(c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]
