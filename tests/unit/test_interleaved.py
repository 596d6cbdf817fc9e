"""Interleaved A/B timing: drift cancels out, the interval is the order-statistic one, a noisy machine is flagged."""
import itertools
import time

import numpy as np
import pytest

from core.measure.timing import RatioStats, _median_interval, time_interleaved


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_median_interval_is_the_binomial_order_statistic_interval():
    # n = 100: ranks floor(50 - 0.98·10) = 40 and ceil(50 + 9.8) = 60
    assert _median_interval(np.arange(100.0)[::-1]) == (40.0, 60.0)
    # n = 9: ranks floor(4.5 - 2.94) = 1 and ceil(7.44) = 8
    assert _median_interval(np.arange(9.0)) == (1.0, 8.0)


def test_ratio_settles_only_when_tight():
    assert RatioStats.from_rounds(np.full(20, 2.0)).settled
    wide = RatioStats.from_rounds(np.array([1.0, 3.0] * 10))
    assert not wide.settled and wide.spread > 1.5


def test_a_machine_that_slows_down_3x_still_gives_the_true_ratio():
    """A costs 2 units and B 1 unit; every call makes the machine slower, so that by the end a unit costs
    3x what it did at the start. Timing A then B (sequentially) would put B on the slow machine and report
    about 0.7x; interleaved rounds keep the 2.0x."""
    calls = itertools.count()
    unit = lambda: 0.4e-3 * (1 + 2 * min(next(calls) / 1500, 1.0))  # noqa: E731  ~1,500 calls in all
    result = time_interleaved([lambda: busy_wait(2 * unit()), lambda: busy_wait(unit())],
                              round_time_s=0.01, min_rounds=30, max_rounds=30)
    assert result.rounds == 30
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.1)
    assert result.ratios[0].ratio == 1.0
    # and the drift is really there: the last rounds of B are far slower than the first
    assert result.latency[1].p90_ms > 1.5 * result.latency[1].p10_ms


def test_a_noisy_machine_is_called_busy_after_the_cap():
    flip = itertools.cycle([1, 1, 4])
    result = time_interleaved([lambda: busy_wait(1e-3), lambda: busy_wait(next(flip) * 0.3e-3)],
                              round_time_s=0.0, min_rounds=6, max_rounds=12)
    assert result.rounds == 12 and result.busy
    assert result.note().startswith("This machine is busy: the figure is uncertain.")


def test_a_quiet_pair_stops_at_the_minimum():
    result = time_interleaved([lambda: busy_wait(2e-3), lambda: busy_wait(1e-3)], round_time_s=0.004,
                              min_rounds=8, max_rounds=50)
    assert result.rounds == 8 and not result.busy
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.1)
