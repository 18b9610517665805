"""Running the CLI as a user does: a subprocess, with its exit code and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(*args: str, cwd: Path | None = None, timeout: float = 240,
           input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracer", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )


def load_model(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "model.json").read_text())  # type: ignore[no-any-return]


def thread_named(model: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [t for t in model["threads"] if t["name"].startswith(prefix)]
