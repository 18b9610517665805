"""What to run: a scenario by name, a script path, or a module (``-m``), resolved before anything
starts so that a typo costs one line of error, not a half-made run folder."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracer.errors import TargetNotFound


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # scenario | script | module
    name: str  # scenario name, script path as given, or module name
    run: str  # what the bootstrap executes: a file path (script) or a module name
    argv: list[str] = field(default_factory=list)  # the target's sys.argv

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return Path(self.name).stem if self.kind == "script" else self.name.rsplit(".", 1)[-1]


def resolve(what: str, args: list[str], as_module: bool = False) -> TargetSpec:
    """Scenario names win over files only when no file of that name exists."""
    if as_module:
        return _module(what, args)
    path = Path(what)
    if path.is_file():
        return TargetSpec("script", what, str(path.resolve()), [what, *args])
    from scenarios.registry import scenario_names

    names = scenario_names()
    if what in names:
        module = f"scenarios.{what}"
        return TargetSpec("scenario", what, module, [_module_file(module), *args])
    if what.endswith(".py") or "/" in what or path.suffix:
        raise TargetNotFound(f"no such script: {path.resolve()}")
    close = difflib.get_close_matches(what, names, n=3, cutoff=0.5)
    hint = (f"; did you mean {', '.join(close)}?" if close
            else "; `python -m tracer list` shows them")
    raise TargetNotFound(f"{what!r} is neither a scenario nor a file{hint}")


def _module(name: str, args: list[str]) -> TargetSpec:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise TargetNotFound(f"no module named {name!r}")
    return TargetSpec("module", name, name, [_module_file(name), *args])


def _module_file(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
        return spec.origin
    return name
