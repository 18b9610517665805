"""The task hooks inside a program: what they record, and that the program sees nothing of
them (results, exceptions, cancellation, asyncio's own warnings, names of what it uses). Each
case runs in a fresh interpreter, as the bootstrap would install the hooks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import PYENV, REPO
from tracer.model.tasks import read_task_events

PRELUDE = """
import json, sys
from tracer.instrument import faults, tasks
SINK = sys.argv[1]
if sys.argv[2] == "traced":
    tasks.install(SINK)
"""
REPORT = """
if sys.argv[2] == "traced":
    tasks.finish()
print(json.dumps({"out": OUT, "faults": faults.snapshot()}))
"""


def _interpreters() -> list[Any]:
    """This interpreter, and pyenv's 3.10-3.13: asyncio's and concurrent.futures' internals
    that the hooks rely on differ by version (the standard library only: no orjson needed)."""
    params: list[Any] = [pytest.param(sys.executable, id="running")]
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}")) if PYENV.is_dir() else []
        params.append(pytest.param(str(found[-1]), id=minor) if found else
                      pytest.param("", id=minor, marks=pytest.mark.skip(f"no pyenv {minor}")))
    return params


@pytest.fixture(params=_interpreters())
def python(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(tmp_path: Path, body: str, python: str, mode: str = "traced") -> dict[str, Any]:
    sink = tmp_path / f"tasks-{mode}.bin"
    script = PRELUDE + textwrap.dedent(body) + REPORT
    result = subprocess.run([python, "-c", script, str(sink), mode],
                            capture_output=True, text=True, cwd=REPO, timeout=60,
                            env={"PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    found["stderr"] = result.stderr
    found["events"] = [list(e) for e in read_task_events(sink)]
    return found


POOL = """
from concurrent.futures import ThreadPoolExecutor, wait
def double(x):
    if x == 2:
        raise KeyError(x)
    return 2 * x
with ThreadPoolExecutor(max_workers=1, thread_name_prefix="doubler") as pool:
    blocker = pool.submit(__import__("time").sleep, 0.2)
    futures = [pool.submit(double, n) for n in range(4)]
    cancelled = pool.submit(double, 9)
    was_cancelled = cancelled.cancel()
    wait(futures)
    mapped = list(pool.map(abs, [-1, -2]))
    # "self" and "fn" as the function's keywords (CPython's test_submit_keyword)
    keywords = pool.submit(lambda *a, **k: (a, sorted(k)), 1, self=2, fn=3).result()
OUT = {"results": [repr(f.exception()) if f.exception() else f.result() for f in futures],
       "cancelled": was_cancelled and cancelled.cancelled(), "mapped": mapped,
       "keywords": repr(keywords),
       "type": type(pool).__name__, "workitem": __import__("concurrent.futures.thread",
       fromlist=["x"])._WorkItem.__name__}
"""


def test_pool_results_are_the_programs_and_each_item_is_recorded(tmp_path: Path,
                                                                 python: str) -> None:
    traced, plain = _run(tmp_path, POOL, python), _run(tmp_path, POOL, python, "plain")
    assert traced["out"] == plain["out"]
    events = traced["events"]
    items = [(e[1], *(e[5:] if len(e) > 5 else ("ok", None))) for e in events if e[0] == "item"]
    functions = {e[1]: e[2] for e in events if e[0] == "fn"}
    by_name = [(functions[stamp[2]], outcome, error) for stamp, outcome, error in items]
    assert ("double", "error", "KeyError") in by_name
    assert by_name.count(("double", "ok", None)) == 3
    assert ("double", "cancelled", None) in by_name
    assert by_name.count(("abs", "ok", None)) == 2
    pools = [e for e in events if e[0] == "pool"]
    assert [(p[3], p[4], p[5]) for p in pools] == [("thread_pool", "doubler", 1)]
    assert traced["faults"] == {}


ASYNC = """
import asyncio, gc
async def fails():
    raise ValueError("never retrieved")
async def child(n):
    await asyncio.sleep(0.01)
    return n
async def main():
    lost = asyncio.ensure_future(fails())
    await asyncio.sleep(0.02)
    del lost
    gc.collect()
    results = await asyncio.gather(*(child(n) for n in range(3)))
    threaded = await asyncio.to_thread(sum, [1, 2, 3])
    return results, threaded
