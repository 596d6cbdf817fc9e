"""core.present.mdtable: bars to an eighth of a cell, and tables whose user text stays literal."""

import math

import pytest

from core.present import mdtable
from core.present.mdtable import EIGHTHS, bar, table

FULL = EIGHTHS[-1]


@pytest.mark.parametrize(
    "value, top, expected",
    [
        (60, 60, FULL * 8),  # the top value fills the bar
        (30, 60, FULL * 4),  # half of it, half the cells
        (1, 64, EIGHTHS[0]),  # 1/64 of the top: one eighth of a cell
        (17, 64, FULL * 2 + EIGHTHS[0]),  # 17 eighths: two cells and one eighth
        (45, 64, FULL * 5 + EIGHTHS[4]),  # 45 eighths: five cells and five eighths
        (0.6, 1, FULL * 4 + EIGHTHS[5]),  # a 0.6 layer decay: 38.4 eighths, rounded to 38
        (1.68e-5, 1e-3, EIGHTHS[0]),  # the stem under it: 1.08 eighths
        (1e-9, 1e-3, EIGHTHS[0]),  # a positive value never shows as nothing
        (120, 60, FULL * 8),  # over the top: clipped to the full bar
    ],
)
def test_a_bar_is_its_share_of_the_top_to_an_eighth_of_a_cell(value, top, expected):
    assert bar(value, top, width=8) == expected


@pytest.mark.parametrize(
    "value, top",
    [(0, 60), (-3, 60), (None, 60), (math.nan, 60), (math.inf, 60), (5, 0), (5, None), (True, 1)],
)
def test_no_bar_for_zero_missing_or_non_numbers(value, top):
    assert bar(value, top) == ""


def test_the_bar_length_is_the_width_in_cells():
    assert len(bar(1, 1, width=20)) == 20 and len(bar(1, 1)) == mdtable.WIDTH == 5


def test_a_table_keeps_user_text_literal_and_colours_only_bars():
    text = table(
        ["class", "images", "against the largest"],
        [("a|b", "1,200", bar(1200, 1200)), ("**x** :red[y]", "3", bar(3, 1200))],
        [False, True, False],
    )
    lines = text.split("\n")
    assert lines[0] == "| class | images | against the largest |"
    assert lines[1] == "|:---|---:|:---|"
    assert lines[2] == f"| a\\|b | 1,200 | :primary[{FULL * 5}] |"  # the pipe is no column break
    assert lines[3] == f"| \\*\\*x\\*\\* \\:red\\[y\\] | 3 | :primary[{EIGHTHS[0]}] |"
    assert len(lines) == 4


def test_a_ragged_table_is_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        table(["a", "b"], [("1",)])
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        table(["a", "b"], [("1", "2")], numeric=[True])
