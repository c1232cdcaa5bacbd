"""Restart policy, backoff and crash-loop rules. Pure: no clock, no OS, no randomness
unless passed in."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tui_supervisor.config.schema import BackoffSpec, CrashLoopSpec, RestartPolicy
from tui_supervisor.engine.events import exit_text


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a process ended."""

    code: int | None
    """Exit code, or None when killed by a signal."""
    signal: int | None
    """Signal number that killed it, or None."""

    def describe(self) -> str:
        return exit_text(self.code, self.signal)

    @classmethod
    def from_wait_status(cls, status: int) -> ExitInfo:
        import os

        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.waitstatus_to_exitcode(status), None)


def is_clean(exit: ExitInfo, success_codes: frozenset[int]) -> bool:
    """An exit with one of the success codes (never a signal death)."""
    return exit.signal is None and exit.code in success_codes


def is_completion(policy: RestartPolicy, exit: ExitInfo,
                  success_codes: frozenset[int]) -> bool:
    """A job that is done: a clean exit under a policy that does not restart on success
    (`never`, `on-failure`), however fast; it is no failure, not even while `starting`.
    Under `always` a clean exit is not an end (the service is meant to keep running):
    `is_failure` decides."""
    return is_clean(exit, success_codes) and not should_restart(
        policy, exit, success_codes, requested=False)


def is_failure(exit: ExitInfo, success_codes: frozenset[int], *, was_starting: bool,
               requested: bool) -> bool:
    """An exit nobody asked for counts as a failure, except a clean exit after the start
    rule was met. An exit while `starting` is a failed start (for a completion, see
    `is_completion`, which comes first)."""
    if requested:
        return False
    if was_starting:
        return True
    return not is_clean(exit, success_codes)


def should_restart(policy: RestartPolicy, exit: ExitInfo, success_codes: frozenset[int], *,
                   requested: bool) -> bool:
    """Whether the supervisor respawns after this exit."""
    if requested or policy is RestartPolicy.NEVER:
        return False
    if policy is RestartPolicy.ALWAYS:
        return True
    return not is_clean(exit, success_codes)


def backoff_delay(spec: BackoffSpec, consecutive: int, rand: float = 0.5) -> float:
    """Delay before respawning after the `consecutive`-th consecutive failure (1-based).

    The first failure after a quiet period restarts at once; the n-th waits
    min(max, initial * factor**(n-2)) scaled by a jitter factor in [1-j, 1+j], where
    `rand` in [0, 1) picks the point (0.5 = no jitter). Defined for any count: the
    exponent is never raised past the point where the cap is reached.
    """
    if consecutive <= 1:
        return 0.0
    base = _grown(spec.initial, spec.factor, spec.max, consecutive - 2)
    scale = 1.0 + spec.jitter * (2.0 * rand - 1.0)
    # a max near the largest float must not jitter up to inf (backoff_until is JSON)
    return max(0.0, min(spec.max * (1.0 + spec.jitter), base * scale, sys.float_info.max))


def capped_delay(spec: BackoffSpec, rand: float = 0.5) -> float:
    """Delay before respawning a crash-looping service: the cap, with jitter (what
    `backoff_delay` reaches after enough failures)."""
    scale = 1.0 + spec.jitter * (2.0 * rand - 1.0)
    return max(0.0, min(spec.max * scale, sys.float_info.max))


def _grown(initial: float, factor: float, cap: float, k: int) -> float:
    """min(cap, initial * factor**k) without computing a power that cannot matter
    (factor**k in floats overflows past ~1e308: OverflowError, not inf)."""
    if initial <= 0.0:
        return 0.0  # 0 * inf would be nan
    if initial >= cap:
        return cap
    if factor <= 1.0 or k == 0:
        return initial
    # initial * factor**k >= cap from k >= log(cap / initial) / log(factor) on; the
    # product decides near that point (+1 covers rounding in the logs)
    reach = (math.log(cap) - math.log(initial)) / math.log(factor)
    if k > reach + 1.0:
        return cap
    try:
        return min(cap, initial * factor**k)
    except OverflowError:  # factor**k alone is too big (a tiny initial): work in logs
        log_grown = math.log(initial) + k * math.log(factor)
        return cap if log_grown >= math.log(cap) else math.exp(log_grown)


def crash_loop(spec: CrashLoopSpec, failure_times: Iterable[float], now: float) -> bool:
    """True when `max_failures` or more failures fall inside the last `window` seconds."""
    recent = sum(1 for t in failure_times if now - t <= spec.window)
    return recent >= spec.max_failures


def recent_failures(spec: CrashLoopSpec, failure_times: Sequence[float],
                    now: float) -> tuple[float, ...]:
    """The failure times `crash_loop` can still need: those inside the window, at most
    the last `max_failures` (so detection works for any threshold, in bounded memory)."""
    keep = [t for t in failure_times[-spec.max_failures:] if now - t <= spec.window]
    return tuple(keep)
