"""What every scenario declares: the notebook concept it illustrates, its parameters, what to look
for, and the claim it measures (checked against the recorded model, never assumed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel, ScenarioInfo


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str

    @property
    def kind(self) -> type:
        return type(self.default)


@dataclass(frozen=True)
class Scenario:
    name: str
    concept: str  # group shown by `tracer list`
    section: str  # the notebook section it illustrates
    summary: str  # one line
    claim: str  # what the notebook says, as a measurable sentence
    look_for: str  # what the report should make visible
    params: tuple[Param, ...] = ()
    check: Callable[[RunModel], list[Claim]] = field(default=lambda model: [])

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=self.name, description=self.summary)
        for param in self.params:
            flag = "--" + param.name.replace("_", "-")
            parser.add_argument(flag, dest=param.name, type=param.kind, default=param.default,
                                help=f"{param.help} (default: {param.default})")
        return parser

    def parse(self, argv: list[str] | None = None) -> argparse.Namespace:
        return self.parser().parse_args(argv)

    def describe(self) -> ScenarioInfo:
        # Imported here: a scenario runs as the traced script, and the schema (with orjson) has
        # no business being loaded inside the target.
        from tracer.model.schema import ScenarioInfo

        return ScenarioInfo(self.name, self.concept, self.section, self.summary, self.claim,
                            self.look_for)


def params_from_argv(scenario: Scenario, argv: list[str]) -> argparse.Namespace:
    """The parameters a recorded run used (argv[0] is the script path)."""
    try:
        return scenario.parse(argv[1:])
    except SystemExit:
        return scenario.parse([])
