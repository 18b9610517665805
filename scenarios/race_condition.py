"""Race conditions: five threads adding to one shared counter, with the notebook's code and with
a read-modify-write that really loses updates on today's CPython.

The notebook's ``counter += 1`` loop lost updates on CPython 3.9 and earlier, but gives exactly
500000 on 3.10 and later. The statement is still not atomic (load, add, store), but a thread only
gives up the GIL where the interpreter checks its "eval breaker": on backward jumps (the end of
each loop iteration) and on calls into Python functions, never between the load and the store of
``counter += 1``. So in that loop a switch always falls between two complete increments.

The same race becomes real as soon as a switch point sits between the read and the write: here
the new value is computed by calling a small Python function. A thread switched out inside that
call comes back holding a stale value and overwrites everything the others added meanwhile. The
variant notes each such overwrite (how many increments it erased) where it happens, and the check
verifies that those overwrites add up to exactly the updates lost.

Tracing can change a race: VizTracer records every call, making each iteration several times
slower, which moves where the switches land; the exact GIL recorder (perf on the GIL's futex
calls) only sees contended hand-offs and leaves the loop alone. So the same races also run
untraced, in a plain ``python`` subprocess, and the check compares the two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.base import Param, Scenario
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, Marker, RunModel

VARIANTS = ("notebook", "switch_point")
# The notebook's example (section 6): 5 threads each add 100000, "Expected Output: 500000
# (100000 × 5)", "Actual Output: Something less than 500000". The scenario's ``threads`` and
# ``increments`` are these two numbers; its claim compares what a run got with them.
NOTEBOOK_THREADS = 5
NOTEBOOK_INCREMENTS = 100_000
NOTEBOOK_EXPECTED = NOTEBOOK_THREADS * NOTEBOOK_INCREMENTS

counter = 0


def notebook_increment(n: int) -> None:
    """The notebook's code, unchanged."""
    global counter
    for _ in range(n):
        counter += 1


def bump(value: int) -> int:
    """Entering a Python function is a point where the running thread may hand over the GIL."""
    return value + 1


def switch_point_increment(n: int) -> None:
    """Read, call, write: a switch inside ``bump`` leaves this thread with a stale value."""
    global counter
    for _ in range(n):
        seen = counter
        value = bump(seen)
        # No switch point from here to the store, so this is exactly what the store erases.
        erased = counter - seen
        counter = value
        if erased:
            mark("overwrite", erased=erased)


def increments_for(variant: str, increments: int, rmw_increments: int) -> int:
    return increments if variant == "notebook" else rmw_increments


def race_once(variant: str, threads: int, increments: int) -> dict[str, Any]:
    """One race: ``threads`` threads each add ``increments`` to a fresh counter."""
    global counter
    counter = 0
    target = notebook_increment if variant == "notebook" else switch_point_increment
    workers = [threading.Thread(target=target, args=(increments,), name=f"{variant}-{i}")
               for i in range(threads)]
    began = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    expected = threads * increments
    return {"variant": variant, "expected": expected, "final": counter,
            "lost": expected - counter, "seconds": round(time.perf_counter() - began, 6)}


# What the untraced subprocess runs: the same functions, in a plain interpreter.
UNTRACED = """
import json, sys
from scenarios.race_condition import increments_for, race_once
variants = sys.argv[1].split(",")
threads, increments, rmw_increments, runs = map(int, sys.argv[2:6])
print(json.dumps([race_once(v, threads, increments_for(v, increments, rmw_increments))
                  for v in variants for _ in range(runs)]))
"""


