"""Blocked time split by cause on a program whose threads block by construction: each thread's
top cause is the one it was built to block in, with exact (perf) and sampled GIL states alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import PROGRAMS, load_model, tracer

PROGRAM = PROGRAMS / "blocked_causes.py"
EXPECTED = {"sleeper": "sleep", "socket-reader": "io", "child-waiter": "child",
            "file-locker": "file_lock"}
# Each thread blocks ~2 s: the top cause must hold most of its blocked time even on a busy
# machine (two noisy cores), and at least 1.5 s of it.
MIN_SHARE, MIN_S = 0.75, 1.5


@pytest.mark.parametrize("perf", [True, False], ids=["default", "sampled"])
def test_each_thread_is_blocked_by_what_it_was_built_to_block_in(perf: bool,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = [] if perf else ["--no-perf"]
    result = tracer("run", "--quiet", *flags, "--out", str(out), str(PROGRAM))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    threads = {t["name"]: t for t in model["threads"]}
    for name, cause in EXPECTED.items():
        thread = threads[name]
        blocked = thread["state_s"]["blocked"]
        by = thread["blocked_by"]
        assert sum(by.values()) == pytest.approx(blocked, abs=2e-6), name
        top = max(by, key=by.get)
        assert top == cause, (name, by)
        assert by[top] >= MIN_S and by[top] >= MIN_SHARE * blocked, (name, by)
        causes = {i["detail"]["cause"] for i in thread["intervals"] if i["state"] == "blocked"}
        assert cause in causes
    if model["sources"]["py-spy"]["used"]:  # the idle worker's futex is named by its stack
        pool = next(t for t in model["threads"] if t["name"].startswith("pool"))
        assert max(pool["blocked_by"], key=pool["blocked_by"].get) == "signal", pool["blocked_by"]
    gil_source = model["metrics"]["gil"]["method"]
    notes = " ".join(note for source in model["sources"].values() for note in source["notes"])
    assert ("context switches do not say" in notes) == (gil_source == "exact")
