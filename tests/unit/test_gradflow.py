"""The gradient-flow lab: the lecture's scalar example and a real backward pass."""

import pytest

from core.blocks.gradflow import gradient_flow, plain_gradient, residual_gradient


def test_lecture_scalar_example():
    assert plain_gradient(0.5, 0.01, 1) == pytest.approx(0.005)
    assert residual_gradient(0.5, 0.01, 1) == pytest.approx(0.505)
    assert plain_gradient(0.5, 0.01, 10) == pytest.approx(5e-21)
    assert round(residual_gradient(0.5, 0.01, 10), 2) == 0.55


@pytest.mark.parametrize("depth", [2, 30, 100])
def test_residual_keeps_the_gradient_plain_loses_it(depth):
    result = gradient_flow(depth, act="tanh", init_gain=0.5)
    assert len(result.table) == depth
    first = result.table.iloc[0]
    # upstream gradient has norm 1; each plain tanh layer at scale 0.5 passes on well under 0.6 of it
    assert first["residual"] > 1.0
    assert first["plain"] < 0.6 ** (depth - 1)
    assert result.ratio_at_input() > 1.0 / 0.6 ** (depth - 1)
    # the plain gradient shrinks towards the input end
    assert result.table["plain"].iloc[0] < result.table["plain"].iloc[-1]


def test_depth_bounds():
    with pytest.raises(ValueError, match="between 2 and 100"):
        gradient_flow(101)
