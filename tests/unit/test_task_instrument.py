"""The task hooks inside a program: what they record, and that the program sees nothing of
them (results, exceptions, cancellation, asyncio's own warnings, names of what it uses). Each
case runs in a fresh interpreter, as the bootstrap would install the hooks, with the C hooks
and with the Python ones (``THREADSCOPE_PURE_TASKS=1``): both must record the same."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.helpers import PYENV, REPO
from tracer.instrument import tasks as task_hooks
from tracer.model.tasks import read_task_events


class Target(NamedTuple):
    python: str
    pure: bool  # the Python hooks rather than the C ones

PRELUDE = """
import json, sys
from tracer.instrument import faults, tasks
SINK = sys.argv[1]
if sys.argv[2] == "traced":
    tasks.install(SINK)
    print(f"native={tasks.NATIVE}")
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
def interpreter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[pytest.param(False, id="c"), pytest.param(True, id="py")])
def python(request: pytest.FixtureRequest, interpreter: str) -> Target:
    pure = bool(request.param)
    if not pure and not task_hooks.NATIVE:
        pytest.skip(f"the C hooks are not in use here: {task_hooks.WHY_PURE}")
    return Target(interpreter, pure)


def _run(tmp_path: Path, body: str, python: Target, mode: str = "traced") -> dict[str, Any]:
    sink = tmp_path / f"tasks-{mode}.bin"
    script = PRELUDE + textwrap.dedent(body) + REPORT
    env = {"PYTHONPATH": str(REPO), "THREADSCOPE_PURE_TASKS": "1" if python.pure else "0"}
    result = subprocess.run([python.python, "-c", script, str(sink), mode],
                            capture_output=True, text=True, cwd=REPO, timeout=60,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr
    if mode == "traced":  # the hooks asked for are the hooks in use
        assert f"native={not python.pure}" in result.stdout, result.stdout
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
                                                                 python: Target) -> None:
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
                                                            python: Target) -> None:
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


def test_a_callable_whose_name_raises_still_runs(tmp_path: Path, python: Target) -> None:
    traced = _run(tmp_path, HOSTILE, python)
    assert traced["out"] == "called"
    assert "task_event_lost" in traced["faults"]


def test_nothing_is_imported_for_a_program_that_uses_neither(tmp_path: Path,
                                                              python: Target) -> None:
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


def test_what_the_program_dropped_is_freed_as_untraced(tmp_path: Path, python: Target) -> None:
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


def test_an_eager_task_that_finishes_inside_create_task(tmp_path: Path, python: Target) -> None:
    """3.12.1's C task crashed the process when asked for the coroutine of such a task
    (test_eager_task_factory, traced): the hook names it from create_task's argument."""
    traced, plain = _run(tmp_path, EAGER, python), _run(tmp_path, EAGER, python, "plain")
    assert traced["out"] == plain["out"]
    events = traced["events"]
    functions = {e[1]: e[2] for e in events if e[0] == "fn"}
    assert "quick" in {functions[e[5]] for e in events if e[0] == "task"}


OPEN_AT_END = """
import threading
from concurrent.futures import ThreadPoolExecutor
def blocked(event):
    event.wait()
    return "released"
release = threading.Event()
with ThreadPoolExecutor(max_workers=1) as pool:
    running = pool.submit(blocked, release)
    queued = pool.submit(abs, -3)
    while not running.running():
        threading.Event().wait(0.01)
    tasks.finish()  # the recording ends here: one item is running, one is queued
    release.set()
    OUT = [running.result(), queued.result()]
"""


def test_items_running_or_queued_at_the_end_are_written_as_they_stand(
        tmp_path: Path, python: Target) -> None:
    traced = _run(tmp_path, OPEN_AT_END, python)
    assert traced["out"] == ["released", 3]
    events = traced["events"]
    functions = {e[1]: e[2] for e in events if e[0] == "fn"}
    first: dict[str, list[Any]] = {}  # what finish() wrote (the real ends come after it)
    for event in events:
        if event[0] == "item":
            first.setdefault(functions[event[1][2]], event)
    blocked, queued = first["blocked"], first["abs"]
    assert blocked[5] == "unfinished" and blocked[2] is not None and blocked[3] is None
    assert queued[5] == "unfinished" and queued[2] is None
    assert blocked[1][3] <= blocked[2]  # submitted, then started
    assert traced["faults"] == {}


