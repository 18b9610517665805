"""The GIL sampler's child follower: children take turns on the ticks, a child that is gone
is dropped, and the notes say what was and was not followed."""

from __future__ import annotations

from typing import Any

from tracer.recorders.child_gil import (
    CHILDREN_PER_TICK,
    ChildFollower,
    FollowReport,
    child_notes,
)


class _FakeChild:
    def __init__(self, pid: int, lives: int = 1_000) -> None:
        self.pid, self.lives, self.closed = pid, lives, False

    def sample(self, write: Any) -> bool:
        self.lives -= 1
        if self.lives < 0:
            return False
        write({"p": self.pid})
        return True

    def close(self) -> None:
        self.closed = True


def _follower(children: list[_FakeChild]) -> ChildFollower:
    follower = ChildFollower(1, "/dev/null", 202)
    follower._active = children  # type: ignore[assignment]
    return follower


def test_children_take_turns_a_few_per_tick() -> None:
    children = [_FakeChild(pid) for pid in range(10, 16)]
    follower = _follower(children)
    written: list[dict[str, Any]] = []
    for _ in range(30):
        before = len(written)
        follower.tick(written.append)
        assert len(written) - before == CHILDREN_PER_TICK
    counts = {c.pid: sum(1 for w in written if w["p"] == c.pid) for c in children}
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_a_child_that_is_gone_is_dropped_and_closed() -> None:
    gone, alive = _FakeChild(20, lives=0), _FakeChild(21)
    follower = _follower([gone, alive])
    written: list[dict[str, Any]] = []
    for _ in range(5):
        follower.tick(written.append)
    assert gone.closed and not alive.closed
    assert {w["p"] for w in written} == {21}


def test_the_notes_say_what_was_followed_and_why_others_were_not() -> None:
    report = FollowReport(followed=3, refused={7: "not a CPython process", 8: "gone"},
                          over_limit=2)
    text = " ".join(child_notes(report))
    assert "followed 3 child processes" in text
    assert "pid 7: not a CPython process" in text and "2 child processes not followed" in text
    assert "2 more child processes" in text
    assert child_notes(FollowReport()) == []
