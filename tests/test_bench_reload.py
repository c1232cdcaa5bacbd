"""The pure logic of bench/reload.py: finding the new UI's frame in terminal output read
at known times, the longest pause in a file's growth, checking numbered lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH))  # as when bench/reload.py runs: its sibling modules import
_spec = importlib.util.spec_from_file_location("bench_reload", BENCH / "reload.py")
assert _spec is not None and _spec.loader is not None
bench_reload = importlib.util.module_from_spec(_spec)
sys.modules["bench_reload"] = bench_reload
_spec.loader.exec_module(bench_reload)
ENTER, LEAVE = bench_reload.ENTER, bench_reload.LEAVE
check_lines, find_frame = bench_reload.check_lines, bench_reload.find_frame
longest_pause = bench_reload.longest_pause

NEEDLES = [b"writer", b"idle-one", b"Quit"]


def test_frame_found_in_reads_after_the_save() -> None:
    chunks = [
        (1.0, ENTER + b"writer idle-one Quit"),  # the old UI, before the save
        (2.1, b"old frame writer " + LEAVE[:4]),
        (2.2, LEAVE[4:] + b"shutdown"),  # split across two reads
        (2.5, b"\x1b[?1000h" + ENTER + b"\x1b[1;1H header"),
        (2.6, b" \x1b[1mwriter\x1b[0m idle-"),
        (2.7, b"one  \x1b[45;1H"),
        (2.8, b" q \x1b[0mQuit "),
    ]
    assert find_frame(chunks, 2.0, NEEDLES) == (2.2, 2.5, [2.6, 2.7, 2.8])


def test_no_frame_until_every_needle_arrived_after_the_new_enter() -> None:
    chunks = [(2.1, LEAVE), (2.2, b"writer idle-one Quit"), (2.5, ENTER + b"writer idle-one")]
    assert find_frame(chunks, 2.0, NEEDLES) is None  # text before ENTER does not count
    assert find_frame([(2.1, b"writer idle-one Quit" + ENTER)], 2.0, NEEDLES) is None
    chunks.append((2.9, b"Quit"))
    assert find_frame(chunks, 2.0, NEEDLES) == (2.1, 2.5, [2.5, 2.5, 2.9])
    assert find_frame(chunks, 3.0, NEEDLES) is None  # every read is before `since`


def test_longest_pause_overlapping_the_window() -> None:
    changes = [0.0, 0.001, 0.002, 1.0, 1.001, 1.3, 1.301, 5.0]
    assert longest_pause(changes, 0.9, 1.2) == 1.0 - 0.002  # the pause that runs into it
    assert longest_pause(changes, 0.9, 1.5) == 5.0 - 1.301  # the one that runs out of it
    assert abs(longest_pause(changes, 1.0005, 1.2) - 0.299) < 1e-9
    assert longest_pause(changes, 10.0, 11.0) == 0.0
    assert longest_pause([], 0.0, 1.0) == 0.0


def test_check_lines() -> None:
    assert check_lines([0, 1, 2, 3]) == {"lines": 4, "lines_lost": 0,
                                         "lines_duplicated": 0, "in_order": True}
    assert check_lines([0, 2, 3]) == {"lines": 3, "lines_lost": 1, "lines_duplicated": 0,
                                      "in_order": False}
    assert check_lines([0, 1, 1, 2])["lines_duplicated"] == 1
    assert check_lines([1, 0])["in_order"] is False
    assert check_lines([])["lines"] == 0
