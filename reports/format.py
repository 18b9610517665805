"""Numbers as the renderers write them: seconds in a unit read at a glance, fixed decimals,
counts, and a thread's GIL figures with their uncertainty. Words live in
:mod:`reports.vocabulary` and sentences in :mod:`reports.prose`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracer.model.schema import ThreadTimeline

MISSING = "—"  # a figure that was not recorded


def fmt_seconds(seconds: float | None) -> str:
    """Seconds in the unit a reader compares at a glance: s, ms or µs."""
    if seconds is None:
        return MISSING
    if seconds == 0:
        return "0"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_bin(seconds: float) -> str:
    """A bin width in a figure's title or note: two decimals of seconds are enough there."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_fixed(value: float | None, digits: int = 3) -> str:
    """A table cell of seconds: fixed decimals so columns line up."""
    return MISSING if value is None else f"{value:.{digits}f}"


def short_file(file: str) -> str:
    """A source file as a sentence names it: its last path component (``convoy.py``); the
    tables show the whole path."""
    if file.startswith("<"):  # <built-in>, <frozen ...>, <string>: not a path
        return file
    return file.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or file


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{count} {word}s"


def and_list(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def daemon_word(thread: ThreadTimeline) -> str:
    return MISSING if thread.daemon is None else ("yes" if thread.daemon else "no")


def thread_row_name(thread: ThreadTimeline) -> str:
    """A thread's name in a table, where the main thread is marked."""
    return thread.name + (" (main)" if thread.is_main else "")


@dataclass(frozen=True)
class GilFigureWords:
    """One thread's GIL figures as a reader sees them. Sampled figures carry their uncertainty:
    shares as ``41% ±2 pp`` (95%), and a wait count or longest wait the samples cannot pin
    down as the estimate with the bounds they prove, ``523 (303–945)``."""

    held: str
    wait: str
    waits: str
    longest: str


def gil_figure_words(thread: ThreadTimeline) -> GilFigureWords:
    """``—`` everywhere when the run did not measure the GIL."""
    if thread.gil_waits is None:
        return GilFigureWords(MISSING, MISSING, MISSING, MISSING)
    sampled = thread.gil_sampled
    if sampled is None:
        life = (thread.end_s or 0.0) - (thread.start_s or 0.0)
        return GilFigureWords(_life_share(thread.gil_held_s, life),
                              _life_share(thread.gil_wait_s, life),
                              f"{thread.gil_waits:,}", fmt_seconds(thread.max_gil_wait_s))
    return GilFigureWords(
        held=_share_pm(sampled.gil_held_share, sampled.gil_held_share_pm),
        wait=_share_pm(sampled.gil_wait_share, sampled.gil_wait_share_pm),
        waits=_count_range(thread.gil_waits, sampled.gil_waits_low, sampled.gil_waits_high),
        longest=_seconds_range(thread.max_gil_wait_s or 0.0, sampled.max_gil_wait_low_s,
                               sampled.max_gil_wait_high_s),
    )


def _life_share(seconds: float | None, life: float) -> str:
    return f"{(seconds or 0.0) / life:.0%}" if life > 0 else MISSING


def _share_pm(share: float, pm: float) -> str:
    points = pm * 100
    return f"{share:.0%} ±{points:.0f} pp" if points >= 1 else f"{share:.0%} ±{points:.1f} pp"


def _count_range(estimate: int, low: int, high: int | None) -> str:
    if high is None:
        return f"{estimate:,} (≥{low:,})"
    if low == high:
        return f"{estimate:,}"
    return f"{estimate:,} ({low:,}–{high:,})"


def _seconds_range(estimate: float, low: float, high: float) -> str:
    if estimate == 0 and high == 0:
        return "0"
    if abs(high - low) < 1e-6:
        return fmt_seconds(estimate)
    return f"{fmt_seconds(estimate)} ({fmt_seconds(low)}–{fmt_seconds(high)})"
