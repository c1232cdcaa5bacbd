"""History rings, lag window, resettable sums: pure, exact numbers."""

from __future__ import annotations

import json

import pytest

from tui_supervisor.metrics.history import (
    Downsampler,
    History,
    LagWindow,
    ResettableSum,
    Ring,
    percentile,
)


def test_ring_keeps_the_last_maxlen_values_oldest_first() -> None:
    r = Ring(3)
    assert r.to_list() == []
    for v in (1, 2, None, 4):
        r.append(v)
    assert r.to_list() == [2, None, 4] and len(r) == 3
    copy = Ring.from_dict(json.loads(json.dumps(r.to_dict())))
    assert copy.to_list() == [2, None, 4] and copy.maxlen == 3
    copy.append(5)
    assert copy.to_list() == [None, 4, 5]


def test_default_is_ten_minutes_at_one_second() -> None:
    assert Ring().maxlen == 600 and History(1.0).maxlen == 600


def test_history_aligns_series_and_pads_late_or_missing_ones() -> None:
    h = History(1.0, maxlen=4)
    h.record(100.0, {"a": 1})
    h.record(101.0, {"a": 2, "b": 20})   # b starts late: padded at its start
    h.record(102.0, {"b": 30})           # a missing: a gap
    assert h.get() == {"a": [1, 2, None], "b": [None, 20, 30]}
    assert h.get(["b"]) == {"b": [None, 20, 30]}
    assert h.t_last == 102.0
    with pytest.raises(KeyError):
        h.get(["c"])


def test_missed_ticks_become_gaps() -> None:
    h = History(1.0, maxlen=10)
    h.record(10.0, {"a": 1})
    h.record(11.1, {"a": 2})   # on time (jitter)
    h.record(14.0, {"a": 3})   # 12 and 13 were missed
    assert h.get()["a"] == [1, 2, None, None, 3]
    h.record(1000.0, {"a": 4})  # a long stop: at most a full ring of gaps
    assert h.get()["a"] == [None] * 9 + [4]
    h.record(999.0, {"a": 5})  # wall clock stepped back: no gap, no error
    assert h.get()["a"][-2:] == [4, 5]


def test_history_survives_json() -> None:
    h = History(0.5, maxlen=3)
    for i in range(5):
        h.record(i * 0.5, {"cpu": float(i), "rss": i * 10})
    copy = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert copy.get() == h.get() == {"cpu": [2.0, 3.0, 4.0], "rss": [20, 30, 40]}
    assert (copy.interval, copy.t_last) == (0.5, 2.0)
    copy.record(3.0, {"cpu": 9.0})  # 2.5 missed: a gap, then the value
    assert copy.get()["cpu"] == [4.0, None, 9.0]
    copy.record(3.5, {"new": 1})
    assert copy.get()["new"] == [None, None, 1]


def test_percentile_interpolates() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    assert percentile([0.0, 1.0], 50) == pytest.approx(0.5)


def test_lag_window_keeps_one_minute() -> None:
    w = LagWindow(window=60)
    w.add(0.0, 0.5)      # falls out at t > 60
    for i in range(1, 100):
        w.add(float(i), 0.001 * i)
    w.add(100.0, -0.0001)  # early wake-ups count as 0
    # window [40, 100]: lags 0.040 .. 0.099 and 0
    assert w.max() == pytest.approx(0.099)
    assert w.max(since=98.0) == pytest.approx(0.099)
    assert w.max(since=99.0) == 0.0
    assert w.max(since=100.0) is None
    lags = [0.001 * i for i in range(40, 100)] + [0.0]
    assert w.p99() == pytest.approx(percentile(lags, 99))
    assert len(w.samples) == 61


def test_resettable_sum_never_decreases() -> None:
    s = ResettableSum()
    assert s.update({"a": 100, "b": 10}) == 110
    assert s.update({"a": 150, "b": 10}) == 160
    assert s.update({"a": 20, "b": 15}) == 160 + 20 + 5   # a started again from 0
    assert s.update({"b": 15}) == 185                      # a removed
    assert s.update({"a": 7, "b": 15}) == 192              # a back: counts from 0
    copy = ResettableSum.from_dict(json.loads(json.dumps(s.to_dict())))
    assert copy.update({"a": 8, "b": 15}) == 193


def test_downsampler_folds_ticks_by_max_and_ready_by_min() -> None:
    d = Downsampler(3, lows=("ready",))
    assert d.add({"cpu": 1.0, "ready": 1.0}) is None
    assert d.add({"cpu": None, "ready": 0.0}) is None  # a gap does not hide a value
    assert d.add({"cpu": 5.0, "ready": 1.0, "new": None}) == {
        "cpu": 5.0, "ready": 0.0, "new": None}  # max; min for ready; never a value: None
    assert d.add({"cpu": None}) is None and d.add({}) is None
    assert d.add({"cpu": 2.0}) == {"cpu": 2.0}  # a fresh bucket after each fold
    one = Downsampler(1)
    assert one.add({"x": 3}) == {"x": 3} and one.add({"x": None}) == {"x": None}
