"""One options type: the flags of `run` and `attach`, `tracer.record()`'s keywords and the
bootstrap's share are all made from (or held to) :class:`tracer.options.RecordOptions`."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import fields

import pytest

from tracer import api
from tracer.commands.attach import AttachCommand
from tracer.commands.run import RunCommand
from tracer.inprocess import InProcessRecording
from tracer.options import AppliesTo, RecordOptions, declared

# Keywords of tracer.record() that are about the run folder and the report, not the recording.
API_ONLY = {"out", "force", "open_report"}


def _parser(command: RunCommand | AttachCommand) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    command.prepare_parser(parser)
    return parser


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions}


def _applying(where: AppliesTo) -> set[str]:
    return {f.name for f, spec in declared() if where & spec.applies_to}


def test_every_option_is_declared_and_flags_are_unique() -> None:
    flags = [spec.flag for _, spec in declared() if spec.flag]
    assert len(flags) == len(set(flags))
    assert [f.name for f, _ in declared()] == [f.name for f in fields(RecordOptions)]
    for f, spec in declared():
        assert spec.help, f.name
        assert bool(spec.flag) == bool(spec.applies_to), f"{f.name}: a flag iff it applies"


@pytest.mark.parametrize(("command", "where"), [(RunCommand(), AppliesTo.RUN),
                                                (AttachCommand(), AppliesTo.ATTACH)])
def test_the_parsers_expose_every_option_that_applies_to_them(
        command: RunCommand | AttachCommand, where: AppliesTo) -> None:
    option_names = {f.name for f in fields(RecordOptions)}
    assert _dests(_parser(command)) & option_names == _applying(where)


def test_the_flag_names_stay() -> None:
    """Users' scripts call these: a flag may be added, never renamed or dropped."""
    run = {"--timeout", "--rate", "--python", "--viztracer", "--no-viztracer", "--tracer-entries",
           "--no-pyspy", "--no-perf", "--no-gil-sampler", "--no-sched", "--no-locks",
           "--no-perf-budget", "--quiet", "--out", "--force", "--open", "-m"}
    attach = {"--duration", "--out", "--force", "--open", "--rate", "--no-pyspy", "--no-perf",
              "--no-sched", "--no-perf-budget", "--quiet"}
    for command, expected in ((RunCommand(), run), (AttachCommand(), attach)):
        given = {flag for action in _parser(command)._actions for flag in action.option_strings}
        assert expected <= given


def test_flag_defaults_are_the_options_defaults() -> None:
    """With no flags, run and attach record with RecordOptions' defaults (VizTracer aside: the
    run decides it by target, see test_viztracer_default)."""
    defaults = RecordOptions()
    run = RunCommand._options(_parser(RunCommand()).parse_args(["target"]), scenario=False)
    assert run == RecordOptions(viztracer_by_default=True)
    attach = _parser(AttachCommand()).parse_args(["1"])
    for name in _applying(AppliesTo.ATTACH):
        assert getattr(attach, name) == getattr(defaults, name), name


def test_flags_reach_the_options() -> None:
    args = _parser(RunCommand()).parse_args(
        ["--no-sched", "--no-gil-sampler", "--no-perf-budget", "--rate", "50", "--timeout", "2",
         "--tracer-entries", "1000", "--python", "/bin/py", "--quiet", "target"])
    options = RunCommand._options(args, scenario=False)
    assert (options.sched, options.gil_sampler, options.perf_budget) == (False, False, False)
    assert (options.rate_hz, options.timeout_s, options.tracer_entries) == (50.0, 2.0, 1000)
    assert (options.python, options.quiet, options.pyspy, options.perf) == ("/bin/py", True,
                                                                            True, True)


def test_the_api_takes_every_option_of_the_api_with_the_same_default() -> None:
    parameters = inspect.signature(api.record).parameters
    assert set(parameters) - API_ONLY == _applying(AppliesTo.API)
    defaults = RecordOptions()
    for name in _applying(AppliesTo.API):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default == getattr(defaults, name), name


def test_every_run_option_is_in_the_api_or_says_why_not() -> None:
    for f, spec in declared():
        if spec.applies_to & AppliesTo.RUN:
            in_api = bool(spec.applies_to & AppliesTo.API)
            assert in_api != bool(spec.not_in_api), f.name


def test_the_bootstrap_gets_exactly_what_the_recording_in_the_target_takes() -> None:
    taken = set(inspect.signature(InProcessRecording).parameters) - {"raw_dir"}
    assert set(RecordOptions().for_target()) == taken
    assert RecordOptions(locks=False).for_target()["locks"] is False


def test_turned_off_names_the_sources_left_out() -> None:
    assert RecordOptions().turned_off() == ["viztracer"]
    options = RecordOptions(viztracer=True, pyspy=False, sched=False, perf=False,
                            gil_sampler=False, locks=False, perf_budget=False, quiet=True)
    assert sorted(options.turned_off()) == ["gil-sampler", "locks", "perf", "py-spy", "sched"]
