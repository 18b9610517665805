"""Domain errors. The CLI turns each into a one-line message and an exit code; nothing else does."""

from __future__ import annotations


class ThreadscopeError(Exception):
    """Base class: a problem the user can fix, reported in one line."""

    exit_code = 2


class TargetNotFound(ThreadscopeError):
    """The scenario, script or module to run does not exist."""


class RunFolderExists(ThreadscopeError):
    """The run folder already holds files and ``--force`` was not given."""


class CorruptRecording(ThreadscopeError):
    """A raw file cannot be read back; the message names the file."""


class UnknownSchema(ThreadscopeError):
    """A model.json written by a different, unknown schema version."""


class RecorderUnavailable(Exception):
    """A recorder cannot run here; the message says why, and the run goes on without it."""
