"""Backoff and crash-loop rules as properties (hypothesis): for every value the config
loader accepts (config/services.py: initial and max are finite durations >= 0 with
max >= initial, factor is a number >= 1 — `.inf` included —, jitter in [0, 1],
crash_loop.max_failures an integer from 1 to 10,000 — the properties are checked far past
that — and window a positive finite duration) and any
failure count up to 10**7."""

from __future__ import annotations

import math
import sys

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec
from tui_supervisor.engine.policies import backoff_delay, crash_loop, recent_failures

durations = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
factors = st.floats(min_value=1.0, allow_nan=False, allow_infinity=True)
jitters = st.floats(min_value=0.0, max_value=1.0)
rands = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
counts = st.integers(min_value=0, max_value=10**7)


@st.composite
def backoffs(draw: st.DrawFn, ordered: bool = True) -> BackoffSpec:
    a, b = draw(durations), draw(durations)
    initial, cap = (min(a, b), max(a, b)) if ordered else (a, b)
    return BackoffSpec(initial=initial, factor=draw(factors), max=cap, jitter=draw(jitters))


def expected_base(spec: BackoffSpec, n: int) -> float:
    """min(max, initial * factor**(n-2)) worked out in logs (no overflow possible)."""
    k = n - 2
    if n <= 1:
        return 0.0
    if spec.initial == 0.0:
        return 0.0
    if spec.initial >= spec.max:
        return spec.max
    if k == 0 or spec.factor == 1.0:
        return spec.initial
    log_grown = math.log(spec.initial) + k * math.log(spec.factor)
    return spec.max if log_grown >= math.log(spec.max) else min(spec.max, math.exp(log_grown))


@settings(max_examples=2000, deadline=None)
@given(backoffs(), counts, rands)
@example(BackoffSpec(initial=0.1, factor=2.0, max=30.0, jitter=0.1), 1025, 0.5)
@example(BackoffSpec(initial=0.1, factor=2.0, max=30.0, jitter=0.1), 10**7, 0.999)
@example(BackoffSpec(initial=5e-324, factor=2.0, max=1e308, jitter=0.0), 1100, 0.5)
@example(BackoffSpec(initial=1e-300, factor=1e300, max=1e308, jitter=1.0), 5, 0.999)
@example(BackoffSpec(initial=1.0, factor=math.inf, max=2.0, jitter=0.0), 3, 0.5)
@example(BackoffSpec(initial=0.0, factor=math.inf, max=0.0, jitter=1.0), 10**7, 0.0)
@example(BackoffSpec(initial=1.0, factor=1.0, max=1e308, jitter=1.0), 10**7, 0.9)
@example(BackoffSpec(initial=sys.float_info.max, factor=2.0, max=sys.float_info.max,
                     jitter=1.0), 10**7, 0.999)
def test_backoff_is_exact_for_any_count(spec: BackoffSpec, n: int, rand: float) -> None:
    d = backoff_delay(spec, n, rand)
    assert math.isfinite(d) and d >= 0.0
    if n <= 1:
        assert d == 0.0  # the first failure after a quiet period restarts at once
        return
    scale = 1.0 + spec.jitter * (2.0 * rand - 1.0)
    want = min(expected_base(spec, n) * scale, spec.max * (1.0 + spec.jitter),
               sys.float_info.max)
    assert math.isclose(d, want, rel_tol=1e-9, abs_tol=1e-300)


@settings(max_examples=500, deadline=None)
@given(backoffs(), st.integers(min_value=2, max_value=10**7 - 1), rands)
def test_backoff_never_shrinks_as_failures_go_on(spec: BackoffSpec, n: int,
                                                 rand: float) -> None:
    a, b = backoff_delay(spec, n, rand), backoff_delay(spec, n + 1, rand)
    assert b >= a or math.isclose(a, b, rel_tol=1e-12)


@settings(max_examples=500, deadline=None)
@given(backoffs(ordered=False), counts, rands)
def test_backoff_is_capped_even_when_initial_exceeds_max(spec: BackoffSpec, n: int,
                                                         rand: float) -> None:
    # the loader refuses max < initial, but a record must never overflow on one
    d = backoff_delay(spec, n, rand)
    assert 0.0 <= d <= min(spec.max * (1.0 + spec.jitter), sys.float_info.max)


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=1, max_value=10**9),
       st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False),
       st.lists(st.floats(min_value=0.0, max_value=1e4), min_size=1, max_size=300))
def test_crash_loop_on_kept_history_matches_the_full_history(
        max_failures: int, window: float, gaps: list[float]) -> None:
    spec = CrashLoopSpec(max_failures=max_failures, window=window)
    times = [sum(gaps[:i + 1]) for i in range(len(gaps))]
    kept: tuple[float, ...] = ()
    for i, now in enumerate(times):
        kept = recent_failures(spec, (*kept, now), now)
        assert len(kept) <= max_failures
        assert crash_loop(spec, kept, now) == crash_loop(spec, times[:i + 1], now)


@given(st.integers(min_value=1, max_value=3000))
@settings(max_examples=30, deadline=None)
def test_crash_loop_fires_for_any_threshold(max_failures: int) -> None:
    spec = CrashLoopSpec(max_failures=max_failures, window=60.0)
    kept: tuple[float, ...] = ()
    fired_at = None
    for i in range(max_failures):
        now = i * 1e-3
        kept = recent_failures(spec, (*kept, now), now)
        if crash_loop(spec, kept, now):
            fired_at = i + 1
            break
    assert fired_at == max_failures
