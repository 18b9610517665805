"""Ctrl-C and SIGTERM: counted while a recording winds down, raised elsewhere, and passed on to
the target the way each reaches it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tracer import session
from tracer.interrupts import StopRequests, Terminated, exit_code, signal_of, terminate_raises
from tracer.options import RecordOptions
from tracer.recorders.lifecycle import RecorderSet

# A target that says which signal reached it first, then exits.
TARGET = textwrap.dedent(
    """
    import signal, sys, time
    def say(signum, frame):
        print("got", signum, flush=True)
        sys.exit(0)
    signal.signal(signal.SIGINT, say)
    signal.signal(signal.SIGTERM, say)
    print("ready", flush=True)
    time.sleep(300)
    """
)


def test_exit_codes_follow_the_shell() -> None:
    assert exit_code(signal.SIGINT) == 130
    assert exit_code(signal.SIGTERM) == 143
    assert signal_of(KeyboardInterrupt()) == signal.SIGINT
    assert signal_of(Terminated()) == signal.SIGTERM


def test_stop_requests_count_both_signals_and_put_the_handlers_back() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stops = StopRequests()
    with stops.deferred():
        signal.raise_signal(signal.SIGTERM)  # delivered to this thread before it returns
        signal.raise_signal(signal.SIGINT)
    assert stops.signals == [signal.SIGTERM, signal.SIGINT]
    assert stops.first == signal.SIGTERM
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_sigterm_raises_terminated_inside_the_block_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught, terminate_raises():
        signal.raise_signal(signal.SIGTERM)
    assert isinstance(caught.value, KeyboardInterrupt)  # every `except KeyboardInterrupt` sees it
    assert signal.getsignal(signal.SIGTERM) == before


def _target() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_sigterm_to_the_tracer_is_passed_on_to_the_target() -> None:
    proc = _target()
    try:
        stops = StopRequests()
        stops.signals.append(signal.SIGTERM)
        status, code = session._wait(proc, RecordOptions(quiet=True), RecorderSet([]), stops=stops)
        assert proc.stdout is not None
        assert (status, code) == ("interrupted", 143)
        assert proc.stdout.read().strip() == f"got {signal.SIGTERM}"
    finally:
        proc.kill()
        proc.wait()


def test_a_ctrl_c_is_not_sent_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal gave the target its SIGINT already: the session only stops it if it does not
    end within the grace (1 s here; the same grace then lets the SIGINT act before any
    SIGTERM: with none, a SIGTERM could overtake it), and then with SIGINT, as Ctrl-C would."""
    monkeypatch.setattr(session, "INTERRUPT_GRACE_S", 1.0)
    proc = _target()
    try:
        stops = StopRequests()
        stops.signals.append(signal.SIGINT)
        status, code = session._wait(proc, RecordOptions(quiet=True), RecorderSet([]), stops=stops)
        assert proc.stdout is not None
        assert (status, code) == ("interrupted", 130)
        assert proc.stdout.read().strip() == f"got {signal.SIGINT}"
    finally:
        proc.kill()
        proc.wait()
