"""Interleaved A/B timing: drift cancels out, the interval is the order-statistic one, a noisy machine is
flagged.

The rules (when to stop, when to call a machine busy, what drift does) are checked on a virtual clock:
each callable advances it by its cost, so a busy CI machine cannot change the rounds these tests count.
One test times real work on the real clock, with bounds wide enough for a shared 2-core machine."""

import itertools
import time
import types

import numpy as np
import pytest

from core.measure import timing
from core.measure.timing import RatioStats, _median_interval, time_interleaved


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def clock(monkeypatch):
    """A virtual perf_counter for core.measure.timing; ``clock.spend(s)`` is a call that costs s seconds."""
    now = [0.0]

    def spend(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    return types.SimpleNamespace(spend=spend, now=lambda: now[0])


def test_median_interval_is_the_binomial_order_statistic_interval():
    # n = 100: ranks floor(50 - 0.98·10) = 40 and ceil(50 + 9.8) = 60
    assert _median_interval(np.arange(100.0)[::-1]) == (40.0, 60.0)
    # n = 9: ranks floor(4.5 - 2.94) = 1 and ceil(7.44) = 8
    assert _median_interval(np.arange(9.0)) == (1.0, 8.0)


def test_ratio_settles_only_when_tight():
    assert RatioStats.from_rounds(np.full(20, 2.0)).settled
    wide = RatioStats.from_rounds(np.array([1.0, 3.0] * 10))
    assert not wide.settled and wide.spread > 1.5


def test_a_machine_that_slows_down_3x_still_gives_the_true_ratio(clock):
    """A costs 2 units and B 1 unit; every call makes the machine slower, so that by the end a unit costs
    3x what it did at the start. Timing A then B (sequentially) would put B on the slow machine and
    report about 0.7x; interleaved rounds keep the 2.0x."""
    calls = itertools.count()
    unit = lambda: 0.4e-3 * (1 + 2 * min(next(calls) / 1500, 1.0))  # noqa: E731  ~1,500 calls in all
    result = time_interleaved(
        [lambda: clock.spend(2 * unit()), lambda: clock.spend(unit())],
        round_time_s=0.01,
        min_rounds=30,
        max_rounds=30,
    )
    assert result.rounds == 30
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.1)
    assert result.ratios[0].ratio == 1.0
    # and the drift is really there: the last rounds of B are far slower than the first
    assert result.latency[1].p90_ms > 1.5 * result.latency[1].p10_ms


def test_a_noisy_machine_is_called_busy_after_the_cap(clock):
    flip = itertools.cycle([1, 1, 4])
    result = time_interleaved(
        [lambda: clock.spend(1e-3), lambda: clock.spend(next(flip) * 0.3e-3)],
        round_time_s=0.0,
        min_rounds=6,
        max_rounds=12,
    )
    assert result.rounds == 12 and result.busy
    assert result.note().startswith("This machine is busy: the figure is uncertain.")


def test_a_quiet_pair_stops_at_the_minimum(clock):
    result = time_interleaved(
        [lambda: clock.spend(2e-3), lambda: clock.spend(1e-3)],
        round_time_s=0.004,
        min_rounds=8,
        max_rounds=50,
    )
    assert result.rounds == 8 and not result.busy
    assert result.calls_per_round == (2, 4)
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=1e-9)
    assert result.latency[0].median_ms == pytest.approx(2.0, rel=1e-9)


def test_a_slow_first_call_does_not_shorten_the_rounds(clock):
    """The first call of a block pays one-off costs (10x here); the calls per round come from the steady
    calls, so a round still lasts round_time_s (the mean of the warm-up gave 1 call, 5x too short a
    round)."""
    calls = itertools.count()
    result = time_interleaved(
        [lambda: clock.spend(10e-3 if next(calls) == 0 else 1e-3)],
        round_time_s=0.004,
        min_rounds=8,
        max_rounds=50,
        warmup_time_s=0.0,
    )
    assert result.calls_per_round == (4,)
    assert result.rounds == 8 and result.latency[0].median_ms == pytest.approx(1.0, rel=1e-9)


def test_a_pair_that_settles_late_stops_when_it_settles(clock):
    """Noisy for the first rounds, then quiet: it goes past the minimum and stops once the rounds are
    tight."""
    calls = itertools.count()

    def b():
        n = next(calls)
        clock.spend(
            1e-3 * (3.0 if n < 60 and n % 8 < 4 else 1.0)
        )  # B's rounds swing 1x-3x for its first 60 calls

    result = time_interleaved(
        [lambda: clock.spend(2e-3), b], round_time_s=0.004, min_rounds=8, max_rounds=200
    )
    assert 8 < result.rounds < 200 and not result.busy
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.15)


def test_real_work_on_the_real_clock_gives_its_ratio():
    result = time_interleaved(
        [lambda: busy_wait(2e-3), lambda: busy_wait(1e-3)], round_time_s=0.004, min_rounds=8, max_rounds=50
    )
    assert 8 <= result.rounds <= 50
    assert result.ratios[1].ratio == pytest.approx(2.0, rel=0.25)
