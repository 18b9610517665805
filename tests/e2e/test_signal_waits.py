"""Contention and waiting for a signal apart, end to end: a thread that polls ``Event.wait(0.05)``
is ``signal_wait`` and not the lock headline; two threads contending for a Lock are."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer

ROUNDS = 6
HOLD_S = 0.05


def test_event_polling_is_a_signal_wait_and_the_contended_lock_is_the_headline(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--no-viztracer", "--no-perf",
                    str(PROGRAMS / "signal_and_contention.py"), str(ROUNDS))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    (persister,) = thread_named(model, "persister")
    requests = thread_named(model, "request-")
    assert len(requests) == 2

    # The Event's waits are signal_wait, with their kind; none is lock_wait.
    signals = [i for i in persister["intervals"] if i["state"] == "signal_wait"]
    assert signals and all(i["detail"]["kind"] == "event" for i in signals)
    assert persister["signal_wait_s"] > 0.5 and persister["lock_wait_s"] == 0
    assert not [i for i in persister["intervals"] if i["state"] == "lock_wait"]

    # The Lock's waits are lock_wait. By construction the 2 * ROUNDS holds are serialised after
    # the barrier, so the worker that finishes last lived at least 2 * ROUNDS holds, only ROUNDS
    # of them its own: it waited for the lock at least ROUNDS holds (less the moments between
    # a release and the next acquire), however the lock was shared out.
    waits = [i for t in requests for i in t["intervals"] if i["state"] == "lock_wait"
             and i["detail"]["name"] == "cache_lock"]
    waited = sum(i["end"] - i["start"] for i in waits)
    assert waited >= (ROUNDS - 1) * HOLD_S, waited
    assert sum(t["lock_wait_s"] for t in requests) >= (ROUNDS - 1) * HOLD_S
    assert all(t["signal_wait_s"] < 0.05 for t in requests)  # the start barrier, no more

    # The lock table: the contended Lock first although the Event was waited on longer.
    first = model["locks"][0]
    assert first["name"] == "cache_lock" and first["contention"] is True
    event = next(row for row in model["locks"] if row["kind"] == "event")
    assert event["contention"] is False and event["wait_s"] > first["wait_s"]
    assert {b["name"] for b in model["lock_blame"]} <= {"cache_lock"}

    # The headline: the contended lock and a request thread, never the persister.
    text = (result.stdout + result.stderr).replace("\n", " ")
    assert "Locks by time threads waited for another's hold" in text
    assert text.index("cache_lock") < text.index("Waits for a signal, not contention")
    page = (out / "report.html").read_text()
    assert "persister (tid" not in page.split("waited longest, ")[1][:40]
    assert "on cache_lock." in page
