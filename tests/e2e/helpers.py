"""Running the CLI as a user does: a subprocess, with its exit code and output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYENV = Path.home() / ".pyenv" / "versions"
GIL_MINORS = ("3.11", "3.12", "3.13")  # the versions whose GIL the tool must see
PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(*args: str, cwd: Path | None = None, timeout: float = 240,
           input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracer", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        env=_this_checkout_first(),
    )


def _this_checkout_first() -> dict[str, str]:
    """The CLI of this checkout, not of whichever checkout an editable install points at (a CI
    clone or a second worktree re-points it)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def load_model(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "model.json").read_text())  # type: ignore[no-any-return]


def thread_named(model: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [t for t in model["threads"] if t["name"].startswith(prefix)]


def pyenv_interpreters() -> list[Any]:
    """One pytest param per CPython 3.11-3.13 of pyenv (the newest patch release), id'd by minor
    version; a version the machine lacks is a skipped param, not a silent gap."""
    import pytest

    params: list[Any] = []
    for minor in GIL_MINORS:
        found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}")) if PYENV.is_dir() else []
        if found:
            params.append(pytest.param(str(found[-1]), id=minor))
        else:
            params.append(pytest.param("", id=minor, marks=pytest.mark.skip(f"no pyenv {minor}")))
    return params


def exact_path_expected() -> bool:
    """CI (CI=true) on a root machine with perf: the exact GIL path must run, not skip."""
    return (os.environ.get("CI") == "true" and hasattr(os, "geteuid") and os.geteuid() == 0
            and shutil.which("perf") is not None)


def require_recorder(check: Callable[[], None], *, needs_perf: bool = False) -> None:
    """Skip the test when ``check()`` says its recorder cannot run here (with the reason), but
    fail it when the exact path is expected (:func:`exact_path_expected`) and it needs perf."""
    import pytest

    from tracer.errors import RecorderUnavailable

    try:
        check()
    except RecorderUnavailable as exc:
        if needs_perf and exact_path_expected():
            pytest.fail(f"the exact GIL recorder must run on this CI machine: {exc}")
        pytest.skip(str(exc))
