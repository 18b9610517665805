"""The tiny protocol every CLI verb implements."""

from __future__ import annotations

import argparse
from typing import Protocol


class Command(Protocol):
    help: str

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int: ...
