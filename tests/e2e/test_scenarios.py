"""Every notebook scenario end to end through the CLI, with small parameters: it exits 0, leaves
claims derived from the recording, and the claims that hold on any machine held.

Claims that depend on free cores (multiprocessing speed-ups) are only required to be decided, or
left undecided with a reason on a single core: a busy CI machine may make them false.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.helpers import load_model, thread_named, tracer


def run_scenario(tmp_path: Path, name: str, *params: str, viztracer: bool = False,
                 perf: bool = False) -> dict[str, Any]:
    """Record one scenario; VizTracer and perf are off unless asked for, to keep the file fast
    (perf alone costs about a second of start-up per run)."""
    out = tmp_path / name
    options = [] if viztracer else ["--no-viztracer"]
    options += [] if perf else ["--no-perf"]
    result = tracer("run", "--out", str(out), *options, name, "--", *params, timeout=120)
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert model["target"]["status"] == "ok"
    assert model["claims"], "a scenario must leave claims"
    for claim in model["claims"]:
        assert claim["held"] in (True, False, None)
        assert claim["detail"], claim
    return model


def claim(model: dict[str, Any], words: str) -> dict[str, Any]:
    """The one claim whose sentence contains ``words``."""
    (found,) = [c for c in model["claims"] if words in c["claim"]]
    return found


def assert_held(model: dict[str, Any], words: str) -> None:
    found = claim(model, words)
    assert found["held"] is True, f"{found['claim']}: {found['detail']}"


def marks(model: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [m for m in model["markers"] if m["kind"] == "mark" and m["name"] == name]


def test_hello_thread(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "hello_thread", "--runs", "4")
    assert_held(model, "join()")
    order = claim(model, "order of the two prints")
    assert order["held"] in (True, None)  # one order seen in 4 runs proves nothing either way
    assert len(marks(model, "order")) == 4
    assert thread_named(model, "greet")[0]["end_reason"] == "finished"


def test_sequential_vs_threads_with_viztracer_and_perf(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "sequential_vs_threads", "--seconds", "0.3",
                         viztracer=True, perf=True)
    assert model["sources"]["viztracer"]["used"] is True
    assert_held(model, "twice as long")
    assert_held(model, "waiting, not on a CPU")


def test_join_waits_for_the_counter(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "join", "--iterations", "3", "--interval", "0.1", perf=True)
    assert all(c["held"] is True for c in model["claims"]), model["claims"]
    assert len(marks(model, "iteration")) == 3


def test_no_join_non_daemon_thread_keeps_the_process_alive(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "no_join", "--iterations", "3", "--interval", "0.1")
    assert all(c["held"] is True for c in model["claims"]), model["claims"]
    (counter,) = thread_named(model, "counter")
    assert counter["end_reason"] == "finished" and counter["daemon"] is False


def test_daemon_thread_is_killed_at_exit(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "daemon", "--iterations", "10", "--interval", "0.1",
                         "--main-seconds", "0.15", viztracer=True)
    (counter,) = thread_named(model, "counter")
    assert counter["daemon"] is True
    assert counter["end_reason"] == "killed_at_exit"
    assert counter["last_stack"] and counter["last_stack"][0].startswith("counter ")
    killed = claim(model, "daemon thread is killed")
    assert killed["held"] is True
    assert "killed at interpreter exit while in counter" in killed["detail"]
    assert "iteration" in killed["detail"]
    assert_held(model, "does not keep the process alive")


def test_lifecycle_is_alive_matches_the_timeline(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "lifecycle", "--seconds", "0.3", "--polls", "2")
    assert_held(model, "is_alive()")
    answers = [m["fields"]["alive"] for m in marks(model, "is_alive")]
    assert answers[0] is False and answers[-1] is False and all(answers[1:-1])


def test_args_completion_order(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "args", "--scale", "0.2")
    assert all(c["held"] is True for c in model["claims"]), model["claims"]
    assert [m["fields"]["who"] for m in marks(model, "greeted")] == ["Bob", "Alice"]


def test_many_threads_at_scale(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "many_threads", "--threads", "50", "--seconds", "0.3")
    assert_held(model, "finish in about")
    assert_held(model, "alive at the same time")
    assert "median" in claim(model, "Starting a thread")["detail"]
    assert len(thread_named(model, "worker-")) == 50


def test_race_condition(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "race_condition", "--increments", "50000",
                         "--rmw-increments", "300000", "--runs", "2", perf=True)
    results = marks(model, "race_result")
    traced = [m["fields"] for m in results if m["fields"]["traced"]]
    untraced = [m["fields"] for m in results if not m["fields"]["traced"]]
    assert len(traced) == 4 and len(untraced) == 4
    rmw = [r["lost"] for r in traced if r["variant"] == "switch_point"]
    assert max(rmw) > 0, "the read-modify-write across a call must lose updates"
    assert_held(model, "function call between the read and the write")
    # Exact bookkeeping: the overwrite marks add up to the lost updates, run by run.
    assert_held(model, "Every lost update")
    notebook = [r["lost"] for r in traced + untraced if r["variant"] == "notebook"]
    # requires-python >= 3.10: the notebook's loop never loses an update there.
    assert notebook == [0, 0, 0, 0]
    assert_held(model, "loses no updates")
    assert claim(model, "Tracing did not change")["held"] in (True, False)


def test_threadpool_two_waves(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "threadpool", "--seconds", "0.3")
    assert all(c["held"] is True for c in model["claims"]), model["claims"]
    assert len(thread_named(model, "pool")) == 3


def _busy_seconds_by_process(model: dict[str, Any], phase: str) -> tuple[float, float]:
    """On-CPU seconds inside a phase: (the target process's threads, its children's threads)."""
    (window,) = [m for m in model["markers"] if m["kind"] == "phase" and m["name"] == phase]
    main_pid = next(t["pid"] for t in model["threads"] if t["is_main"])
    busy = {True: 0.0, False: 0.0}
    for thread in model["threads"]:
        for interval in thread["intervals"]:
            if interval["state"] in ("on_cpu", "running", "native"):
                busy[thread["pid"] == main_pid] += max(
                    0.0, min(interval["end"], window["end"]) - max(interval["start"],
                                                                  window["start"]))
    return busy[True], busy[False]


def test_compare_cpu(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "compare_cpu", "--tasks", "2", "--work", "3000000")
    assert_held(model, "threading gives no speed-up")
    assert_held(model, "asyncio gives no speed-up")
    multiprocessing = claim(model, "multiprocessing speeds")
    if model["cores"] >= 2:
        assert multiprocessing["held"] in (True, False)
    else:
        assert multiprocessing["held"] is None and "core" in multiprocessing["detail"]
    # The OS sampler follows the worker processes: the work shows up as theirs, not the
    # target's (which only waits in pool.map), however busy the machine is.
    parent, children = _busy_seconds_by_process(model, "multiprocessing")
    assert children > 0.02 and children > 2 * parent, (parent, children)


def test_compare_io(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "compare_io", "--tasks", "3", "--seconds", "0.3")
    assert_held(model, "Threads overlap")
    assert_held(model, "asyncio overlaps")
    assert_held(model, "Processes overlap")
    assert_held(model, "cost far more to start")


def test_mixed(tmp_path: Path) -> None:
    model = run_scenario(tmp_path, "mixed", "--io-tasks", "2", "--seconds", "0.3",
                         "--work", "4000000", perf=True)
    assert_held(model, "blocks the event loop")
    assert_held(model, "stays responsive")
    parallel = claim(model, "run in parallel")
    assert parallel["held"] in ((True, False) if model["cores"] >= 2 else (None,))
    assert len(marks(model, "cpu_task")) == 4
