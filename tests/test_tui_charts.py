"""The braille charts of the detail pane, exactly: windowing onto columns (maximum per
column, gaps, a window longer or shorter than the history), dots and scaling, the value
axis, the readiness strip, restart/failure marks and the time axis."""

from __future__ import annotations

import pytest

from tui_supervisor.tui.charts import (
    WINDOWS,
    chart,
    columns,
    mark_row,
    next_window,
    plot,
    short_duration,
    span,
    strip,
    time_axis,
    window_label,
)


def pct(v: float) -> str:
    return f"{v:.0f}%"


@pytest.mark.parametrize(("values", "window", "n", "want"), [
    ([1, 2, 3, 4], 4.0, 4, [1, 2, 3, 4]),          # one value per column
    ([1, 5, 2, 4], 4.0, 2, [5, 4]),                # two per column: the maximum
    ([1, None, 3], 3.0, 6, [1, 1, None, None, 3, 3]),  # a value spans its columns; a gap
    ([5], 4.0, 4, [None, None, None, 5]),          # one point: at the right, "now"
    ([], 4.0, 3, [None, None, None]),              # nothing sampled
    ([1, 2, 3, 4, 5, 6], 2.0, 2, [5, 6]),          # window shorter than the history
    ([7, 8], 8.0, 4, [None, None, None, 8]),       # window longer: the past is blank
    ([1, 2], 2.0, 0, []),
])
def test_columns(values: list[float | None], window: float, n: int,
                 want: list[float | None]) -> None:
    assert columns(values, 1.0, float(len(values)), window, n) == want


def test_columns_are_placed_by_time_not_by_index() -> None:
    # 2 s a sample, the last at t=10: a 4 s window holds the last two, one column each
    assert columns([1, 2, 3], 2.0, 10.0, 4.0, 2) == [2, 3]
    assert columns([3], 1.0, 10.0, 10.0, 5) == [None, None, None, None, 3]


@pytest.mark.parametrize(("cols", "rows", "vmax", "want"), [
    ([0, 1, 2, 3, 4, None, 8, 8], 2, 8, ["   ⣿", "⣀⣴⡇⣿"]),  # area, gap blank, 0 one dot
    ([0, 0], 1, 0, ["⣀"]),                  # flat zero: sampled, so the lowest dots
    ([5, 5, 5], 1, 5, ["⣿⡇"]),              # flat: full height; an odd column half a cell
    ([None, None], 2, 1, [" ", " "]),       # nothing: blank
    ([2, 4], 1, 4, ["⣼"]),                  # half and full height of a single row
])
def test_plot(cols: list[float | None], rows: int, vmax: float, want: list[str]) -> None:
    assert plot(cols, rows, vmax) == want


def test_chart_has_max_mid_and_zero_at_the_left() -> None:
    lines = chart([0, 25, 50, 100, None, None, 10, 10], 1.0, 8.0, None, 4, 3, pct, 6)
    assert lines == [" 100%┤ ⢸  ",
                     "  50%┤ ⣼  ",
                     "   0%┤⣰⣿ ⣀"]
    two = chart([4, 8], 1.0, 2.0, 2.0, 1, 2, pct, 4)  # two rows: max and 0, no mid
    assert two == [" 8%┤⢸", " 0%┤⣿"]
    one = chart([4, 8], 1.0, 2.0, 2.0, 1, 1, pct, 4)
    assert one == [" 8%┤⣼"]
    empty = chart([], 1.0, 0.0, 60.0, 3, 2, pct, 4)
    assert empty == [" 0%┤   ", " 0%┤   "]
    assert chart([5], 1.0, 1.0, 1.0, 1, 1, pct, 3) == ["5%┤⣿"]  # it covers its interval


def test_the_scale_is_the_maximum_in_the_window_only() -> None:
    # a spike of 90 ten seconds ago is out of a 4 s window: the scale is 4
    lines = chart([90] + [None] * 5 + [2, 4, 4, 4], 1.0, 10.0, 4.0, 2, 1, pct, 4)
    assert lines == [" 4%┤⣼⣿"]


def test_strip_shows_any_unready_in_a_cell() -> None:
    assert strip([1, 1, 0, None, 1, 1], 1.0, 6.0, None, 3) == "█▁█"
    assert strip([1, 1, 1], 1.0, 3.0, 6.0, 3) == " ██"
    assert strip([], 1.0, 0.0, 6.0, 2) == "  "


def test_marks_at_their_columns_failure_wins_a_shared_one() -> None:
    marks = [[2.5, "failure"], [2.6, "restart"], [5.0, "restart"], [-1.0, "failure"],
             [7.0, "restart"]]  # the last two: before the window, after its end
    assert mark_row(marks, 6.0, 6.0, 6) == "  ✖  ↻"
    assert mark_row([[2.6, "restart"], [2.5, "failure"]], 6.0, 6.0, 6) == "  ✖   "
    assert mark_row([], 6.0, 6.0, 3) == "   "
    assert mark_row([[6.0, "restart"]], 6.0, 6.0, 3) == "  ↻"  # now: the last column


@pytest.mark.parametrize(("window", "width", "want"), [
    (600, 10, "-10m   now"),
    (600, 20, "-10m     -5m     now"),
    (600, 40, "-10m   -8m     -6m     -4m     -2m   now"),
    (60, 7, "-1m now"),
    (60, 3, "now"),                       # no room for "-1m": left out, never cut
    (3600, 50, "-1h   -50m     -40m    -30m    -20m     -10m   now"),
    (437, 40, "-7m17s           -3m38s              now"),  # odd span: only its middle
])
def test_time_axis(window: float, width: int, want: str) -> None:
    axis = time_axis(window, width)
    assert axis == want and len(axis) == width


def test_windows_cycle_and_labels() -> None:
    assert [window_label(w) for w in WINDOWS] == ["1m", "10m", "1h", "all"]
    assert [next_window(w) for w in WINDOWS] == [600.0, 3600.0, None, 60.0]
    assert next_window(42.0) == 60.0  # an unknown (old preference): the first
    assert [short_duration(s) for s in (0, 45, 90, 600, 3600, 5400)] == [
        "0s", "45s", "1m30s", "10m", "1h", "1h30m"]
    assert span([1, 2, 3], 2.0, None) == 6.0 and span([], 1.0, None) == 1.0
    assert span([1], 1.0, 60.0) == 60.0
