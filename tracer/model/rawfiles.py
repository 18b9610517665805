"""Reading raw recordings back, tolerating the one kind of damage a crash leaves (a truncated last
line) and refusing everything else with a one-line error that names the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tracer.errors import CorruptRecording


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a missing file yields nothing."""
    if not path.exists():
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptRecording(f"cannot read {path}: {exc}") from exc
    lines = data.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if number == len(lines) and not data.endswith(b"\n"):
                return  # the process died while writing its last line: keep the rest
            raise CorruptRecording(f"{path}: line {number} is not valid JSON") from exc
        if not isinstance(record, dict):
            raise CorruptRecording(f"{path}: line {number} is not a JSON object")
        yield record


def read_json(path: Path) -> Any:
    """A whole JSON file; None when it does not exist."""
    if not path.exists():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CorruptRecording(f"{path} is not valid JSON ({exc})") from exc
