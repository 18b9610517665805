"""A thread's life: created (not alive), started (alive while its function runs), joined (dead).
The main thread asks ``is_alive()`` before start, a few times while the worker runs, and after
join, leaving each answer as a mark; the check compares every answer with the thread's own
start and end on the recorded timeline."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, thread_by_tid
    from tracer.model.schema import Claim

    started = marks(model, "worker_starting")
    answers = marks(model, "is_alive")
    thread = thread_by_tid(model, started[0].tid) if started else None
    claim = "is_alive() is False before start(), True while the thread runs, False after join()"
    if thread is None or thread.start_s is None or thread.end_s is None or not answers:
        return [not_checked(claim, "the worker thread or the is_alive marks are missing")]
    wrong = []
    seen = []
    for answer in answers:
        alive = bool(answer.fields.get("alive"))
        running = thread.start_s <= answer.start <= thread.end_s
        seen.append(f"{answer.fields.get('when')}: {alive}")
        if alive != running:
            wrong.append(f"{answer.fields.get('when')} at {answer.start:.3f} s said {alive}")
    phases = {str(a.fields.get("when")).split()[0] for a in answers}
    detail = (f"thread alive {thread.start_s:.3f}-{thread.end_s:.3f} s on the timeline; "
              f"answers: {'; '.join(seen)}")
    if wrong:
        detail += f"; disagreeing with the timeline: {', '.join(wrong)}"
    return [Claim(claim=claim, held=not wrong and {"before", "while", "after"} <= phases,
                  detail=detail)]


SCENARIO = Scenario(
    name="lifecycle",
    concept="Threads",
    section="3: Thread lifecycle: start(), is_alive(), join()",
    summary="is_alive() before start, while running and after join, against the timeline",
    claim="A thread is alive from start() until its function returns; join() waits for that",
    look_for="The is_alive marks on the main thread: False before the worker's bar begins, "
             "True over it, False after it ends",
    params=(
        Param("seconds", 0.6, "how long the worker sleeps (the notebook: 3 s)"),
        Param("polls", 3, "is_alive() checks while the worker runs"),
    ),
    check=check,
)


def worker(seconds: float) -> None:
    mark("worker_starting")
    print("Worker starting...")
    time.sleep(seconds)
    print("Worker done!")


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    t = threading.Thread(target=worker, args=(args.seconds,), name="worker")

    def ask(when: str) -> None:
        alive = t.is_alive()
        mark("is_alive", when=when, alive=alive)
        print(f"{when}: {alive}")

    ask("before start")
    time.sleep(0.05)  # a visible gap between "created" and "started" on the timeline
    t.start()
    ask("while running (just started)")
    for poll in range(args.polls):
        time.sleep(args.seconds / (args.polls + 1))
        ask(f"while running (poll {poll + 1})")
    t.join()
    ask("after join")


if __name__ == "__main__":
    main(sys.argv[1:])
