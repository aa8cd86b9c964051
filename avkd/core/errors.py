"""Errors that reach the user as one line and an exit code.

Library code raises these; the CLI catches :class:`AvkdError`, prints ``error: <message>`` on stderr and exits
with ``exit_code``. Messages name the file and the reason, because that is what a user on a cluster needs to
read in a job log.
"""

from __future__ import annotations


class AvkdError(Exception):
    """A failure with a user-facing one-line message."""

    exit_code: int = 1


class UsageError(AvkdError):
    """Bad command-line usage or configuration (exit code 2, like Typer/Click usage errors)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration key or value is wrong; ``key`` is the dotted config key, when one is to blame."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ArtifactError(AvkdError):
    """An artifact is missing, incomplete, of the wrong kind or of a newer schema."""


class MediaError(AvkdError):
    """A media file cannot be decoded or does not have the expected streams or rates."""