def run_untraced(threads: int, increments: int, rmw_increments: int,
                 runs: int) -> list[dict[str, Any]]:
    """The same races in a fresh interpreter with no tracer variables (the marks are no-ops)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADSCOPE")}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", UNTRACED, ",".join(VARIANTS), str(threads), str(increments),
         str(rmw_increments), str(runs)],
        capture_output=True, text=True, env=env, check=True,
    )
    found: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def _results(model: RunModel, variant: str, traced: bool) -> list[Marker]:
    from scenarios.checks import marks

    return [m for m in marks(model, "race_result")
            if m.fields.get("variant") == variant and bool(m.fields.get("traced")) == traced]


def _lost(results: list[Marker]) -> list[int]:
    return [int(m.fields.get("lost", 0)) for m in results]


def _words(numbers: list[int]) -> str:
    """``1``, ``1 and 2``, ``1, 2 and 3``, with thousands separators."""
    shown = [f"{n:,}" for n in numbers]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _params(model: RunModel) -> tuple[int, int] | None:
    """The threads and increments the run recorded in its ``params`` mark."""
    from scenarios.checks import marks

    for found in marks(model, "params"):
        threads, increments = found.fields.get("threads"), found.fields.get("increments")
        if threads is not None and increments is not None:
            return int(threads), int(increments)
    return None


def notebook_detail(model: RunModel, results: list[Marker]) -> str:
    """The notebook's promised total next to the totals this run's notebook loops got."""
    finals = [int(m.fields.get("final", 0)) for m in results]
    lost = [int(m.fields.get("lost", 0)) for m in results]
    expected = int(results[0].fields.get("expected", 0))
    text = (f"The notebook expects {NOTEBOOK_EXPECTED:,} ({NOTEBOOK_INCREMENTS:,} × "
            f"{NOTEBOOK_THREADS} threads) and says the code prints something less")
    params = _params(model)
    if params == (NOTEBOOK_THREADS, NOTEBOOK_INCREMENTS):
        text += "; this run, with the notebook's numbers,"
    elif params is not None:
        threads, increments = params
        text += (f"; this run added {increments:,} × {threads} threads, so it expected "
                 f"{expected:,}, and")
    else:
        text += f"; this run expected {expected:,} and"
    runs = "in its one run" if len(finals) == 1 else f"in its {len(finals)} runs"
    return f"{text} got {_words(finals)} {runs} (lost {_words(lost)})."


def _version(model: RunModel) -> tuple[int, int]:
    try:
        major, minor = model.target.python_version.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return sys.version_info[:2]


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, phase_window
    from tracer.model.schema import Claim

    claims: list[Claim] = []
    version = _version(model)
    notebook_runs = _results(model, "notebook", traced=True)
    notebook = _lost(notebook_runs)
    switch = _results(model, "switch_point", traced=True)
    shown = ".".join(map(str, version))
    if not notebook:
        claims.append(not_checked("The notebook's counter += 1 loop", "no run was recorded"))
    elif version >= (3, 10):
        claims.append(Claim(
            claim=f"On CPython {shown} the notebook's counter += 1 loop loses no updates "
                  "(no switch point between the load and the store)",
            held=all(lost == 0 for lost in notebook),
            detail=notebook_detail(model, notebook_runs),
        ))
    else:
        claims.append(Claim(
            claim=f"On CPython {shown} the notebook's counter += 1 loop loses updates",
            held=any(lost > 0 for lost in notebook),
            detail=notebook_detail(model, notebook_runs),
        ))
    if not switch:
        claims.append(not_checked("A read-modify-write across a call loses updates",
                                  "no run was recorded"))
        return claims
    lost = _lost(switch)
    expected = int(switch[0].fields.get("expected", 0))
    claims.append(Claim(
        claim="A read-modify-write with a function call between the read and the write loses "
              "updates on today's CPython",
        held=any(n > 0 for n in lost),
        detail=f"expected {expected:,} per run; got "
               f"{_words([int(m.fields.get('final', 0)) for m in switch])} (lost {_words(lost)})",
    ))
    overwrites = marks(model, "overwrite")
    accounted = []
    balanced = True
    for result in switch:
        window = phase_window(model, f"switch_point-{result.fields.get('run')}")
        if window is None:
            balanced = False
            continue
        inside = [m for m in overwrites if window[0] <= m.start <= window[1]]
        erased = sum(int(m.fields.get("erased", 0)) for m in inside)
        balanced &= erased == int(result.fields.get("lost", 0))
        accounted.append(f"{len(inside)} stale writes erasing {erased:,} (lost "
                         f"{int(result.fields.get('lost', 0)):,})")
    claims.append(Claim(
        claim="Every lost update was erased by a thread switched out between its read and its "
              "write (the overwrite marks)",
        held=balanced and bool(accounted),
        detail="; ".join(accounted),
    ))
    untraced_notebook = _lost(_results(model, "notebook", traced=False))
    untraced = _results(model, "switch_point", traced=False)
    effect_claim = "Tracing did not change the outcome: untraced, the races end the same way"
    if not untraced or not untraced_notebook:
        claims.append(not_checked(effect_claim, "the untraced runs were not recorded"))
        return claims
    same_notebook = (all(n == 0 for n in untraced_notebook) == all(n == 0 for n in notebook))
    same_switch = any(n > 0 for n in _lost(untraced)) == any(n > 0 for n in lost)
    traced_s = sum(float(m.fields.get("seconds", 0.0)) for m in switch) / len(switch)
    plain_s = sum(float(m.fields.get("seconds", 0.0)) for m in untraced) / len(untraced)
    from tracer.raw_files import SourceName

    viztracer = model.sources.get(SourceName.VIZTRACER)
    tracer = "VizTracer on" if viztracer is not None and viztracer.used else "VizTracer off"
    claims.append(Claim(
        claim=effect_claim,
        held=same_notebook and same_switch,
        detail=f"untraced: notebook lost {untraced_notebook}, read-modify-write lost "
               f"{_lost(untraced)}; traced: {notebook} and {lost}. A read-modify-write run took "
               f"{traced_s:.3f} s traced ({tracer}) vs {plain_s:.3f} s untraced "
               f"({traced_s / plain_s if plain_s else float('nan'):.1f}x)",
    ))
    return claims


SCENARIO = Scenario(
    name="race_condition",
    concept="Race conditions",
    section="6: Race conditions",
    summary="Shared counter: the notebook's loop (exact on 3.10+) and a read-modify-write that "
            "loses updates",
    claim="counter += 1 from several threads is not atomic; on CPython 3.10+ updates are only "
          "lost when a switch point sits between the read and the write",
    look_for="The 'overwrite' marks on the worker threads in the read-modify-write runs: each is "
             "a thread coming back from a switch with a stale value; the lost updates per run, "
             "traced and untraced",
    params=(
        Param("threads", 5, "threads adding to the counter (the notebook: 5)"),
        Param("increments", 100_000, "increments per thread in the notebook's loop (the "
                                     "notebook: 100000)"),
        # One switch request per 5 ms: at 200000 a run lasts ~80 ms untraced, a dozen or more
        # switches, and every run lost updates here (at 100000, about one run in three did not).
        Param("rmw_increments", 200_000, "increments per thread in the read-modify-write"),
        Param("runs", 3, "runs of each variant, traced and untraced"),
    ),
    check=check,
)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    for variant in VARIANTS:
        for run in range(args.runs):
            with phase(f"{variant}-{run}"):
                result = race_once(variant, args.threads, increments_for(
                    variant, args.increments, args.rmw_increments))
            mark("race_result", run=run, traced=True, **result)
            print(f"traced   {variant:>12} run {run}: {result['final']:,} of "
                  f"{result['expected']:,} (lost {result['lost']:,})")
    with phase("untraced"):
        untraced = run_untraced(args.threads, args.increments, args.rmw_increments, args.runs)
    for run, result in enumerate(untraced):
        mark("race_result", run=run % args.runs, traced=False, **result)
        print(f"untraced {result['variant']:>12} run {run % args.runs}: {result['final']:,} of "
              f"{result['expected']:,} (lost {result['lost']:,})")


if __name__ == "__main__":
    main(sys.argv[1:])