OUT = asyncio.run(main())
"""


def test_asyncio_results_and_its_own_warnings_are_unchanged(tmp_path: Path,
                                                            python: str) -> None:
    traced, plain = _run(tmp_path, ASYNC, python), _run(tmp_path, ASYNC, python, "plain")
    assert traced["out"] == plain["out"] == [[0, 1, 2], 6]
    # The hook reads a task's exception without retrieving it: asyncio still says it was lost.
    assert "Task exception was never retrieved" in str(plain["stderr"])
    assert "Task exception was never retrieved" in str(traced["stderr"])
    events = traced["events"]
    functions = {e[1]: e[2] for e in events if e[0] == "fn"}
    tasks = {e[1]: functions[e[5]] for e in events if e[0] == "task"}
    done = {tasks[e[1]]: (e[3], e[4]) for e in events if e[0] == "done"}
    assert done["fails"] == ("error", "ValueError")
    assert done["child"] == ("ok", None)
    assert set(tasks.values()) >= {"main", "fails", "child"}
    main = next(n for n, name in tasks.items() if name == "main")
    (stamp,) = [e[1] for e in events if e[0] == "item"]
    # asyncio.to_thread's work item: the function it ran, linked to the task that awaited it.
    assert functions[stamp[2]] == "sum" and stamp[5] == main
    assert traced["faults"] == {}


HOSTILE = """
from concurrent.futures import ThreadPoolExecutor
class Callable:
    def __getattr__(self, name):  # every attribute lookup raises, not only AttributeError
        raise RuntimeError(f"no {name} for you")
    def __call__(self):
        return "called"
with ThreadPoolExecutor(max_workers=1) as pool:
    OUT = pool.submit(Callable()).result()
"""


def test_a_callable_whose_name_raises_still_runs(tmp_path: Path, python: str) -> None:
    traced = _run(tmp_path, HOSTILE, python)
    assert traced["out"] == "called"
    assert "task_event_lost" in traced["faults"]


def test_nothing_is_imported_for_a_program_that_uses_neither(tmp_path: Path,
                                                              python: str) -> None:
    body = 'OUT = sorted(m for m in ("asyncio", "concurrent.futures") if m in sys.modules)'
    assert _run(tmp_path, body, python)["out"] == []


DROPPED = """
import asyncio, gc, weakref
gc.disable()  # only reference counting may free what the program dropped, as it does untraced
class Payload:
    pass
async def fails(payload):
    1 / 0
async def main():
    payload = Payload()
    alive = weakref.ref(payload)
    asyncio.get_running_loop().set_exception_handler(lambda *a: None)
    asyncio.Task(fails(payload))  # made and dropped: freed as soon as its step ends
    del payload
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return alive() is None
from concurrent.futures import ThreadPoolExecutor
def raises(payload):
    raise ValueError()
def pool():
    payload = Payload()
    alive = weakref.ref(payload)
    with ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(raises, payload)
        del payload
        future.exception()
    del future
    return alive() is None
OUT = [asyncio.run(main()), pool()]
"""


def test_what_the_program_dropped_is_freed_as_untraced(tmp_path: Path, python: str) -> None:
    """A traceback keeps the frames it passed, and they keep their callers' (3.11+): our hooks'
    frames must not hold the task or the work item (CPython's own break these cycles)."""
    plain = _run(tmp_path, DROPPED, python, "plain")
    traced = _run(tmp_path, DROPPED, python)
    assert traced["out"] == plain["out"]


EAGER = """
import asyncio
async def quick():
    return 7
async def main():
    factory = getattr(asyncio, "eager_task_factory", None)  # 3.12+
    if factory is not None:
        asyncio.get_running_loop().set_task_factory(factory)
    task = asyncio.get_running_loop().create_task(quick())  # done inside create_task (3.12+)
    return [task.done(), await task]
OUT = asyncio.run(main())
"""


def test_an_eager_task_that_finishes_inside_create_task(tmp_path: Path, python: str) -> None:
    """3.12.1's C task crashed the process when asked for the coroutine of such a task
    (test_eager_task_factory, traced): the hook names it from create_task's argument."""
    traced, plain = _run(tmp_path, EAGER, python), _run(tmp_path, EAGER, python, "plain")
    assert traced["out"] == plain["out"]
    events = traced["events"]
    functions = {e[1]: e[2] for e in events if e[0] == "fn"}
    assert "quick" in {functions[e[5]] for e in events if e[0] == "task"}
