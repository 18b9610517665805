"""What our code inside the target could not record, counted instead of raised.

Thread hooks, lock wrappers, markers and fork/atexit handlers run inside the user's program, on
objects nobody here wrote: a thread whose name is a ``MagicMock``, a marker field whose
``__repr__`` raises, a flush at interpreter shutdown. None of that may raise into the user's code
or change what it does. Each hook records what it can (names through :func:`safe_text`) and
counts the rest here; ``InProcessRecording.finish`` writes the counts to ``raw/target.json`` as
``hook_faults`` (kind -> ``{"n": count, "example": first error}``), so the report can say what
was left out and why.

Standard library only, and nothing here may raise: it is the last resort of code that must not.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "<unprintable>"

_counts: dict[str, int] = {}
_examples: dict[str, str] = {}


def note(kind: str, exc: BaseException | None = None, detail: str = "") -> None:
    """Count one thing of ``kind`` that was not recorded as it was (the first error, or what was
    done instead, is kept as the example)."""
    try:
        _counts[kind] = _counts.get(kind, 0) + 1
        if kind not in _examples:
            _examples[kind] = _describe(exc) if exc is not None else detail
    except Exception:  # the counter itself must never be what raises
        pass


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:200]
    except Exception:
        return type(exc).__name__


def safe_text(value: Any, kind: str = "unprintable_value") -> str:
    """``value`` as a string for the record: itself if it is one (a ``str`` subclass as a plain
    ``str``), else its ``str()``, else a placeholder; either of the last two is counted under
    ``kind``, because the record then holds text the program never had."""
    if isinstance(value, str):
        return str.__str__(value)
    try:
        kind_of = type(value).__name__
        text = str(value)
        if isinstance(text, str):
            note(kind, detail=f"a {kind_of} written as its str()")
            return str.__str__(text)
    except Exception as exc:
        note(kind, exc)
        return PLACEHOLDER
    note(kind, detail=f"a {kind_of} whose str() is not a string")
    return PLACEHOLDER


def json_default(value: Any) -> str:
    """``default=`` for ``json.dumps`` in our hooks: anything JSON cannot encode is written as
    text rather than losing the whole line."""
    return safe_text(value, "unserialisable_value")


def snapshot() -> dict[str, dict[str, Any]]:
    """The counts so far, for the target record."""
    try:
        return {kind: {"n": n, "example": _examples.get(kind, "")}
                for kind, n in sorted(_counts.items())}
    except Exception:
        return {}


def reset() -> None:
    """Start counting afresh (a forked child, or the API recording a second block)."""
    _counts.clear()
    _examples.clear()
