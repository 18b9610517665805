"""Lock waits end to end: known-by-construction waits, the notebook's fixed counter, deadlocks."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer


def _claims(model: dict) -> dict[str, dict]:
    return {c["claim"]: c for c in model["claims"]}


def test_contention_wait_matches_construction(tmp_path: Path) -> None:
    out = tmp_path / "contention"
    threads, rounds, hold_ms = 4, 2, 40.0
    result = tracer("run", "--out", str(out), "--no-viztracer", "--no-perf", "lock_contention",
                    "--threads", str(threads), "--rounds", str(rounds),
                    "--hold-ms", str(hold_ms))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    expected = rounds * hold_ms / 1000 * threads * (threads - 1) / 2
    (row,) = [lock for lock in model["locks"] if lock["name"] and
              "critical_section" in lock["name"]]
    assert abs(row["wait_s"] - expected) <= 0.1 * expected
    assert row["contended"] == rounds * (threads - 1)
    # On the timeline too (the barrier's waits are signal_wait intervals of their own: a wait
    # for the others to arrive, not contention).
    waited = sum(i["end"] - i["start"] for t in thread_named(model, "contender-")
                 for i in t["intervals"] if i["state"] == "lock_wait"
                 and "critical_section" in str((i["detail"] or {}).get("name")))
    assert abs(waited - expected) <= 0.1 * expected
    barrier = [i for t in thread_named(model, "contender-") for i in t["intervals"]
               if (i["detail"] or {}).get("kind") == "barrier"]
    assert all(i["state"] == "signal_wait" for i in barrier)
    assert row["handoffs"], "each release hands the lock to the next thread in line"


def test_locked_counter_is_exact_and_lock_waits_are_separate(tmp_path: Path) -> None:
    out = tmp_path / "lock"
    result = tracer("run", "--out", str(out), "--no-viztracer", "lock", "--threads", "3",
                    "--increments", "20000")
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert "60,000" in result.stdout.replace("\n", " ")
    counted = [c for c in model["claims"] if "counter is always" in c["claim"]]
    assert counted and counted[0]["held"] is True
    assert any(lock["acquisitions"] >= 60000 for lock in model["locks"])


def test_deadlock_scenario_names_the_cycle(tmp_path: Path) -> None:
    out = tmp_path / "deadlock"
    result = tracer("run", "--out", str(out), "--no-viztracer", "--no-perf", "deadlock",
                    "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    (cycle,) = model["deadlocks"]
    assert {step["thread"] for step in cycle} == {"first", "second"}
    assert {step["waits_for"]["name"] for step in cycle} == {"lock_a", "lock_b"}
    for thread in thread_named(model, "first") + thread_named(model, "second"):
        assert thread["state_s"].get("lock_wait", 0) > 0.3
        assert thread["end_reason"] == "killed_at_exit"


def test_timeout_on_a_real_deadlock_names_it(tmp_path: Path) -> None:
    out = tmp_path / "forever"
    result = tracer("run", "--out", str(out), "--no-viztracer", "--no-perf", "--timeout", "1.5",
                    str(PROGRAMS / "deadlock_forever.py"))
    assert result.returncode != 0
    model = load_model(out)
    assert model["target"]["status"] == "timeout"
    (cycle,) = model["deadlocks"]
    assert {step["thread"] for step in cycle} == {"alpha", "beta"}
    assert any("Deadlock" in w for w in model["warnings"])
    assert "Deadlock" in result.stderr.replace("\n", " ")
