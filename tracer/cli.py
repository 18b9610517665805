"""Command line: verbs as small modules; domain errors become one line and exit code 2 here, and
nowhere else."""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console
from rich.text import Text

from tracer.commands.attach import AttachCommand
from tracer.commands.doctor import DoctorCommand
from tracer.commands.export import ExportCommand
from tracer.commands.list import ListCommand
from tracer.commands.protocol import Command
from tracer.commands.report import ReportCommand
from tracer.commands.run import RunCommand
from tracer.commands.view import ViewCommand
from tracer.errors import ThreadscopeError
from tracer.interrupts import exit_code, signal_of, terminate_raises

COMMANDS: dict[str, Command] = {
    "run": RunCommand(),
    "attach": AttachCommand(),
    "report": ReportCommand(),
    "list": ListCommand(),
    "view": ViewCommand(),
    "export": ExportCommand(),
    "doctor": DoctorCommand(),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="python -m tracer",
        description="threadscope: what are my threads doing, and is the GIL why it is slow?",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {}
    for name, command in COMMANDS.items():
        parsers[name] = sub.add_parser(name, help=command.help, description=command.help)
        command.prepare_parser(parsers[name])
    return parser, parsers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with terminate_raises():  # SIGTERM runs every finally and atexit hook, as Ctrl-C does
            return COMMANDS[args.command].run(args, parsers[args.command])
    except ThreadscopeError as exc:
        message = Text.assemble(("error: ", "bold red"), str(exc))
        Console(stderr=True, highlight=False).print(message, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = signal_of(exc)
        Console(stderr=True).print("interrupted" if signum == signal.SIGINT else "terminated")
        return exit_code(signum)