FORKED = """
import os
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(max_workers=1) as pool:
    pool.submit(abs, -1).result()
pid = os.fork()
if pid == 0:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(divmod, 7, 2).result()
    tasks.finish()
    os._exit(0)
os.waitpid(pid, 0)
OUT = "parent"
"""


def test_a_forked_childs_items_are_its_own(tmp_path: Path, python: Target) -> None:
    """The child starts with the parent's memory: it writes only what it ran itself, and
    declares its functions again under its own pid."""
    traced = _run(tmp_path, FORKED, python)
    pid = 0
    seen: dict[int, list[str]] = {}
    functions: dict[tuple[int, int], str] = {}
    for event in traced["events"]:
        if event[0] == "start":
            pid = event[2]
        elif event[0] == "fn":
            functions[(pid, event[1])] = event[2]
        elif event[0] == "item":
            seen.setdefault(pid, []).append(functions[(pid, event[1][2])])
    assert sorted(seen.values()) == [["abs"], ["divmod"]]
    assert traced["faults"] == {}


PROCESS_POOLS = """
import multiprocessing as mp, os, re
from concurrent.futures import ProcessPoolExecutor
def square(x):
    if x == 3:
        raise KeyError(x)
    return x * x
def capture(*args, **kwargs):
    return args, sorted(kwargs)
OUT = {"pid": os.getpid()}
for method in ("fork", "spawn"):
    # a spawned worker imports __main__ afresh, which a -c script cannot give it: a builtin
    fn = square if method == "fork" else abs
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context(method)) as pool:
        futures = [pool.submit(fn, n) for n in range(5)]
        results = [repr(f.exception()) if f.exception() else f.result() for f in futures]
        remote = [str(f.exception().__cause__) for f in futures if f.exception()]
        mapped = list(pool.map(pow, [2, 3], [5, 2]))
        unpicklable = pool.submit(lambda: 1).exception()
        # "self" and "fn" as the function's keywords (CPython's test_submit_keyword)
        keywords = repr(pool.submit(capture, 1, self=2, fn=3).result()) \
            if method == "fork" else None
    OUT[method] = {"keywords": keywords,
        "results": results, "mapped": mapped,
        "raised_where": [t.count(", in square") for t in remote],
        "unpicklable": (type(unpicklable).__name__,
                        re.sub("0x[0-9a-f]+", "0x", str(unpicklable)))}
"""


def test_a_forking_process_pools_items_are_timed_in_its_workers(tmp_path: Path,
                                                                python: Target) -> None:
    """Results, exceptions (and where the remote traceback says they were raised) and an
    unpicklable callable's error are the program's; a forked worker writes each run it made,
    named by the submitting process and item; a spawned worker is left alone."""
    traced, plain = _run(tmp_path, PROCESS_POOLS, python), \
        _run(tmp_path, PROCESS_POOLS, python, "plain")
    assert {k: v for k, v in traced["out"].items() if k != "pid"} == \
        {k: v for k, v in plain["out"].items() if k != "pid"}
    assert traced["out"]["fork"]["raised_where"] == [1]
    parent = traced["out"]["pid"]
    pid = 0
    runs: list[tuple[int, int, int]] = []  # (worker pid, submitter, item)
    items: dict[int, str] = {}  # item -> its pool's start method
    methods: dict[int, str] = {}
    for event in traced["events"]:
        if event[0] == "start":
            pid = event[2]
        elif event[0] == "pool":
            methods[event[1]] = event[7]
        elif event[0] == "item":
            items[event[1][0]] = methods[event[1][1]]
        elif event[0] == "run":
            runs.append((pid, event[1], event[2]))
            assert event[3] <= event[4] and event[5] == pid  # the worker's main thread
    assert sorted(methods.values()) == ["fork", "spawn"]
    forked = sorted(n for n, method in items.items() if method == "fork")
    assert len(forked) == 9  # 5 submits, 2 batches of map, the lambda, capture
    # Every item a forked worker ran, once, on a worker: not the lambda, never unpickled.
    assert sorted(item for _, _, item in runs) == [*forked[:7], forked[8]]
    assert {owner for _, owner, _ in runs} == {parent}
    assert 1 <= len({worker for worker, _, _ in runs}) <= 2 and parent not in \
        {worker for worker, _, _ in runs}
    assert traced["faults"] == {}


