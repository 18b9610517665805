"""Finds scenarios: every module in this package that defines ``SCENARIO``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from scenarios.base import Scenario

_NOT_SCENARIOS = {"base", "registry", "workloads", "checks"}


@cache
def scenario_names() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here])
                  if not m.name.startswith("_") and m.name not in _NOT_SCENARIOS)


def get_scenario(name: str) -> Scenario | None:
    if name not in scenario_names():
        return None
    module = importlib.import_module(f"scenarios.{name}")
    scenario = getattr(module, "SCENARIO", None)
    return scenario if isinstance(scenario, Scenario) else None


def all_scenarios() -> list[Scenario]:
    found = (get_scenario(name) for name in scenario_names())
    return [s for s in found if s is not None]