UVLOOP = """
import asyncio, uvloop
async def job(n):
    await asyncio.sleep(0.01)
    if n == 2:
        raise KeyError(n)
    return n
def fails():
    raise OSError("from a callback")
async def main():
    loop = asyncio.get_running_loop()
    seen = []
    loop.set_exception_handler(lambda loop, context: seen.append(
        (context["message"].split(" at 0x")[0], repr(context.get("handle")),
         repr(context.get("exception")))))
    loop.set_debug(True)  # the handle's repr then says where it was made
    loop.call_soon(fails)
    await asyncio.sleep(0)
    loop.set_debug(False)
    loop.call_soon(fails)
    await asyncio.sleep(0)
    fired = []
    later = loop.call_later(0.01, fired.append, "later")
    loop.call_soon(fired.append, "soon")
    loop.call_soon(fired.append, "never").cancel()
    results = await asyncio.gather(*(asyncio.create_task(job(n), name=f"job-{n}")
                                     for n in range(4)), return_exceptions=True)
    await asyncio.sleep(0.02)
    threaded = await asyncio.to_thread(sum, [1, 2])
    return [repr(r) for r in results], seen, fired, type(later).__name__, threaded, \\
        type(loop).__module__
OUT = uvloop.run(main())
"""


def test_a_uvloop_loops_tasks_and_steps_are_recorded_and_it_behaves_as_untraced(
        tmp_path: Path, python: Target) -> None:
    """uvloop's loop never calls asyncio's Handle._run: its tasks' steps are timed through the
    call_soon they are scheduled with. What the program sees (results, a failing callback's
    message and handle, a cancelled handle, handle types) is as untraced."""
    has_uvloop = subprocess.run([python.python, "-c", "import uvloop"], capture_output=True,
                                check=False).returncode == 0
    if not has_uvloop:
        pytest.skip(f"no uvloop for {python.python}")
    traced, plain = _run(tmp_path, UVLOOP, python), _run(tmp_path, UVLOOP, python, "plain")
    if python.pure:
        # The Python hook is a frame between the caller and the loop: in debug mode a handle's
        # "created at" names it (the C hook calls the loop itself). The rest must be the same.
        for found in (traced, plain):
            handle = found["out"][1][0][1]
            assert " created at " in handle
            found["out"][1][0][1] = handle.split(" created at ")[0]
    assert traced["out"] == plain["out"]
    assert len(traced["out"][1]) == 2 and "fails" in traced["out"][1][0][1]
    assert traced["out"][5] == "uvloop"
    events = traced["events"]
    # asyncio.create_task names the task after loop.create_task: its end says the name
    names = {e[1]: e[5] for e in events if e[0] == "done" and len(e) > 5}
    jobs = {number for number, name in names.items() if name.startswith("job-")}
    assert len(jobs) == 4
    steps = [e for e in events if e[0] == "step" and e[2] in jobs]
    assert len(steps) >= 8  # each job: its first step, and the one after its sleep
    assert all(e[3] <= e[4] for e in steps)
    done = {e[1]: (e[3], e[4]) for e in events if e[0] == "done" and e[1] in jobs}
    assert sorted(done.values(), key=str) == sorted(
        [("ok", None)] * 3 + [("error", "KeyError")], key=str)
    assert len({e[1] for e in events if e[0] == "loop"}) == 1
    assert traced["faults"] == {}
